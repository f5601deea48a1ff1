"""The voltage event log a power-quality analyzer keeps for the rack bus.

Classification follows the usual IEC 61000-4-30 convention: a dip starts when the voltage falls
below ``dip_pu`` and ends when it is back above ``dip_pu + hysteresis_pu``; it is an interruption
when the residual voltage fell below ``interruption_pu``; a swell is the mirror image above
``swell_pu``. Times are resolved to the plant's sub-step (1 ms during disturbances).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class VoltageEventKind(Enum):
    DIP = "dip"
    SWELL = "swell"
    INTERRUPTION = "interruption"


@dataclass(frozen=True)
class VoltageEvent:
    kind: VoltageEventKind
    start_s: float
    duration_s: float
    residual_pu: float
    """Lowest voltage of a dip or interruption, highest of a swell."""


@dataclass
class VoltageEventLog:
    dip_pu: float = 0.9
    swell_pu: float = 1.1
    interruption_pu: float = 0.05
    hysteresis_pu: float = 0.02
    events: list[VoltageEvent] = field(default_factory=list)
    _start_s: float | None = field(default=None, repr=False)
    _swell: bool = field(default=False, repr=False)
    _extreme_pu: float = field(default=1.0, repr=False)

    def update(self, t: float, dt: float, voltage_pu: float) -> None:
        """Account for the bus holding ``voltage_pu`` over ``[t, t + dt)``."""
        if self._start_s is None:
            if voltage_pu < self.dip_pu:
                self._begin(t, swell=False, voltage_pu=voltage_pu)
            elif voltage_pu > self.swell_pu:
                self._begin(t, swell=True, voltage_pu=voltage_pu)
            return
        if self._swell:
            if voltage_pu < self.swell_pu - self.hysteresis_pu:
                self._finish(t)
                self.update(t, dt, voltage_pu)
            else:
                self._extreme_pu = max(self._extreme_pu, voltage_pu)
        elif voltage_pu > self.dip_pu + self.hysteresis_pu:
            self._finish(t)
            self.update(t, dt, voltage_pu)
        else:
            self._extreme_pu = min(self._extreme_pu, voltage_pu)

    def in_progress(self, t: float) -> VoltageEvent | None:
        """The event still going on at ``t``, as it stands so far."""
        if self._start_s is None:
            return None
        return self._event(t)

    def _begin(self, t: float, swell: bool, voltage_pu: float) -> None:
        self._start_s = t
        self._swell = swell
        self._extreme_pu = voltage_pu

    def _finish(self, t: float) -> None:
        self.events.append(self._event(t))
        self._start_s = None

    def _event(self, t: float) -> VoltageEvent:
        assert self._start_s is not None
        if self._swell:
            kind = VoltageEventKind.SWELL
        elif self._extreme_pu < self.interruption_pu:
            kind = VoltageEventKind.INTERRUPTION
        else:
            kind = VoltageEventKind.DIP
        return VoltageEvent(kind, self._start_s, t - self._start_s, self._extreme_pu)
