"""The Chroma 61800 driver: exact messages (protocol pairs), limits, and the stand-in over TCP."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.base import DriverConfig
from drivers.chroma_61800 import GridReading, GridSimulator, ListStep, SafePolicy
from drivers.errors import GarbageReply, InstrumentRejected, LimitViolation
from drivers.registry import driver_class
from harness.sim.standins.grid_simulator import GridSimulator as GridStandIn
from tests.drivers.pairs import expect, garbage_instrument, rejected
from tests.sim.standins import run

RESOURCE = "TCPIP::10.0.0.21::5025::SOCKET"
NOMINAL_LN_V = 480.0 / math.sqrt(3.0)
NOMINAL = {"safe_policy": "nominal", "nominal_voltage_v": 277.0, "nominal_frequency_hz": 60.0}
LIST_PROGRAM = [
    ("TRIGger:STATe OFF", None),
    ("OUTPut:MODE FIXED", None),
    ("LIST:COUPle ALL", None),
    ("LIST:COUNt 2", None),
    ("LIST:BASE TIME", None),
    ("LIST:TRIGger AUTO", None),
    ("LIST:SHAPe A,A", None),
    ("LIST:DWELl 200,1500", None),
    ("LIST:VOLTage:AC:STARt 277,138.5", None),
    ("LIST:VOLTage:AC:END 138.5,138.5", None),
    ("LIST:FREQuency:STARt 60,59.5", None),
    ("LIST:FREQuency:END 60,60.25", None),
    ("OUTPut:MODE LIST", None),
    ("TRIGger:STATe ON", None),
]
STEPS = [ListStep(0.2, 277.0, 138.5, 60.0, 60.0), ListStep(1.5, 138.5, 138.5, 59.5, 60.25)]


def grid(limits: dict[str, float] | None = None, **options: object) -> GridSimulator:
    return GridSimulator(DriverConfig("grid", RESOURCE, limits=limits or {}, options=options))


def test_a_bench_file_finds_it_by_name():
    assert driver_class("chroma-61800") is GridSimulator


# ---------------------------------------------------------------- every command, byte for byte


@pytest.mark.parametrize(
    ("call", "sent"),
    [
        (lambda d: d.set_voltage(230), "SOURce:VOLTage:LEVel:IMMediate:AMPLitude:AC 230"),
        (lambda d: d.set_voltage(277.128129), "SOURce:VOLTage:LEVel:IMMediate:AMPLitude:AC 277.128129"),
        (lambda d: d.set_frequency(59.95), "SOURce:FREQuency:IMMediate 59.95"),
        (lambda d: d.set_current_limit(42.5), "SOURce:CURRent:LIMit 42.5"),
        (lambda d: d.output(True), "OUTPut:STATe ON"),
        (lambda d: d.output(False), "OUTPut:STATe OFF"),
        (lambda d: d.outage(), "OUTPut:RELay OFF"),
        (lambda d: d.restore(), "OUTPut:RELay ON"),
    ],
)
def test_each_setting_is_one_exact_message(call, sent):
    driver = grid()
    with expect(driver, [(sent, None)]):
        call(driver)


def test_play_programs_the_list_as_the_svp_driver_then_triggers():
    driver = grid()
    with expect(driver, LIST_PROGRAM):
        driver.play(STEPS, count=2)


def test_a_hold_step_is_flat():
    assert ListStep.hold(0.5, 230.0, 50.0) == ListStep(0.5, 230.0, 230.0, 50.0, 50.0)


@pytest.mark.parametrize(("reply", "running"), [("RUNNING", True), ("OFF", False), ("off", False)])
def test_list_running_reads_the_trigger_state(reply, running):
    driver = grid()
    with expect(driver, [("TRIGger:STATe?", reply)]):
        assert driver.list_running() is running


def test_stop_list_leaves_list_mode():
    driver = grid()
    with expect(driver, [("TRIGger:STATe OFF", None), ("OUTPut:MODE FIXED", None)]):
        driver.stop_list()


def test_measure_asks_each_quantity():
    driver = grid()
    pairs = [
        ("MEASure:VOLTage:AC?", "277.1"),
        ("MEASure:FREQuency?", "59.98"),
        ("MEASure:CURRent:AC?", "120.5"),
        ("MEASure:POWer:AC?", "-1.5E+5"),
    ]
    with expect(driver, pairs):
        assert driver.measure() == GridReading(277.1, 59.98, 120.5, -150000.0)


def test_safe_off_switches_the_output_off():
    driver = grid()
    assert driver.safe_policy is SafePolicy.OFF
    with expect(driver, [("OUTPut:STATe OFF", None)]):
        driver.safe()


def test_safe_nominal_stops_the_list_and_brings_the_nominal_grid_back():
    driver = grid(**NOMINAL)
    pairs = [
        ("TRIGger:STATe OFF", None),
        ("OUTPut:MODE FIXED", None),
        ("SOURce:VOLTage:LEVel:IMMediate:AMPLitude:AC 277", None),
        ("SOURce:FREQuency:IMMediate 60", None),
        ("OUTPut:RELay ON", None),
        ("OUTPut:STATe ON", None),
    ]
    with expect(driver, pairs):
        driver.safe()


def test_a_rejected_setting_is_the_instruments_error():
    driver = grid()
    command = "SOURce:FREQuency:IMMediate 59.5"
    with (
        expect(driver, [(command, rejected(-221, "Settings conflict;frequency change while a LIST runs"))]),
        pytest.raises(InstrumentRejected, match="LIST runs") as caught,
    ):
        driver.set_frequency(59.5)
    assert (caught.value.code, caught.value.command) == (-221, command)


# ---------------------------------------------------------------- limits: nothing reaches the wire


@pytest.mark.parametrize(
    ("limits", "call"),
    [
        ({}, lambda d: d.set_voltage(300.5)),
        ({}, lambda d: d.set_voltage(-1)),
        ({"voltage_max": 250.0}, lambda d: d.set_voltage(260)),
        ({}, lambda d: d.set_frequency(10)),
        ({}, lambda d: d.set_frequency(float("nan"))),
        ({"frequency_min": 55.0}, lambda d: d.set_frequency(54.9)),
        ({"frequency_max": 65.0}, lambda d: d.set_frequency(65.1)),
        ({"current_max": 40.0}, lambda d: d.set_current_limit(41)),
        ({}, lambda d: d.play([])),
        ({}, lambda d: d.play([ListStep.hold(1.0, 230, 50)] * 101)),
        ({}, lambda d: d.play([ListStep.hold(1.0, 230, 50)], count=0)),
        ({}, lambda d: d.play([ListStep.hold(0.00001, 230, 50)])),
        (
            {"voltage_max": 250.0},
            lambda d: d.play([ListStep.hold(1, 230, 50), ListStep(1, 230, 251, 50, 50)]),
        ),
        ({"frequency_min": 45.0}, lambda d: d.play([ListStep(1, 230, 230, 50, 44)])),
        ({"frequency_max": 55.0}, lambda d: d.play([ListStep(1, 230, 230, 56, 50)])),
    ],
)
def test_a_setting_outside_the_limits_sends_nothing(limits, call):
    driver = grid(limits)
    with expect(driver, []), pytest.raises(LimitViolation) as caught:
        call(driver)
    assert caught.value.role == "grid"
    assert caught.value.command


@settings(max_examples=100, deadline=None)
@given(
    window=st.tuples(st.floats(15.0, 1000.0), st.floats(15.0, 1000.0)).map(sorted),
    hz=st.floats(0.0, 1100.0),
)
def test_a_frequency_is_sent_exactly_when_within_the_bench_window(window, hz):
    low, high = window
    driver = grid({"frequency_min": low, "frequency_max": high})
    within = low <= hz <= high
    with expect(driver, [(f"SOURce:FREQuency:IMMediate {hz:.9g}", None)] if within else []):
        if within:
            driver.set_frequency(hz)
        else:
            with pytest.raises(LimitViolation, match="frequency"):
                driver.set_frequency(hz)


@pytest.mark.parametrize(
    ("limits", "options", "problem"),
    [
        ({"frequency_min": 61.0, "frequency_max": 59.0}, {}, "frequency_min"),
        ({"frequency_max": 2000.0}, {}, "frequency_max"),
        ({}, {"safe_policy": "maybe"}, "safe_policy"),
        ({}, {"safe_policy": "nominal"}, "nominal"),
        ({}, {**NOMINAL, "nominal_voltage_v": 0.0}, "nominal_voltage_v"),
        ({"voltage_max": 250.0}, NOMINAL, "nominal"),
        ({"frequency_max": 55.0}, NOMINAL, "nominal"),
    ],
)
def test_a_bench_file_that_cannot_work_is_refused(limits, options, problem):
    with pytest.raises(LimitViolation, match=problem):
        grid(limits, **options)


# ---------------------------------------------------------------- garbage


@pytest.mark.parametrize(
    ("call", "sent", "reply"),
    [
        (lambda d: d.list_running(), "TRIGger:STATe?", "1"),
        (lambda d: d.list_running(), "TRIGger:STATe?", "PAUSED"),
        (lambda d: d.measure(), "MEASure:VOLTage:AC?", "277.1 V"),
    ],
)
def test_garbage_replies_are_garbage_errors(call, sent, reply):
    driver = grid()
    with expect(driver, [(sent, reply)]), pytest.raises(GarbageReply) as caught:
        call(driver)
    assert caught.value.command == sent


def test_an_instrument_answering_garbage_over_the_wire():
    with garbage_instrument("Chroma,61845,0,1.0") as resource:
        config = DriverConfig("grid", resource, options={"timeout_s": 1.0})
        with GridSimulator(config) as driver:
            driver.set_voltage(230.0)
            with pytest.raises(GarbageReply, match="TRIGger:STATe"):
                driver.list_running()
            with pytest.raises(GarbageReply, match="MEASure:VOLTage"):
                driver.measure()


# ---------------------------------------------------------------- over the wire, against the stand-in


@pytest.fixture
def stand_in(started, plant, lock):
    return started(GridStandIn(plant, lock))


def opened(started, stand_in, **options) -> GridSimulator:
    return started(GridSimulator(DriverConfig("grid", stand_in.resource, options=options)))


@pytest.fixture
def simulator(started, stand_in):
    return opened(started, stand_in)


def grid_now(plant, lock):
    with lock:
        return plant.grid.state_at(plant.t)


def test_voltage_and_frequency_set_the_plants_grid(simulator, plant, lock):
    simulator.set_voltage(250.0)
    simulator.set_frequency(59.5)
    simulator.set_current_limit(50.0)
    state = grid_now(plant, lock)
    assert state.voltage_pu == pytest.approx(250.0 / NOMINAL_LN_V)
    assert state.frequency_hz == 59.5
    reading = simulator.measure()
    assert (reading.voltage_v, reading.frequency_hz) == pytest.approx((250.0, 59.5))


def test_outage_and_restore(simulator, plant, lock):
    simulator.outage()
    assert not grid_now(plant, lock).available
    assert simulator.measure().voltage_v == 0.0
    simulator.restore()
    assert grid_now(plant, lock).available
    simulator.output(False)
    assert not grid_now(plant, lock).available
    simulator.output(True)
    assert grid_now(plant, lock).available


def test_a_list_plays_on_the_plant_clock(simulator, plant, lock):
    simulator.play(
        [ListStep(0.2, NOMINAL_LN_V, NOMINAL_LN_V / 2, 60.0, 60.0), ListStep.hold(0.3, 200.0, 59.0)]
    )
    assert simulator.list_running()
    run(plant, lock, 0.1)
    assert grid_now(plant, lock).voltage_pu == pytest.approx(0.75)
    run(plant, lock, 0.2)
    state = grid_now(plant, lock)
    assert (state.voltage_pu, state.frequency_hz) == pytest.approx((200.0 / NOMINAL_LN_V, 59.0))
    assert simulator.list_running()
    run(plant, lock, 0.25)
    assert not simulator.list_running()


def test_the_instrument_refuses_a_fixed_change_while_a_list_runs(simulator):
    simulator.play([ListStep.hold(5.0, 200.0, 60.0)])
    with pytest.raises(InstrumentRejected) as caught:
        simulator.set_voltage(230.0)
    assert caught.value.code == -221
    simulator.stop_list()
    assert not simulator.list_running()
    simulator.set_voltage(230.0)


def test_safe_off_takes_the_grid_down(simulator, plant, lock):
    simulator.safe()
    assert not grid_now(plant, lock).available


def test_safe_nominal_brings_the_nominal_grid_back_from_anywhere(started, stand_in, plant, lock):
    driver = opened(
        started, stand_in, safe_policy="nominal", nominal_voltage_v=NOMINAL_LN_V, nominal_frequency_hz=60.0
    )
    driver.set_frequency(59.0)
    driver.play([ListStep.hold(10.0, 150.0, 61.0)])
    run(plant, lock, 0.1)
    driver.outage()
    driver.safe()
    assert not driver.list_running()
    state = grid_now(plant, lock)
    assert state.available
    assert (state.voltage_pu, state.frequency_hz) == pytest.approx((1.0, 60.0))
