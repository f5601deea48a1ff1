"""The hypothesis state machine whose rules are sequence actions and whose invariant is steady power.

One example is one run, played in lock-step as it is drawn (harness.run.RunSession): the initialize
rule draws the starting plant and opens the run; every rule then applies one action at the present
time and lets a drawn gap pass; after each rule the invariants (:data:`~harness.fuzz.invariants.INVARIANTS`)
are judged on the trace recorded so far, so a failure ends the example at the rule after which it
showed. Hypothesis then shrinks the rules to a minimal failing example, which the campaign writes as a
sequence file (harness.fuzz.campaign). What each rule draws: :mod:`harness.fuzz.draws`.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from harness.actions import standard_catalogue
from harness.fuzz import draws
from harness.fuzz.draft import Draft, Start
from harness.fuzz.invariants import INVARIANTS, InvariantBroken, criterion_name, invariants_for
from harness.run import RunSession, judge_criteria
from harness.sequence import Cloud, Sequence, Step

OpenSession = Callable[[Sequence, Path], RunSession]
"""Opens the run of one example: its frame sequence (the start, no steps) and the run's directory."""
FRAME_ID = "fuzz-example"
GAPS = draws.ticks(*draws.GAP_S, draws.TYPICAL_GAP_S)
MIN_GAP_S = draws.GAP_S[0]


@dataclass(frozen=True)
class ExampleReport:
    """How one example went: the rules it fired, the simulated time it reached, the wall time it took and
    what failed."""

    rules: int
    reached_s: float
    wall_s: float
    broken: InvariantBroken | None
    """What failed, if anything."""

    @property
    def failed(self) -> tuple[str, ...]:
        return () if self.broken is None else tuple(self.broken.failed)


@dataclass(frozen=True)
class MachineConfig:
    """What every example of a campaign shares."""

    open_session: OpenSession
    packs: int
    simulated: bool
    """Pack faults, degradation steps and PV clouds are for the simulated bench: fault insertion is the
    battery emulator stand-in's extension (a lab inserts faults through its own relay wiring), the
    fuzzer reads a pack's present capacity and resistance from the plant, and a lab has no PV role."""
    work_dir: Path
    """Each example's run goes in a temporary directory under it, removed when the example ends."""
    on_example: Callable[[ExampleReport], object]
    """Called after each example."""


@dataclass
class GridLoss:
    """How the grid went (:data:`~harness.fuzz.draws.GRID_HOW`, or ``output`` for an islanded start)
    and since when."""

    how: str
    since_s: float


class FuzzMachine(RuleBasedStateMachine):
    """Rules: grid loss and return, sags, pack faults (a second fault on a faulted pack too), fault
    clearing, PCS unit trips and returns, clouds, load steps, degradation steps, dispatch, planned
    island and reconnection. See docs/fuzz.md for each rule's ranges."""

    def __init__(self, config: MachineConfig) -> None:
        super().__init__()
        self.config = config
        self.draft: Draft | None = None
        self._session: RunSession | None = None
        self._run_dir: Path | None = None
        self._started = time.monotonic()
        self._rules = 0
        self._broken: InvariantBroken | None = None
        self._judged_s = -math.inf
        self._grid_loss: GridLoss | None = None
        self._tripped: set[int] = set()
        self._planned_island = False

    # ------------------------------------------------------------------ the run

    @property
    def now_s(self) -> float:
        return 0.0 if self._session is None else self._session.now_s

    @initialize(data=st.data(), lead_in_s=draws.ticks(*draws.LEAD_IN_S))
    def start(self, data: st.DataObject, lead_in_s: float) -> None:
        """Draw the starting plant, bring the run up and let it settle for the lead-in."""
        start: Start = data.draw(draws.starts(self.config.packs, pv=self.config.simulated), label="start")
        self.draft = Draft(start)
        if not start.grid_live:
            self._grid_loss = GridLoss("output", 0.0)
        frame = self.draft.sequence(FRAME_ID, "fuzz example", draws.MAX_DURATION_S, INVARIANTS)
        self.config.work_dir.mkdir(parents=True, exist_ok=True)
        self._run_dir = Path(tempfile.mkdtemp(prefix="example-", dir=self.config.work_dir))
        self._session = self.config.open_session(frame, self._run_dir).__enter__()
        self._session.advance_to(lead_in_s)

    def teardown(self) -> None:
        if self._session is not None:
            self._unweld(self._session)
            self._session.__exit__(None, None, None)
            wall_s = time.monotonic() - self._started
            self.config.on_example(ExampleReport(self._rules, self.now_s, wall_s, self._broken))
        if self._run_dir is not None:
            shutil.rmtree(self._run_dir, ignore_errors=True)

    def _unweld(self, session: RunSession) -> None:
        """Clear the welds still inserted, so that the bench can go safe (as the written sequence does
        just before its end)."""
        assert self.draft is not None
        clear = standard_catalogue().lookup("battery.clear_fault")
        for channel in self.draft.welded():
            clear.invoke(session.bench["battery"], {"channel": channel, "kind": "weld"})

    @invariant()
    def steady_power(self) -> None:
        """Every invariant holds on the trace so far (judged once per instant of the clock)."""
        if self._session is None or self.draft is None or self.now_s == self._judged_s:
            return
        self._judged_s = self.now_s
        criteria = invariants_for(self.draft, self.now_s)
        verdicts = judge_criteria(self._session.trace(), criteria)
        failed = {criterion_name(v): v for v in verdicts if not v.passed}
        if failed:
            self._broken = InvariantBroken(self.draft.snapshot(), self.now_s, criteria, failed)
            raise self._broken

    def _session_open(self) -> RunSession:
        assert self._session is not None and self.draft is not None, "the initialize rule opens the run"
        return self._session

    def _call(self, role: str, method: str, **args: object) -> None:
        """Apply ``role.method(**args)`` now (a step of the written sequence)."""
        call = f"{role}.{method}"
        checked = standard_catalogue().lookup(call).check(args)
        step = Step(self.now_s, call, MappingProxyType(checked))
        session = self._session_open()
        assert self.draft is not None
        self.draft.steps.append(step)
        session.apply(step)

    def _wait(self, gap_s: float) -> None:
        """Let ``gap_s`` pass (at most to the longest example's end): the rule's effect shows."""
        self._rules += 1
        end_s = min(self.now_s + gap_s, draws.MAX_DURATION_S)
        self._session_open().advance_to(round(end_s, 1))

    # ------------------------------------------------------------------ when a rule acts
    #
    # Every rule may always be drawn (no preconditions): hypothesis switches rules off at random per
    # example (swarm testing), and an example whose only applicable rule is switched off would be thrown
    # away after it ran. A rule that does not apply in the present state does nothing instead.

    def _preempted(self, gap_s: float) -> bool:
        """Whether the rule gives way: the example has reached its end (nothing more happens), or an
        outage has lasted :data:`~harness.fuzz.draws.OUTAGE_MAX_S` and this rule restores it instead."""
        if self._session is None or draws.MAX_DURATION_S - self.now_s < MIN_GAP_S:
            return True
        loss = self._grid_loss
        if loss is not None and self.now_s - loss.since_s >= draws.OUTAGE_MAX_S:
            self._restore(gap_s)
            return True
        return False

    def _profile(self) -> str:
        assert self.draft is not None
        return str(self.draft.start.load["profile"])

    # ------------------------------------------------------------------ grid

    @rule(how=st.sampled_from(draws.GRID_HOW), gap_s=GAPS)
    def grid_loss(self, how: str, gap_s: float) -> None:
        """The grid goes: the simulator's output relay opens, or the utility's breaker does."""
        if self._preempted(gap_s) or self._grid_loss is not None:
            return
        self._grid_loss = GridLoss(how, self.now_s)
        if how == "breaker":
            self._call("relays", "on", relay=draws.GRID_BREAKER_RELAY)
        else:
            self._call("grid", "outage")
        self._wait(gap_s)

    @rule(gap_s=GAPS)
    def grid_return(self, gap_s: float) -> None:
        """The grid comes back the way it went."""
        if not self._preempted(gap_s) and self._grid_loss is not None:
            self._restore(gap_s)

    def _restore(self, gap_s: float) -> None:
        assert self._grid_loss is not None
        if self._grid_loss.how == "breaker":
            self._call("relays", "off", relay=draws.GRID_BREAKER_RELAY)
        elif self._grid_loss.how == "output":  # an islanded start: the simulator's output was off
            self._call("grid", "output", on=True)
        else:
            self._call("grid", "restore")
        self._grid_loss = None
        self._wait(gap_s)

    @rule(sag=draws.sags(), gap_s=GAPS)
    def grid_sag(self, sag: tuple[float, float], gap_s: float) -> None:
        """A voltage sag played by the grid simulator's list, then nominal again."""
        if self._preempted(gap_s) or self._grid_loss is not None:
            return
        residual_pu, duration_s = sag
        nominal_v = self._session_open().nominal_phase_v
        sag_v = math.ceil(residual_pu * nominal_v * 10.0) / 10.0  # 0.1 V, never below the residual
        step = {
            "dwell_s": duration_s,
            "voltage_start_v": sag_v,
            "voltage_end_v": sag_v,
            "frequency_start_hz": draws.NOMINAL_HZ,
            "frequency_end_hz": draws.NOMINAL_HZ,
        }
        self._call("grid", "play", steps=[step])
        self._wait(max(gap_s, draws.SAG_GAP_S))

    # ------------------------------------------------------------------ packs

    @rule(data=st.data(), kind=st.sampled_from(draws.FAULT_KINDS), gap_s=GAPS)
    def pack_fault(self, data: st.DataObject, kind: str, gap_s: float) -> None:
        """A fault on a healthy pack: isolation, thermal, weld, open, BMS comms loss or SOC drift."""
        limit = max(1, math.floor(self.config.packs * draws.FAULTED_SHARE))
        faulted = self._inserted()
        if self._preempted(gap_s) or not self.config.simulated or len(faulted) >= limit:
            return
        healthy = [c for c in range(1, self.config.packs + 1) if c not in faulted]
        channel = data.draw(st.sampled_from(healthy), label="channel")
        self._insert(channel, kind, data.draw(draws.fault_values(kind), label="value"))
        self._wait(gap_s)

    @rule(data=st.data(), gap_s=GAPS)
    def second_fault(self, data: st.DataObject, gap_s: float) -> None:
        """Another fault on a pack that already has one (a weld then an isolation fault, a silent BMS
        then an isolation fault it cannot report, ...)."""
        faulted = self._inserted()
        if self._preempted(gap_s) or not faulted:
            return
        channel = data.draw(st.sampled_from(sorted(faulted)), label="channel")
        kinds = [kind for kind in draws.FAULT_KINDS if kind not in faulted[channel]]
        kind = data.draw(st.sampled_from(kinds), label="kind")
        self._insert(channel, kind, data.draw(draws.fault_values(kind), label="value"))
        self._wait(gap_s)

    def _insert(self, channel: int, kind: str, value: float | None) -> None:
        args: dict[str, object] = {"channel": channel, "kind": kind}
        if value is not None:
            args["value"] = value
        self._call("battery", "insert_fault", **args)

    def _inserted(self) -> dict[int, frozenset[str]]:
        return {} if self.draft is None else self.draft.inserted()

    @rule(data=st.data(), gap_s=GAPS)
    def fault_cleared(self, data: st.DataObject, gap_s: float) -> None:
        """An inserted fault goes away (what it latched stays latched)."""
        faulted = self._inserted()
        if self._preempted(gap_s) or not faulted:
            return
        inserted = [(channel, kind) for channel, kinds in faulted.items() for kind in sorted(kinds)]
        channel, kind = data.draw(st.sampled_from(inserted), label="fault")
        self._call("battery", "clear_fault", channel=channel, kind=kind)
        self._wait(gap_s)

    @rule(data=st.data(), factor=draws.shares(*draws.CAPACITY_FACTOR), gap_s=GAPS)
    def capacity_fade(self, data: st.DataObject, factor: float, gap_s: float) -> None:
        """A pack's capacity drops to a share of what it has now (past its ageing knee)."""
        if self._preempted(gap_s):
            return
        channel = data.draw(st.integers(1, self.config.packs), label="channel")
        plant = self._session_open().plant
        if plant is None:
            return
        present_ah = float(plant.packs.capacity_ah[channel - 1])
        self._call("battery", "set_capacity", channel=channel, capacity_ah=round(present_ah * factor, 1))
        self._wait(gap_s)

    @rule(data=st.data(), factor=draws.shares(*draws.RESISTANCE_FACTOR, 0.1), gap_s=GAPS)
    def resistance_growth(self, data: st.DataObject, factor: float, gap_s: float) -> None:
        """A pack's DC resistance grows to a multiple of what it has now."""
        if self._preempted(gap_s):
            return
        channel = data.draw(st.integers(1, self.config.packs), label="channel")
        plant = self._session_open().plant
        if plant is None:
            return
        fleet, index = plant.packs.fleet, channel - 1
        new_ohm = fleet.r0_new_ohm[index] + fleet.r1_new_ohm[index]
        resistance_ohm = round(float(new_ohm * fleet.resistance_ratio[index]) * factor, 4)
        self._call("battery", "set_resistance", channel=channel, resistance_ohm=resistance_ohm)
        self._wait(gap_s)

    # ------------------------------------------------------------------ PCS

    @rule(data=st.data(), gap_s=GAPS)
    def pcs_trip(self, data: st.DataObject, gap_s: float) -> None:
        """PCS units trip at once (their fault-insertion relays close): one, or several on a common
        cause (a shared breaker, cooling loop or DC-link fault); at least one unit always stays."""
        if self._preempted(gap_s) or len(self._tripped) >= draws.MAX_TRIPPED_UNITS:
            return
        running = [unit for unit in range(draws.PCS_UNITS) if unit not in self._tripped]
        most = draws.MAX_TRIPPED_UNITS - len(self._tripped)
        tripping = st.lists(st.sampled_from(running), min_size=1, max_size=most, unique=True)
        units = data.draw(tripping, label="units")
        for unit in units:
            self._tripped.add(unit)
            self._call("relays", "on", relay=unit)
        self._wait(gap_s)

    @rule(data=st.data(), gap_s=GAPS)
    def pcs_return(self, data: st.DataObject, gap_s: float) -> None:
        """A tripped PCS unit is available again."""
        if self._preempted(gap_s) or not self._tripped:
            return
        unit = data.draw(st.sampled_from(sorted(self._tripped)), label="unit")
        self._tripped.remove(unit)
        self._call("relays", "off", relay=unit)
        self._wait(gap_s)

    # ------------------------------------------------------------------ PV and load

    @rule(
        depth=draws.shares(0.1, 1.0),
        duration_s=draws.ticks(*draws.CLOUD_S),
        ramp_s=draws.ticks(*draws.CLOUD_RAMP_S),
        gap_s=GAPS,
    )
    def cloud(self, depth: float, duration_s: float, ramp_s: float, gap_s: float) -> None:
        """A cloud over the PV plant from now."""
        if self._preempted(gap_s) or self.draft is None or self.draft.start.pv_rated_w == 0.0:
            return
        cloud = Cloud(self.now_s, depth, duration_s, ramp_s)
        self.draft.clouds.append(cloud)
        self._session_open().add_cloud(cloud)
        self._wait(gap_s)

    @rule(level=draws.shares(*draws.LOAD_LEVEL), gap_s=GAPS)
    def load_step(self, level: float, gap_s: float) -> None:
        """The racks step to a new level (a job starts or stops); only on a ``steps`` profile."""
        if self._preempted(gap_s) or self._profile() != "steps":
            return
        assert self.draft is not None
        self.draft.load_points.append((self.now_s, level))
        self._session_open().step_load(level)
        self._wait(gap_s)

    # ------------------------------------------------------------------ the controller's commands

    @rule(share=draws.shares(*draws.DISPATCH_SHARE), gap_s=GAPS)
    def dispatch(self, share: float, gap_s: float) -> None:
        """A grid-connected dispatch set-point (+ discharge), a share of the racks' rated power."""
        if self._preempted(gap_s) or self._grid_loss is not None or self._planned_island:
            return
        self._call("controller", "set_dispatch", w=round(share * self._session_open().rated_w, -2))
        self._wait(gap_s)

    @rule(gap_s=GAPS)
    def planned_island(self, gap_s: float) -> None:
        """The operator asks for a planned island."""
        if self._preempted(gap_s) or self._grid_loss is not None or self._planned_island:
            return
        self._planned_island = True
        self._call("controller", "planned_island")
        self._wait(gap_s)

    @rule(gap_s=GAPS)
    def reconnect(self, gap_s: float) -> None:
        """The operator asks the controller to reconnect (through the sync check)."""
        if self._preempted(gap_s) or not self._planned_island:
            return
        self._planned_island = False
        self._call("controller", "reconnect")
        self._wait(gap_s)
