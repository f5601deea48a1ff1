"""What a run record says about where and with what it ran, so a run can be reproduced and signed off:
the bench and every instrument's identity and calibration date, the command line, the software."""

from __future__ import annotations

import platform
import sys
from datetime import UTC, datetime
from importlib import metadata

from drivers.errors import InstrumentError
from harness.bench_file import Bench

PACKAGES = ("gridhil", "numpy", "pyvisa", "pyvisa-py", "pymodbus", "pyserial", "hypothesis", "pytest")
"""The distributions whose versions a record names (the ones a run's behaviour depends on)."""


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def environment() -> dict[str, object]:
    """The command line, Python, platform and package versions of this process."""
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "command_line": list(sys.argv),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
    }


def describe_bench(bench: Bench, *, simulated: bool) -> dict[str, object]:
    """The bench's name and ratings, and per role its driver, resource, identity and calibration date.

    An instrument that cannot say who it is gets the error in place of its identity: the record is
    written before anything runs, and a missing identity must not stop the run.
    """
    spec = bench.spec
    instruments: dict[str, dict[str, object]] = {}
    for role, role_spec in spec.roles.items():
        due = role_spec.calibration_due
        entry: dict[str, object] = {
            "driver": role_spec.driver,
            "resource": role_spec.resource,
            "calibration_due": None if due is None else due.isoformat(),
        }
        try:
            identity = bench[role].identity()
        except InstrumentError as error:
            entry["identity_error"] = str(error)
        else:
            entry.update(
                manufacturer=identity.manufacturer,
                model=identity.model,
                serial=identity.serial,
                firmware=identity.firmware,
            )
        instruments[role] = entry
    return {
        "name": spec.name,
        "source": spec.source,
        "simulated": simulated,
        "racks_rated_w": spec.racks_rated_w,
        "nominal_phase_v": spec.nominal_phase_v,
        "instruments": instruments,
    }
