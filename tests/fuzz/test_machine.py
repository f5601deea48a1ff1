"""The state machine's rules draw valid, realistic sequences (no plant runs here: a stand-in session)."""

from __future__ import annotations

import math
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from harness.fuzz import draws
from harness.fuzz.draft import Draft, Start
from harness.fuzz.invariants import INVARIANTS, InvariantBroken
from harness.fuzz.machine import ExampleReport, FuzzMachine, MachineConfig
from harness.sequence import Sequence, Step, parse_sequence_text
from harness.sim.itic import itic_lower_pu
from harness.sim.plant import Plant, PlantConfig
from harness.trace import (
    BUS_FREQUENCY_HZ,
    BUS_VOLTAGE_PU,
    CONTROLLER_MODE,
    FLEET_SOC,
    GRID_W,
    LOAD_DEMAND_W,
    LOAD_SERVED_W,
    PACK_CURRENT_A,
    PACK_FAULT,
    PACK_INJECTED,
    PACK_ISOLATED,
    PACK_SOC,
    PCS_W,
    POWER_CAP_W,
    Trace,
)
from harness.verdict import Verdict

PACKS = 24
NOMINAL_PHASE_V = 277.1


class StandInBattery:
    """Keeps the faults cleared at the end of an example."""

    def __init__(self) -> None:
        self.cleared: list[tuple[int, str]] = []

    def clear_fault(self, channel: int, kind: object) -> None:
        self.cleared.append((channel, str(getattr(kind, "value", kind)).lower()))


class StandInSession:
    """What the machine needs of a RunSession: a clock, the steps applied, a healthy trace."""

    def __init__(self, sequence: Sequence, run_dir: Path) -> None:
        self.bench = {"battery": StandInBattery()}
        self.sequence = sequence
        self.plant = Plant.build(PlantConfig(packs=PACKS))
        self.rated_w = 1.0e5
        self.nominal_phase_v = NOMINAL_PHASE_V
        self.now_s = 0.0
        self.applied: list[Step] = []
        self.load_levels: list[tuple[float, float]] = []
        self.clouds: list[float] = []

    def __enter__(self) -> StandInSession:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def apply(self, step: Step) -> None:
        assert step.at_s >= self.now_s, "a step is applied at the present or later"
        self.applied.append(step)

    def advance_to(self, t_s: float) -> None:
        assert t_s >= self.now_s
        self.now_s = t_s

    def step_load(self, level: float) -> None:
        self.load_levels.append((self.now_s, level))

    def add_cloud(self, cloud: object) -> None:
        self.clouds.append(self.now_s)

    def trace(self) -> Trace:
        """Samples every 0.1 s of a plant where everything is as it should be: the racks get what they
        ask for at a steady bus, every pack discharging alike."""
        t = np.arange(1, round(self.now_s * 10) + 1) / 10
        steady = np.ones(t.size)
        packs = np.ones((t.size, PACKS))
        soc = 0.7 - 1e-5 * t
        channels = {
            BUS_VOLTAGE_PU: steady,
            BUS_FREQUENCY_HZ: 60.0 * steady,
            LOAD_DEMAND_W: 5e4 * steady,
            LOAD_SERVED_W: 5e4 * steady,
            POWER_CAP_W: math.nan * steady,
            GRID_W: 5e4 * steady,
            PCS_W: 0.0 * steady,
            FLEET_SOC: soc,
            CONTROLLER_MODE: steady.astype(np.int64),
            PACK_SOC: packs * soc[:, None],
            PACK_CURRENT_A: 10.0 * packs,
            PACK_ISOLATED: ~packs.astype(bool),
            PACK_FAULT: 0 * packs.astype(np.int64),
            PACK_INJECTED: 0 * packs.astype(np.int64),
        }
        return Trace(t, channels)


class DrawnSequences(FuzzMachine):
    """The fuzz machine on a stand-in session; at the end of each example, its sequence is checked."""

    def __init__(self, tmp_path: Path, drawn: list[Sequence]) -> None:
        self.sessions: list[StandInSession] = []
        self.drawn = drawn

        def open_session(sequence: Sequence, run_dir: Path) -> StandInSession:
            self.sessions.append(StandInSession(sequence, run_dir))
            return self.sessions[-1]

        super().__init__(MachineConfig(open_session, PACKS, True, tmp_path, lambda _report: None))

    def teardown(self) -> None:
        super().teardown()
        if self.draft is None:
            return
        session = self.sessions[-1]
        sequence = self.draft.sequence("fuzz-drawn", "a drawn example", draws.MAX_DURATION_S, INVARIANTS)
        assert parse_sequence_text(sequence.to_toml()) == sequence, "the written file reads back as it"
        unwelded = [(channel, "weld") for channel in self.draft.welded()]
        assert session.bench["battery"].cleared == unwelded, "welds are cleared so the bench can go safe"
        applied = len(session.applied)
        assert list(sequence.steps[:applied]) == session.applied, "the file's steps are those applied"
        assert [(s.call, s.args["channel"], s.args["kind"].lower()) for s in sequence.steps[applied:]] == [
            ("battery.clear_fault", channel, "weld") for channel, _ in unwelded
        ], "and then the welds cleared just before the end"
        assert [tuple(p) for p in sequence.initial.load.params.get("points", [])[1:]] == session.load_levels
        assert [cloud.at_s for cloud in sequence.initial.pv.clouds] == session.clouds
        self.drawn.append(sequence)


@pytest.fixture(scope="module")
def drawn(tmp_path_factory) -> list[Sequence]:
    drawn: list[Sequence] = []
    work = tmp_path_factory.mktemp("drawn")
    run_state_machine_as_test(
        lambda: DrawnSequences(work, drawn),
        settings=settings(
            max_examples=120,
            stateful_step_count=12,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
    return drawn


def event_times(sequence: Sequence) -> list[float]:
    """When a rule fired: its steps (several at one instant for a common-cause PCS trip), load point or
    cloud."""
    points = sequence.initial.load.params.get("points", [])[1:]
    times = (
        [s.at_s for s in sequence.steps]
        + [t for t, _ in points]
        + [c.at_s for c in sequence.initial.pv.clouds]
    )
    return sorted(set(times))


def test_every_drawn_sequence_reads_back_from_its_toml(drawn):
    assert len(drawn) >= 100
    calls = {step.call for sequence in drawn for step in sequence.steps}
    expected = {
        "grid.outage", "grid.restore", "grid.output", "grid.play", "relays.on", "relays.off",
        "battery.insert_fault", "battery.clear_fault", "battery.set_capacity", "battery.set_resistance",
        "controller.set_dispatch", "controller.planned_island", "controller.reconnect",
    }  # fmt: skip
    assert expected <= calls, f"rules never drawn: {expected - calls}"
    assert any(s.initial.load.profile == "steps" and len(s.initial.load.params["points"]) > 1 for s in drawn)
    assert any(s.initial.pv.clouds for s in drawn)


def test_rules_fire_at_realistic_gaps_within_the_longest_example(drawn):
    for sequence in drawn:
        times = event_times(sequence)
        assert all(draws.LEAD_IN_S[0] <= t < draws.MAX_DURATION_S for t in times)
        assert all(later - earlier >= draws.GAP_S[0] - 1e-9 for earlier, later in pairwise(times))
        assert all(round(t / draws.TICK_S, 6).is_integer() for t in times), "times on the 0.1 s grid"


def grid_losses(sequence: Sequence) -> list[tuple[float, float | None]]:
    """(lost at, returned at or None) for every grid loss: the simulator's relay, the utility's breaker,
    or an islanded start (whose grid returns by switching the simulator's output on)."""
    losses, lost_at = [], 0.0 if sequence.initial.grid.voltage_pu == 0.0 else None
    for step in sequence.steps:
        relay = step.args.get("relay")
        if step.call == "grid.outage" or (step.call == "relays.on" and relay == draws.GRID_BREAKER_RELAY):
            assert lost_at is None, "the grid is lost only while it is there"
            lost_at = step.at_s
        elif step.call in ("grid.restore", "grid.output") or (
            step.call == "relays.off" and relay == draws.GRID_BREAKER_RELAY
        ):
            assert lost_at is not None, "the grid returns only after it was lost"
            losses.append((lost_at, step.at_s))
            lost_at = None
    return [*losses, (lost_at, None)] if lost_at is not None else losses


def test_an_outage_is_restored_within_a_bounded_time_or_left_open(drawn):
    longest_s = draws.OUTAGE_MAX_S + draws.GAP_S[1]
    assert any(returned is None for s in drawn for _, returned in grid_losses(s)), "some are left open"
    for sequence in drawn:
        for lost, returned in grid_losses(sequence):
            if returned is not None:
                assert returned - lost <= longest_s + 1e-9


def test_faults_and_trips_stay_on_parts_that_exist_and_leave_the_plant_able_to_run(drawn):
    for sequence in drawn:
        tripped: set[int] = set()
        faulted: dict[int, set[str]] = {}
        for step in sequence.steps:
            if step.call in ("relays.on", "relays.off") and step.args["relay"] < draws.PCS_UNITS:
                (tripped.add if step.call == "relays.on" else tripped.discard)(step.args["relay"])
                assert len(tripped) <= draws.MAX_TRIPPED_UNITS, "a PCS unit always stays"
            elif step.call == "battery.insert_fault":
                assert 1 <= step.args["channel"] <= PACKS
                faulted.setdefault(step.args["channel"], set()).add(step.args["kind"])
                assert len(faulted) <= PACKS * draws.FAULTED_SHARE
            elif step.call == "battery.clear_fault":
                kinds = faulted[step.args["channel"]]
                kinds.discard(step.args["kind"])
                if not kinds:
                    del faulted[step.args["channel"]]
            elif step.call.startswith("battery."):
                assert 1 <= step.args["channel"] <= PACKS


def test_a_sag_stays_inside_what_the_racks_ride_through_or_deep_enough_to_island(drawn):
    sags = [s.args["steps"][0] for sequence in drawn for s in sequence.steps if s.call == "grid.play"]
    assert sags
    for sag in sags:
        residual_pu = sag["voltage_start_v"] / NOMINAL_PHASE_V
        assert sag["voltage_end_v"] == sag["voltage_start_v"]
        if residual_pu >= 0.7:
            assert residual_pu >= itic_lower_pu(sag["dwell_s"]) + 0.02 - 1e-9, sag
        else:
            assert residual_pu <= 0.66, "deep sags are clearly below the static switch's 0.7 pu"


def test_the_fleet_starts_charged_or_just_above_its_reserve(drawn):
    socs = [sequence.initial.soc for sequence in drawn]
    assert all(0.5 <= soc <= 0.9 or 0.15 < soc <= 0.155 for soc in socs)
    assert any(soc < 0.2 for soc in socs) and any(soc >= 0.5 for soc in socs)


def test_a_failing_sequence_is_judged_first_by_what_failed_then_by_every_standard_criterion():
    start = Start(PACKS, 3, 0.75, 0.0, 0.7, {"profile": "constant", "level": 0.5}, 0.0, True)
    draft = Draft(start, [Step(2.0, "grid.outage")])
    failed = {"resync": Verdict.at_most("resync", 2.0, 1.0, "fraction")}
    broken = InvariantBroken(draft, 7.0, INVARIANTS, failed)
    sequence = draft.sequence("fuzz-x-1", "t", broken.reached_s, broken.criteria)
    assert sequence.criteria[0].name == "resync"
    assert {c.name for c in sequence.criteria} == {c.name for c in INVARIANTS}
    assert ExampleReport(1, 7.0, 0.5, broken).failed == ("resync",)
