"""The catalogue of step actions a sequence may call: ``role.method`` with keyword arguments.

The catalogue is not written by hand: it is read from the driver classes registered for the standard
roles (:data:`STANDARD_DRIVERS`) with :mod:`inspect`, so a sequence can call exactly what the role
drivers offer and a step's ``args`` are checked against the method's parameter names and annotated
types before anything runs. An action is a public method that the instrument family itself defines
(not the shared driver and transport base: ``open``, ``close``, ``safe``, ``identity``, ``check``,
``ceiling``, ``check_resource`` belong to the runner) and that returns ``None``: steps command, the
recorder queries.

Arguments arrive as TOML values and are checked with :meth:`Action.check` (which returns them in a
normal form: ints widened to float where the parameter is a float, enum members by value) and turned
into the Python values the driver takes with :meth:`Action.bind` (enum members, dataclass records).
A parameter annotated ``X | None`` may be left out even without a default: it is then passed as
``None`` (TOML has no null). Supported parameter types: ``bool``, ``int``, ``float``, ``str``, enums,
frozen dataclasses of these (as tables), and sequences of any of them (as arrays). A public method
with a parameter of any other type is left out of the catalogue and listed in
:attr:`ActionCatalogue.skipped` with the reason.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import types
import typing
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from collections.abc import Sequence as AbcSequence
from dataclasses import dataclass
from enum import Enum
from functools import cache

from drivers.registry import driver_class

STANDARD_DRIVERS: Mapping[str, str] = types.MappingProxyType(
    {
        "battery": "chroma-17040",
        "grid": "chroma-61800",
        "load": "chroma-63200",
        "relays": "numato-relay",
        "controller": "gridhil-controller",
    }
)
"""Role -> registered driver name whose methods make up that role's actions."""


class ArgumentError(Exception):
    """Arguments that do not fit: ``key`` is the path to the value (``args.steps[1].dwell_s``)."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"{key}: {problem}")


class UnknownAction(Exception):
    """``call`` names no role or no method of the role; ``key`` is ``call``."""

    def __init__(self, problem: str) -> None:
        self.key = "call"
        self.problem = problem
        super().__init__(problem)


class UnsupportedType(Exception):
    """An annotation that a TOML value cannot express; such a method is not an action."""


class ArgType(ABC):
    """How one annotated type reads from TOML: :meth:`check` normalises, :meth:`bind` builds."""

    @property
    @abstractmethod
    def name(self) -> str:
        """What a value must be, for error messages: ``a number``."""

    @abstractmethod
    def check(self, key: str, value: object) -> object:
        """``value`` in normal form; ArgumentError naming ``key`` if it does not fit."""

    def bind(self, value: object) -> object:
        return value


def toml_type_name(value: object) -> str:
    """How TOML calls the type of a parsed value."""
    for kind, name in (
        (bool, "a boolean"),
        (int, "an integer"),
        (float, "a float"),
        (str, "a string"),
        (list, "an array"),
        (dict, "a table"),
    ):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _refuse(key: str, expected: str, value: object) -> ArgumentError:
    return ArgumentError(key, f"must be {expected}, not {toml_type_name(value)} ({value!r})")


@dataclass(frozen=True)
class ScalarType(ArgType):
    kind: type

    @property
    def name(self) -> str:
        return {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}[self.kind]

    def check(self, key: str, value: object) -> object:
        if isinstance(value, bool) != (self.kind is bool):
            raise _refuse(key, self.name, value)
        if self.kind is float and isinstance(value, int | float):
            if not math.isfinite(value):
                raise ArgumentError(key, f"must be a finite number, not {value!r}")
            return float(value)
        if not isinstance(value, self.kind):
            raise _refuse(key, self.name, value)
        return value


@dataclass(frozen=True)
class EnumType(ArgType):
    enum: type[Enum]

    @property
    def name(self) -> str:
        return "one of " + ", ".join(repr(str(member.value)) for member in self.enum)

    def check(self, key: str, value: object) -> object:
        if isinstance(value, str):
            for member in self.enum:
                if value.casefold() in (str(member.value).casefold(), member.name.casefold()):
                    return member.value
        raise _refuse(key, self.name, value)

    def bind(self, value: object) -> object:
        return self.enum(value)


@dataclass(frozen=True)
class ArrayType(ArgType):
    item: ArgType

    @property
    def name(self) -> str:
        return f"an array, each item {self.item.name}"

    def check(self, key: str, value: object) -> object:
        if not isinstance(value, list):
            raise _refuse(key, self.name, value)
        return [self.item.check(f"{key}[{index}]", item) for index, item in enumerate(value)]

    def bind(self, value: object) -> object:
        assert isinstance(value, list)
        return tuple(self.item.bind(item) for item in value)


@dataclass(frozen=True)
class TupleType(ArgType):
    """A fixed-length tuple, written as an array of exactly that many items."""

    items: tuple[ArgType, ...]

    @property
    def name(self) -> str:
        return f"an array of {len(self.items)} items ({', '.join(item.name for item in self.items)})"

    def check(self, key: str, value: object) -> object:
        if not isinstance(value, list) or len(value) != len(self.items):
            raise _refuse(key, self.name, value)
        pairs = enumerate(zip(self.items, value, strict=True))
        return [kind.check(f"{key}[{index}]", item) for index, (kind, item) in pairs]

    def bind(self, value: object) -> object:
        assert isinstance(value, list)
        return tuple(kind.bind(item) for kind, item in zip(self.items, value, strict=True))


@dataclass(frozen=True)
class RecordType(ArgType):
    """A dataclass, written as a TOML table of its fields."""

    record: type
    fields: tuple[Parameter, ...]

    @property
    def name(self) -> str:
        return f"a table with {', '.join(field.name for field in self.fields)}"

    def check(self, key: str, value: object) -> object:
        if not isinstance(value, dict):
            raise _refuse(key, self.name, value)
        return check_arguments(self.fields, value, key)

    def bind(self, value: object) -> object:
        assert isinstance(value, dict)
        return self.record(**bind_arguments(self.fields, value))


@dataclass(frozen=True)
class Parameter:
    """One keyword a step may pass; ``required`` when it has no default and cannot be None."""

    name: str
    type: ArgType
    required: bool
    optional: bool
    """Annotated ``X | None``: left out, it is passed as None."""
    default: object = None


def check_arguments(parameters: tuple[Parameter, ...], args: Mapping[str, object], key: str) -> dict:
    """Check ``args`` against ``parameters``; the normalised values, in parameter order."""
    by_name = {parameter.name: parameter for parameter in parameters}
    for name in args:
        if name not in by_name:
            allowed = ", ".join(by_name) or "none"
            raise ArgumentError(f"{key}.{name}", f"unknown argument; it takes: {allowed}")
    checked = {}
    for parameter in parameters:
        if parameter.name in args:
            checked[parameter.name] = parameter.type.check(f"{key}.{parameter.name}", args[parameter.name])
        elif parameter.required:
            raise ArgumentError(f"{key}.{parameter.name}", f"missing (it must be {parameter.type.name})")
    return checked


def bind_arguments(parameters: tuple[Parameter, ...], args: Mapping[str, object]) -> dict[str, object]:
    """Python values for checked ``args``: enums and records built, left-out ``X | None`` as None."""
    bound = {}
    for parameter in parameters:
        if parameter.name in args:
            bound[parameter.name] = parameter.type.bind(args[parameter.name])
        elif parameter.optional and parameter.default is None:
            bound[parameter.name] = None
    return bound


def arg_type(annotation: object) -> tuple[ArgType, bool]:
    """The reader for an annotation, and whether it admits None; UnsupportedType otherwise."""
    origin = typing.get_origin(annotation)
    if origin in (types.UnionType, typing.Union):
        members = [member for member in typing.get_args(annotation) if member is not type(None)]
        if len(members) != 1 or len(typing.get_args(annotation)) != 2:
            raise UnsupportedType(f"union {annotation} (only X | None is supported)")
        return arg_type(members[0])[0], True
    if annotation in (bool, int, float, str):
        return ScalarType(annotation), False  # type: ignore[arg-type]
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return EnumType(annotation), False
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return record_type(annotation), False
    items = typing.get_args(annotation)
    if origin is tuple and items and items[-1] is not Ellipsis:
        return TupleType(tuple(arg_type(item)[0] for item in items)), False
    if origin in (list, tuple, AbcSequence):
        if not items or len(items) > 2:
            raise UnsupportedType(f"sequence {annotation} without an item type")
        return ArrayType(arg_type(items[0])[0]), False
    raise UnsupportedType(f"type {annotation}")


def record_type(record: type, annotations: Mapping[str, object] | None = None) -> RecordType:
    """The reader for dataclass ``record``'s init fields; ``annotations`` replaces some fields' types
    (for a field whose own annotation a TOML value cannot express)."""
    hints = {**typing.get_type_hints(record), **(annotations or {})}
    fields = tuple(
        _parameter(field.name, hints[field.name], _field_default(field))
        for field in dataclasses.fields(record)
        if field.init
    )
    return RecordType(record, fields)


def _field_default(field: dataclasses.Field) -> object:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return inspect.Parameter.empty


def _parameter(name: str, annotation: object, default: object) -> Parameter:
    kind, optional = arg_type(annotation)
    has_default = default is not inspect.Parameter.empty
    return Parameter(
        name=name,
        type=kind,
        required=not has_default and not optional,
        optional=optional,
        default=default if has_default else None,
    )


@dataclass(frozen=True)
class Action:
    """One driver method a step may call, as ``role.method``."""

    role: str
    method: str
    parameters: tuple[Parameter, ...]
    summary: str
    """The first line of the method's docstring (may be empty)."""

    @property
    def call(self) -> str:
        return f"{self.role}.{self.method}"

    def check(self, args: Mapping[str, object]) -> dict[str, object]:
        """The normalised arguments; ArgumentError naming the first one that does not fit."""
        return check_arguments(self.parameters, args, "args")

    def bind(self, args: Mapping[str, object]) -> dict[str, object]:
        """Keyword arguments for the driver method, from arguments :meth:`check` accepted."""
        return bind_arguments(self.parameters, self.check(args))

    def invoke(self, driver: object, args: Mapping[str, object]) -> None:
        """Call the method on the role's open driver."""
        method: Callable[..., None] = getattr(driver, self.method)
        method(**self.bind(args))


@dataclass(frozen=True)
class ActionCatalogue:
    """Every action by ``role.method``; ``skipped`` lists public commands left out, with why."""

    actions: Mapping[str, Action]
    skipped: Mapping[str, str]

    def roles(self) -> list[str]:
        return sorted({action.role for action in self.actions.values()})

    def lookup(self, call: str) -> Action:
        """The action ``call`` names; UnknownAction saying what the role offers otherwise."""
        role, dot, method = call.partition(".")
        roles = self.roles()
        if not dot or not role or not method:
            raise UnknownAction(f"{call!r} is not role.method (roles: {', '.join(roles)})")
        if role not in roles:
            raise UnknownAction(f"unknown role {role!r}; roles: {', '.join(roles)}")
        action = self.actions.get(call)
        if action is None:
            offered = ", ".join(sorted(a.method for a in self.actions.values() if a.role == role))
            reason = f" ({self.skipped[call]})" if call in self.skipped else ""
            raise UnknownAction(f"role {role} has no action {method!r}{reason}; it has: {offered}")
        return action


def _infrastructure_names(cls: type, drivers: frozenset[type]) -> set[str]:
    """Public names the class's non-driver bases define (Driver, the transport base, object)."""
    names: set[str] = set()
    for base in cls.__mro__[1:]:
        if base not in drivers:
            names.update(name for name in vars(base) if not name.startswith("_"))
    return names


def actions_of(role: str, cls: type, drivers: frozenset[type]) -> tuple[list[Action], dict[str, str]]:
    """The actions of driver class ``cls`` under ``role``, and the skipped methods with reasons."""
    excluded = _infrastructure_names(cls, drivers)
    actions: list[Action] = []
    skipped: dict[str, str] = {}
    for name in sorted(dir(cls)):
        if name.startswith("_") or name in excluded:
            continue
        raw = inspect.getattr_static(cls, name)
        if not inspect.isfunction(raw):
            continue
        hints = typing.get_type_hints(raw)
        if hints.get("return") is not type(None):
            continue
        try:
            actions.append(Action(role, name, _parameters(raw, hints), _summary(raw)))
        except UnsupportedType as error:
            skipped[f"{role}.{name}"] = f"not callable from a sequence: {error}"
    return actions, skipped


def _parameters(function: Callable[..., object], hints: Mapping[str, object]) -> tuple[Parameter, ...]:
    parameters = []
    for parameter in list(inspect.signature(function).parameters.values())[1:]:
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise UnsupportedType(f"parameter {parameter.name} cannot be passed by keyword")
        if parameter.name not in hints:
            raise UnsupportedType(f"parameter {parameter.name} has no annotation")
        parameters.append(_parameter(parameter.name, hints[parameter.name], parameter.default))
    return tuple(parameters)


def _summary(function: Callable[..., object]) -> str:
    doc = inspect.getdoc(function) or ""
    return doc.splitlines()[0] if doc else ""


def catalogue_for(classes: Mapping[str, type]) -> ActionCatalogue:
    """The catalogue of the given role -> driver class mapping."""
    drivers = frozenset(classes.values())
    actions: dict[str, Action] = {}
    skipped: dict[str, str] = {}
    for role, cls in classes.items():
        found, left_out = actions_of(role, cls, drivers)
        actions.update((action.call, action) for action in found)
        skipped.update(left_out)
    return ActionCatalogue(types.MappingProxyType(actions), types.MappingProxyType(skipped))


@cache
def standard_catalogue() -> ActionCatalogue:
    """The catalogue of the standard roles' registered drivers (:data:`STANDARD_DRIVERS`)."""
    return catalogue_for({role: driver_class(name) for role, name in STANDARD_DRIVERS.items()})
