"""``gridhil run``: run sequences on the simulated bench (or a lab bench, ``--bench FILE``) and print
their verdicts.

A SEQUENCE is a sequence file's path or the id of a library sequence (harness/sequences/library).
Each run writes ``<out>/<sequence id>/trace/`` and ``record.json``; at the end (also when a run
raised or was interrupted) the validation report ``<out>/report.html`` is rendered from them and its
path printed. Without ``--out``, ``<out>`` is a fresh ``runs/<UTC time>/`` so that runs never
overwrite each other. Exit status: 0 when every criterion of every sequence passed, 1 when any
failed, 2 on bad input (unknown sequence, invalid file, unknown variant, bad option).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from harness.bench_file import BenchFileError, BenchSpec, load_bench_file
from harness.controller.variants import variant_names
from harness.report import NoRecordsError, render_report
from harness.run import RunResult, run_sequence
from harness.sequence import Sequence, SequenceError, load_library, load_sequence
from harness.verdict import Verdict

LIBRARY = Path(__file__).parent / "sequences" / "library"
RUNS_ROOT = Path("runs")
"""Where runs go without ``--out``: each into a fresh ``<UTC time>`` directory of its own."""
BAD_INPUT = 2
FAILED = 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run", help="run sequences on the simulated bench and judge them", description=__doc__
    )
    parser.add_argument("sequences", nargs="+", metavar="SEQUENCE", help="a sequence file or a library id")
    parser.add_argument(
        "--bench",
        type=Path,
        default=None,
        metavar="FILE",
        help="a lab bench file (default: the simulated bench)",
    )
    parser.add_argument("--variant", default=None, help="a controller variant instead of the reference")
    parser.add_argument("--seed", type=int, default=None, help="seed (default: each sequence's fleet seed)")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"run directory (default: a fresh {RUNS_ROOT}/<UTC time>/, so runs never overwrite each other)",
    )
    parser.add_argument("--packs", type=int, default=None, help="fleet size override; ratings scale with it")
    parser.set_defaults(handler=run)


def resolve(names: list[str], library_dir: Path = LIBRARY) -> list[Sequence]:
    """The sequences ``names`` give: an existing path is read as a file, anything else as a library id."""
    library: dict[str, Sequence] | None = None
    found: list[Sequence] = []
    for name in names:
        if Path(name).is_file():
            found.append(load_sequence(name))
            continue
        library = library if library is not None else load_library(library_dir)
        if name not in library:
            known = ", ".join(sorted(library))
            problem = f"no such file and no library sequence of that id; ids: {known}"
            raise SequenceError(name, "", "", problem)
        found.append(library[name])
    return found


def format_verdict(verdict: Verdict) -> str:
    outcome = "PASS" if verdict.passed else "FAIL"
    return (
        f"  {outcome} {verdict.name}: measured {verdict.measured:g} {verdict.unit}, "
        f"limit {verdict.limit:g}, margin {verdict.margin:g}"
    )


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out if out is not None else sys.stdout
    if args.variant is not None and args.variant not in variant_names():
        print(f"gridhil run: unknown variant {args.variant!r}; known: {', '.join(variant_names())}", file=out)
        return BAD_INPUT
    if args.packs is not None and args.packs < 1:
        print(f"gridhil run: --packs must be at least 1, not {args.packs}", file=out)
        return BAD_INPUT
    if args.bench is not None and (args.variant is not None or args.packs is not None):
        print(
            "gridhil run: --variant and --packs are for the simulated bench; a lab bench has its own",
            file=out,
        )
        return BAD_INPUT
    try:
        sequences = resolve(args.sequences)
        bench = None if args.bench is None else load_bench_file(args.bench)
    except (SequenceError, BenchFileError) as error:
        print(f"gridhil run: {error}", file=out)
        return BAD_INPUT
    out_dir = args.out if args.out is not None else fresh_run_dir(RUNS_ROOT)
    results: list[RunResult] = []
    try:
        for sequence in sequences:
            results.append(_run_one(sequence, args, bench, out_dir, out))
    except BaseException:
        print(file=out)  # end the progress line the error or interruption cut short
        raise
    finally:
        _report(out_dir, out)
    return 0 if all(result.passed for result in results) else FAILED


def fresh_run_dir(root: Path, now: datetime | None = None) -> Path:
    """A new, empty ``root/<UTC time>`` directory (``-2``, ``-3``, ... for runs in the same second)."""
    stamp = (now if now is not None else datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    root.mkdir(parents=True, exist_ok=True)
    attempt = 1
    while True:
        candidate = root / (stamp if attempt == 1 else f"{stamp}-{attempt}")
        try:
            candidate.mkdir()
        except FileExistsError:
            attempt += 1
        else:
            return candidate


def _run_one(
    sequence: Sequence, args: argparse.Namespace, bench: BenchSpec | None, out_dir: Path, out: TextIO
) -> RunResult:
    print(f"{sequence.id}: {sequence.title} ({sequence.duration_s:g} s)", file=out, flush=True)

    def show(t_s: float, total_s: float = sequence.duration_s) -> None:
        print(f"\r  {t_s:6.1f} / {total_s:g} s", end="", file=out, flush=True)

    result = run_sequence(
        sequence,
        variant=args.variant,
        out_dir=out_dir / sequence.id,
        bench=bench,
        seed=args.seed,
        packs=args.packs,
        progress=show,
    )
    print(file=out)
    for verdict in result.verdicts:
        print(format_verdict(verdict), file=out)
    print(f"  {'passed' if result.passed else 'FAILED'}; record {result.record_path}", file=out)
    return result


def _report(out_dir: Path, out: TextIO) -> None:
    """Render the report of what ``out_dir`` holds; nothing when no run got as far as its record."""
    try:
        path = render_report(out_dir)
    except NoRecordsError:
        return
    print(f"report {path}", file=out, flush=True)
