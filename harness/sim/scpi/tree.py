"""The command tree: SCPI patterns as manuals write them, and resolving program headers against them.

:class:`CommandTable` turns each registered pattern (``[SOURce:]VOLTage[:LEVel]``) into every spelling it
allows, as paths through a tree of mnemonic nodes; :meth:`CommandTable.resolve` walks a header down that
tree from the current path (SCPI-99 §6.2) to the handler it names.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from harness.sim.scpi.mnemonic import SUFFIX_MAX, Mnemonic
from harness.sim.scpi.params import ParamSpec, check_param_specs
from harness.sim.scpi.parser import ErrorCode, Header, ScpiError

_SUFFIX_DIGITS_MAX = 9


# ---------------------------------------------------------------- patterns


@dataclass(frozen=True, slots=True)
class _PatternNode:
    mnemonic: Mnemonic
    suffixed: bool
    optional: bool


_PATTERN_NODE = re.compile(r"\[:?([A-Za-z0-9_]+#?):?\]|:?([A-Za-z0-9_]+#?)")


def _parse_pattern(pattern: str) -> tuple[list[_PatternNode], bool]:
    """``"[SOURce:]VOLTage[:LEVel]?"`` -> its nodes and whether it is a query-only pattern."""
    body = pattern.removesuffix("?")
    nodes: list[_PatternNode] = []
    pos = 0
    for match in _PATTERN_NODE.finditer(body):
        if match.start() != pos:
            break
        pos = match.end()
        spelled = match.group(1) or match.group(2)
        nodes.append(
            _PatternNode(
                Mnemonic.parse(spelled.removesuffix("#")), spelled.endswith("#"), bool(match.group(1))
            )
        )
    if pos != len(body) or not any(not node.optional for node in nodes):
        raise ValueError(f"bad SCPI pattern {pattern!r}")
    return nodes, pattern.endswith("?")


# ---------------------------------------------------------------- command tree


@dataclass(frozen=True, slots=True)
class _Handler:
    pattern: str
    function: Callable[..., Any]
    params: tuple[ParamSpec, ...]
    suffix_count: int
    suffix_range: tuple[int, int]
    takes_session: bool


@dataclass(frozen=True, slots=True)
class _Route:
    """A handler reached by one spelling of its pattern; ``slots`` places the suffixes met on the way."""

    handler: _Handler
    slots: tuple[int, ...]

    def suffixes(self, met: tuple[int, ...]) -> list[int]:
        values = [1] * self.handler.suffix_count
        for slot, value in zip(self.slots, met, strict=True):
            values[slot] = value
        low, high = self.handler.suffix_range
        for value in values:
            if not low <= value <= high:
                raise ScpiError(ErrorCode.HEADER_SUFFIX_OUT_OF_RANGE, str(value))
        return values


class _Node:
    __slots__ = ("children", "literal", "query", "setter", "suffixed")

    def __init__(self) -> None:
        self.children: dict[tuple[Mnemonic, bool], _Node] = {}
        self.literal: dict[str, _Node] = {}
        self.suffixed: dict[str, _Node] = {}
        self.setter: _Route | None = None
        self.query: _Route | None = None

    def child(self, mnemonic: Mnemonic, suffixed: bool) -> _Node:
        """The child for a pattern node, created if new; a spelling two children would share is an error."""
        existing = self.children.get((mnemonic, suffixed))
        if existing is not None:
            return existing
        for key in mnemonic.keys:
            clash = key in self.literal or key in self.suffixed
            if suffixed:
                clash = clash or any(word.rstrip("0123456789") == key for word in self.literal)
            else:
                clash = clash or key.rstrip("0123456789") in self.suffixed
            if clash:
                raise ValueError(f"node {key} is ambiguous with a sibling")
        node = _Node()
        self.children[(mnemonic, suffixed)] = node
        lookup = self.suffixed if suffixed else self.literal
        for key in mnemonic.keys:
            lookup[key] = node
        return node

    def step(self, word: str) -> tuple[_Node, int | None] | None:
        """The child a header mnemonic names, with its numeric suffix (1 if omitted) if it takes one."""
        node = self.literal.get(word)
        if node is not None:
            return node, None
        base = word.rstrip("0123456789")
        node = self.suffixed.get(base)
        if node is None:
            return None
        digits = word[len(base) :]
        if len(digits) > _SUFFIX_DIGITS_MAX:
            raise ScpiError(ErrorCode.HEADER_SUFFIX_OUT_OF_RANGE, f"{word[:20]}...")
        return node, int(digits) if digits else 1

    def attach(self, route: _Route, query: bool, pattern: str) -> None:
        current = self.query if query else self.setter
        if current is not None:
            raise ValueError(f"{pattern} overlaps {current.handler.pattern}")
        if query:
            self.query = route
        else:
            self.setter = route


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where the parser stands in the tree (SCPI-99 §6.2 current path), with the suffixes met so far."""

    node: _Node
    suffixes: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Registration:
    """One pattern with its handlers, as given to :meth:`CommandTable.register`.

    ``takes_session`` passes the calling session as the handlers' first argument (the engine's built-in
    commands need it; an instrument's commands registered through ``add`` never get it).
    """

    pattern: str
    setter: Callable[..., Any] | None
    query: Callable[..., Any] | None
    params: tuple[ParamSpec, ...]
    query_params: tuple[ParamSpec, ...]
    suffix_range: tuple[int, int]
    takes_session: bool


class CommandTable:
    """An instrument's commands, registered by SCPI pattern as the manual writes it.

    ``add("[SOURce:]VOLTage[:LEVel]", setter=f, query=g, params=(Number(0, 300, "V"),))``: upper case is
    the short form, brackets mark optional nodes, ``#`` after a node takes a numeric suffix
    (``"BATTery#:OUTPut"``; omitted means 1), a trailing ``?`` registers a query-only pattern, and a pattern
    starting with ``*`` is a common command. Handlers are called with the node suffixes first, then the
    converted parameters; a query handler returns the reply value (see :func:`format_response`) and may
    raise :class:`ScpiError` (e.g. -221 settings conflict) like the setter.
    """

    def __init__(self) -> None:
        self._root = _Node()
        self._common: dict[str, _Node] = {}
        self._registrations: list[Registration] = []

    def add(
        self,
        pattern: str,
        *,
        setter: Callable[..., Any] | None = None,
        query: Callable[..., Any] | None = None,
        params: Sequence[ParamSpec] = (),
        query_params: Sequence[ParamSpec] = (),
        suffix_range: tuple[int, int] = (1, SUFFIX_MAX),
    ) -> None:
        self.register(
            Registration(pattern, setter, query, tuple(params), tuple(query_params), suffix_range, False)
        )

    def include(self, other: CommandTable) -> None:
        """Register every command of ``other`` here too."""
        for registration in other._registrations:
            self.register(registration)

    @property
    def root(self) -> Cursor:
        return Cursor(self._root)

    def register(self, reg: Registration) -> None:
        """Add ``reg`` to the tree; a bad pattern or parameter list, or an overlap, is a ValueError."""
        if reg.pattern.startswith("*"):
            nodes: list[_PatternNode] = []
            query_only = reg.pattern.endswith("?")
        else:
            nodes, query_only = _parse_pattern(reg.pattern)
        if query_only and reg.setter is not None:
            raise ValueError(f"{reg.pattern}: a query-only pattern takes no setter")
        if reg.setter is None and reg.query is None:
            raise ValueError(f"{reg.pattern}: no handler")
        if (reg.params and reg.setter is None) or (reg.query_params and reg.query is None):
            raise ValueError(f"{reg.pattern}: parameters for a missing handler")
        check_param_specs(reg.pattern, reg.params)
        check_param_specs(reg.pattern, reg.query_params)
        suffix_count = sum(node.suffixed for node in nodes)
        for function, specs, query in ((reg.setter, reg.params, False), (reg.query, reg.query_params, True)):
            if function is None:
                continue
            handler = _Handler(
                reg.pattern, function, specs, suffix_count, reg.suffix_range, reg.takes_session
            )
            if reg.pattern.startswith("*"):
                name = reg.pattern.removeprefix("*").removesuffix("?").upper()
                self._common.setdefault(name, _Node()).attach(_Route(handler, ()), query, reg.pattern)
            else:
                self._insert(nodes, handler, query)
        self._registrations.append(reg)

    def _insert(self, nodes: list[_PatternNode], handler: _Handler, query: bool) -> None:
        slot_of = {id(node): slot for slot, node in enumerate(n for n in nodes if n.suffixed)}
        optional = [node for node in nodes if node.optional]
        for present in itertools.product((False, True), repeat=len(optional)):
            omitted = {id(node) for node, keep in zip(optional, present, strict=True) if not keep}
            spelling = [node for node in nodes if id(node) not in omitted]
            target = self._root
            for node in spelling:
                target = target.child(node.mnemonic, node.suffixed)
            slots = tuple(slot_of[id(node)] for node in spelling if node.suffixed)
            target.attach(_Route(handler, slots), query, handler.pattern)

    def resolve(self, header: Header, cursor: Cursor) -> tuple[_Route, list[int], Cursor]:
        """The route a header names from ``cursor``, its suffixes, and the cursor for the next unit."""
        if header.common:
            node = self._common.get(header.mnemonics[0])
            route = None if node is None else node.query if header.query else node.setter
            if route is None:
                raise ScpiError(ErrorCode.UNDEFINED_HEADER, str(header))
            return route, [], cursor
        if header.absolute:
            cursor = self.root
        *path, leaf = header.mnemonics
        for word in path:
            cursor = self._descend(cursor, word, header)
        target = self._descend(cursor, leaf, header)
        route = target.node.query if header.query else target.node.setter
        if route is None:
            raise ScpiError(ErrorCode.UNDEFINED_HEADER, str(header))
        return route, route.suffixes(target.suffixes), cursor

    @staticmethod
    def _descend(cursor: Cursor, word: str, header: Header) -> Cursor:
        found = cursor.node.step(word)
        if found is None:
            raise ScpiError(ErrorCode.UNDEFINED_HEADER, str(header))
        node, suffix = found
        return Cursor(node, cursor.suffixes if suffix is None else (*cursor.suffixes, suffix))
