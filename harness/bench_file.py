"""The bench file: which driver reaches which instrument for each role, as TOML (never code).

:func:`load_bench_file` reads and validates a whole file into a :class:`BenchSpec` before any
instrument is touched: every mistake (unknown role or key, wrong type, unknown driver, a resource
the driver's transport cannot parse, a limit the instrument does not know or cannot reach, a TOML
syntax error) is one :class:`BenchFileError` naming the file, the table and the key.
:meth:`Bench.open` then builds the drivers through the registry and opens them.
The format is documented for users in ``docs/bench-file.md``.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Self

from drivers.base import Driver, DriverConfig, Identity
from drivers.errors import LimitViolation
from drivers.modbus import check_modbus_resource
from drivers.registry import driver_class

ROLE_NAMES = ("battery", "grid", "load", "load_meter", "pcc_meter", "relays", "controller")
DEFAULT_SAFE_DEADLINE_S = 5.0
STRING_SOURCE = "<bench text>"

_TOP_KEYS = ("bench", "roles", "sim")
_BENCH_KEYS = ("name", "safe_deadline_s", "racks_rated_w", "nominal_phase_v")
_ROLE_KEYS = ("driver", "resource", "limits", "calibration_due", "expect", "options")
_EXPECT_KEYS = ("model", "firmware")
_SIM_KEYS = ("pcs", "seed", "packs")


class BenchFileError(Exception):
    """A bench file that cannot be used, and where in it: ``lab.toml: [roles.battery] resource: ...``."""

    def __init__(self, source: str, table: str, key: str, problem: str) -> None:
        self.source = source
        self.table = table
        self.key = key
        self.problem = problem
        where = " ".join(part for part in (f"[{table}]" if table else "", key) if part)
        super().__init__(f"{source}: {where}: {problem}" if where else f"{source}: {problem}")


class BenchOpenError(Exception):
    """A role's instrument could not be opened; the roles opened before it were closed again."""

    def __init__(self, role: str, driver: str, resource: str, cause: Exception) -> None:
        self.role = role
        self.cause = cause
        super().__init__(f"role {role} ({driver} at {resource}) did not open: {cause}")


class BenchCloseError(Exception):
    """Closing one or more drivers failed (every driver was still asked to close)."""

    def __init__(self, failures: Mapping[str, Exception]) -> None:
        self.failures = dict(failures)
        listed = "; ".join(f"{role}: {error}" for role, error in self.failures.items())
        super().__init__(f"closing the bench failed for {listed}")


@dataclass(frozen=True)
class Expectation:
    """What ``gridhil check`` expects a role's identity to contain (case-insensitive substrings)."""

    model: str | None = None
    firmware: str | None = None

    def mismatches(self, identity: Identity) -> list[str]:
        """One sentence per expected field the identity does not contain; empty when as expected."""
        found = []
        for name, wanted, actual in (
            ("model", self.model, identity.model),
            ("firmware", self.firmware, identity.firmware),
        ):
            if wanted is not None and wanted.casefold() not in actual.casefold():
                found.append(f"{name} {wanted!r} expected, instrument says {actual!r}")
        return found


@dataclass(frozen=True)
class RoleSpec:
    """One ``[roles.<name>]`` table, validated."""

    role: str
    driver: str
    resource: str
    limits: Mapping[str, float] = field(default_factory=dict)
    options: Mapping[str, object] = field(default_factory=dict)
    calibration_due: date | None = None
    expect: Expectation = Expectation()

    def config(self) -> DriverConfig:
        return DriverConfig(self.role, self.resource, self.limits, self.options)

    def build(self) -> Driver:
        """A new, unopened driver for this role, from the registry."""
        return driver_class(self.driver)(self.config())

    def calibration_overdue(self, today: date) -> bool:
        return self.calibration_due is not None and self.calibration_due < today


@dataclass(frozen=True)
class SimSpec:
    """The ``[sim]`` table that ``gridhil sim`` writes: where the plant's PCS/BMS face listens."""

    pcs: str
    seed: int | None = None
    packs: int | None = None


@dataclass(frozen=True)
class BenchSpec:
    """A validated bench file."""

    name: str
    source: str
    """Where it was read from (the path, or :data:`STRING_SOURCE`)."""
    roles: Mapping[str, RoleSpec]
    safe_deadline_s: float = DEFAULT_SAFE_DEADLINE_S
    """How long each driver's ``safe()`` may take before the safe-state guard reports it and moves on."""
    sim: SimSpec | None = None
    racks_rated_w: float | None = None
    """The compute racks' rated power: a sequence's load levels are shares of it (needed to run one)."""
    nominal_phase_v: float | None = None
    """The rack bus's nominal line-to-neutral voltage: bus voltage in pu is a reading over it."""


def load_bench_file(path: str | Path) -> BenchSpec:
    """Read and validate the bench file at ``path``; BenchFileError on any mistake."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        problem = f"not UTF-8 text ({error.reason} at byte {error.start})"
        raise BenchFileError(source, "", "", problem) from None
    except OSError as error:
        raise BenchFileError(source, "", "", f"cannot read it: {error.strerror or error}") from None
    return parse_bench_text(text, source)


def parse_bench_text(text: str, source: str = STRING_SOURCE) -> BenchSpec:
    """Validate bench-file TOML ``text``; ``source`` names it in errors."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise BenchFileError(source, "", "", f"TOML syntax error: {error}") from None
    top = _Table(source, "", document, _TOP_KEYS)
    bench = top.table("bench", _BENCH_KEYS, required=True)
    name = bench.required_string("name")
    deadline_s = bench.number("safe_deadline_s")
    if deadline_s is not None and deadline_s <= 0:
        raise bench.error("safe_deadline_s", f"must be more than 0 s, not {deadline_s}")
    ratings = {key: bench.number(key) for key in ("racks_rated_w", "nominal_phase_v")}
    for key, value in ratings.items():
        if value is not None and not 0 < value < math.inf:
            raise bench.error(key, f"must be a finite number more than 0, not {value}")
    roles = top.table("roles", ROLE_NAMES, required=True, what="role")
    specs = {role: _role(roles.table(role, _ROLE_KEYS, required=True), role) for role in roles}
    if not specs:
        raise roles.error("", f"no roles: name at least one of {', '.join(ROLE_NAMES)}")
    sim = top.table("sim", _SIM_KEYS)
    return BenchSpec(
        name=name,
        source=source,
        roles=MappingProxyType(specs),
        safe_deadline_s=DEFAULT_SAFE_DEADLINE_S if deadline_s is None else deadline_s,
        sim=_sim(sim) if sim.present else None,
        **ratings,
    )


def _role(table: _Table, role: str) -> RoleSpec:
    driver = table.required_string("driver")
    resource = table.required_string("resource")
    expect = table.table("expect", _EXPECT_KEYS)
    spec = RoleSpec(
        role=role,
        driver=driver,
        resource=resource,
        limits=MappingProxyType(table.table("limits").numbers()),
        options=MappingProxyType(table.table("options").data),
        calibration_due=table.date("calibration_due"),
        expect=Expectation(model=expect.string("model"), firmware=expect.string("firmware")),
    )
    _check_with_driver(table, spec)
    return spec


def _check_with_driver(table: _Table, spec: RoleSpec) -> None:
    """What only the driver knows: that it exists, parses the resource and accepts the limits.

    Building a driver does not touch its instrument (only ``open()`` does), so this stays offline.
    """
    try:
        cls = driver_class(spec.driver)
    except KeyError as error:
        raise table.error("driver", str(error.args[0])) from None
    check_resource = getattr(cls, "check_resource", None)
    if check_resource is not None:
        try:
            check_resource(spec.resource)
        except ValueError as error:
            problem = f"{spec.resource!r} is not a resource {spec.driver} can use: {error}"
            raise table.error("resource", problem) from None
    try:
        cls(spec.config())
    except (LimitViolation, ValueError, TypeError) as error:
        problem = error.problem if isinstance(error, LimitViolation) else str(error)
        raise table.error(_refused_key(spec, problem), f"{spec.driver} refuses it: {problem}") from None


def _refused_key(spec: RoleSpec, problem: str) -> str:
    """Which key a driver's refusal of the role's settings is about: ``limits`` when it names one of
    them (or they are all the role sets), else ``options``."""
    if any(name in problem for name in spec.limits) or (spec.limits and not spec.options):
        return "limits"
    return "options" if spec.options else "driver"


def _sim(table: _Table) -> SimSpec:
    pcs = table.required_string("pcs")
    try:
        check_modbus_resource(pcs)
    except ValueError as error:
        raise table.error("pcs", f"{pcs!r} is not a Modbus resource: {error}") from None
    packs = table.integer("packs")
    if packs is not None and packs < 1:
        raise table.error("packs", f"must be at least 1, not {packs}")
    return SimSpec(pcs=pcs, seed=table.integer("seed"), packs=packs)


def _type_name(value: object) -> str:
    """How TOML calls the type of a parsed value (datetime before date: it is a subclass)."""
    for kind, name in (
        (bool, "a boolean"),
        (int, "an integer"),
        (float, "a float"),
        (str, "a string"),
        (datetime, "a date-time"),
        (date, "a date"),
        (time, "a time"),
        (list, "an array"),
        (dict, "a table"),
    ):
        if isinstance(value, kind):
            return name
    return type(value).__name__


class _Table:
    """One TOML table being read, with its place in the file for error messages.

    Unknown keys are refused as soon as the table is opened (``allowed``); a table that is absent
    reads as empty, with ``present`` False.
    """

    def __init__(
        self,
        source: str,
        name: str,
        data: Mapping[str, object],
        allowed: tuple[str, ...] | None = None,
        *,
        present: bool = True,
        what: str = "key",
    ) -> None:
        self.source = source
        self.name = name
        self.data = data
        self.present = present
        if allowed is not None:
            for key in data:
                if key not in allowed:
                    raise self.error(key, f"unknown {what}; allowed: {', '.join(allowed)}")

    def error(self, key: str, problem: str) -> BenchFileError:
        return BenchFileError(self.source, self.name, key, problem)

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def _get(self, key: str, kinds: tuple[type, ...], expected: str, required: bool) -> object:
        value = self.data.get(key)
        if value is None:
            if required:
                raise self.error(key, f"missing (it must be {expected})")
            return None
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            raise self.error(key, f"must be {expected}, not {_type_name(value)} ({value!r})")
        return value

    def table(
        self, key: str, allowed: tuple[str, ...] | None = None, *, required: bool = False, what: str = "key"
    ) -> _Table:
        name = f"{self.name}.{key}" if self.name else key
        data = self._get(key, (dict,), "a table", required)
        if not isinstance(data, dict):
            return _Table(self.source, name, {}, present=False)
        return _Table(self.source, name, data, allowed, what=what)

    def string(self, key: str) -> str | None:
        value = self._get(key, (str,), "a string", required=False)
        if not isinstance(value, str):
            return None
        if not value.strip():
            raise self.error(key, "must not be empty")
        return value

    def required_string(self, key: str) -> str:
        value = self.string(key)
        if value is None:
            raise self.error(key, "missing (it must be a string)")
        return value

    def number(self, key: str) -> float | None:
        value = self._get(key, (int, float), "a number", required=False)
        return float(value) if isinstance(value, int | float) else None

    def numbers(self) -> dict[str, float]:
        """Every key of the table, each of which must be a number."""
        values = {}
        for key in self.data:
            value = self.number(key)
            assert value is not None
            values[key] = value
        return values

    def integer(self, key: str) -> int | None:
        value = self._get(key, (int,), "an integer", required=False)
        return value if isinstance(value, int) else None

    def date(self, key: str) -> date | None:
        value = self._get(key, (date,), "a date like 2027-03-01", required=False)
        if isinstance(value, datetime):
            raise self.error(key, f"must be a date like 2027-03-01, not a date-time ({value.isoformat()})")
        return value if isinstance(value, date) else None


class Bench:
    """Open drivers by role, built from a :class:`BenchSpec`. Closing leaves outputs as they are:
    wrap the use in :class:`harness.safety.SafeStateGuard` to bring them to a safe state first."""

    def __init__(self, spec: BenchSpec, drivers: Mapping[str, Driver]) -> None:
        self.spec = spec
        self.drivers: Mapping[str, Driver] = MappingProxyType(dict(drivers))

    @classmethod
    def open(cls, spec: BenchSpec) -> Self:
        """Build and open every role's driver, in file order; if one fails, close those already open
        and raise :class:`BenchOpenError` naming the role."""
        opened: dict[str, Driver] = {}
        try:
            for role, role_spec in spec.roles.items():
                try:
                    opened[role] = open_driver(role_spec)
                except Exception as error:
                    raise BenchOpenError(role, role_spec.driver, role_spec.resource, error) from error
        except BaseException:
            close_drivers(opened)
            raise
        return cls(spec, opened)

    def __getitem__(self, role: str) -> Driver:
        try:
            return self.drivers[role]
        except KeyError:
            known = ", ".join(self.drivers)
            raise KeyError(f"bench {self.spec.name!r} has no role {role!r}; it has: {known}") from None

    def __contains__(self, role: object) -> bool:
        return role in self.drivers

    def close(self) -> None:
        """Close every driver, even when one fails; BenchCloseError afterwards if any did."""
        failures = close_drivers(self.drivers)
        if failures:
            raise BenchCloseError(failures)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_driver(spec: RoleSpec) -> Driver:
    """Build the role's driver and open it; if opening fails it is closed again and the error raised."""
    driver = spec.build()
    try:
        driver.open()
    except BaseException:
        # The open error is what the user needs; a failure to close the half-open link would hide it.
        with suppress(Exception):
            driver.close()
        raise
    return driver


def close_drivers(drivers: Mapping[str, Driver]) -> dict[str, Exception]:
    """Close drivers in reverse order of opening; the failures by role."""
    failures: dict[str, Exception] = {}
    for role, driver in reversed(list(drivers.items())):
        try:
            driver.close()
        except Exception as error:
            failures[role] = error
    return failures
