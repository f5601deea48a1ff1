"""Program message -> program units: headers, data tokens, and the error each malformed input gives."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.sim.scpi.parser import (
    CharacterToken,
    ErrorCode,
    ExpressionToken,
    Header,
    NumberToken,
    ScpiError,
    StringToken,
    parse_message,
)


def units(text: str) -> list:
    return list(parse_message(text))


def error_of(text: str) -> int:
    with pytest.raises(ScpiError) as caught:
        units(text)
    return caught.value.code


def test_common_and_tree_headers_are_split_and_upper_cased():
    first, second, third = units("*idn?;:sour:Volt:LEV 5;outp?")
    assert first.header == Header(("IDN",), common=True, absolute=False, query=True)
    assert second.header == Header(("SOUR", "VOLT", "LEV"), common=False, absolute=True, query=False)
    assert third.header == Header(("OUTP",), common=False, absolute=False, query=True)
    assert str(second.header) == ":SOUR:VOLT:LEV"


@pytest.mark.parametrize(
    ("text", "value", "suffix"),
    [
        ("5", 5.0, ""),
        ("+5", 5.0, ""),
        ("-0.25", -0.25, ""),
        (".5", 0.5, ""),
        ("5.", 5.0, ""),
        ("1.5e3", 1500.0, ""),
        ("-2E-3", -0.002, ""),
        ("230V", 230.0, "V"),
        ("2 ms", 2.0, "MS"),
        ("50Hz", 50.0, "HZ"),
        ("5EV", 5.0, "EV"),
        ("#H1F", 31.0, ""),
        ("#q17", 15.0, ""),
        ("#B101", 5.0, ""),
    ],
)
def test_numeric_data(text, value, suffix):
    (unit,) = units(f"VOLT {text}")
    assert unit.params == (NumberToken(value, suffix),)


def test_character_string_and_expression_data():
    (unit,) = units("""X:Y fixed, "say ""hi""; ok", 'it''s', (@1:3,5),max""")
    assert unit.params == (
        CharacterToken("FIXED"),
        StringToken('say "hi"; ok'),
        StringToken("it's"),
        ExpressionToken("@1:3,5"),
        CharacterToken("MAX"),
    )


def test_whitespace_around_separators_and_a_trailing_semicolon_are_accepted():
    first, second = units("  VOLT\t5 ,  6 ;  CURR?  ;")
    assert first.params == (NumberToken(5.0), NumberToken(6.0))
    assert second.header.mnemonics == ("CURR",)


@pytest.mark.parametrize("text", ["", "   ", "\t"])
def test_an_empty_message_has_no_units(text):
    assert units(text) == []


def test_units_before_a_broken_one_are_yielded_first():
    messages = parse_message("VOLT 5;VOLT 6 7;VOLT 8")
    assert next(messages).params == (NumberToken(5.0),)
    with pytest.raises(ScpiError) as caught:
        next(messages)
    assert caught.value.code == ErrorCode.SYNTAX_ERROR


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("VOLT\x005", ErrorCode.INVALID_CHARACTER),
        ("VO&LT 5", ErrorCode.INVALID_CHARACTER),
        ("VOLT 5\x07", ErrorCode.INVALID_CHARACTER),
        ("VOLT €", ErrorCode.INVALID_CHARACTER),
        ('SYST:TEXT "bell\x07"', ErrorCode.INVALID_CHARACTER),
        ("ROUT:CLOS (@1\x002)", ErrorCode.INVALID_CHARACTER),
        ("VOLT::LEV 5", ErrorCode.COMMAND_ERROR),
        ("VOLT: 5", ErrorCode.COMMAND_ERROR),
        (":", ErrorCode.COMMAND_ERROR),
        ("*", ErrorCode.COMMAND_ERROR),
        ("VOLT?:LEV", ErrorCode.COMMAND_ERROR),
        ("VOLT,5", ErrorCode.COMMAND_ERROR),
        ("5 VOLT", ErrorCode.COMMAND_ERROR),
        ("VOLT 5;;VOLT 6", ErrorCode.COMMAND_ERROR),
        (";VOLT 5", ErrorCode.COMMAND_ERROR),
        ("VOLT 5 6", ErrorCode.SYNTAX_ERROR),
        ("VOLT ,5", ErrorCode.SYNTAX_ERROR),
        ("VOLT 5,", ErrorCode.SYNTAX_ERROR),
        ("VOLT 5,;OUTP ON", ErrorCode.SYNTAX_ERROR),
        ("VOLT 1.5.3", ErrorCode.SYNTAX_ERROR),
        ("VOLT +", ErrorCode.SYNTAX_ERROR),
        ("VOLT #HZZ", ErrorCode.SYNTAX_ERROR),
        ("VOLT #Q8", ErrorCode.SYNTAX_ERROR),
        ("VOLT #X1", ErrorCode.SYNTAX_ERROR),
        ("VOLT 1E400", ErrorCode.NUMERIC_DATA_ERROR),
        ("VOLT #H" + "F" * 300, ErrorCode.NUMERIC_DATA_ERROR),
        ('SYST:TEXT "open', ErrorCode.INVALID_STRING_DATA),
        ("SYST:TEXT 'it''s", ErrorCode.INVALID_STRING_DATA),
        ("WAVE #15hello", ErrorCode.BLOCK_DATA_NOT_ALLOWED),
        ("ROUT:CLOS (@1,2", ErrorCode.EXPRESSION_ERROR),
    ],
)
def test_malformed_messages_raise_the_standard_error(text, code):
    assert error_of(text) == code


def test_error_entries_quote_and_escape_their_detail():
    assert ScpiError(ErrorCode.UNDEFINED_HEADER).entry() == '-113,"Undefined header"'
    assert ScpiError(ErrorCode.SYNTAX_ERROR, 'a"b\n').entry() == '-102,"Syntax error;a""b\\x0a"'
    assert ScpiError(301, "pack 3 tripped").entry() == '301,"Device-dependent error;pack 3 tripped"'
    assert len(ScpiError(ErrorCode.SYNTAX_ERROR, "x" * 10_000).entry()) < 255


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_either_parses_or_raises_a_scpi_error(text):
    try:
        parsed = units(text)
    except ScpiError as error:
        assert -199 <= error.code <= -100
    else:
        assert all(unit.header.mnemonics and all(unit.header.mnemonics) for unit in parsed)


_mnemonic = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,11}", fullmatch=True)
_number = st.floats(allow_nan=False, allow_infinity=False, width=64)
_plain_string = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20)


@st.composite
def _unit_text(draw):
    """A valid unit and the tokens it must parse to."""
    nodes = draw(st.lists(_mnemonic, min_size=1, max_size=4))
    query = draw(st.booleans())
    params = draw(
        st.lists(
            st.one_of(
                _number.map(lambda v: (repr(v), NumberToken(v))),
                _mnemonic.map(lambda m: (m, CharacterToken(m.upper()))),
                _plain_string.map(lambda s: ('"' + s.replace('"', '""') + '"', StringToken(s))),
            ),
            max_size=4,
        )
    )
    text = ":".join(nodes) + ("?" if query else "")
    if params:
        text += " " + ",".join(spelled for spelled, _ in params)
    return text, (tuple(n.upper() for n in nodes), query, tuple(token for _, token in params))


@settings(max_examples=100, deadline=None)
@given(st.lists(_unit_text(), min_size=1, max_size=4))
def test_valid_units_parse_back_to_what_was_written(written):
    parsed = units(";".join(text for text, _ in written))
    assert [(u.header.mnemonics, u.header.query, u.params) for u in parsed] == [want for _, want in written]
