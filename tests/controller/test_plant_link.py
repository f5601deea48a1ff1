"""PlantLink against the simulated bench, over the wire: the view is the plant as its BMSs and the face report
it, every action reaches the plant, nothing the actions leave alone is written, and a pack whose BMS link is
lost shows stale data. The plant is only read here, except to inject test conditions (a grid outage, a PCS
trip, an isolation fault, a lost BMS link)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.errors import IdentityMismatch
from drivers.modbus import ModbusTransport
from harness.controller.model import (
    Actions,
    BreakerCommand,
    ModeRequest,
    PcsControl,
    PcsState,
    PlantView,
)
from harness.controller.plant_link import PlantLink
from harness.sim.bench import SimBench
from harness.sim.packs import InjectedFault
from harness.sim.pcs import PcsControl as SimPcsControl
from harness.sim.pcs import PcsMode
from harness.sim.plant import Plant, PlantConfig

PACKS = 12
CONFIG = PlantConfig(packs=PACKS, pcs_rated_w=1.2e6, pv_rated_w=0.0, load_rated_w=0.4e6)
NOMINAL_V = 480.0
STEP_S = 0.1
PCS_STATES = {
    PcsMode.OFF: PcsState.OFF,
    PcsMode.GRID_FOLLOWING: PcsState.GRID_FOLLOWING,
    PcsMode.GRID_FORMING: PcsState.GRID_FORMING,
    PcsMode.TRIPPED: PcsState.TRIPPED,
}
HEARTBEAT_MODULUS = 65535
PACK_POWERS_W = np.linspace(-50e3, 60e3, PACKS)
"""Per-pack power commands on the 100 W steps of the register."""
PACKS_PER_UNIT = 2352
POWER_ARRAY, CONTACTOR_ARRAY = 50_000, 52_352
"""The face's per-pack command arrays (docs/register-map.md): a unit's k-th pack at base + k."""
MAX_WRITE = 123


def build_bench(config: PlantConfig) -> SimBench:
    """A bench whose packs start at different SOCs, so per-pack columns cannot match by accident."""
    plant = Plant.build(config)
    plant.packs.set_soc(slice(None), np.linspace(0.35, 0.9, config.packs))
    return SimBench(config, plant=plant)


@pytest.fixture
def bench() -> Iterator[SimBench]:
    with build_bench(CONFIG) as started:
        started.advance(STEP_S)
        yield started


@pytest.fixture
def link(bench: SimBench) -> Iterator[PlantLink]:
    with PlantLink(bench.pcs_face.resource, nominal_v=NOMINAL_V) as opened:
        yield opened


@dataclass(frozen=True)
class Written:
    unit: int
    address: int
    registers: tuple[int, ...]


@pytest.fixture
def written(monkeypatch: pytest.MonkeyPatch) -> list[Written]:
    """Every write request any ModbusTransport sends from now on."""
    requests: list[Written] = []
    send = ModbusTransport.write_registers

    def spy(transport: ModbusTransport, address: int, values: list[int], what: str = "") -> None:
        requests.append(Written(transport.address.unit, address, tuple(values)))
        send(transport, address, values, what)

    monkeypatch.setattr(ModbusTransport, "write_registers", spy)
    return requests


def run(bench: SimBench, seconds: float) -> None:
    for _ in range(round(seconds / STEP_S)):
        bench.advance(STEP_S)


# ----------------------------------------------------------------------------- the view


def assert_view_is_the_plant(view: PlantView, bench: SimBench) -> None:
    """Every field against the plant's ground truth, within half a register step of the face's layout."""
    with bench.lock:
        plant = bench.plant
        packs, bus = plant.packs, plant.bus
        sync = plant.sync_check()
        grid = plant.grid.state_at(plant.t)
        discharge_w, charge_w = packs.power_limits()
        energy_j = packs.energy_capacity_j
        expected_packs = {
            "soc": (packs.reported_soc, 0.5e-4),
            "soh": (packs.fleet.soh, 0.5e-4),
            "voltage_v": (packs.reported_v, 0.05),
            "current_a": (packs.reported_current_a, 0.05),
            "temperature_c": (packs.reported_temperature_c, 0.05),
            "cell_v_min": (packs.cell_v_min, 0.5e-3),
            "cell_v_max": (packs.cell_v_max, 0.5e-3),
            "discharge_limit_w": (discharge_w, 50.0),
            "charge_limit_w": (charge_w, 50.0),
            "nameplate_wh": (packs.fleet.nameplate_wh, 5.0),
        }
        for field, (truth, tolerance) in expected_packs.items():
            np.testing.assert_allclose(
                getattr(view.packs, field), truth, rtol=0, atol=tolerance, err_msg=field
            )
        np.testing.assert_array_equal(view.packs.contactor_closed, packs.contactor_closed)
        np.testing.assert_array_equal(view.packs.fault_bits, packs.fault)
        np.testing.assert_array_equal(view.packs.heartbeat, packs.heartbeat % HEARTBEAT_MODULUS)
        assert view.pcs_state is PCS_STATES[plant.pcs.mode]
        assert view.pcs_output_w == pytest.approx(bus.pcs_ac_w, abs=500.0)
        assert view.pcs_rated_w == plant.pcs.rated_w
        assert view.pcs_units == len(plant.pcs.units)
        assert view.pcs_units_available == sum(unit.available for unit in plant.pcs.units)
        assert view.breaker_closed == plant.pcc.closed
        assert view.close_pending == plant.pcc.close_requested
        assert view.pcc_w == pytest.approx(bus.grid_w, abs=0.5)
        grid_live = grid.available and grid.voltage_pu > 0.0
        assert view.grid_voltage_pu == pytest.approx(
            grid.voltage_pu if grid_live else 0.0, abs=0.05 / NOMINAL_V
        )
        assert view.grid_frequency_hz == pytest.approx(grid.frequency_hz if grid_live else 0.0, abs=0.005)
        assert view.bus_voltage_pu == pytest.approx(bus.voltage_pu, abs=0.05 / NOMINAL_V)
        assert view.sync_dv_pu == pytest.approx(sync.dv_pu, abs=0.05 / NOMINAL_V)
        assert view.sync_df_hz == pytest.approx(sync.df_hz, abs=0.005)
        assert view.sync_dtheta_deg == pytest.approx(sync.dtheta_deg, abs=0.05)
        assert view.fleet_soc == pytest.approx(
            np.dot(packs.reported_soc, energy_j) / energy_j.sum(), abs=0.5e-4
        )
        assert view.fleet_discharge_max_w == pytest.approx(discharge_w.sum(), abs=5e3)
        assert view.fleet_charge_max_w == pytest.approx(charge_w.sum(), abs=5e3)


def test_view_matches_the_plant_grid_connected_and_discharging(bench, link):
    view = link.read()
    link.apply(Actions(control=PcsControl.POWER, dispatch_w=600e3), view)
    run(bench, 2.0)
    view = link.read()
    assert view.pcs_state is PcsState.GRID_FOLLOWING and view.breaker_closed
    assert view.pcs_output_w > 500e3 and view.pcc_w < 0.0  # the PCS exports beyond the racks' draw
    assert_view_is_the_plant(view, bench)


def test_view_matches_the_plant_through_an_island_and_the_grid_coming_back(bench, link):
    with bench.lock:
        bench.plant.grid.outage(at=bench.plant.t)
    run(bench, 1.0)
    islanded = link.read()
    assert not islanded.breaker_closed and islanded.pcs_state is PcsState.GRID_FORMING
    assert islanded.grid_voltage_pu == 0.0 and islanded.pcc_w == 0.0
    assert_view_is_the_plant(islanded, bench)
    link.apply(Actions(frequency_setpoint_hz=60.3), islanded)
    with bench.lock:
        bench.plant.grid.restore(at=bench.plant.t)
    run(bench, 2.0)
    drifting = link.read()
    assert drifting.sync_df_hz > 0.1 and drifting.grid_voltage_pu > 0.9
    assert_view_is_the_plant(drifting, bench)


def test_the_view_carries_each_packs_nameplate_energy(bench, link):
    """The default mix has makes of 24 to 100 kWh: a pack's energy is SoH x its own nameplate."""
    view = link.read()
    with bench.lock:
        fleet = bench.plant.packs.fleet
        np.testing.assert_allclose(view.packs.nameplate_wh, fleet.nameplate_wh, rtol=0, atol=5.0)
        np.testing.assert_allclose(
            view.packs.soh * view.packs.nameplate_wh, fleet.usable_wh, rtol=1e-3, atol=0
        )
    assert np.ptp(view.packs.nameplate_wh) > 30e3


def test_a_pack_whose_bms_link_is_lost_reads_stale_while_the_others_move_on(bench, link):
    lost = 4
    link.apply(Actions(control=PcsControl.POWER, dispatch_w=1.0e6), link.read())
    with bench.lock:
        bench.plant.packs.inject(InjectedFault.BMS_COMMS_LOSS, lost)
    run(bench, 0.5)
    before = link.read()
    with bench.lock:
        true_soc_before = bench.plant.packs.soc[lost]
    run(bench, 5.0)
    after = link.read()
    with bench.lock:
        true_soc_after = bench.plant.packs.soc[lost]
    others = np.arange(PACKS) != lost
    assert after.packs.heartbeat[lost] == before.packs.heartbeat[lost]
    assert (after.packs.heartbeat[others] > before.packs.heartbeat[others]).all()
    assert true_soc_before - true_soc_after > 1e-3  # the pack discharged ...
    assert after.packs.soc[lost] == before.packs.soc[lost]  # ... but its BMS report did not move
    assert (after.packs.soc[others] < before.packs.soc[others]).all()
    assert_view_is_the_plant(after, bench)


def test_a_fleet_beyond_one_unit_is_read_and_commanded_on_every_unit(written):
    config = PlantConfig(packs=2600, pcs_rated_w=12e6, pv_rated_w=0.0, load_rated_w=2e6)
    with build_bench(config) as bench, PlantLink(bench.pcs_face.resource) as link:
        bench.advance(STEP_S)
        assert link.packs == 2600
        view = link.read()
        with bench.lock:
            np.testing.assert_allclose(view.packs.soc, bench.plant.packs.reported_soc, atol=0.5e-4)
        contactors = view.packs.contactor_closed.copy()
        contactors[[5, 2550]] = False
        link.apply(Actions(pack_contactors=contactors), view)
        with bench.lock:
            assert np.flatnonzero(~bench.plant.packs.contactor_closed).tolist() == [5, 2550]
        assert [(request.unit, request.address) for request in written] == [
            (1, CONTACTOR_ARRAY + 5),
            (2, CONTACTOR_ARRAY + 2550 - PACKS_PER_UNIT),
        ]

        written.clear()
        power = np.arange(2600) * 100.0 + 100.0  # every pack's command changes
        link.apply(Actions(pack_power_w=power), view)
        sizes = [(request.unit, len(request.registers)) for request in written]
        on_2 = 2600 - PACKS_PER_UNIT
        assert sizes == (  # the fewest requests on each unit
            [(1, MAX_WRITE)] * 19
            + [(1, PACKS_PER_UNIT - 19 * MAX_WRITE)]
            + [(2, MAX_WRITE)] * 2
            + [(2, on_2 - 2 * MAX_WRITE)]
        )
        np.testing.assert_array_equal(link.read().packs.power_command_w, power)


# ----------------------------------------------------------------------------- actions


@dataclass(frozen=True)
class ActionCase:
    actions: Callable[[PlantView], Actions]
    reached: Callable[[Plant], bool]
    prepare: Callable[[Plant], None] = lambda plant: None
    settle_s: float = 0.0


def _close_all_but(view: PlantView, pack: int) -> np.ndarray:
    contactors = np.ones(view.packs.n, dtype=bool)
    contactors[pack] = False
    return contactors


def _dead_island(plant: Plant) -> None:
    plant.grid.outage(at=plant.t)
    plant.pcs.islanding_enabled = False


def _latched_isolation_fault(plant: Plant) -> None:
    plant.packs.inject(InjectedFault.ISOLATION, 2)
    plant.step(STEP_S)
    plant.packs.clear(InjectedFault.ISOLATION, 2)
    plant.packs.command_contactors(np.arange(plant.packs.n) != 2)  # isolated, as a pack manager would


ACTION_CASES = {
    "stop": ActionCase(lambda v: Actions(mode_request=ModeRequest.STOP), lambda p: p.pcs.mode is PcsMode.OFF),
    "form": ActionCase(
        lambda v: Actions(mode_request=ModeRequest.FORM), lambda p: p.pcs.mode is PcsMode.GRID_FORMING
    ),
    "follow": ActionCase(
        lambda v: Actions(mode_request=ModeRequest.FOLLOW),
        lambda p: p.pcs.mode is PcsMode.GRID_FOLLOWING,
        prepare=lambda p: setattr(p.pcs, "mode", PcsMode.OFF),
    ),
    "control": ActionCase(
        lambda v: Actions(control=PcsControl.PCC_SMOOTHING),
        lambda p: p.pcs.control is SimPcsControl.PCC_SMOOTHING,
    ),
    "ramp": ActionCase(
        lambda v: Actions(pcc_ramp_w_per_s=54_321.0), lambda p: p.pcs.pcc_ramp_w_per_s == 54_321
    ),
    "dispatch": ActionCase(lambda v: Actions(dispatch_w=-250e3), lambda p: p.pcs.dispatch_w == -250e3),
    "dispatch beyond the rating is clipped": ActionCase(
        lambda v: Actions(dispatch_w=5e6), lambda p: p.pcs.dispatch_w == p.pcs.rated_w
    ),
    "auto-island off": ActionCase(
        lambda v: Actions(auto_island_enabled=False), lambda p: not p.pcc.auto_island_enabled
    ),
    "islanding off": ActionCase(
        lambda v: Actions(islanding_enabled=False), lambda p: not p.pcs.islanding_enabled
    ),
    "frequency setpoint": ActionCase(
        lambda v: Actions(frequency_setpoint_hz=59.8), lambda p: p.pcs.frequency_setpoint_hz == 59.8
    ),
    "voltage setpoint": ActionCase(
        lambda v: Actions(voltage_setpoint_pu=1.02),
        lambda p: abs(p.pcs.voltage_setpoint_pu - 1.02) <= 0.05 / NOMINAL_V,
    ),
    "breaker open": ActionCase(
        lambda v: Actions(breaker=BreakerCommand.OPEN), lambda p: not p.pcc.closed, settle_s=STEP_S
    ),
    "breaker close bypassing the sync check": ActionCase(
        lambda v: Actions(breaker=BreakerCommand.CLOSE_BYPASSING_SYNC_CHECK),
        lambda p: p.pcc.close_requested and not p.pcc.close_sync_check,
        prepare=lambda p: p.pcc.request_open(),
    ),
    "black start": ActionCase(
        lambda v: Actions(black_start=True),
        lambda p: p.pcs.mode is PcsMode.GRID_FORMING,
        prepare=_dead_island,
    ),
    "PCS reset": ActionCase(
        lambda v: Actions(pcs_reset=True),
        lambda p: p.pcs.mode is PcsMode.OFF,
        prepare=lambda p: p.pcs.trip("test trip"),
    ),
    "pack sharing": ActionCase(
        lambda v: Actions(pack_share_enabled=True), lambda p: p.pack_share is not None
    ),
    "pack contactor": ActionCase(
        lambda v: Actions(pack_contactors=_close_all_but(v, 7)),
        lambda p: np.flatnonzero(~p.packs.contactor_closed).tolist() == [7],
    ),
    "pack power": ActionCase(
        lambda v: Actions(pack_power_w=PACK_POWERS_W, pack_share_enabled=True),
        lambda p: p.pack_share is not None and np.array_equal(p.pack_share, PACK_POWERS_W),
    ),
    "pack fault reset": ActionCase(
        lambda v: Actions(pack_fault_resets=(2,)),
        lambda p: int(p.packs.fault[2]) == 0,
        prepare=_latched_isolation_fault,
    ),
}


@pytest.mark.parametrize("case", ACTION_CASES.values(), ids=ACTION_CASES.keys())
def test_each_action_reaches_the_plant(bench, link, case: ActionCase):
    with bench.lock:
        case.prepare(bench.plant)
        assert not case.reached(bench.plant), "the test condition must not hold before the action"
    bench.advance(STEP_S)
    view = link.read()
    link.apply(case.actions(view), view)
    if case.settle_s:
        bench.advance(case.settle_s)
    with bench.lock:
        assert case.reached(bench.plant)


def test_no_actions_write_nothing_and_each_setting_is_one_request(link, written):
    view = link.read()
    link.apply(Actions(), view)
    assert written == []
    link.apply(Actions(dispatch_w=100e3), view)
    assert len(written) == 1 and len(written[0].registers) == 4  # WSetEna, WSetMod, WSet: one request
    written.clear()
    link.apply(Actions(control=PcsControl.POWER, pcc_ramp_w_per_s=1e5, auto_island_enabled=True), view)
    assert len(written) == 1  # adjacent settings are merged
    written.clear()
    link.apply(Actions(mode_request=ModeRequest.FOLLOW, breaker=BreakerCommand.CANCEL_CLOSE), view)
    assert len(written) == 2  # commands act one by one


def test_a_fault_reset_goes_before_the_close_that_needs_it(bench, link):
    with bench.lock:
        _latched_isolation_fault(bench.plant)
    view = link.read()
    assert not view.packs.contactor_closed[2] and view.packs.fault_bits[2] != 0
    link.apply(Actions(pack_fault_resets=(2,), pack_contactors=np.ones(PACKS, dtype=bool)), view)
    with bench.lock:
        assert bench.plant.packs.contactor_closed.all()


def test_bad_pack_arrays_are_refused_before_anything_is_written(link, written):
    view = link.read()
    with pytest.raises(ValueError, match="pack_power_w"):
        link.apply(Actions(dispatch_w=1e5, pack_power_w=np.zeros(PACKS - 1)), view)
    with pytest.raises(ValueError, match="pack_power_w"):
        link.apply(Actions(pack_power_w=np.full(PACKS, np.nan)), view)
    with pytest.raises(ValueError, match="pack_contactors"):
        link.apply(Actions(pack_contactors=np.ones(PACKS + 1, dtype=bool)), view)
    with pytest.raises(ValueError, match="pack 12"):
        link.apply(Actions(pack_fault_resets=(PACKS,)), view)
    assert written == []


def array_requests(written: list[Written], base: int) -> list[Written]:
    return [request for request in written if base <= request.address < base + PACKS]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(st.none() | st.integers(-3000, 3000), min_size=PACKS, max_size=PACKS),
    flipped=st.lists(st.booleans(), min_size=PACKS, max_size=PACKS),
)
def test_changed_pack_commands_go_to_the_arrays_in_one_request_each(link, written, steps, flipped):
    """``steps``: per pack, a new power command in 100 W register steps, or None to keep the one the view
    shows. Each example starts from whatever the previous one left: the view read now is the reference.
    A request spans the first to the last pack whose command changed, the packs between included."""
    view = link.read()
    power = np.array(
        [
            old if step is None else 100.0 * step
            for old, step in zip(view.packs.power_command_w, steps, strict=True)
        ]
    )
    contactors = view.packs.contactor_closed ^ np.array(flipped)
    written.clear()
    link.apply(Actions(pack_power_w=power, pack_contactors=contactors), view)
    arrays = (
        (
            POWER_ARRAY,
            power != view.packs.power_command_w,
            [int(raw) & 0xFFFF for raw in np.rint(power / 100.0)],
        ),
        (CONTACTOR_ARRAY, np.array(flipped), contactors.astype(int).tolist()),
    )
    for base, changed, registers in arrays:
        requests = array_requests(written, base)
        if not changed.any():
            assert requests == []
            continue
        first, last = np.flatnonzero(changed)[[0, -1]]
        assert requests == [Written(1, base + first, tuple(registers[first : last + 1]))]
    assert len(written) == sum(bool(changed.any()) for _, changed, _ in arrays)
    after = link.read()
    np.testing.assert_array_equal(after.packs.power_command_w, power)
    np.testing.assert_array_equal(after.packs.contactor_closed, contactors)


# ----------------------------------------------------------------------------- opening


def test_a_face_without_the_documented_models_is_refused(bench):
    meter = PlantLink(bench.standins["pcc_meter"].resource)
    with pytest.raises(IdentityMismatch, match="missing from the chain"):
        meter.open()
    with pytest.raises(RuntimeError, match="not open"):
        meter.read()
