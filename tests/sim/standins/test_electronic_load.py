"""The Chroma 63200 electronic load stand-in, driven over a pseudo-terminal by pyvisa-py (ASRL)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from harness.sim.load import TrainingSwings
from harness.sim.standins.electronic_load import IDENTITY, ElectronicLoad
from tests.sim.standins import (
    ask,
    assert_refusal_changes_nothing,
    error_of,
    open_visa,
    run,
    scpi_messages,
    send,
    small_plant,
)

pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")

RATED_W = 4e6
NOMINAL_V = 480.0


@pytest.fixture
def plant():
    return small_plant(load_rated_w=RATED_W)


@pytest.fixture
def electronic_load(plant, lock):
    with ElectronicLoad(plant, lock) as stand_in:
        yield stand_in


@pytest.fixture
def load(visa, electronic_load):
    with open_visa(visa, electronic_load.resource) as instrument:
        assert error_of(instrument, "CONFigure:REMote ON") == 0
        yield instrument


def demand_w(plant, lock, at_s: float) -> float:
    with lock:
        return plant.load.uncapped_demand_w(at_s)


def demands(plant, lock, start_s: float, offsets_s) -> list[float]:
    return [demand_w(plant, lock, start_s + offset) for offset in offsets_s]


def test_identity_resource_and_start_state_follow_the_plant(load, electronic_load, plant):
    assert load.query("*IDN?") == IDENTITY == electronic_load.identity
    assert electronic_load.resource.startswith("ASRL/dev/pts/")
    assert ask(load, "LOAD?") == "1"
    assert ask(load, "MODE?") == "CPH"
    assert float(ask(load, "POW:STAT:L1?")) == plant.load.uncapped_demand_w(0.0)
    assert ask(load, "CONF:REM?") == "1"


def test_constant_power_plays_from_now(load, plant, lock):
    run(plant, lock, 0.5, dt=0.1)
    start = plant.t
    assert error_of(load, "MODE CPH;:POWer:STATic:L1 2.5e6") == 0
    assert demand_w(plant, lock, start) == 2.5e6
    assert demand_w(plant, lock, start - 0.1) == 0.8 * RATED_W  # the past is untouched
    assert float(ask(load, "POW:STAT:L1?")) == 2.5e6
    assert float(ask(load, "POW:STAT:L1? MAX")) == RATED_W
    assert error_of(load, "POW:STAT:L1 4.1e6") == -222
    assert demand_w(plant, lock, start) == 2.5e6


def test_constant_current_converts_at_nominal_voltage(load, plant, lock):
    assert error_of(load, "MODE CCH;:CURRent:STATic:L1 5000") == 0
    assert demand_w(plant, lock, plant.t) == pytest.approx(5000.0 * NOMINAL_V)
    assert float(ask(load, "CURR:STAT:L1? MAX")) == pytest.approx(RATED_W / NOMINAL_V)
    assert error_of(load, "CURR:STAT:L1 9000") == -222


def test_dynamic_mode_plays_training_swings(load, plant, lock):
    start = plant.t
    for command in (
        "MODE CCDH",
        "CURR:DYN:L1 7500",
        "CURR:DYN:L2 1500",
        "CURR:DYN:T1 0.6",
        "CURR:DYN:T2 0.4",
        "CURR:DYN:RISE 0.06",
        "CURR:DYN:FALL 0.12",
    ):
        assert error_of(load, command) == 0, command
    high_w, low_w = 7500.0 * NOMINAL_V, 1500.0 * NOMINAL_V
    edge_s = 0.5 * (6000.0 / 0.06e6 + 6000.0 / 0.12e6)
    swings = TrainingSwings(period_s=1.0, duty=0.6, low=low_w / RATED_W, high=high_w / RATED_W, edge_s=edge_s)
    offsets = [0.0, 0.03, 0.2, 0.55, 0.62, 0.68, 0.9, 1.3, 2.05]
    want = [swings.fraction(t) * RATED_W for t in offsets]
    assert demands(plant, lock, start, offsets) == pytest.approx(want)
    assert demand_w(plant, lock, start + 0.3) == pytest.approx(high_w)
    assert demand_w(plant, lock, start + 0.9) == pytest.approx(low_w)
    assert float(ask(load, "CURR:DYN:RISE?")) == 0.06
    assert float(ask(load, "CURR:DYN:T2?")) == 0.4


def test_dynamic_settings_the_plant_cannot_play_are_refused(load, plant, lock):
    assert error_of(load, "MODE CCDH;:CURR:DYN:L1 7500;L2 1500;T1 0.5;T2 0.5") == 0
    before = demands(plant, lock, plant.t, [0.1, 0.4, 0.7])
    assert error_of(load, "CURR:DYN:RISE 0.0001") == -221  # a 60 s edge does not fit a 0.5 s phase
    assert float(ask(load, "CURR:DYN:RISE?")) == 1e6
    assert demands(plant, lock, plant.t, [0.1, 0.4, 0.7]) == before
    assert error_of(load, "CURR:DYN:T1 0") == -222


def test_list_mode_plays_steps_then_returns_to_the_static_power(load, plant, lock):
    run(plant, lock, 0.2, dt=0.1)
    assert error_of(load, "POW:STAT:L1 1e6;:LIST:POWer 2e6,3e6,0.5e6;:LIST:DWELl 1,2,0.5") == 0
    start = plant.t
    assert error_of(load, "MODE LIST") == 0
    offsets = [0.0, 0.99, 1.0, 2.9, 3.0, 3.49, 3.5, 10.0]
    want = [2e6, 2e6, 3e6, 3e6, 0.5e6, 0.5e6, 1e6, 1e6]
    assert demands(plant, lock, start, offsets) == pytest.approx(want)
    assert ask(load, "LIST:POW?") == "2000000.0,3000000.0,500000.0"


def test_list_of_mismatched_lengths_is_refused_while_the_load_is_on(load, plant, lock):
    assert error_of(load, "LIST:POW 2e6,3e6;:LIST:DWEL 1") == 0
    before = demands(plant, lock, plant.t, [0.0, 1.5])
    assert error_of(load, "MODE LIST") == -221
    assert ask(load, "MODE?") == "CPH"
    assert demands(plant, lock, plant.t, [0.0, 1.5]) == before
    assert error_of(load, "LOAD OFF;:MODE LIST") == 0  # off, it plays nothing, so it may be set up
    assert error_of(load, "LOAD ON") == -221


def test_load_off_and_on(load, plant, lock):
    assert error_of(load, "MODE CPH;:POW:STAT:L1 3e6") == 0
    assert error_of(load, "LOAD OFF") == 0
    assert ask(load, "LOAD?") == "0"
    assert demand_w(plant, lock, plant.t) == 0.0
    run(plant, lock, 0.2, dt=0.1)
    with lock:
        assert plant.bus.load_served_w == 0.0
    assert error_of(load, "LOAD:STATe ON") == 0
    assert demand_w(plant, lock, plant.t) == 3e6


def test_power_limit_is_the_racks_power_cap(load, plant, lock):
    assert error_of(load, "POWer:LIMit 2e6") == 0
    with lock:
        assert plant.load.power_cap_w == 2e6
        assert plant.load.demand_w(plant.t) == 2e6
    assert float(ask(load, "POW:LIM?")) == 2e6
    assert error_of(load, "POW:LIM -1") == -222
    assert error_of(load, "POW:LIM INF") == 0
    with lock:
        assert plant.load.power_cap_w is None
    assert float(ask(load, "POW:LIM?")) == 9.9e37


def test_measurements_are_the_rack_bus_at_plant_scale(load, plant, lock):
    run(plant, lock, 0.5, dt=0.1)
    lines, code = send(load, "MEAS:VOLT?;CURR?;POW?")
    assert code == 0
    voltage_v, current_a, power_w = (float(value) for value in lines[0].split(";"))
    with lock:
        assert power_w == plant.bus.load_served_w > 0.0
        assert voltage_v == plant.bus.voltage_pu * NOMINAL_V
    assert current_a == pytest.approx(power_w / voltage_v)
    with lock:
        plant.grid.outage(at=plant.t)
        plant.pcs.islanding_enabled = False
    run(plant, lock, 0.1)
    assert ask(load, "MEAS:VOLT?;CURR?;POW?") == "0.0;0.0;0.0"


def test_reset_switches_the_load_off_with_factory_settings(load, plant, lock):
    assert error_of(load, "POW:LIM 3e6;:MODE CPH;:POW:STAT:L1 2e6") == 0
    assert error_of(load, "*RST") == 0
    assert ask(load, "LOAD?;MODE?") == "0;CCH"
    assert float(ask(load, "POW:STAT:L1?")) == 0.0
    assert float(ask(load, "POW:LIM?")) == 9.9e37  # SCPI's infinity: no limit
    with lock:
        assert plant.load.power_cap_w is None
        assert plant.load.uncapped_demand_w(plant.t) == 0.0


def _load_programme(plant) -> tuple:
    t = plant.t
    return tuple(plant.load.uncapped_demand_w(t + 0.037 * k) for k in range(80)), plant.load.power_cap_w


FUZZ_HEADERS = [
    "LOAD", "LOAD:STAT", "MODE", "CONF:REM", "CURR:STAT:L1", "POW:STAT:L1", "POWer:STATic:L1", "CURR:DYN:L1",
    "CURR:DYN:L2", "CURR:DYN:T1", "CURR:DYN:T2", "CURR:DYN:RISE", "CURR:DYN:FALL", "POW:LIM", "LIST:POW",
    "LIST:DWEL", "MEAS:VOLT", "MEAS:POW",
]  # fmt: skip
FUZZ_WORDS = ["ON", "OFF", "MAX", "MIN", "INF", "CCH", "CPH", "CCDH", "LIST", "CCL", "1e6", "0.5", "100"]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(message=scpi_messages(FUZZ_HEADERS, FUZZ_WORDS))
def test_random_commands_never_break_it_and_errors_change_nothing(load, plant, lock, message):
    assert_refusal_changes_nothing(load, message, lock, lambda: _load_programme(plant), IDENTITY)
