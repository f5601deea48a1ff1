"""Sequences: a fault, degradation or grid-loss test as data (TOML, never code).

A sequence file names the test (``id``, ``title``, ``references``), how long it runs (``duration_s``),
what the plant starts as (``[initial]``), the timed ``[[steps]]`` (driver calls by role, from the
action catalogue of :mod:`harness.actions`) and the ``[[criteria]]`` that judge the run.
:func:`load_sequence` reads and validates a whole file before anything runs: every mistake is one
:class:`SequenceError` naming the file, the step (index and time) or table, and the key.
:class:`harness.sequence_builder.SequenceBuilder` makes the same objects from Python, through the
same validation. The format is documented for users in ``docs/sequences.md``.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import cast

from harness.actions import (
    ActionCatalogue,
    ArgumentError,
    UnknownAction,
    record_type,
    standard_catalogue,
    toml_type_name,
)
from harness.sim.load import CheckpointDips, Constant, Profile, Steps, TrainingSwings

CRITERIA_NAMES = (
    "itic",
    "load_served",
    "frequency_band",
    "rocof",
    "grid_ramp",
    "grid_band_energy",
    "soc_bounds",
    "isolation_current",
    "fault_isolation",
    "silent_bms",
    "sharing_balance",
    "settle_time",
    "resync",
)
"""The criteria a sequence may name; ``harness/criteria`` implements each under the same name."""

LOAD_PROFILES: Mapping[str, type] = MappingProxyType(
    {
        "constant": Constant,
        "training_swings": TrainingSwings,
        "checkpoint_dips": CheckpointDips,
        "steps": Steps,
    }
)
"""``[initial.load] profile`` -> the rack profile (harness.sim.load); its fields are the table's keys."""

_PROFILE_ANNOTATIONS: Mapping[str, Mapping[str, object]] = {"checkpoint_dips": {"base": float}}
"""Profile fields a file gives in a simpler type than the class takes (a dip's base is a constant share)."""

STRING_SOURCE = "<sequence text>"
_ID = re.compile(r"[a-z0-9][a-z0-9-]*\Z")
_TOP_KEYS = ("id", "title", "references", "duration_s", "initial", "steps", "criteria")
_INITIAL_KEYS = ("fleet", "soc", "load", "pv", "grid")
_STEP_KEYS = ("at_s", "call", "args")
_CRITERION_KEYS = ("name", "limits")


class SequenceError(Exception):
    """A sequence that cannot be run, and where: ``grid.toml: step 2 (at 40.0 s): call: unknown role``.

    ``where`` is the step (``step 2 (at 40.0 s)``, counted from 1 in file order) or the table
    (``[initial.fleet]``, ``criterion 1``), empty for top-level keys; ``key`` the key in it.
    """

    def __init__(self, source: str, where: str, key: str, problem: str) -> None:
        self.source = source
        self.where = where
        self.key = key
        self.problem = problem
        place = ": ".join(part for part in (where, key) if part)
        super().__init__(f"{source}: {place}: {problem}" if place else f"{source}: {problem}")


@dataclass(frozen=True)
class Fleet:
    """The pack fleet to draw (harness.sim.fleet.draw_fleet) and how many years to age it first."""

    packs: int = 805
    seed: int = 0
    soh_mean: float = 0.75
    aged_years: float = 0.0


@dataclass(frozen=True)
class LoadSpec:
    """The racks' power profile: a name from :data:`LOAD_PROFILES` and its fields (TOML values)."""

    profile: str = "constant"
    params: Mapping[str, object] = field(default_factory=lambda: {"level": 0.8})

    def build(self) -> Profile:
        """The harness.sim.load profile this describes."""
        reader = record_type(LOAD_PROFILES[self.profile], _PROFILE_ANNOTATIONS.get(self.profile))
        return cast(Profile, reader.bind(dict(self.params)))


@dataclass(frozen=True)
class Cloud:
    """A passing cloud over the PV plant (``harness.sim.pv.SolarPlant.cloud``): irradiance falls by
    ``depth`` (0..1) over ``ramp_s`` from ``at_s``, holds until ``at_s + duration_s``, then recovers over
    ``ramp_s``. There is no PV role: on a lab bench the operator prepares the PV simulator with it."""

    at_s: float
    depth: float
    duration_s: float
    ramp_s: float = 5.0


@dataclass(frozen=True)
class PvSpec:
    rated_w: float = 0.0
    clouds: tuple[Cloud, ...] = ()


@dataclass(frozen=True)
class GridSpec:
    voltage_pu: float = 1.0
    frequency_hz: float = 60.0


@dataclass(frozen=True)
class Initial:
    """What the plant starts as (on a lab bench: what the operator prepares)."""

    fleet: Fleet = Fleet()
    soc: float = 0.8
    load: LoadSpec = field(default_factory=LoadSpec)
    pv: PvSpec = PvSpec()
    grid: GridSpec = GridSpec()


@dataclass(frozen=True)
class Step:
    """At ``at_s`` from the start, call ``call`` (``role.method``) with ``args`` (checked, TOML values)."""

    at_s: float
    call: str
    args: Mapping[str, object] = field(default_factory=dict)

    @property
    def role(self) -> str:
        return self.call.partition(".")[0]

    @property
    def method(self) -> str:
        return self.call.partition(".")[2]


@dataclass(frozen=True)
class Criterion:
    """A criterion from :data:`CRITERIA_NAMES` and its limits (the criterion checks their meaning)."""

    name: str
    limits: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Sequence:
    """A validated sequence."""

    id: str
    title: str
    duration_s: float
    references: tuple[str, ...] = ()
    initial: Initial = field(default_factory=Initial)
    steps: tuple[Step, ...] = ()
    criteria: tuple[Criterion, ...] = ()
    source: str = field(default=STRING_SOURCE, compare=False)
    """Where it was read from (a path, :data:`STRING_SOURCE`, or the builder's name for it)."""

    def to_document(self) -> dict[str, object]:
        """The sequence as the TOML document that reads back as it."""
        initial = self.initial
        return {
            "id": self.id,
            "title": self.title,
            "references": list(self.references),
            "duration_s": self.duration_s,
            "initial": {
                "fleet": _record_document(initial.fleet),
                "soc": initial.soc,
                "load": {"profile": initial.load.profile, **initial.load.params},
                "pv": _record_document(initial.pv),
                "grid": _record_document(initial.grid),
            },
            "steps": [{"at_s": step.at_s, "call": step.call, "args": dict(step.args)} for step in self.steps],
            "criteria": [{"name": c.name, "limits": dict(c.limits)} for c in self.criteria],
        }

    def to_toml(self) -> str:
        """The sequence as TOML text that :func:`parse_sequence_text` reads back as an equal object."""
        return dump_toml(self.to_document())


def _record_document(record: object) -> dict[str, object]:
    """A record's fields as a table; a tuple of records (the PV's clouds) as an array of tables."""
    document: dict[str, object] = {}
    for item in fields(record):  # type: ignore[arg-type]
        value = getattr(record, item.name)
        document[item.name] = (
            [_record_document(entry) for entry in value] if isinstance(value, tuple) else value
        )
    return document


def load_sequence(path: str | Path, catalogue: ActionCatalogue | None = None) -> Sequence:
    """Read and validate the sequence file at ``path``; SequenceError on any mistake."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise SequenceError(
            source, "", "", f"not UTF-8 text ({error.reason} at byte {error.start})"
        ) from None
    except OSError as error:
        raise SequenceError(source, "", "", f"cannot read it: {error.strerror or error}") from None
    return parse_sequence_text(text, source, catalogue)


def parse_sequence_text(
    text: str, source: str = STRING_SOURCE, catalogue: ActionCatalogue | None = None
) -> Sequence:
    """Validate sequence TOML ``text``; ``source`` names it in errors."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SequenceError(source, "", "", f"TOML syntax error: {error}") from None
    return sequence_from_document(document, source, catalogue)


def load_library(directory: str | Path, catalogue: ActionCatalogue | None = None) -> dict[str, Sequence]:
    """Every ``*.toml`` sequence under ``directory`` (recursively, in path order) by id; SequenceError
    for the first invalid file or for an id that two files share."""
    found: dict[str, Sequence] = {}
    for path in sorted(Path(directory).rglob("*.toml")):
        sequence = load_sequence(path, catalogue)
        first = found.get(sequence.id)
        if first is not None:
            raise SequenceError(str(path), "", "id", f"{sequence.id!r} is already the id of {first.source}")
        found[sequence.id] = sequence
    return found


def sequence_from_document(
    document: Mapping[str, object], source: str, catalogue: ActionCatalogue | None = None
) -> Sequence:
    """Validate a parsed TOML document (what the file and the builder both produce)."""
    reader = _Reader(source, catalogue or standard_catalogue())
    return reader.sequence(document)


class _Reader:
    """Reads one document, raising SequenceError with its source and place."""

    def __init__(self, source: str, catalogue: ActionCatalogue) -> None:
        self.source = source
        self.catalogue = catalogue

    def error(self, where: str, key: str, problem: str) -> SequenceError:
        return SequenceError(self.source, where, key, problem)

    def table(self, where: str, key: str, value: object, allowed: tuple[str, ...]) -> Mapping[str, object]:
        if not isinstance(value, dict):
            raise self.error(where, key, f"must be a table, not {toml_type_name(value)} ({value!r})")
        for name in value:
            if name not in allowed:
                raise self.error(_join(where, key), name, f"unknown key; allowed: {', '.join(allowed)}")
        return value

    def record(
        self, where: str, cls: type, value: object, annotations: Mapping[str, object] | None = None
    ) -> dict[str, object]:
        """Fields of dataclass ``cls`` from table ``value`` at ``where`` (``[initial.fleet]``)."""
        if not isinstance(value, dict):
            parent, _, key = where.strip("[]").rpartition(".")
            problem = f"must be a table, not {toml_type_name(value)} ({value!r})"
            raise self.error(f"[{parent}]" if parent else "", key, problem)
        try:
            return record_type(cls, annotations).check("", value)  # type: ignore[return-value]
        except ArgumentError as error:
            raise self.error(where, error.key.lstrip("."), error.problem) from None

    def number(
        self, where: str, key: str, value: object, low: float, high: float, *, open_low: bool
    ) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(where, key, f"must be a number, not {toml_type_name(value)} ({value!r})")
        inside = (low < value if open_low else low <= value) and value <= high
        if not inside:
            bracket = "(" if open_low else "["
            raise self.error(where, key, f"must be within {bracket}{low}, {high}], not {value}")
        return float(value)

    def sequence(self, document: Mapping[str, object]) -> Sequence:
        self.table("", "", document, _TOP_KEYS)
        for key in ("id", "title", "duration_s"):
            if key not in document:
                raise self.error("", key, "missing")
        sequence_id = document["id"]
        if not isinstance(sequence_id, str) or not _ID.match(sequence_id):
            raise self.error("", "id", f"must be lowercase letters, digits and '-', not {sequence_id!r}")
        title = document["title"]
        if not isinstance(title, str) or not title.strip():
            raise self.error("", "title", f"must be a non-empty string, not {title!r}")
        duration_s = self.number("", "duration_s", document["duration_s"], 0.0, math.inf, open_low=True)
        if duration_s == math.inf:
            raise self.error("", "duration_s", "must be finite")
        return Sequence(
            id=sequence_id,
            title=title,
            duration_s=duration_s,
            references=self.references(document.get("references", [])),
            initial=self.initial(document.get("initial", {}), duration_s),
            steps=self.steps(document.get("steps", []), duration_s),
            criteria=self.criteria(document.get("criteria")),
            source=self.source,
        )

    def references(self, value: object) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
            raise self.error("", "references", f"must be an array of non-empty strings, not {value!r}")
        return tuple(value)

    def initial(self, value: object, duration_s: float) -> Initial:
        table = self.table("", "initial", value, _INITIAL_KEYS)
        soc = self.number("[initial]", "soc", table.get("soc", Initial.soc), 0.0, 1.0, open_low=False)
        fleet = Fleet(**self.record("[initial.fleet]", Fleet, table.get("fleet", {})))
        if fleet.packs < 1:
            raise self.error("[initial.fleet]", "packs", f"must be at least 1, not {fleet.packs}")
        if fleet.seed < 0:
            raise self.error("[initial.fleet]", "seed", f"must be 0 or more, not {fleet.seed}")
        self.number("[initial.fleet]", "soh_mean", fleet.soh_mean, 0.0, 1.0, open_low=True)
        self.number("[initial.fleet]", "aged_years", fleet.aged_years, 0.0, 100.0, open_low=False)
        pv = self.pv(table.get("pv", {}), duration_s)
        grid = GridSpec(**self.record("[initial.grid]", GridSpec, table.get("grid", {})))
        self.number("[initial.grid]", "voltage_pu", grid.voltage_pu, 0.0, 2.0, open_low=False)
        self.number("[initial.grid]", "frequency_hz", grid.frequency_hz, 0.0, 1000.0, open_low=True)
        load = self.load(table["load"]) if "load" in table else LoadSpec()
        return Initial(fleet=fleet, soc=soc, load=load, pv=pv, grid=grid)

    def pv(self, value: object, duration_s: float) -> PvSpec:
        where = "[initial.pv]"
        checked = self.record(where, PvSpec, value)
        rated_w = self.number(
            where, "rated_w", checked.get("rated_w", PvSpec.rated_w), 0.0, math.inf, open_low=False
        )
        tables = cast(list[dict[str, object]], checked.get("clouds", []))
        clouds = tuple(
            self.cloud(f"clouds[{index}]", table, duration_s) for index, table in enumerate(tables)
        )
        if clouds and rated_w == 0.0:
            raise self.error(where, "clouds", "there is no PV to shade (rated_w = 0)")
        return PvSpec(rated_w, clouds)

    def cloud(self, key: str, table: dict[str, object], duration_s: float) -> Cloud:
        """One checked ``[initial.pv] clouds`` table (its values' types already checked), its ranges."""
        where = "[initial.pv]"
        cloud = Cloud(**table)  # type: ignore[arg-type]
        self.number(where, f"{key}.at_s", cloud.at_s, 0.0, duration_s, open_low=False)
        if cloud.at_s == duration_s:
            raise self.error(where, f"{key}.at_s", f"must be before the end (duration_s = {duration_s})")
        self.number(where, f"{key}.depth", cloud.depth, 0.0, 1.0, open_low=False)
        self.number(where, f"{key}.duration_s", cloud.duration_s, 0.0, math.inf, open_low=True)
        self.number(where, f"{key}.ramp_s", cloud.ramp_s, 0.0, math.inf, open_low=False)
        return cloud

    def load(self, value: object) -> LoadSpec:
        where = "[initial.load]"
        if not isinstance(value, dict):
            raise self.error("[initial]", "load", f"must be a table, not {toml_type_name(value)} ({value!r})")
        if "profile" not in value:
            raise self.error(where, "profile", f"missing (it must be one of {', '.join(LOAD_PROFILES)})")
        profile = value["profile"]
        if not isinstance(profile, str) or profile not in LOAD_PROFILES:
            raise self.error(where, "profile", f"must be one of {', '.join(LOAD_PROFILES)}, not {profile!r}")
        params = {key: item for key, item in value.items() if key != "profile"}
        annotations = _PROFILE_ANNOTATIONS.get(profile)
        checked = self.record(where, LOAD_PROFILES[profile], params, annotations)
        spec = LoadSpec(profile, MappingProxyType(checked))
        try:
            spec.build()
        except ValueError as error:
            message = str(error)
            key = message.split(" ", 1)[0]
            raise self.error(where, key if key in checked else "profile", message) from None
        return spec

    def steps(self, value: object, duration_s: float) -> tuple[Step, ...]:
        if not isinstance(value, list):
            raise self.error("", "steps", f"must be an array of tables, not {toml_type_name(value)}")
        steps: list[Step] = []
        for index, item in enumerate(value, start=1):
            steps.append(self.step(index, item, duration_s, steps[-1].at_s if steps else 0.0))
        return tuple(steps)

    def step(self, index: int, value: object, duration_s: float, earliest_s: float) -> Step:
        at = value.get("at_s") if isinstance(value, dict) else None
        where = f"step {index}" + (f" (at {at} s)" if isinstance(at, int | float) else "")
        if not isinstance(value, dict):
            raise self.error(where, "", f"must be a table, not {toml_type_name(value)}")
        self.table(where, "", value, _STEP_KEYS)
        for key in ("at_s", "call"):
            if key not in value:
                raise self.error(where, key, "missing")
        at_s = self.number(where, "at_s", value["at_s"], 0.0, duration_s, open_low=False)
        if at_s == duration_s:
            raise self.error(where, "at_s", f"must be before the end (duration_s = {duration_s})")
        if at_s < earliest_s:
            raise self.error(
                where, "at_s", f"steps must be in time order; the step before is at {earliest_s} s"
            )
        call = value["call"]
        if not isinstance(call, str):
            raise self.error(where, "call", f"must be a string role.method, not {toml_type_name(call)}")
        args = value.get("args", {})
        if not isinstance(args, dict):
            raise self.error(where, "args", f"must be a table, not {toml_type_name(args)} ({args!r})")
        try:
            checked = self.catalogue.lookup(call).check(args)
        except (UnknownAction, ArgumentError) as error:
            raise self.error(where, error.key, error.problem) from None
        return Step(at_s, call, MappingProxyType(checked))

    def criteria(self, value: object) -> tuple[Criterion, ...]:
        if value is None:
            raise self.error("", "criteria", "missing: name at least one criterion to judge the run by")
        if not isinstance(value, list) or not value:
            raise self.error("", "criteria", f"must be a non-empty array of tables, not {value!r}")
        return tuple(self.criterion(index, item) for index, item in enumerate(value, start=1))

    def criterion(self, index: int, value: object) -> Criterion:
        where = f"criterion {index}"
        table = self.table(where, "", value, _CRITERION_KEYS)
        if "name" not in table:
            raise self.error(where, "name", f"missing (it must be one of {', '.join(CRITERIA_NAMES)})")
        name = table["name"]
        if isinstance(name, str):
            where = f"criterion {index} ({name})"
        if name not in CRITERIA_NAMES:
            raise self.error(where, "name", f"must be one of {', '.join(CRITERIA_NAMES)}, not {name!r}")
        limits = table.get("limits", {})
        if not isinstance(limits, dict):
            raise self.error(where, "limits", f"must be a table, not {toml_type_name(limits)} ({limits!r})")
        for key, limit in limits.items():
            if not _plain_limit(limit):
                problem = f"must be a number, string, boolean or array of those, not {limit!r}"
                raise self.error(where, f"limits.{key}", problem)
        return Criterion(name, MappingProxyType(dict(limits)))


def _join(where: str, key: str) -> str:
    """The table a key opens, for errors inside it: ``[initial]`` + ``fleet`` -> ``[initial.fleet]``."""
    if not key:
        return where
    if not where:
        return f"[{key}]"
    if where.startswith("["):
        return f"{where[:-1]}.{key}]"
    return f"{where} {key}"


def _plain_limit(value: object) -> bool:
    if isinstance(value, list):
        return all(_plain_limit(item) and not isinstance(item, list) for item in value)
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, bool | int | str)


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+\Z")


def dump_toml(document: Mapping[str, object]) -> str:
    """TOML text for a document of tables, arrays of tables and plain values (what a sequence holds):
    top-level tables as ``[name]`` sections, arrays of tables as ``[[name]]``, deeper tables inline."""
    lines: list[str] = []
    sections: list[tuple[str, object]] = []
    for key, value in document.items():
        if isinstance(value, dict) or _is_table_array(value):
            sections.append((key, value))
        else:
            lines.append(f"{_key(key)} = {_value(value)}")
    for key, value in sections:
        entries = value if isinstance(value, list) else [value]
        header = f"[[{_key(key)}]]" if isinstance(value, list) else f"[{_key(key)}]"
        for entry in entries:
            assert isinstance(entry, dict)
            lines.extend(["", header])
            lines.extend(f"{_key(name)} = {_value(item)}" for name, item in entry.items())
    return "\n".join(lines) + "\n"


def _is_table_array(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(item, dict) for item in value)


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _string(key)


def _string(text: str) -> str:
    """A TOML basic string: quote and backslash escaped, control characters (which TOML refuses raw,
    DEL included) as \\uXXXX, everything else as itself."""
    escaped = "".join(
        f"\\u{ord(char):04x}" if ord(char) < 0x20 or ord(char) == 0x7F else char
        for char in text.replace("\\", "\\\\").replace('"', '\\"')
    )
    return f'"{escaped}"'


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        return (
            "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }" if value else "{}"
        )
    raise TypeError(f"no TOML form for {type(value).__name__} ({value!r})")
