"""Register maps as data: point encodings (SunSpec base types, scale factors, sentinels), numbering,
declaration checks, docs rendering, and the snapshot a read takes. Wire behaviour is in test_server.py."""

from __future__ import annotations

import math
import struct
import threading
from enum import IntEnum

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.sim.modbus.registers import (
    Access,
    EncodeError,
    ExceptionCode,
    ModbusError,
    OneOf,
    Point,
    PointType,
    Range,
    RegisterMap,
    decode,
    encode,
    sentinel,
)

T = PointType
# (type, registers, signed, "not implemented" pattern as an unsigned integer): SunSpec's table, written out.
INTEGER_TYPES = [
    (T.INT16, 1, True, 0x8000),
    (T.UINT16, 1, False, 0xFFFF),
    (T.ACC16, 1, False, 0),
    (T.ENUM16, 1, False, 0xFFFF),
    (T.BITFIELD16, 1, False, 0xFFFF),
    (T.SUNSSF, 1, True, 0x8000),
    (T.INT32, 2, True, 0x8000_0000),
    (T.UINT32, 2, False, 0xFFFF_FFFF),
    (T.ACC32, 2, False, 0),
    (T.ENUM32, 2, False, 0xFFFF_FFFF),
    (T.BITFIELD32, 2, False, 0xFFFF_FFFF),
    (T.INT64, 4, True, 0x8000_0000_0000_0000),
    (T.UINT64, 4, False, 0xFFFF_FFFF_FFFF_FFFF),
    (T.ACC64, 4, False, 0),
]
SCALABLE = {T.INT16, T.UINT16, T.ACC16, T.INT32, T.UINT32, T.ACC32, T.INT64, T.UINT64, T.ACC64}
ACCUMULATORS = {T.ACC16, T.ACC32, T.ACC64}


def registers_of(raw: int, width: int) -> list[int]:
    """Big-endian words of an unsigned integer, the reference the codec is checked against."""
    return list(struct.unpack(f">{width}H", raw.to_bytes(2 * width, "big")))


def legal_raw(point_type: PointType, width: int, signed: bool) -> st.SearchStrategy[int]:
    bits = 16 * width
    if point_type is T.SUNSSF:
        return st.integers(-10, 10)
    if signed:
        return st.integers(-(2 ** (bits - 1)) + 1, 2 ** (bits - 1) - 1)
    if point_type in ACCUMULATORS:
        return st.integers(1, 2**bits - 1)
    return st.integers(0, 2**bits - 2)


@st.composite
def integer_cases(draw: st.DrawFn) -> tuple[PointType, int, int, int]:
    point_type, width, signed, _ = draw(st.sampled_from(INTEGER_TYPES))
    raw = draw(legal_raw(point_type, width, signed))
    factor = draw(st.integers(-4, 4)) if point_type in SCALABLE else 0
    return point_type, width, raw, factor


@settings(max_examples=200, deadline=None)
@given(integer_cases())
def test_integer_types_round_trip_exactly_through_their_big_endian_words(case):
    point_type, width, raw, factor = case
    if factor < 0 and abs(raw) >= 2**40:  # scaled values are floats; keep well inside their 53 bits
        factor = 0
    value = raw * 10**factor if factor >= 0 else raw / 10**-factor
    registers = encode(point_type, value, scale_factor=factor)
    assert registers == registers_of(raw % 2 ** (16 * width), width)
    assert decode(point_type, registers, scale_factor=factor) == value


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from([T.INT16, T.INT32]),
    st.floats(-320.0, 320.0),
    st.integers(-2, 1),
)
def test_scaled_readings_come_back_within_half_a_step(point_type, reading, factor):
    registers = encode(point_type, reading, scale_factor=factor)
    step = 10.0**factor
    assert decode(point_type, registers, scale_factor=factor) == pytest.approx(reading, abs=step / 2 + 1e-9)


@pytest.mark.parametrize(("point_type", "width", "signed", "pattern"), INTEGER_TYPES)
def test_not_implemented_patterns_follow_sunspec(point_type, width, signed, pattern):
    assert sentinel(point_type) == registers_of(pattern, width)
    assert encode(point_type, None) == registers_of(pattern, width)
    assert decode(point_type, registers_of(pattern, width)) is None
    assert encode(point_type, math.nan) == registers_of(pattern, width)


@pytest.mark.parametrize(
    ("point_type", "width", "signed", "pattern"), [row for row in INTEGER_TYPES if row[0] not in ACCUMULATORS]
)
def test_a_value_colliding_with_the_not_implemented_pattern_is_refused(point_type, width, signed, pattern):
    colliding = pattern - 2 ** (16 * width) if signed else pattern
    with pytest.raises(EncodeError):
        encode(point_type, colliding)


@pytest.mark.parametrize(
    ("point_type", "value", "factor"),
    [
        (T.INT16, 32768, 0),
        (T.INT16, 3276.8, -1),
        (T.UINT16, -1, 0),
        (T.UINT32, 2**32, 0),
        (T.SUNSSF, 11, 0),
        (T.SUNSSF, -11, 0),
        (T.ACC32, -1, 0),
        (T.INT16, math.inf, 0),
        (T.INT16, "12", 0),
        (T.INT16, 1.0, 11),
    ],
)
def test_values_that_do_not_fit_are_refused(point_type, value, factor):
    with pytest.raises(EncodeError):
        encode(point_type, value, scale_factor=factor)


@pytest.mark.parametrize(("point_type", "width"), [(T.ACC16, 1), (T.ACC32, 2), (T.ACC64, 4)])
def test_accumulators_roll_over(point_type, width):
    modulus = 2 ** (16 * width)
    assert encode(point_type, modulus + 5) == encode(point_type, 5)
    assert decode(point_type, encode(point_type, modulus - 1)) == modulus - 1


@settings(max_examples=150, deadline=None)
@given(st.floats(width=32, allow_nan=False))
def test_float32_round_trips_every_float32(value):
    registers = encode(T.FLOAT32, value)
    assert registers == list(struct.unpack(">HH", struct.pack(">f", value)))
    assert decode(T.FLOAT32, registers) == value


def test_float32_not_implemented_is_nan_and_huge_values_are_refused():
    assert encode(T.FLOAT32, None) == [0x7FC0, 0x0000]
    assert encode(T.FLOAT32, math.nan) == [0x7FC0, 0x0000]
    assert decode(T.FLOAT32, [0x7FC0, 0x0000]) is None
    assert decode(T.FLOAT32, [0xFFC0, 0x0001]) is None  # any NaN
    with pytest.raises(EncodeError):
        encode(T.FLOAT32, 1e39)


@settings(max_examples=150, deadline=None)
@given(
    st.text(st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]), min_size=1),
    st.integers(1, 16),
)
def test_strings_round_trip_nul_padded(text, size):
    data = text.encode("utf-8")
    if len(data) > 2 * size:
        with pytest.raises(EncodeError):
            encode(T.STRING, text, size=size)
        return
    registers = encode(T.STRING, text, size=size)
    assert len(registers) == size
    assert b"".join(r.to_bytes(2, "big") for r in registers) == data.ljust(2 * size, b"\x00")
    assert decode(T.STRING, registers) == text


def test_empty_and_missing_strings_are_all_nuls_and_read_as_none():
    assert encode(T.STRING, None, size=3) == [0, 0, 0]
    assert encode(T.STRING, "", size=3) == [0, 0, 0]
    assert decode(T.STRING, [0, 0, 0]) is None
    for unfit in ("a\x00b", "\ud800"):
        with pytest.raises(EncodeError):
            encode(T.STRING, unfit, size=3)


def test_pad_is_0x8000_and_reads_as_none():
    assert encode(T.PAD, None) == [0x8000]
    assert decode(T.PAD, [0x8000]) is None


def test_numpy_scalars_encode_like_python_numbers():
    assert encode(T.INT16, np.float64(-12.34), scale_factor=-2) == encode(T.INT16, -12.34, scale_factor=-2)
    assert encode(T.UINT32, np.int64(70000)) == [1, 70000 - 65536]
    assert encode(T.INT16, np.float32(1.5), scale_factor=-1) == [15]
    assert encode(T.FLOAT32, np.float32(50.0)) == encode(T.FLOAT32, 50.0)


def test_decode_checks_the_register_count():
    with pytest.raises(ValueError, match="2 registers"):
        decode(T.INT32, [1])


@pytest.mark.parametrize(
    ("address", "register_number", "reference"),
    [(0, 1, 40001), (99, 100, 40100), (9998, 9999, 49999), (9999, 10000, 410000), (40000, 40001, 440001)],
)
def test_points_carry_the_pdu_address_and_both_printed_numbers(address, register_number, reference):
    point = Point("W", T.INT16, address)
    assert point.pdu_address == address
    assert (point.register_number, point.reference) == (register_number, reference)


def test_markdown_table_lists_every_point_with_both_numbers():
    regmap = RegisterMap(
        [
            Point("W", T.INT16, 40000, units="W", scale_factor="W_SF", description="active power"),
            Point("W_SF", T.SUNSSF, 40001, value=0),
            Point("Lim", T.UINT16, 40002, access=Access.RW, validator=Range(0, 100), units="%"),
        ],
        title="meter",
    )
    table = regmap.markdown_table()
    assert table.startswith("### meter\n")
    assert "| `W` | 40000 | 40001 | 440001 | 1 | int16 | W | W_SF | R |  | active power |" in table
    assert "| `Lim` | 40002 | 40003 | 440003 | 1 | uint16 | % |  | RW | 0 … 100 |  |" in table
    assert table.count("\n| `") == 3


@pytest.mark.parametrize(
    ("points", "message"),
    [
        ([Point("a", T.INT16, 0), Point("a", T.INT16, 1)], "two points named a"),
        ([Point("a", T.INT32, 0), Point("b", T.INT16, 1)], "overlaps"),
        ([Point("a", T.INT16, 0, scale_factor="nope")], "no sunssf point"),
        ([Point("a", T.INT16, 0, scale_factor="b"), Point("b", T.INT16, 1)], "no sunssf point"),
        ([Point("a", T.INT16)], "not placed"),
        ([], "at least one"),
    ],
)
def test_inconsistent_maps_are_refused(points, message):
    with pytest.raises(ValueError, match=message):
        RegisterMap(points)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"type": T.STRING}, "needs a size"),
        ({"type": T.INT32, "size": 1}, "is 2 registers"),
        ({"type": T.ENUM16, "scale_factor": -1}, "no scale factor"),
        ({"type": T.INT16, "scale_factor": 11}, "outside"),
        ({"type": T.INT16, "validator": Range(0, 1)}, "only writable"),
        ({"type": T.INT32, "address": 0xFFFF}, "leave"),
    ],
)
def test_inconsistent_points_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Point("p", **kwargs)


def test_a_constant_that_does_not_fit_fails_at_declaration():
    with pytest.raises(EncodeError, match="big"):
        RegisterMap([Point("big", T.INT16, 0, value=40000)])


def test_validators_accept_what_they_say():
    assert Range(-1.5, 2)(2) and Range(-1.5, 2)(-1.5) and not Range(-1.5, 2)(2.01)
    assert not Range(0, 1)("1")

    class Mode(IntEnum):
        OFF = 0
        ON = 1

    one_of = OneOf.members(Mode)
    assert one_of(1) and not one_of(2) and not one_of(1.5)
    assert str(one_of) == "{0, 1}"


class TrackingLock:
    """A lock that knows whether it is held, to check getters and applies run under it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.held = False

    def __enter__(self) -> TrackingLock:
        self._lock.acquire()
        self.held = True
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.held = False
        self._lock.release()


def test_every_source_of_a_read_is_called_once_under_the_owners_lock():
    lock = TrackingLock()
    calls: list[str] = []
    regmap = RegisterMap(
        [
            Point("V", T.UINT16, 10, scale_factor="V_SF"),
            Point("A", T.INT16, 11, scale_factor=-1),
            Point("W", T.INT32, 12),
            Point("V_SF", T.SUNSSF, 14),
        ],
        lock=lock,
    )

    def block() -> dict[str, float]:
        calls.append("block")
        assert lock.held
        return {"V": 230.1, "W": -5000}

    def sunssf() -> int:
        calls.append("V_SF")
        assert lock.held
        return -1

    regmap.bind_block(["V", "W"], block)
    regmap.bind_getter("V_SF", sunssf)
    regmap.bind_getter("A", lambda: -12.5)
    registers = regmap.read(10, 5)
    assert registers == [2301, 0x10000 - 125, *registers_of(2**32 - 5000, 2), 0x10000 - 1]
    assert sorted(calls) == ["V_SF", "block"]


def test_reads_may_cut_a_multi_register_point_and_gaps_are_illegal_addresses():
    regmap = RegisterMap([Point("E", T.UINT32, 10, value=0x0001_0002), Point("X", T.UINT16, 13, value=3)])
    assert regmap.read(11, 1) == [2]
    assert regmap.read(10, 1) == [1]
    assert regmap.spans() == [(10, 2), (13, 1)]
    for address, count in ((9, 1), (10, 3), (12, 1), (13, 2)):
        with pytest.raises(ModbusError) as error:
            regmap.read(address, count)
        assert error.value.code is ExceptionCode.ILLEGAL_DATA_ADDRESS


def test_a_point_whose_scale_factor_is_not_implemented_reads_not_implemented():
    regmap = RegisterMap([Point("W", T.INT16, 0, scale_factor="W_SF", value=10), Point("W_SF", T.SUNSSF, 1)])
    assert regmap.read(0, 2) == [0x8000, 0x8000]


def test_writes_decode_with_the_scale_factor_validate_all_then_apply_all_under_the_lock():
    lock = TrackingLock()
    applied: list[tuple[str, object]] = []
    regmap = RegisterMap(
        [
            Point("WSet", T.INT32, 0, scale_factor="W_SF", access=Access.RW, validator=Range(-1e6, 1e6)),
            Point("Mode", T.ENUM16, 2, access=Access.RW, validator=OneOf(frozenset({0, 1, 2})), value=0),
            Point("W_SF", T.SUNSSF, 3, value=2),
        ],
        lock=lock,
    )

    def record(name: str):
        def apply(value: object) -> None:
            assert lock.held
            applied.append((name, value))

        return apply

    regmap.bind_apply("WSet", record("WSet"))
    regmap.bind_apply("Mode", record("Mode"))
    with pytest.raises(ModbusError) as error:
        regmap.write(0, [0, 5000, 7])  # WSet fine (500 kW), Mode 7 refused
    assert error.value.code is ExceptionCode.ILLEGAL_DATA_VALUE
    assert applied == []
    regmap.write(0, [0xFFFF, 0x10000 - 5000, 2])
    assert applied == [("WSet", -500_000), ("Mode", 2)]
    assert regmap.read(0, 3) == [0xFFFF, 0x10000 - 5000, 2]  # no getters: writes read back


@pytest.mark.parametrize(
    ("address", "registers", "code"),
    [
        (1, [5], ExceptionCode.ILLEGAL_DATA_ADDRESS),  # half of WSet
        (2, [1, 0], ExceptionCode.ILLEGAL_DATA_ADDRESS),  # Mode and the read-only W_SF
        (3, [0], ExceptionCode.ILLEGAL_DATA_ADDRESS),  # read-only
        (4, [0], ExceptionCode.ILLEGAL_DATA_ADDRESS),  # unmapped
        (2, [0xFFFF], ExceptionCode.ILLEGAL_DATA_VALUE),  # "not implemented" written
    ],
)
def test_refused_writes_change_nothing(address, registers, code):
    regmap = RegisterMap(
        [
            Point("WSet", T.INT32, 0, access=Access.RW, value=7),
            Point("Mode", T.ENUM16, 2, access=Access.RW, value=1),
            Point("W_SF", T.SUNSSF, 3, value=0),
        ]
    )
    before = regmap.read(0, 4)
    with pytest.raises(ModbusError) as error:
        regmap.write(address, registers)
    assert error.value.code is code
    assert regmap.read(0, 4) == before


def test_sources_are_bound_once_and_applies_only_to_writable_points():
    regmap = RegisterMap([Point("a", T.INT16, 0), Point("b", T.INT16, 1)])
    regmap.bind_getter("a", lambda: 1)
    with pytest.raises(ValueError, match="already"):
        regmap.bind_block(["b", "a"], dict)
    with pytest.raises(ValueError, match="read-only"):
        regmap.bind_apply("b", print)
    with pytest.raises(KeyError, match="c"):
        regmap.bind_getter("c", lambda: 1)
