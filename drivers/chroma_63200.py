"""Chroma 63200 DC electronic load, SCPI over a serial line (``ASRL...::INSTR``): it plays the racks.

Commands as the SunSpec SVP ``loadsim_chroma_63200`` driver and the 63200 manual use them
(reference/protocols.md §5.4) and the gridhil stand-in documents them: ``CONFigure:REMote ON`` (sent at
open: the 63200 takes settings over the serial line only in remote), ``MODE``, ``POWer:STATic:L1``, the
dynamic-current subsystem ``CURRent:DYNamic:L1|L2|T1|T2|RISE|FALL``, ``LOAD ON|OFF``, ``POWer:LIMit``,
``MEASure:VOLTage|CURRent|POWer?``. The high range (``CPH``, ``CCDH``) is used throughout.

A mode's settings go in before the mode itself, so a running load switches from the old profile to the
complete new one, never through a half-set one. ``LIST`` (:meth:`ElectronicLoad.program`) is the
stand-in's list mode (``LIST:POWer``, ``LIST:DWELl``); the real 63200's stored programs are not covered.

Dynamic mode is current-based on the 63200; :meth:`ElectronicLoad.dynamic` takes watts and converts them
at the bus voltage: the bench option ``nominal_voltage_v`` if set, else what the load measures now.

Limit: ``power_max`` (the family range spans plant scale, racks of up to 50 MW, because the stand-in
plays them at that scale; a lab narrows it to its load's rating).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Self

from drivers.base import DriverConfig, Range
from drivers.errors import InstrumentError, LimitViolation
from drivers.registry import register
from drivers.visa import VisaDriver

REMOTE = "CONFigure:REMote ON"
MODE = "MODE"
STATIC_POWER = "POWer:STATic:L1"
DYNAMIC = "CURRent:DYNamic"
POWER_LIMIT = "POWer:LIMit"
DWELL_S = Range(0.001, 100_000.0, "s")
LIST_STEPS_MAX = 100


@dataclass(frozen=True)
class LoadStep:
    """One step of a list: draw ``power_w`` for ``dwell_s``."""

    power_w: float
    dwell_s: float


@dataclass(frozen=True)
class LoadReading:
    voltage_v: float
    current_a: float
    power_w: float


@register("chroma-63200")
class ElectronicLoad(VisaDriver):
    """A Chroma 63200-series DC electronic load on a serial VISA resource."""

    OPTIONS = frozenset({"nominal_voltage_v"})

    RANGES: ClassVar[dict[str, Range]] = {"power_max": Range(0.0, 50e6, "W")}

    def __init__(self, config: DriverConfig) -> None:
        super().__init__(config)
        self.nominal_voltage_v = config.option("nominal_voltage_v", 0.0)
        if self.nominal_voltage_v < 0.0:
            raise LimitViolation(
                self.role, self.resource, "", f"option nominal_voltage_v = {self.nominal_voltage_v} V: > 0"
            )

    def open(self) -> Self:
        super().open()
        try:
            self.transport.write(REMOTE)
        except BaseException:
            self.close()
            raise
        return self

    def on(self) -> None:
        self.transport.write("LOAD ON")

    def off(self) -> None:
        self.transport.write("LOAD OFF")

    def constant_power(self, w: float) -> None:
        """Draw ``w`` watts (constant-power mode, ``CPH``)."""
        value = self._watts(STATIC_POWER, "power", w)
        self.transport.write(f"{STATIC_POWER} {value:.9g}")
        self.transport.write(f"{MODE} CPH")

    def dynamic(self, low_w: float, high_w: float, low_s: float, high_s: float, edge_s: float) -> None:
        """Swing between ``low_w`` (for ``low_s``) and ``high_w`` (for ``high_s``), ``edge_s`` per edge.

        The 63200's dynamic-current mode (``CCDH``): L1/T1 the low level and its time, L2/T2 the high
        one, rise and fall slew rates (A/us) such that each edge takes ``edge_s``.
        """
        low = self._watts(f"{DYNAMIC}:L1", "low power", low_w)
        high = self._watts(f"{DYNAMIC}:L2", "high power", high_w)
        if low > high:
            raise LimitViolation(
                self.role, self.resource, f"{DYNAMIC}:L1", f"low power {low} W above high power {high} W"
            )
        for header, seconds in ((f"{DYNAMIC}:T1", low_s), (f"{DYNAMIC}:T2", high_s)):
            self._seconds(header, seconds)
        if not 0.0 < edge_s < float("inf"):
            raise LimitViolation(self.role, self.resource, f"{DYNAMIC}:RISE", f"edge time {edge_s} s: > 0")
        volts = self._bus_voltage_v(DYNAMIC)
        low_a, high_a = low / volts, high / volts
        slew_a_per_us = (high_a - low_a) / (edge_s * 1e6) if high_a > low_a else 1.0  # no swing: any slew
        for command in (
            f"{DYNAMIC}:L1 {low_a:.9g}",
            f"{DYNAMIC}:L2 {high_a:.9g}",
            f"{DYNAMIC}:T1 {low_s:.9g}",
            f"{DYNAMIC}:T2 {high_s:.9g}",
            f"{DYNAMIC}:RISE {slew_a_per_us:.9g}",
            f"{DYNAMIC}:FALL {slew_a_per_us:.9g}",
            f"{MODE} CCDH",
        ):
            self.transport.write(command)

    def program(self, steps: Sequence[LoadStep]) -> None:
        """List mode: each step's power for its dwell from when the load goes on, then the static power.

        The list replaces any other; a list that is playing is left first (``CPH``) so that a list of
        another length can go in.
        """
        if not 1 <= len(steps) <= LIST_STEPS_MAX:
            raise LimitViolation(
                self.role, self.resource, "LIST", f"{len(steps)} steps: a list holds 1..{LIST_STEPS_MAX}"
            )
        powers = [self._watts("LIST:POWer", "power", step.power_w) for step in steps]
        dwells = [self._seconds("LIST:DWELl", step.dwell_s) for step in steps]
        if self.transport.query(f"{MODE}?").upper() == "LIST":
            self.transport.write(f"{MODE} CPH")
        for header, values in (("LIST:POWer", powers), ("LIST:DWELl", dwells)):
            self.transport.write(f"{header} {','.join(f'{v:.9g}' for v in values)}")
        self.transport.write(f"{MODE} LIST")

    def power_limit(self, w: float | None) -> None:
        """Never draw more than ``w`` watts, whatever the mode asks; None: no limit."""
        if w is None:
            self.transport.write(f"{POWER_LIMIT} INFinity")
            return
        value = self._watts(POWER_LIMIT, "power limit", w)
        self.transport.write(f"{POWER_LIMIT} {value:.9g}")

    def measure(self) -> LoadReading:
        return LoadReading(
            *(
                self.transport.query_float(f"MEASure:{quantity}?")
                for quantity in ("VOLTage", "CURRent", "POWer")
            )
        )

    def safe(self) -> None:
        """The load off."""
        self.off()

    # ------------------------------------------------------------------ helpers

    def _watts(self, command: str, setting: str, w: float) -> float:
        return self.check(command, setting, w, "power_max")

    def _seconds(self, command: str, seconds: float) -> float:
        if not DWELL_S.minimum <= seconds <= DWELL_S.maximum:
            raise LimitViolation(
                self.role,
                self.resource,
                command,
                f"{seconds} s outside {DWELL_S.minimum}..{DWELL_S.maximum} s",
            )
        return seconds

    def _bus_voltage_v(self, command: str) -> float:
        """The voltage that converts watts to amperes: the option, else the measured bus voltage."""
        if self.nominal_voltage_v > 0.0:
            return self.nominal_voltage_v
        volts = self.transport.query_float("MEASure:VOLTage?")
        if not volts > 0.0:
            raise InstrumentError(
                self.role,
                self.resource,
                command,
                f"cannot convert watts to amperes: the bus reads {volts} V (set option nominal_voltage_v)",
            )
        return volts
