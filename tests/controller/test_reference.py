"""The reference controller's decisions, on synthetic plant views (no servers)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.controller.model import (
    Actions,
    Alarm,
    BreakerCommand,
    ControllerCommands,
    ControllerMode,
    ControllerStatus,
    ModeRequest,
    PackView,
    PcsControl,
    PcsState,
    PlantView,
)
from harness.controller.reference import (
    HEARTBEAT_MODULUS,
    ControllerConfig,
    ReferenceController,
    spread_w,
)

PERIOD_S = 0.1
PACK_DEFAULTS: dict[str, object] = {
    "soc": 0.6,
    "soh": 0.8,
    "voltage_v": 350.0,
    "current_a": 0.0,
    "temperature_c": 25.0,
    "cell_v_min": 3.6,
    "cell_v_max": 3.7,
    "contactor_closed": True,
    "fault_bits": 0,
    "heartbeat": 0,
    "discharge_limit_w": 100e3,
    "charge_limit_w": 50e3,
    "power_command_w": 0.0,
    "nameplate_wh": 75e3,
}
VIEW_DEFAULTS: dict[str, object] = {
    "pcs_state": PcsState.GRID_FOLLOWING,
    "pcs_output_w": 200e3,
    "pcs_rated_w": 1e6,
    "pcs_units": 4,
    "pcs_units_available": 4,
    "breaker_closed": True,
    "close_pending": False,
    "grid_voltage_pu": 1.0,
    "grid_frequency_hz": 60.0,
    "bus_voltage_pu": 1.0,
    "bus_frequency_hz": 60.0,
    "sync_dv_pu": 0.0,
    "sync_df_hz": 0.0,
    "sync_dtheta_deg": 0.0,
    "pcc_w": 100e3,
    "fleet_soc": 0.6,
    "fleet_discharge_max_w": 400e3,
    "fleet_charge_max_w": 200e3,
}
ISLANDED = {
    "breaker_closed": False,
    "pcs_state": PcsState.GRID_FORMING,
    "pcc_w": 0.0,
    "grid_voltage_pu": 0.0,
    "grid_frequency_hz": 0.0,
}
DEAD_BUS = {**ISLANDED, "pcs_state": PcsState.OFF, "pcs_output_w": 0.0, "bus_voltage_pu": 0.0}


def pack_view(n: int = 4, **overrides: object) -> PackView:
    """``n`` packs; each keyword is a scalar for all packs or a sequence of ``n`` values."""
    values = {**PACK_DEFAULTS, **overrides}
    dtypes = {"contactor_closed": bool, "fault_bits": np.int64, "heartbeat": np.int64}
    return PackView(
        **{
            name: np.broadcast_to(np.asarray(value, dtype=dtypes.get(name, float)), (n,)).copy()
            for name, value in values.items()
        }
    )


def plant_view(packs: PackView | None = None, **overrides: object) -> PlantView:
    return PlantView(packs=packs if packs is not None else pack_view(), **{**VIEW_DEFAULTS, **overrides})


def with_heartbeats(view: PlantView, count: int, frozen: np.ndarray | None = None) -> PlantView:
    """The view with every BMS heartbeat moved on by ``count`` except the ``frozen`` packs'."""
    moving = np.ones(view.packs.n, bool) if frozen is None else ~frozen
    heartbeat = view.packs.heartbeat + np.where(moving, count, 0)
    return replace(view, packs=replace(view.packs, heartbeat=heartbeat))


class Loop:
    """Runs a controller cycle by cycle on the controller's clock, with live BMS heartbeats."""

    def __init__(self, controller: ReferenceController, commands: ControllerCommands | None = None) -> None:
        self.controller = controller
        self.commands = commands or ControllerCommands()
        self.now_s = 0.0
        self.cycles = 0
        self.frozen: np.ndarray | None = None

    def step(self, view: PlantView) -> tuple[Actions, ControllerStatus]:
        view = with_heartbeats(view, self.cycles, self.frozen)
        out = self.controller.decide(self.now_s, view, self.commands)
        self.now_s = round(self.now_s + PERIOD_S, 9)
        self.cycles += 1
        return out

    def run(self, view: PlantView, seconds: float) -> list[tuple[Actions, ControllerStatus]]:
        return [self.step(view) for _ in range(round(seconds / PERIOD_S))]


def loop(**config: object) -> Loop:
    return Loop(ReferenceController(ControllerConfig(**config)))


# ---------------------------------------------------------------------------------------- grid-connected


def test_grid_connected_follows_with_pcc_smoothing_at_the_commanded_ramp():
    run = loop()
    run.commands.grid_ramp_w_per_s = 50e3
    run.commands.dispatch_w = 150e3
    actions, status = run.step(plant_view())
    assert status.mode is ControllerMode.GRID_CONNECTED
    assert actions.control is PcsControl.PCC_SMOOTHING
    assert actions.pcc_ramp_w_per_s == 50e3
    assert actions.dispatch_w == status.dispatch_w == 150e3
    assert actions.auto_island_enabled and actions.islanding_enabled
    assert actions.frequency_setpoint_hz == 60.0
    assert actions.mode_request is None, "a repeated FOLLOW would restart the smoothing track"
    assert actions.breaker is None and status.power_cap_w is None


@pytest.mark.parametrize(
    ("state", "mode_request", "reset"),
    [(PcsState.OFF, ModeRequest.FOLLOW, False), (PcsState.GRID_FORMING, ModeRequest.FOLLOW, False),
     (PcsState.TRIPPED, None, True)],
)
def test_grid_connected_brings_the_pcs_to_following(state, mode_request, reset):
    actions, status = loop().step(plant_view(pcs_state=state))
    assert (actions.mode_request, actions.pcs_reset) == (mode_request, reset)
    assert bool(status.alarms & Alarm.PCS_TRIPPED) == (state is PcsState.TRIPPED)


@settings(max_examples=100, deadline=None)
@given(
    wanted_w=st.floats(-2e6, 2e6),
    soc=st.floats(0.0, 1.0),
    reserve=st.floats(0.05, 0.5),
    units_available=st.integers(0, 4),
)
def test_dispatch_stays_within_fleet_and_pcs_limits_and_never_discharges_at_the_reserve(
    wanted_w, soc, reserve, units_available
):
    run = loop()
    run.commands.dispatch_w = wanted_w
    run.commands.reserve_soc = reserve
    actions, _ = run.step(plant_view(fleet_soc=soc, pcs_units_available=units_available))
    pcs_w = 1e6 * units_available / 4
    assert -min(200e3, pcs_w) <= actions.dispatch_w <= min(400e3, pcs_w)
    if soc <= reserve:
        assert actions.dispatch_w <= 0.0
    if -min(200e3, pcs_w) <= wanted_w <= min(400e3, pcs_w) and (soc > reserve or wanted_w <= 0):
        assert actions.dispatch_w == wanted_w


def test_stop_requests_stop_with_zero_dispatch_and_leaves_pack_power_alone():
    run = loop()
    run.commands.enabled = False
    run.commands.dispatch_w = 300e3
    actions, status = run.step(plant_view())
    assert status.mode is ControllerMode.STOPPED
    assert actions.mode_request is ModeRequest.STOP
    assert actions.dispatch_w == 0.0
    assert actions.pack_power_w is None and actions.pack_share_enabled is None


def test_heartbeat_counts_every_cycle_and_wraps():
    run = loop()
    beats = [status.heartbeat for _, status in run.run(plant_view(), 0.5)]
    assert beats == [1, 2, 3, 4, 5]
    controller = ReferenceController()
    controller._memory.heartbeat = HEARTBEAT_MODULUS - 1
    assert controller.decide(0.0, plant_view(), ControllerCommands())[1].heartbeat == 0


def test_status_reports_the_plant_and_the_fleet():
    packs = pack_view(
        soc=[0.15, 0.55, 0.95, 0.6],
        soh=[0.8, 0.8, 0.5, 0.9],
        nameplate_wh=[100e3, 24e3, 60e3, 75e3],
        contactor_closed=[1, 1, 1, 0],
    )
    _, status = loop().step(plant_view(packs, fleet_soc=0.56))
    assert (status.fleet_soc, status.pcc_w, status.pcs_w) == (0.56, 100e3, 200e3)
    assert (status.packs_online, status.packs_isolated) == (3, 0)
    expected_wh = 100e3 * 0.8 * 0.0 + 24e3 * 0.8 * 0.4 + 60e3 * 0.5 * 0.8 + 75e3 * 0.9 * 0.45
    assert status.available_energy_wh == pytest.approx(expected_wh)


# ---------------------------------------------------------------------------------------- pack sharing


@settings(max_examples=150, deadline=None)
@given(
    data=st.lists(
        st.tuples(st.one_of(st.just(0.0), st.floats(1e-3, 10.0)), st.floats(0.0, 200e3)),
        min_size=1,
        max_size=30,
    ),
    total_w=st.floats(0.0, 3e6),
)
def test_spread_fills_to_the_total_within_limits_and_in_proportion_below_them(data, total_w):
    weights = np.array([w for w, _ in data])
    limits = np.array([limit for _, limit in data])
    share = spread_w(total_w, weights, limits)
    weighted = (weights > 0) & (limits > 0)
    assert np.all(share >= 0) and np.all(share <= limits * (1 + 1e-9))
    assert np.all(share[~weighted] == 0)
    assert share.sum() == pytest.approx(min(total_w, limits[weighted].sum()), rel=1e-9, abs=1e-6)
    uncapped = weighted & (share < limits * (1 - 1e-9))
    if uncapped.sum() >= 2:
        ratio = share[uncapped] / weights[uncapped]
        assert ratio == pytest.approx(np.full(ratio.shape, ratio[0]), rel=1e-6)
        # a capped pack's limit is below what its weight would have given it: nobody is dragged down
        capped = weighted & ~uncapped
        assert np.all(limits[capped] <= weights[capped] * ratio[0] * (1 + 1e-6))


def test_islanded_packs_share_by_energy_above_reserve_and_strong_ones_are_not_dragged_down():
    packs = pack_view(
        soc=[0.65, 0.65, 0.4, 0.15], soh=[0.9, 0.6, 0.9, 0.9], discharge_limit_w=[400e3, 400e3, 400e3, 30e3]
    )
    view = plant_view(packs, **ISLANDED, pcs_output_w=500e3, fleet_discharge_max_w=1.23e6)
    actions, status = loop().step(view)
    assert status.mode is ControllerMode.ISLANDED
    assert actions.pack_share_enabled is True
    power = actions.pack_power_w
    assert power.sum() == pytest.approx(500e3, abs=400)  # the total rounded up to the 250 kW step
    assert power[0] / power[1] == pytest.approx(0.9 / 0.6, rel=0.01)  # same SOC: by SoH
    assert power[0] / power[2] == pytest.approx(0.5 / 0.25, rel=0.01)  # same SoH: by energy above reserve
    assert power[3] == 0.0  # at the reserve


def test_packs_share_by_energy_so_twice_the_nameplate_takes_twice_the_power():
    packs = pack_view(
        soc=0.6,
        soh=0.8,
        nameplate_wh=[24e3, 48e3, 100e3, 100e3],
        discharge_limit_w=400e3,
        charge_limit_w=400e3,
    )
    view = plant_view(packs, **ISLANDED, pcs_output_w=450e3)
    power = loop().step(view)[0].pack_power_w
    assert power[1] / power[0] == pytest.approx(2.0, rel=0.01)
    assert power[2] / power[0] == pytest.approx(100 / 24, rel=0.01)
    charging = loop().step(plant_view(replace(packs, soc=np.full(4, 0.4)), pcs_output_w=-200e3))[0]
    assert charging.pack_power_w[1] / charging.pack_power_w[0] == pytest.approx(2.0, rel=0.01)


@settings(max_examples=80, deadline=None)
@given(
    packs=st.lists(
        st.tuples(
            st.floats(0.2, 0.95), st.floats(0.55, 0.92), st.sampled_from([24e3, 40e3, 60e3, 75e3, 100e3])
        ),
        min_size=2,
        max_size=12,
    ),
    power_w=st.floats(50e3, 2e6),
)
def test_uncapped_shares_empty_every_pack_to_the_reserve_together(packs, power_w):
    """Share / available energy is the same for every pack (to the commands' 100 W steps): at a steady draw
    all reach the reserve at once."""
    soc, soh, nameplate_wh = (np.array(column) for column in zip(*packs, strict=True))
    view = plant_view(
        pack_view(len(packs), soc=soc, soh=soh, nameplate_wh=nameplate_wh, discharge_limit_w=3e6),
        **ISLANDED,
        pcs_output_w=power_w,
    )
    power = loop().step(view)[0].pack_power_w
    available_wh = soh * nameplate_wh * (soc - 0.15)
    fraction = available_wh / available_wh.sum()
    steps_w = 100.0 + 50.0 * len(packs) * fraction  # a pack's own rounding, and its part of everyone's
    assert np.all(np.abs(power - power.sum() * fraction) <= steps_w)


def test_a_pack_at_its_limit_hands_the_rest_to_the_others():
    packs = pack_view(soc=0.6, soh=[0.9, 0.9, 0.6, 0.6], discharge_limit_w=[60e3, 400e3, 400e3, 400e3])
    actions, _ = loop().step(plant_view(packs, pcs_output_w=500e3))
    power = actions.pack_power_w
    assert power[0] == 60e3
    assert power[1:].sum() == pytest.approx(440e3, abs=300)
    assert power[1] / power[2] == pytest.approx(1.5, rel=0.01)


def test_charging_shares_are_negative_and_by_room():
    packs = pack_view(soc=[0.2, 0.6, 0.6, 0.6], charge_limit_w=400e3)
    actions, _ = loop().step(plant_view(packs, pcs_output_w=-100e3))
    power = actions.pack_power_w
    assert np.all(power < 0)
    assert power[0] / power[1] == pytest.approx(0.8 / 0.4, rel=0.01)


def test_pack_commands_move_only_when_the_power_crosses_a_step():
    run = loop()
    packs = pack_view(discharge_limit_w=400e3)
    first, _ = run.step(plant_view(packs, pcs_output_w=260e3))
    second, _ = run.step(plant_view(packs, pcs_output_w=490e3))
    third, _ = run.step(plant_view(packs, pcs_output_w=510e3))
    assert np.array_equal(first.pack_power_w, second.pack_power_w)
    assert third.pack_power_w.sum() > second.pack_power_w.sum()
    assert np.all(np.mod(third.pack_power_w, 100.0) == 0)


# ---------------------------------------------------------------------------------------- pack faults


def test_a_faulted_pack_is_isolated_within_the_cycle_with_zero_power():
    actions, status = loop().step(plant_view(pack_view(fault_bits=[0, 8, 0, 0])))
    assert actions.pack_contactors.tolist() == [True, False, True, True]
    assert actions.pack_power_w[1] == 0.0 and np.all(actions.pack_power_w[[0, 2, 3]] > 0)
    assert status.alarms & Alarm.PACK_FAULT and status.alarms & Alarm.PACK_ISOLATED
    assert (status.packs_isolated, status.packs_online) == (1, 3)


def test_isolation_is_latched_after_the_fault_clears():
    run = loop()
    run.step(plant_view(pack_view(fault_bits=[16, 0, 0, 0])))
    actions, status = run.step(plant_view(pack_view(contactor_closed=[0, 1, 1, 1])))
    assert actions.pack_contactors.tolist() == [False, True, True, True]
    assert status.packs_isolated == 1 and not status.alarms & Alarm.PACK_FAULT


def test_a_stale_bms_is_derated_then_isolated():
    run = loop()
    run.frozen = np.array([False, False, True, False])
    timeline = run.run(plant_view(), 2.5)
    power = np.array([actions.pack_power_w[2] for actions, _ in timeline])
    contactor = np.array([actions.pack_contactors[2] for actions, _ in timeline])
    stale = np.array([bool(status.alarms & Alarm.BMS_STALE) for _, status in timeline])
    t = np.arange(len(timeline)) * PERIOD_S
    assert np.all(power[t < 0.45] > 0) and np.all(power[t > 0.55] == 0)
    assert np.all(stale == (t > 0.45))
    assert np.all(contactor[t < 1.95]) and not np.any(contactor[t > 2.05])
    assert timeline[-1][1].packs_isolated == 1


def test_a_bms_heartbeat_that_resumes_before_isolation_is_trusted_again():
    run = loop()
    run.frozen = np.array([True, False, False, False])
    run.run(plant_view(), 1.0)
    run.frozen = None
    actions, status = run.step(plant_view())
    assert actions.pack_power_w[0] > 0 and actions.pack_contactors[0]
    assert not status.alarms & Alarm.BMS_STALE


def test_a_welded_contactor_is_alarmed_and_kept_at_zero_power():
    run = loop()
    faulted = plant_view(pack_view(fault_bits=[0, 0, 4, 0]))
    first = run.step(faulted)[1]
    timeline = run.run(faulted, 0.5)
    assert not first.alarms & Alarm.WELDED_CONTACTOR
    actions, status = timeline[-1]
    assert status.alarms & Alarm.WELDED_CONTACTOR
    assert actions.pack_power_w[2] == 0.0 and not actions.pack_contactors[2]


def test_a_pack_that_opens_as_commanded_is_not_welded():
    run = loop()
    run.step(plant_view(pack_view(fault_bits=[0, 0, 4, 0])))
    opened = plant_view(pack_view(fault_bits=[0, 0, 4, 0], contactor_closed=[1, 1, 0, 1]))
    assert not any(status.alarms & Alarm.WELDED_CONTACTOR for _, status in run.run(opened, 1.0))


# ---------------------------------------------------------------------------------------- islanded


def test_islanded_holds_nominal_frequency_and_voltage_without_a_cap_while_healthy():
    actions, status = loop().step(plant_view(**ISLANDED))
    assert status.mode is ControllerMode.ISLANDED
    assert (actions.frequency_setpoint_hz, actions.voltage_setpoint_pu) == (60.0, 1.0)
    assert actions.breaker is None and actions.black_start is False
    assert status.power_cap_w is None and not status.alarms & Alarm.POWER_SHORTFALL


@pytest.mark.parametrize(
    "shortfall", [{"bus_voltage_pu": 0.9}, {"pcs_output_w": 380e3}], ids=["bus-sag", "no-headroom"]
)
def test_islanded_shortfall_requests_a_cap_below_what_the_fleet_can_give(shortfall):
    _, status = loop().step(plant_view(**{**ISLANDED, **shortfall}))
    margin_w = 0.05 * 1e6
    assert status.power_cap_w == pytest.approx(400e3 - margin_w)
    assert status.alarms & Alarm.POWER_SHORTFALL


def test_the_cap_follows_the_pcs_units_available():
    _, status = loop().step(plant_view(**ISLANDED, bus_voltage_pu=0.9, pcs_units_available=1))
    assert status.power_cap_w == pytest.approx(250e3 - 50e3)


def test_a_shortfall_cap_is_released_only_after_the_racks_stay_below_it():
    run = loop(cap_release_s=2.0)
    run.step(plant_view(**ISLANDED, bus_voltage_pu=0.9))
    held = run.run(plant_view(**ISLANDED, pcs_output_w=340e3), 3.0)
    assert all(status.power_cap_w is not None for _, status in held), "racks at the cap: keep it"
    relaxed = run.run(plant_view(**ISLANDED, pcs_output_w=100e3), 2.5)
    caps = [status.power_cap_w for _, status in relaxed]
    assert caps[0] is not None and caps[-1] is None
    assert not relaxed[-1][1].alarms & Alarm.POWER_SHORTFALL


def test_at_the_reserve_the_cap_integrates_the_discharge_away():
    run = loop()
    run.commands.reserve_soc = 0.2
    view = plant_view(**ISLANDED, fleet_soc=0.2, pcs_output_w=300e3)
    caps = [status.power_cap_w for _, status in run.run(view, 0.3)]
    assert caps == pytest.approx([240e3, 180e3, 120e3])
    _, status = run.step(replace(view, pcs_output_w=-50e3))
    assert status.power_cap_w == pytest.approx(130e3)
    assert status.alarms & Alarm.LOW_SOC


def test_no_cap_is_requested_while_grid_connected():
    _, status = loop().step(plant_view(bus_voltage_pu=0.9, fleet_soc=0.1))
    assert status.power_cap_w is None


# ---------------------------------------------------------------------------------------- black start


def test_a_short_dead_bus_is_taken_for_the_transfer_then_a_black_start_is_requested_once():
    run = loop(transfer_grace_s=0.5)
    run.step(plant_view())
    timeline = run.run(plant_view(**DEAD_BUS), 1.5)
    starts = [actions.black_start for actions, _ in timeline]
    modes = [status.mode for _, status in timeline]
    assert modes[:5] == [ControllerMode.GRID_CONNECTED] * 5 and not any(starts[:5])
    assert modes[5:] == [ControllerMode.BLACK_START] * (len(timeline) - 5)
    assert starts.count(True) == 1 and starts[5]


def test_enabling_on_a_dead_bus_neither_stops_nor_starts_within_the_grace():
    actions, status = loop(transfer_grace_s=0.5).step(plant_view(**DEAD_BUS))
    assert status.mode is not ControllerMode.STOPPED
    assert actions.mode_request is None and not actions.black_start


def test_a_tripped_pcs_is_reset_before_the_black_start():
    run = loop(transfer_grace_s=0.0)
    actions, status = run.step(plant_view(**{**DEAD_BUS, "pcs_state": PcsState.TRIPPED}))
    assert status.mode is ControllerMode.BLACK_START
    assert actions.pcs_reset and not actions.black_start
    actions, _ = run.step(plant_view(**DEAD_BUS))
    assert actions.black_start


def test_black_start_lasts_until_the_bus_is_up():
    run = loop(transfer_grace_s=0.0)
    run.step(plant_view(**DEAD_BUS))
    ramping = run.run(plant_view(**{**ISLANDED, "bus_voltage_pu": 0.5}), 0.3)
    assert all(status.mode is ControllerMode.BLACK_START for _, status in ramping)
    assert not any(actions.black_start for actions, _ in ramping)
    _, status = run.step(plant_view(**ISLANDED))
    assert status.mode is ControllerMode.ISLANDED


# ---------------------------------------------------------------------------------------- reconnection

GRID_BACK = {**ISLANDED, "grid_voltage_pu": 1.0, "grid_frequency_hz": 60.02}


def test_reconnection_waits_for_a_stable_grid_then_slips_and_closes_with_sync_check():
    run = loop(grid_stable_s=2.0)
    run.step(plant_view(**ISLANDED))
    waiting = run.run(plant_view(**GRID_BACK), 2.0)
    assert all(status.mode is ControllerMode.ISLANDED for _, status in waiting)
    assert all(status.alarms & Alarm.GRID_UNSTABLE for _, status in waiting)
    assert all(actions.breaker is None for actions, _ in waiting)
    actions, status = run.step(plant_view(**GRID_BACK))
    assert status.mode is ControllerMode.TRANSITIONING
    assert actions.breaker is BreakerCommand.CLOSE_WITH_SYNC_CHECK
    assert actions.frequency_setpoint_hz == pytest.approx(60.05)
    assert not status.alarms & Alarm.GRID_UNSTABLE
    actions, _ = run.step(plant_view(**GRID_BACK, close_pending=True))
    assert actions.breaker is None, "the relay holds the close request"
    actions, status = run.step(plant_view(pcs_state=PcsState.GRID_FORMING))
    assert status.mode is ControllerMode.GRID_CONNECTED
    assert actions.mode_request is ModeRequest.FOLLOW and actions.control is PcsControl.PCC_SMOOTHING


@pytest.mark.parametrize(
    "wobble", [{"grid_voltage_pu": 0.94}, {"grid_frequency_hz": 60.2}], ids=["voltage", "frequency"]
)
def test_a_grid_wobble_restarts_the_stability_hold(wobble):
    run = loop(grid_stable_s=2.0)
    run.run(plant_view(**GRID_BACK), 1.5)
    run.step(plant_view(**{**GRID_BACK, **wobble}))
    timeline = run.run(plant_view(**GRID_BACK), 2.0)
    assert all(status.mode is ControllerMode.ISLANDED for _, status in timeline)
    assert run.step(plant_view(**GRID_BACK))[1].mode is ControllerMode.TRANSITIONING


def test_a_sync_that_never_comes_times_out_cancels_and_alarms():
    run = loop(grid_stable_s=1.0, sync_timeout_s=3.0)
    run.run(plant_view(**GRID_BACK), 1.0)
    pending = run.run(plant_view(**GRID_BACK, close_pending=True), 3.1)
    assert pending[0][1].mode is ControllerMode.TRANSITIONING
    assert not pending[-2][1].alarms & Alarm.SYNC_TIMEOUT
    actions, status = run.step(plant_view(**GRID_BACK, close_pending=True))
    assert status.mode is ControllerMode.ISLANDED and status.alarms & Alarm.SYNC_TIMEOUT
    assert actions.breaker is BreakerCommand.CANCEL_CLOSE
    _, status = run.run(plant_view(pcs_state=PcsState.GRID_FORMING), 0.1)[-1]
    assert status.mode is ControllerMode.GRID_CONNECTED and not status.alarms & Alarm.SYNC_TIMEOUT


# ---------------------------------------------------------------------------------------- planned island


def test_planned_island_zeroes_the_pcc_first_then_opens_and_stays_islanded_until_asked_back():
    run = loop(grid_stable_s=0.5)
    run.commands.planned_island_requested = True
    actions, status = run.step(plant_view(pcs_output_w=200e3, pcc_w=150e3))
    assert run.commands.planned_island_requested is False, "the request is taken up"
    assert status.mode is ControllerMode.TRANSITIONING
    assert actions.dispatch_w == pytest.approx(350e3) and actions.breaker is None
    actions, _ = run.step(plant_view(pcs_output_w=340e3, pcc_w=25e3))
    assert actions.breaker is None, "2.5 % of the rating is not near zero yet"
    actions, status = run.step(plant_view(pcs_output_w=345e3, pcc_w=-8e3))
    assert actions.breaker is BreakerCommand.OPEN and status.mode is ControllerMode.TRANSITIONING
    waiting = run.run(plant_view(**GRID_BACK), 1.5)
    assert all(status.mode is ControllerMode.ISLANDED for _, status in waiting)
    assert all(actions.breaker is None for actions, _ in waiting)
    run.commands.reconnect_requested = True
    actions, status = run.step(plant_view(**GRID_BACK))
    assert run.commands.reconnect_requested is False
    assert status.mode is ControllerMode.TRANSITIONING
    assert actions.breaker is BreakerCommand.CLOSE_WITH_SYNC_CHECK


def test_a_large_plant_opens_only_once_the_step_fits_the_grid_ramp_limit():
    """At 12 MW, 2 % of the rating is 240 kW: opening there would step the grid; it opens once the
    flow is within one control period of its 120 kW/s ramp (12 kW)."""
    run = loop()
    run.commands.planned_island_requested = True
    large = {"pcs_rated_w": 12e6, "pcs_output_w": 3e6}
    actions, _ = run.step(plant_view(**large, pcc_w=100e3))
    assert actions.breaker is None, "100 kW is under 2 % of 12 MW but a step of 0.8 s of the ramp"
    actions, _ = run.step(plant_view(**large, pcc_w=10e3))
    assert actions.breaker is BreakerCommand.OPEN


def test_planned_island_dispatch_respects_the_fleet_limit():
    run = loop()
    run.commands.planned_island_requested = True
    actions, _ = run.step(plant_view(pcs_output_w=300e3, pcc_w=900e3))
    assert actions.dispatch_w == 400e3 and actions.breaker is None


# ---------------------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    "bad", [{"stale_s": 0.0}, {"isolate_stale_s": 0.1}, {"reserve_cap_gain": 1.5}, {"period_s": -1.0}]
)
def test_config_rejects_nonsense(bad):
    with pytest.raises(ValueError, match="out of range"):
        ControllerConfig(**bad)
