"""The utility grid as a regenerative grid simulator plays it: voltage, frequency, phase and outages.

Every scheduling call adds an event on one or more channels (availability, voltage, frequency) and
recompiles that channel into a piecewise-linear timeline, so :meth:`GridSource.state_at` is a cursor
lookup and a multiply-add per channel. Rules, per channel: the event that started last (ties: the
one scheduled last) is in force; a persistent setting (``set_voltage``, ``set_frequency``,
``restore``, an open-ended ``outage``) becomes the new base level; a transient one (``sag``, a timed
``outage``, a LIST ``play``) runs its program and then hands back to the base level in force when it
started, unless a later event cut it short.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

FREQUENCY_MIN_HZ = 40.0
FREQUENCY_MAX_HZ = 70.0


def _check_at(at: float) -> None:
    if not 0.0 <= at < math.inf:
        raise ValueError(f"at must be a finite time >= 0 s, got {at}")


def _check_duration(name: str, value: float) -> None:
    if not 0.0 < value < math.inf:
        raise ValueError(f"{name} must be a finite duration > 0 s, got {value}")


def _check_voltage(name: str, value: float) -> None:
    if not 0.0 <= value < math.inf:
        raise ValueError(f"{name} must be a finite voltage >= 0 pu, got {value}")


def _check_frequency(name: str, value: float) -> None:
    if not FREQUENCY_MIN_HZ <= value <= FREQUENCY_MAX_HZ:
        raise ValueError(f"{name} must be within [{FREQUENCY_MIN_HZ}, {FREQUENCY_MAX_HZ}] Hz, got {value}")


@dataclass(frozen=True, slots=True)
class GridState:
    """The grid at one instant. ``voltage_pu`` is 0 while unavailable; frequency and phase keep running."""

    available: bool
    voltage_pu: float
    frequency_hz: float
    phase_deg: float


@dataclass(frozen=True)
class GridSegment:
    """One LIST-mode step as a Chroma 61800 plays it: linear ramps of voltage and frequency over the dwell."""

    dwell_s: float
    voltage_start_pu: float
    voltage_end_pu: float
    frequency_start_hz: float
    frequency_end_hz: float

    def __post_init__(self) -> None:
        _check_duration("dwell_s", self.dwell_s)
        _check_voltage("voltage_start_pu", self.voltage_start_pu)
        _check_voltage("voltage_end_pu", self.voltage_end_pu)
        _check_frequency("frequency_start_hz", self.frequency_start_hz)
        _check_frequency("frequency_end_hz", self.frequency_end_hz)


_Ramp = tuple[float, float, float]
"""One program step of a transient event: (dwell_s, value at its start, value at its end)."""


@dataclass(frozen=True)
class _Event:
    start_s: float
    order: int
    base_value: float | None
    """Set for a persistent event: the channel's new base level from ``start_s`` on."""
    program: tuple[_Ramp, ...] = ()
    """For a transient event: the steps it plays from ``start_s``, after which the base level resumes."""


class _Timeline:
    """A piecewise-linear function of time from t = 0, with a cursor for increasing-time lookups."""

    __slots__ = ("_cursor", "slopes", "starts_s", "values")

    def __init__(self, starts_s: list[float], values: list[float], slopes: list[float]) -> None:
        self.starts_s = starts_s
        self.values = values
        self.slopes = slopes
        self._cursor = 0

    def index(self, t: float) -> int:
        """Index of the piece in force at ``t`` (the first one for t < 0)."""
        starts = self.starts_s
        i = self._cursor
        if t < starts[i]:
            i = max(bisect_right(starts, t) - 1, 0)
        elif i + 1 < len(starts) and t >= starts[i + 1]:
            i = i + 1 if i + 2 == len(starts) or t < starts[i + 2] else bisect_right(starts, t) - 1
        self._cursor = i
        return i

    def value(self, t: float) -> float:
        i = self.index(t)
        return self.values[i] + self.slopes[i] * (t - self.starts_s[i])

    def next_start_after(self, t: float) -> float | None:
        i = bisect_right(self.starts_s, t)
        return self.starts_s[i] if i < len(self.starts_s) else None


def _compile(initial: float, events: list[_Event]) -> _Timeline:
    """Resolve a channel's events into one timeline (see the module docstring for the rules)."""
    starts: list[float] = [0.0]
    values: list[float] = [initial]
    slopes: list[float] = [0.0]

    def emit(t: float, value: float, slope: float) -> None:
        if t == starts[-1]:
            values[-1], slopes[-1] = value, slope
            if len(starts) > 1 and slope == 0.0 == slopes[-2] and value == values[-2]:
                del starts[-1], values[-1], slopes[-1]
        elif not (slope == 0.0 == slopes[-1] and value == values[-1]):
            starts.append(t)
            values.append(value)
            slopes.append(slope)

    ordered = sorted(events, key=lambda e: (e.start_s, e.order))
    base = initial
    for i, event in enumerate(ordered):
        end_s = ordered[i + 1].start_s if i + 1 < len(ordered) else math.inf
        if event.base_value is not None:
            base = event.base_value
            emit(event.start_s, base, 0.0)
            continue
        t = event.start_s
        for dwell_s, start_value, end_value in event.program:
            if t >= end_s:
                break
            emit(t, start_value, (end_value - start_value) / dwell_s)
            t += dwell_s
        if t < end_s:
            emit(t, base, 0.0)
    return _Timeline(starts, values, slopes)


class GridSource:
    """A scheduled grid: outages, sags and swells, set points, LIST programs and phase jumps.

    Pure and deterministic: the plant asks for :meth:`state_at` with its own time ``t`` (seconds since
    the run started). ``phase_deg`` is 360·∫(f − f_nom)dt plus the jumps so far, wrapped to (−180, 180],
    exact for the piecewise-linear frequency this class produces.
    """

    def __init__(self, nominal_voltage_v: float = 480.0, nominal_frequency_hz: float = 60.0) -> None:
        if not 0.0 < nominal_voltage_v < math.inf:
            raise ValueError(f"nominal_voltage_v must be > 0, got {nominal_voltage_v}")
        _check_frequency("nominal_frequency_hz", nominal_frequency_hz)
        self._nominal_voltage_v = nominal_voltage_v
        self._nominal_frequency_hz = nominal_frequency_hz
        self._order = 0
        self._availability_events: list[_Event] = []
        self._voltage_events: list[_Event] = []
        self._frequency_events: list[_Event] = []
        self._jumps: list[tuple[float, int, float]] = []
        self._cached_key = (-1, -1, -1, -1)
        self._cached_state: GridState | None = None
        self._rebuild()

    @property
    def nominal_voltage_v(self) -> float:
        return self._nominal_voltage_v

    @property
    def nominal_frequency_hz(self) -> float:
        return self._nominal_frequency_hz

    # --- scheduling -------------------------------------------------------------------------

    def outage(self, at: float, duration_s: float | None = None) -> None:
        """The grid goes dead at ``at``, for ``duration_s`` or (None) until :meth:`restore`."""
        _check_at(at)
        if duration_s is None:
            self._add(self._availability_events, at, base_value=0.0)
        else:
            _check_duration("duration_s", duration_s)
            self._add(self._availability_events, at, program=((duration_s, 0.0, 0.0),))
        self._rebuild()

    def restore(self, at: float) -> None:
        _check_at(at)
        self._add(self._availability_events, at, base_value=1.0)
        self._rebuild()

    def sag(self, at: float, residual_pu: float, duration_s: float) -> None:
        """A rectangular sag (or swell, residual > 1) of ``duration_s``; then the base voltage returns."""
        _check_at(at)
        _check_voltage("residual_pu", residual_pu)
        _check_duration("duration_s", duration_s)
        self._add(self._voltage_events, at, program=((duration_s, residual_pu, residual_pu),))
        self._rebuild()

    def set_voltage(self, at: float, voltage_pu: float) -> None:
        _check_at(at)
        _check_voltage("voltage_pu", voltage_pu)
        self._add(self._voltage_events, at, base_value=voltage_pu)
        self._rebuild()

    def set_frequency(self, at: float, frequency_hz: float) -> None:
        _check_at(at)
        _check_frequency("frequency_hz", frequency_hz)
        self._add(self._frequency_events, at, base_value=frequency_hz)
        self._rebuild()

    def phase_jump(self, at: float, degrees: float) -> None:
        """Step the phase by ``degrees`` at ``at`` (jumps add up; none overrides another)."""
        _check_at(at)
        if not math.isfinite(degrees):
            raise ValueError(f"degrees must be finite, got {degrees}")
        self._jumps.append((at, self._next_order(), degrees))
        self._rebuild()

    def play(self, at: float, segments: Sequence[GridSegment], repeat: int = 1) -> None:
        """Play LIST ``segments`` ``repeat`` times from ``at``; then base voltage and frequency resume."""
        _check_at(at)
        if not segments:
            raise ValueError("segments must not be empty")
        if repeat < 1:
            raise ValueError(f"repeat must be >= 1, got {repeat}")
        voltage = tuple((s.dwell_s, s.voltage_start_pu, s.voltage_end_pu) for s in segments) * repeat
        frequency = tuple((s.dwell_s, s.frequency_start_hz, s.frequency_end_hz) for s in segments) * repeat
        order = self._next_order()
        self._voltage_events.append(_Event(at, order, None, voltage))
        self._frequency_events.append(_Event(at, order, None, frequency))
        self._rebuild()

    def _next_order(self) -> int:
        self._order += 1
        return self._order

    def _add(
        self,
        events: list[_Event],
        at: float,
        base_value: float | None = None,
        program: tuple[_Ramp, ...] = (),
    ) -> None:
        events.append(_Event(at, self._next_order(), base_value, program))

    def _rebuild(self) -> None:
        self._availability = _compile(1.0, self._availability_events)
        self._voltage = _compile(1.0, self._voltage_events)
        self._frequency = _compile(self._nominal_frequency_hz, self._frequency_events)
        self._cycles_at_start = self._integrate_frequency()
        jumps = sorted(self._jumps)
        total_deg = 0.0
        jump_events = []
        for at, order, degrees in jumps:
            total_deg += degrees
            jump_events.append(_Event(at, order, total_deg))
        self._jump_deg = _compile(0.0, jump_events)
        timelines = (self._availability, self._voltage, self._frequency, self._jump_deg)
        self._change_times_s = sorted({start for timeline in timelines for start in timeline.starts_s})
        self._cached_state = None

    def _integrate_frequency(self) -> list[float]:
        """Cycles of (f − f_nom) from t = 0 to each frequency piece's start, modulo one cycle."""
        timeline = self._frequency
        cycles = [0.0]
        for i in range(1, len(timeline.starts_s)):
            span_s = timeline.starts_s[i] - timeline.starts_s[i - 1]
            offset_hz = timeline.values[i - 1] - self._nominal_frequency_hz
            gained = offset_hz * span_s + 0.5 * timeline.slopes[i - 1] * span_s * span_s
            cycles.append((cycles[-1] + gained) % 1.0)
        return cycles

    # --- queries ----------------------------------------------------------------------------

    def state_at(self, t: float) -> GridState:
        """The grid at ``t``; cheapest when called with increasing ``t``."""
        ai = self._availability.index(t)
        vi = self._voltage.index(t)
        fi = self._frequency.index(t)
        ji = self._jump_deg.index(t)
        key = (ai, vi, fi, ji)
        if key == self._cached_key and self._cached_state is not None:
            return self._cached_state
        frequency = self._frequency
        since_s = t - frequency.starts_s[fi]
        f_start_hz = frequency.values[fi]
        f_slope = frequency.slopes[fi]
        cycles = (
            self._cycles_at_start[fi]
            + (f_start_hz - self._nominal_frequency_hz) * since_s
            + 0.5 * f_slope * since_s * since_s
        )
        phase_deg = (cycles % 1.0) * 360.0 + self._jump_deg.values[ji]
        phase_deg %= 360.0
        if phase_deg > 180.0:
            phase_deg -= 360.0
        available = self._availability.values[ai] > 0.5
        voltage = self._voltage
        voltage_pu = (
            voltage.values[vi] + voltage.slopes[vi] * (t - voltage.starts_s[vi]) if available else 0.0
        )
        state = GridState(available, voltage_pu, f_start_hz + f_slope * since_s, phase_deg)
        static = voltage.slopes[vi] == 0.0 and f_slope == 0.0 and f_start_hz == self._nominal_frequency_hz
        self._cached_key = key if static else (-1, -1, -1, -1)
        self._cached_state = state
        return state

    def next_change_after(self, t: float) -> float | None:
        """The next time > ``t`` at which a step, a ramp start or a ramp end happens; None if none."""
        times = self._change_times_s
        i = bisect_right(times, t)
        return times[i] if i < len(times) else None

    def changing(self, t: float) -> bool:
        """True while voltage or frequency is ramping at ``t``."""
        return (
            self._voltage.slopes[self._voltage.index(t)] != 0.0
            or self._frequency.slopes[self._frequency.index(t)] != 0.0
        )
