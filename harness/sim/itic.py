"""The ITIC (CBEMA) and SEMI F47 voltage-tolerance envelopes, and a rack PSU's ride-through monitor.

Curves follow reference/domain.md §1.1, §1.2 and §6: the ITIC polygons of the Open Power Quality
project (500 ms, not 5,000 ms), interpolated linearly in duration between the vertices as that
polygon test does. Voltages are RMS per unit of nominal; durations are seconds.
"""

from __future__ import annotations

from enum import Enum

ITIC_LOWER_POINTS: tuple[tuple[float, float], ...] = (
    (0.020, 0.0),
    (0.020, 0.70),
    (0.5, 0.70),
    (0.5, 0.80),
    (10.0, 0.80),
    (10.0, 0.90),
)
"""Lower ITIC boundary as (duration_s, pu): below it lies the no-damage region."""

ITIC_UPPER_POINTS: tuple[tuple[float, float], ...] = (
    (0.167e-3, 5.0),
    (1e-3, 2.0),
    (3e-3, 1.4),
    (3e-3, 1.2),
    (0.020, 1.2),
    (0.5, 1.2),
    (0.5, 1.1),
    (10.0, 1.1),
)
"""Upper ITIC boundary as (duration_s, pu): above it lies the prohibited region."""

SEMI_F47_POINTS: tuple[tuple[float, float], ...] = (
    (0.05, 0.5),
    (0.2, 0.5),
    (0.2, 0.7),
    (0.5, 0.7),
    (0.5, 0.8),
    (1.0, 0.8),
    (1.0, 0.9),
)
"""SEMI F47-0706 mandatory sag ride-through curve as (duration_s, pu)."""

_T_UPPER_PEAK_S, _V_UPPER_PEAK = ITIC_UPPER_POINTS[0]
_T_UPPER_1MS_S, _V_UPPER_1MS = ITIC_UPPER_POINTS[1]
_T_UPPER_STEP_S, _V_UPPER_3MS = ITIC_UPPER_POINTS[2]
_V_UPPER_SHORT = ITIC_UPPER_POINTS[3][1]
_T_UPPER_SHORT_END_S = ITIC_UPPER_POINTS[5][0]
_V_UPPER_STEADY = ITIC_UPPER_POINTS[6][1]

_T_ZERO_ALLOWED_S = ITIC_LOWER_POINTS[0][0]
_V_LOWER_SHORT = ITIC_LOWER_POINTS[1][1]
_T_LOWER_SHORT_END_S = ITIC_LOWER_POINTS[2][0]
_V_LOWER_MEDIUM = ITIC_LOWER_POINTS[3][1]
_T_LOWER_MEDIUM_END_S = ITIC_LOWER_POINTS[4][0]
_V_LOWER_STEADY = ITIC_LOWER_POINTS[5][1]

_T_F47_MANDATED_FROM_S = SEMI_F47_POINTS[0][0]
_V_F47_HALF = SEMI_F47_POINTS[0][1]
_T_F47_HALF_END_S = SEMI_F47_POINTS[1][0]
_V_F47_SEVENTY = SEMI_F47_POINTS[2][1]
_T_F47_SEVENTY_END_S = SEMI_F47_POINTS[3][0]
_V_F47_EIGHTY = SEMI_F47_POINTS[4][1]
_T_F47_EIGHTY_END_S = SEMI_F47_POINTS[5][0]
_V_F47_BEYOND = SEMI_F47_POINTS[6][1]

_TIME_TOLERANCE_S = 1e-9
"""Slack on duration comparisons so that summing 1 ms steps does not end a 16 ms hold-up at 16 ms."""


class ItiRegion(Enum):
    """Where a (residual voltage, duration) event lies on the ITIC chart."""

    NO_INTERRUPTION = "no_interruption"
    NO_DAMAGE = "no_damage"
    PROHIBITED = "prohibited"


def _check_event(residual_pu: float, duration_s: float) -> None:
    if not residual_pu >= 0.0:
        raise ValueError(f"residual_pu must be >= 0, got {residual_pu}")
    if not duration_s >= 0.0:
        raise ValueError(f"duration_s must be >= 0, got {duration_s}")


def _interpolate(x: float, x0: float, y0: float, x1: float, y1: float) -> float:
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


def itic_lower_pu(duration_s: float) -> float:
    """Lowest RMS voltage (pu) the ITIC curve guarantees ITE tolerates for an event of ``duration_s``.

    An event exactly on a vertical edge of the polygon (e.g. 0.70 pu for 0.5 s) is tolerated.
    """
    if not duration_s >= 0.0:
        raise ValueError(f"duration_s must be >= 0, got {duration_s}")
    if duration_s <= _T_ZERO_ALLOWED_S:
        return 0.0
    if duration_s <= _T_LOWER_SHORT_END_S:
        return _V_LOWER_SHORT
    if duration_s <= _T_LOWER_MEDIUM_END_S:
        return _V_LOWER_MEDIUM
    return _V_LOWER_STEADY


def itic_upper_pu(duration_s: float) -> float:
    """Highest voltage (pu) the ITIC curve guarantees ITE tolerates for an event of ``duration_s``.

    Shorter than 0.01 cycle the curve is held at its 500 % start.
    """
    if not duration_s >= 0.0:
        raise ValueError(f"duration_s must be >= 0, got {duration_s}")
    if duration_s <= _T_UPPER_PEAK_S:
        return _V_UPPER_PEAK
    if duration_s <= _T_UPPER_1MS_S:
        return _interpolate(duration_s, _T_UPPER_PEAK_S, _V_UPPER_PEAK, _T_UPPER_1MS_S, _V_UPPER_1MS)
    if duration_s <= _T_UPPER_STEP_S:
        return _interpolate(duration_s, _T_UPPER_1MS_S, _V_UPPER_1MS, _T_UPPER_STEP_S, _V_UPPER_3MS)
    if duration_s <= _T_UPPER_SHORT_END_S:
        return _V_UPPER_SHORT
    return _V_UPPER_STEADY


def itic_region(residual_pu: float, duration_s: float) -> ItiRegion:
    """Classify a sag (residual < 1) or swell (residual > 1) lasting ``duration_s`` on the ITIC chart."""
    _check_event(residual_pu, duration_s)
    if residual_pu < itic_lower_pu(duration_s):
        return ItiRegion.NO_DAMAGE
    if residual_pu > itic_upper_pu(duration_s):
        return ItiRegion.PROHIBITED
    return ItiRegion.NO_INTERRUPTION


def semi_f47_lower_pu(duration_s: float) -> float:
    """Lowest voltage (pu) SEMI F47 requires equipment to ride through for a sag of ``duration_s``.

    F47 mandates nothing for sags of 50 ms or less (it recommends riding through 0 % for one cycle):
    any residual is accepted there. Beyond 1 s F47 says nothing either, and anything under 0.9 pu is
    no longer a tolerated sag.
    """
    if not duration_s >= 0.0:
        raise ValueError(f"duration_s must be >= 0, got {duration_s}")
    if duration_s <= _T_F47_MANDATED_FROM_S:
        return 0.0
    if duration_s <= _T_F47_HALF_END_S:
        return _V_F47_HALF
    if duration_s <= _T_F47_SEVENTY_END_S:
        return _V_F47_SEVENTY
    if duration_s <= _T_F47_EIGHTY_END_S:
        return _V_F47_EIGHTY
    return _V_F47_BEYOND


def semi_f47_ok(residual_pu: float, duration_s: float) -> bool:
    """True if F47-compliant equipment must ride through this event. Swells are outside F47: True."""
    _check_event(residual_pu, duration_s)
    return residual_pu >= semi_f47_lower_pu(duration_s)


def _swell_allowance_s(peak_pu: float) -> float:
    """How long the upper ITIC curve lets the bus sit above 1.2 pu, given the highest value reached."""
    if peak_pu <= _V_UPPER_3MS:
        return _T_UPPER_STEP_S
    if peak_pu <= _V_UPPER_1MS:
        return _interpolate(peak_pu, _V_UPPER_3MS, _T_UPPER_STEP_S, _V_UPPER_1MS, _T_UPPER_1MS_S)
    if peak_pu <= _V_UPPER_PEAK:
        return _interpolate(peak_pu, _V_UPPER_1MS, _T_UPPER_1MS_S, _V_UPPER_PEAK, _T_UPPER_PEAK_S)
    return 0.0


class RideThroughMonitor:
    """Whether a rack PSU is still within tolerance, fed the bus RMS voltage step by step.

    It times the present excursion below each lower ITIC level (0.9, 0.8, 0.7 pu) and above each upper
    one (1.1, 1.2 pu); an excursion resets when the voltage comes back across its level. The racks
    are out of tolerance once an excursion outlasts what the curve allows at that level, except that
    below 0.7 pu the 20 ms "zero volts allowed" band is replaced by the PSU hold-up ``holdup_s``.
    Out of tolerance latches until :meth:`reset` (the racks have dropped; restarting is the caller's).
    """

    __slots__ = (
        "_above_11_s",
        "_above_12_s",
        "_below_07_s",
        "_below_08_s",
        "_below_09_s",
        "_holdup_s",
        "_ok",
        "_peak_pu",
    )

    def __init__(self, holdup_s: float = 0.016) -> None:
        if not 0.0 <= holdup_s <= _T_LOWER_SHORT_END_S:
            raise ValueError(f"holdup_s must be within [0, {_T_LOWER_SHORT_END_S}], got {holdup_s}")
        self._holdup_s = holdup_s
        self.reset()

    @property
    def holdup_s(self) -> float:
        return self._holdup_s

    @property
    def within_tolerance(self) -> bool:
        return self._ok

    def reset(self) -> None:
        """Forget every excursion and any latched loss of tolerance."""
        self._ok = True
        self._below_09_s = 0.0
        self._below_08_s = 0.0
        self._below_07_s = 0.0
        self._above_11_s = 0.0
        self._above_12_s = 0.0
        self._peak_pu = 0.0

    def update(self, dt: float, voltage_pu: float) -> bool:
        """Account ``dt`` seconds at ``voltage_pu``; True while the racks are still within tolerance."""
        if not self._ok:
            return False
        if voltage_pu < _V_LOWER_STEADY:
            self._below_09_s += dt
            self._below_08_s = self._below_08_s + dt if voltage_pu < _V_LOWER_MEDIUM else 0.0
            self._below_07_s = self._below_07_s + dt if voltage_pu < _V_LOWER_SHORT else 0.0
            self._above_11_s = self._above_12_s = 0.0
            self._ok = (
                self._below_09_s <= _T_LOWER_MEDIUM_END_S + _TIME_TOLERANCE_S
                and self._below_08_s <= _T_LOWER_SHORT_END_S + _TIME_TOLERANCE_S
                and self._below_07_s <= self._holdup_s + _TIME_TOLERANCE_S
            )
        elif voltage_pu > _V_UPPER_STEADY:
            self._above_11_s += dt
            if voltage_pu > _V_UPPER_SHORT:
                self._above_12_s += dt
                self._peak_pu = max(self._peak_pu, voltage_pu)
            else:
                self._above_12_s = self._peak_pu = 0.0
            self._below_09_s = self._below_08_s = self._below_07_s = 0.0
            self._ok = self._above_11_s <= _T_UPPER_SHORT_END_S + _TIME_TOLERANCE_S and (
                self._above_12_s <= _swell_allowance_s(self._peak_pu) + _TIME_TOLERANCE_S
            )
        elif self._below_09_s or self._above_11_s:
            self._below_09_s = self._below_08_s = self._below_07_s = 0.0
            self._above_11_s = self._above_12_s = self._peak_pu = 0.0
        return self._ok
