"""The scheduled grid source: events, overrides, LIST ramps, phase and validation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.sim.grid import GridSegment, GridSource, GridState


def wrap(deg: float) -> float:
    deg %= 360.0
    return deg - 360.0 if deg > 180.0 else deg


def voltages(grid: GridSource, times: list[float]) -> list[float]:
    return [grid.state_at(t).voltage_pu for t in times]


def test_an_untouched_grid_is_nominal_forever():
    grid = GridSource()
    for t in (0.0, 1.0, 1e6):
        assert grid.state_at(t) == GridState(True, 1.0, 60.0, 0.0)
    assert grid.next_change_after(0.0) is None
    assert not grid.changing(5.0)
    assert GridSource(nominal_frequency_hz=50.0).state_at(3.0).frequency_hz == 50.0


def test_timed_outage_kills_then_returns_the_grid():
    grid = GridSource()
    grid.outage(at=2.0, duration_s=0.5)
    assert grid.state_at(1.999).available
    dead = grid.state_at(2.0)
    assert not dead.available and dead.voltage_pu == 0.0
    assert not grid.state_at(2.499).available
    assert grid.state_at(2.5) == GridState(True, 1.0, 60.0, 0.0)
    assert grid.next_change_after(0.0) == 2.0
    assert grid.next_change_after(2.0) == 2.5
    assert grid.next_change_after(2.5) is None


def test_open_outage_lasts_until_restore():
    grid = GridSource()
    grid.outage(at=1.0)
    assert not grid.state_at(1e5).available
    grid.restore(at=60.0)
    assert not grid.state_at(59.9).available
    assert grid.state_at(60.0).available


def test_sag_and_swell_are_rectangular():
    grid = GridSource()
    grid.sag(at=1.0, residual_pu=0.5, duration_s=0.1)
    grid.sag(at=3.0, residual_pu=1.15, duration_s=0.2)
    assert voltages(grid, [0.99, 1.0, 1.05, 1.1, 3.0, 3.19, 3.2]) == pytest.approx(
        [1.0, 0.5, 0.5, 1.0, 1.15, 1.15, 1.0]
    )


def test_set_points_persist_and_sags_return_to_them():
    grid = GridSource()
    grid.set_voltage(at=1.0, voltage_pu=1.05)
    grid.sag(at=2.0, residual_pu=0.7, duration_s=1.0)
    grid.set_frequency(at=4.0, frequency_hz=59.5)
    assert voltages(grid, [0.5, 1.5, 2.5, 3.5, 100.0]) == pytest.approx([1.0, 1.05, 0.7, 1.05, 1.05])
    assert grid.state_at(3.9).frequency_hz == 60.0
    assert grid.state_at(100.0).frequency_hz == 59.5


def test_later_events_override_earlier_ones_from_their_start():
    grid = GridSource()
    grid.sag(at=1.0, residual_pu=0.5, duration_s=10.0)
    grid.sag(at=3.0, residual_pu=0.8, duration_s=1.0)
    assert voltages(grid, [2.0, 3.5, 5.0]) == pytest.approx([0.5, 0.8, 1.0])
    grid.set_voltage(at=6.0, voltage_pu=1.02)
    assert voltages(grid, [6.5, 12.0]) == pytest.approx([1.02, 1.02])


def test_same_start_goes_to_the_event_scheduled_last():
    grid = GridSource()
    grid.sag(at=1.0, residual_pu=0.5, duration_s=1.0)
    grid.sag(at=1.0, residual_pu=0.9, duration_s=0.5)
    assert voltages(grid, [1.2, 1.7]) == pytest.approx([0.9, 1.0])


def test_events_may_be_scheduled_after_earlier_times_were_queried():
    grid = GridSource()
    assert grid.state_at(10.0).voltage_pu == 1.0
    grid.sag(at=20.0, residual_pu=0.6, duration_s=1.0)
    assert voltages(grid, [10.0, 20.5, 5.0, 21.5]) == pytest.approx([1.0, 0.6, 1.0, 1.0])


event_kinds = st.sampled_from(["sag", "set_voltage", "set_frequency", "outage", "restore", "jump"])


def schedule(grid: GridSource, kind: str, at: float, x: float) -> None:
    if kind == "sag":
        grid.sag(at, residual_pu=x, duration_s=0.5 + x)
    elif kind == "set_voltage":
        grid.set_voltage(at, x)
    elif kind == "set_frequency":
        grid.set_frequency(at, 59.0 + x)
    elif kind == "outage":
        grid.outage(at, duration_s=x + 0.1)
    elif kind == "restore":
        grid.restore(at)
    else:
        grid.phase_jump(at, 100.0 * x)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(event_kinds, st.integers(0, 200), st.floats(0.0, 2.0)),
        min_size=1,
        max_size=8,
        unique_by=lambda e: e[1],
    ),
    st.randoms(use_true_random=False),
)
def test_the_order_of_calls_does_not_matter_when_starts_differ(events, rnd):
    in_order, shuffled = GridSource(), GridSource()
    for kind, tenth, x in events:
        schedule(in_order, kind, tenth / 10.0, x)
    events = list(events)
    rnd.shuffle(events)
    for kind, tenth, x in events:
        schedule(shuffled, kind, tenth / 10.0, x)
    for k in range(0, 260):
        t = k * 0.1 + 0.05
        a, b = in_order.state_at(t), shuffled.state_at(t)
        assert (a.available, a.voltage_pu, a.frequency_hz) == (b.available, b.voltage_pu, b.frequency_hz)
        assert a.phase_deg == pytest.approx(b.phase_deg, abs=1e-6)


def test_list_segments_ramp_repeat_and_hand_back():
    grid = GridSource()
    grid.set_voltage(at=0.0, voltage_pu=1.02)
    dip = [
        GridSegment(0.1, 1.0, 0.5, 60.0, 60.0),
        GridSegment(0.2, 0.5, 0.5, 60.0, 60.0),
        GridSegment(0.1, 0.5, 1.0, 60.0, 60.0),
    ]
    grid.play(at=1.0, segments=dip, repeat=2)
    times = [0.99, 1.05, 1.1, 1.2, 1.35, 1.45, 1.65, 1.75, 1.85]
    assert voltages(grid, times) == pytest.approx([1.02, 0.75, 0.5, 0.5, 0.75, 0.75, 0.5, 0.75, 1.02])
    assert grid.changing(1.05) and not grid.changing(1.2) and grid.changing(1.35) and not grid.changing(1.9)
    boundaries = []
    t = 0.0
    while (t := grid.next_change_after(t)) is not None:
        boundaries.append(t)
    assert boundaries == pytest.approx([1.0, 1.1, 1.3, 1.4, 1.5, 1.7, 1.8])


def test_list_frequency_ramp_gives_exact_phase():
    grid = GridSource()
    grid.play(at=0.0, segments=[GridSegment(2.0, 1.0, 1.0, 60.0, 60.5)])
    state = grid.state_at(1.0)
    assert state.frequency_hz == pytest.approx(60.25)
    assert state.phase_deg == pytest.approx(45.0)  # 360 * integral_0^1 (t/4) dt
    assert grid.state_at(2.0).phase_deg == pytest.approx(180.0)  # half a cycle gained over the ramp
    assert grid.state_at(3.0).frequency_hz == 60.0
    assert grid.state_at(3.0).phase_deg == pytest.approx(180.0)


def test_phase_advances_between_queries_inside_one_setting():
    grid = GridSource()
    grid.set_frequency(at=0.0, frequency_hz=60.1)
    assert [grid.state_at(t).phase_deg for t in (1.0, 2.0, 3.0)] == pytest.approx([36.0, 72.0, 108.0])


@settings(max_examples=150, deadline=None)
@given(st.floats(-2.0, 2.0), st.floats(0.0, 100.0), st.floats(0.0, 3600.0))
def test_phase_is_exact_for_a_frequency_offset(offset_hz, at, later_s):
    grid = GridSource()
    grid.set_frequency(at, 60.0 + offset_hz)
    expected = wrap(360.0 * offset_hz * later_s)
    got = grid.state_at(at + later_s).phase_deg
    assert -180.0 < got <= 180.0
    assert wrap(got - expected) == pytest.approx(0.0, abs=1e-6)


def test_phase_jumps_add_and_wrap():
    grid = GridSource()
    grid.phase_jump(at=1.0, degrees=170.0)
    grid.phase_jump(at=2.0, degrees=30.0)
    grid.phase_jump(at=2.0, degrees=-20.0)
    assert [grid.state_at(t).phase_deg for t in (0.5, 1.0, 2.0)] == pytest.approx([0.0, 170.0, 180.0])
    grid.phase_jump(at=3.0, degrees=15.0)
    assert grid.state_at(3.0).phase_deg == pytest.approx(-165.0)
    assert grid.next_change_after(1.0) == 2.0


def test_frequency_and_phase_keep_running_through_an_outage():
    grid = GridSource()
    grid.set_frequency(at=0.0, frequency_hz=60.25)
    grid.outage(at=1.0, duration_s=2.0)
    dead = grid.state_at(2.0)
    assert not dead.available and dead.frequency_hz == 60.25
    assert grid.state_at(4.0).phase_deg == pytest.approx(0.0, abs=1e-9)  # 0.25 Hz x 4 s = 1 cycle


@pytest.mark.parametrize(
    "call, argument",
    [
        (lambda g: g.sag(1.0, 0.5, -0.1), "duration_s"),
        (lambda g: g.sag(1.0, 0.5, 0.0), "duration_s"),
        (lambda g: g.outage(1.0, -1.0), "duration_s"),
        (lambda g: g.sag(1.0, -0.1, 1.0), "residual_pu"),
        (lambda g: g.set_voltage(1.0, -0.5), "voltage_pu"),
        (lambda g: g.set_frequency(1.0, 39.9), "frequency_hz"),
        (lambda g: g.set_frequency(1.0, 70.1), "frequency_hz"),
        (lambda g: g.sag(-1.0, 0.5, 1.0), "at"),
        (lambda g: g.phase_jump(1.0, float("nan")), "degrees"),
        (lambda g: g.play(1.0, [], 1), "segments"),
        (lambda g: g.play(1.0, [GridSegment(1.0, 1.0, 1.0, 60.0, 60.0)], 0), "repeat"),
        (lambda g: GridSegment(-1.0, 1.0, 1.0, 60.0, 60.0), "dwell_s"),
        (lambda g: GridSegment(1.0, 1.0, -1.0, 60.0, 60.0), "voltage_end_pu"),
        (lambda g: GridSegment(1.0, 1.0, 1.0, 60.0, 75.0), "frequency_end_hz"),
        (lambda g: GridSource(nominal_voltage_v=0.0), "nominal_voltage_v"),
        (lambda g: GridSource(nominal_frequency_hz=30.0), "nominal_frequency_hz"),
    ],
)
def test_invalid_inputs_name_the_argument(call, argument):
    with pytest.raises(ValueError, match=argument):
        call(GridSource())


def test_a_rejected_call_leaves_the_schedule_alone():
    grid = GridSource()
    with pytest.raises(ValueError):
        grid.sag(1.0, 0.5, -1.0)
    assert grid.next_change_after(0.0) is None
