"""The reference controller and its variants against the simulated bench, over the wire, in lock-step."""

from __future__ import annotations

import pytest

from drivers.base import DriverConfig
from drivers.controller_link import ControllerLink
from harness.controller.model import ControllerMode
from harness.controller.reference import ControllerConfig
from harness.controller.runner import ControllerRunner
from harness.controller.variants import build_controller
from harness.sim.bench import SimBench
from harness.sim.load import Constant, TrainingSwings
from harness.sim.packs import InjectedFault
from harness.sim.plant import PlantConfig

SMALL = PlantConfig(packs=24, pcs_rated_w=1.2e6, pv_rated_w=0.0, load_rated_w=0.4e6)
PERIOD_S = 0.1


class Loop:
    """A bench and a controller on one virtual clock: plant step, then controller cycle."""

    def __init__(self, bench: SimBench, runner: ControllerRunner) -> None:
        self.bench, self.runner = bench, runner

    @property
    def plant(self):
        return self.bench.plant

    def run_until(self, t_end: float) -> None:
        while self.plant.t < t_end - 1e-9:
            self.bench.advance(PERIOD_S)
            self.runner.cycle(self.plant.t)

    def run_while(self, condition, deadline_s: float) -> None:
        end = self.plant.t + deadline_s
        while condition() and self.plant.t < end:
            self.run_until(self.plant.t + PERIOD_S)


@pytest.fixture
def loop_for():
    opened = []

    def make(variant: str | None = None) -> Loop:
        bench = SimBench(SMALL).start()
        opened.append(bench)
        bench.plant.load.set_profile(Constant(0.8), at=0.0)
        controller = build_controller(variant, ControllerConfig())
        runner = ControllerRunner(controller, bench.pcs_face.resource).start()
        opened.append(runner)
        loop = Loop(bench, runner)
        loop.run_until(2.0)
        return loop

    yield make
    for item in reversed(opened):
        item.close()


def test_grid_loss_islands_cleanly_and_grid_return_resyncs(loop_for):
    loop = loop_for()
    plant = loop.plant
    assert loop.runner.status.mode is ControllerMode.GRID_CONNECTED
    plant.grid.outage(at=plant.t + 0.05)
    loop.run_until(plant.t + 3.0)
    assert loop.runner.status.mode is ControllerMode.ISLANDED
    assert plant.load.drop_count == 0, "the transfer must stay inside the racks' ride-through"
    plant.grid.restore(at=plant.t)
    loop.run_while(lambda: not plant.pcc.closed, deadline_s=40.0)
    assert plant.pcc.closed, "the controller must reconnect once the grid is stable"
    close = plant.pcc.closes[-1]
    assert close.sync_checked and close.in_window
    loop.run_until(plant.t + 1.0)
    assert loop.runner.status.mode is ControllerMode.GRID_CONNECTED
    assert plant.load.drop_count == 0


def test_a_pack_whose_bms_goes_silent_is_isolated(loop_for):
    loop = loop_for()
    plant = loop.plant
    with loop.bench.lock:
        plant.packs.inject(InjectedFault.BMS_COMMS_LOSS, 3)
    loop.run_until(plant.t + 4.0)
    with loop.bench.lock:
        assert not plant.packs.contactor_closed[3], "a pack with a silent BMS is isolated"
        assert plant.packs.contactor_closed[[0, 1, 2, 4]].all()


def test_the_published_face_reads_through_the_controller_link(loop_for):
    loop = loop_for()
    link = ControllerLink(DriverConfig("controller", loop.runner.face_resource)).open()
    try:
        first = link.status()
        loop.run_until(loop.plant.t + 0.5)
        second = link.status()
    finally:
        link.close()
    assert second.heartbeat != first.heartbeat
    assert second.mode == ControllerMode.GRID_CONNECTED
    assert second.packs_online == SMALL.packs


def test_a_restart_asked_through_the_face_idles_for_the_boot_time_then_takes_over_the_island(loop_for):
    loop = loop_for()
    plant = loop.plant
    plant.grid.outage(at=plant.t + 0.05)
    loop.run_until(plant.t + 2.0)
    old = loop.runner.controller
    link = ControllerLink(DriverConfig("controller", loop.runner.face_resource)).open()
    try:
        link.restart()
        loop.run_until(plant.t + 1.0)
        booting = link.status()
        assert booting.mode == ControllerMode.STOPPED
        loop.run_until(plant.t + 1.0)
        assert link.status().heartbeat == booting.heartbeat, "nothing cycles while it boots"
        assert loop.runner.controller is old
        loop.run_until(plant.t + loop.runner.boot_s)
        back = link.status()
    finally:
        link.close()
    assert loop.runner.controller is not old and type(loop.runner.controller) is type(old)
    assert back.mode == ControllerMode.ISLANDED and back.heartbeat > 0
    assert not plant.pcc.closed and plant.load.drop_count == 0, "the PCS held the island meanwhile"


def test_never_island_variant_lets_the_racks_drop(loop_for):
    loop = loop_for("never-island")
    plant = loop.plant
    plant.grid.outage(at=plant.t + 0.05)
    loop.run_until(plant.t + 3.0)
    assert plant.load.drop_count >= 1


def test_no_sync_check_variant_recloses_bypassing_the_relay(loop_for):
    loop = loop_for("no-sync-check")
    plant = loop.plant
    plant.grid.outage(at=plant.t + 0.05)
    loop.run_until(plant.t + 3.0)
    plant.grid.restore(at=plant.t)
    loop.run_while(lambda: not plant.pcc.closed, deadline_s=40.0)
    assert plant.pcc.closed
    assert not plant.pcc.closes[-1].sync_checked


def test_trusts_stale_bms_variant_keeps_a_silent_pack_connected(loop_for):
    loop = loop_for("trusts-stale-bms")
    plant = loop.plant
    with loop.bench.lock:
        plant.packs.inject(InjectedFault.BMS_COMMS_LOSS, 3)
    loop.run_until(plant.t + 4.0)
    with loop.bench.lock:
        assert plant.packs.contactor_closed[3]


def grid_swing_w(loop: Loop) -> float:
    plant = loop.plant
    plant.load.set_profile(
        TrainingSwings(period_s=1.0, duty=0.7, low=0.15, high=1.0, edge_s=0.1, jitter=0.0, seed=1), at=plant.t
    )
    loop.run_until(plant.t + 5.0)
    grid = []
    end = plant.t + 10.0
    while plant.t < end:
        loop.run_until(plant.t + PERIOD_S)
        grid.append(plant.bus.grid_w)
    return max(grid) - min(grid)


def test_the_reference_keeps_training_swings_off_the_grid_and_no_smoothing_does_not(loop_for):
    smoothed = grid_swing_w(loop_for())
    unsmoothed = grid_swing_w(loop_for("no-smoothing"))
    assert smoothed < 0.25 * unsmoothed


def test_a_planned_island_asked_through_the_face_opens_with_little_pcc_flow(loop_for):
    loop = loop_for()
    plant = loop.plant
    link = ControllerLink(DriverConfig("controller", loop.runner.face_resource)).open()
    try:
        link.planned_island()
        loop.run_while(lambda: plant.pcc.closed, deadline_s=30.0)
        assert not plant.pcc.closed
        assert plant.pcc.last_open_reason == "planned island"
        loop.run_until(plant.t + 1.0)
        assert link.status().mode == ControllerMode.ISLANDED
    finally:
        link.close()
    events = [e for e in plant.voltage_events.events if e.start_s > 2.0]
    assert not events, "a planned island is seamless: no dip at the racks"
    assert plant.load.drop_count == 0


def test_a_tripped_pcs_in_island_is_reset_and_black_started(loop_for):
    loop = loop_for()
    plant = loop.plant
    plant.grid.outage(at=plant.t + 0.05)
    loop.run_until(plant.t + 3.0)
    with loop.bench.lock:
        plant.pcs.trip("test: PCS fault")
    loop.bench.advance(0.01)
    assert plant.bus.voltage_pu == 0.0, "a tripped PCS leaves the island dead"
    loop.run_while(lambda: plant.bus.voltage_pu < 0.99, deadline_s=20.0)
    assert plant.bus.voltage_pu == pytest.approx(1.0, abs=0.01)
    assert any("black start" in entry.text for entry in plant.journal)


def test_an_island_short_of_power_asks_the_racks_for_a_cap(loop_for):
    loop = loop_for()
    plant = loop.plant
    plant.grid.outage(at=plant.t + 0.05)
    loop.run_until(plant.t + 3.0)
    with loop.bench.lock:
        for unit in range(len(plant.pcs.units) - 1):
            plant.pcs.set_unit_available(unit, False)
    loop.run_until(plant.t + 3.0)
    cap = loop.runner.status.power_cap_w
    assert cap is not None
    assert cap <= plant.pcs.available_w
