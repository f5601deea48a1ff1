"""Raw SCPI socket server, what a ``TCPIP::<host>::<port>::SOCKET`` VISA resource reaches.

Threaded, one thread per client (about twice as fast as asyncio here, reference/protocols.md §0); every
client has its own :class:`ScpiSession` on the shared engine.
"""

from __future__ import annotations

import contextlib
import socket
import threading

from harness.lifecycle import Lifecycle
from harness.sim.scpi.engine import ScpiEngine
from harness.sim.scpi.framing import LineChannel

_RECV_BYTES = 64 * 1024
_JOIN_TIMEOUT_S = 5.0
_TCP_QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux only


class ScpiTcpServer(Lifecycle):
    """Serves ``engine`` on ``host:port`` (port 0: an ephemeral one) until :meth:`close`."""

    def __init__(
        self,
        engine: ScpiEngine,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        max_line_bytes: int = 64 * 1024,
    ) -> None:
        self._engine = engine
        self._address = (host, port)
        self._max_line_bytes = max_line_bytes
        self._guard = threading.Lock()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._clients: dict[socket.socket, threading.Thread] = {}
        self._closed = False

    @property
    def host(self) -> str:
        return self._address[0]

    @property
    def port(self) -> int:
        """The bound port (known once started)."""
        if self._listener is None:
            raise RuntimeError("server not started")
        return self._listener.getsockname()[1]

    @property
    def resource(self) -> str:
        return f"TCPIP::{self.host}::{self.port}::SOCKET"

    def start(self) -> ScpiTcpServer:
        with self._guard:
            if self._closed or self._listener is not None:
                raise RuntimeError("a server starts once")
            self._listener = socket.create_server(self._address)
            self._acceptor = threading.Thread(
                target=self._accept, args=(self._listener,), name=f"scpi-tcp-accept-{self.port}", daemon=True
            )
            self._acceptor.start()
        return self

    def close(self) -> None:
        """Close the listener and every client connection, and wait for their threads; idempotent."""
        with self._guard:
            if self._closed:
                return
            self._closed = True
            listener = self._listener
            clients = dict(self._clients)
        if listener is not None:
            _shutdown(listener)  # wakes the thread blocked in accept()
            listener.close()
        for connection in clients:
            _shutdown(connection)  # wakes a client thread blocked in recv() or sendall()
        for thread in (self._acceptor, *clients.values()):
            if thread is not None:
                thread.join(_JOIN_TIMEOUT_S)


    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            thread = threading.Thread(
                target=self._serve, args=(connection,), name="scpi-tcp-client", daemon=True
            )
            with self._guard:  # started under the guard, so close() never joins an unstarted thread
                if self._closed:
                    connection.close()
                    return
                self._clients[connection] = thread
                thread.start()

    def _serve(self, connection: socket.socket) -> None:
        channel = LineChannel(self._engine.open_session(), self._max_line_bytes)
        try:
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while data := connection.recv(_RECV_BYTES):
                _acknowledge_now(connection)
                reply = channel.feed(data)
                if reply:
                    connection.sendall(reply)
            # The client half-closed: answer what it sent last, then hang up.
            connection.sendall(channel.finish())
        except OSError:
            pass  # the client reset the connection, or close() shut it down
        finally:
            with self._guard:
                self._clients.pop(connection, None)
            connection.close()


def _acknowledge_now(connection: socket.socket) -> None:
    """Turn off delayed ACK again (Linux resets it): a command without a reply is acknowledged at once.

    pyvisa-py leaves Nagle on, so after a write with no reply its next message waits for our ACK; with the
    delayed ACK that is ~40 ms for every write followed by a query.
    """
    if _TCP_QUICKACK is not None:
        connection.setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 1)


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # not connected, or already closed by its own thread
        sock.shutdown(socket.SHUT_RDWR)
