"""Chroma 17040 battery emulator in battery-simulation mode, over SCPI: one channel per emulated battery.

The command set is the 17040's battery-simulation subsystem as reference/protocols.md §5.1 lists it (from
the SunSpec SVP ``chroma_17040`` driver) and the gridhil stand-in documents it:
``BATTery:OUTPut``, ``BATTery:CAPacity`` (Ah), ``BATTery:INITial`` + ``BATTery:INITial:CAPacity`` (SOC, %),
``BATTery:ESR`` (ohm), ``BATTery:CURVe 0|1,<n>,<values>`` (OCV in V and its SOC points in %), the
protection and alarm levels, ``PROTection:CLEar``, ``MEASure:VOLTage|CURRent|POWer|SOC|STATe?``.

**Channels.** The 17040 keeps one selected channel (``CHANnel <n>``) for every client. Each per-channel
command travels in one message with its selection, ``CHANnel <n>;:BATTery:OUTPut OFF``: an instrument runs
a message whole, so no other client's selection can come between the two. The channel count is the bench
option ``channels``; without it (or 0) the driver asks at open (``CHANnel MAXimum``, ``CHANnel?``, then the
selection found is restored). Whether a real 17040 takes ``MAXimum`` there is unverified: a lab sets
``channels``.

**Fault insertion** (``FAULt:INSert``/``FAULt:CLEar``, and ``FAULt:MASK?``: what was inserted, as
:class:`InsertedFault` bits) is the stand-in's documented extension; a real 17040 answers -113 (undefined
header), raised as :class:`ExtensionMissing`, whose message says that is why.

Ranges are the stand-in's (plant scale: packs of several hundred volts), as wide as a 17040 system gets;
a bench narrows them with ``voltage_max``, ``current_max``, ``capacity_max``, ``resistance_max`` and
``soc_max`` (the highest initial SOC it may set).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum, IntFlag
from itertools import pairwise
from typing import ClassVar, Self

from drivers.base import DriverConfig, Range
from drivers.errors import (
    ConnectionLost,
    GarbageReply,
    InstrumentError,
    InstrumentRejected,
    InstrumentTimeout,
    InstrumentUnavailable,
    LimitViolation,
)
from drivers.registry import register
from drivers.visa import VisaDriver

CURVE_POINTS_MAX = 1000
UNDEFINED_HEADER = -113
OUTPUT = "BATTery:OUTPut"
_SELECT = "CHANnel"
_MASK = "FAULt:MASK?"
_SOC = Range(0.0, 100.0, "%")
"""SOC points of an OCV curve: always 0..100 %, whatever the bench's ``soc_max`` (an initial-SOC limit)."""


class FaultKind(Enum):
    """The stand-in's ``FAULt:INSert`` kinds, as sent."""

    ISOLATION = "ISOLATION"
    THERMAL = "THERMAL"
    """Internal heat (value: W)."""
    WELD = "WELD"
    OPEN = "OPEN"
    COMMS = "COMMS"
    DRIFT = "DRIFT"
    """Offset of the SOC the pack's BMS reports (value: %)."""


class InsertedFault(IntFlag):
    """``FAULt:MASK?`` bits: the kinds inserted on a channel and not cleared (0: none)."""

    ISOLATION = 1
    THERMAL = 2
    WELD = 4
    OPEN = 8
    COMMS = 16
    """The pack's BMS link is cut: what its BMS reports is frozen."""
    DRIFT = 32


class ExtensionMissing(InstrumentRejected):
    """The instrument has no gridhil fault-insertion extension: a real 17040 answers ``FAULt:`` with -113."""


_FAULT_VALUES = {FaultKind.THERMAL: Range(0.0, 1e6, "W"), FaultKind.DRIFT: Range(-100.0, 100.0, "%")}
"""The kinds that take a value, and its range."""


@dataclass(frozen=True)
class BatteryReading:
    voltage_v: float
    current_a: float
    """Positive when the battery discharges."""
    power_w: float
    soc_pct: float


@dataclass(frozen=True)
class BatteryState:
    fault_bits: int
    """The channel's fault code bits (``MEASure:STATe?`` first field); 0 when healthy."""
    output_on: bool

    @property
    def healthy(self) -> bool:
        return self.fault_bits == 0


_PROTECTION = (
    ("under_voltage_v", "BATTery:VOLP", "voltage_max"),
    ("over_voltage_v", "BATTery:VOH", "voltage_max"),
    ("low_voltage_alarm_v", "BATTery:BVL", "voltage_max"),
    ("high_voltage_alarm_v", "BATTery:BVH", "voltage_max"),
    ("soc_low_pct", "BATTery:BOL", "soc_max"),
    ("soc_high_pct", "BATTery:BOH", "soc_max"),
    ("over_current_a", "BATTery:OCP", "current_max"),
)
"""``set_protection`` keywords: (keyword, command, limit that bounds it)."""
_ORDERED = (
    ("under_voltage_v", "over_voltage_v"),
    ("low_voltage_alarm_v", "high_voltage_alarm_v"),
    ("soc_low_pct", "soc_high_pct"),
)
"""Pairs whose low level must lie below their high one when both are set."""


@register("chroma-17040")
class BatteryEmulator(VisaDriver):
    """A Chroma 17040 in battery-simulation mode; channels are numbered from 1."""

    OPTIONS = frozenset({"channels", "channel_lists"})

    RANGES: ClassVar[dict[str, Range]] = {
        "voltage_max": Range(0.0, 1000.0, "V"),
        "current_max": Range(0.0, 2000.0, "A"),
        "capacity_max": Range(0.001, 10_000.0, "Ah"),
        "resistance_max": Range(1e-6, 10.0, "ohm"),
        "soc_max": _SOC,
    }

    def __init__(self, config: DriverConfig) -> None:
        super().__init__(config)
        channels = config.option("channels", 0)
        if channels < 0:
            raise LimitViolation(self.role, self.resource, "", f"option channels = {channels}: 1 or more")
        self._channels = channels or None
        self._channel_lists = bool(config.option("channel_lists", False))

    def open(self) -> Self:
        super().open()
        if self._channels is None:
            try:
                self._channels = self._ask_channel_count()
            except BaseException:
                self.close()
                raise
        return self

    @property
    def channels(self) -> int:
        """How many channels the instrument has (bench option ``channels``, else asked at open)."""
        if self._channels is None:
            raise InstrumentError(self.role, self.resource, "", "channel count unknown: not opened yet")
        return self._channels

    def _ask_channel_count(self) -> int:
        selected = self._integer(f"{_SELECT}?")
        try:
            self.transport.write(f"{_SELECT} MAXimum")
        except InstrumentRejected as exc:
            raise InstrumentRejected(
                self.role,
                self.resource,
                exc.command,
                f"{exc.problem}; set the bench option channels",
                exc.code,
            ) from exc
        count = self._integer(f"{_SELECT}?")
        self.transport.write(f"{_SELECT} {selected}")
        if count < 1:
            raise GarbageReply(self.role, self.resource, f"{_SELECT}?", f"{count} channels")
        return count

    # ------------------------------------------------------------------ settings

    def select(self, channel: int) -> None:
        """Select ``channel`` for commands sent without one (every method here selects its own)."""
        self.transport.write(self._on(channel, ""))

    def battery_mode(self) -> None:
        """Put the outputs in battery-simulation mode (``OUTPut:MODe 1``, as the SVP driver's init)."""
        self.transport.write("OUTPut:MODe 1")

    def set_output(self, channel: int, on: bool) -> None:
        self.transport.write(self._on(channel, f"{OUTPUT} {'ON' if on else 'OFF'}"))

    def set_capacity(self, channel: int, capacity_ah: float) -> None:
        command = self._on(channel, "BATTery:CAPacity")
        value = self.check(command, "capacity", capacity_ah, "capacity_max")
        self.transport.write(f"{command} {value:.9g}")

    def set_initial_soc(self, channel: int, soc_pct: float) -> None:
        """Put the battery at ``soc_pct`` now (initial-SOC mode 0: by percentage of capacity)."""
        command = self._on(channel, "BATTery:INITial 0;:BATTery:INITial:CAPacity")
        value = self.check(command, "initial SOC", soc_pct, "soc_max")
        self.transport.write(f"{command} {value:.9g}")

    def set_resistance(self, channel: int, resistance_ohm: float) -> None:
        command = self._on(channel, "BATTery:ESR")
        value = self.check(command, "resistance", resistance_ohm, "resistance_max")
        self.transport.write(f"{command} {value:.9g}")

    def upload_ocv(self, channel: int, soc_pct: Sequence[float], volts: Sequence[float]) -> None:
        """The OCV curve: ``volts`` at ``soc_pct`` (rising strictly within 0..100 %; OCV never falling).

        Both tables go in one message (``CURVe 0`` then ``CURVe 1``), so the instrument never holds one
        new table with the other old.
        """
        command = self._on(channel, "BATTery:CURVe")
        soc, ocv = [float(p) for p in soc_pct], [float(v) for v in volts]
        if len(soc) != len(ocv) or not 2 <= len(soc) <= CURVE_POINTS_MAX:
            raise LimitViolation(
                self.role,
                self.resource,
                command,
                f"{len(soc)} SOC points and {len(ocv)} voltages: need the same number, 2..{CURVE_POINTS_MAX}",
            )
        for point in soc:
            if not _SOC.minimum <= point <= _SOC.maximum:
                raise LimitViolation(self.role, self.resource, command, f"SOC point {point} outside 0..100 %")
        for volt in ocv:
            self.check(command, "OCV point", volt, "voltage_max")
        if any(b <= a for a, b in pairwise(soc)):
            raise LimitViolation(self.role, self.resource, command, "SOC points must rise strictly")
        if any(b < a for a, b in pairwise(ocv)):
            raise LimitViolation(self.role, self.resource, command, "OCV must not fall as SOC rises")
        n = len(soc)
        tables = ";:".join(
            f"BATTery:CURVe {number},{n},{','.join(f'{v:.9g}' for v in values)}"
            for number, values in ((0, ocv), (1, soc))
        )
        self.transport.write(self._on(channel, tables))

    def set_protection(
        self,
        channel: int,
        *,
        under_voltage_v: float | None = None,
        over_voltage_v: float | None = None,
        low_voltage_alarm_v: float | None = None,
        high_voltage_alarm_v: float | None = None,
        soc_low_pct: float | None = None,
        soc_high_pct: float | None = None,
        over_current_a: float | None = None,
    ) -> None:
        """Set the given protection (VOLP/VOH/OCP) and alarm (BVL/BVH, SOC BOL/BOH) levels in one message."""
        given = {
            name: value
            for name, value in (
                ("under_voltage_v", under_voltage_v),
                ("over_voltage_v", over_voltage_v),
                ("low_voltage_alarm_v", low_voltage_alarm_v),
                ("high_voltage_alarm_v", high_voltage_alarm_v),
                ("soc_low_pct", soc_low_pct),
                ("soc_high_pct", soc_high_pct),
                ("over_current_a", over_current_a),
            )
            if value is not None
        }
        command = self._on(channel, "BATTery:<protection>")
        if not given:
            raise LimitViolation(self.role, self.resource, command, "no protection level given")
        parts = [
            f"{header} {self.check(self._on(channel, header), name, given[name], limit):.9g}"
            for name, header, limit in _PROTECTION
            if name in given
        ]
        for low, high in _ORDERED:
            if low in given and high in given and not given[low] < given[high]:
                raise LimitViolation(
                    self.role,
                    self.resource,
                    command,
                    f"{low} = {given[low]} must be below {high} = {given[high]}",
                )
        self.transport.write(self._on(channel, ";:".join(parts)))

    def clear_protection(self, channel: int) -> None:
        """Reset the channel's latched protection trips (the output stays off until switched on)."""
        self.transport.write(self._on(channel, "PROTection:CLEar"))

    # ------------------------------------------------------------------ fault insertion (stand-in only)

    def insert_fault(self, channel: int, kind: FaultKind, value: float | None = None) -> None:
        command = self._on(channel, f"FAULt:INSert {kind.value}")
        allowed = _FAULT_VALUES.get(kind)
        if value is not None:
            if allowed is None:
                raise LimitViolation(self.role, self.resource, command, f"{kind.value} takes no value")
            if not allowed.minimum <= value <= allowed.maximum:
                raise LimitViolation(
                    self.role,
                    self.resource,
                    command,
                    f"{kind.value} value {value} outside {allowed.minimum}..{allowed.maximum} {allowed.unit}",
                )
            command = f"{command},{value:.9g}"
        with self._extension():
            self.transport.write(command)

    def clear_fault(self, channel: int, kind: FaultKind) -> None:
        with self._extension():
            self.transport.write(self._on(channel, f"FAULt:CLEar {kind.value}"))

    def injected(self, channel: int) -> InsertedFault:
        """The kinds inserted on ``channel`` and not cleared (``FAULt:MASK?``)."""
        command = self._on(channel, _MASK)
        with self._extension():
            return self._masks(command, self.transport.query_floats(command))[0]

    def injected_all(self) -> list[InsertedFault]:
        """Every channel's :meth:`injected`, in channel order (one query with ``channel_lists``)."""
        if not self._channel_lists:
            return [self.injected(channel) for channel in range(1, self.channels + 1)]
        with self._extension():
            return self._masks(f"{_MASK} (@1:{self.channels})", self._listed(_MASK, 1))

    def _masks(self, command: str, values: list[float]) -> list[InsertedFault]:
        if not all(value.is_integer() and value >= 0 for value in values):
            raise GarbageReply(self.role, self.resource, command, f"expected fault masks, got {values[:8]}")
        return [InsertedFault(int(value)) for value in values]

    @contextmanager
    def _extension(self) -> Iterator[None]:
        """The -113 of an instrument without the fault-insertion extension, as :class:`ExtensionMissing`."""
        try:
            yield
        except InstrumentRejected as exc:
            if exc.code != UNDEFINED_HEADER:
                raise
            raise ExtensionMissing(
                self.role,
                self.resource,
                exc.command,
                f"{exc.problem}: fault insertion is the gridhil stand-in's extension, "
                "a real Chroma 17040 has none (insert faults with the relay box)",
                exc.code,
            ) from exc

    # ------------------------------------------------------------------ measurements

    def measure(self, channel: int) -> BatteryReading:
        return BatteryReading(
            *(
                self.transport.query_float(self._on(channel, f"MEASure:{quantity}?"))
                for quantity in ("VOLTage", "CURRent", "POWer", "SOC")
            )
        )

    def state(self, channel: int) -> BatteryState:
        """The fault bits and whether the output is on (``MEASure:STATe?``)."""
        command = self._on(channel, "MEASure:STATe?")
        return self._states(command, self.transport.query_floats(command), 1)[0]

    def measure_all(self) -> list[BatteryReading]:
        """Every channel's :meth:`measure`, in channel order.

        With the bench option ``channel_lists`` (an instrument that takes SCPI channel lists on its
        ``MEASure`` queries, as the simulated one does): four queries for the whole instrument;
        otherwise four per channel.
        """
        if not self._channel_lists:
            return [self.measure(channel) for channel in range(1, self.channels + 1)]
        columns = [
            self._listed(f"MEASure:{quantity}?", 1) for quantity in ("VOLTage", "CURRent", "POWer", "SOC")
        ]
        return [BatteryReading(*values) for values in zip(*columns, strict=True)]

    def state_all(self) -> list[BatteryState]:
        """Every channel's :meth:`state`, in channel order (one query with ``channel_lists``)."""
        if not self._channel_lists:
            return [self.state(channel) for channel in range(1, self.channels + 1)]
        return self._states("MEASure:STATe?", self._listed("MEASure:STATe?", 2), self.channels)

    def _listed(self, query: str, fields: int) -> list[float]:
        """``query`` for the channel list of every channel; GarbageReply unless ``fields`` per channel."""
        command = f"{query} (@1:{self.channels})"
        values = self.transport.query_floats(command)
        if len(values) != fields * self.channels:
            raise GarbageReply(
                self.role,
                self.resource,
                command,
                f"expected {fields * self.channels} values for {self.channels} channels, got {len(values)}",
            )
        return values

    def _states(self, command: str, values: list[float], channels: int) -> list[BatteryState]:
        well_formed = all(
            bits.is_integer() and bits >= 0 and on in (0.0, 1.0)
            for bits, on in zip(values[::2], values[1::2], strict=False)
        )
        if len(values) != 2 * channels or not well_formed:
            raise GarbageReply(
                self.role,
                self.resource,
                command,
                f"expected <fault bits>,<0|1> per channel, got {values[:8]}",
            )
        return [BatteryState(int(bits), bool(on)) for bits, on in zip(values[::2], values[1::2], strict=True)]

    # ------------------------------------------------------------------ safe state

    def safe(self) -> None:
        """Every channel's output off: tries every channel, then raises one error naming each failure.

        A channel that refuses (a welded contactor, say) does not stop the others. A link that is
        gone does: after a timeout or a lost connection the remaining channels cannot be reached
        either, and trying each would cost a timeout per channel (an 805-channel bench: half an hour).
        """
        failures = []
        for channel in range(1, self.channels + 1):
            try:
                self.set_output(channel, False)
            except (InstrumentTimeout, ConnectionLost, InstrumentUnavailable) as exc:
                failures.append(f"channel {channel}: {exc.problem}; channels {channel + 1}.. not tried")
                break
            except InstrumentError as exc:
                failures.append(f"channel {channel}: {exc.problem}")
        if failures:
            raise InstrumentError(
                self.role,
                self.resource,
                f"{OUTPUT} OFF",
                f"{len(failures)} of {self.channels} channels not switched off: {'; '.join(failures)}",
            )

    # ------------------------------------------------------------------ helpers

    def _on(self, channel: int, command: str) -> str:
        """``command`` in one message with the selection of ``channel`` (checked first)."""
        selection = f"{_SELECT} {channel}"
        if not 1 <= channel <= self.channels:
            raise LimitViolation(
                self.role,
                self.resource,
                f"{selection};:{command}",
                f"no channel {channel} (1..{self.channels})",
            )
        return f"{selection};:{command}" if command else selection

    def _integer(self, command: str) -> int:
        value = self.transport.query_float(command)
        if not value.is_integer():
            raise GarbageReply(self.role, self.resource, command, f"expected an integer, got {value}")
        return int(value)
