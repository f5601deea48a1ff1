"""A byte-stream responder on a pseudo-terminal: a serial instrument whose port is ``/dev/pts/N``.

The client opens the slave path with pyserial or pyvisa-py, exercising the real serial code path including
termios. The responder thread owns the raw master side and keeps the slave open itself, so clients may come
and go without the pty hanging up, and the stream never ends: as on a real serial line there is one session
(one handler) for whoever is connected. What the protocol is (SCPI lines, a Numato command line) is the
handler's business; subclasses say how the port is named as a resource.
"""

from __future__ import annotations

import os
import select
import threading
import tty
from abc import abstractmethod
from collections.abc import Callable
from typing import Protocol, Self

from harness.lifecycle import Lifecycle

_READ_BYTES = 4096
_JOIN_TIMEOUT_S = 5.0


class ByteHandler(Protocol):
    """One session's protocol: takes the bytes the client wrote, returns the bytes to write back.

    A stream handler for sockets also has ``finish()`` (end of input); a pty's input never ends, so it is
    not needed here.
    """

    def feed(self, data: bytes) -> bytes: ...


class PtyServer(Lifecycle):
    """Serves the handler ``open_session()`` makes on a new pseudo-terminal until :meth:`close`."""

    def __init__(self, open_session: Callable[[], ByteHandler], *, thread_name: str = "pty") -> None:
        self._open_session = open_session
        self._thread_name = thread_name
        self._guard = threading.Lock()
        self._fds: tuple[int, int, int, int] | None = None  # master, slave, wake-read, wake-write
        self._device_path: str | None = None
        self._responder: threading.Thread | None = None
        self._closed = False

    @property
    def device_path(self) -> str:
        """The slave device a client opens, e.g. ``/dev/pts/7`` (known once started)."""
        if self._device_path is None:
            raise RuntimeError("server not started")
        return self._device_path

    @property
    @abstractmethod
    def resource(self) -> str:
        """The port as the client names it (a VISA ``ASRL`` resource, a pyserial URL...), once started."""

    def start(self) -> Self:
        with self._guard:
            if self._closed or self._fds is not None:
                raise RuntimeError("a server starts once")
            master, slave = os.openpty()
            tty.setraw(master)  # no echo, no CR/LF translation
            os.set_blocking(master, False)
            wake_read, wake_write = os.pipe()
            self._fds = (master, slave, wake_read, wake_write)
            self._device_path = os.ttyname(slave)
            self._responder = threading.Thread(
                target=self._respond, args=(master, wake_read), name=self._thread_name, daemon=True
            )
            self._responder.start()
        return self

    def close(self) -> None:
        """Stop the responder thread and close the pty; idempotent."""
        with self._guard:
            if self._closed:
                return
            self._closed = True
            fds = self._fds
        if fds is None:
            return
        os.write(fds[3], b"\0")  # wakes the responder out of select()
        if self._responder is not None:
            self._responder.join(_JOIN_TIMEOUT_S)
        for fd in fds:
            os.close(fd)


    def _respond(self, master: int, wake: int) -> None:
        handler = self._open_session()
        while True:
            readable, _, _ = select.select([master, wake], [], [])
            if wake in readable:
                return
            try:
                data = os.read(master, _READ_BYTES)
            except BlockingIOError:
                continue
            except OSError:
                return  # the pty is gone
            if not _write_all(master, wake, handler.feed(data)):
                return


def _write_all(master: int, wake: int, data: bytes) -> bool:
    """Write ``data`` to the master, waiting for room; False if woken to stop first.

    A pty buffers only a few KiB: a client that stops reading must not keep close() from waking us.
    """
    view = memoryview(data)
    while view:
        readable, _, _ = select.select([wake], [master], [])
        if readable:
            return False
        try:
            view = view[os.write(master, view) :]
        except BlockingIOError:
            continue
    return True
