"""Run one sequence on a bench and judge it: :func:`run_sequence`; or run it as it goes,
:class:`RunSession` (:func:`open_session`), adding steps while the clock runs (the fuzzer does).

**On the simulated bench** (the default) a run builds the plant the sequence's ``[initial]`` describes
(fleet drawn and aged, SOC, racks' profile, PV, grid), starts every stand-in and the controller (the
reference or a named variant), opens the bench's drivers from the bench file the SimBench writes (the
controller role at the runner's face), and then, on one virtual clock (:mod:`harness.clock`), cycles
the controller every control period, samples the recorder and applies each step through its driver at
its time. Every criterion of the sequence is then judged on the trace as read back from disk.

**On a lab bench** (a bench file) the same run opens the bench's drivers, sets the starting state they
can set (:mod:`harness.bench_setup`), and runs the recorder and the steps on the wall clock; the
controller is the bench's own, running by itself. The recorder, steps, criteria and record are the
same.

Everything runs inside a :class:`~harness.safety.SafeStateGuard`, so the drivers go safe however the
run ends. ``out_dir`` receives ``trace/`` (streamed as it is recorded) and ``record.json`` (the
sequence, seed, variant, the bench and its instruments' identities, the software, the steps applied
with their times and, at the end, the verdicts), rewritten after every step, so a run interrupted half
way leaves both on disk, the record saying so.

**Scale.** ``packs`` overrides the fleet size; the PCS, rack and PV ratings scale with it from the
reference plant (805 packs, 12 MW PCS, 4 MW racks) so a small plant behaves as the large one does.
Tests use 24 packs; ``packs=None`` runs the sequence's own fleet.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

from drivers.errors import InstrumentRejected
from drivers.yokogawa_wt import PowerAnalyzer
from harness.actions import Action, standard_catalogue
from harness.bench_file import Bench, BenchSpec, parse_bench_text
from harness.bench_setup import BenchSetupError, play_profile, prepare_bench, ratings
from harness.clock import ClockStopped, Lane, Schedule, TimePassing, VirtualTime, WallTime, to_ns
from harness.controller.reference import ControllerConfig
from harness.controller.runner import ControllerRunner
from harness.controller.variants import build_controller
from harness.criteria import judge
from harness.lifecycle import Lifecycle
from harness.provenance import describe_bench, environment, utc_now
from harness.recorder import PlantTruth, Recorder, RecorderRates, trace_channels
from harness.safety import SafeStateGuard
from harness.sequence import Cloud, Criterion, Sequence, Step
from harness.sim.bench import SimBench
from harness.sim.degradation import age_fleet
from harness.sim.fleet import draw_fleet
from harness.sim.load import Profile, Steps
from harness.sim.plant import Plant, PlantConfig, scaled_to_fleet
from harness.sim.voltage_events import VoltageEvent, VoltageEventKind
from harness.trace import Trace, TraceEvent, TraceWriter
from harness.verdict import Verdict

DAYS_PER_YEAR = 365.25
TRACE_DIR = "trace"
RECORD_FILE = "record.json"
RECORD_FORMAT = 1
"""The layout of ``record.json`` (docs/records.md); raised when a key changes meaning or goes away, so
a reader can refuse a record newer than it understands instead of misreading it."""
PROGRESS_PERIOD_S = 1.0
PLANT_STEP_S = 0.1
"""Longest plant step between two instants of the schedule (harness.clock.VirtualTime): the control
period. The plant cuts a step into 1 ms sub-steps itself when anything fast happens, so voltage events
(which ``itic`` judges) are resolved to 1 ms; the simulated analyzer is fed the bus once per step, so a
12 ms transfer gap shows in ``load_served_w`` as a shallow dip of one sample (on the wall clock, as on
a lab bench, a deeper one): ``load_served`` lets the racks' PSU hold-up bridge it either way."""
DEFAULT_RATES = RecorderRates(demand_step_s=PLANT_STEP_S)

Progress = Callable[[float], object]
"""Called with the run's time about once a simulated second (the CLI shows it; tests may interrupt)."""


class RunStatus(Enum):
    RUNNING = "running"
    COMPLETED = "completed"
    INTERRUPTED = "interrupted"
    """Ctrl-C or SIGTERM (a BaseException that is not an Exception)."""
    ERROR = "error"


@dataclass(frozen=True)
class RunResult:
    sequence_id: str
    verdicts: tuple[Verdict, ...]
    trace_dir: Path
    passed: bool
    record_path: Path


@dataclass
class RunRecord:
    """What ``record.json`` holds; :meth:`write` replaces the file whole (never seen half-written)."""

    path: Path
    sequence: Sequence
    seed: int
    variant: str | None
    packs: int | None
    """The simulated fleet's size; None on a lab bench (its fleet is what is wired)."""
    status: RunStatus = RunStatus.RUNNING
    steps_applied: list[dict[str, object]] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    error: str = ""
    bench: dict[str, object] = field(default_factory=dict)
    environment: dict[str, object] = field(default_factory=environment)
    started_utc: str = field(default_factory=utc_now)
    finished_utc: str | None = None

    def describe_bench(self, bench: Bench) -> None:
        self.bench = describe_bench(bench, simulated=self.packs is not None)
        self.write()

    def end(self, status: RunStatus, error: str = "") -> None:
        self.status, self.error, self.finished_utc = status, error, utc_now()
        self.write()

    def write(self) -> None:
        document = {
            "format": RECORD_FORMAT,
            "sequence": self.sequence.to_document(),
            "source": self.sequence.source,
            "seed": self.seed,
            "variant": self.variant,
            "packs": self.packs,
            "status": self.status.value,
            "steps_applied": self.steps_applied,
            "verdicts": [verdict.to_json() for verdict in self.verdicts],
            "passed": bool(self.verdicts) and all(v.passed for v in self.verdicts),
            "error": self.error,
            "started_utc": self.started_utc,
            "finished_utc": self.finished_utc,
            "bench": self.bench,
            "environment": self.environment,
        }
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(document, indent=1))
        temporary.replace(self.path)


def plant_for(sequence: Sequence, *, seed: int, packs: int | None = None) -> Plant:
    """The plant ``sequence.initial`` describes, with ``packs`` packs and ratings scaled to them."""
    initial = sequence.initial
    count = packs if packs is not None else initial.fleet.packs
    reference = PlantConfig(seed=seed, initial_soc=initial.soc, pv_rated_w=initial.pv.rated_w)
    config = scaled_to_fleet(reference, count)
    fleet = draw_fleet(count, seed=seed, soh_mean=initial.fleet.soh_mean)
    if initial.fleet.aged_years > 0.0:
        fleet = age_fleet(fleet, initial.fleet.aged_years * DAYS_PER_YEAR, seed=seed)
    plant = Plant.build(config, fleet)
    for cloud in initial.pv.clouds:
        plant.pv.cloud(cloud.at_s, cloud.depth, cloud.duration_s, cloud.ramp_s)
    plant.load.set_profile(initial.load.build(), at=0.0)
    grid = initial.grid
    if grid.voltage_pu == 0.0:
        plant.grid.outage(at=0.0)
    elif grid.voltage_pu != 1.0:
        plant.grid.set_voltage(at=0.0, voltage_pu=grid.voltage_pu)
    if grid.frequency_hz != plant.grid.nominal_frequency_hz:
        plant.grid.set_frequency(at=0.0, frequency_hz=grid.frequency_hz)
    return plant


def open_session(
    sequence: Sequence,
    *,
    out_dir: Path | str,
    bench: BenchSpec | None = None,
    variant: str | None = None,
    seed: int | None = None,
    packs: int | None = None,
    rates: RecorderRates = DEFAULT_RATES,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> RunSession:
    """A :class:`RunSession` for ``sequence`` (not yet started: use it as a context manager).

    Without ``bench``: on a simulated bench of its own, on a virtual clock, against the reference
    controller or ``variant``; ``seed`` (default: the sequence's fleet seed) seeds the fleet draw, its
    ageing and the plant. With ``bench`` (a lab bench file): on its instruments and its controller, on
    the wall clock, the starting state set through the drivers (:mod:`harness.bench_setup`); ``variant``
    and ``packs`` do not apply there, and setting ``stop`` ends the run early (recorded as interrupted).
    ``out_dir`` receives the trace and the record.
    """
    if bench is not None and (variant is not None or packs is not None):
        raise ValueError(
            "variant and packs choose a simulated bench's controller and fleet; a lab bench has its own"
        )
    chosen_seed = sequence.initial.fleet.seed if seed is None else seed
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plant = plant_for(sequence, seed=chosen_seed, packs=packs) if bench is None else None
    packs_run = None if plant is None else plant.packs.n
    record = RunRecord(out / RECORD_FILE, sequence, chosen_seed, variant, packs_run)
    record.write()
    site: _Site = _SimulatedSite(plant, variant, rates) if plant is not None else _LabSite(bench, stop)
    return RunSession(sequence, site, out / TRACE_DIR, record, rates, progress)


def run_sequence(
    sequence: Sequence,
    *,
    out_dir: Path | str,
    bench: BenchSpec | None = None,
    variant: str | None = None,
    seed: int | None = None,
    packs: int | None = None,
    rates: RecorderRates = DEFAULT_RATES,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> RunResult:
    """Run ``sequence`` to its end and judge it by its criteria (the arguments: :func:`open_session`)."""
    session = open_session(
        sequence,
        out_dir=out_dir,
        bench=bench,
        variant=variant,
        seed=seed,
        packs=packs,
        rates=rates,
        progress=progress,
        stop=stop,
    )
    with session:
        session.advance_to(sequence.duration_s)
        session.finish()
    verdicts = session.conclude(sequence.criteria)
    passed = all(v.passed for v in verdicts)
    return RunResult(sequence.id, verdicts, session.trace_dir, passed, session.record.path)


def judge_criteria(trace: Trace, criteria: Iterable[Criterion]) -> tuple[Verdict, ...]:
    """Each criterion (as a sequence names it, with its limits) judged on ``trace``."""
    return tuple(judge(trace, c.name, **_limits(c.limits)) for c in criteria)


def _limits(limits: Mapping[str, object]) -> dict[str, object]:
    """TOML arrays become tuples (criteria take bands as pairs)."""
    return {key: tuple(value) if isinstance(value, list) else value for key, value in limits.items()}


class RunSession:
    """One run as it goes: the bench up, its controller cycling, the recorder sampling and steps applied
    at their times, all on one clock. :func:`run_sequence` and the fuzzer (:mod:`harness.fuzz`) share it.

    ``with session:`` brings the bench up (inside a :class:`~harness.safety.SafeStateGuard`) and
    schedules the sequence's own steps; :meth:`apply` schedules more, :meth:`advance_to` lets time
    pass, :meth:`trace` reads what was recorded so far, :meth:`finish` completes the trace (the
    analyzer's voltage event log); leaving the ``with`` closes the bench, every output safe. The record
    says how the run ended: :meth:`conclude` judges the trace on disk, or the ``with`` ended in an error.
    """

    def __init__(
        self,
        sequence: Sequence,
        site: _Site,
        trace_dir: Path,
        record: RunRecord,
        rates: RecorderRates,
        progress: Progress | None,
    ) -> None:
        self.sequence = sequence
        self.trace_dir = trace_dir
        self.record = record
        self._site = site
        self._rates = rates
        self._progress = progress
        self._profile: Profile = sequence.initial.load.build()
        self._catalogue = standard_catalogue()
        self._stack: ExitStack | None = None

    def __enter__(self) -> Self:
        try:
            with ExitStack() as stack:
                self._open(stack)
                self._stack = stack.pop_all()
        except BaseException as error:
            self._record_end(error)
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        stack, self._stack = self._stack, None
        try:
            if stack is not None:
                stack.__exit__(kind, error, traceback)
        except BaseException as failure:
            self._record_end(failure)
            raise
        if error is not None:
            self._record_end(error)

    def _open(self, stack: ExitStack) -> None:
        site, rates = self._site, self._rates
        spec = site.start(stack)
        self.bench = stack.enter_context(Bench.open(spec))
        stack.enter_context(SafeStateGuard(self.bench.drivers, spec.safe_deadline_s))
        self.record.describe_bench(self.bench)
        self.rated_w, self.nominal_phase_v = ratings(self.bench)
        site.prepare(self.sequence, self.bench)
        channels = trace_channels(self.bench["battery"].channels)
        self._writer = stack.enter_context(TraceWriter(self.trace_dir, channels))
        self._recorder = Recorder(
            self._writer,
            self.bench.drivers,
            demand_w=self._demand_w,
            nominal_phase_v=self.nominal_phase_v,
            rates=rates,
        )
        self._recorder.analyzer.clear_events()  # a lab's analyzer still holds the last run's events
        self._schedule = Schedule(site.passing())
        site.schedule_own(self._schedule, self._writer, rates)
        period_s = ControllerConfig().period_s
        self._schedule.every("rack cap", period_s, Lane.CONTROLLER, RackCap(self.bench).follow)
        self._schedule.every(
            "recorder", rates.fast_period_s, Lane.RECORDER, self._recorder.sample, first_s=rates.fast_period_s
        )
        for step in self.sequence.steps:
            self.apply(step)
        if self._progress is not None:
            self._schedule.every("progress", PROGRESS_PERIOD_S, Lane.STEPS, self._progress)

    def _demand_w(self, t_s: float) -> float:
        """What the racks' profile asks for at ``t_s``, at the time the site's plant takes that instant
        for (:meth:`_Site.plant_time`), so that a profile edge on an instant falls on the same side of
        it for the recorder as for the racks."""
        return self._profile.fraction(self._site.plant_time(t_s)) * self.rated_w

    @property
    def now_s(self) -> float:
        """The run's clock."""
        return self._schedule.now_s

    @property
    def plant(self) -> Plant | None:
        """The simulated plant, for reading its ground truth; None on a lab bench."""
        return self._site.plant

    def apply(self, step: Step) -> None:
        """Schedule ``step`` at its time (not before :attr:`now_s`); it runs when the clock reaches it."""
        action = self._catalogue.lookup(step.call)
        apply = _applier(step, action, self.bench, self._writer, self.record)
        self._schedule.at(step.call, step.at_s, Lane.STEPS, apply)

    def advance_to(self, t_s: float) -> None:
        """Let time pass to ``t_s``: every task due before it runs (one due exactly at ``t_s`` waits)."""
        self._schedule.run_until(t_s)

    def step_load(self, level: float) -> None:
        """The racks step to ``level`` (share of rated power) now. The profile must be ``steps``; it gains
        the point, the racks follow it (:meth:`_Site.follow_profile`) and so does the demand the recorder
        computes: a sequence with the extended profile from the start plays the same run."""
        if not isinstance(self._profile, Steps):
            raise TypeError(f"a load step needs a steps profile, not {type(self._profile).__name__}")
        self._profile = Steps((*self._profile.points, (self.now_s, level)))
        self._site.follow_profile(self._profile, level * self.rated_w)

    def add_cloud(self, cloud: Cloud) -> None:
        """A cloud over the PV plant from ``cloud.at_s`` (not before now); simulated benches only."""
        self._site.add_cloud(cloud)

    def trace(self) -> Trace:
        """What was recorded so far, with the analyzer's voltage events as they stand (one still going
        on included), as :meth:`finish` would complete it now."""
        self._site.drain()
        self._writer.flush()
        recorded = Trace.load(self.trace_dir)
        return Trace(
            recorded.t,
            {name: recorded.channel(name) for name in recorded.channel_names},
            events=recorded.events,
            voltage_events=_logged_events(self._recorder.analyzer),
            breaker_closes=recorded.breaker_closes,
        )

    def finish(self) -> None:
        """Complete the trace: the plant's last records and the analyzer's voltage event log."""
        self._site.drain()
        self._recorder.finish()

    def conclude(self, criteria: Iterable[Criterion]) -> tuple[Verdict, ...]:
        """Judge the trace on disk by ``criteria`` and record the run as completed with the verdicts."""
        try:
            self.record.verdicts = list(judge_criteria(Trace.load(self.trace_dir), criteria))
        except BaseException as error:
            self._record_end(error)
            raise
        self.record.end(RunStatus.COMPLETED)
        return tuple(self.record.verdicts)

    def _record_end(self, error: BaseException) -> None:
        interrupted = isinstance(error, ClockStopped) or not isinstance(error, Exception)
        status = RunStatus.INTERRUPTED if interrupted else RunStatus.ERROR
        self.record.end(status, f"{type(error).__name__}: {error}")


class _Site(Protocol):
    """Where a run happens: which bench it opens, how its time passes, what it adds to the schedule."""

    plant: Plant | None

    def start(self, stack: ExitStack) -> BenchSpec:
        """Bring up whatever the bench needs (closed with ``stack``); its bench file."""

    def prepare(self, sequence: Sequence, bench: Bench) -> None:
        """Put the bench in the sequence's starting state."""

    def passing(self) -> TimePassing: ...

    def schedule_own(self, schedule: Schedule, writer: TraceWriter, rates: RecorderRates) -> None:
        """Add the site's own periodic tasks."""

    def drain(self) -> None:
        """Write what the site recorded since its last periodic task."""

    def add_cloud(self, cloud: Cloud) -> None:
        """A cloud over the PV plant, if the site can make one."""

    def follow_profile(self, profile: Profile, now_w: float) -> None:
        """The racks take ``profile`` (the same up to now, then ``now_w``) from now on."""

    def plant_time(self, t_s: float) -> float:
        """The plant's own time at the schedule's instant ``t_s``."""


class _SimulatedSite:
    """A simulated bench of the run's own: stand-ins around ``plant``, the controller cycled by the run
    on a virtual clock, the plant's ground truth recorded beside what the drivers read."""

    def __init__(self, plant: Plant, variant: str | None, rates: RecorderRates) -> None:
        self.plant = plant
        self._variant = variant
        self._rates = rates
        self._truth: PlantTruth | None = None

    def start(self, stack: ExitStack) -> BenchSpec:
        self._sim = stack.enter_context(SimBench(self.plant.config, plant=self.plant))
        controller = build_controller(self._variant, ControllerConfig())
        self._runner = stack.enter_context(ControllerRunner(controller, self._sim.pcs_face.resource))
        return parse_bench_text(self._sim.bench_file(self._runner.face_resource), "<simulated bench>")

    def prepare(self, sequence: Sequence, bench: Bench) -> None:
        """Nothing: :func:`plant_for` built the plant in its starting state."""

    def passing(self) -> TimePassing:
        self._clock = _PlantClock(VirtualTime(self._sim.advance, self._rates.demand_step_s), self.plant)
        return self._clock

    def plant_time(self, t_s: float) -> float:
        """The plant adds its steps up in floating point: after 163 steps of 0.1 s it is at
        16.29999999999996, where a profile point at 16.3 has not come yet."""
        return self._clock.plant_time(t_s)

    def follow_profile(self, profile: Profile, now_w: float) -> None:
        """The racks get the whole profile from time zero, as :func:`plant_for` gives them the
        sequence's own, so the point takes effect at the same plant time as in a run that had it from
        the start (a driver command would take effect at the plant's present time instead)."""
        with self._sim.lock:
            self.plant.load.set_profile(profile, at=0.0)

    def schedule_own(self, schedule: Schedule, writer: TraceWriter, rates: RecorderRates) -> None:
        schedule.every("controller", ControllerConfig().period_s, Lane.CONTROLLER, self._runner.cycle)
        self._truth = PlantTruth(self.plant, self._sim.lock, writer)
        schedule.every("plant truth", rates.fast_period_s, Lane.RECORDER, self._truth.drain)

    def drain(self) -> None:
        if self._truth is not None:
            self._truth.drain()

    def add_cloud(self, cloud: Cloud) -> None:
        """The PV has no role to command: the plant gets the cloud as :func:`plant_for` gives the
        sequence's own (a cloud added before its time is the same as one known from the start)."""
        with self._sim.lock:
            self.plant.pv.cloud(cloud.at_s, cloud.depth, cloud.duration_s, cloud.ramp_s)


class _LabSite:
    """A lab bench from its bench file: its own controller, the wall clock; ``stop`` ends the run."""

    plant = None

    def __init__(self, spec: BenchSpec, stop: threading.Event | None) -> None:
        self._spec = spec
        self._stop = stop if stop is not None else threading.Event()

    def start(self, stack: ExitStack) -> BenchSpec:
        return self._spec

    def prepare(self, sequence: Sequence, bench: Bench) -> None:
        self._bench = bench
        prepare_bench(sequence.initial, bench)
        self._play = lambda _t_s: play_profile(
            bench["load"], sequence.initial.load.build(), ratings(bench)[0], sequence.duration_s
        )

    def passing(self) -> TimePassing:
        return WallTime(self._stop)

    def schedule_own(self, schedule: Schedule, writer: TraceWriter, rates: RecorderRates) -> None:
        """The load's profile from time zero; the bench's controller runs on its own."""
        schedule.at("load profile", 0.0, Lane.CONTROLLER, self._play)

    def drain(self) -> None:
        """Nothing: everything recorded comes through the recorder."""

    def add_cloud(self, cloud: Cloud) -> None:
        raise BenchSetupError(
            "a lab bench has no PV role: clouds are the PV simulator's, prepared by the operator"
        )

    def follow_profile(self, profile: Profile, now_w: float) -> None:
        """The electronic load draws the new level from now."""
        self._bench["load"].constant_power(now_w)

    def plant_time(self, t_s: float) -> float:
        """The wall clock is the plant's."""
        return t_s


@dataclass
class _PlantClock:
    """Time passing for a simulated plant (``virtual``) that notes the plant's own time at each instant
    of the schedule."""

    virtual: VirtualTime
    plant: Plant
    _at_ns: dict[int, float] = field(default_factory=dict)

    def pass_to(self, now_s: float, next_s: float) -> None:
        self.virtual.pass_to(now_s, next_s)
        self._at_ns[to_ns(next_s)] = self.plant.t

    def plant_time(self, t_s: float) -> float:
        """The plant's time at instant ``t_s`` (``t_s`` itself for an instant not passed yet)."""
        return self._at_ns.get(to_ns(t_s), t_s)


DATA_OUT_OF_RANGE = -222
"""The SCPI error an instrument queues for a setting beyond its range."""


class RackCap:
    """The data centre's side of the power cap: the racks keep to what the controller asks.

    A controller can only *request* a cap (its face's ``CapW``); in the plant the GPUs' power limits
    apply it. The harness plays that part through the drivers, as it would on a lab bench: it reads
    the controller's request and sets the electronic load's power limit whenever the request changes.
    """

    def __init__(self, bench: Bench) -> None:
        self._controller = bench["controller"]
        self._load = bench["load"]
        self._applied: float | None = None

    def follow(self, _t_s: float) -> None:
        cap = self._controller.status().power_cap_w
        if cap == self._applied:
            return
        try:
            self._load.power_limit(cap)
        except InstrumentRejected as error:
            if error.code != DATA_OUT_OF_RANGE:
                raise
            # A cap above what the load can draw at all never binds: the racks run uncapped.
            self._load.power_limit(None)
        self._applied = cap


def _logged_events(analyzer: PowerAnalyzer) -> list[VoltageEvent]:
    """The analyzer's voltage event log as it stands, as trace records (what Recorder.finish writes)."""
    return [
        VoltageEvent(VoltageEventKind(e.kind.value.lower()), e.start_s, e.duration_s, e.residual_pu)
        for e in analyzer.events()
    ]


def _applier(step: Step, action: Action, bench: Bench, writer: TraceWriter, record: RunRecord) -> Progress:
    def apply(t_s: float) -> None:
        action.invoke(bench[step.role], step.args)
        args = json.loads(json.dumps(dict(step.args), default=str))
        record.steps_applied.append({"t_s": t_s, "call": step.call, "args": args})
        record.write()
        writer.event(TraceEvent(t_s, "step", f"{step.call} {json.dumps(args)}"))

    return apply


class LiveSimBench(Lifecycle):
    """A simulated bench that tests drive themselves (the pytest plugin's ``--bench`` default).

    Every stand-in around one plant, the reference controller (or ``variant``) cycling at its face,
    and one clock: in lock-step (default) the plant and the controller move only inside
    :meth:`advance`, on a virtual clock; with ``realtime`` both move with the wall clock in their own
    threads until :meth:`close`.
    """

    def __init__(self, config: PlantConfig, *, realtime: bool = False, variant: str | None = None) -> None:
        self.sim = SimBench(config)
        self.realtime = realtime
        self._controller_config = ControllerConfig()
        self._variant = variant
        self._stack: ExitStack | None = None
        self._schedule: Schedule | None = None

    @property
    def plant(self) -> Plant:
        return self.sim.plant

    def start(self) -> LiveSimBench:
        with ExitStack() as stack:
            stack.enter_context(self.sim)
            controller = build_controller(self._variant, self._controller_config)
            self.runner = stack.enter_context(ControllerRunner(controller, self.sim.pcs_face.resource))
            if self.realtime:
                stop = threading.Event()
                workers = {"plant": self.sim.run_realtime, "controller": self.runner.run_realtime}
                for name, work in workers.items():
                    thread = threading.Thread(target=work, args=(stop,), name=f"gridhil-{name}", daemon=True)
                    thread.start()
                    stack.callback(thread.join)
                stack.callback(stop.set)
            else:
                self._schedule = Schedule(VirtualTime(self.sim.advance, PLANT_STEP_S))
                period_s = self._controller_config.period_s
                self._schedule.every("controller", period_s, Lane.CONTROLLER, self.runner.cycle)
            self._stack = stack.pop_all()
        return self

    def bench_text(self, name: str = "gridhil simulated bench") -> str:
        """The bench file (TOML) that points every role's driver at this bench."""
        return self.sim.bench_file(self.runner.face_resource, name)

    @property
    def now_s(self) -> float:
        """The virtual clock's present (lock-step only)."""
        return self._lockstep().now_s

    def advance(self, duration_s: float) -> None:
        """Let ``duration_s`` of virtual time pass: plant steps and controller cycles, in lock-step."""
        schedule = self._lockstep()
        schedule.run_until(schedule.now_s + duration_s)

    def _lockstep(self) -> Schedule:
        if self._schedule is None:
            raise RuntimeError("the simulated bench runs in real time (or is not started): no virtual clock")
        return self._schedule

    def close(self) -> None:
        stack, self._stack = self._stack, None
        self._schedule = None
        if stack is not None:
            stack.close()
