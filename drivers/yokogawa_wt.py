"""Yokogawa WT-series power analyzer (WT1800/WT3000/WT5000 ``:NUMeric`` model) over SCPI, at the rack bus.

Commands as the SunSpec SVP ``device_wt3000`` driver sends them (reference/protocols.md §5.3) and the
gridhil stand-in documents them. At open: ``:COMMunicate:REMote ON`` and ``:COMMunicate:HEADer OFF``
(replies without headers). :meth:`PowerAnalyzer.configure` sets ASCII format, the item count and each
``:NUMeric:NORMal:ITEM<k> <function>,<element>``; :meth:`~PowerAnalyzer.read` reads them all with one
``:NUMeric:NORMal:VALue?``. Without :meth:`~PowerAnalyzer.configure`, the items are read from the
analyzer (``NUMber?`` and each ``ITEM<k>?``) on the first read, so a pre-set analyzer can be used as is.

Voltage events (``:EVENt:COUNt?``, ``:EVENt:DATA? <k>``, ``:EVENt:CLEar``) are the stand-in's documented
power-quality extension.

:meth:`~PowerAnalyzer.safe` has nothing to switch: it only checks the analyzer still answers
(``*OPC?``), so a safe-state pass reports a dead link here too.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Self

from drivers.base import DriverConfig
from drivers.errors import GarbageReply, LimitViolation
from drivers.registry import register
from drivers.visa import VisaDriver

ITEMS_MAX = 255
NUMBER = ":NUMeric:NORMal:NUMber"
ITEM = ":NUMeric:NORMal:ITEM"
VALUES = ":NUMeric:NORMal:VALue?"
NO_ITEM = "NONE"
NOT_A_NUMBER = 9.91e37
"""SCPI's not-a-number value: "no data" where an analyzer sends it instead of ``NAN``."""
SIGMAS = ("SIGMA", "SIGMB", "SIGMC")
_FUNCTION = re.compile(r"[A-Z][A-Z0-9]*")

Element = int | str
"""An input element number (from 1) or a wiring unit's total: ``SIGMA``, ``SIGMB``, ``SIGMC``."""


class EventKind(Enum):
    DIP = "DIP"
    SWELL = "SWELL"
    INTERRUPTION = "INTERRUPTION"


@dataclass(frozen=True)
class VoltageEvent:
    """One voltage event the analyzer logged; ``start_s`` on the analyzer's clock."""

    kind: EventKind
    start_s: float
    duration_s: float
    residual_pu: float
    """The extreme voltage during the event, per unit of nominal."""


@register("yokogawa-wt")
class PowerAnalyzer(VisaDriver):
    """A Yokogawa WT power analyzer; values come keyed ``"<function>,<element>"``, e.g. ``"P,SIGMA"``."""

    def __init__(self, config: DriverConfig) -> None:
        super().__init__(config)
        self._items: tuple[str, ...] | None = None

    def open(self) -> Self:
        super().open()
        try:
            self.transport.write(":COMMunicate:REMote ON")
            self.transport.write(":COMMunicate:HEADer OFF")
        except BaseException:
            self.close()
            raise
        return self

    def configure(self, items: Sequence[tuple[str, Element]]) -> None:
        """Measure ``items``, (function, element) pairs such as ``("URMS", 1)`` or ``("P", "SIGMA")``."""
        keys = [self._item_key(function, element) for function, element in items]
        if not 1 <= len(keys) <= ITEMS_MAX:
            raise LimitViolation(self.role, self.resource, NUMBER, f"{len(keys)} items: 1..{ITEMS_MAX}")
        if len(set(keys)) != len(keys):
            raise LimitViolation(self.role, self.resource, ITEM, f"items repeat: {keys}")
        self.transport.write(":NUMeric:FORMat ASCii")
        self.transport.write(f"{NUMBER} {len(keys)}")
        for k, key in enumerate(keys, start=1):
            self.transport.write(f"{ITEM}{k} {key}")
        self._items = tuple(keys)

    def read(self) -> dict[str, float | None]:
        """The latest value of every item; None where the analyzer has no data (``NAN``)."""
        items = self._items if self._items is not None else self._ask_items()
        reply = self.transport.query(VALUES)
        fields = [field.strip() for field in reply.split(",")]
        if len(fields) != len(items):
            raise GarbageReply(
                self.role, self.resource, VALUES, f"{len(fields)} values for {len(items)} items: {reply!r}"
            )
        return {
            key: self._value(text, reply) for key, text in zip(items, fields, strict=True) if key != NO_ITEM
        }

    def events(self) -> list[VoltageEvent]:
        """The voltage events logged since the last :meth:`clear_events`, oldest first."""
        count = self._integer(":EVENt:COUNt?")
        return [self._event(k) for k in range(1, count + 1)]

    def clear_events(self) -> None:
        self.transport.write(":EVENt:CLEar")

    def safe(self) -> None:
        """Nothing to switch on an analyzer: check it still answers, so a dead link does not go unnoticed."""
        command = "*OPC?"
        reply = self.transport.query(command)
        if reply != "1":
            raise GarbageReply(self.role, self.resource, command, f"expected 1, got {reply!r}")

    # ------------------------------------------------------------------ helpers

    def _item_key(self, function: str, element: Element) -> str:
        name = function.upper()
        if not _FUNCTION.fullmatch(name) or name == NO_ITEM:
            raise LimitViolation(
                self.role, self.resource, ITEM, f"function {function!r} is not a measurement"
            )
        if isinstance(element, str):
            if element.upper() not in SIGMAS:
                raise LimitViolation(
                    self.role, self.resource, ITEM, f"element {element!r}: a number or {', '.join(SIGMAS)}"
                )
            return f"{name},{element.upper()}"
        if isinstance(element, bool) or element < 1:
            raise LimitViolation(self.role, self.resource, ITEM, f"element {element!r}: numbered from 1")
        return f"{name},{element}"

    def _ask_items(self) -> tuple[str, ...]:
        count = self._integer(f"{NUMBER}?")
        items = tuple(
            self.transport.query(f"{ITEM}{k}?").replace(" ", "").upper() for k in range(1, count + 1)
        )
        self._items = items
        return items

    def _value(self, text: str, reply: str) -> float | None:
        try:
            value = float(text)
        except ValueError:
            raise GarbageReply(
                self.role, self.resource, VALUES, f"{text!r} is not a number (in {reply!r})"
            ) from None
        return None if math.isnan(value) or value == NOT_A_NUMBER else value

    def _event(self, k: int) -> VoltageEvent:
        command = f":EVENt:DATA? {k}"
        reply = self.transport.query(command)
        kind, *numbers = (field.strip() for field in reply.split(","))
        try:
            start_s, duration_s, residual_pu = (float(n) for n in numbers)
            return VoltageEvent(EventKind(kind.upper()), start_s, duration_s, residual_pu)
        except ValueError:
            raise GarbageReply(
                self.role,
                self.resource,
                command,
                f"expected <kind>,<start>,<duration>,<residual>, got {reply!r}",
            ) from None

    def _integer(self, command: str) -> int:
        value = self.transport.query_float(command)
        if not value.is_integer() or value < 0:
            raise GarbageReply(self.role, self.resource, command, f"expected a count, got {value}")
        return int(value)
