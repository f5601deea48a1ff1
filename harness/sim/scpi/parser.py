"""SCPI / IEEE 488.2 program messages -> program message units.

A message is one line without its terminator. :func:`parse_message` yields its units one at a time and
raises :class:`ScpiError` at the first unit it cannot read, so the units before a broken one run, as on a
real instrument whose parser executes while it reads.

Lexical rules (IEEE 488.2 §7, simplified where noted):

* whitespace is space or tab; any other control character, DEL or non-ASCII outside a string is -101;
* header: ``*NAME[?]`` (common) or ``[:]NODE{:NODE}[?]``, mnemonics ``[A-Za-z][A-Za-z0-9_]*``;
* data: decimal numbers with an optional suffix (``230V``, ``2 MS``), ``#H/#Q/#B`` non-decimal numbers,
  character data, strings in single or double quotes (the quote doubled inside), ``( ... )`` expressions
  (channel lists); block data (``#<digit>...``) is refused with -168;
* units are separated by ``;``; a trailing ``;`` before the terminator is tolerated.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum


class ErrorCode(IntEnum):
    """The standard SCPI-99 / IEEE 488.2 error codes the stand-ins report."""

    COMMAND_ERROR = -100
    INVALID_CHARACTER = -101
    SYNTAX_ERROR = -102
    DATA_TYPE_ERROR = -104
    PARAMETER_NOT_ALLOWED = -108
    MISSING_PARAMETER = -109
    UNDEFINED_HEADER = -113
    HEADER_SUFFIX_OUT_OF_RANGE = -114
    NUMERIC_DATA_ERROR = -120
    INVALID_SUFFIX = -131
    SUFFIX_NOT_ALLOWED = -138
    INVALID_STRING_DATA = -151
    BLOCK_DATA_NOT_ALLOWED = -168
    EXPRESSION_ERROR = -170
    EXECUTION_ERROR = -200
    SETTINGS_CONFLICT = -221
    DATA_OUT_OF_RANGE = -222
    ILLEGAL_PARAMETER_VALUE = -224
    QUEUE_OVERFLOW = -350
    INPUT_BUFFER_OVERRUN = -363
    QUERY_INTERRUPTED = -410

    @property
    def message(self) -> str:
        return _MESSAGES[self]


_MESSAGES = {
    ErrorCode.COMMAND_ERROR: "Command error",
    ErrorCode.INVALID_CHARACTER: "Invalid character",
    ErrorCode.SYNTAX_ERROR: "Syntax error",
    ErrorCode.DATA_TYPE_ERROR: "Data type error",
    ErrorCode.PARAMETER_NOT_ALLOWED: "Parameter not allowed",
    ErrorCode.MISSING_PARAMETER: "Missing parameter",
    ErrorCode.UNDEFINED_HEADER: "Undefined header",
    ErrorCode.HEADER_SUFFIX_OUT_OF_RANGE: "Header suffix out of range",
    ErrorCode.NUMERIC_DATA_ERROR: "Numeric data error",
    ErrorCode.INVALID_SUFFIX: "Invalid suffix",
    ErrorCode.SUFFIX_NOT_ALLOWED: "Suffix not allowed",
    ErrorCode.INVALID_STRING_DATA: "Invalid string data",
    ErrorCode.BLOCK_DATA_NOT_ALLOWED: "Block data not allowed",
    ErrorCode.EXPRESSION_ERROR: "Expression error",
    ErrorCode.EXECUTION_ERROR: "Execution error",
    ErrorCode.SETTINGS_CONFLICT: "Settings conflict",
    ErrorCode.DATA_OUT_OF_RANGE: "Data out of range",
    ErrorCode.ILLEGAL_PARAMETER_VALUE: "Illegal parameter value",
    ErrorCode.QUEUE_OVERFLOW: "Queue overflow",
    ErrorCode.INPUT_BUFFER_OVERRUN: "Input buffer overrun",
    ErrorCode.QUERY_INTERRUPTED: "Query INTERRUPTED",
}

_DETAIL_MAX_CHARS = 120


class ScpiError(Exception):
    """An error for the instrument's error queue.

    ``code`` is a standard :class:`ErrorCode` or a positive device-dependent number; ``detail`` is the
    optional device-dependent text SCPI-99 allows after a ``;`` in the queue entry.
    """

    def __init__(self, code: int, detail: str = "") -> None:
        super().__init__(code, detail)
        self.code = code
        self.detail = detail

    @property
    def text(self) -> str:
        """The quoted part of the queue entry, without the quotes."""
        try:
            message = ErrorCode(self.code).message
        except ValueError:
            message = "Device-dependent error"
        if not self.detail:
            return message
        return f"{message};{printable(self.detail)[:_DETAIL_MAX_CHARS]}"

    def entry(self) -> str:
        """The reply of ``SYSTem:ERRor?`` for this error: ``<code>,"<text>"``."""
        return f'{self.code},"{self.text.replace(chr(34), chr(34) * 2)}"'


def printable(text: str) -> str:
    """``text`` with every character outside printable ASCII escaped, safe to echo in a reply line."""
    return "".join(c if " " <= c <= "~" else f"\\x{ord(c):02x}" for c in text)


@dataclass(frozen=True, slots=True)
class Header:
    """A program header: its mnemonics in upper case, without the colons and the ``?``."""

    mnemonics: tuple[str, ...]
    common: bool
    absolute: bool
    query: bool

    def __str__(self) -> str:
        lead = "*" if self.common else ":" if self.absolute else ""
        return lead + ":".join(self.mnemonics) + ("?" if self.query else "")


@dataclass(frozen=True, slots=True)
class NumberToken:
    """Decimal or non-decimal numeric data; ``suffix`` is the unit suffix in upper case, "" if none."""

    value: float
    suffix: str = ""


@dataclass(frozen=True, slots=True)
class CharacterToken:
    """Character data (an enum value, ``ON``, ``MAX``, ...) in upper case."""

    text: str


@dataclass(frozen=True, slots=True)
class StringToken:
    """String data with the quotes removed and doubled quotes undone."""

    text: str


@dataclass(frozen=True, slots=True)
class ExpressionToken:
    """Expression data: the text between the parentheses, e.g. ``@1:4,7`` for a channel list."""

    text: str


Token = NumberToken | CharacterToken | StringToken | ExpressionToken


@dataclass(frozen=True, slots=True)
class ProgramUnit:
    header: Header
    params: tuple[Token, ...]


_MNEMONIC = r"[A-Za-z][A-Za-z0-9_]*"
_COMMON_HEADER = re.compile(rf"\*({_MNEMONIC})(\?)?")
_HEADER = re.compile(rf"(:)?({_MNEMONIC}(?::{_MNEMONIC})*)(\?)?")
_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_SUFFIX = re.compile(r"[ \t]*([A-Za-z][A-Za-z0-9/]*)")
_CHARACTER = re.compile(_MNEMONIC)
_NON_DECIMAL = re.compile(r"#([HhQqBb])([0-9A-Fa-f]+)")
_RADIX = {"H": 16, "Q": 8, "B": 2}
# Characters that have a role somewhere in the syntax: meeting one in the wrong place is a syntax
# (or header) error; meeting any other character is an invalid character (-101).
_SYNTAX_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_ \t:;,?*\"'()#+-.")


def parse_message(text: str) -> Iterator[ProgramUnit]:
    """Yield the program message units of one message; raise :class:`ScpiError` where it breaks."""
    end = len(text)
    pos = _skip_whitespace(text, 0)
    while pos < end:
        unit, pos = _parse_unit(text, pos)
        yield unit
        pos = _skip_whitespace(text, pos)
        if pos == end:
            return
        if text[pos] != ";":
            raise _misplaced(text, pos, ErrorCode.SYNTAX_ERROR)
        pos = _skip_whitespace(text, pos + 1)


def _skip_whitespace(text: str, pos: int) -> int:
    end = len(text)
    while pos < end and text[pos] in " \t":
        pos += 1
    return pos


def _misplaced(text: str, pos: int, structural: ErrorCode) -> ScpiError:
    """The error for an unexpected character: -101 if it belongs nowhere in SCPI, else ``structural``."""
    char = text[pos]
    if char in _SYNTAX_CHARS:
        return ScpiError(structural, f"unexpected {char!r} at {pos}")
    return ScpiError(ErrorCode.INVALID_CHARACTER, f"{char!r} at {pos}")


def _parse_unit(text: str, pos: int) -> tuple[ProgramUnit, int]:
    header, pos = _parse_header(text, pos)
    end = len(text)
    if pos == end or text[pos] == ";":
        return ProgramUnit(header, ()), pos
    if text[pos] not in " \t":
        # Data glued to the header ("VOLT,5", "VOLT?5"): a header separator error, in the -100 family.
        raise _misplaced(text, pos, ErrorCode.COMMAND_ERROR)
    pos = _skip_whitespace(text, pos)
    params: list[Token] = []
    while pos < end and text[pos] != ";":
        token, pos = _parse_data(text, pos)
        params.append(token)
        pos = _skip_whitespace(text, pos)
        if pos == end or text[pos] == ";":
            break
        if text[pos] != ",":
            raise _misplaced(text, pos, ErrorCode.SYNTAX_ERROR)
        pos = _skip_whitespace(text, pos + 1)
        if pos == end or text[pos] == ";":
            raise ScpiError(ErrorCode.SYNTAX_ERROR, "data missing after ','")
    return ProgramUnit(header, tuple(params)), pos


def _parse_header(text: str, pos: int) -> tuple[Header, int]:
    match = _COMMON_HEADER.match(text, pos)
    if match is not None:
        name, query = match.groups()
        return Header((name.upper(),), common=True, absolute=False, query=bool(query)), match.end()
    match = _HEADER.match(text, pos)
    if match is None:
        # No header where one must start: ";;", "5", ",x", "::VOLT" (-100 family) or a stray byte (-101).
        raise _misplaced(text, pos, ErrorCode.COMMAND_ERROR)
    colon, path, query = match.groups()
    header = Header(tuple(path.upper().split(":")), common=False, absolute=bool(colon), query=bool(query))
    return header, match.end()


def _parse_data(text: str, pos: int) -> tuple[Token, int]:
    char = text[pos]
    if char in "\"'":
        return _parse_string(text, pos)
    if char == "(":
        return _parse_expression(text, pos)
    if char == "#":
        return _parse_non_decimal(text, pos)
    match = _DECIMAL.match(text, pos)
    if match is not None:
        return _parse_number(text, match)
    match = _CHARACTER.match(text, pos)
    if match is not None:
        return CharacterToken(match.group().upper()), match.end()
    raise _misplaced(text, pos, ErrorCode.SYNTAX_ERROR)


def _parse_number(text: str, match: re.Match[str]) -> tuple[NumberToken, int]:
    value = float(match.group())
    if not math.isfinite(value):
        raise ScpiError(ErrorCode.NUMERIC_DATA_ERROR, f"{match.group()[:20]} overflows")
    suffix = _SUFFIX.match(text, match.end())
    if suffix is None:
        return NumberToken(value), match.end()
    return NumberToken(value, suffix.group(1).upper()), suffix.end()


def _parse_non_decimal(text: str, pos: int) -> tuple[NumberToken, int]:
    if text[pos + 1 : pos + 2].isdigit():
        raise ScpiError(ErrorCode.BLOCK_DATA_NOT_ALLOWED)
    match = _NON_DECIMAL.match(text, pos)
    if match is None:
        raise ScpiError(ErrorCode.SYNTAX_ERROR, "bad non-decimal number")
    radix, digits = match.groups()
    try:
        value = float(int(digits, _RADIX[radix.upper()]))
    except ValueError:
        raise ScpiError(ErrorCode.SYNTAX_ERROR, f"bad digit in #{radix} number") from None
    except OverflowError:
        raise ScpiError(ErrorCode.NUMERIC_DATA_ERROR, "non-decimal number overflows") from None
    return NumberToken(value), match.end()


def _parse_string(text: str, pos: int) -> tuple[StringToken, int]:
    quote = text[pos]
    chunks: list[str] = []
    start = pos + 1
    while True:
        close = text.find(quote, start)
        if close < 0:
            raise ScpiError(ErrorCode.INVALID_STRING_DATA, "unterminated string")
        chunks.append(text[start:close])
        if text[close + 1 : close + 2] != quote:
            break
        chunks.append(quote)
        start = close + 2
    content = "".join(chunks)
    bad = next((c for c in content if (c < " " and c != "\t") or c == "\x7f"), None)
    if bad is not None:
        raise ScpiError(ErrorCode.INVALID_CHARACTER, f"{bad!r} in string")
    return StringToken(content), close + 1


def _parse_expression(text: str, pos: int) -> tuple[ExpressionToken, int]:
    close = text.find(")", pos + 1)
    if close < 0:
        raise ScpiError(ErrorCode.EXPRESSION_ERROR, "unterminated expression")
    content = text[pos + 1 : close]
    bad = next((c for c in content if not " " <= c <= "~"), None)
    if bad is not None:
        raise ScpiError(ErrorCode.INVALID_CHARACTER, f"{bad!r} in expression")
    return ExpressionToken(content), close + 1
