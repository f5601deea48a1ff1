"""Garbage never crashes, desynchronises or silently reconfigures a stand-in, however it is cut up."""

from __future__ import annotations

import itertools
import re
import socket
import uuid

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from harness.sim.scpi import LineChannel, ScpiEngine, ScpiTcpServer
from tests.sim.scpi import IDENTITY, Supply

pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")

SET_POINT = "123.0"
OVERLONG_BYTES = 70_000  # over the server's 64 KiB line bound
_ENTRY = re.compile(r'-?\d+,".*"')


@pytest.fixture(scope="module")
def server():
    supply = Supply()
    with ScpiTcpServer(ScpiEngine(supply, lock=supply.lock)) as tcp:
        with socket.create_connection(("127.0.0.1", tcp.port), timeout=2.0) as connection:
            connection.sendall(f"VOLT {SET_POINT};*OPC?\n".encode())
            assert connection.makefile("rb").readline() == b"1\n"
        yield tcp


# Well-formed-looking voltage commands that must all be refused, whatever garbage precedes them.
_refused_voltage = st.one_of(
    st.sampled_from(
        [
            "VOLT",
            "VOLT 5,6",
            "VOLT 5 6",
            "VOLT ON",
            'VOLT "5"',
            "VOLT 5 A",
            "VOLT (@5)",
            "VOLT::LEV 5",
            "VOLT 1E999",
            "VOLTA 5",
            "VOLT 5\x00",
            "VOLT #15hello",
            "SOUR:VOLT:LEV:IMM:AMPL:AC 5",
        ]
    ),
    st.floats(min_value=300.0, exclude_min=True, allow_infinity=False).map(lambda v: f"VOLT {v!r}"),
    st.floats(max_value=0.0, exclude_max=True, allow_infinity=False).map(lambda v: f":volt {v!r} V"),
).map(lambda text: text.encode() + b"\n")


def _overlong(chunk: bytes, terminated: bool) -> bytes:
    return chunk * (OVERLONG_BYTES // len(chunk) + 1) + (b"\n" if terminated else b"")


# Single bytes that frame, separate or quote in SCPI, control bytes, and bytes that break UTF-8.
_EDGE_BYTES = [
    b"\x00", b"\x07", b"\x08", b"\t", b"\n", b"\x0b", b"\r", b"\x1b", b"\x7f", b" ", b";", b":", b",",
    b"*", b"?", b"#", b"(", b")", b"@", b'"', b"'", b"\x80", b"\xc3", b"\xfe", b"\xff",
]  # fmt: skip
# Fragments that are meaningful in combination: terminators, empty strings, queries, block and
# non-decimal headers, an overflowing number, and UTF-8 that is overlong, a surrogate or a BOM.
_EDGE_FRAGMENTS = [
    b"\r\n", b"\n\r", b"\r\r\n", b'""', b"''", b"*IDN?", b"OUTP?", b"SYST:ERR?", b"*OPC?", b";;", b"::",
    b"#H", b"#HFF", b"#1", b"#9", b"(@", b"(@1:", b"1E999", b"\xc0\x80", b"\xed\xa0\x80", b"\xef\xbb\xbf",
]  # fmt: skip
_edge = st.one_of(
    st.sampled_from(_EDGE_BYTES),
    st.sampled_from(_EDGE_FRAGMENTS),
    st.builds(bytes.__mul__, st.sampled_from(_EDGE_BYTES), st.integers(2, 512) | st.just(OVERLONG_BYTES)),
)
# Arbitrary binary with an edge byte, fragment or run after every chunk (so at least one per segment).
_edged = st.lists(st.tuples(st.binary(max_size=40), _edge), min_size=1, max_size=12).map(
    lambda pairs: b"".join(chunk + edge for chunk, edge in pairs)
)

# Segments of garbage, each tagged True if it is one of the refused voltage commands above.
_segment = st.one_of(
    _edged.map(lambda segment: (segment, False)),
    st.binary(max_size=300).map(lambda segment: (segment, False)),
    st.text(max_size=100).map(lambda text: (text.encode(), False)),
    st.builds(
        _overlong, st.binary(min_size=1, max_size=8).filter(lambda b: b"\n" not in b), st.booleans()
    ).map(lambda segment: (segment, False)),
    _refused_voltage.map(lambda segment: (segment, True)),
)
# At least one edge-laden segment in every example, anywhere among the others.
_garbage = st.builds(
    lambda before, edged, after: [*before, (edged, False), *after],
    st.lists(_segment, max_size=3),
    _edged,
    st.lists(_segment, max_size=3),
)


def _may_set_voltage(segment: bytes) -> bool:
    lowered = segment.lower()
    return b"volt" in lowered or b"rst" in lowered


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_garbage)
def test_garbage_leaves_the_connection_in_sync_and_the_state_alone(server, tagged):
    assume(not any(_may_set_voltage(segment) for segment, refused in tagged if not refused))
    marker = f'"{uuid.uuid4().hex}"'
    with socket.create_connection(("127.0.0.1", server.port), timeout=5.0) as connection:
        replies = connection.makefile("rb")

        def query(message: str) -> str:
            connection.sendall(message.encode() + b"\n")
            return replies.readline().decode()

        garbage = b"".join(segment for segment, _ in tagged)
        connection.sendall(garbage + b"\n" + f"ECHO? {marker}\n".encode())
        # Whatever the garbage's own queries answered comes first; the marker's echo ends it.
        while (line := replies.readline().decode()) != marker + "\n":
            assert line, "the server hung up"
        entries = [query("SYST:ERR?") for _ in range(21)]
        assert entries[-1] == '0,"No error"\n'
        assert all(_ENTRY.fullmatch(entry.rstrip("\n")) for entry in entries)
        assert query("*IDN?") == IDENTITY + "\n"
        assert query("VOLT?") == SET_POINT + "\n"


def _run_through_line_channel(stream: bytes, cuts: list[int]) -> tuple[bytes, list[str], float]:
    """Feed ``stream`` to a fresh stand-in in pieces cut at ``cuts``: its replies, error queue, voltage."""
    supply = Supply()
    session = ScpiEngine(supply, lock=supply.lock).open_session()
    channel = LineChannel(session)
    bounds = [0, *sorted(cuts), len(stream)]
    replies = b"".join(channel.feed(stream[start:stop]) for start, stop in itertools.pairwise(bounds))
    replies += channel.finish()
    errors = []
    while (entry := session.execute("SYST:ERR?")) != '0,"No error"':
        errors.append(entry)
    return replies, errors, supply.voltage_v


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_garbage, st.data())
def test_how_the_stream_is_cut_into_reads_changes_nothing(tagged, data):
    stream = b"".join(segment for segment, _ in tagged)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=8), label="cuts")
    assert _run_through_line_channel(stream, cuts) == _run_through_line_channel(stream, [])
