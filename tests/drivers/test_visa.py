"""VisaTransport and VisaDriver over the wire: pyvisa-py against SCPI servers on 127.0.0.1 and a pty."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import closing

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.base import DriverConfig, Identity
from drivers.errors import (
    ConnectionLost,
    GarbageReply,
    InstrumentRejected,
    InstrumentTimeout,
    InstrumentUnavailable,
)
from drivers.visa import VisaDriver, VisaTransport, check_visa_resource, identity_from_idn
from harness.sim.scpi import CommandTable, Number, ScpiEngine, ScpiPtyServer, ScpiTcpServer, quote
from tests.drivers import ThreadedServer, free_port

ROLE = "battery"
IDN = "GRIDHIL,TEST-SOURCE,SN42,2.1"
VOLTAGE_MAX_V = 300.0
SHORT_TIMEOUT_S = 0.2
UNDEFINED_HEADER = -113
DATA_OUT_OF_RANGE = -222


class Source:
    """A settable DC source: what the transport tests talk to through the shared SCPI engine."""

    identity = IDN

    def __init__(self) -> None:
        self.reset()
        table = CommandTable()
        table.add(
            "[SOURce:]VOLTage[:LEVel]",
            setter=self._set_voltage,
            query=lambda: self.voltage_v,
            params=(Number(0.0, VOLTAGE_MAX_V, "V"),),
        )
        table.add("MEASure:ARRay?", query=lambda: [self.voltage_v, 2.0 * self.voltage_v, -1.5])
        table.add("SYSTem:TEXT?", query=lambda: quote("no number here"))
        self.commands = table

    def reset(self) -> None:
        self.voltage_v = 0.0

    def _set_voltage(self, value_v: float) -> None:
        self.voltage_v = value_v


@pytest.fixture
def source() -> Source:
    return Source()


@pytest.fixture
def engine(source: Source) -> ScpiEngine:
    return ScpiEngine(source)


@pytest.fixture
def server(engine: ScpiEngine) -> Iterator[ScpiTcpServer]:
    with ScpiTcpServer(engine) as running:
        yield running


@pytest.fixture
def transport(server: ScpiTcpServer) -> Iterator[VisaTransport]:
    link = VisaTransport(ROLE, server.resource, timeout_s=SHORT_TIMEOUT_S)
    link.open()
    yield link
    link.close()


# ---------------------------------------------------------------- scripted raw server

DROP = object()
"""A scripted reply: hang up instead of answering."""

Script = Callable[[str, int], "str | object | None"]
"""(line received, connection number from 0) -> reply line, None for no reply, or DROP."""


class ScriptedServer(ThreadedServer):
    """A raw line server on 127.0.0.1 that answers by script and records what it received, per connection.

    Unlike the SCPI stand-in it leaves delayed ACK on, as a plain instrument's TCP stack does.
    """

    def __init__(self, script: Script) -> None:
        self._script = script
        self.received: list[list[str]] = []
        super().__init__()

    @property
    def resource(self) -> str:
        return f"TCPIP::127.0.0.1::{self.port}::SOCKET"

    def _accepted(self, number: int) -> None:
        self.received.append([])

    def _serve(self, connection: socket.socket, number: int) -> None:
        lines = self.received[number]
        buffer = b""
        try:
            while data := connection.recv(4096):
                buffer += data
                while b"\n" in buffer:
                    raw, buffer = buffer.split(b"\n", 1)
                    line = raw.decode()
                    lines.append(line)
                    reply = self._script(line, number)
                    if reply is DROP:
                        connection.close()
                        return
                    if isinstance(reply, str):
                        connection.sendall(reply.encode() + b"\n")
        except OSError:
            pass


@pytest.fixture
def scripted(started) -> Callable[[Script], ScriptedServer]:
    return lambda script: started(closing(ScriptedServer(script)))


def identifies(then: Script) -> Script:
    """A script that answers ``*IDN?`` and hands every other line to ``then``."""
    return lambda line, number: IDN if line == "*IDN?" else then(line, number)


# ---------------------------------------------------------------- open, identify, talk


def test_open_reads_identity(transport: VisaTransport) -> None:
    assert transport.identity_text == IDN


def test_write_then_query_round_trips(transport: VisaTransport, source: Source) -> None:
    transport.write("VOLT 123.5")
    assert source.voltage_v == 123.5
    assert transport.query("VOLTage?") == "123.5"
    assert transport.query_float("SOUR:VOLT:LEV?") == 123.5


# Each example overwrites the setting it reads back, so sharing the connection between examples is sound.
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value_v=st.floats(0.0, VOLTAGE_MAX_V))
def test_any_setting_in_range_reads_back(transport: VisaTransport, source: Source, value_v: float) -> None:
    transport.write(f"VOLT {value_v!r}")
    assert source.voltage_v == value_v
    assert transport.query_float("VOLT?") == pytest.approx(value_v, rel=1e-9, abs=1e-12)


def test_query_floats_splits_the_list(transport: VisaTransport) -> None:
    transport.write("VOLT 10")
    assert transport.query_floats("MEAS:ARR?") == [10.0, 20.0, -1.5]


def test_garbage_reply_to_query_float_names_role_resource_command(transport: VisaTransport) -> None:
    with pytest.raises(GarbageReply) as caught:
        transport.query_float("SYST:TEXT?")
    message = str(caught.value)
    assert ROLE in message and transport.resource in message and "SYST:TEXT?" in message
    with pytest.raises(GarbageReply):
        transport.query_floats("SYST:TEXT?")


@pytest.mark.parametrize(
    ("command", "code"),
    [("VOLT 999", DATA_OUT_OF_RANGE), ("VOLTAGE:BOGUS 1", UNDEFINED_HEADER)],
)
def test_rejected_write_raises_with_the_scpi_code(transport: VisaTransport, command: str, code: int) -> None:
    with pytest.raises(InstrumentRejected) as caught:
        transport.write(command)
    assert caught.value.code == code
    assert caught.value.command == command and caught.value.role == ROLE
    transport.write("VOLT 5")  # the queue was read empty: the next good write passes


def test_every_queued_error_is_reported_oldest_first(server: ScpiTcpServer) -> None:
    link = VisaTransport(ROLE, server.resource, timeout_s=SHORT_TIMEOUT_S, check_errors=False)
    link.open()
    try:
        link.write("VOLT 999")
        link.write("BOGUS")
        link.check_errors = True
        with pytest.raises(InstrumentRejected) as caught:
            link.write("VOLT 1")
        link.write("VOLT 2")
    finally:
        link.close()
    assert caught.value.code == DATA_OUT_OF_RANGE
    assert caught.value.problem.index(str(DATA_OUT_OF_RANGE)) < caught.value.problem.index(
        str(UNDEFINED_HEADER)
    )


def test_without_error_checking_a_bad_write_passes_silently(server: ScpiTcpServer) -> None:
    link = VisaTransport(ROLE, server.resource, timeout_s=SHORT_TIMEOUT_S, check_errors=False)
    link.open()
    try:
        link.write("VOLT 999")
        assert link.query("SYST:ERR?").startswith(str(DATA_OUT_OF_RANGE))
    finally:
        link.close()


def test_a_rejected_query_reports_the_scpi_error_not_a_timeout(transport: VisaTransport) -> None:
    with pytest.raises(InstrumentRejected) as caught:
        transport.query("BOGUS?")
    assert caught.value.code == UNDEFINED_HEADER


def test_over_a_pty_with_an_asrl_resource(engine: ScpiEngine, source: Source) -> None:
    with ScpiPtyServer(engine) as pty:
        link = VisaTransport(ROLE, pty.resource, timeout_s=1.0)
        link.open()
        try:
            link.write("VOLT 42")
            assert link.query_float("VOLT?") == 42.0
            assert link.identity_text == IDN
        finally:
            link.close()


# ---------------------------------------------------------------- things going wrong


def test_closed_port_is_unavailable_naming_role_and_resource() -> None:
    resource = f"TCPIP::127.0.0.1::{free_port()}::SOCKET"
    link = VisaTransport(ROLE, resource, timeout_s=SHORT_TIMEOUT_S)
    with pytest.raises(InstrumentUnavailable) as caught:
        link.open()
    assert caught.value.role == ROLE and caught.value.resource == resource
    assert ROLE in str(caught.value) and resource in str(caught.value)


def test_silent_instrument_is_unavailable(scripted) -> None:
    silent = scripted(lambda line, number: None)
    with pytest.raises(InstrumentUnavailable, match=r"\*IDN\?"):
        VisaTransport(ROLE, silent.resource, timeout_s=SHORT_TIMEOUT_S).open()


def test_no_reply_times_out_after_one_retry_on_a_new_connection(scripted) -> None:
    mute = scripted(identifies(lambda line, number: None))
    link = VisaTransport(ROLE, mute.resource, timeout_s=SHORT_TIMEOUT_S)
    link.open()
    try:
        with pytest.raises(InstrumentTimeout) as caught:
            link.query("MEAS:VOLT?")
    finally:
        link.close()
    assert caught.value.command == "MEAS:VOLT?" and "0.2 s" in caught.value.problem
    asked = [lines.count("MEAS:VOLT?") for lines in mute.received]
    assert asked == [1, 1]


def test_query_dropped_mid_reply_is_retried_once_and_succeeds(scripted) -> None:
    def first_connection_hangs_up(line: str, number: int) -> str | object:
        return DROP if number == 0 else "230.0"

    flaky = scripted(identifies(first_connection_hangs_up))
    link = VisaTransport(ROLE, flaky.resource, timeout_s=SHORT_TIMEOUT_S)
    link.open()
    try:
        assert link.query_float("MEAS:VOLT?") == 230.0
    finally:
        link.close()
    assert len(flaky.received) == 2


def test_instrument_restart_between_queries_reconnects(server: ScpiTcpServer, engine, source) -> None:
    link = VisaTransport(ROLE, server.resource, timeout_s=SHORT_TIMEOUT_S)
    link.open()
    try:
        link.write("VOLT 7")
        port = server.port
        server.close()
        with ScpiTcpServer(engine, port=port):
            assert link.query_float("VOLT?") == 7.0
    finally:
        link.close()


def test_a_write_on_a_dropped_connection_is_not_retried(server: ScpiTcpServer, engine, source) -> None:
    link = VisaTransport(ROLE, server.resource, timeout_s=SHORT_TIMEOUT_S)
    link.open()
    try:
        port = server.port
        server.close()
        with ScpiTcpServer(engine, port=port), pytest.raises(ConnectionLost) as caught:
            link.write("VOLT 9")
    finally:
        link.close()
    assert caught.value.command == "VOLT 9"
    assert source.voltage_v == 0.0


def test_closed_transport_refuses_instead_of_reopening(transport: VisaTransport) -> None:
    transport.close()
    transport.close()
    with pytest.raises(ConnectionLost, match="not open"):
        transport.query("VOLT?")
    with pytest.raises(ConnectionLost, match="not open"):
        transport.write("VOLT 1")


def test_no_delayed_ack_stall_between_a_write_and_a_query(scripted) -> None:
    """With Nagle on, each query after a reply-less write waits for the peer's delayed ACK (~40 ms)."""
    plain = scripted(identifies(lambda line, number: "1" if line.endswith("?") else None))
    link = VisaTransport(ROLE, plain.resource, timeout_s=1.0, check_errors=False)
    link.open()
    try:
        started = time.perf_counter()
        for _ in range(20):
            link.write("OUTP 1")
            link.query("OUTP?")
        elapsed_s = time.perf_counter() - started
    finally:
        link.close()
    assert elapsed_s < 0.4


# ---------------------------------------------------------------- resource strings, identity


@pytest.mark.parametrize(
    "resource",
    [
        "TCPIP::10.0.0.20::60000::SOCKET",
        "TCPIP0::lab-psu::hislip0::INSTR",
        "ASRL/dev/ttyUSB0::INSTR",
        "GPIB0::5::INSTR",
    ],
)
def test_good_resources_pass(resource: str) -> None:
    check_visa_resource(resource)


@pytest.mark.parametrize(
    ("resource", "complaint"),
    [
        ("", "unknown interface"),
        ("10.0.0.20:5025", "unknown interface"),
        ("TCPIP::::5025::SOCKET", "host"),
        ("TCPIP::10.0.0.20::http::SOCKET", "port 'http'"),
        ("TCPIP::10.0.0.20::70000::SOCKET", "port '70000'"),
    ],
)
def test_malformed_resources_say_what_is_wrong(resource: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint) as caught:
        check_visa_resource(resource)
    assert repr(resource) in str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (IDN, Identity("GRIDHIL", "TEST-SOURCE", "SN42", "2.1")),
        ("Chroma, 63203 ,12345678,01.00", Identity("Chroma", "63203", "12345678", "01.00")),
        ("ACME,X1", Identity("ACME", "X1", "", "")),
        ("ACME,X1,0,fw 1.0,build 7", Identity("ACME", "X1", "0", "fw 1.0,build 7")),
    ],
)
def test_identity_parsing_is_lenient(text: str, expected: Identity) -> None:
    assert identity_from_idn(text) == expected


class TestSourceDriver(VisaDriver):
    __test__ = False

    def safe(self) -> None:
        self.transport.write("VOLT 0")


def test_driver_base_opens_identifies_and_goes_safe(server: ScpiTcpServer, source: Source) -> None:
    config = DriverConfig(ROLE, server.resource, options={"timeout_s": 1, "visa_library": "@py"})
    with TestSourceDriver(config) as driver:
        assert driver.transport.timeout_s == 1.0
        assert driver.identity() == Identity("GRIDHIL", "TEST-SOURCE", "SN42", "2.1")
        driver.transport.write("VOLT 50")
        driver.safe()
    assert source.voltage_v == 0.0
    TestSourceDriver.check_resource(server.resource)
    with pytest.raises(ValueError, match="timeout_s"):
        TestSourceDriver(DriverConfig(ROLE, server.resource, options={"timeout_s": "fast"}))


def test_closing_one_transport_leaves_the_others_sessions_open(scripted) -> None:
    server = scripted(identifies(lambda line, number: "1.5"))
    first = VisaTransport("battery", server.resource, check_errors=False)
    second = VisaTransport("grid", server.resource, check_errors=False)
    first.open()
    second.open()
    try:
        first.close()
        assert second.query("MEAS:VOLT?") == "1.5"
    finally:
        second.close()
    # pyvisa shares one resource manager per VISA library: closing it with the first transport would
    # have dropped the second's session, and its query would have gone out on a third connection.
    assert [lines for lines in server.received if "MEAS:VOLT?" in lines] == [["*IDN?", "MEAS:VOLT?"]]
    assert len(server.received) == 2
