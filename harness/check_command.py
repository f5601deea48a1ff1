"""``gridhil check --bench FILE``: is every instrument of the bench there, and the one the file expects?

It validates the bench file, connects to every role, reads each identity and compares it with the
role's ``expect`` table (model and firmware as case-insensitive substrings), and prints one line per
role: driver, resource, identity, calibration due date and status. It only reads: no output is
switched, unless ``--safe`` asks for every reachable role to be brought to its safe state (what a
test run does on the way out; useful after a run was killed).

Exit status: 0 when every role is reachable and as expected (an overdue calibration is a warning),
1 when one is not (or, with ``--safe``, did not go safe), 2 when the bench file is unusable.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import date
from enum import Enum
from pathlib import Path

from drivers.base import Driver, Identity
from drivers.errors import InstrumentError
from harness.bench_file import (
    BenchFileError,
    BenchSpec,
    RoleSpec,
    close_drivers,
    load_bench_file,
    open_driver,
)
from harness.safety import SafeReport, SafeStateError, SafeStateGuard

COLUMNS = ("role", "driver", "resource", "identity", "calibration due", "status")
SAFE_COLUMN = "safe"
NOT_SET = "-"


class Status(Enum):
    OK = "ok"
    UNREACHABLE = "unreachable"
    MISMATCH = "mismatch"
    CALIBRATION_OVERDUE = "calibration overdue"

    @property
    def passed(self) -> bool:
        """An overdue calibration is a warning, not a failure."""
        return self in (Status.OK, Status.CALIBRATION_OVERDUE)


@dataclass(frozen=True)
class RoleCheck:
    """What checking one role found."""

    spec: RoleSpec
    status: Status
    identity: Identity | None = None
    detail: str = ""

    @property
    def status_text(self) -> str:
        return f"{self.status.value}: {self.detail}" if self.detail else self.status.value


@dataclass(frozen=True)
class BenchCheck:
    """Every role's check, and with ``--safe`` the safe-state report of the reachable ones."""

    checks: tuple[RoleCheck, ...]
    safe: SafeReport | None = None

    @property
    def passed(self) -> bool:
        return all(check.status.passed for check in self.checks) and (self.safe is None or self.safe.ok)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "check",
        help="connect to every instrument of a bench file and compare what answers with what it expects",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--bench", type=Path, required=True, metavar="FILE", help="the bench file (TOML)")
    parser.add_argument(
        "--safe",
        action="store_true",
        help="also bring every reachable role to its safe state (this switches outputs)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        spec = load_bench_file(args.bench)
    except BenchFileError as error:
        print(f"gridhil check: {error}", file=sys.stderr)
        return 2
    today = date.today()
    result = check_bench(spec, today, make_safe=args.safe)
    print(f"bench {spec.name!r} ({spec.source}), checked {today.isoformat()}")
    print(format_table(result, today))
    failed = sum(not check.status.passed for check in result.checks)
    if failed:
        print(f"{failed} of {len(result.checks)} roles not reachable or not as expected")
    if result.safe is not None and not result.safe.ok:
        unsafe = ", ".join(failure.role for failure in result.safe.failures)
        print(f"did not reach their safe state: {unsafe}")
    return 0 if result.passed else 1


def check_bench(spec: BenchSpec, today: date, *, make_safe: bool = False) -> BenchCheck:
    """Check every role of ``spec`` (one at a time, in file order); every driver is closed again."""
    opened: dict[str, Driver] = {}
    checks: list[RoleCheck] = []
    guard = SafeStateGuard(opened, spec.safe_deadline_s) if make_safe else None
    try:
        with guard if guard is not None else nullcontext():
            for role in spec.roles.values():
                try:
                    opened[role.role] = open_driver(role)
                except Exception as error:
                    checks.append(RoleCheck(role, Status.UNREACHABLE, detail=_why(error)))
                    continue
                checks.append(_identify(role, opened[role.role], today))
    except SafeStateError:
        pass  # the guard's report goes into the table
    finally:
        close_drivers(opened)
    return BenchCheck(tuple(checks), guard.report if guard is not None else None)


def _identify(spec: RoleSpec, driver: Driver, today: date) -> RoleCheck:
    try:
        identity = driver.identity()
    except Exception as error:
        return RoleCheck(spec, Status.UNREACHABLE, detail=_why(error))
    mismatches = spec.expect.mismatches(identity)
    if mismatches:
        return RoleCheck(spec, Status.MISMATCH, identity, "; ".join(mismatches))
    if spec.calibration_overdue(today):
        return RoleCheck(spec, Status.CALIBRATION_OVERDUE, identity, "warning")
    return RoleCheck(spec, Status.OK, identity)


def _why(error: Exception) -> str:
    """The problem without the role and resource, which the table already shows."""
    if isinstance(error, InstrumentError):
        return f"{error.command}: {error.problem}" if error.command else error.problem
    return f"{type(error).__name__}: {error}"


def format_table(result: BenchCheck, today: date) -> str:
    """One aligned line per role, under a header."""
    header = COLUMNS + ((SAFE_COLUMN,) if result.safe is not None else ())
    rows = [header]
    for check in result.checks:
        row = (
            check.spec.role,
            check.spec.driver,
            check.spec.resource,
            str(check.identity) if check.identity is not None else NOT_SET,
            _calibration(check.spec, today),
            check.status_text,
        )
        if result.safe is not None:
            row += (_safe_cell(result.safe, check.spec.role),)
        rows.append(row)
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def _calibration(spec: RoleSpec, today: date) -> str:
    if spec.calibration_due is None:
        return NOT_SET
    due = spec.calibration_due.isoformat()
    return f"{due} (overdue)" if spec.calibration_overdue(today) else due


def _safe_cell(report: SafeReport, role: str) -> str:
    try:
        return str(report[role]).removeprefix(f"{role}: ")
    except KeyError:
        return NOT_SET

