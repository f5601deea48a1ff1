"""Garbage on a raw socket: arbitrary bytes, malformed MBAP headers and PDUs, huge lengths, connections cut
half-way. The stand-in must survive all of it, keep answering well-formed requests on fresh connections, and
change nothing in the state behind it."""

from __future__ import annotations

import logging
import socket
import struct
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.sim.modbus import Access, Framing, ModbusStandIn, Point, PointType, Range, RegisterMap
from tests.sim.modbus import client_of

UNIT = 0x5A
BASE = 0x7000  # away from the small addresses a fuzzer favours
SETTING_INITIAL = 123_456_789
SETTING_RANGE = Range(SETTING_INITIAL - 50, SETTING_INITIAL + 50)  # narrow: random words cannot hit it
HANGUP_DEADLINE_S = 5.0


class Backing:
    """The state behind the map: a reading, and a setting whose writes are recorded."""

    def __init__(self) -> None:
        self.reading = 4242
        self.writes: list[object] = []


def fuzz_map(backing: Backing) -> RegisterMap:
    regmap = RegisterMap(
        [
            Point("Reading", PointType.UINT16, BASE),
            Point(
                "Setting",
                PointType.INT32,
                BASE + 1,
                access=Access.RW,
                validator=SETTING_RANGE,
                value=SETTING_INITIAL,
            ),
            Point("Label", PointType.STRING, BASE + 3, size=2, value="ok"),
        ]
    )
    regmap.bind_getter("Reading", lambda: backing.reading)
    regmap.bind_apply("Setting", backing.writes.append)
    return regmap


@pytest.fixture(scope="module", params=[Framing.SOCKET, Framing.RTU], ids=["mbap", "rtu"])
def served(request):
    backing = Backing()
    with ModbusStandIn({UNIT: fuzz_map(backing)}, framer=request.param) as stand_in:
        yield stand_in, backing, request.param


def mbap(tid: int, protocol: int, length: int, unit: int, pdu: bytes) -> bytes:
    return struct.pack(">HHHB", tid, protocol, length, unit) + pdu


def crc16(frame: bytes) -> bytes:
    """Modbus RTU CRC (reflected polynomial 0xA001, initial 0xFFFF), low byte first on the wire."""
    crc = 0xFFFF
    for byte in frame:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc.to_bytes(2, "little")


u16 = st.integers(0, 0xFFFF)
units = st.one_of(st.just(UNIT), st.integers(0, 255))
addresses = st.one_of(st.just(BASE + 1), st.integers(BASE - 2, BASE + 6), u16)  # BASE + 1: the setting
counts = st.one_of(st.sampled_from([0, 1, 2, 3, 5, 0x7B, 0x7C, 0x7D, 0x7E, 2000, 0xFFFF]), u16)
well_formed_pdus = st.one_of(  # requests a client could send, at and around the map: refused, or read
    st.builds(lambda address, count: struct.pack(">BHH", 3, address, count), addresses, st.integers(1, 125)),
    st.builds(lambda address, value: struct.pack(">BHH", 6, address, value), addresses, u16),
    st.builds(
        lambda address, values: (
            struct.pack(">BHHB", 16, address, len(values), 2 * len(values))
            + struct.pack(f">{len(values)}H", *values)
        ),
        addresses,
        st.lists(u16, min_size=1, max_size=6),
    ),
    st.builds(lambda address, mask: struct.pack(">BHHH", 22, address, *mask), addresses, st.tuples(u16, u16)),
)
odd_pdus = st.builds(  # a known or unknown function with odd fields and trailing bytes
    lambda fc, address, count, tail: struct.pack(">BHH", fc, address, count) + tail,
    st.one_of(st.sampled_from([1, 2, 3, 4, 5, 6, 8, 15, 16, 17, 22, 23, 43, 0x83]), st.integers(0, 255)),
    addresses,
    counts,
    st.binary(max_size=12),
)
bad_byte_counts = st.builds(  # write multiple registers; count, byte count and payload agree only by chance
    lambda address, count, byte_count, values: struct.pack(">BHHB", 16, address, count, byte_count) + values,
    addresses,
    counts,
    st.integers(0, 255),
    st.binary(max_size=40),
)
pdus = st.one_of(st.binary(max_size=40), well_formed_pdus, odd_pdus, bad_byte_counts)


@st.composite
def mbap_frames(draw: st.DrawFn) -> bytes:
    """MBAP frames, mostly framed consistently so that the PDU reaches the decoder and the datastore."""
    pdu = draw(pdus)
    if draw(st.integers(0, 3)):
        return mbap(draw(u16), 0, len(pdu) + 1, draw(units), pdu)
    length = draw(st.one_of(u16, st.sampled_from([0, 1, 2, 0xFFFF])))
    return mbap(draw(u16), draw(st.one_of(st.just(0), u16)), length, draw(units), pdu)


@st.composite
def rtu_frames(draw: st.DrawFn) -> bytes:
    """RTU frames, with a correct CRC most of the time."""
    frame = bytes([draw(units)]) + draw(pdus)
    return frame + (crc16(frame) if draw(st.integers(0, 3)) else draw(st.binary(min_size=2, max_size=2)))


def payloads(framing: Framing) -> st.SearchStrategy[list[bytes]]:
    """Mostly frames in the server's own framing, so that they get past the framer into the PDU decoder and
    the datastore; the rest is noise, and frames in the other framing."""
    own = mbap_frames() if framing is Framing.SOCKET else rtu_frames()
    noise = st.one_of(st.binary(max_size=600), mbap_frames(), rtu_frames())
    return st.lists(st.one_of(own, own, noise), min_size=1, max_size=4)


endings = st.sampled_from(["close", "half-close", "reset"])


def send_garbage(port: int, chunks: list[bytes], ending: str) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=HANGUP_DEADLINE_S) as connection:
        try:
            for chunk in chunks:
                connection.sendall(chunk)
            if ending == "half-close":
                connection.shutdown(socket.SHUT_WR)
                deadline = time.monotonic() + HANGUP_DEADLINE_S
                while connection.recv(4096) and time.monotonic() < deadline:
                    pass  # whatever the server answers, until it hangs up too
            elif ending == "reset":
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass  # the server may hang up on garbage first; that is fine


def assert_answers_correctly(stand_in: ModbusStandIn, backing: Backing, framing: Framing) -> None:
    with client_of(stand_in, rtu=framing is Framing.RTU) as client:
        response = client.read_holding_registers(BASE, count=5, device_id=UNIT)
    assert not response.isError(), response
    setting = client.convert_from_registers(response.registers[1:3], client.DATATYPE.INT32)
    assert (response.registers[0], setting, response.registers[3:]) == (4242, SETTING_INITIAL, [0x6F6B, 0])
    assert backing.writes == []


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), ending=endings)
def test_garbage_never_hurts_the_stand_in_or_what_is_behind_it(served, data, ending, caplog):
    stand_in, backing, framing = served
    send_garbage(stand_in.port, data.draw(payloads(framing), label="chunks"), ending)
    assert_answers_correctly(stand_in, backing, framing)
    assert not [r for r in caplog.records if r.name.startswith("harness") and r.levelno >= logging.ERROR]


def test_a_connection_left_open_mid_frame_does_not_block_others(served):
    stand_in, backing, framing = served
    with socket.create_connection(("127.0.0.1", stand_in.port)) as stalled:
        stalled.sendall(mbap(1, 0, 200, UNIT, b"\x03\x70"))  # announces 200 bytes, sends 2
        assert_answers_correctly(stand_in, backing, framing)


def test_a_flood_beyond_any_frame_size_is_dropped_and_the_next_connection_is_served(served):
    stand_in, backing, framing = served
    send_garbage(stand_in.port, [mbap(7, 0, 0xFFFF, UNIT, b"\x10" * 4000)], "half-close")
    assert_answers_correctly(stand_in, backing, framing)
