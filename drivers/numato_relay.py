"""Numato Lab USB relay modules: an ASCII command line over a (USB CDC) serial port.

The board is a terminal: it echoes every byte it receives, runs a command when ``\\r`` arrives, then
sends a line break, the reply (if the command has one) followed by a line break, and the prompt ``>``.
``relay read 3\\r`` gets back ``relay read 3\\r\\non\\r\\n>``. The board has no error messages: an unknown
command or a relay number it does not have gets the prompt alone. So this driver checks every relay
number against the bench's board size before sending, checks the echo and the shape of every reply,
and reads back the relays after putting them in their safe positions.

Relays are numbered from 0 as Numato does, with one character each: ``0``-``9``, then ``A``, ``B``...
for 10, 11...: boards of up to 32 relays (the 64-relay boards number differently and are not covered).
The board does not report how many relays it has; the bench says so (option ``relay_count``, 16 if
absent), and the identity's model names that size.

Bench options: ``relay_count`` (int, 1-32), ``safe_on`` (relay numbers whose safe position is on, e.g.
a relay wired normally-closed into a contactor coil; every other relay's safe position is off),
``timeout_s``.
"""

from __future__ import annotations

import re
from typing import Self

from drivers.base import DriverConfig, Identity
from drivers.errors import GarbageReply, InstrumentRejected, LimitViolation
from drivers.registry import register
from drivers.serial_line import SerialDriver

MANUFACTURER = "Numato Lab"
PROMPT = b">"
MAX_RELAYS = 32
DEFAULT_RELAY_COUNT = 16
_NUMBERING = "0123456789ABCDEFGHIJKLMNOPQRSTUV"
_LINE_BREAK = b"\r\n"
_STATES = {"on": True, "off": False}
_HEX = re.compile(r"[0-9A-Fa-f]+")


@register("numato-relay")
class RelayBox(SerialDriver):
    """A Numato USB relay module of ``relay_count`` relays."""

    OPTIONS = frozenset({"relay_count", "safe_on"})

    def __init__(self, config: DriverConfig) -> None:
        super().__init__(config)
        count = config.option("relay_count", DEFAULT_RELAY_COUNT)
        if not 1 <= count <= MAX_RELAYS:
            raise ValueError(
                f"{self.role}: relay_count = {count}: this driver knows boards of 1..{MAX_RELAYS}"
            )
        self.relay_count = count
        safe_on = config.options.get("safe_on", [])
        if not isinstance(safe_on, list | tuple) or not all(self._is_relay(relay) for relay in safe_on):
            raise ValueError(f"{self.role}: safe_on = {safe_on!r}: a list of relays 0..{count - 1}")
        self.safe_on = frozenset(safe_on)

    def open(self) -> Self:
        super().open()
        try:
            self.identity()
        except BaseException:
            self.close()
            raise
        return self

    def identity(self) -> Identity:
        """Firmware version (``ver``) and the board's settable id (``id get``) as its serial number."""
        return Identity(
            MANUFACTURER,
            f"{self.relay_count} Channel USB Relay Module",
            self._ask("id get"),
            self._ask("ver"),
        )

    def on(self, relay: int) -> None:
        self._run(f"relay on {self._token(relay, 'relay on')}")

    def off(self, relay: int) -> None:
        self._run(f"relay off {self._token(relay, 'relay off')}")

    def read(self, relay: int) -> bool:
        """True while ``relay`` is on (energised)."""
        command = f"relay read {self._token(relay, 'relay read')}"
        reply = self._ask(command)
        if reply not in _STATES:
            raise GarbageReply(self.role, self.resource, command, f"expected on or off, got {reply!r}")
        return _STATES[reply]

    def read_all(self) -> int:
        """Every relay's state as a bitmap: relay 0 is bit 0, a set bit is a relay that is on."""
        command = "relay readall"
        reply = self._ask(command)
        bitmap = int(reply, 16) if _HEX.fullmatch(reply) else -1
        if not 0 <= bitmap < 1 << self.relay_count:
            raise GarbageReply(
                self.role,
                self.resource,
                command,
                f"expected a hex bitmap of {self.relay_count} relays, got {reply!r}",
            )
        return bitmap

    def write_all(self, bitmap: int) -> None:
        """Set every relay at once from a bitmap (relay 0 is bit 0)."""
        command = "relay writeall"
        if not 0 <= bitmap < 1 << self.relay_count:
            raise LimitViolation(
                self.role,
                self.resource,
                command,
                f"bitmap {bitmap:#x} has bits beyond relay {self.relay_count - 1}",
            )
        digits = 2 * ((self.relay_count + 7) // 8)
        self._run(f"{command} {bitmap:0{digits}x}")

    def reset(self) -> None:
        """Every relay off (the board's ``reset`` command)."""
        self._run("reset")

    def safe(self) -> None:
        """Every relay to its safe position in one command (off, or on for the bench's ``safe_on``), then
        read them back: the board does not say when it ignores a command, so only the read-back proves it."""
        wanted = sum(1 << relay for relay in self.safe_on)
        self.write_all(wanted)
        found = self.read_all()
        if found != wanted:
            raise InstrumentRejected(
                self.role,
                self.resource,
                "relay writeall",
                f"relays read back {found:#x} after setting the safe positions {wanted:#x}",
                code=0,
            )

    def _is_relay(self, relay: object) -> bool:
        return isinstance(relay, int) and not isinstance(relay, bool) and 0 <= relay < self.relay_count

    def _token(self, relay: int, command: str) -> str:
        """The board's name of ``relay``; LimitViolation, before anything is sent, if it has no such relay."""
        if not self._is_relay(relay):
            raise LimitViolation(
                self.role,
                self.resource,
                command,
                f"relay {relay!r} is not one of this board's relays 0..{self.relay_count - 1}",
            )
        return _NUMBERING[relay]

    def _run(self, command: str) -> None:
        reply = self._ask(command)
        if reply:
            raise GarbageReply(self.role, self.resource, command, f"expected no reply, got {reply!r}")

    def _ask(self, command: str) -> str:
        """Send ``command``; its reply text ('' for none), after checking the echo and the prompt."""
        answer = self.transport.exchange(command, PROMPT)
        echo = command.encode() + b"\r"
        if not answer.startswith(echo) or not answer.endswith(PROMPT):
            raise GarbageReply(
                self.role, self.resource, command, f"expected the echo, a reply and '>', got {answer!r}"
            )
        body = answer[len(echo) : -len(PROMPT)]
        text = body.strip(_LINE_BREAK)
        if text and not body.startswith((b"\n", b"\r")):
            raise GarbageReply(self.role, self.resource, command, f"reply not on its own line: {answer!r}")
        try:
            return text.decode("ascii")
        except UnicodeDecodeError:
            raise GarbageReply(self.role, self.resource, command, f"not ASCII: {answer!r}") from None
