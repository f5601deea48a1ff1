"""``gridhil report``: render a run directory's validation report again, from its records alone.

RUN_DIR is what ``gridhil run --out`` or ``pytest --gridhil-out`` wrote (any directory with
``record.json`` files below it, a crashed run's included). Exit status: 0 when the report was
written, whatever the verdicts; 2 when RUN_DIR is not a directory or holds no record.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from harness.report import REPORT_FILE, NoRecordsError, render_report

BAD_INPUT = 2


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report", help="render a run directory's HTML validation report from its records", description=__doc__
    )
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run directory")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="FILE",
        help=f"where to write it (default RUN_DIR/{REPORT_FILE})",
    )
    parser.set_defaults(handler=report)


def report(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out if out is not None else sys.stdout
    if not args.run_dir.is_dir():
        print(f"gridhil report: {args.run_dir} is not a directory", file=out)
        return BAD_INPUT
    try:
        path = render_report(args.run_dir, args.out)
    except NoRecordsError as error:
        print(f"gridhil report: {error}", file=out)
        return BAD_INPUT
    print(f"report {path}", file=out)
    return 0
