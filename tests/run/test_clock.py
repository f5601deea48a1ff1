"""The run scheduler: lane order at shared instants, exact periodic times, time passing between."""

from __future__ import annotations

import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.clock import NS_PER_S, ClockStopped, Lane, Schedule, VirtualTime, WallTime, to_ns


class Plant:
    """Records how far the clock advanced it."""

    def __init__(self) -> None:
        self.t_s = 0.0
        self.gaps_s: list[float] = []

    def advance(self, dt_s: float) -> None:
        self.gaps_s.append(dt_s)
        self.t_s += dt_s


def virtual() -> tuple[Schedule, Plant, list[tuple[float, str, float]]]:
    plant = Plant()
    return Schedule(VirtualTime(plant.advance)), plant, []


def logger(log: list[tuple[float, str, float]], name: str, plant: Plant):
    return lambda t_s: log.append((t_s, name, plant.t_s))


def test_tasks_due_together_run_controller_then_recorder_then_steps_whatever_the_order_added():
    schedule, plant, log = virtual()
    schedule.at("step", 0.2, Lane.STEPS, logger(log, "step", plant))
    schedule.every("recorder", 0.1, Lane.RECORDER, logger(log, "recorder", plant))
    schedule.every("controller", 0.1, Lane.CONTROLLER, logger(log, "controller", plant))
    schedule.run_until(0.25)
    names_at = [name for t_s, name, _ in log if t_s == pytest.approx(0.2)]
    assert names_at == ["controller", "recorder", "step"]


def test_the_plant_is_at_each_task_time_when_the_task_runs_and_at_the_end_afterwards():
    schedule, plant, log = virtual()
    schedule.every("cycle", 0.1, Lane.CONTROLLER, logger(log, "cycle", plant))
    schedule.at("odd step", 0.137, Lane.STEPS, logger(log, "odd step", plant))
    schedule.run_until(0.5)
    for t_s, _, plant_t_s in log:
        assert plant_t_s == pytest.approx(t_s, abs=1e-12)
    assert (0.137, "odd step") in [(round(t, 9), name) for t, name, _ in log]
    assert plant.t_s == pytest.approx(0.5)
    assert schedule.now_s == 0.5


def test_periodic_times_do_not_drift_over_many_periods():
    schedule, _, _ = virtual()
    times: list[float] = []
    schedule.every("cycle", 0.1, Lane.CONTROLLER, times.append)
    schedule.run_until(1000.0)
    assert len(times) == 10_000
    assert [to_ns(t) for t in times] == [k * NS_PER_S // 10 for k in range(10_000)]


def test_an_instant_at_the_end_is_left_for_the_next_call_and_never_run_twice():
    schedule, plant, log = virtual()
    schedule.every("cycle", 0.5, Lane.CONTROLLER, logger(log, "cycle", plant))
    schedule.run_until(1.0)
    schedule.run_until(2.0)
    assert [t for t, _, _ in log] == [0.0, 0.5, 1.0, 1.5]


def test_a_step_in_the_past_or_a_bad_period_is_refused():
    schedule, _, _ = virtual()
    schedule.run_until(1.0)
    with pytest.raises(ValueError, match="before the clock's present"):
        schedule.at("late", 0.5, Lane.STEPS, print)
    with pytest.raises(ValueError, match="period_s must be more than 0"):
        schedule.every("never", 0.0, Lane.RECORDER, print)


def test_a_task_that_raises_ends_the_run_at_its_instant():
    schedule, plant, _ = virtual()

    def fail(t_s: float) -> None:
        raise RuntimeError(f"instrument timeout at {t_s}")

    schedule.at("fails", 0.3, Lane.STEPS, fail)
    with pytest.raises(RuntimeError, match="timeout"):
        schedule.run_until(1.0)
    assert plant.t_s == pytest.approx(0.3)


@settings(max_examples=60, deadline=None)
@given(
    periods_ms=st.lists(st.integers(1, 400), min_size=1, max_size=4),
    steps_ms=st.lists(st.integers(0, 1999), max_size=5),
    end_ms=st.integers(1, 2000),
)
def test_every_task_runs_once_per_due_instant_in_time_then_lane_order(periods_ms, steps_ms, end_ms):
    schedule, plant, log = virtual()
    lanes = (Lane.CONTROLLER, Lane.RECORDER)
    for k, period in enumerate(periods_ms):
        schedule.every(f"p{k}", period / 1000, lanes[k % 2], logger(log, f"p{k}", plant))
    for k, at in enumerate(sorted(steps_ms)):
        schedule.at(f"s{k}", at / 1000, Lane.STEPS, logger(log, f"s{k}", plant))
    schedule.run_until(end_ms / 1000)
    for k, period in enumerate(periods_ms):
        runs = [t for t, name, _ in log if name == f"p{k}"]
        assert len(runs) == -(-end_ms // period)
    assert sum(1 for _, name, _ in log if name.startswith("s")) == sum(1 for at in steps_ms if at < end_ms)
    keys = [(to_ns(t), 2 if name.startswith("s") else int(name[1:]) % 2) for t, name, _ in log]
    assert keys == sorted(keys)
    assert plant.t_s == pytest.approx(end_ms / 1000)
    assert all(gap > 0 for gap in plant.gaps_s)


def test_wall_time_keeps_the_same_order_and_reaches_the_end_on_the_wall_clock():
    plant = Plant()
    schedule = Schedule(WallTime())
    log: list[tuple[float, str, float]] = []
    schedule.every("recorder", 0.01, Lane.RECORDER, logger(log, "recorder", plant))
    schedule.every("controller", 0.01, Lane.CONTROLLER, logger(log, "controller", plant))
    started = time.monotonic()
    schedule.run_until(0.05)
    assert time.monotonic() - started >= 0.04
    assert [name for _, name, _ in log] == ["controller", "recorder"] * 5
    assert schedule.now_s == 0.05


def test_setting_the_wall_clocks_stop_ends_the_wait():
    stop = threading.Event()
    schedule = Schedule(WallTime(stop))
    schedule.at("stopper", 0.0, Lane.STEPS, lambda _t: stop.set())
    with pytest.raises(ClockStopped):
        schedule.run_until(60.0)
