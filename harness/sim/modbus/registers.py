"""Register maps declared as data: named points, their wire types and scale factors, access, both numberings.

Numbering (the off-by-one between manuals and the wire is the classic meter-map bug, protocols.md §5.5),
every point carries all three:

* ``address`` (``pdu_address``) -- the PDU address, 0-based, what travels on the wire and what pymodbus
  takes.
* ``register_number`` -- ``address + 1``, the 1-based number most vendor manuals and the SunSpec
  specification print ("40001" for the ``SunS`` marker at PDU address 40000).
* ``reference`` -- the Modicon holding-register reference: ``40001 + address`` in the 5-digit form while it
  stays below 50000 (addresses 0-9998), ``400001 + address`` in the 6-digit form from address 9999 on.

Point types are the SunSpec base types, a superset of what vendor maps use; multi-register values are
big-endian in both bytes and words. Every type has a "not implemented" pattern, written for ``None`` and read
back as ``None``. Integer points may carry a scale factor ``sf`` (value = raw x 10^sf): a fixed exponent or
the name of a ``sunssf`` point of the same map, as SunSpec does.

Semantics a :class:`RegisterMap` gives the server (documented here because real devices differ):

* Reads are computed on demand, every point from its source (a per-point getter, a block getter, or the
  stored value), all under the owner's lock so one request sees one consistent plant state. A read may
  start or end inside a multi-register point; the registers returned are the matching part of the value.
* Reads or writes touching an address no point covers: exception 02 (ILLEGAL DATA ADDRESS).
* Writes must cover whole points, every one writable, else exception 02 -- the register is not a writable
  address, which is also what pymodbus's own read-only flag answers. Values are decoded and validated for
  every point before anything is applied; a "not implemented" pattern or a value the validator refuses gives
  exception 03 (ILLEGAL DATA VALUE). Either way nothing changes: a multi-register write is all-or-nothing.
* Apply callbacks must not fail (validators decide); one that raises turns into exception 04 upstream.
"""

from __future__ import annotations

import math
import numbers
import struct
import threading
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from enum import Enum, IntEnum
from fractions import Fraction
from functools import cache
from typing import Protocol

Value = int | float | str | None
"""A point's engineering value: int or float (scaled), str (strings), None (not implemented)."""

MAX_ADDRESS = 0xFFFF
_FIVE_DIGIT_LAST_ADDRESS = 9998  # 40001 + 9998 = 49999, the last 5-digit 4xxxx reference
_FLOAT32_NAN = 0x7FC00000
_SUNSSF_LIMIT = 10


class ExceptionCode(IntEnum):
    """Modbus exception codes a register map answers with."""

    ILLEGAL_FUNCTION = 0x01
    ILLEGAL_DATA_ADDRESS = 0x02
    ILLEGAL_DATA_VALUE = 0x03
    SERVER_DEVICE_FAILURE = 0x04


class ModbusError(Exception):
    """A request the map refuses; ``code`` is the Modbus exception code to answer with."""

    def __init__(self, code: ExceptionCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code


class EncodeError(ValueError):
    """A value that the point's type cannot carry (out of range, too long, or its not-implemented pattern)."""


class Access(Enum):
    R = "R"
    RW = "RW"


class _Kind(Enum):
    SIGNED = "signed"
    UNSIGNED = "unsigned"
    """Sentinel all ones: uint, enum and bitfield types."""
    ACCUMULATOR = "accumulator"
    """Unsigned, rolls over, sentinel 0."""
    SCALE_FACTOR = "scale factor"
    FLOAT = "float"
    STRING = "string"
    PAD = "pad"


class PointType(Enum):
    """SunSpec base types; the value is the name SunSpec model definitions use."""

    INT16 = "int16"
    UINT16 = "uint16"
    ACC16 = "acc16"
    ENUM16 = "enum16"
    BITFIELD16 = "bitfield16"
    SUNSSF = "sunssf"
    PAD = "pad"
    INT32 = "int32"
    UINT32 = "uint32"
    ACC32 = "acc32"
    ENUM32 = "enum32"
    BITFIELD32 = "bitfield32"
    INT64 = "int64"
    UINT64 = "uint64"
    ACC64 = "acc64"
    FLOAT32 = "float32"
    STRING = "string"

    @property
    def width(self) -> int:
        """Registers per value (0 for strings: their size is the point's)."""
        return _TYPES[self][0]

    @property
    def scalable(self) -> bool:
        """Whether a point of this type may have a scale factor."""
        return self in _SCALABLE


_TYPES: dict[PointType, tuple[int, _Kind]] = {
    PointType.INT16: (1, _Kind.SIGNED),
    PointType.UINT16: (1, _Kind.UNSIGNED),
    PointType.ACC16: (1, _Kind.ACCUMULATOR),
    PointType.ENUM16: (1, _Kind.UNSIGNED),
    PointType.BITFIELD16: (1, _Kind.UNSIGNED),
    PointType.SUNSSF: (1, _Kind.SCALE_FACTOR),
    PointType.PAD: (1, _Kind.PAD),
    PointType.INT32: (2, _Kind.SIGNED),
    PointType.UINT32: (2, _Kind.UNSIGNED),
    PointType.ACC32: (2, _Kind.ACCUMULATOR),
    PointType.ENUM32: (2, _Kind.UNSIGNED),
    PointType.BITFIELD32: (2, _Kind.UNSIGNED),
    PointType.INT64: (4, _Kind.SIGNED),
    PointType.UINT64: (4, _Kind.UNSIGNED),
    PointType.ACC64: (4, _Kind.ACCUMULATOR),
    PointType.FLOAT32: (2, _Kind.FLOAT),
    PointType.STRING: (0, _Kind.STRING),
}
_SCALABLE = frozenset(
    {
        PointType.INT16,
        PointType.UINT16,
        PointType.ACC16,
        PointType.INT32,
        PointType.UINT32,
        PointType.ACC32,
        PointType.INT64,
        PointType.UINT64,
        PointType.ACC64,
    }
)


def sentinel(point_type: PointType, size: int | None = None) -> list[int]:
    """The registers of ``point_type``'s "not implemented" pattern (``size`` registers for strings)."""
    return encode(point_type, None, size=size)


def encode(
    point_type: PointType, value: Value, *, size: int | None = None, scale_factor: int = 0
) -> list[int]:
    """Registers for ``value`` (engineering units; raw = round(value / 10^scale_factor)).

    ``None`` and float NaN encode as the type's not-implemented pattern. Raises :class:`EncodeError` when the
    value does not fit, including when it would collide with the not-implemented pattern.
    """
    return list(_codec(point_type, size).encode(value, scale_factor))


def decode(point_type: PointType, registers: Sequence[int], *, scale_factor: int = 0) -> Value:
    """The engineering value of ``registers`` (one point's worth), None for the not-implemented pattern.

    Scaled integers come back as int when ``scale_factor >= 0`` and as float otherwise.
    """
    codec = _codec(point_type, len(registers) if point_type is PointType.STRING else None)
    if len(registers) != codec.size:
        raise ValueError(f"{point_type.value} is {codec.size} registers, got {len(registers)}")
    return codec.decode(registers, scale_factor)


class _Codec(Protocol):
    """Converts one point's value to and from its registers; built once per type and size."""

    size: int

    def encode(self, value: Value, scale_factor: int) -> Sequence[int]: ...

    def decode(self, registers: Sequence[int], scale_factor: int) -> Value: ...


@cache
def _codec(point_type: PointType, size: int | None) -> _Codec:
    width, kind = _TYPES[point_type]
    if kind is _Kind.STRING:
        if size is None or size < 1:
            raise EncodeError("a string point needs its size in registers")
        return _StringCodec(size)
    if kind is _Kind.PAD:
        return _PadCodec()
    if kind is _Kind.FLOAT:
        return _Float32Codec()
    return _IntegerCodec(point_type, width, kind)


_MULTIPLIERS = {factor: 10.0**-factor for factor in range(-_SUNSSF_LIMIT, _SUNSSF_LIMIT + 1)}


def _join(registers: Sequence[int]) -> int:
    raw = 0
    for register in registers:
        raw = (raw << 16) | register
    return raw


def _split(raw: int, width: int) -> tuple[int, ...]:
    return tuple((raw >> (16 * shift)) & 0xFFFF for shift in range(width - 1, -1, -1))


class _IntegerCodec:
    """Signed, unsigned, enum, bitfield, accumulator and scale-factor types."""

    def __init__(self, point_type: PointType, width: int, kind: _Kind) -> None:
        self._type = point_type
        self.size = width
        self._modulus = 1 << (16 * width)
        half = self._modulus >> 1
        self._signed = kind in (_Kind.SIGNED, _Kind.SCALE_FACTOR)
        self._rolls_over = kind is _Kind.ACCUMULATOR
        if kind is _Kind.SCALE_FACTOR:
            self._low, self._high, self._not_implemented = -_SUNSSF_LIMIT, _SUNSSF_LIMIT, half
        elif self._signed:
            self._low, self._high, self._not_implemented = -half + 1, half - 1, half
        elif self._rolls_over:
            self._low, self._high, self._not_implemented = 0, self._modulus - 1, 0
        else:
            self._low, self._high, self._not_implemented = 0, self._modulus - 2, self._modulus - 1
        self._sentinel = _split(self._not_implemented, width)

    def encode(self, value: Value, scale_factor: int) -> Sequence[int]:
        if isinstance(value, float):  # the common case first: plant readings, numpy float64 included
            if value != value:  # NaN
                return self._sentinel
            try:
                raw = round(value * _MULTIPLIERS[scale_factor])
            except (KeyError, OverflowError) as exc:  # a scale factor outside -10..10, or round(inf)
                raise EncodeError(f"{self._type.value} cannot carry {value!r} at sf {scale_factor}") from exc
        elif isinstance(value, int):  # exact, also for 64-bit values
            raw = value * 10**-scale_factor if scale_factor <= 0 else round(Fraction(value, 10**scale_factor))
        elif value is None:
            return self._sentinel
        elif isinstance(value, numbers.Integral):  # numpy integers
            return self.encode(int(value), scale_factor)
        elif isinstance(value, numbers.Real):  # numpy float32
            return self.encode(float(value), scale_factor)
        else:
            raise EncodeError(f"{self._type.value} cannot carry {value!r}")
        if self._rolls_over and raw >= 0:
            raw %= self._modulus  # accumulators roll over
        elif not self._low <= raw <= self._high:
            raise EncodeError(
                f"{self._type.value} raw value {raw} (from {value!r}, sf {scale_factor}) "
                f"not in {self._low}..{self._high}"
            )
        if self.size == 1:
            return (raw & 0xFFFF,)
        if self.size == 2:
            return ((raw >> 16) & 0xFFFF, raw & 0xFFFF)
        return _split(raw % self._modulus, self.size)

    def decode(self, registers: Sequence[int], scale_factor: int) -> Value:
        raw = registers[0] if self.size == 1 else _join(registers)
        if raw == self._not_implemented:
            return None
        if self._signed and raw >= self._modulus >> 1:
            raw -= self._modulus
        if scale_factor >= 0:
            return raw * 10**scale_factor
        return raw / 10**-scale_factor


class _Float32Codec:
    size = 2
    _NOT_IMPLEMENTED = (_FLOAT32_NAN >> 16, _FLOAT32_NAN & 0xFFFF)

    def encode(self, value: Value, scale_factor: int) -> Sequence[int]:
        if value is None:
            return self._NOT_IMPLEMENTED
        if isinstance(value, str):
            raise EncodeError(f"float32 cannot carry text {value!r}")
        if math.isnan(value):
            return self._NOT_IMPLEMENTED
        try:
            return struct.unpack(">HH", struct.pack(">f", value))
        except OverflowError as exc:
            raise EncodeError(f"float32 cannot carry {value!r}") from exc

    def decode(self, registers: Sequence[int], scale_factor: int) -> Value:
        number: float = struct.unpack(">f", struct.pack(">HH", *registers))[0]
        return None if math.isnan(number) else number


class _StringCodec:
    """Text in UTF-8, NUL-padded; all NULs (and the empty string) is "not implemented"."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._format = f">{size}H"

    def encode(self, value: Value, scale_factor: int) -> Sequence[int]:
        if value is None:
            return (0,) * self.size
        if not isinstance(value, str):
            raise EncodeError(f"string point needs text, got {value!r}")
        try:
            data = value.encode("utf-8")
        except UnicodeEncodeError as exc:  # lone surrogates
            raise EncodeError(f"{value!r} is not valid text") from exc
        if len(data) > 2 * self.size or b"\x00" in data:
            raise EncodeError(f"{value!r} does not fit {self.size} registers without NULs")
        return struct.unpack(self._format, data.ljust(2 * self.size, b"\x00"))

    def decode(self, registers: Sequence[int], scale_factor: int) -> Value:
        text = struct.pack(self._format, *registers).rstrip(b"\x00")
        return text.decode("utf-8", errors="replace") or None


class _PadCodec:
    """Always 0x8000, reads back as None."""

    size = 1

    def encode(self, value: Value, scale_factor: int) -> Sequence[int]:
        return (0x8000,)

    def decode(self, registers: Sequence[int], scale_factor: int) -> Value:
        return None


class Validator(Protocol):
    """Decides whether a written value is acceptable; ``str()`` of it goes into the docs table."""

    def __call__(self, value: Value) -> bool: ...


@dataclass(frozen=True)
class Range:
    """Accepts numbers in ``minimum..maximum`` (engineering units, inclusive)."""

    minimum: float
    maximum: float

    def __call__(self, value: Value) -> bool:
        return isinstance(value, int | float) and self.minimum <= value <= self.maximum

    def __str__(self) -> str:
        return f"{self.minimum:g} … {self.maximum:g}"


@dataclass(frozen=True)
class OneOf:
    """Accepts one of the listed integers (an enum's members)."""

    allowed: frozenset[int]

    @classmethod
    def members(cls, enum: type[IntEnum]) -> OneOf:
        return cls(frozenset(int(member) for member in enum))

    def __call__(self, value: Value) -> bool:
        return isinstance(value, int) and value in self.allowed

    def __str__(self) -> str:
        return "{" + ", ".join(str(v) for v in sorted(self.allowed)) + "}"


@dataclass(frozen=True)
class Point:
    """One named value at a PDU address. Pure data: sources and apply callbacks are bound on the map.

    ``address`` None is an unplaced point, as SunSpec model definitions declare them (the model places its
    points back to back); a :class:`RegisterMap` takes placed points only. ``value`` is the initial stored
    value: a constant for points without a getter, and what a writable point without a getter reads back
    until it is written.
    """

    name: str
    type: PointType
    address: int | None = None
    size: int = 0
    """Registers; 0 takes the type's width. Required for strings."""
    units: str = ""
    scale_factor: str | int | None = None
    """Name of a ``sunssf`` point in the same map, a fixed exponent, or None (no scaling)."""
    access: Access = Access.R
    validator: Validator | None = None
    """For writable points: None accepts any implemented value."""
    value: Value = None
    description: str = ""

    def __post_init__(self) -> None:
        width = self.type.width
        if self.type is PointType.STRING:
            if self.size < 1:
                raise ValueError(f"{self.name}: a string point needs a size in registers")
        elif self.size in (0, width):
            object.__setattr__(self, "size", width)
        else:
            raise ValueError(f"{self.name}: {self.type.value} is {width} registers, not {self.size}")
        if self.address is not None and not 0 <= self.address <= MAX_ADDRESS + 1 - self.size:
            raise ValueError(f"{self.name}: {self.size} registers at {self.address} leave 0..{MAX_ADDRESS}")
        if self.scale_factor is not None and not self.type.scalable:
            raise ValueError(f"{self.name}: {self.type.value} points take no scale factor")
        if isinstance(self.scale_factor, int) and not -_SUNSSF_LIMIT <= self.scale_factor <= _SUNSSF_LIMIT:
            raise ValueError(f"{self.name}: scale factor {self.scale_factor} outside ±{_SUNSSF_LIMIT}")
        if self.validator is not None and self.access is not Access.RW:
            raise ValueError(f"{self.name}: only writable points have a validator")

    @property
    def pdu_address(self) -> int:
        """The address, for a placed point."""
        if self.address is None:
            raise ValueError(f"{self.name} is not placed at an address")
        return self.address

    @property
    def end(self) -> int:
        """One past the last address."""
        return self.pdu_address + self.size

    @property
    def register_number(self) -> int:
        """1-based register number, as vendor manuals and the SunSpec specification print it."""
        return self.pdu_address + 1

    @property
    def reference(self) -> int:
        """The Modicon 4xxxx / 4xxxxx holding-register reference."""
        if self.pdu_address <= _FIVE_DIGIT_LAST_ADDRESS:
            return 40001 + self.pdu_address
        return 400001 + self.pdu_address


Getter = Callable[[], Value]
BlockGetter = Callable[[], Mapping[str, Value]]
Apply = Callable[[Value], None]


@dataclass(frozen=True)
class _Block:
    names: tuple[str, ...]
    getter: BlockGetter


@dataclass(frozen=True)
class _Slot:
    """A placed point compiled for the request path."""

    point: Point
    name: str
    start: int
    end: int
    codec: _Codec
    factor_name: str | None
    fixed_factor: int

    @classmethod
    def of(cls, point: Point) -> _Slot:
        factor = point.scale_factor
        return cls(
            point,
            point.name,
            point.pdu_address,
            point.end,
            _codec(point.type, point.size),
            factor if isinstance(factor, str) else None,
            factor if isinstance(factor, int) else 0,
        )


class RegisterMap:
    """The points one Modbus unit serves, with their sources; see the module docstring for semantics.

    ``lock`` is the owner's lock around the plant (it is stepped by another thread between requests); getters
    and apply callbacks run with it held, on the server's thread. Bind sources before serving; binding does
    not take the lock, so it may happen while the owner holds it.
    """

    def __init__(
        self,
        points: Iterable[Point],
        *,
        lock: AbstractContextManager[object] | None = None,
        title: str = "",
    ) -> None:
        self.title = title
        self._lock = lock if lock is not None else threading.Lock()
        self._slots = tuple(sorted((_Slot.of(point) for point in points), key=lambda slot: slot.start))
        if not self._slots:
            raise ValueError("a register map needs at least one point")
        self._by_name: dict[str, Point] = {}
        for slot in self._slots:
            if slot.point.name in self._by_name:
                raise ValueError(f"two points named {slot.point.name}")
            self._by_name[slot.point.name] = slot.point
        for before, after in zip(self._slots, self._slots[1:], strict=False):
            if after.start < before.end:
                raise ValueError(f"{after.point.name} at {after.start} overlaps {before.point.name}")
        for slot in self._slots:
            factor = slot.factor_name
            if factor is not None and (
                factor not in self._by_name or self._by_name[factor].type is not PointType.SUNSSF
            ):
                raise ValueError(f"{slot.point.name}: scale factor {factor} is no sunssf point of this map")
        self._starts = [slot.start for slot in self._slots]
        self._run_ends = _run_ends(self._slots)
        self._getters: dict[str, Getter] = {}
        self._blocks: dict[str, _Block] = {}
        self._appliers: dict[str, Apply] = {}
        self._stored: dict[str, Value] = {slot.point.name: slot.point.value for slot in self._slots}
        self._constant = [True] * len(self._slots)
        """Per slot: value and scale factor come from stored values, so its registers can be cached."""
        self._cache: dict[int, Sequence[int]] = {}
        """Encoded registers of constant slots, by slot index; emptied whenever a value or source changes."""
        self._encode_span(0, len(self._slots) - 1)  # stored values must be encodable: fail at declaration

    @property
    def points(self) -> tuple[Point, ...]:
        """All points, by address."""
        return tuple(slot.point for slot in self._slots)

    def point(self, name: str) -> Point:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no point named {name!r}") from None

    def spans(self) -> list[tuple[int, int]]:
        """Contiguous runs of mapped addresses as ``(first address, register count)``."""
        runs: list[tuple[int, int]] = []
        for slot, run_end in zip(self._slots, self._run_ends, strict=True):
            if not runs or runs[-1][0] + runs[-1][1] != run_end:
                runs.append((slot.start, run_end - slot.start))
        return runs

    def bind_getter(self, name: str, getter: Getter) -> None:
        """Read ``name`` from ``getter()`` on every request that touches it."""
        self._check_unbound(name)
        self._getters[name] = getter
        self._sources_changed()

    def bind_block(self, names: Iterable[str], getter: BlockGetter) -> None:
        """Read all of ``names`` from one ``getter()`` call (a mapping name -> value) per request."""
        block = _Block(tuple(names), getter)
        for name in block.names:
            self._check_unbound(name)
        for name in block.names:
            self._blocks[name] = block
        self._sources_changed()

    def bind_apply(self, name: str, apply: Apply) -> None:
        """Call ``apply(value)`` when a client writes ``name`` (a writable point) and the write is valid."""
        if self.point(name).access is not Access.RW:
            raise ValueError(f"{name} is read-only")
        self._appliers[name] = apply

    def read(self, address: int, count: int) -> list[int]:
        """``count`` registers from ``address``, computed now from one consistent snapshot."""
        first, last = self._cover(address, count)
        with self._lock:
            registers = self._encode_span(first, last)
        offset = address - self._starts[first]
        return registers[offset : offset + count]

    def write(self, address: int, registers: Sequence[int]) -> None:
        """Validate then apply a write of whole writable points; all-or-nothing."""
        count = len(registers)
        first, last = self._cover(address, count)
        slots = self._slots[first : last + 1]
        if slots[0].start != address or slots[-1].end != address + count:
            raise ModbusError(
                ExceptionCode.ILLEGAL_DATA_ADDRESS, f"write {address}+{count} splits a multi-register point"
            )
        for slot in slots:
            if slot.point.access is not Access.RW:
                raise ModbusError(ExceptionCode.ILLEGAL_DATA_ADDRESS, f"{slot.point.name} is read-only")
        with self._lock:
            snapshot: dict[str, Value] = {}
            accepted: list[tuple[str, Value]] = []
            for slot in slots:
                own = registers[slot.start - address : slot.end - address]
                accepted.append((slot.point.name, self._decode_written(slot, own, snapshot)))
            for name, value in accepted:
                apply = self._appliers.get(name)
                if apply is not None:
                    apply(value)
                self._stored[name] = value
            self._cache.clear()

    def markdown_table(self) -> str:
        """The map as a Markdown table for docs/, with the PDU address and both printed numberings."""
        header = (
            "| point | PDU address | register (1-based) | reference (4x) | size | type | units "
            "| scale factor | access | valid values | description |"
        )
        lines = [header, "|---|---:|---:|---:|---:|---|---|---|---|---|---|"]
        for point in self.points:
            factor = "" if point.scale_factor is None else str(point.scale_factor)
            valid = "" if point.validator is None else str(point.validator)
            cells = (
                f"`{point.name}`",
                str(point.pdu_address),
                str(point.register_number),
                str(point.reference),
                str(point.size),
                point.type.value,
                point.units,
                factor,
                point.access.value,
                valid,
                point.description.replace("|", "\\|"),
            )
            lines.append("| " + " | ".join(cells) + " |")
        title = f"### {self.title}\n\n" if self.title else ""
        return title + "\n".join(lines) + "\n"

    def _sources_changed(self) -> None:
        bound = self._getters.keys() | self._blocks.keys()
        self._constant = [not {slot.name, slot.factor_name} & bound for slot in self._slots]
        self._cache.clear()

    def _encode_span(self, first: int, last: int) -> list[int]:
        """Registers of slots ``first..last`` from one snapshot of their sources."""
        registers: list[int] = []
        snapshot: dict[str, Value] = {}
        cache, constant = self._cache, self._constant
        for index in range(first, last + 1):
            encoded = cache.get(index)
            if encoded is None:
                encoded = self._encode(self._slots[index], snapshot)
                if constant[index]:
                    cache[index] = encoded
            registers += encoded
        return registers

    def _check_unbound(self, name: str) -> None:
        self.point(name)
        if name in self._getters or name in self._blocks:
            raise ValueError(f"{name} already has a source")

    def _cover(self, address: int, count: int) -> tuple[int, int]:
        """Indices of the first and last slot covering ``address .. address+count-1``, all mapped."""
        if count < 1:
            raise ModbusError(ExceptionCode.ILLEGAL_DATA_VALUE, f"register count {count}")
        last_address = address + count - 1
        first = bisect_right(self._starts, address) - 1
        if first < 0 or self._slots[first].end <= address:
            unmapped = address
        elif self._run_ends[first] <= last_address:
            unmapped = self._run_ends[first]
        else:
            return first, bisect_right(self._starts, last_address) - 1
        raise ModbusError(ExceptionCode.ILLEGAL_DATA_ADDRESS, f"no point at address {unmapped}")

    def _current(self, name: str, snapshot: dict[str, Value]) -> Value:
        """``name``'s value in this request's snapshot, fetched from its source on first use."""
        if name in snapshot:
            return snapshot[name]
        block = self._blocks.get(name)
        if block is not None:
            values = block.getter()
            for member in block.names:
                snapshot[member] = values[member]
            return snapshot[name]
        getter = self._getters.get(name)
        value = getter() if getter is not None else self._stored[name]
        snapshot[name] = value
        return value

    def _encode(self, slot: _Slot, snapshot: dict[str, Value]) -> Sequence[int]:
        # On the latency budget of every read: the snapshot look-ups of _current and _factor are inlined.
        name, factor_name, current = slot.name, slot.factor_name, self._current
        value = snapshot[name] if name in snapshot else current(name, snapshot)
        if factor_name is None:
            factor = slot.fixed_factor
        else:
            sunssf = snapshot[factor_name] if factor_name in snapshot else current(factor_name, snapshot)
            if sunssf is None:  # SunSpec: a point whose scale factor is not implemented is not implemented
                value, factor = None, 0
            else:
                factor = int(sunssf)
        try:
            return slot.codec.encode(value, factor)
        except EncodeError as exc:
            raise EncodeError(f"{slot.name}: {exc}") from exc

    def _factor(self, slot: _Slot, snapshot: dict[str, Value]) -> int | None:
        """The slot's scale factor now; None when its sunssf point reads "not implemented"."""
        if slot.factor_name is None:
            return slot.fixed_factor
        factor = self._current(slot.factor_name, snapshot)
        return None if factor is None else int(factor)

    def _decode_written(self, slot: _Slot, registers: Sequence[int], snapshot: dict[str, Value]) -> Value:
        point = slot.point
        factor = self._factor(slot, snapshot)
        value = None if factor is None else slot.codec.decode(registers, factor)
        if value is None:
            raise ModbusError(ExceptionCode.ILLEGAL_DATA_VALUE, f"{point.name}: 'not implemented' written")
        if point.validator is not None and not point.validator(value):
            raise ModbusError(ExceptionCode.ILLEGAL_DATA_VALUE, f"{point.name}: {value!r} refused")
        return value


def _run_ends(slots: Sequence[_Slot]) -> list[int]:
    """For each slot, one past the last address of the gap-free run of slots it belongs to."""
    ends = [slot.end for slot in slots]
    for index in range(len(slots) - 2, -1, -1):
        if slots[index + 1].start == ends[index]:
            ends[index] = ends[index + 1]
    return ends
