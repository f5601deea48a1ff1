"""ITIC / SEMI F47 envelopes and the rack PSU ride-through monitor."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.sim.itic import (
    ITIC_LOWER_POINTS,
    ITIC_UPPER_POINTS,
    SEMI_F47_POINTS,
    ItiRegion,
    RideThroughMonitor,
    itic_lower_pu,
    itic_region,
    itic_upper_pu,
    semi_f47_ok,
)

MS = 1e-3


def survives(monitor: RideThroughMonitor, pieces: list[tuple[float, int]], dt: float) -> bool:
    """Feed (voltage_pu, number of dt steps) pieces; True if the racks never left tolerance."""
    ok = True
    for voltage_pu, steps in pieces:
        for _ in range(steps):
            ok = monitor.update(dt, voltage_pu)
    return ok


def rectangular(voltage_pu: float, duration_s: float, dt: float, holdup_s: float = 0.016) -> bool:
    steps = round(duration_s / dt)
    return survives(RideThroughMonitor(holdup_s), [(1.0, 5), (voltage_pu, steps), (1.0, 5)], dt)


def flat(points, t_scale=1.0, v_scale=1.0) -> list[float]:
    return [x for t, v in points for x in (t * t_scale, v * v_scale)]


def test_polygons_are_the_opq_ones_in_ms_and_percent():
    opq_no_damage = [(20, 0), (20, 70), (500, 70), (500, 80), (10000, 80), (10000, 90)]
    opq_prohibited = [
        (0.167, 500),
        (1, 200),
        (3, 140),
        (3, 120),
        (20, 120),
        (500, 120),
        (500, 110),
        (10000, 110),
    ]
    assert flat(ITIC_LOWER_POINTS, 1 / MS, 100) == pytest.approx(flat(opq_no_damage))
    assert flat(ITIC_UPPER_POINTS, 1 / MS, 100) == pytest.approx(flat(opq_prohibited))
    f47_sag_curve = [(0.05, 0.5), (0.2, 0.5), (0.2, 0.7), (0.5, 0.7), (0.5, 0.8), (1.0, 0.8)]
    assert flat(p for p in SEMI_F47_POINTS if p[1] < 0.9) == pytest.approx(flat(f47_sag_curve))


@pytest.mark.parametrize(
    "points, curve", [(ITIC_LOWER_POINTS, itic_lower_pu), (ITIC_UPPER_POINTS, itic_upper_pu)]
)
def test_curve_functions_follow_their_polygon(points, curve):
    for (t0, v0), (t1, v1) in pairwise(points):
        if t0 == t1:
            continue
        mid_s = (t0 + t1) / 2
        assert curve(mid_s) == pytest.approx((v0 + v1) / 2)
        assert curve(t1) == pytest.approx(v1)


@pytest.mark.parametrize(
    "duration_s, lower_pu",
    [(0.0, 0.0), (0.010, 0.0), (0.020, 0.0), (0.021, 0.7), (0.5, 0.7), (0.51, 0.8), (10.0, 0.8), (11.0, 0.9)],
)
def test_lower_envelope(duration_s, lower_pu):
    assert itic_lower_pu(duration_s) == lower_pu


@pytest.mark.parametrize(
    "duration_s, upper_pu",
    [
        (0.0, 5.0),
        (0.1 * MS, 5.0),
        (2 * MS, 1.7),
        (3 * MS, 1.4),
        (3.01 * MS, 1.2),
        (0.5, 1.2),
        (0.6, 1.1),
        (1e4, 1.1),
    ],
)
def test_upper_envelope(duration_s, upper_pu):
    assert itic_upper_pu(duration_s) == pytest.approx(upper_pu)


@pytest.mark.parametrize(
    "residual_pu, duration_s, region",
    [
        (0.0, 0.015, ItiRegion.NO_INTERRUPTION),
        (0.0, 0.025, ItiRegion.NO_DAMAGE),
        (0.75, 0.4, ItiRegion.NO_INTERRUPTION),
        (0.75, 0.6, ItiRegion.NO_DAMAGE),
        (0.85, 9.0, ItiRegion.NO_INTERRUPTION),
        (0.85, 11.0, ItiRegion.NO_DAMAGE),
        (0.95, 3600.0, ItiRegion.NO_INTERRUPTION),
        (1.15, 0.4, ItiRegion.NO_INTERRUPTION),
        (1.15, 0.6, ItiRegion.PROHIBITED),
        (1.3, 2 * MS, ItiRegion.NO_INTERRUPTION),
        (1.3, 4 * MS, ItiRegion.PROHIBITED),
        (3.0, 0.5 * MS, ItiRegion.NO_INTERRUPTION),
        (4.0, 0.5 * MS, ItiRegion.PROHIBITED),
    ],
)
def test_region_on_both_curves(residual_pu, duration_s, region):
    assert itic_region(residual_pu, duration_s) is region


@pytest.mark.parametrize(
    "residual_pu, duration_s, ok",
    [
        (0.5, 0.2, True),
        (0.45, 0.1, False),
        (0.6, 0.3, False),
        (0.7, 0.5, True),
        (0.75, 0.8, False),
        (0.8, 1.0, True),
        (0.85, 2.0, False),
        (0.0, 0.010, True),  # F47 mandates nothing up to 50 ms
        (0.0, 0.060, False),
        (1.3, 5.0, True),
    ],
)
def test_semi_f47(residual_pu, duration_s, ok):
    assert semi_f47_ok(residual_pu, duration_s) is ok


def test_semi_f47_asks_more_of_equipment_than_itic_mid_curve():
    assert itic_region(0.5, 0.1) is ItiRegion.NO_DAMAGE
    assert semi_f47_ok(0.5, 0.1)


@settings(max_examples=150, deadline=None)
@given(st.floats(0.0, 1.0), st.floats(0.05, 1.0))
def test_f47_covers_every_itic_tolerated_sag_between_50_ms_and_1_s(residual_pu, duration_s):
    if itic_region(residual_pu, duration_s) is ItiRegion.NO_INTERRUPTION:
        assert semi_f47_ok(residual_pu, duration_s)


@pytest.mark.parametrize("call", [itic_lower_pu, itic_upper_pu])
def test_curves_reject_negative_durations(call):
    with pytest.raises(ValueError, match="duration_s"):
        call(-0.1)


@pytest.mark.parametrize("call", [itic_region, semi_f47_ok])
def test_events_are_validated(call):
    with pytest.raises(ValueError, match="residual_pu"):
        call(-0.1, 1.0)
    with pytest.raises(ValueError, match="duration_s"):
        call(0.5, -1.0)


@pytest.mark.parametrize(
    "voltage_pu, duration_s, dt, expected",
    [
        (0.0, 0.015, 1 * MS, True),
        (0.0, 0.017, 1 * MS, False),
        (0.6, 0.015, 1 * MS, True),
        (0.6, 0.030, 1 * MS, False),
        (0.75, 0.4, 10 * MS, True),
        (0.75, 0.6, 10 * MS, False),
        (0.85, 9.0, 10 * MS, True),
        (0.85, 11.0, 10 * MS, False),
        (1.15, 0.4, 10 * MS, True),
        (1.15, 0.6, 10 * MS, False),
        (1.3, 2 * MS, 0.1 * MS, True),
        (1.3, 4 * MS, 0.1 * MS, False),
    ],
)
def test_monitor_against_holdup_and_curve(voltage_pu, duration_s, dt, expected):
    assert rectangular(voltage_pu, duration_s, dt) is expected


def test_a_new_swell_gets_its_own_allowance():
    monitor = RideThroughMonitor()
    assert survives(monitor, [(1.5, 20), (1.15, 100), (1.25, 25), (1.0, 10)], 0.1 * MS)


def test_holdup_is_configurable():
    assert rectangular(0.0, 0.012, MS, holdup_s=0.016)
    assert not rectangular(0.0, 0.012, MS, holdup_s=0.010)
    with pytest.raises(ValueError, match="holdup_s"):
        RideThroughMonitor(holdup_s=-0.001)


def test_each_excursion_is_timed_from_its_own_start():
    monitor = RideThroughMonitor()
    assert survives(monitor, [(0.0, 10), (1.0, 5), (0.0, 10), (1.0, 5), (0.0, 10)], MS)


def test_a_deep_dip_inside_a_shallow_sag_counts_both_ways():
    monitor = RideThroughMonitor()
    assert survives(monitor, [(0.85, 300), (0.0, 15), (0.85, 300)], MS)
    monitor = RideThroughMonitor()
    assert not survives(monitor, [(0.75, 300), (0.0, 15), (0.75, 300)], MS)


def test_loss_of_tolerance_latches_until_reset():
    monitor = RideThroughMonitor()
    assert not survives(monitor, [(0.0, 20)], MS)
    assert not monitor.update(MS, 1.0)
    assert not monitor.within_tolerance
    monitor.reset()
    assert monitor.update(MS, 1.0)


@settings(max_examples=150, deadline=None)
@given(st.floats(0.7, 1.3), st.integers(1, 1200))
def test_monitor_agrees_with_itic_for_rectangular_events(voltage_pu, steps):
    """Where the hold-up does not replace the curve (>= 0.7 pu), the monitor is the ITIC chart."""
    dt = 10 * MS
    expected = itic_region(voltage_pu, steps * dt) is ItiRegion.NO_INTERRUPTION
    assert survives(RideThroughMonitor(), [(voltage_pu, steps)], dt) is expected


@settings(max_examples=150, deadline=None)
@given(st.floats(1.2, 5.5), st.integers(1, 60))
def test_monitor_agrees_with_itic_for_short_swells(voltage_pu, steps):
    dt = 0.1 * MS
    expected = itic_region(voltage_pu, steps * dt) is ItiRegion.NO_INTERRUPTION
    assert survives(RideThroughMonitor(), [(voltage_pu, steps)], dt) is expected


pieces = st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(1, 400)), min_size=1, max_size=8)


@settings(max_examples=150, deadline=None)
@given(pieces, st.data())
def test_deeper_sags_never_help(sag_pieces, data):
    deeper = [(v * data.draw(st.floats(0.0, 1.0)), n) for v, n in sag_pieces]
    if survives(RideThroughMonitor(), deeper, 5 * MS):
        assert survives(RideThroughMonitor(), sag_pieces, 5 * MS)


@settings(max_examples=150, deadline=None)
@given(pieces, st.data())
def test_longer_sags_never_help(sag_pieces, data):
    longer = [(v, n + data.draw(st.integers(0, 400))) for v, n in sag_pieces]
    if survives(RideThroughMonitor(), longer, 5 * MS):
        assert survives(RideThroughMonitor(), sag_pieces, 5 * MS)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.floats(1.0, 3.0), st.integers(1, 200)), min_size=1, max_size=8), st.data())
def test_higher_swells_never_help(swell_pieces, data):
    higher = [(v + data.draw(st.floats(0.0, 1.0)), n) for v, n in swell_pieces]
    if survives(RideThroughMonitor(), higher, 0.5 * MS):
        assert survives(RideThroughMonitor(), swell_pieces, 0.5 * MS)
