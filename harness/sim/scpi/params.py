"""SCPI parameter types, binding a program unit's data to them, and formatting query results.

A command declares its parameters as :class:`Param` instances (or a trailing :class:`Repeat`);
:func:`bind_params` converts a unit's tokens by them, raising the standard error for the first one that
does not fit. :func:`format_response` is the other direction: a handler's result as response data.
"""

from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from harness.sim.scpi.mnemonic import SUFFIX_MAX, Mnemonic
from harness.sim.scpi.parser import (
    CharacterToken,
    ErrorCode,
    ExpressionToken,
    NumberToken,
    ScpiError,
    StringToken,
    Token,
)

# ---------------------------------------------------------------- parameter types


class Param(ABC):
    """A declared parameter: converts one token or raises the standard error for it."""

    optional: bool

    @abstractmethod
    def convert(self, token: Token) -> Any:
        """The handler's value for ``token``."""


_PREFIXES = {
    "EX": 1e18, "PE": 1e15, "T": 1e12, "G": 1e9, "MA": 1e6, "K": 1e3,
    "M": 1e-3, "U": 1e-6, "N": 1e-9, "P": 1e-12, "F": 1e-15, "A": 1e-18,
}  # fmt: skip


def _suffix_multiplier(suffix: str, unit: str) -> float:
    """IEEE 488.2 §7.7.3 suffix: ``unit`` with an optional prefix; ``MHZ`` and ``MOHM`` are mega."""
    if not suffix:
        return 1.0
    if not unit:
        raise ScpiError(ErrorCode.SUFFIX_NOT_ALLOWED, suffix)
    if suffix == unit:
        return 1.0
    if suffix == "M" + unit and unit in ("HZ", "OHM"):
        return 1e6
    factor = _PREFIXES.get(suffix[: -len(unit)]) if suffix.endswith(unit) else None
    if factor is None:
        raise ScpiError(ErrorCode.INVALID_SUFFIX, suffix)
    return factor


@dataclass(frozen=True)
class Number(Param):
    """Decimal numeric data within [minimum, maximum], in SI ``unit`` (suffix optional, e.g. ``"V"``).

    ``MINimum``/``MAXimum`` stand for finite bounds and ``DEFault`` for ``default``; ``keywords`` adds
    other named values (e.g. ``{"INFinity": math.inf}``), which are not range-checked.
    """

    minimum: float = -math.inf
    maximum: float = math.inf
    unit: str = ""
    default: float | None = None
    keywords: Mapping[str, float] = field(default_factory=dict)
    optional: bool = field(default=False, kw_only=True)
    _named: dict[str, float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        named: dict[str, float] = dict(self.keywords)
        if math.isfinite(self.minimum):
            named["MINimum"] = self.minimum
        if math.isfinite(self.maximum):
            named["MAXimum"] = self.maximum
        if self.default is not None:
            named["DEFault"] = self.default
        object.__setattr__(self, "unit", self.unit.upper())
        object.__setattr__(self, "_named", _keyword_lookup(named))

    def convert(self, token: Token) -> Any:
        if isinstance(token, CharacterToken):
            if token.text not in self._named:
                raise ScpiError(ErrorCode.ILLEGAL_PARAMETER_VALUE, token.text)
            return self._coerce(self._named[token.text])
        if not isinstance(token, NumberToken):
            raise ScpiError(ErrorCode.DATA_TYPE_ERROR, "number expected")
        value = self._coerce(token.value * _suffix_multiplier(token.suffix, self.unit))
        if not self.minimum <= value <= self.maximum:
            raise ScpiError(
                ErrorCode.DATA_OUT_OF_RANGE, f"{value:g} outside {self.minimum:g}..{self.maximum:g}"
            )
        return value

    def _coerce(self, value: float) -> Any:
        return value


@dataclass(frozen=True)
class Integer(Number):
    """Numeric data rounded to an integer (IEEE 488.2 rounds rather than refuses); infinite keywords stay."""

    def _coerce(self, value: float) -> Any:
        return round(value) if math.isfinite(value) else value


@dataclass(frozen=True)
class Boolean(Param):
    """``ON|OFF`` or a number (non-zero after rounding is true, SCPI-99 §7.3)."""

    optional: bool = field(default=False, kw_only=True)

    def convert(self, token: Token) -> Any:
        if isinstance(token, CharacterToken):
            if token.text not in ("ON", "OFF"):
                raise ScpiError(ErrorCode.ILLEGAL_PARAMETER_VALUE, token.text)
            return token.text == "ON"
        if not isinstance(token, NumberToken):
            raise ScpiError(ErrorCode.DATA_TYPE_ERROR, "boolean expected")
        if token.suffix:
            raise ScpiError(ErrorCode.SUFFIX_NOT_ALLOWED, token.suffix)
        return round(token.value) != 0


@dataclass(frozen=True)
class Choice(Param):
    """Character data out of a fixed set of mnemonics, short or long form.

    ``options`` is either mnemonics as spelled in the manual (the handler gets the long form in upper
    case) or an Enum whose values are such mnemonics (the handler gets the member).
    """

    options: Iterable[str] | type[Enum]
    optional: bool = field(default=False, kw_only=True)
    _lookup: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.options, str):
            raise TypeError("Choice takes a collection of mnemonics, not one string")
        if isinstance(self.options, type) and issubclass(self.options, Enum):
            named = {member.value: member for member in self.options}
        else:
            named = {spelled: spelled.upper() for spelled in self.options}
        object.__setattr__(self, "options", tuple(named))
        object.__setattr__(self, "_lookup", _keyword_lookup(named))

    def convert(self, token: Token) -> Any:
        if not isinstance(token, CharacterToken):
            raise ScpiError(ErrorCode.DATA_TYPE_ERROR, "character data expected")
        if token.text not in self._lookup:
            raise ScpiError(ErrorCode.ILLEGAL_PARAMETER_VALUE, token.text)
        return self._lookup[token.text]


@dataclass(frozen=True)
class Text(Param):
    """String data (quoted)."""

    optional: bool = field(default=False, kw_only=True)

    def convert(self, token: Token) -> Any:
        if not isinstance(token, StringToken):
            raise ScpiError(ErrorCode.DATA_TYPE_ERROR, "string expected")
        return token.text


@dataclass(frozen=True)
class ChannelList(Param):
    """A SCPI channel list ``(@1,3,5:8)`` of channels in [minimum, maximum] -> tuple of ints."""

    minimum: int = 1
    maximum: int = SUFFIX_MAX
    optional: bool = field(default=False, kw_only=True)

    def convert(self, token: Token) -> Any:
        if not isinstance(token, ExpressionToken):
            raise ScpiError(ErrorCode.DATA_TYPE_ERROR, "channel list expected")
        body = token.text.strip()
        if not body.startswith("@"):
            raise ScpiError(ErrorCode.EXPRESSION_ERROR, "channel list must start with @")
        channels: list[int] = []
        for item in body[1:].split(","):
            first_text, _, last_text = item.partition(":")
            try:
                first = int(first_text)
                last = int(last_text) if last_text else first
            except ValueError:
                raise ScpiError(ErrorCode.EXPRESSION_ERROR, f"bad channel {item.strip()[:20]!r}") from None
            for channel in (first, last):
                if not self.minimum <= channel <= self.maximum:
                    raise ScpiError(ErrorCode.DATA_OUT_OF_RANGE, f"channel {channel}")
            step = 1 if last >= first else -1
            channels.extend(range(first, last + step, step))
        return tuple(channels)


@dataclass(frozen=True)
class Repeat:
    """The last parameter, repeated ``min_count``..``max_count`` times; the handler gets a list."""

    item: Param
    min_count: int = 1
    max_count: int = 10_000


ParamSpec = Param | Repeat


def _keyword_lookup(named: Mapping[str, Any]) -> dict[str, Any]:
    lookup: dict[str, Any] = {}
    for spelled, value in named.items():
        for key in Mnemonic.parse(spelled).keys:
            if key in lookup:
                raise ValueError(f"keyword {key} is ambiguous")
            lookup[key] = value
    return lookup


def bind_params(specs: tuple[ParamSpec, ...], tokens: tuple[Token, ...]) -> list[Any]:
    """Convert ``tokens`` by ``specs``; the count is checked before any value (-108 / -109)."""
    variadic = bool(specs) and isinstance(specs[-1], Repeat)
    if not variadic and len(tokens) > len(specs):
        raise ScpiError(ErrorCode.PARAMETER_NOT_ALLOWED, f"{len(tokens)} parameters, at most {len(specs)}")
    values: list[Any] = []
    for index, spec in enumerate(specs):
        if isinstance(spec, Repeat):
            rest = tokens[index:]
            if len(rest) < spec.min_count:
                raise ScpiError(ErrorCode.MISSING_PARAMETER)
            if len(rest) > spec.max_count:
                raise ScpiError(ErrorCode.PARAMETER_NOT_ALLOWED, f"more than {spec.max_count} values")
            values.append([spec.item.convert(token) for token in rest])
        elif index < len(tokens):
            values.append(spec.convert(tokens[index]))
        elif spec.optional:
            values.append(None)
        else:
            raise ScpiError(ErrorCode.MISSING_PARAMETER)
    return values


def check_param_specs(pattern: str, specs: tuple[ParamSpec, ...]) -> None:
    for index, spec in enumerate(specs):
        later = specs[index + 1 :]
        if isinstance(spec, Repeat) and later:
            raise ValueError(f"{pattern}: Repeat must be the last parameter")
        if (
            isinstance(spec, Param)
            and spec.optional
            and any(isinstance(s, Param) and not s.optional for s in later)
        ):
            raise ValueError(f"{pattern}: a required parameter follows an optional one")


# ---------------------------------------------------------------- responses


def quote(text: str) -> str:
    """``text`` as SCPI string response data: in double quotes, inner quotes doubled."""
    return '"' + text.replace('"', '""') + '"'


def format_response(value: Any) -> str:
    """One query result as response data.

    ``str`` is sent as is (use :func:`quote` for string data); bool -> 1/0; an Enum member -> the short
    form of its mnemonic value; integers; reals exactly (NaN -> 9.91E+37, inf -> 9.9E+37 as SCPI-99);
    any other iterable -> its elements separated by commas.
    """
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, Enum):
        return (
            Mnemonic.parse(value.value).short
            if isinstance(value.value, str)
            else format_response(value.value)
        )
    if isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return _format_real(float(value))
    if isinstance(value, Iterable):
        return ",".join(format_response(item) for item in value)
    raise TypeError(f"cannot send {type(value).__name__} as SCPI response data")


def _format_real(value: float) -> str:
    if math.isnan(value):
        return "9.91E+37"
    if math.isinf(value):
        return "9.9E+37" if value > 0 else "-9.9E+37"
    return repr(value).upper()
