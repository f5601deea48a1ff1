"""Safe state on every exit path: fakes for the guard's rules, the simulated bench for the real thing."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.base import DriverConfig
from drivers.chroma_61800 import ListStep
from drivers.errors import InstrumentTimeout
from harness.bench_file import Bench, parse_bench_text
from harness.safety import (
    SAFE_ORDER,
    SafeOutcome,
    SafeStateError,
    SafeStateGuard,
    Terminated,
    make_safe,
)
from harness.sim.bench import SimBench
from harness.sim.packs import InjectedFault
from harness.sim.plant import PlantConfig
from harness.sim.standins.wiring import GridBreaker, PackBmsLink, PcsUnit
from tests.harness import FakeDriver, calls, fake_registry, reference_controller

ROLES = ("battery", "grid", "load", "load_meter", "pcc_meter", "relays", "controller")


@pytest.fixture
def registry():
    with fake_registry():
        yield


def fakes(**behaviours: str) -> dict[str, FakeDriver]:
    """Role -> a fake driver with that behaviour (``ok``, ``unsafe``, ``stuck``)."""
    return {role: FakeDriver(DriverConfig(role, f"fake://{how}")) for role, how in behaviours.items()}


def test_every_driver_goes_safe_once_loads_first_meters_last(registry):
    drivers = fakes(pcc_meter="ok", relays="ok", battery="ok", controller="ok", grid="ok", load="ok")
    with SafeStateGuard(drivers) as guard:
        assert calls("safe") == []
    assert calls("safe") == ["load", "battery", "grid", "relays", "pcc_meter", "controller"]
    assert guard.report is not None and guard.report.ok
    assert [result.role for result in guard.report.results] == calls("safe")


def test_an_exception_propagates_unchanged_after_every_driver_went_safe(registry):
    problem = InstrumentTimeout("grid", "fake://ok", "MEASure:VOLTage:AC?", "no reply within 2.0 s")
    with pytest.raises(InstrumentTimeout) as caught, SafeStateGuard(fakes(battery="ok", grid="ok")):
        raise problem
    assert caught.value is problem
    assert not hasattr(caught.value, "__notes__")
    assert sorted(calls("safe")) == ["battery", "grid"]


def test_a_driver_that_fails_to_go_safe_does_not_stop_the_others(registry):
    guard = SafeStateGuard(fakes(load="ok", battery="unsafe", relays="ok"))
    with pytest.raises(SafeStateError) as caught, guard:
        pass
    assert calls("safe") == ["load", "battery", "relays"]
    report = caught.value.report
    assert report is guard.report
    assert [result.role for result in report.failures] == ["battery"]
    assert report["battery"].outcome is SafeOutcome.ERROR
    assert "InstrumentTimeout" in report["battery"].detail and "OUTPut OFF" in report["battery"].detail
    assert "battery: error (InstrumentTimeout" in str(caught.value)


def test_a_failure_to_go_safe_is_noted_on_the_original_exception_never_instead_of_it(registry):
    with pytest.raises(KeyboardInterrupt) as caught, SafeStateGuard(fakes(battery="unsafe", grid="ok")):
        raise KeyboardInterrupt
    notes = caught.value.__notes__
    assert len(notes) == 1
    assert "battery: error" in notes[0] and "grid: ok" in notes[0]


def test_a_stuck_driver_is_reported_at_its_deadline_and_the_guard_moves_on(registry):
    started = time.monotonic()
    guard = SafeStateGuard(fakes(load="stuck", grid="ok"), deadline_s=0.2)
    with pytest.raises(SafeStateError) as caught, guard:
        pass
    assert time.monotonic() - started < 5.0
    report = caught.value.report
    assert report["load"].outcome is SafeOutcome.TIMED_OUT
    assert 0.2 <= report["load"].elapsed_s < 5.0
    assert "still running after 0.2 s" in report["load"].detail
    assert report["grid"].outcome is SafeOutcome.OK


@pytest.mark.parametrize(
    ("signum", "raised"), [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, Terminated)]
)
def test_a_signal_inside_raises_in_the_main_thread_and_handlers_are_restored(registry, signum, raised):
    def previous(number, frame):
        raise AssertionError("the guard's own handler should have run")

    original = signal.signal(signum, previous)
    try:
        with pytest.raises(raised), SafeStateGuard(fakes(battery="ok")):
            signal.raise_signal(signum)
            pytest.fail("the signal did not interrupt the block")
        assert signal.getsignal(signum) is previous
    finally:
        signal.signal(signum, original)
    assert calls("safe") == ["battery"]


def test_a_signal_while_going_safe_waits_until_every_driver_is_safe(registry, monkeypatch):
    drivers = fakes(load="ok", battery="ok", grid="ok")
    ok_safe = FakeDriver.safe

    def interrupted_safe(self):
        ok_safe(self)
        if self.role == "load":
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(FakeDriver, "safe", interrupted_safe)
    with pytest.raises(Terminated) as caught, SafeStateGuard(drivers):
        pass
    assert calls("safe") == ["load", "battery", "grid"]
    assert "grid: ok" in caught.value.__notes__[0]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_outside_the_main_thread_the_guard_goes_safe_without_touching_signals(registry):
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    seen: list[BaseException] = []

    def run() -> None:
        try:
            with SafeStateGuard(fakes(battery="ok")):
                assert {signum: signal.getsignal(signum) for signum in before} == before
                raise ValueError("boom")
        except BaseException as error:
            seen.append(error)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(10.0)
    assert [type(error) for error in seen] == [ValueError]
    assert calls("safe") == ["battery"]


def test_making_safe_outside_a_guard_reports_and_never_raises(registry):
    report = make_safe(fakes(relays="unsafe", load="ok"), deadline_s=1.0)
    assert str(report.results[0]) == "load: ok"
    assert [result.role for result in report.failures] == ["relays"]
    assert str(report).startswith("safe state: load: ok; relays: error (InstrumentTimeout: ")


def test_a_deadline_must_be_positive():
    with pytest.raises(ValueError, match="more than 0"):
        SafeStateGuard({}, deadline_s=0.0)


BODY_ENDINGS: dict[str, Callable[[], BaseException] | None] = {
    "normal": None,
    "error": lambda: RuntimeError("test failed"),
    "keyboard": KeyboardInterrupt,
    "timeout": lambda: InstrumentTimeout("grid", "fake://ok", "MEASure:VOLTage:AC?", "no reply"),
}
behaviour_maps = st.dictionaries(st.sampled_from(ROLES), st.sampled_from(["ok", "unsafe"]))


@settings(max_examples=100, deadline=None)
@given(behaviours=behaviour_maps, ending=st.sampled_from(sorted(BODY_ENDINGS)))
def test_whatever_fails_every_driver_is_asked_once_and_the_body_exception_wins(behaviours, ending):
    make = BODY_ENDINGS[ending]
    ended = make() if make is not None else None
    with fake_registry():
        guard = SafeStateGuard(fakes(**behaviours))
        raised: BaseException | None = None
        try:
            with guard:
                if ended is not None:
                    raise ended
        except BaseException as error:
            raised = error
        first = [role for role in SAFE_ORDER if role in behaviours]
        assert calls("safe") == first + [role for role in behaviours if role not in SAFE_ORDER]
        assert guard.report is not None
        assert {result.role: result.outcome is SafeOutcome.OK for result in guard.report.results} == {
            role: behaviour == "ok" for role, behaviour in behaviours.items()
        }
        failed = "unsafe" in behaviours.values()
        if ending == "normal":
            assert isinstance(raised, SafeStateError) if failed else raised is None
        else:
            assert raised is ended
            assert hasattr(raised, "__notes__") == failed


# ------------------------------------------------------------------ the simulated bench


SMALL = PlantConfig(packs=4, pcs_rated_w=1.2e6, pv_rated_w=0.0, load_rated_w=0.4e6)
STEP_S = 0.05
PCS_UNIT_0, GRID_BREAKER, BMS_LINK_0 = 0, 4, 9
"""Relays of the default wiring for a plant of 4 packs (checked in the ``sim`` fixture)."""


@pytest.fixture(scope="module")
def sim():
    with SimBench(SMALL) as started:
        targets = started.standins["relays"].wiring.targets
        assert targets[PCS_UNIT_0] == PcsUnit(0)
        assert targets[GRID_BREAKER] == GridBreaker()
        assert targets[BMS_LINK_0] == PackBmsLink(0)
        yield started


@pytest.fixture(scope="module")
def bench(sim):
    with reference_controller(sim) as controller:
        spec = parse_bench_text(sim.bench_file(controller.face_resource), "sim.toml")
        with Bench.open(spec) as opened:
            yield opened


def script(sim: SimBench, bench: Bench) -> list[Callable[[], None]]:
    """A test's use of the bench that leaves every output live, one step per instrument action."""
    battery, grid, load, relays = bench["battery"], bench["grid"], bench["load"], bench["relays"]
    nominal_v = sim.plant.grid.nominal_voltage_v / 3**0.5
    steps: list[Callable[[], None]] = [
        *(lambda channel=channel: battery.set_output(channel, True) for channel in range(1, SMALL.packs + 1)),
        lambda: load.constant_power(0.2e6),
        load.on,
        lambda: grid.output(True),
        grid.restore,
        lambda: grid.play([ListStep.hold(5.0, nominal_v * 0.9, 60.0), ListStep.hold(5.0, nominal_v, 59.5)]),
        *(lambda relay=relay: relays.on(relay) for relay in (PCS_UNIT_0, GRID_BREAKER, BMS_LINK_0)),
    ]
    return [step for action in steps for step in (action, lambda: sim.advance(STEP_S))]


def live(sim: SimBench) -> None:
    """The whole script ran: the plant shows every output it switched on."""
    plant = sim.plant
    with sim.lock:
        assert plant.packs.contactor_closed.all()
        assert plant.load.demand_w(plant.t) > 0
        assert plant.grid.state_at(plant.t).available
        assert not plant.pcs.units[0].available
        assert plant.utility_breaker_open
        assert plant.packs.injected(InjectedFault.BMS_COMMS_LOSS)[0]


def safe(sim: SimBench) -> None:
    """Ground truth of the safe state (grid per the default policy "off": an outage at the plant)."""
    plant = sim.plant
    with sim.lock:
        assert not plant.packs.contactor_closed.any()
        assert plant.load.demand_w(plant.t) == 0
        assert all(unit.available for unit in plant.pcs.units)
        assert not plant.utility_breaker_open
        assert not plant.packs.injected(InjectedFault.CONTACTOR_FAILED_OPEN).any()
        assert not plant.packs.injected(InjectedFault.BMS_COMMS_LOSS).any()
        assert not plant.grid.state_at(plant.t).available


def interrupt(how: str) -> None:
    if how == "keyboard":
        raise KeyboardInterrupt
    if how == "timeout":
        raise InstrumentTimeout("grid", "TCPIP::127.0.0.1::1::SOCKET", "MEASure:VOLTage:AC?", "no reply")
    signal.raise_signal(signal.SIGINT if how == "sigint" else signal.SIGTERM)
    raise AssertionError("the signal did not interrupt the script")


EXPECTED = {
    "keyboard": KeyboardInterrupt,
    "sigint": KeyboardInterrupt,
    "sigterm": Terminated,
    "timeout": InstrumentTimeout,
}


@settings(max_examples=25, deadline=None)
@given(data=st.data(), how=st.sampled_from(["finish", *sorted(EXPECTED)]))
def test_the_simulated_bench_is_safe_however_a_run_ends(sim, bench, data, how):
    steps = script(sim, bench)
    stop_at = len(steps) if how == "finish" else data.draw(st.integers(0, len(steps) - 1), label="stop at")
    guard = SafeStateGuard(bench.drivers, bench.spec.safe_deadline_s)
    try:
        with guard:
            for step in steps[:stop_at]:
                step()
            if how == "finish":
                live(sim)
            else:
                interrupt(how)
    except BaseException as error:
        assert type(error) is EXPECTED[how], error
    else:
        assert how == "finish"
    assert guard.report is not None and guard.report.ok, guard.report
    sim.advance(STEP_S)
    safe(sim)
