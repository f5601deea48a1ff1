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

The port is a :class:`~harness.sim.pty_server.PtyServer` serving a :class:`NumatoTerminal`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from harness.sim.plant import Plant
from harness.sim.pty_server import PtyServer
from harness.sim.standins import StandIn
from harness.sim.standins.wiring import RelayWiring

BAUD_RATE = 115200
"""What the bench file names: a pseudo-terminal ignores it; a real board runs at any rate over USB CDC."""
VERSION = "00000008"
DEFAULT_ID = "00000000"
ID_LENGTH = 8
LINE_MAX_BYTES = 256
_DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


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

    def _make_server(self) -> NumatoPtyServer:
        return NumatoPtyServer(lambda: NumatoTerminal(self.execute), thread_name="relay-pty")

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


class NumatoPtyServer(PtyServer):
    """The box's serial port, named as the bench file names a pyserial port."""

    @property
    def resource(self) -> str:
        return f"serial://{self.device_path}?baudrate={BAUD_RATE}"
