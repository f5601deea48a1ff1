"""Tests of the instrument drivers: protocol pairs for exact bytes, stand-ins over the wire; shared helpers.
The fixtures they share are in ``conftest.py``."""

from __future__ import annotations

import contextlib
import socket
import threading

from harness.sim.plant import Plant, PlantConfig

PCS_RATED_W = 1.2e6
LOAD_RATED_W = 0.4e6


def bench_plant(packs: int = 8) -> Plant:
    """A plant of ``packs`` packs sized for a bench: 1.2 MW of PCS, no PV, 0.4 MW of racks."""
    return Plant.build(
        PlantConfig(packs=packs, pcs_rated_w=PCS_RATED_W, pv_rated_w=0.0, load_rated_w=LOAD_RATED_W)
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listened on when asked."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return probe.getsockname()[1]


class ThreadedServer:
    """A TCP server on 127.0.0.1 that serves each connection on its own thread until :meth:`close`.

    A subclass sets its own state before calling ``__init__`` (which starts accepting), names its
    ``resource`` and serves a connection in :meth:`_serve`.
    """

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._connections: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def close(self) -> None:
        for sock in [self._listener, *self._connections]:  # shutdown wakes threads blocked in accept/recv
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in [self._acceptor, *self._threads]:
            thread.join(5.0)

    def _accepted(self, number: int) -> None:
        """Connection ``number`` (from 0) was accepted: called in accept order, before it is served."""

    def _serve(self, connection: socket.socket, number: int) -> None:
        raise NotImplementedError

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            number = len(self._connections)
            self._connections.append(connection)
            self._accepted(number)
            thread = threading.Thread(target=self._serve, args=(connection, number), daemon=True)
            self._threads.append(thread)
            thread.start()
