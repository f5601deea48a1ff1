"""Compute-rack profiles and the ride-through / drop / restart machine."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.sim.load import CheckpointDips, ComputeLoad, Constant, RackState, Steps, TrainingSwings

MS = 1e-3


class Bus:
    """Drives a ComputeLoad through (voltage_pu, duration_s) pieces at a fixed sub-step, like the plant."""

    def __init__(self, load: ComputeLoad, dt: float = MS) -> None:
        self.load = load
        self.dt = dt
        self.t = 0.0
        self.states: list[tuple[float, RackState]] = []

    def hold(self, voltage_pu: float, duration_s: float) -> None:
        for _ in range(round(duration_s / self.dt)):
            self.load.update(self.t, self.dt, voltage_pu)
            self.t += self.dt
            if not self.states or self.states[-1][1] is not self.load.state:
                self.states.append((self.t, self.load.state))

    def first_time(self, state: RackState) -> float:
        return next(t for t, s in self.states if s is state)


# --- profiles ---------------------------------------------------------------------------------


def test_constant():
    assert [Constant(0.3).fraction(t) for t in (0.0, 5.0, 1e6)] == [0.3, 0.3, 0.3]
    with pytest.raises(ValueError, match="level"):
        Constant(1.2)


SWINGS = TrainingSwings(period_s=1.0, duty=0.75, low=0.15, high=1.0, edge_s=0.1)


def test_training_swing_trapezoid_shape():
    f = SWINGS.fraction
    mid = (0.15 + 1.0) / 2
    assert [f(0.0), f(0.05), f(0.1), f(0.5), f(0.75), f(0.8), f(0.85), f(0.99)] == pytest.approx(
        [0.15, mid, 1.0, 1.0, 1.0, mid, 0.15, 0.15]
    )


def test_training_swing_period_duty_and_edges_measured():
    dt = 1e-3
    samples = [SWINGS.fraction(k * dt) for k in range(10_000)]
    mid = (0.15 + 1.0) / 2
    rising = [k * dt for k in range(1, len(samples)) if samples[k - 1] < mid <= samples[k]]
    assert [b - a for a, b in pairwise(rising)] == pytest.approx([1.0] * 9, abs=1.5 * dt)
    assert sum(s >= mid for s in samples) / len(samples) == pytest.approx(0.75, abs=2e-3)
    ten, ninety = 0.15 + 0.1 * 0.85, 0.15 + 0.9 * 0.85
    edge_samples = sum(ten < s < ninety for s in samples[:1000])
    assert edge_samples * dt == pytest.approx(
        2 * 0.8 * 0.1, abs=3 * dt
    )  # two edges, 10-90 % = 80 % of edge_s


def test_square_swings_when_edges_are_zero():
    square = TrainingSwings(period_s=0.5, duty=0.6, low=0.2, high=0.9, edge_s=0.0)
    assert [square.fraction(t) for t in (0.0, 0.29, 0.3, 0.49, 0.5)] == [0.9, 0.9, 0.2, 0.2, 0.9]


def test_jitter_varies_iterations_reproducibly_on_the_period_grid():
    jittery = TrainingSwings(period_s=1.0, duty=0.7, low=0.2, high=1.0, edge_s=0.05, jitter=0.2, seed=7)
    peaks = {round(max(jittery.fraction(k + j * 0.01) for j in range(100)), 6) for k in range(20)}
    assert len(peaks) > 10
    assert all(jittery.fraction(float(k)) == pytest.approx(0.2) for k in range(20))
    again = TrainingSwings(period_s=1.0, duty=0.7, low=0.2, high=1.0, edge_s=0.05, jitter=0.2, seed=7)
    other = TrainingSwings(period_s=1.0, duty=0.7, low=0.2, high=1.0, edge_s=0.05, jitter=0.2, seed=8)
    times = [k * 0.013 for k in range(2000)]
    assert [jittery.fraction(t) for t in times] == [again.fraction(t) for t in times]
    assert [jittery.fraction(t) for t in times] != [other.fraction(t) for t in times]


@st.composite
def swings(draw):
    period_s = draw(st.floats(1 / 3, 5.0))
    duty = draw(st.floats(0.6, 0.85))
    low = draw(st.floats(0.0, 0.5))
    high = draw(st.floats(low, 1.0))
    jitter = draw(st.floats(0.0, 0.15))
    room_s = min(duty * (1 - jitter), 1 - duty * (1 + jitter)) * period_s
    edge_s = draw(st.floats(0.0, 1.0)) * min(0.2, room_s)
    return TrainingSwings(period_s, duty, low, high, edge_s, jitter, draw(st.integers(0, 2**31)))


@settings(max_examples=150, deadline=None)
@given(swings(), st.floats(-1e4, 1e5))
def test_swings_stay_within_low_and_high(profile, t):
    assert profile.low <= profile.fraction(t) <= profile.high


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"period_s": 0.0}, "period_s"),
        ({"duty": 1.0}, "duty"),
        ({"low": 0.8, "high": 0.5}, "low"),
        ({"high": 1.1}, "high"),
        ({"edge_s": 0.3}, "edge_s"),
        ({"jitter": 1.0}, "jitter"),
    ],
)
def test_swing_validation(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        TrainingSwings(**kwargs)


def test_checkpoint_dips_every_interval_after_the_first():
    dips = CheckpointDips(base=0.8, interval_s=600.0, duration_s=60.0, level=0.1)
    assert [dips.fraction(t) for t in (0.0, 30.0, 599.9, 600.0, 659.9, 660.0, 1200.0, 1260.0)] == [
        0.8,
        0.8,
        0.8,
        0.1,
        0.1,
        0.8,
        0.1,
        0.8,
    ]


def test_checkpoint_dips_over_a_swinging_base():
    dips = CheckpointDips(base=SWINGS, interval_s=100.0, duration_s=30.0, level=0.05)
    assert [dips.fraction(t) for t in (0.5, 50.05, 130.5)] == [
        SWINGS.fraction(t) for t in (0.5, 50.05, 130.5)
    ]
    assert dips.fraction(110.5) == 0.05


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"base": 1.5}, "base"),
        ({"interval_s": 0.0}, "interval_s"),
        ({"duration_s": 700.0}, "duration_s"),
        ({"level": -0.1}, "level"),
    ],
)
def test_checkpoint_validation(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        CheckpointDips(**({"base": 0.8, "interval_s": 600.0, "duration_s": 60.0, "level": 0.1} | kwargs))


def test_steps_hold_each_level_until_the_next():
    steps = Steps(((5.0, 0.2), (10.0, 0.9), (20.0, 0.0)))
    assert [steps.fraction(t) for t in (0.0, 5.0, 9.99, 10.0, 19.0, 25.0)] == [0.0, 0.2, 0.2, 0.9, 0.9, 0.0]


@pytest.mark.parametrize(
    "points, argument",
    [
        ((), "points"),
        (((1.0, 0.5), (1.0, 0.6)), "points"),
        (((-1.0, 0.5),), "points"),
        (((0.0, 1.5),), "level"),
    ],
)
def test_steps_validation(points, argument):
    with pytest.raises(ValueError, match=argument):
        Steps(points)


# --- the racks --------------------------------------------------------------------------------


def test_demand_is_profile_times_rated_under_the_cap():
    load = ComputeLoad(rated_w=4e6, profile=Constant(0.8))
    assert load.demand_w(1.0) == pytest.approx(3.2e6)
    load.power_cap_w = 2e6
    assert load.demand_w(1.0) == 2e6
    assert load.uncapped_demand_w(1.0) == pytest.approx(3.2e6)
    assert load.requested_w(1.0) == 2e6
    load.power_cap_w = 5e6
    assert load.demand_w(1.0) == pytest.approx(3.2e6)
    with pytest.raises(ValueError, match="power_cap_w"):
        load.power_cap_w = -1.0


def test_profiles_switch_at_their_time_and_start_their_own_clock():
    load = ComputeLoad(rated_w=1e6, profile=Constant(0.5))
    load.set_profile(Steps(((0.0, 0.3), (10.0, 1.0))), at=100.0)
    assert [load.demand_w(t) for t in (99.9, 100.0, 109.9, 110.0)] == pytest.approx([5e5, 3e5, 3e5, 1e6])
    load.set_profile(Constant(0.1), at=100.0)
    assert load.demand_w(105.0) == pytest.approx(1e5)
    with pytest.raises(ValueError, match="at"):
        load.set_profile(Constant(0.1), at=-1.0)


def test_a_15_ms_dropout_is_ridden_through_on_holdup():
    load = ComputeLoad()
    bus = Bus(load)
    bus.hold(1.0, 0.01)
    bus.hold(0.0, 0.015)
    assert load.state is RackState.RIDING_THROUGH
    assert load.draw_w(bus.t, 0.0) == 0.0
    assert load.requested_w(bus.t) == load.demand_w(bus.t)
    bus.hold(1.0, 0.01)
    assert load.state is RackState.RUNNING and load.drop_count == 0


def test_a_17_ms_dropout_drops_the_racks():
    load = ComputeLoad()
    bus = Bus(load)
    bus.hold(1.0, 0.01)
    bus.hold(0.0, 0.017)
    assert load.state is RackState.DROPPED and load.drop_count == 1
    assert bus.first_time(RackState.DROPPED) == pytest.approx(0.027, abs=1e-9)
    assert load.requested_w(bus.t) == 0.0 and load.draw_w(bus.t, 1.0) == 0.0


def test_racks_draw_through_a_tolerated_sag_and_drop_on_a_long_one():
    load = ComputeLoad()
    bus = Bus(load, dt=10 * MS)
    bus.hold(0.75, 0.4)
    assert load.state is RackState.RIDING_THROUGH
    assert load.draw_w(bus.t, 0.75) == load.demand_w(bus.t)
    bus.hold(1.0, 0.1)
    bus.hold(0.75, 0.6)
    assert load.state is RackState.DROPPED


def test_restart_waits_for_a_healthy_bus_then_ramps():
    load = ComputeLoad(restart_delay_s=30.0, restart_ramp_s=10.0)
    bus = Bus(load, dt=10 * MS)
    bus.hold(0.0, 1.0)  # dropped after the hold-up
    bus.hold(1.0, 20.0)
    bus.hold(0.8, 0.5)  # an unhealthy spell resets the wait
    healthy_from = bus.t
    bus.hold(1.0, 29.9)
    assert load.state is RackState.DROPPED
    bus.hold(1.0, 0.2)
    assert bus.first_time(RackState.RESTARTING) == pytest.approx(healthy_from + 30.0, abs=10 * MS)
    assert load.online_share(healthy_from + 35.0) == pytest.approx(0.5)
    assert load.requested_w(healthy_from + 35.0) == pytest.approx(0.5 * load.demand_w(healthy_from + 35.0))
    bus.hold(1.0, 10.0)
    assert load.state is RackState.RUNNING
    assert bus.first_time(RackState.RUNNING) == pytest.approx(healthy_from + 40.0, abs=10 * MS)
    assert load.drop_count == 1


def test_restart_timing_does_not_depend_on_the_step_size():
    load = ComputeLoad(restart_delay_s=30.0, restart_ramp_s=10.0)
    bus = Bus(load)
    bus.hold(0.0, 0.02)
    healthy_from = bus.t
    bus.dt = 0.7
    bus.hold(1.0, 31.5)
    assert load.state is RackState.RESTARTING
    assert load.online_share(healthy_from + 35.0) == pytest.approx(0.5, abs=1e-9)


def test_a_drop_during_restart_counts_again():
    load = ComputeLoad(restart_delay_s=1.0, restart_ramp_s=5.0)
    bus = Bus(load)
    bus.hold(0.0, 0.02)
    bus.hold(1.0, 2.0)
    assert load.state is RackState.RESTARTING
    bus.hold(0.0, 0.02)
    assert load.state is RackState.DROPPED and load.drop_count == 2


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"rated_w": 0.0}, "rated_w"),
        ({"holdup_s": -1.0}, "holdup_s"),
        ({"restart_delay_s": -1.0}, "restart_delay_s"),
        ({"restart_ramp_s": -1.0}, "restart_ramp_s"),
    ],
)
def test_load_validation(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        ComputeLoad(**kwargs)


profiles = st.one_of(
    st.floats(0.0, 1.0).map(Constant),
    swings(),
    st.builds(CheckpointDips, swings(), st.just(60.0), st.floats(1.0, 59.0), st.floats(0.0, 1.0)),
    st.lists(
        st.tuples(st.floats(0.0, 1e4), st.floats(0.0, 1.0)), min_size=1, max_size=6, unique_by=lambda p: p[0]
    )
    .map(sorted)
    .map(lambda points: Steps(tuple(points))),
)


@settings(max_examples=150, deadline=None)
@given(profiles, st.floats(1e3, 1e8), st.one_of(st.none(), st.floats(0.0, 1e9)), st.floats(0.0, 1e5))
def test_demand_within_zero_and_rated(profile, rated_w, cap_w, t):
    load = ComputeLoad(rated_w=rated_w, profile=profile)
    load.power_cap_w = cap_w
    demand = load.demand_w(t)
    assert 0.0 <= demand <= rated_w * (1 + 1e-12)
    assert demand <= load.uncapped_demand_w(t)
    if cap_w is not None:
        assert demand <= cap_w
    assert 0.0 <= load.requested_w(t) <= demand
