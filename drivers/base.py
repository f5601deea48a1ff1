"""What every role driver is: open, identify, act within limits, go safe, close.

A driver knows one instrument family's command set and nothing of physics or tests. Each is built
from a :class:`DriverConfig` (what the bench file says about its role) and talks through one
transport (``drivers.visa``, ``drivers.modbus``, ``drivers.serial_line``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import ClassVar, Self, TypeVar

from drivers.errors import LimitViolation

_Option = TypeVar("_Option", str, int, float, bool)


@dataclass(frozen=True)
class Identity:
    manufacturer: str
    model: str
    serial: str
    firmware: str

    def __str__(self) -> str:
        return f"{self.manufacturer} {self.model} (serial {self.serial}, firmware {self.firmware})"


@dataclass(frozen=True)
class DriverConfig:
    """One role of a bench file, as a driver needs it."""

    role: str
    resource: str
    limits: Mapping[str, float] = field(default_factory=dict)
    options: Mapping[str, object] = field(default_factory=dict)
    """Driver-specific settings from the role's table (e.g. ``visa_library``, ``timeout_s``)."""

    def option(self, name: str, default: _Option) -> _Option:
        """Option ``name`` if the role's table sets it, else ``default``; ValueError if of another type.

        An int is accepted where a float is expected (TOML writes ``timeout_s = 2``).
        """
        value = self.options.get(name, default)
        kind = type(default)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not kind:
            raise ValueError(
                f"{self.role}: option {name} = {value!r} should be {kind.__name__} (like {default!r})"
            )
        return value  # type: ignore[return-value]


@dataclass(frozen=True)
class Range:
    """What an instrument can do for one setting: the bench file may only narrow it."""

    minimum: float
    maximum: float
    unit: str


class Driver(ABC):
    """Base of every role driver.

    ``RANGES`` declares the instrument family's setting ranges by limit name; the bench file's
    ``limits`` table narrows the upper ends (``voltage_max``, ``current_max``, ...). Every setpoint
    goes through :meth:`check` before anything reaches the wire.
    """

    RANGES: ClassVar[Mapping[str, Range]] = {}
    """Limit name (as the bench file writes it, e.g. ``voltage_max``) -> the family's range."""
    OPTIONS: ClassVar[frozenset[str]] = frozenset()
    """Bench-file options this class reads; a driver accepts those of every class it derives from."""

    def __init__(self, config: DriverConfig) -> None:
        self.config = config
        self.role = config.role
        self.resource = config.resource
        known_options = set().union(*(vars(cls).get("OPTIONS", ()) for cls in type(self).__mro__))
        unknown_options = set(config.options) - known_options
        if unknown_options:
            known = ", ".join(sorted(known_options)) or "none"
            raise ValueError(f"{self.role}: unknown option(s) {sorted(unknown_options)}; known: {known}")
        unknown = set(config.limits) - set(self.RANGES)
        if unknown:
            known = ", ".join(sorted(self.RANGES)) or "none"
            problem = f"unknown limit(s) {sorted(unknown)}; known: {known}"
            raise LimitViolation(self.role, self.resource, "", problem)
        for name, value in config.limits.items():
            family = self.RANGES[name]
            if not family.minimum <= value <= family.maximum:
                raise LimitViolation(
                    self.role,
                    self.resource,
                    "",
                    f"limit {name} = {value} {family.unit} is outside what this instrument can do "
                    f"({family.minimum}..{family.maximum} {family.unit})",
                )

    def ceiling(self, name: str) -> float:
        """The upper bound of limit ``name``: the bench's if it set one, else the family's."""
        return float(self.config.limits.get(name, self.RANGES[name].maximum))

    def check(self, command: str, setting: str, value: float, limit: str) -> float:
        """``value`` if it lies within ``limit``'s range as the bench narrowed it, else LimitViolation."""
        family = self.RANGES[limit]
        low, high = family.minimum, self.ceiling(limit)
        if not low <= value <= high:
            raise LimitViolation(
                self.role,
                self.resource,
                command,
                f"{setting} = {value} {family.unit} is outside {low}..{high} {family.unit} ({limit})",
            )
        return value

    @abstractmethod
    def open(self) -> Self:
        """Connect and make sure something of the right kind answers (raises if not)."""

    @abstractmethod
    def close(self) -> None:
        """Disconnect; idempotent. Leaves outputs as they are: use :meth:`safe` for that."""

    @abstractmethod
    def identity(self) -> Identity:
        """Who answers at the resource."""

    @abstractmethod
    def safe(self) -> None:
        """Bring the outputs this driver controls to their safe state."""

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
