"""The Chroma 61845 grid simulator stand-in, driven over TCP by pyvisa-py against a small plant."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings

from harness.sim.standins.grid_simulator import IDENTITY, GridSimulator
from tests.sim.standins import (
    ask,
    assert_refusal_changes_nothing,
    error_of,
    open_visa,
    run,
    scpi_messages,
    send,
)

pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")

NOMINAL_LN_V = 480.0 / math.sqrt(3.0)


@pytest.fixture
def simulator(plant, lock):
    with GridSimulator(plant, lock) as stand_in:
        yield stand_in


@pytest.fixture
def grid(visa, simulator):
    with open_visa(visa, simulator.resource) as instrument:
        yield instrument


def grid_now(plant, lock):
    with lock:
        return plant.grid.state_at(plant.t)


def grid_future(plant) -> tuple:
    """The grid's programme from now on, sampled (what a command could have changed)."""
    t = plant.t
    offsets = (0.0, 0.001, 0.25, 0.5, 1.0, 2.0, 5.0, 30.0, 1e4)
    return tuple(plant.grid.state_at(t + dt) for dt in offsets), plant.grid.next_change_after(t)


def test_identity_and_start_state_follow_the_plant(grid, simulator):
    assert grid.query("*IDN?") == IDENTITY == simulator.identity
    assert simulator.volts_per_pu == pytest.approx(NOMINAL_LN_V)
    assert ask(grid, "OUTPut?") == "1"
    assert ask(grid, "OUTP:MODE?") == "FIXED"
    assert float(ask(grid, "SOUR:VOLT:LEV:IMM:AMPL:AC?")) == pytest.approx(NOMINAL_LN_V)
    assert float(ask(grid, "FREQ?")) == 60.0
    assert ask(grid, "TRIGger:STATe?") == "OFF"


def test_voltage_and_frequency_set_the_grid_now(grid, plant, lock):
    run(plant, lock, 0.5, dt=0.1)
    # The SunSpec SVP driver's spelling.
    assert error_of(grid, "source:volt:lev:imm:ampl:ac 250.0") == 0
    assert error_of(grid, "FREQ 59.5") == 0
    state = grid_now(plant, lock)
    assert state.voltage_pu == pytest.approx(250.0 / NOMINAL_LN_V)
    assert state.frequency_hz == 59.5
    assert float(ask(grid, "VOLT:AC?")) == 250.0
    assert float(ask(grid, "MEASure:VOLTage:AC?")) == pytest.approx(250.0)
    assert float(ask(grid, "MEAS:FREQ?")) == 59.5
    run(plant, lock, 0.2, dt=0.1)
    with lock:
        assert plant.bus.voltage_pu == pytest.approx(250.0 / NOMINAL_LN_V)


@pytest.mark.parametrize(
    "command", ["VOLT:AC 300.1", "VOLT:AC -1", "FREQ 39.9", "FREQ 70.1", "CURR:LIM 101", "LIST:COUNT 0"]
)
def test_out_of_range_values_are_refused_and_change_nothing(grid, plant, lock, command):
    with lock:
        before = grid_future(plant)
    assert error_of(grid, command) == -222
    with lock:
        assert grid_future(plant) == before
    assert float(ask(grid, "VOLT:AC?")) == pytest.approx(NOMINAL_LN_V)


def test_stored_settings_round_trip(grid):
    for header, value in (("CURRent:LIMit", "42.5"), ("VOLTage:LIMit:AC", "290.0"), ("LIST:COUNt", "3")):
        assert error_of(grid, f"{header} {value}") == 0
        assert float(ask(grid, f"{header}?")) == float(value)
    assert error_of(grid, "LIST:COUP NONE;TRIG MAN") == 0
    assert ask(grid, "LIST:COUP?;TRIG?") == "NONE;MAN"


def test_output_off_is_an_outage_now_and_on_restores(grid, plant, lock):
    run(plant, lock, 1.0, dt=0.1)
    assert error_of(grid, "OUTPut:STATe OFF") == 0
    assert not grid_now(plant, lock).available
    assert float(ask(grid, "MEAS:VOLT:AC?")) == 0.0
    assert float(ask(grid, "MEAS:FREQ?")) == 0.0
    assert ask(grid, "OUTP?") == "0"
    assert error_of(grid, "OUTP ON") == 0
    assert grid_now(plant, lock).available
    assert error_of(grid, "OUTPut:RELay OFF") == 0  # either switch takes the output down
    assert not grid_now(plant, lock).available
    assert error_of(grid, "OUTP:REL ON") == 0
    assert grid_now(plant, lock).available


def program_list(grid, *, count: int = 1) -> None:
    # The SunSpec SVP driver's sequence, dwell times in milliseconds.
    for command in (
        "trig off",
        "output:mode fixed",
        "list:coup ALL",
        f"list:count {count}",
        "list:base TIME",
        "list:trig auto",
        "list:dwel 200,300,100",
        "list:shape A,A,A",
        "list:volt:ac:star 277.128,138.564,138.564",
        "list:volt:ac:end 138.564,138.564,277.128",
        "list:freq:star 60,60,59",
        "list:freq:end 60,59,60",
        "output:mode list",
    ):
        assert error_of(grid, command) == 0, command


def expected_list_state(into_s: float) -> tuple[float, float]:
    """(voltage pu, frequency Hz) of the programmed list ``into_s`` seconds after it started."""
    half = 138.564 / NOMINAL_LN_V
    full = 277.128 / NOMINAL_LN_V
    if into_s < 0.2:
        return full + (half - full) * into_s / 0.2, 60.0
    if into_s < 0.5:
        return half, 60.0 - (into_s - 0.2) / 0.3
    return half + (full - half) * (into_s - 0.5) / 0.1, 59.0 + (into_s - 0.5) / 0.1


def test_list_plays_its_segments_at_plant_time(grid, plant, lock):
    run(plant, lock, 1.0, dt=0.1)
    program_list(grid)
    start = plant.t
    assert error_of(grid, "TRIG ON") == 0
    assert ask(grid, "TRIG:STAT?") == "RUNNING"
    for into_s in (0.0, 0.05, 0.15, 0.2, 0.35, 0.45, 0.55, 0.599):
        with lock:
            state = plant.grid.state_at(start + into_s)
        voltage_pu, frequency_hz = expected_list_state(into_s)
        assert state.voltage_pu == pytest.approx(voltage_pu, abs=1e-9), into_s
        assert state.frequency_hz == pytest.approx(frequency_hz, abs=1e-9), into_s
    run(plant, lock, 0.35)
    assert ask(grid, "TRIG:STAT?") == "RUNNING"
    assert float(ask(grid, "MEAS:VOLT:AC?")) == pytest.approx(138.564)
    assert error_of(grid, "VOLT:AC 250") == -221  # the list owns the output while it runs
    run(plant, lock, 0.26)
    assert ask(grid, "TRIG:STAT?") == "OFF"
    state = grid_now(plant, lock)
    assert state.voltage_pu == pytest.approx(1.0)
    assert state.frequency_hz == 60.0


def test_list_count_repeats_it(grid, plant, lock):
    program_list(grid, count=2)
    start = plant.t
    assert error_of(grid, "TRIG ON") == 0
    with lock:
        for into_s in (0.1, 0.3, 0.55):
            first = plant.grid.state_at(start + into_s)
            second = plant.grid.state_at(start + 0.6 + into_s)
            assert second.voltage_pu == pytest.approx(first.voltage_pu)
            assert second.frequency_hz == pytest.approx(first.frequency_hz)
    run(plant, lock, 1.19)
    assert ask(grid, "TRIG:STAT?") == "RUNNING"
    run(plant, lock, 0.02)
    assert ask(grid, "TRIG:STAT?") == "OFF"


def test_trigger_off_stops_the_list_and_the_fixed_values_return(grid, plant, lock):
    program_list(grid)
    assert error_of(grid, "TRIG ON") == 0
    run(plant, lock, 0.3)
    assert grid_now(plant, lock).voltage_pu == pytest.approx(0.5, abs=1e-3)
    assert error_of(grid, "TRIGger:STATe OFF") == 0
    assert ask(grid, "TRIG:STAT?") == "OFF"
    state = grid_now(plant, lock)
    assert state.voltage_pu == pytest.approx(1.0)
    assert state.frequency_hz == 60.0
    with lock:
        assert plant.grid.state_at(plant.t + 0.2).voltage_pu == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("setup", "why"),
    [
        ("list:volt:ac:end 138.564,277.128", "a list shorter than the others"),
        ("list:shape A,B", "a shape list of another length"),
        ("output:mode fixed", "FIXED mode"),
        ("output off", "the output off"),
    ],
)
def test_trigger_refuses_a_list_it_cannot_play(grid, plant, lock, setup, why):
    program_list(grid)
    assert error_of(grid, setup) == 0
    with lock:
        before = grid_future(plant)
    assert error_of(grid, "TRIG ON") == -221, why
    with lock:
        assert grid_future(plant) == before
    assert ask(grid, "TRIG:STAT?") == "OFF"


def test_list_values_are_range_checked(grid):
    assert error_of(grid, "LIST:DWEL 100,0") == -222
    assert error_of(grid, "LIST:VOLT:AC:STAR 100,301") == -222
    assert error_of(grid, "LIST:FREQ:END 60,75") == -222
    assert error_of(grid, "LIST:SHAP A,C") == -224
    assert error_of(grid, "LIST:BASE CYCLE") == -224
    assert error_of(grid, "LIST:DWEL 100,250.5") == 0
    assert ask(grid, "LIST:DWEL?") == "100.0,250.5"


def test_power_and_current_measure_the_plants_grid_import(grid, plant, lock):
    run(plant, lock, 1.0, dt=0.1)
    lines, code = send(grid, "MEAS:POW:AC?;:MEAS:CURR:AC?;:MEAS:VOLT:AC?")
    assert code == 0
    power_w, current_a, voltage_v = (float(value) for value in lines[0].split(";"))
    with lock:
        assert power_w == plant.bus.grid_w
    assert current_a == pytest.approx(abs(power_w) / (3.0 * voltage_v))


def test_reset_turns_the_output_off_and_restores_power_on_settings(grid, plant, lock):
    assert error_of(grid, "VOLT:AC 250;:FREQ 61;:CURR:LIM 20;:LIST:DWEL 100") == 0
    program_list(grid)
    assert error_of(grid, "TRIG ON") == 0
    assert error_of(grid, "*RST") == 0
    assert not grid_now(plant, lock).available
    assert ask(grid, "OUTP:STAT?;MODE?") == "0;FIXED"
    assert ask(grid, "TRIG:STAT?") == "OFF"
    assert float(ask(grid, "VOLT:AC?")) == pytest.approx(NOMINAL_LN_V)
    assert float(ask(grid, "FREQ?")) == 60.0
    assert float(ask(grid, "CURR:LIM?")) == 100.0
    assert ask(grid, "LIST:DWEL?") == ""
    assert error_of(grid, "OUTP ON") == 0
    state = grid_now(plant, lock)
    assert state.available
    assert state.voltage_pu == pytest.approx(1.0)
    assert state.frequency_hz == 60.0


FUZZ_HEADERS = [
    "VOLT:AC", "SOUR:VOLT:LEV:IMM:AMPL:AC", "FREQ", "SOURce:FREQuency:IMMediate", "CURR:LIM", "VOLT:LIM:AC",
    "OUTP", "OUTP:STAT", "OUTP:REL", "OUTP:MODE", "LIST:COUN", "LIST:DWEL", "LIST:SHAP", "LIST:VOLT:AC:STAR",
    "LIST:VOLT:AC:END", "LIST:FREQ:STAR", "LIST:FREQ:END", "LIST:BASE", "TRIG", "TRIG:STAT",
    "MEAS:VOLT:AC", "MEAS:FREQ", "MEAS:POW:AC",
]  # fmt: skip
FUZZ_WORDS = ["ON", "OFF", "MAX", "MIN", "FIXED", "LIST", "TIME", "A", "B", "ALL", "60", "277", "100"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(message=scpi_messages(FUZZ_HEADERS, FUZZ_WORDS))
def test_random_commands_never_break_it_and_errors_change_nothing(grid, plant, lock, message):
    assert_refusal_changes_nothing(grid, message, lock, lambda: grid_future(plant), IDENTITY)
