"""Numato-style USB relay module (ASCII command line over a serial port) as a stand-in, on a pseudo-terminal.

**Line protocol**, as Numato's USB relay and GPIO modules speak it: every byte received is echoed back
(it is a terminal command line); ``\\r`` ends a command; the device then sends ``\\n``, the reply
followed by ``\\r\\n`` if the command has one, and the prompt ``>``. So ``ver\\r`` gets back
``ver\\r\\n00000008\\r\\n>`` and ``relay on 0\\r`` gets back ``relay on 0\\r\\n>`` (the byte layout the
numato-gpio library's device mock reproduces). ``\\n`` is echoed and otherwise ignored, so clients that
end lines with ``\\r\\n`` or ``\\n\\r`` work too. Unknown or malformed commands, relay numbers out of
range included, get no reply, only the prompt: the module has no error messages (not verified against
a device).

**Commands** (lower case, as Numato documents them; case is not checked): ``ver``; ``id get`` /
``id set <8 characters>``; ``relay on|off|read <N>`` (``read`` -> ``on``/``off``); ``relay readall``
(hex bitmap, relay 0 = bit 0, two digits per 8 relays, upper case); ``relay writeall <hex>``; ``reset``
(all relays off). ``N`` is 0-based: ``0``-``9``, then ``A``, ``B``... for 10, 11... as Numato numbers them.

Each relay acts on the plant as :mod:`harness.sim.standins.wiring` says; all relays off is the safe
state. The relays start off and building the box changes nothing; closing it leaves relays and plant
as they are.

The pty server is written here rather than reused from ``harness.sim.scpi.pty``: that one frames
``\\n``-terminated SCPI messages into an engine session and cannot carry a character-echoing line
protocol; the transport part (pty pair, wake pipe, responder thread) is the same pattern.
"""

from __future__ import annotations

import os
import select
import threading
import tty
from collections.abc import Callable

from harness.sim.plant import Plant
from harness.sim.standins import StandIn
from harness.sim.standins.wiring import RelayWiring

BAUD_RATE = 115200
"""What the bench file names: a pseudo-terminal ignores it; a real board runs at any rate over USB CDC."""
VERSION = "00000008"
DEFAULT_ID = "00000000"
ID_LENGTH = 8
LINE_MAX_BYTES = 256
_DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_READ_BYTES = 4096
_JOIN_TIMEOUT_S = 5.0


class RelayBox(StandIn):
    """A Numato USB relay module on ``/dev/pts/N`` whose relays are wired into the plant."""

    def __init__(self, plant: Plant, lock: threading.RLock, wiring: RelayWiring | None = None) -> None:
        super().__init__(plant, lock)
        self.wiring = RelayWiring.default(plant) if wiring is None else wiring
        self.wiring.check(plant)
        self._on = [False] * self.wiring.relay_count
        self._id = DEFAULT_ID

    @property
    def identity(self) -> str:
        return f"Numato Lab,{self.relay_count} Channel USB Relay Module,{self._id},{VERSION}"

    @property
    def relay_count(self) -> int:
        return self.wiring.relay_count

    @property
    def device_path(self) -> str:
        """The serial port a client opens, e.g. ``/dev/pts/7`` (known once started)."""
        return self.resource.removeprefix("serial://").split("?")[0]

    def _make_server(self) -> PtyLineServer:
        return PtyLineServer(lambda: NumatoTerminal(self.execute))

    def execute(self, line: str) -> str | None:
        """Run one command line; its reply, or None for commands without one (and unknown ones)."""
        words = line.lower().split()
        with self.lock:
            match words:
                case ["ver"]:
                    return VERSION
                case ["id", "get"]:
                    return self._id
                case ["id", "set", new_id] if len(new_id) == ID_LENGTH:
                    self._id = line.split()[2]
                case ["reset"]:
                    self._switch_all(0)
                case ["relay", "readall"]:
                    return self._bitmap()
                case ["relay", "writeall", bits]:
                    value = _hex(bits)
                    if value is not None and value < 1 << self.relay_count:
                        self._switch_all(value)
                case ["relay", ("on" | "off") as action, number]:
                    relay = self._relay(number)
                    if relay is not None:
                        self._switch(relay, action == "on")
                case ["relay", "read", number]:
                    relay = self._relay(number)
                    if relay is not None:
                        return "on" if self._on[relay] else "off"
        return None

    def _relay(self, token: str) -> int | None:
        relay = _DIGITS.find(token.upper()) if len(token) == 1 else -1
        return relay if 0 <= relay < self.relay_count else None

    def _bitmap(self) -> str:
        value = sum(1 << relay for relay, on in enumerate(self._on) if on)
        return f"{value:0{2 * ((self.relay_count + 7) // 8)}X}"

    def _switch_all(self, value: int) -> None:
        for relay in range(self.relay_count):
            self._switch(relay, bool(value >> relay & 1))

    def _switch(self, relay: int, on: bool) -> None:
        if self._on[relay] == on:
            return
        target = self.wiring.target(relay)
        if target is not None:
            if on:
                target.energise(self.plant)
            else:
                target.release(self.plant)
        self._on[relay] = on


def _hex(text: str) -> int | None:
    try:
        return int(text, 16)
    except ValueError:
        return None


class NumatoTerminal:
    """One serial session's byte stream: echo, ``\\r``-terminated lines, reply and prompt."""

    def __init__(self, execute: Callable[[str], str | None]) -> None:
        self._execute = execute
        self._line = bytearray()

    def feed(self, data: bytes) -> bytes:
        out = bytearray()
        for byte in data:
            out.append(byte)
            if byte == 0x0D:
                out += self._run(bytes(self._line))
                self._line.clear()
            elif byte != 0x0A and len(self._line) < LINE_MAX_BYTES:
                self._line.append(byte)
        return bytes(out)

    def _run(self, line: bytes) -> bytes:
        reply = self._execute(line.decode("ascii", errors="replace"))
        return b"\n" + (b"" if reply is None else reply.encode() + b"\r\n") + b">"


class PtyLineServer:
    """A byte-stream responder on a new pseudo-terminal: what the client writes to the slave goes to
    ``handler().feed``, and what that returns goes back. Clients may come and go; one session."""

    def __init__(self, handler: Callable[[], NumatoTerminal]) -> None:
        self._handler = handler
        self._guard = threading.Lock()
        self._fds: tuple[int, int, int, int] | None = None  # master, slave, wake-read, wake-write
        self._responder: threading.Thread | None = None
        self._device_path: str | None = None
        self._closed = False

    @property
    def resource(self) -> str:
        if self._device_path is None:
            raise RuntimeError("server not started")
        return f"serial://{self._device_path}?baudrate={BAUD_RATE}"

    def start(self) -> PtyLineServer:
        with self._guard:
            if self._closed or self._fds is not None:
                raise RuntimeError("a server starts once")
            master, slave = os.openpty()
            tty.setraw(master)
            os.set_blocking(master, False)
            wake_read, wake_write = os.pipe()
            self._fds = (master, slave, wake_read, wake_write)
            self._device_path = os.ttyname(slave)
            self._responder = threading.Thread(
                target=self._respond, args=(master, wake_read), name="relay-pty", daemon=True
            )
            self._responder.start()
        return self

    def close(self) -> None:
        with self._guard:
            if self._closed:
                return
            self._closed = True
            fds = self._fds
        if fds is None:
            return
        os.write(fds[3], b"\0")
        if self._responder is not None:
            self._responder.join(_JOIN_TIMEOUT_S)
        for fd in fds:
            os.close(fd)

    def _respond(self, master: int, wake: int) -> None:
        terminal = self._handler()
        while True:
            readable, _, _ = select.select([master, wake], [], [])
            if wake in readable:
                return
            try:
                data = os.read(master, _READ_BYTES)
            except BlockingIOError:
                continue
            except OSError:
                return
            reply = memoryview(terminal.feed(data))
            while reply:
                readable, _, _ = select.select([wake], [master], [])
                if readable:
                    return
                try:
                    reply = reply[os.write(master, reply) :]
                except BlockingIOError:
                    continue
