"""``gridhil fuzz``: property-based fault sequences against a controller (harness.fuzz, docs/fuzz.md).

Hypothesis draws sequences of actions (grid loss and return, sags, pack faults, PCS trips, clouds, load
and degradation steps, ...), runs each on the bench as it draws it and judges the steady-power
criteria after every action. A failure is shrunk to a minimal sequence, written to ``--out`` as
``fuzz-<target>-<n>.toml`` (an ordinary sequence file: ``gridhil run`` replays it) and replayed, the
replay's verdicts beside it (``.json``). Hypothesis' database (``<out>/hypothesis-db``) makes a rerun
start from the failures found before. Exit status: 0 when no failing sequence was found, 1 when one
was, 2 on bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from harness.bench_file import BenchFileError, load_bench_file
from harness.fuzz.campaign import (
    DEFAULT_EXAMPLES,
    DEFAULT_PACKS,
    DEFAULT_SHRINK_S,
    Campaign,
    CampaignResult,
    Tally,
    run_campaign,
)
from harness.fuzz.machine import ExampleReport

BAD_INPUT = 2
FOUND = 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "fuzz", help="draw fault sequences until the controller fails one", description=__doc__
    )
    parser.add_argument(
        "--bench",
        type=Path,
        default=None,
        metavar="FILE",
        help="a lab bench file (default: the simulated bench)",
    )
    parser.add_argument("--variant", default=None, help="a controller variant instead of the reference")
    parser.add_argument(
        "--examples",
        type=int,
        default=DEFAULT_EXAMPLES,
        help=f"examples to draw (default {DEFAULT_EXAMPLES})",
    )
    parser.add_argument("--seed", type=int, default=0, help="hypothesis is derandomised from it (default 0)")
    parser.add_argument(
        "--packs", type=int, default=None, help=f"simulated fleet size (default {DEFAULT_PACKS})"
    )
    parser.add_argument(
        "--shrink-s",
        type=float,
        default=DEFAULT_SHRINK_S,
        metavar="SECONDS",
        help=f"wall time spent shrinking a failure (default {DEFAULT_SHRINK_S:g})",
    )
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="where failures are written")
    parser.set_defaults(handler=fuzz)


def campaign_from(args: argparse.Namespace) -> Campaign:
    """The campaign the options describe; ValueError or BenchFileError naming what is wrong."""
    if args.bench is not None and (args.variant is not None or args.packs is not None):
        raise ValueError("--variant and --packs are for the simulated bench; a lab bench has its own")
    if args.out.exists() and not args.out.is_dir():
        raise ValueError(f"--out {args.out} is not a directory")
    return Campaign(
        out_dir=args.out,
        examples=args.examples,
        seed=args.seed,
        variant=args.variant,
        packs=DEFAULT_PACKS if args.packs is None else args.packs,
        bench=None if args.bench is None else load_bench_file(args.bench),
        shrink_s=args.shrink_s,
    )


def describe_example(phase: str, report: ExampleReport, tally: Tally) -> str:
    """One progress line: which example, its rules, the time it reached, what failed."""
    outcome = f"FAILED {', '.join(report.failed)}" if report.failed else "ok"
    return f"  {phase} {tally.examples}: {report.rules} rules, {report.reached_s:.1f} s: {outcome}"


def summarise(result: CampaignResult) -> list[str]:
    tally, finding = result.tally, result.finding
    lines = [f"{tally.examples} examples, {tally.simulated_s:.0f} s simulated, {result.wall_s:.0f} s wall"]
    if finding is None:
        return [*lines, "no failing sequence found"]
    replay = "FAILED " + ", ".join(finding.replay_failed) if finding.replay_failed else "passed"
    return [
        *lines,
        f"failing sequence (after {finding.after_examples} examples): {finding.path}",
        f"  failed: {', '.join(finding.failed)}; {len(finding.sequence.steps)} steps, "
        f"{finding.sequence.duration_s:g} s",
        f"  replay: {replay} ({'reproduced' if finding.reproduced else 'NOT reproduced'}); "
        f"record {finding.replay.record_path}",
    ]


def fuzz(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out if out is not None else sys.stdout
    try:
        campaign = campaign_from(args)
    except (ValueError, BenchFileError) as error:
        print(f"gridhil fuzz: {error}", file=out)
        return BAD_INPUT
    print(
        f"fuzzing {campaign.target}: up to {campaign.examples} examples, seed {campaign.seed}, "
        f"out {campaign.out_dir}",
        file=out,
        flush=True,
    )

    def show(phase: str, report: ExampleReport, tally: Tally) -> None:
        print(describe_example(phase, report, tally), file=out, flush=True)

    result = run_campaign(campaign, show)
    for line in summarise(result):
        print(line, file=out)
    return FOUND if result.finding is not None else 0
