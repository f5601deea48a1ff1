"""The compute racks: power profiles (share of rated power over time) and the ride-through machine.

Profiles follow reference/domain.md §2.1: synchronized training swings (a trapezoid at 0.2-3 Hz between
~15 % and 100 % of TDP, 50-200 ms edges), checkpoint dips to near idle, and stepped job start/stop.
Each profile is a small frozen dataclass whose ``fraction(t)`` is cheap scalar Python, with ``t``
counted from when the profile was put in force.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from typing import Protocol

from harness.sim.itic import RideThroughMonitor

HOLDUP_BELOW_PU = 0.5
"""Below this bus voltage the PSUs stop drawing and run on their hold-up capacitors."""
HEALTHY_MIN_PU = 0.9
HEALTHY_MAX_PU = 1.1
"""The steady-state ITIC band: inside it the bus counts as healthy for running and restarting."""
_TIME_TOLERANCE_S = 1e-9


class Profile(Protocol):
    def fraction(self, t: float) -> float:
        """Share of rated power (0..1) wanted ``t`` seconds after the profile was put in force."""
        ...


def _check_level(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be within [0, 1], got {value}")


def _check_positive(name: str, value: float) -> None:
    if not 0.0 < value < math.inf:
        raise ValueError(f"{name} must be a finite value > 0, got {value}")


@dataclass(frozen=True)
class Constant:
    level: float

    def __post_init__(self) -> None:
        _check_level("level", self.level)

    def fraction(self, t: float) -> float:
        return self.level


@lru_cache(maxsize=1024)
def _iteration_draws(seed: int, iteration: int) -> tuple[float, float]:
    """Two uniform [0, 1) draws for one training iteration, reproducible from (seed, iteration) alone."""
    rng = random.Random(f"training-swings:{seed}:{iteration}")
    return rng.random(), rng.random()


@dataclass(frozen=True)
class TrainingSwings:
    """Synchronized training iterations: a trapezoid between ``low`` (communication) and ``high`` (compute).

    Every ``period_s`` an iteration starts with a rising edge of ``edge_s``; the compute phase lasts
    ``duty``·period measured at half amplitude, then a falling edge of ``edge_s`` returns to ``low``.
    With ``jitter`` > 0 each iteration draws, from ``seed``, a compute phase scaled by 1 ± jitter and a
    peak lowered by up to jitter·(high − low), so the level stays within [low, high] and iterations
    stay on the period grid.
    """

    period_s: float = 1.0
    duty: float = 0.75
    low: float = 0.15
    high: float = 1.0
    edge_s: float = 0.1
    jitter: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        _check_positive("period_s", self.period_s)
        if not 0.0 < self.duty < 1.0:
            raise ValueError(f"duty must be within (0, 1), got {self.duty}")
        _check_level("low", self.low)
        _check_level("high", self.high)
        if self.low > self.high:
            raise ValueError(f"low must be <= high, got low={self.low} > high={self.high}")
        if not 0.0 <= self.jitter < 1.0:
            raise ValueError(f"jitter must be within [0, 1), got {self.jitter}")
        shortest_high_s = self.duty * (1.0 - self.jitter) * self.period_s
        shortest_low_s = (1.0 - self.duty * (1.0 + self.jitter)) * self.period_s
        if not 0.0 <= self.edge_s <= min(shortest_high_s, shortest_low_s):
            raise ValueError(
                f"edge_s must be within [0, {max(min(shortest_high_s, shortest_low_s), 0.0):.6g}] s so both "
                f"edges fit in every iteration, got {self.edge_s}"
            )

    def fraction(self, t: float) -> float:
        iteration = math.floor(t / self.period_s)
        into_s = t - iteration * self.period_s
        low = self.low
        if self.jitter:
            duty_draw, peak_draw = _iteration_draws(self.seed, iteration)
            high_s = self.duty * (1.0 + self.jitter * (2.0 * duty_draw - 1.0)) * self.period_s
            peak = self.high - self.jitter * (self.high - low) * peak_draw
        else:
            high_s = self.duty * self.period_s
            peak = self.high
        if into_s < self.edge_s:
            return low + (peak - low) * into_s / self.edge_s
        if into_s < high_s:
            return peak
        if into_s < high_s + self.edge_s:
            return peak - (peak - low) * (into_s - high_s) / self.edge_s
        return low


@dataclass(frozen=True)
class CheckpointDips:
    """``base`` (a profile or a constant share) with a dip to ``level`` for ``duration_s`` every
    ``interval_s``, the first one after a full interval (checkpoints: 30-120 s every 10-60 min).
    """

    base: Profile | float
    interval_s: float
    duration_s: float
    level: float
    _base_profile: Profile = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.base, int | float):
            _check_level("base", float(self.base))
            object.__setattr__(self, "_base_profile", Constant(float(self.base)))
        else:
            object.__setattr__(self, "_base_profile", self.base)
        _check_positive("interval_s", self.interval_s)
        _check_positive("duration_s", self.duration_s)
        if self.duration_s >= self.interval_s:
            raise ValueError(f"duration_s must be < interval_s, got {self.duration_s} >= {self.interval_s}")
        _check_level("level", self.level)

    def fraction(self, t: float) -> float:
        if t >= self.interval_s and t % self.interval_s < self.duration_s:
            return self.level
        return self._base_profile.fraction(t)


@dataclass(frozen=True)
class Steps:
    """Stepped levels (list mode, job start/stop): ``points`` are (t, level) with strictly increasing t.

    Each level holds from its time to the next; before the first point the racks want nothing.
    """

    points: tuple[tuple[float, float], ...]
    _times_s: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.points:
            raise ValueError("points must not be empty")
        previous_s = -math.inf
        for t, level in self.points:
            if not previous_s < t < math.inf or t < 0.0:
                raise ValueError(f"points must have finite times >= 0 in strictly increasing order, got {t}")
            _check_level("level", level)
            previous_s = t
        object.__setattr__(self, "_times_s", tuple(t for t, _ in self.points))

    def fraction(self, t: float) -> float:
        i = bisect_right(self._times_s, t)
        return self.points[i - 1][1] if i else 0.0


DEFAULT_PROFILE = Constant(0.8)


class RackState(Enum):
    RUNNING = "running"
    RIDING_THROUGH = "riding_through"
    """The bus is outside the steady band but still inside what the PSUs tolerate."""
    DROPPED = "dropped"
    RESTARTING = "restarting"


class ComputeLoad:
    """The compute racks as the bus sees them.

    Three levels of power, so that capped and unserved power can be told apart:
    ``uncapped_demand_w`` (profile × rated) ≥ ``demand_w`` (after the controller's ``power_cap_w``)
    ≥ ``requested_w`` (× the share of racks online, which drops to 0 when they trip and ramps back
    on restart). ``draw_w`` is what they take from a bus at a given voltage. The caller feeds the bus
    voltage to :meth:`update` every sub-step to run the ride-through / drop / restart machine.
    """

    def __init__(
        self,
        rated_w: float = 4e6,
        profile: Profile = DEFAULT_PROFILE,
        holdup_s: float = 0.016,
        restart_delay_s: float = 30.0,
        restart_ramp_s: float = 10.0,
    ) -> None:
        _check_positive("rated_w", rated_w)
        if not 0.0 <= restart_delay_s < math.inf:
            raise ValueError(f"restart_delay_s must be >= 0, got {restart_delay_s}")
        if not 0.0 <= restart_ramp_s < math.inf:
            raise ValueError(f"restart_ramp_s must be >= 0, got {restart_ramp_s}")
        self.rated_w = rated_w
        self.restart_delay_s = restart_delay_s
        self.restart_ramp_s = restart_ramp_s
        self._monitor = RideThroughMonitor(holdup_s)
        self._profile_starts_s: list[float] = [0.0]
        self._profiles: list[Profile] = [profile]
        self._power_cap_w: float | None = None
        self.state = RackState.RUNNING
        self.drop_count = 0
        self._healthy_s = 0.0
        self._ramp_start_s = 0.0

    @property
    def power_cap_w(self) -> float | None:
        """The controller's cap on demand (soft load shed); None means uncapped."""
        return self._power_cap_w

    @power_cap_w.setter
    def power_cap_w(self, value: float | None) -> None:
        if value is not None and not 0.0 <= value < math.inf:
            raise ValueError(f"power_cap_w must be None or >= 0, got {value}")
        self._power_cap_w = value

    def set_profile(self, profile: Profile, at: float) -> None:
        """Put ``profile`` in force from ``at`` (its time starts at 0 there), replacing one set at ``at``."""
        if not 0.0 <= at < math.inf:
            raise ValueError(f"at must be a finite time >= 0 s, got {at}")
        i = bisect_right(self._profile_starts_s, at)
        if self._profile_starts_s[i - 1] == at:
            self._profiles[i - 1] = profile
        else:
            self._profile_starts_s.insert(i, at)
            self._profiles.insert(i, profile)

    def uncapped_demand_w(self, t: float) -> float:
        """What the racks' work wants at ``t``: profile × rated, before the cap."""
        i = max(bisect_right(self._profile_starts_s, t) - 1, 0)
        return self._profiles[i].fraction(t - self._profile_starts_s[i]) * self.rated_w

    def demand_w(self, t: float) -> float:
        """What the racks want at ``t``: profile × rated, capped."""
        return self.capped_w(self.uncapped_demand_w(t))

    def capped_w(self, wanted_w: float) -> float:
        """``wanted_w`` under the controller's cap."""
        cap = self._power_cap_w
        return wanted_w if cap is None or wanted_w <= cap else cap

    def online_share(self, t: float) -> float:
        """Share of the racks up at ``t``: 1 running or riding through, 0 dropped, ramping on restart."""
        state = self.state
        if state is RackState.DROPPED:
            return 0.0
        if state is RackState.RESTARTING and self.restart_ramp_s > 0.0:
            return min(1.0, max(0.0, (t - self._ramp_start_s) / self.restart_ramp_s))
        return 1.0

    def requested_w(self, t: float) -> float:
        """What the racks draw at ``t`` if the bus is healthy: demand × online share."""
        return self.demand_w(t) * self.online_share(t)

    def draw_w(self, t: float, voltage_pu: float) -> float:
        """What the racks take from a bus at ``voltage_pu``: nothing below 0.5 pu (PSU hold-up)."""
        return self.requested_w(t) if voltage_pu >= HOLDUP_BELOW_PU else 0.0

    def update(self, t: float, dt: float, voltage_pu: float) -> None:
        """Advance the machine over the sub-step [t, t + dt] during which the bus was at ``voltage_pu``."""
        if dt < 0.0:
            raise ValueError(f"dt must be >= 0, got {dt}")
        end_s = t + dt
        healthy = HEALTHY_MIN_PU <= voltage_pu <= HEALTHY_MAX_PU
        if self.state is RackState.DROPPED:
            self._healthy_s = self._healthy_s + dt if healthy else 0.0
            if self._healthy_s >= self.restart_delay_s - _TIME_TOLERANCE_S:
                self._ramp_start_s = end_s - (self._healthy_s - self.restart_delay_s)
                self._monitor.reset()
                self.state = RackState.RESTARTING
            return
        if not self._monitor.update(dt, voltage_pu):
            self.state = RackState.DROPPED
            self.drop_count += 1
            self._healthy_s = 0.0
        elif self.state is RackState.RESTARTING:
            if end_s - self._ramp_start_s >= self.restart_ramp_s - _TIME_TOLERANCE_S:
                self.state = RackState.RUNNING
        else:
            self.state = RackState.RUNNING if healthy else RackState.RIDING_THROUGH
