"""The plant as a whole: power balance, transfers, the PCC breaker and the racks' ride-through."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.sim.load import Constant, RackState, TrainingSwings
from harness.sim.pcs import PcsControl, PcsMode
from harness.sim.plant import Plant, PlantConfig, scaled_to_fleet
from harness.sim.voltage_events import VoltageEventKind

SMALL = PlantConfig(packs=48, pcs_rated_w=1.2e6, pv_rated_w=0.0, load_rated_w=0.4e6)


def small_plant(**overrides) -> Plant:
    config = PlantConfig(**{**SMALL.__dict__, **overrides})
    plant = Plant.build(config)
    plant.load.set_profile(Constant(1.0), at=0.0)
    return plant


def run_until(plant: Plant, t_end: float, dt: float = 0.01) -> None:
    while plant.t < t_end - 1e-9:
        plant.step(min(dt, t_end - plant.t))


def test_grid_connected_the_grid_takes_the_balance():
    plant = small_plant()
    plant.pcs.dispatch_w = 100e3
    run_until(plant, 2.0)
    bus = plant.bus
    assert bus.voltage_pu == pytest.approx(1.0)
    assert bus.pcs_ac_w == pytest.approx(100e3, rel=1e-6)
    assert bus.grid_w == pytest.approx(bus.load_served_w - bus.pcs_ac_w, rel=1e-9)
    assert bus.battery_dc_w > bus.pcs_ac_w, "the PCS loss comes out of the battery"


def test_unplanned_island_is_bridged_within_psu_holdup():
    plant = small_plant()
    plant.grid.outage(at=1.0)
    run_until(plant, 3.0)
    assert not plant.pcc.closed
    assert plant.pcs.mode is PcsMode.GRID_FORMING
    interruptions = [e for e in plant.voltage_events.events if e.kind is VoltageEventKind.INTERRUPTION]
    assert len(interruptions) == 1
    gap = interruptions[0].duration_s
    settings_ = plant.pcc.settings
    assert gap == pytest.approx(settings_.detection_s + settings_.transfer_s, abs=1.5e-3)
    assert plant.load.drop_count == 0
    assert plant.bus.load_served_w == pytest.approx(plant.load.demand_w(plant.t), rel=1e-6)


def test_without_islanding_the_bus_dies_and_the_racks_drop():
    plant = small_plant()
    plant.pcs.islanding_enabled = False
    plant.grid.outage(at=1.0)
    run_until(plant, 2.0)
    assert plant.bus.voltage_pu == 0.0
    assert plant.load.state is RackState.DROPPED
    assert plant.energy.load_unserved_j > 0


def test_island_frequency_droops_with_a_load_step_then_restores():
    plant = small_plant()
    plant.load.set_profile(Constant(0.3), at=0.0)
    plant.grid.outage(at=0.5)
    run_until(plant, 5.0)
    plant.load.set_profile(Constant(1.0), at=plant.t)
    lowest = 60.0
    while plant.t < 30.0:
        lowest = min(lowest, plant.step(0.01).frequency_hz)
    assert lowest < 59.99, "a load step must pull the droop frequency down"
    assert plant.bus.frequency_hz == pytest.approx(60.0, abs=0.01), "restoration brings it back"


def test_overload_in_island_sags_the_bus_and_drops_the_racks():
    plant = small_plant(pcs_rated_w=0.3e6)
    plant.grid.outage(at=0.5)
    run_until(plant, 1.0, dt=0.001)
    assert plant.bus.voltage_pu < 0.8
    run_until(plant, 3.0)
    assert plant.load.drop_count >= 1


def islanded_with_grid_back(phase_difference_deg: float) -> Plant:
    """A settled island whose returned grid stands ``phase_difference_deg`` behind the bus."""
    plant = small_plant()
    plant.grid.outage(at=0.5)
    plant.grid.restore(at=2.0)
    run_until(plant, 40.0, dt=0.05)
    now = plant.sync_check().dtheta_deg
    plant.grid.phase_jump(at=plant.t, degrees=now - phase_difference_deg)
    run_until(plant, plant.t + 0.01)
    assert plant.sync_check().dtheta_deg == pytest.approx(phase_difference_deg, abs=0.5)
    return plant


def test_sync_checked_reclose_waits_for_the_window():
    plant = islanded_with_grid_back(90.0)
    plant.pcc.request_close(sync_check=True)
    run_until(plant, plant.t + 2.0)
    assert not plant.pcc.closed, "90 degrees apart: the sync-check relay must hold the breaker open"
    plant.pcs.frequency_setpoint_hz = 60.08
    run_until(plant, plant.t + 20.0)
    assert plant.pcc.closed
    close = plant.pcc.closes[-1]
    assert close.in_window and close.sync_checked
    assert abs(close.sync.dtheta_deg) <= plant.pcc.settings.sync_dtheta_deg
    assert plant.pcs.mode is PcsMode.GRID_FOLLOWING


def test_out_of_phase_close_disturbs_the_bus_and_trips_the_pcs():
    plant = islanded_with_grid_back(120.0)
    plant.pcc.request_close(sync_check=False)
    run_until(plant, plant.t + 0.2, dt=0.001)
    close = plant.pcc.closes[-1]
    assert not close.in_window and not close.sync_checked
    assert plant.pcs.mode is PcsMode.TRIPPED
    dips = [e for e in plant.voltage_events.events if e.start_s >= close.t]
    assert dips and dips[0].residual_pu < 0.5


def test_black_start_energises_a_dead_island():
    plant = small_plant()
    plant.pcs.islanding_enabled = False
    plant.grid.outage(at=0.5)
    run_until(plant, 1.0)
    assert plant.bus.voltage_pu == 0.0
    plant.pcs.islanding_enabled = True
    plant.black_start()
    run_until(plant, 1.0 + plant.config.black_start_ramp_s + 0.1)
    assert plant.bus.voltage_pu == pytest.approx(1.0)
    run_until(plant, 60.0, dt=0.1)
    assert plant.load.state is RackState.RUNNING


def test_pcs_unit_trip_reduces_the_island_capability():
    plant = small_plant()
    plant.grid.outage(at=0.5)
    run_until(plant, 1.0)
    for unit in range(len(plant.pcs.units) - 1):
        plant.pcs.set_unit_available(unit, False)
    remaining = plant.pcs.available_w
    assert remaining == pytest.approx(plant.pcs.rated_w / len(plant.pcs.units))
    run_until(plant, 1.5, dt=0.001)
    assert plant.bus.pcs_ac_w <= remaining + 1e-6


def test_pcc_smoothing_keeps_training_swings_off_the_grid():
    def grid_swing(control: PcsControl) -> float:
        plant = small_plant()
        plant.pcs.control = control
        plant.load.set_profile(
            TrainingSwings(period_s=1.0, duty=0.7, low=0.15, high=1.0, edge_s=0.1, jitter=0.0, seed=1), at=0.0
        )
        run_until(plant, 5.0)
        grid = []
        while plant.t < 15.0:
            grid.append(plant.step(0.01).grid_w)
        return float(np.ptp(grid))

    assert grid_swing(PcsControl.PCC_SMOOTHING) < 0.2 * grid_swing(PcsControl.POWER)


def test_same_seed_same_trajectory():
    def trajectory() -> np.ndarray:
        plant = small_plant()
        plant.grid.outage(at=0.3)
        plant.grid.restore(at=1.0)
        rows = [[plant.step(0.05).voltage_pu, plant.bus.grid_w, plant.packs.soc.sum()] for _ in range(40)]
        return np.array(rows)

    np.testing.assert_array_equal(trajectory(), trajectory())


def test_config_typo_values_are_named():
    with pytest.raises(ValueError, match="initial_soc"):
        PlantConfig(initial_soc=1.5)
    with pytest.raises(ValueError, match="positive dt"):
        small_plant().step(0.0)


step_kinds = st.sampled_from(["step", "outage", "restore", "sag", "dispatch", "island", "close", "load"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    actions=st.lists(
        st.tuples(step_kinds, st.floats(0.001, 0.5), st.floats(-1.0, 1.0)), min_size=1, max_size=25
    )
)
def test_energy_balances_over_any_sequence(actions):
    """battery + grid + PV = load + PCS losses, to rounding, whatever happens on the bus."""
    plant = small_plant(pv_rated_w=0.3e6)
    for kind, dt, x in actions:
        if kind == "outage":
            plant.grid.outage(at=plant.t)
        elif kind == "restore":
            plant.grid.restore(at=plant.t)
        elif kind == "sag":
            plant.grid.sag(at=plant.t, residual_pu=abs(x), duration_s=dt)
        elif kind == "dispatch":
            plant.pcs.dispatch_w = x * 1e6
        elif kind == "island":
            plant.pcc.request_open()
        elif kind == "close":
            plant.pcc.request_close(sync_check=x > 0)
        elif kind == "load":
            plant.load.set_profile(Constant(abs(x)), at=plant.t)
        plant.step(dt)
        ledger = plant.energy
        scale = max(1.0, ledger.load_served_j, abs(ledger.grid_j), abs(ledger.battery_dc_j))
        assert abs(ledger.balance_error_j) <= 1e-9 * scale
        assert np.all((plant.packs.soc >= 0) & (plant.packs.soc <= 1))
        open_packs = ~plant.packs.contactor_closed
        assert np.all(plant.packs.current_a[open_packs] == 0)


@given(packs=st.integers(1, 2000))
def test_a_plant_scaled_to_its_fleet_keeps_the_reference_proportions(packs):
    reference = PlantConfig(pv_rated_w=6e6)
    scaled = scaled_to_fleet(reference, packs)
    assert scaled.packs == packs and scaled.pcs_units == reference.pcs_units
    for rating in ("pcs_rated_w", "load_rated_w", "pv_rated_w"):
        per_pack = getattr(scaled, rating) / packs
        assert per_pack == pytest.approx(getattr(reference, rating) / reference.packs, rel=1e-12), rating


def test_a_fleet_of_no_packs_is_refused():
    with pytest.raises(ValueError, match="packs=0"):
        scaled_to_fleet(PlantConfig(), 0)
