"""The PCC meter through the real pymodbus client: SunSpec chain, readings against the plant, energy, events.

The SunSpec client is the small one in ``tests.sim.standins``, as a driver holds one. Model 203 offsets
below are the standard's (sunspec/models model_203.json), not taken from the stand-in.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.sim.plant import Plant, PlantConfig
from harness.sim.standins.pcc_meter import PccMeter
from tests.sim.factories import uniform_fleet
from tests.sim.standins import END_MODEL, connect, identity_of, run, scaled, signed, uint32

NOMINAL_LL_V = 480.0
METER_PLANT = PlantConfig(packs=100, pv_rated_w=0.0, load_rated_w=4e6)
"""No PV (so the sign of the grid power is set by the PCS dispatch alone); 100 packs carry ~8 MW."""
LOAD_W = 3.2e6

# model 203 body offsets (after ID and L)
A, APH_A, A_SF, PHV, PHV_A, PPV, PHV_AB, V_SF, HZ, HZ_SF = 0, 1, 4, 5, 6, 9, 10, 13, 14, 15
W, WPH_A, W_SF, VA, VA_SF, VAR, VAR_SF, PF, PF_SF = 16, 17, 20, 21, 25, 26, 30, 31, 35
TOT_WH_EXP, TOT_WH_IMP, TOT_WH_SF, EVT = 36, 44, 52, 103
POWER_FAILURE, UNDER_VOLTAGE, OVER_VOLTAGE = 1 << 2, 1 << 3, 1 << 6


# ----------------------------------------------------------------------------- fixtures


def build_plant(dispatch_w: float = 0.0) -> Plant:
    plant = Plant.build(METER_PLANT, fleet=uniform_fleet(METER_PLANT.packs))
    plant.pcs.dispatch_w = dispatch_w
    return plant


@pytest.fixture
def plant():
    return build_plant()


@pytest.fixture
def meter(plant, lock):
    with PccMeter(plant, lock) as started:
        yield started


@pytest.fixture
def wire(meter):
    with connect(meter.resource) as client:
        yield client


# ----------------------------------------------------------------------------- tests


def test_chain_walk_finds_common_then_model_203_of_standard_length(wire):
    chain = wire.chain()
    assert list(chain) == [1, 203]
    assert chain[1] == (40004, 66)
    assert chain[203] == (40004 + 66 + 2, 105)
    assert wire.read(40004 + 66 + 2 + 105, 2) == [END_MODEL, 0]


def test_common_model_names_the_simulated_meter(wire, meter):
    assert identity_of(wire) == meter.identity
    assert meter.identity.startswith("gridhil,PCC-SIM-203,")


@pytest.mark.parametrize(
    ("dispatch_w", "importing"),
    [(0.0, True), (6e6, False)],
    ids=["load-imports", "pcs-exports"],
)
def test_readings_with_scale_factors_equal_the_plant(dispatch_w, importing, lock):
    plant = build_plant(dispatch_w)
    with PccMeter(plant, lock) as meter, connect(meter.resource) as wire:
        run(plant, lock, 2.0, dt=0.5)
        body = wire.body(203)
        grid_w = plant.bus.grid_w
    assert (grid_w > 0) is importing
    power_w = scaled(body[W], body[W_SF])
    assert power_w == pytest.approx(grid_w, abs=500.0)
    assert (power_w > 0) is importing  # + import, - export
    for phase in range(3):
        assert scaled(body[WPH_A + phase], body[W_SF]) == pytest.approx(grid_w / 3, abs=500.0)
    assert scaled(body[VA], body[VA_SF]) == pytest.approx(abs(grid_w), abs=500.0)
    assert scaled(body[VAR], body[VAR_SF]) == 0.0
    assert scaled(body[PF], body[PF_SF]) == pytest.approx(100.0)
    phase_current_a = abs(grid_w) / (math.sqrt(3.0) * NOMINAL_LL_V)
    assert scaled(body[A], body[A_SF]) == pytest.approx(3 * phase_current_a, abs=5.0)
    assert scaled(body[APH_A], body[A_SF]) == pytest.approx(phase_current_a, abs=5.0)
    assert scaled(body[PPV], body[V_SF]) == pytest.approx(NOMINAL_LL_V, abs=0.05)
    assert scaled(body[PHV_AB], body[V_SF]) == pytest.approx(NOMINAL_LL_V, abs=0.05)
    assert scaled(body[PHV], body[V_SF]) == pytest.approx(NOMINAL_LL_V / math.sqrt(3.0), abs=0.05)
    assert scaled(body[HZ], body[HZ_SF]) == pytest.approx(60.0, abs=0.005)
    assert uint32(body[EVT : EVT + 2]) == 0


@pytest.mark.parametrize(
    ("dispatch_w", "growing", "still"),
    [(0.0, TOT_WH_IMP, TOT_WH_EXP), (6e6, TOT_WH_EXP, TOT_WH_IMP)],
    ids=["import", "export"],
)
def test_energy_accumulators_grow_with_the_ledger(dispatch_w, growing, still, lock):
    plant = build_plant(dispatch_w)
    with PccMeter(plant, lock) as meter, connect(meter.resource) as wire:
        run(plant, lock, 1.0, dt=0.5)
        before = wire.body(203)
        run(plant, lock, 30.0, dt=0.5)
        after = wire.body(203)
    assert signed(after[TOT_WH_SF]) == 3  # kWh

    def kwh(body: list[int], offset: int) -> int:
        return uint32(body[offset : offset + 2])

    assert kwh(after, still) == kwh(before, still) == 0
    assert kwh(after, TOT_WH_IMP) == round(plant.energy.grid_import_j / 3.6e6)
    assert kwh(after, TOT_WH_EXP) == round(plant.energy.grid_export_j / 3.6e6)
    expected_kwh = 30.0 * abs(plant.bus.grid_w) / 3.6e6  # ~27 kWh importing, ~23 kWh exporting
    assert kwh(after, growing) - kwh(before, growing) == pytest.approx(expected_kwh, abs=1.5)


def test_grid_outage_reads_as_power_failure_with_zero_voltage_and_frequency(plant, lock, wire):
    with lock:
        plant.grid.outage(at=plant.t + 0.1)
    run(plant, lock, 1.0, dt=0.01)
    body = wire.body(203)
    assert not plant.pcc.closed  # the static switch islanded the plant
    assert uint32(body[EVT : EVT + 2]) & POWER_FAILURE
    assert scaled(body[PHV], body[V_SF]) == 0.0
    assert scaled(body[PPV], body[V_SF]) == 0.0
    assert scaled(body[HZ], body[HZ_SF]) == 0.0
    assert scaled(body[W], body[W_SF]) == 0.0
    assert body[PF] == 0x8000  # not implemented while no power flows


@pytest.mark.parametrize(("level_pu", "bit"), [(0.8, UNDER_VOLTAGE), (1.15, OVER_VOLTAGE)])
def test_voltage_outside_the_normal_band_sets_its_event_bit(plant, lock, wire, level_pu, bit):
    with lock:
        plant.grid.set_voltage(at=plant.t, voltage_pu=level_pu)
    run(plant, lock, 0.05, dt=0.01)
    body = wire.body(203)
    assert uint32(body[EVT : EVT + 2]) == bit
    assert scaled(body[PPV], body[V_SF]) == pytest.approx(level_pu * NOMINAL_LL_V, abs=0.05)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    voltage_pu=st.floats(min_value=0.5, max_value=1.2),
    frequency_hz=st.floats(min_value=57.0, max_value=63.0),
    dispatch_w=st.floats(min_value=-2e6, max_value=6e6),
)
def test_voltage_frequency_and_power_read_back_within_one_resolution_step(
    plant, lock, wire, voltage_pu, frequency_hz, dispatch_w
):
    """Whatever the grid and the plant do, the meter reads the grid side and the breaker to half an LSB."""
    with lock:  # released before reading: the meter takes it to answer
        plant.grid.set_voltage(at=plant.t, voltage_pu=voltage_pu)
        plant.grid.set_frequency(at=plant.t, frequency_hz=frequency_hz)
        plant.pcs.dispatch_w = dispatch_w
        plant.step(0.02)
        grid = plant.grid.state_at(plant.t)
        grid_w = plant.bus.grid_w
    body = wire.body(203)
    assert scaled(body[PPV], body[V_SF]) == pytest.approx(grid.voltage_pu * NOMINAL_LL_V, abs=0.05 + 1e-9)
    assert scaled(body[HZ], body[HZ_SF]) == pytest.approx(grid.frequency_hz, abs=0.005 + 1e-9)
    assert scaled(body[W], body[W_SF]) == pytest.approx(grid_w, abs=500.0 + 1e-6)


def test_readings_are_read_only_and_device_address_is_validated(wire):
    chain = wire.chain()
    body_203, _ = chain[203]
    assert wire.write(body_203 + W, [1]) == 2
    device_address = chain[1][0] + 64
    assert wire.write(device_address, [0]) == 3
    assert wire.read(device_address, 1) == [1]
    assert wire.write(device_address, [17]) is None
    assert wire.read(device_address, 1) == [17]
