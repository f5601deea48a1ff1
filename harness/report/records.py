"""Read a run directory back: every ``record.json`` under it and the trace beside each.

A report is rendered from what is on disk, never from live objects, so it must cope with whatever a
run left there: a record still saying ``running`` (the process died), one that ended in ``error`` or
``interrupted``, a trace cut short or missing, even a record file that no longer parses. Each of those
becomes a :class:`SequenceRun` that says what is wrong (``problem``, ``trace_problem``) instead of an
exception, so one broken run never hides the others.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from harness.run import RECORD_FILE, RECORD_FORMAT, TRACE_DIR, RunStatus
from harness.trace import Trace
from harness.verdict import Verdict

UNREADABLE = "unreadable"
"""The status shown for a record file that cannot be read as a run record."""


class NoRecordsError(LookupError):
    """The directory holds no ``record.json`` at any depth."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        super().__init__(f"{run_dir}: no {RECORD_FILE} in it or below it; is it a run directory?")


class Outcome(Enum):
    """What a sequence run amounts to, for the summary."""

    PASSED = "passed"
    FAILED = "failed"
    INCOMPLETE = "incomplete"
    """The run did not complete (running, interrupted, error) or its record cannot be read."""


@dataclass(frozen=True)
class StepApplied:
    t_s: float
    call: str
    args: Mapping[str, Any]


@dataclass(frozen=True)
class Instrument:
    """One role of the bench as the record names it; None where the record says nothing."""

    role: str
    driver: str | None = None
    resource: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    serial: str | None = None
    firmware: str | None = None
    """The instrument's firmware; for the ``controller`` role, the controller's version."""
    calibration_due: str | None = None
    identity_error: str | None = None
    """Why the instrument could not say who it is (then the identity fields are None)."""

    @property
    def identity(self) -> tuple[str | None, ...]:
        """Who it is and when it is due calibration: what makes two benches the same bench."""
        fields = (self.manufacturer, self.model, self.serial, self.firmware, self.calibration_due)
        return (self.role, self.driver, *fields, self.identity_error)


@dataclass(frozen=True)
class BenchRecord:
    """The record's ``bench``: empty (``name`` None, no instruments) when the run stopped before it."""

    name: str | None = None
    source: str | None = None
    simulated: bool | None = None
    racks_rated_w: float = math.nan
    nominal_phase_v: float = math.nan
    instruments: tuple[Instrument, ...] = ()

    def instrument(self, role: str) -> Instrument | None:
        return next((entry for entry in self.instruments if entry.role == role), None)

    @property
    def identity(self) -> tuple[object, ...]:
        return (self.name, self.simulated, tuple(entry.identity for entry in self.instruments))


@dataclass(frozen=True)
class Environment:
    """The record's ``environment``: how to reproduce the run."""

    command_line: tuple[str, ...] | None = None
    python: str | None = None
    platform: str | None = None
    packages: tuple[tuple[str, str | None], ...] = ()


@dataclass(frozen=True)
class SequenceRun:
    """One sequence run as its record and trace describe it."""

    record_path: Path
    status: str
    """A :class:`~harness.run.RunStatus` value, or :data:`UNREADABLE`."""
    sequence_id: str
    title: str = ""
    references: tuple[str, ...] = ()
    duration_s: float = math.nan
    criteria: tuple[Mapping[str, Any], ...] = ()
    """The sequence's criteria as ``{"name": ..., "limits": {...}}``."""
    source: str = ""
    seed: int | None = None
    variant: str | None = None
    packs: int | None = None
    steps: tuple[StepApplied, ...] = ()
    verdicts: tuple[Verdict, ...] = ()
    error: str = ""
    started_utc: str | None = None
    finished_utc: str | None = None
    bench: BenchRecord = field(default_factory=BenchRecord)
    environment: Environment = field(default_factory=Environment)
    trace: Trace | None = None
    trace_problem: str = ""
    """Why there is no trace (missing, unreadable); empty when ``trace`` is loaded."""
    problem: str = ""
    """Why the record itself could not be read; empty for a readable record."""

    @property
    def directory(self) -> Path:
        return self.record_path.parent

    @property
    def outcome(self) -> Outcome:
        if self.status != RunStatus.COMPLETED.value:
            return Outcome.INCOMPLETE
        passed = bool(self.verdicts) and all(v.passed for v in self.verdicts)
        return Outcome.PASSED if passed else Outcome.FAILED

    @property
    def wall_s(self) -> float:
        """Wall-clock seconds from start to finish; NaN when either end is unknown."""
        start, finish = _parse_utc(self.started_utc), _parse_utc(self.finished_utc)
        if start is None or finish is None:
            return math.nan
        return (finish - start).total_seconds()

    @property
    def reached_s(self) -> float:
        """The last recorded sample's time (how far the run got); NaN without samples."""
        return self.trace.end_s if self.trace is not None else math.nan

    def limits_of(self, criterion: str) -> Mapping[str, Any] | None:
        """The limits the sequence gives ``criterion`` (its first occurrence), or None if not named."""
        for entry in self.criteria:
            if entry.get("name") == criterion:
                limits = entry.get("limits", {})
                return limits if isinstance(limits, Mapping) else {}
        return None


def find_records(run_dir: Path | str) -> list[Path]:
    """Every ``record.json`` under ``run_dir``; NoRecordsError when there is none."""
    root = Path(run_dir)
    found = sorted(root.rglob(RECORD_FILE))
    if not found:
        raise NoRecordsError(root)
    return found


def read_run(record_path: Path) -> SequenceRun:
    """The run ``record_path`` describes, with its trace; never raises for a damaged run."""
    try:
        document = json.loads(record_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        return _unreadable(record_path, f"{type(error).__name__}: {error}")
    if not isinstance(document, dict):
        return _unreadable(record_path, f"a JSON {type(document).__name__}, not an object")
    record_format = document.get("format", RECORD_FORMAT)
    if not isinstance(record_format, int) or record_format > RECORD_FORMAT:
        newest = f"this gridhil reads format {RECORD_FORMAT} and older"
        return _unreadable(record_path, f"record format {record_format!r}: {newest}")
    sequence = _mapping(document.get("sequence"))
    trace, trace_problem = _load_trace(record_path.parent / TRACE_DIR)
    return SequenceRun(
        record_path=record_path,
        status=str(document.get("status", UNREADABLE)),
        sequence_id=str(sequence.get("id", record_path.parent.name)),
        title=str(sequence.get("title", "")),
        references=tuple(str(r) for r in _list(sequence.get("references"))),
        duration_s=_number(sequence.get("duration_s")),
        criteria=tuple(_mapping(c) for c in _list(sequence.get("criteria"))),
        source=str(document.get("source", "")),
        seed=_optional_int(document.get("seed")),
        variant=None if document.get("variant") is None else str(document["variant"]),
        packs=_optional_int(document.get("packs")),
        steps=tuple(_step(s) for s in _list(document.get("steps_applied"))),
        verdicts=tuple(_verdict(v) for v in _list(document.get("verdicts"))),
        error=str(document.get("error", "")),
        started_utc=_optional_str(document.get("started_utc")),
        finished_utc=_optional_str(document.get("finished_utc")),
        bench=_bench(_mapping(document.get("bench"))),
        environment=_environment(_mapping(document.get("environment"))),
        trace=trace,
        trace_problem=trace_problem,
    )


def read_runs(run_dir: Path | str) -> list[SequenceRun]:
    """Every run under ``run_dir``, in the order they started (then by path)."""
    runs = [read_run(path) for path in find_records(run_dir)]
    return sorted(runs, key=lambda run: (run.started_utc or "", str(run.record_path)))


def _unreadable(record_path: Path, problem: str) -> SequenceRun:
    return SequenceRun(record_path, UNREADABLE, record_path.parent.name, problem=problem)


def _load_trace(directory: Path) -> tuple[Trace | None, str]:
    if not directory.is_dir():
        return None, f"no trace: {directory} does not exist"
    try:
        return Trace.load(directory), ""
    except (OSError, ValueError, KeyError, TypeError) as error:
        return None, f"trace unreadable: {type(error).__name__}: {error}"


def _verdict(document: object) -> Verdict:
    """A verdict from its ``to_json`` form."""
    entry = _mapping(document)
    when = entry.get("when")
    span = None
    if isinstance(when, list) and len(when) == 2:
        span = (_number(when[0]), _number(when[1]))
    return Verdict(
        name=str(entry.get("name", "?")),
        passed=bool(entry.get("passed", False)),
        measured=_number(entry.get("measured")),
        limit=_number(entry.get("limit")),
        margin=_number(entry.get("margin")),
        unit=str(entry.get("unit", "")),
        when=span,
        reference=str(entry.get("reference", "")),
        detail=str(entry.get("detail", "")),
        evidence=_evidence(_mapping(entry.get("evidence"))),
    )


def _evidence(document: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Evidence arrays as floats (``"inf"`` strings included); a value that is not numeric is left out."""
    arrays: dict[str, np.ndarray] = {}
    for key, value in document.items():
        try:
            arrays[key] = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            continue
    return arrays


def _bench(document: Mapping[str, Any]) -> BenchRecord:
    simulated = document.get("simulated")
    return BenchRecord(
        name=_optional_str(document.get("name")),
        source=_optional_str(document.get("source")),
        simulated=simulated if isinstance(simulated, bool) else None,
        racks_rated_w=_number(document.get("racks_rated_w")),
        nominal_phase_v=_number(document.get("nominal_phase_v")),
        instruments=tuple(
            _instrument(str(role), _mapping(entry))
            for role, entry in _mapping(document.get("instruments")).items()
        ),
    )


def _instrument(role: str, entry: Mapping[str, Any]) -> Instrument:
    keys = (
        "driver",
        "resource",
        "manufacturer",
        "model",
        "serial",
        "firmware",
        "calibration_due",
        "identity_error",
    )
    return Instrument(role, **{key: _optional_str(entry.get(key)) for key in keys})


def _environment(document: Mapping[str, Any]) -> Environment:
    command = document.get("command_line")
    packages = _mapping(document.get("packages"))
    return Environment(
        command_line=tuple(str(part) for part in command) if isinstance(command, list) else None,
        python=_optional_str(document.get("python")),
        platform=_optional_str(document.get("platform")),
        packages=tuple((str(name), _optional_str(version)) for name, version in packages.items()),
    )


def _step(document: object) -> StepApplied:
    entry = _mapping(document)
    return StepApplied(_number(entry.get("t_s")), str(entry.get("call", "?")), _mapping(entry.get("args")))


def _number(value: object) -> float:
    """A record number; ``"inf"``/``"nan"`` strings (strict JSON) read back; anything else is NaN."""
    if isinstance(value, bool):
        return float(value)
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def _optional_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _optional_str(value: object) -> str | None:
    return None if value is None else str(value)


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _parse_utc(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None
