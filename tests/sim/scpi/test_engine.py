"""The engine through its session API: command matching, parameters, replies, errors, status, framing."""

from __future__ import annotations

import itertools
import math
import sys
import threading
from enum import Enum

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.sim.scpi import (
    Choice,
    CommandTable,
    ErrorCode,
    Integer,
    LineChannel,
    Number,
    Repeat,
    ScpiEngine,
    format_response,
)
from harness.sim.scpi.parser import CharacterToken, NumberToken
from tests.sim.scpi import IDENTITY, Mode, Supply


@pytest.fixture
def supply():
    return Supply()


@pytest.fixture
def session(supply):
    return ScpiEngine(supply, lock=supply.lock).open_session()


def drain_errors(session) -> list[int]:
    """Every queued error code, oldest first (reads SYST:ERR? until it says 0)."""
    codes = []
    while (entry := session.execute("SYST:ERR?")) != '0,"No error"':
        codes.append(int(entry.split(",")[0]))
    return codes


def only_error(session, message: str) -> int:
    session.execute("*CLS")
    assert session.execute(message) is None
    (code,) = drain_errors(session)
    return code


# ---------------------------------------------------------------- headers


_VOLTAGE_SPELLINGS = [
    "".join(parts)
    for parts in itertools.product(
        ["", "SOUR:", "source:", "Sour:"],
        ["VOLT", "voltage", "Volt"],
        ["", ":LEV", ":level"],
        ["", ":IMM", ":immediate"],
        ["", ":AMPL", ":amplitude"],
    )
]


@pytest.mark.parametrize("header", _VOLTAGE_SPELLINGS[::7])
def test_any_mix_of_short_long_case_and_optional_nodes_reaches_the_command(session, supply, header):
    session.execute(f"{header} 12.5")
    assert supply.voltage_v == 12.5
    assert session.execute(f":{header}?") == "12.5"
    assert drain_errors(session) == []


@pytest.mark.parametrize(
    "header", ["VOLTA", "VOL", "SOURC:VOLT", "SOUR:VOLT:LEVE", "VOLT:AMPL:IMM", "SOUR:SOUR:VOLT"]
)
def test_anything_but_short_or_long_form_in_order_is_an_undefined_header(session, supply, header):
    assert only_error(session, f"{header} 5") == ErrorCode.UNDEFINED_HEADER
    assert supply.voltage_v == 0.0


def test_query_only_and_set_only_commands_refuse_the_other_form(session):
    assert only_error(session, "MEAS:VOLT") == ErrorCode.UNDEFINED_HEADER
    assert only_error(session, "FAIL?") == ErrorCode.UNDEFINED_HEADER
    assert only_error(session, "*RST?") == ErrorCode.UNDEFINED_HEADER
    assert only_error(session, "*IDN") == ErrorCode.UNDEFINED_HEADER


@pytest.mark.parametrize(
    ("message", "reply"),
    [
        ("SOUR:VOLT 5;VOLT?", "5.0"),  # relative to SOUR:
        ("OUTP:STAT ON;MODE?", "FIX"),  # relative to OUTP:
        ("OUTP:MODE LIST;MODE?;STAT?", "LIST;0"),
        ("VOLT 7;OUTP ON;MEAS:VOLT?", "7.0"),  # single-node headers leave the path at the root
        ("SOUR:VOLT 5;*OPC;VOLT?", "5.0"),  # a common command keeps the path
        ("MEAS:VOLT?;:VOLT?", "0.0;0.0"),
        ("BATT2:CAP 50;CAP?;:BATT:CAP?", "50.0;0.0"),  # the suffix carries over to the relative unit
    ],
)
def test_compound_messages_follow_the_scpi_path_rules(session, message, reply):
    assert session.execute(message) == reply
    assert drain_errors(session) == []


def test_a_relative_unit_does_not_fall_back_to_the_root(session, supply):
    assert only_error(session, "SOUR:VOLT 5;OUTP ON") == ErrorCode.UNDEFINED_HEADER
    assert supply.voltage_v == 5.0
    assert supply.output is False


def test_numeric_header_suffixes_default_to_one_and_are_range_checked(session, supply):
    session.execute("BATT3:CAP 40;:BATTERY:CAP 10;:batt04:capacity 5 AH")
    assert supply.capacity_ah == {1: 10.0, 2: 0.0, 3: 40.0, 4: 5.0}
    assert only_error(session, "BATT5:CAP 1") == ErrorCode.HEADER_SUFFIX_OUT_OF_RANGE
    assert only_error(session, "BATT0:CAP 1") == ErrorCode.HEADER_SUFFIX_OUT_OF_RANGE
    assert only_error(session, "BATT" + "9" * 40 + ":CAP 1") == ErrorCode.HEADER_SUFFIX_OUT_OF_RANGE


# ---------------------------------------------------------------- parameters


@pytest.mark.parametrize(
    ("value", "volts"),
    [
        ("230", 230.0),
        ("2.3E2", 230.0),
        ("+1e-3", 0.001),
        ("230V", 230.0),
        ("0.23 kV", 230.0),
        ("500 mV", 0.5),
    ],
)
def test_numbers_accept_exponents_and_unit_suffixes(session, supply, value, volts):
    session.execute(f"VOLT {value}")
    assert supply.voltage_v == pytest.approx(volts)
    assert drain_errors(session) == []


@pytest.mark.parametrize(
    ("spec", "token", "value"),
    [
        (Number(unit="HZ"), NumberToken(50, "HZ"), 50.0),
        (Number(unit="HZ"), NumberToken(1, "MHZ"), 1e6),  # MHZ and MOHM are mega, not milli
        (Number(unit="OHM"), NumberToken(2, "MOHM"), 2e6),
        (Number(unit="S"), NumberToken(2, "MS"), 2e-3),
        (Number(unit="S"), NumberToken(5, "US"), 5e-6),
        (Number(unit="A"), NumberToken(5, "MA"), 5e-3),
        (Number(unit="W"), NumberToken(1.2, "MAW"), 1.2e6),
        (Number(unit="ah"), NumberToken(3, "KAH"), 3e3),
        (Integer(1, 10, keywords={"INFinity": math.inf}), CharacterToken("INF"), math.inf),
        (Integer(1, 10), NumberToken(2.5), 2),
        (Integer(1, 10), CharacterToken("MAX"), 10),
    ],
)
def test_suffix_prefixes_and_named_values(spec, token, value):
    assert spec.convert(token) == pytest.approx(value)


def test_min_max_def_keywords(session, supply):
    session.execute("VOLT MAX")
    assert supply.voltage_v == 300.0
    session.execute("VOLT def")
    assert supply.voltage_v == 0.0
    assert session.execute("VOLT? MAX;VOLT? minimum;VOLT?") == "300.0;0.0;0.0"


@pytest.mark.parametrize(
    ("value", "on"), [("ON", True), ("off", False), ("1", True), ("0", False), ("2", True), ("0.4", False)]
)
def test_booleans(session, supply, value, on):
    supply.output = not on
    session.execute(f"OUTP {value}")
    assert supply.output is on


def test_character_data_matches_short_or_long_form_and_answers_short(session, supply):
    session.execute("OUTP:MODE list")
    assert supply.mode is Mode.LIST
    session.execute("OUTP:MODE fixed")
    assert supply.mode is Mode.FIXED
    assert session.execute("OUTP:MODE?") == "FIX"


def test_strings_channel_lists_and_repeated_values(session, supply):
    session.execute('SYST:TEXT "say ""hi"""')
    assert supply.text == 'say "hi"'
    assert session.execute("SYST:TEXT?") == '"say ""hi"""'
    session.execute("ROUT:CLOS (@7,1:3, 5)")
    assert session.execute("ROUT:CLOS?") == "1,2,3,5,7"
    session.execute("LIST:VOLT 1, 2.5, 300 V")
    assert supply.list_v == [1.0, 2.5, 300.0]
    assert drain_errors(session) == []


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("VOLT", ErrorCode.MISSING_PARAMETER),
        ("OUTP:MODE", ErrorCode.MISSING_PARAMETER),
        ("VOLT 5,6", ErrorCode.PARAMETER_NOT_ALLOWED),
        ("*IDN? 1", ErrorCode.PARAMETER_NOT_ALLOWED),
        ("*CLS 1;VOLT 5", ErrorCode.PARAMETER_NOT_ALLOWED),
        ("LIST:VOLT " + ",".join(["1"] * 11), ErrorCode.PARAMETER_NOT_ALLOWED),
        ('VOLT "5"', ErrorCode.DATA_TYPE_ERROR),
        ("VOLT (@1)", ErrorCode.DATA_TYPE_ERROR),
        ("OUTP:MODE 1", ErrorCode.DATA_TYPE_ERROR),
        ('OUTP "ON"', ErrorCode.DATA_TYPE_ERROR),
        ("SYST:TEXT hello", ErrorCode.DATA_TYPE_ERROR),
        ("ROUT:CLOS 3", ErrorCode.DATA_TYPE_ERROR),
        ("VOLT 300.001", ErrorCode.DATA_OUT_OF_RANGE),
        ("VOLT -1", ErrorCode.DATA_OUT_OF_RANGE),
        ("VOLT 1 KV", ErrorCode.DATA_OUT_OF_RANGE),
        ("ROUT:CLOS (@0:2)", ErrorCode.DATA_OUT_OF_RANGE),
        ("LIST:VOLT 1,2,301", ErrorCode.DATA_OUT_OF_RANGE),
        ("VOLT HIGH", ErrorCode.ILLEGAL_PARAMETER_VALUE),
        ("OUTP MAYBE", ErrorCode.ILLEGAL_PARAMETER_VALUE),
        ("OUTP:MODE PULSE", ErrorCode.ILLEGAL_PARAMETER_VALUE),
        ("OUTP:MODE FI", ErrorCode.ILLEGAL_PARAMETER_VALUE),
        ("VOLT 5 A", ErrorCode.INVALID_SUFFIX),
        ("VOLT 5 XV", ErrorCode.INVALID_SUFFIX),
        ("OUTP 1 V", ErrorCode.SUFFIX_NOT_ALLOWED),
        ("ROUT:CLOS (1,2)", ErrorCode.EXPRESSION_ERROR),
        ("ROUT:CLOS (@1:x)", ErrorCode.EXPRESSION_ERROR),
        ("FOO 5", ErrorCode.UNDEFINED_HEADER),
        ("*FOO", ErrorCode.UNDEFINED_HEADER),
        ("VOLT 5 6", ErrorCode.SYNTAX_ERROR),
        ("VOLT::LEV 5", ErrorCode.COMMAND_ERROR),
        ("VOLT 5$", ErrorCode.INVALID_CHARACTER),
        ("VOLT 1E999", ErrorCode.NUMERIC_DATA_ERROR),
        ('SYST:TEXT "abc', ErrorCode.INVALID_STRING_DATA),
        ("SYST:TEXT #13abc", ErrorCode.BLOCK_DATA_NOT_ALLOWED),
    ],
)
def test_bad_commands_queue_the_standard_error_and_change_nothing(session, supply, message, code):
    assert only_error(session, message) == code
    assert (supply.voltage_v, supply.output, supply.mode, supply.text, supply.closed, supply.list_v) == (
        0.0, False, Mode.FIXED, "", set(), [],
    )  # fmt: skip


def test_handlers_raise_execution_errors_themselves(session, supply, caplog):
    session.execute("OUTP ON")
    assert only_error(session, "OUTP:MODE LIST") == ErrorCode.SETTINGS_CONFLICT
    assert supply.mode is Mode.FIXED
    assert only_error(session, "FAIL") == ErrorCode.EXECUTION_ERROR
    assert "handler bug" in caplog.text
    assert session.execute("*IDN?") == IDENTITY


# ---------------------------------------------------------------- replies and error handling


def test_replies_of_a_compound_message_make_one_line(session):
    assert session.execute("*IDN?;VOLT 5;VOLT?;OUTP?;*OPC?") == f"{IDENTITY};5.0;0;1"


def test_a_message_without_a_query_has_no_reply(session, supply):
    assert session.execute("VOLT 5;OUTP ON") is None
    assert (supply.voltage_v, supply.output) == (5.0, True)


def test_an_error_skips_the_rest_of_the_message_but_keeps_earlier_replies(session, supply):
    assert session.execute("VOLT 5;VOLT?;BOGUS;VOLT 6;VOLT?") == "5.0"
    assert supply.voltage_v == 5.0
    assert drain_errors(session) == [ErrorCode.UNDEFINED_HEADER]
    assert session.execute("VOLT 7;VOLT?") == "7.0"


def test_the_error_queue_is_fifo_bounded_and_ends_with_overflow(supply):
    session = ScpiEngine(supply, error_queue_depth=4).open_session()
    for message in ("FOO", "VOLT 999", "OUTP MAYBE", "VOLT", "VOLT 5,6", "BAR"):
        session.execute(message)
    assert session.execute("SYST:ERR:COUN?") == "4"
    assert drain_errors(session) == [-113, -222, -224, -350]
    assert session.execute("SYST:ERR?;:SYST:ERR:NEXT?") == '0,"No error";0,"No error"'


def test_error_entries_carry_the_standard_text(session):
    session.execute("VOLT 999")
    assert session.execute("SYST:ERR?").startswith('-222,"Data out of range')


def test_writing_before_the_reply_is_read_interrupts_the_query(session):
    session.write("VOLT?")
    session.write("*IDN?")
    assert session.read() == IDENTITY
    assert session.read() is None
    assert drain_errors(session) == [ErrorCode.QUERY_INTERRUPTED]


# ---------------------------------------------------------------- IEEE 488.2 status


@pytest.mark.parametrize(
    ("message", "bit"),
    [("FOO", 32), ("VOLT 999", 16), ("ROUT:CLOS (@9)", 16), ("FAIL", 16), ("*IDN? 1", 32)],
)
def test_errors_set_their_event_status_bit_and_esr_clears_on_read(session, message, bit):
    session.execute(message)
    assert session.execute("*ESR?") == str(bit)
    assert session.execute("*ESR?") == "0"


def test_query_and_device_errors_set_their_bits(session):
    session.write("VOLT?")
    session.write("VOLT 1")
    assert session.execute("*ESR?") == "4"
    channel = LineChannel(session, max_line_bytes=8)
    channel.feed(b"VOLT 123456789\n")
    assert session.execute("*ESR?") == "8"


def test_status_byte_reports_queue_mav_esb_and_rqs(session):
    assert session.execute("*STB?") == "0"
    session.execute("FOO")
    assert session.execute("*STB?") == "4"
    assert session.execute("VOLT?;*STB?") == "0.0;20"  # MAV: a reply is waiting in the output queue
    session.execute("*ESE 32")
    assert session.execute("*STB?") == str(4 + 32)
    session.execute("*SRE 32")
    assert session.execute("*STB?;*SRE?;*ESE?") == f"{4 + 32 + 64};32;32"
    session.execute("*CLS")
    assert session.execute("*STB?;*ESR?") == "0;0"
    assert session.execute("*ESE?;*SRE?") == "32;32"  # *CLS leaves the enable registers


def test_sre_ignores_bit_6_and_enables_are_bytes(session):
    session.execute("*SRE 255")
    assert session.execute("*SRE?") == "191"
    assert only_error(session, "*ESE 256") == ErrorCode.DATA_OUT_OF_RANGE
    session.execute("*ESE #H21")
    assert session.execute("*ESE?") == "33"


def test_opc_opc_query_wai_and_tst(session):
    assert session.execute("*OPC;*WAI;*ESR?") == "1"
    assert session.execute("*OPC?;*TST?") == "1;0"


def test_rst_resets_the_instrument_but_not_the_status(session, supply):
    session.execute("VOLT 42;OUTP ON;FOO")
    session.execute("*ESE 4")
    session.execute("*RST")
    assert (supply.voltage_v, supply.output) == (0.0, False)
    assert session.execute("*ESE?") == "4"
    assert drain_errors(session) == [ErrorCode.UNDEFINED_HEADER]


def test_identity_version_and_that_sessions_keep_their_own_queues(supply):
    engine = ScpiEngine(supply)
    first, second = engine.open_session(), engine.open_session()
    assert first.execute("*IDN?;:SYST:VERS?") == f"{IDENTITY};1999.0"
    first.execute("FOO;VOLT 5")
    second.execute("VOLT 7")
    assert drain_errors(second) == []
    assert drain_errors(first) == [ErrorCode.UNDEFINED_HEADER]
    assert first.execute("VOLT?") == "7.0"


# ---------------------------------------------------------------- the owner's lock


def test_every_message_runs_under_the_owners_lock(supply):
    seen = []
    supply.commands.add("LOCKed?", query=lambda: seen.append(supply.lock.locked()) or 1)
    session = ScpiEngine(supply, lock=supply.lock).open_session()
    assert session.execute("LOCK?;LOCK?") == "1;1"
    assert seen == [True, True]
    assert not supply.lock.locked()


def test_a_message_sees_one_consistent_plant_state_while_another_thread_steps(supply):
    session = ScpiEngine(supply, lock=supply.lock).open_session()
    stop = threading.Event()

    def run_plant():
        while not stop.is_set():
            supply.step()

    stepper = threading.Thread(target=run_plant)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible, so a missing lock shows
    stepper.start()
    try:
        replies = [session.execute("PLAN:A?;B?") for _ in range(2000)]
    finally:
        stop.set()
        stepper.join()
        sys.setswitchinterval(interval)
    assert supply.plant_a > 0
    assert all(reply.split(";")[0] == reply.split(";")[1] for reply in replies)


# ---------------------------------------------------------------- registration


def test_registration_refuses_ambiguous_or_malformed_tables():
    table = CommandTable()
    table.add("[SOURce:]VOLTage", setter=print, query=print, params=(Number(),))
    with pytest.raises(ValueError, match="overlaps"):
        table.add("VOLTage", setter=print, params=(Number(),))
    with pytest.raises(ValueError, match="ambiguous"):
        table.add("VOLTAGE:PROTection", setter=print)  # VOLTAGE would name two different nodes
    with pytest.raises(ValueError, match="ambiguous"):
        table.add("VOLTage#:RANGe", setter=print)
    table.add("STATe", setter=print)
    with pytest.raises(ValueError, match="ambiguous"):
        table.add("STATus", setter=print)
    for bad in ("volt", "[SOURce:]", "VOLT age", "VOLT::A"):
        with pytest.raises(ValueError):
            table.add(bad, setter=print)
    with pytest.raises(ValueError, match="query-only"):
        table.add("MEASure?", setter=print)
    with pytest.raises(ValueError, match="no handler"):
        table.add("MEASure")
    with pytest.raises(ValueError, match="last"):
        table.add("LIST", setter=print, params=(Repeat(Number()), Number()))
    with pytest.raises(ValueError, match="optional"):
        table.add("LIST", setter=print, params=(Number(optional=True), Number()))
    with pytest.raises(ValueError, match="ambiguous"):
        Choice(["STATe", "STATus"])


def test_a_command_and_its_query_may_be_registered_separately():
    class Meter:
        identity = "X,Y,0,0"
        commands = CommandTable()

        def reset(self) -> None:
            self.range_v = 10.0

    meter = Meter()
    meter.reset()
    meter.commands.add(
        "SENSe:VOLTage:RANGe", setter=lambda v: setattr(meter, "range_v", v), params=(Integer(1, 1000),)
    )
    meter.commands.add("[SENSe:]VOLTage:RANGe?", query=lambda: meter.range_v)
    session = ScpiEngine(meter).open_session()
    assert session.execute("SENS:VOLT:RANG 99.6;RANG?;:VOLT:RANG?") == "100;100"
    assert session.execute("*IDN?") == "X,Y,0,0"


def test_the_instrument_cannot_redefine_common_commands():
    class Clash:
        identity = "X,Y,0,0"
        commands = CommandTable()

        def reset(self) -> None:
            pass

    Clash.commands.add("*IDN?", query=lambda: "mine")
    with pytest.raises(ValueError, match="overlaps"):
        ScpiEngine(Clash())


# ---------------------------------------------------------------- response formatting


class _Range(Enum):
    HIGH = "HIGH"
    LOW = "LOWer"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (True, "1"),
        (False, "0"),
        (7, "7"),
        (0.1, "0.1"),
        (1e-5, "1E-05"),
        (-2.5e16, "-2.5E+16"),
        (math.nan, "9.91E+37"),
        (math.inf, "9.9E+37"),
        (-math.inf, "-9.9E+37"),
        (_Range.LOW, "LOW"),
        ([1, 2.5, True], "1,2.5,1"),
        ("RUNNING", "RUNNING"),
    ],
)
def test_response_formatting(value, text):
    assert format_response(value) == text


@settings(max_examples=100)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_reals_go_out_exactly(value):
    assert float(format_response(value)) == value


# ---------------------------------------------------------------- stream framing


def test_line_channel_frames_splits_and_joins_partial_lines(session):
    channel = LineChannel(session)
    assert channel.feed(b"*ID") == b""
    assert channel.feed(b"N?\r\nVOLT 3;VOLT?\nVOL") == f"{IDENTITY}\n".encode() + b"3.0\n"
    assert channel.finish() == b""  # "VOL" alone: an undefined header, no reply
    assert drain_errors(session) == [ErrorCode.UNDEFINED_HEADER]


def test_line_channel_discards_long_lines_and_bad_utf8_with_an_error(session):
    channel = LineChannel(session, max_line_bytes=16)
    assert channel.feed(b"VOLT 1" + b"0" * 20) == b""
    assert channel.feed(b"0" * 20 + b"\nVOLT?\n") == b"0.0\n"
    assert channel.feed(b"VOLT 5;VOLT?;VOLT 1" + b"\nOUTP?\n") == b"0\n"  # a whole line too long
    assert channel.feed(b"\xff\xfeVOLT 5\nVOLT?\n") == b"0.0\n"
    assert drain_errors(session) == [ErrorCode.INPUT_BUFFER_OVERRUN] * 2 + [ErrorCode.INVALID_CHARACTER]
