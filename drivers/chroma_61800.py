"""Chroma 61800/61845 regenerative grid simulator over SCPI: the utility grid the microgrid sees.

Commands as the SunSpec SVP ``chroma_61845`` driver sends them to real units (reference/protocols.md §5.2)
and the gridhil stand-in documents them. Voltages are line-to-neutral rms, as the 61800 programs them.

- The output is live while ``OUTPut:STATe`` and the output relay (``OUTPut:RELay``) are both on.
  :meth:`GridSimulator.output` switches the source; :meth:`~GridSimulator.outage` opens the relay, so the
  equipment sees the grid disconnected (an open circuit, as a utility breaker opening), not a source at
  0 V; :meth:`~GridSimulator.restore` closes it again.
- LIST mode plays timed steps (dwell in ms on the wire, voltage and frequency ramping from a start to an
  end value within each step), in the order the SVP driver programs it: trigger off, FIXED mode, the list
  settings and columns, LIST mode, trigger on. ``TRIGger:STATe?`` is ``RUNNING`` while it plays.

Bench options: ``safe_policy`` = ``"off"`` (default; :meth:`~GridSimulator.safe` switches the output off)
or ``"nominal"`` (stop any list, back to ``nominal_voltage_v`` (line-to-neutral) and
``nominal_frequency_hz``, relay closed, output on: the grid a controller expects to find).
Limits: ``voltage_max``, ``frequency_min``, ``frequency_max``, ``current_max``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import ClassVar

from drivers.base import DriverConfig, Range
from drivers.errors import GarbageReply, LimitViolation
from drivers.registry import register
from drivers.visa import VisaDriver

VOLTAGE = "SOURce:VOLTage:LEVel:IMMediate:AMPLitude:AC"
FREQUENCY = "SOURce:FREQuency:IMMediate"
CURRENT_LIMIT = "SOURce:CURRent:LIMit"
OUTPUT = "OUTPut:STATe"
RELAY = "OUTPut:RELay"
MODE = "OUTPut:MODE"
TRIGGER = "TRIGger:STATe"
LIST_STEPS_MAX = 100
DWELL_MS = Range(0.1, 99_999_999.9, "ms")
COUNT_MAX = 65_535
_FREQUENCY = Range(15.0, 1000.0, "Hz")
_RUNNING = {"RUNNING": True, "RUN": True, "OFF": False}
"""``TRIGger:STATe?`` replies (long or short form)."""


class SafePolicy(Enum):
    OFF = "off"
    NOMINAL = "nominal"


@dataclass(frozen=True)
class ListStep:
    """One LIST step: ``dwell_s`` long, voltage (line-to-neutral) and frequency ramping start -> end."""

    dwell_s: float
    voltage_start_v: float
    voltage_end_v: float
    frequency_start_hz: float
    frequency_end_hz: float

    @classmethod
    def hold(cls, dwell_s: float, voltage_v: float, frequency_hz: float) -> ListStep:
        """A flat step: ``voltage_v`` and ``frequency_hz`` for ``dwell_s``."""
        return cls(dwell_s, voltage_v, voltage_v, frequency_hz, frequency_hz)


@dataclass(frozen=True)
class GridReading:
    voltage_v: float
    """Line-to-neutral rms."""
    frequency_hz: float
    current_a: float
    """Per-phase rms."""
    power_w: float
    """Total of the phases, positive into the equipment."""


@register("chroma-61800")
class GridSimulator(VisaDriver):
    """A Chroma 61800-series regenerative grid simulator (61845 and kin)."""

    OPTIONS = frozenset({"safe_policy", "nominal_voltage_v", "nominal_frequency_hz"})

    RANGES: ClassVar[dict[str, Range]] = {
        "voltage_max": Range(0.0, 300.0, "V"),
        "frequency_min": _FREQUENCY,
        "frequency_max": _FREQUENCY,
        "current_max": Range(0.0, 100.0, "A"),
    }

    def __init__(self, config: DriverConfig) -> None:
        super().__init__(config)
        policy = config.option("safe_policy", SafePolicy.OFF.value)
        try:
            self.safe_policy = SafePolicy(policy)
        except ValueError:
            known = ", ".join(p.value for p in SafePolicy)
            raise LimitViolation(
                self.role, self.resource, "", f"option safe_policy = {policy!r}: one of {known}"
            ) from None
        low, high = self._frequency_floor(), self.ceiling("frequency_max")
        if low > high:
            raise LimitViolation(
                self.role, self.resource, "", f"limits frequency_min {low} Hz > frequency_max {high} Hz"
            )
        self.nominal_voltage_v = config.option("nominal_voltage_v", 0.0)
        self.nominal_frequency_hz = config.option("nominal_frequency_hz", 0.0)
        if self.safe_policy is SafePolicy.NOMINAL:
            self.check(
                "safe (option nominal_voltage_v)", "nominal voltage", self.nominal_voltage_v, "voltage_max"
            )
            self._check_frequency("safe (option nominal_frequency_hz)", self.nominal_frequency_hz)
            if self.nominal_voltage_v <= 0.0:
                raise LimitViolation(
                    self.role, self.resource, "", "safe_policy nominal needs option nominal_voltage_v > 0"
                )

    # ------------------------------------------------------------------ fixed output

    def set_voltage(self, v_ln: float) -> None:
        """The output voltage, line-to-neutral rms (V)."""
        value = self.check(VOLTAGE, "voltage", v_ln, "voltage_max")
        self.transport.write(f"{VOLTAGE} {value:.9g}")

    def set_frequency(self, hz: float) -> None:
        value = self._check_frequency(FREQUENCY, hz)
        self.transport.write(f"{FREQUENCY} {value:.9g}")

    def set_current_limit(self, a: float) -> None:
        """The per-phase rms current limit (A)."""
        value = self.check(CURRENT_LIMIT, "current limit", a, "current_max")
        self.transport.write(f"{CURRENT_LIMIT} {value:.9g}")

    def output(self, on: bool) -> None:
        self.transport.write(f"{OUTPUT} {'ON' if on else 'OFF'}")

    def outage(self) -> None:
        """The grid goes away now: the output relay opens (the source keeps its settings)."""
        self.transport.write(f"{RELAY} OFF")

    def restore(self) -> None:
        """The grid comes back now: the output relay closes."""
        self.transport.write(f"{RELAY} ON")

    # ------------------------------------------------------------------ LIST mode

    def play(self, steps: Sequence[ListStep], count: int = 1) -> None:
        """Play ``steps`` ``count`` times from now (LIST mode); the output must be on.

        Every value is checked before anything is sent.
        """
        if not 1 <= len(steps) <= LIST_STEPS_MAX:
            raise LimitViolation(
                self.role, self.resource, "LIST", f"{len(steps)} steps: a list holds 1..{LIST_STEPS_MAX}"
            )
        if not 1 <= count <= COUNT_MAX:
            raise LimitViolation(
                self.role, self.resource, "LIST:COUNt", f"count {count} outside 1..{COUNT_MAX}"
            )
        dwell_ms = []
        for step in steps:
            ms = step.dwell_s * 1000.0
            if not DWELL_MS.minimum <= ms <= DWELL_MS.maximum:
                raise LimitViolation(
                    self.role,
                    self.resource,
                    "LIST:DWELl",
                    f"dwell {step.dwell_s} s outside {DWELL_MS.minimum}..{DWELL_MS.maximum} ms",
                )
            dwell_ms.append(ms)
            for v in (step.voltage_start_v, step.voltage_end_v):
                self.check("LIST:VOLTage:AC", "voltage", v, "voltage_max")
            for hz in (step.frequency_start_hz, step.frequency_end_hz):
                self._check_frequency("LIST:FREQuency", hz)
        columns = (
            ("LIST:DWELl", dwell_ms),
            ("LIST:VOLTage:AC:STARt", [s.voltage_start_v for s in steps]),
            ("LIST:VOLTage:AC:END", [s.voltage_end_v for s in steps]),
            ("LIST:FREQuency:STARt", [s.frequency_start_hz for s in steps]),
            ("LIST:FREQuency:END", [s.frequency_end_hz for s in steps]),
        )
        for command in (
            f"{TRIGGER} OFF",
            f"{MODE} FIXED",
            "LIST:COUPle ALL",
            f"LIST:COUNt {count}",
            "LIST:BASE TIME",
            "LIST:TRIGger AUTO",
            f"LIST:SHAPe {','.join('A' * len(steps))}",
            *(f"{header} {','.join(f'{v:.9g}' for v in values)}" for header, values in columns),
            f"{MODE} LIST",
            f"{TRIGGER} ON",
        ):
            self.transport.write(command)

    def list_running(self) -> bool:
        command = f"{TRIGGER}?"
        reply = self.transport.query(command)
        running = _RUNNING.get(reply.upper())
        if running is None:
            raise GarbageReply(self.role, self.resource, command, f"expected RUNNING or OFF, got {reply!r}")
        return running

    def stop_list(self) -> None:
        """Stop a running list; the fixed voltage and frequency take over (FIXED mode)."""
        self.transport.write(f"{TRIGGER} OFF")
        self.transport.write(f"{MODE} FIXED")

    # ------------------------------------------------------------------ measurements and safe state

    def measure(self) -> GridReading:
        return GridReading(
            *(
                self.transport.query_float(f"MEASure:{quantity}?")
                for quantity in ("VOLTage:AC", "FREQuency", "CURRent:AC", "POWer:AC")
            )
        )

    def safe(self) -> None:
        """Per ``safe_policy``: the output off, or back to the nominal grid with the output on."""
        if self.safe_policy is SafePolicy.OFF:
            self.output(False)
            return
        self.stop_list()
        self.set_voltage(self.nominal_voltage_v)
        self.set_frequency(self.nominal_frequency_hz)
        self.restore()
        self.output(True)

    # ------------------------------------------------------------------ limits

    def _frequency_floor(self) -> float:
        return float(self.config.limits.get("frequency_min", _FREQUENCY.minimum))

    def _check_frequency(self, command: str, hz: float) -> float:
        """``hz`` if within ``frequency_min``..``frequency_max`` (as the bench narrowed them)."""
        low = self._frequency_floor()
        if hz < low:
            raise LimitViolation(
                self.role, self.resource, command, f"frequency = {hz} Hz is below {low} Hz (frequency_min)"
            )
        return self.check(command, "frequency", hz, "frequency_max")
