"""Signal building blocks: time weighting, bands, steps, ramps, settling, slopes, band energy."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.criteria.signals import (
    band_energy,
    hold_durations,
    is_ramp,
    is_step,
    settles,
    windowed_slope,
    within_band,
)
from harness.trace import Trace

SETTINGS = settings(max_examples=100, deadline=None)


def trace_of(t, x, name="x") -> Trace:
    return Trace(np.asarray(t, dtype=float), {name: np.asarray(x, dtype=float)})


# Dyadic steps and shifts keep every sum exact, so a shift cannot move a verdict by rounding.
steps = st.lists(st.integers(1, 16), min_size=2, max_size=40).map(lambda k: np.cumsum(k) / 8.0)


@st.composite
def signals(draw):
    t = draw(steps)
    x = np.array(draw(st.lists(st.integers(-20, 20), min_size=t.size, max_size=t.size)), dtype=float) / 4
    return t, x


def test_hold_durations_weigh_uneven_samples_by_the_time_they_cover():
    t = np.array([0.0, 1.0, 4.0, 5.0])
    np.testing.assert_allclose(hold_durations(t, 0.0, 5.0), [1.0, 3.0, 1.0, 0.0])
    np.testing.assert_allclose(hold_durations(t, 0.5, 2.0), [0.5, 1.0, 0.0, 0.0])


def test_within_band_is_time_weighted():
    # 1.5 s out of band, 3 s in (the last sample covers no time): 2/3 of the time, half the samples.
    trace = trace_of([0.0, 1.0, 4.0, 4.5], [5.0, 0.0, 5.0, 0.0])
    assert within_band(trace, "x", -1.0, 1.0, strictness=0.5).measured == pytest.approx(3.0 / 4.5)
    assert within_band(trace, "x", -1.0, 1.0, window=(1.0, 4.0)).passed
    verdict = within_band(trace, "x", -1.0, 1.0, strictness=0.8)
    assert not verdict.passed and verdict.margin == pytest.approx(3.0 / 4.5 - 0.8)


def test_within_band_two_d_needs_every_pack():
    trace = Trace([0.0, 1.0, 2.0], {"soc": np.array([[0.5, 0.5], [0.5, 0.99], [0.5, 0.5]])})
    assert within_band(trace, "soc", 0.1, 0.9).measured == pytest.approx(0.5)


@SETTINGS
@given(signals(), st.integers(-40, 40), st.integers(0, 20))
def test_constant_inside_band_always_passes(signal, level, half_width):
    t, _ = signal
    value = level / 4
    trace = trace_of(t, np.full(t.size, value))
    assert within_band(trace, "x", value - half_width / 4, value + half_width / 4).passed


@SETTINGS
@given(signals(), st.floats(-3, 0), st.floats(0, 3), st.floats(0, 2), st.floats(0, 1))
def test_widening_the_band_never_turns_a_pass_into_a_fail(signal, low, high, widen, strictness):
    t, x = signal
    trace = trace_of(t, x)
    narrow = within_band(trace, "x", low, high, strictness=strictness)
    wide = within_band(trace, "x", low - widen, high + widen, strictness=strictness)
    assert wide.measured >= narrow.measured
    assert wide.passed or not narrow.passed


@SETTINGS
@given(signals(), st.integers(-1000, 1000), st.floats(0, 1))
def test_shifting_time_does_not_change_a_band_verdict(signal, shift, strictness):
    t, x = signal
    here = within_band(trace_of(t, x), "x", -2.0, 2.0, strictness=strictness)
    there = within_band(trace_of(t + shift, x), "x", -2.0, 2.0, strictness=strictness)
    assert (here.passed, here.measured) == (there.passed, there.measured)


def step_trace(at_s: float, dt: float = 0.01):
    t = np.arange(0.0, 4.0, dt)
    return trace_of(t, np.where(t >= at_s, 10.0, 2.0) + 0.05 * np.sin(7 * t))


def test_is_step_margin_is_the_timing_room():
    trace = step_trace(1.02)
    inside = is_step(trace, "x", 2.0, 10.0, at_s=1.0, time_tolerance_s=0.03, value_tolerance=0.1)
    assert inside.passed and inside.margin == pytest.approx(0.01, abs=1e-9)
    outside = is_step(trace, "x", 2.0, 10.0, at_s=1.0, time_tolerance_s=0.01, value_tolerance=0.1)
    assert not outside.passed and outside.margin == pytest.approx(-0.01, abs=1e-9)


def test_is_step_fails_on_a_wrong_level_or_an_early_wobble():
    trace = step_trace(1.0)
    assert not is_step(trace, "x", 2.0, 11.0, 1.0, 0.05, 0.1).passed
    wobble = trace_of(trace.t, np.where((trace.t > 0.5) & (trace.t < 0.6), 4.0, trace.channel("x")))
    verdict = is_step(wobble, "x", 2.0, 10.0, 1.0, 0.05, 0.1)
    assert not verdict.passed and verdict.measured == pytest.approx(0.49, abs=0.011)


@SETTINGS
@given(st.integers(50, 300), st.integers(-500, 500), st.integers(0, 10))
def test_shifting_time_does_not_change_a_step_verdict(at_step, shift, tolerance_steps):
    t = np.arange(400) / 64.0
    x = np.where(np.arange(400) >= at_step, 1.0, 0.0)
    at_s, tolerance = (at_step + 3) / 64.0, tolerance_steps / 64.0
    here = is_step(trace_of(t, x), "x", 0.0, 1.0, at_s, tolerance, 0.1)
    there = is_step(trace_of(t + shift, x), "x", 0.0, 1.0, at_s + shift, tolerance, 0.1)
    assert here.passed == there.passed == (tolerance >= 3 / 64.0)


def test_is_ramp_fits_the_offset_and_allows_lag():
    t = np.linspace(0.0, 10.0, 201)
    trace = trace_of(t, 5.0 + 2.0 * t + 0.1 * np.sin(3 * t))
    assert is_ramp(trace, "x", 2.0, 0.11).passed
    assert not is_ramp(trace, "x", 2.0, 0.09).passed
    assert not is_ramp(trace, "x", 2.1, 0.11).passed
    # 0.2 s late against the ramp 2 t: 0.4 of error, allowed only with a 0.2 s time tolerance.
    lagging = trace_of(t, 2.0 * np.clip(t - 0.2, 0.0, None))
    assert not is_ramp(lagging, "x", 2.0, 0.05, window=(1.0, 10.0), initial_value=2.0).passed
    assert not is_ramp(
        lagging, "x", 2.0, 0.05, window=(1.0, 10.0), time_tolerance_s=0.15, initial_value=2.0
    ).passed
    assert is_ramp(
        lagging, "x", 2.0, 0.05, window=(1.0, 10.0), time_tolerance_s=0.2, initial_value=2.0
    ).passed


def test_settles_measures_time_to_stay_in_band():
    t = np.arange(0.0, 20.0, 0.1)
    x = 1.0 + 0.3 * np.exp(-(t - 5.0).clip(0) / 1.0) * (t >= 5.0)  # 0.3 overshoot decaying, tau 1 s
    trace = trace_of(t, x)
    expected = np.log(0.3 / 0.02)  # 2.708 s to fall inside 2 %; the first sample inside is at 2.8 s
    inside = settles(trace, "x", 1.0, 0.02, after_s=5.0, within_s=2.85)
    assert inside.passed and inside.measured == pytest.approx(expected, abs=0.1)
    outside = settles(trace, "x", 1.0, 0.02, after_s=5.0, within_s=2.75)
    assert not outside.passed and outside.margin == pytest.approx(-0.05, abs=1e-9)
    with pytest.raises(ValueError, match="before the settle deadline"):
        settles(trace, "x", 1.0, 0.02, after_s=15.0, within_s=10.0)


def test_settles_never_in_band_at_the_end_is_infinite():
    trace = trace_of(np.arange(10.0), np.r_[np.ones(9), 2.0])
    verdict = settles(trace, "x", 1.0, 0.1, after_s=0.0, within_s=5.0)
    assert not verdict.passed and verdict.measured == np.inf


def test_windowed_slope_skips_invalid_samples():
    t = np.arange(0.0, 3.0, 0.1)
    ends, slopes = windowed_slope(t, 4.0 * t, 0.5)
    np.testing.assert_allclose(slopes, 4.0)
    assert ends[0] == pytest.approx(0.5)
    valid = np.ones(t.size, dtype=bool)
    valid[10] = False
    ends, _ = windowed_slope(t, 4.0 * t, 0.5, valid)
    assert not np.any((ends >= 1.0 - 1e-9) & (ends < 1.5 + 0.1 - 1e-9))


def test_band_energy_keeps_in_band_tones_only():
    t = np.arange(0.0, 60.0, 0.01)
    tone = band_energy(t, np.sin(2 * np.pi * 1.0 * t), 0.1, 20.0, 100.0)
    slow = band_energy(t, np.sin(2 * np.pi * 0.02 * t), 0.1, 20.0, 100.0)
    fast = band_energy(t, np.sin(2 * np.pi * 30.0 * t), 0.1, 20.0, 100.0)
    assert slow < 1e-3 * tone and fast < 1e-6 * tone
    assert band_energy(t, 3.0 * np.sin(2 * np.pi * t), 0.1, 20.0, 100.0) == pytest.approx(9 * tone)


@SETTINGS
@given(signals(), st.integers(1, 8), st.integers(0, 8))
def test_widening_the_settle_band_never_delays_settling(signal, band_eighths, widen_eighths):
    t, x = signal
    trace = trace_of(t, x)
    within_s = float(t[-1] - t[0])
    narrow = settles(trace, "x", 0.0, band_eighths / 8, after_s=float(t[0]), within_s=within_s)
    wide = settles(
        trace, "x", 0.0, (band_eighths + widen_eighths) / 8, after_s=float(t[0]), within_s=within_s
    )
    assert wide.measured <= narrow.measured
    assert wide.passed or not narrow.passed


@SETTINGS
@given(st.floats(-1e3, 1e3), st.floats(-1e3, 1e3), st.integers(3, 200))
def test_an_exact_ramp_always_passes(slope, start, count):
    t = np.linspace(0.0, 10.0, count)
    assert is_ramp(
        trace_of(t, start + slope * t), "x", slope, 1e-6 * (1.0 + abs(start) + 10 * abs(slope))
    ).passed
