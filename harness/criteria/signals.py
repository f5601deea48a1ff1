"""Signal assertions on a :class:`~harness.trace.Trace`, each returning a :class:`~harness.verdict.Verdict`.

Time is weighted, not counted: a sample holds its value until the next sample (what a recorder
knows), so unevenly spaced samples weigh by the time they cover, and the last sample covers none.
A 2-D channel (samples, packs) is in a band at a sample only if every pack is.
The ideas (strictness = share of time in band, a time tolerance for lead or lag) follow TyphoonTest's
signal assertions; the definitions here are our own and are spelled out in ``docs/criteria.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.trace import Trace
from harness.verdict import Verdict

Window = tuple[float, float]


def resolve_window(trace: Trace, window: Window | None) -> Window:
    """``window``, or the whole trace; refuses an empty trace or a reversed window."""
    if len(trace) == 0:
        raise ValueError("trace holds no samples")
    t0, t1 = (trace.start_s, trace.end_s) if window is None else (float(window[0]), float(window[1]))
    if not t0 <= t1:
        raise ValueError(f"window needs t0 <= t1, got ({t0}, {t1})")
    return t0, t1


def hold_durations(t: np.ndarray, t0: float, t1: float) -> np.ndarray:
    """Seconds each sample holds inside ``[t0, t1]`` (sample i holds over ``[t[i], t[i+1])``)."""
    ends = np.append(t[1:], t[-1]) if t.size else t
    return np.clip(np.minimum(ends, t1) - np.maximum(t, t0), 0.0, None)


def runs(mask: np.ndarray) -> list[slice]:
    """The unbroken stretches where the 1-D ``mask`` is true, in order, as slices."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.astype(np.int8), [0]))))
    return [slice(int(start), int(end)) for start, end in zip(edges[::2], edges[1::2], strict=True)]


def in_band(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Per sample: every column within ``[low, high]`` (NaN is out of band)."""
    inside = (values >= low) & (values <= high)
    return inside.all(axis=1) if inside.ndim == 2 else inside


def evidence(trace: Trace, t0: float, t1: float, *names: str) -> dict[str, np.ndarray]:
    """The trace slice a verdict shows: ``t`` and the named channels within ``[t0, t1]``."""
    part = trace.window(t0, t1)
    return {"t": part.t, **{name: part.channel(name) for name in names}}


def windowed_slope(
    t: np.ndarray, values: np.ndarray, window_s: float, valid: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Rate of change over the trailing ``window_s`` at each sample: (x(t) - x(t - window_s)) / window_s.

    ``x(t - window_s)`` is interpolated linearly between samples. Returns (end times, slopes) for the
    samples with a full window behind them; windows touching a sample where ``valid`` is False
    (e.g. a dead bus) are left out.
    """
    if not window_s > 0.0:
        raise ValueError(f"window_s must be > 0, got {window_s}")
    starts = t - window_s
    full = starts >= t[0] if t.size else np.zeros(0, dtype=bool)
    if valid is not None:
        first = np.searchsorted(t, starts, side="right") - 1
        bad_before = np.concatenate(([0], np.cumsum(~valid)))
        full &= bad_before[np.arange(t.size) + 1] - bad_before[np.clip(first, 0, None)] == 0
    slopes = (values[full] - np.interp(starts[full], t, values)) / window_s
    return t[full], slopes


@dataclass(frozen=True)
class Extreme:
    """The sample that sits closest to (or furthest beyond) a band edge."""

    margin: float
    """Distance inside the band (negative: outside)."""
    value: float
    bound: float
    """The edge it was measured against."""
    t: float


def band_extreme(
    t: np.ndarray, values: np.ndarray, low: float, high: float, mask: np.ndarray | None = None
) -> Extreme | None:
    """The worst sample against ``[low, high]`` among those where ``mask`` holds; None if there are none."""
    rows = np.ones(t.size, dtype=bool) if mask is None else mask
    if not rows.any():
        return None
    chosen = values[rows].reshape(int(rows.sum()), -1)
    below, above = chosen - low, high - chosen
    margins = np.nan_to_num(np.minimum(below, above), nan=-np.inf)
    row, column = np.unravel_index(int(np.argmin(margins)), margins.shape)
    value = float(chosen[row, column])
    bound = low if below[row, column] <= above[row, column] else high
    return Extreme(float(margins[row, column]), value, bound, float(t[rows][row]))


def within_band(
    trace: Trace,
    channel: str,
    low: float,
    high: float,
    window: Window | None = None,
    strictness: float = 1.0,
) -> Verdict:
    """The share of time ``channel`` spends in ``[low, high]`` over ``window`` is at least ``strictness``."""
    if not 0.0 <= strictness <= 1.0:
        raise ValueError(f"strictness must be within [0, 1], got {strictness}")
    t0, t1 = resolve_window(trace, window)
    values = trace.channel(channel)
    weights = hold_durations(trace.t, t0, t1)
    total_s = float(weights.sum())
    if total_s <= 0.0:
        raise ValueError(f"window ({t0}, {t1}) covers no time of the trace")
    share = float(weights[in_band(values, low, high)].sum()) / total_s
    worst = band_extreme(trace.t, values, low, high, weights > 0.0)
    assert worst is not None
    return Verdict.at_least(
        f"within_band[{channel}]",
        share,
        strictness,
        "fraction of time",
        when=(t0, t1),
        detail=(
            f"{share:.2%} of {total_s:g} s within [{low:g}, {high:g}]; "
            f"worst {worst.value:g} at t={worst.t:g} s"
        ),
        evidence=evidence(trace, t0, t1, channel),
    )


def _arrival_s(t: np.ndarray, settled: np.ndarray) -> float:
    """When ``settled`` becomes true for good: t[0] if always, inf if not at the last sample."""
    if not settled[-1]:
        return float("inf")
    unsettled = np.flatnonzero(~settled)
    return float(t[0]) if unsettled.size == 0 else float(t[unsettled[-1] + 1])


def is_step(
    trace: Trace,
    channel: str,
    from_value: float,
    to_value: float,
    at_s: float,
    time_tolerance_s: float,
    value_tolerance: float,
    window: Window | None = None,
) -> Verdict:
    """A step from ``from_value`` to ``to_value`` at ``at_s``, give or take ``time_tolerance_s``.

    The signal may leave ``from_value ± value_tolerance`` no earlier than ``at_s - time_tolerance_s``
    and must be inside ``to_value ± value_tolerance`` for good from ``at_s + time_tolerance_s`` on.
    Measured: how far from ``at_s`` the transition reaches, max(at_s - leave, arrive - at_s, 0).
    """
    t0, t1 = resolve_window(trace, window)
    part = trace.window(t0, t1)
    values = part.channel(channel)
    left = np.flatnonzero(~in_band(values, from_value - value_tolerance, from_value + value_tolerance))
    leave_s = float(part.t[left[0]]) if left.size else float("inf")
    arrive_s = _arrival_s(part.t, in_band(values, to_value - value_tolerance, to_value + value_tolerance))
    spread_s = max(at_s - leave_s, arrive_s - at_s, 0.0)
    return Verdict.at_most(
        f"is_step[{channel}]",
        spread_s,
        time_tolerance_s,
        "s",
        when=(t0, t1),
        detail=(
            f"step {from_value:g} -> {to_value:g} (±{value_tolerance:g}) expected at {at_s:g} s: "
            f"left the start level at {leave_s:g} s, at the new level from {arrive_s:g} s"
        ),
        evidence=evidence(trace, t0, t1, channel),
    )


def is_ramp(
    trace: Trace,
    channel: str,
    slope: float,
    tolerance: float,
    window: Window | None = None,
    time_tolerance_s: float = 0.0,
    initial_value: float | None = None,
) -> Verdict:
    """The samples in ``window`` follow a line of ``slope`` (unit/s) within ``tolerance``.

    The line starts at ``initial_value`` at the window start, or, if None, at the offset that fits
    best (the one minimising the worst deviation). A lead or lag of up to ``time_tolerance_s``
    widens the allowance by ``|slope| * time_tolerance_s``.
    """
    t0, t1 = resolve_window(trace, window)
    part = trace.window(t0, t1)
    values = part.channel(channel)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"is_ramp needs a 1-D channel with samples in ({t0}, {t1}); {channel!r} is not")
    residual = values - slope * (part.t - t0)
    best_offset = (float(residual.max()) + float(residual.min())) / 2.0
    offset = best_offset if initial_value is None else initial_value
    deviation = float(np.max(np.abs(residual - offset)))
    return Verdict.at_most(
        f"is_ramp[{channel}]",
        deviation,
        tolerance + abs(slope) * time_tolerance_s,
        "channel unit",
        when=(t0, t1),
        detail=f"slope {slope:g}/s from {offset:g} at {t0:g} s: worst deviation {deviation:g}",
        evidence=evidence(trace, t0, t1, channel),
    )


def settles(
    trace: Trace, channel: str, target: float, band: float, after_s: float, within_s: float
) -> Verdict:
    """``channel`` is inside ``target ± band`` for good no later than ``within_s`` after ``after_s``.

    Measured: the time from ``after_s`` to the sample from which the signal stays in the band (0 if it
    never left; inf if it is out of the band at the end). The trace must run at least to the deadline.
    """
    deadline_s = after_s + within_s
    if not trace.end_s >= deadline_s:
        raise ValueError(f"trace ends at {trace.end_s} s, before the settle deadline {deadline_s} s")
    first = max(int(np.searchsorted(trace.t, after_s, side="right")) - 1, 0)
    t = trace.t[first:]
    values = trace.channel(channel)[first:]
    arrive_s = _arrival_s(t, in_band(values, target - band, target + band))
    settle_s = max(arrive_s - after_s, 0.0)
    return Verdict.at_most(
        f"settles[{channel}]",
        settle_s,
        within_s,
        "s",
        when=(after_s, deadline_s),
        detail=f"inside {target:g} ± {band:g} for good {settle_s:g} s after {after_s:g} s",
        evidence=evidence(trace, after_s, min(trace.end_s, deadline_s + within_s), channel),
    )


def band_energy(
    t: np.ndarray, values: np.ndarray, low_hz: float, high_hz: float, sample_rate_hz: float
) -> float:
    """Energy of ``values``' fluctuation between ``low_hz`` and ``high_hz`` (both included).

    The signal is resampled on a uniform grid at ``sample_rate_hz`` (linear interpolation), its
    least-squares line removed (a slow drift is not a swing), Hann-windowed, and the squared
    magnitudes of its FFT bins inside the band summed. The scale is arbitrary but the same for
    any two signals on the same ``t``, which is what a ratio of band energies needs.
    """
    count = int(np.floor((t[-1] - t[0]) * sample_rate_hz)) + 1
    grid = t[0] + np.arange(count) / sample_rate_hz
    uniform = np.interp(grid, t, values)
    uniform = uniform - np.polyval(np.polyfit(grid - grid[0], uniform, 1), grid - grid[0])
    spectrum = np.fft.rfft(uniform * np.hanning(count))
    frequencies = np.fft.rfftfreq(count, d=1.0 / sample_rate_hz)
    band = (frequencies >= low_hz) & (frequencies <= high_hz)
    return float(np.sum(np.abs(spectrum[band]) ** 2))
