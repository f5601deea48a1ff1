"""A fuzz campaign: hypothesis runs the state machine, the minimal failure is written and replayed.

:func:`run_campaign` runs up to ``examples`` examples (derandomised from ``seed``) against the simulated
bench's reference controller or a variant, or against a lab bench's own controller on the wall clock.
Hypothesis keeps its example database in ``<out>/hypothesis-db`` (one directory per target), so a rerun
first replays the failures it found before. When an invariant fails, hypothesis shrinks the example,
for at most ``shrink_s`` of wall time (hypothesis' own bound on shrinking, its engine's
``MAX_SHRINKING_SECONDS``, set for the campaign: no setting reaches it), and the smallest failing
example is written as an ordinary sequence file, ``<out>/<id>.toml``, then replayed with
:func:`harness.run.run_sequence` (trace and record in ``<out>/<id>/``) and the replay's verdicts are
written beside it (``<out>/<id>.json``): the replay must fail the same criteria.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from unittest.mock import patch

from hypothesis import HealthCheck, Phase, Verbosity, seed, settings
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.errors import FlakyFailure, HypothesisException
from hypothesis.internal.conjecture import engine
from hypothesis.stateful import run_state_machine_as_test

from harness.bench_file import BenchSpec
from harness.controller.variants import variant_names
from harness.fuzz.invariants import InvariantBroken, criterion_name
from harness.fuzz.machine import ExampleReport, FuzzMachine, MachineConfig
from harness.run import RunResult, RunSession, open_session, run_sequence
from harness.sequence import Sequence

DATABASE_DIR = "hypothesis-db"
WORK_DIR = "examples"
DEFAULT_EXAMPLES = 25
DEFAULT_PACKS = 24
DEFAULT_SHRINK_S = 120.0
"""Wall time hypothesis may spend shrinking a failure; then it stops and the smallest failing example
it has played is the one written (its database keeps it for the next run to go on from). Hypothesis'
own limit is five minutes; shrinking an example of a dozen rules can take a few hundred runs."""
MAX_RULES = 20
"""Rules per example after the initial one. A rule that does not apply in the present state does
nothing and takes no time, so an example needs more rules than it plays actions to fill its 90 s."""


@dataclass(frozen=True)
class Campaign:
    """What to fuzz: the simulated bench (``variant``, ``packs``) or a lab bench (``bench``)."""

    out_dir: Path
    examples: int = DEFAULT_EXAMPLES
    seed: int = 0
    variant: str | None = None
    packs: int = DEFAULT_PACKS
    bench: BenchSpec | None = None
    shrink_s: float = DEFAULT_SHRINK_S

    def __post_init__(self) -> None:
        if self.variant is not None and self.variant not in variant_names():
            raise ValueError(f"unknown variant {self.variant!r}; known: {', '.join(variant_names())}")
        if self.bench is not None and self.variant is not None:
            raise ValueError("a variant is a simulated bench's controller; a lab bench has its own")
        for name, least in (("examples", 1), ("packs", 1), ("shrink_s", 0)):
            if getattr(self, name) < least:
                raise ValueError(f"{name} must be at least {least}, not {getattr(self, name)}")

    @property
    def target(self) -> str:
        """Names what is fuzzed, in file names and the database: ``reference``, a variant, ``lab``."""
        if self.bench is not None:
            return "lab"
        return self.variant or "reference"

    def open(self, sequence: Sequence, run_dir: Path) -> RunSession:
        if self.bench is not None:
            return open_session(sequence, out_dir=run_dir, bench=self.bench)
        return open_session(sequence, out_dir=run_dir, variant=self.variant)

    def replay(self, sequence: Sequence, run_dir: Path) -> RunResult:
        if self.bench is not None:
            return run_sequence(sequence, out_dir=run_dir, bench=self.bench)
        return run_sequence(sequence, out_dir=run_dir, variant=self.variant)


@dataclass(frozen=True)
class Finding:
    """A minimal failing sequence, where it was written, and how its replay went."""

    sequence: Sequence
    path: Path
    failed: tuple[str, ...]
    replay: RunResult
    after_examples: int
    """Examples run when the first failure showed (before shrinking)."""

    @property
    def replay_failed(self) -> tuple[str, ...]:
        return tuple(criterion_name(v) for v in self.replay.verdicts if not v.passed)

    @property
    def reproduced(self) -> bool:
        """The replay fails every criterion the fuzzer saw fail."""
        return set(self.failed) <= set(self.replay_failed)


@dataclass
class Tally:
    """Examples run so far, in generation and (after the first failure) in shrinking."""

    examples: int = 0
    simulated_s: float = 0.0
    example_wall_s: float = 0.0
    """Wall time spent in examples (drawing, running and judging them; not writing or replaying)."""
    first_failure: int | None = None
    reports: list[ExampleReport] = field(default_factory=list)

    def count(self, report: ExampleReport) -> None:
        self.examples += 1
        self.simulated_s += report.reached_s
        self.example_wall_s += report.wall_s
        self.reports.append(report)
        if report.broken is not None and self.first_failure is None:
            self.first_failure = self.examples


@dataclass(frozen=True)
class CampaignResult:
    campaign: Campaign
    tally: Tally
    wall_s: float
    finding: Finding | None


Progress = Callable[[str, ExampleReport, Tally], object]
"""Called after each example with its phase (``example`` or ``shrink``), its report and the tally."""


def run_campaign(campaign: Campaign, progress: Progress | None = None) -> CampaignResult:
    """Fuzz ``campaign``'s target; the minimal failing sequence, written and replayed, if one was found."""
    out = campaign.out_dir
    out.mkdir(parents=True, exist_ok=True)
    tally = Tally()

    def on_example(report: ExampleReport) -> None:
        phase = "shrink" if tally.first_failure is not None else "example"
        tally.count(report)
        if progress is not None:
            progress(phase, report, tally)

    config = MachineConfig(
        open_session=campaign.open,
        packs=campaign.packs,
        simulated=campaign.bench is None,
        work_dir=out / WORK_DIR,
        on_example=on_example,
    )

    @seed(campaign.seed)
    def machine() -> FuzzMachine:
        return FuzzMachine(config)

    started = time.monotonic()
    try:
        with patch.object(engine, "MAX_SHRINKING_SECONDS", campaign.shrink_s):
            run_state_machine_as_test(machine, settings=_settings(campaign))
    except InvariantBroken as broken:
        finding = _write(campaign, broken, tally.first_failure or tally.examples)
    except FlakyFailure as flaky:
        broken = _first_broken(flaky)
        if broken is None:
            raise _bench_error(flaky) from flaky
        finding = _write(campaign, broken, tally.first_failure or tally.examples)
    else:
        finding = None
    finally:
        shutil.rmtree(out / WORK_DIR, ignore_errors=True)
    return CampaignResult(campaign, tally, time.monotonic() - started, finding)


def _first_broken(flaky: FlakyFailure) -> InvariantBroken | None:
    """The invariant broken in a failure hypothesis saw once but not on its replay. On a lab bench (the
    wall clock, a plant with a memory of earlier runs) that happens: the failure is written all the
    same, and its replay's verdicts say whether it came back."""
    found = _first(flaky, lambda error: isinstance(error, InvariantBroken))
    return found if isinstance(found, InvariantBroken) else None


def _bench_error(flaky: FlakyFailure) -> BaseException:
    """What went wrong, rather than hypothesis' report that it went wrong differently when replayed
    (a bench that failed once, say an instrument that did not answer, and then did)."""
    own = _first(flaky, lambda error: not isinstance(error, HypothesisException | BaseExceptionGroup))
    return flaky if own is None else own


def _first(flaky: FlakyFailure, wanted: Callable[[BaseException], bool]) -> BaseException | None:
    found = flaky.subgroup(wanted)
    while isinstance(found, BaseExceptionGroup):
        found = found.exceptions[0]
    return found


def _settings(campaign: Campaign) -> settings:
    database = DirectoryBasedExampleDatabase(campaign.out_dir / DATABASE_DIR / campaign.target)
    return settings(
        max_examples=campaign.examples,
        stateful_step_count=MAX_RULES + 1,  # the initialize rule is a step too
        deadline=None,
        database=database,
        phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink),
        report_multiple_bugs=False,
        verbosity=Verbosity.quiet,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )


def _write(campaign: Campaign, broken: InvariantBroken, after_examples: int) -> Finding:
    """Write the minimal failing example as ``<id>.toml``, replay it, write ``<id>.json``."""
    out = campaign.out_dir
    number = 1
    while (out / f"fuzz-{campaign.target}-{number}.toml").exists():
        number += 1
    sequence_id = f"fuzz-{campaign.target}-{number}"
    failed = tuple(broken.failed)
    title = (
        f"Fuzz ({campaign.target}): {', '.join(failed)} failed at {broken.reached_s:g} s "
        f"after {len(broken.draft.steps)} steps"
    )
    sequence = broken.draft.sequence(sequence_id, title, broken.reached_s, broken.criteria)
    path = out / f"{sequence_id}.toml"
    path.write_text(sequence.to_toml())
    replay = campaign.replay(sequence, out / sequence_id)
    finding = Finding(sequence, path, failed, replay, after_examples)
    summary = {
        "id": sequence_id,
        "target": campaign.target,
        "variant": campaign.variant,
        "seed": campaign.seed,
        "found_after_examples": after_examples,
        "failed": list(failed),
        "fuzz_verdicts": [verdict.to_json() for verdict in broken.failed.values()],
        "replay": {
            "passed": replay.passed,
            "failed": list(finding.replay_failed),
            "record": str(replay.record_path),
            "verdicts": [verdict.to_json() for verdict in replay.verdicts],
        },
        "reproduced": finding.reproduced,
    }
    (out / f"{sequence_id}.json").write_text(json.dumps(summary, indent=1))
    return finding
