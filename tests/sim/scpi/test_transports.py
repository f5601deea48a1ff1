"""The TCP and pty servers, driven by real clients: pyvisa-py (SOCKET and ASRL), pyserial, raw sockets."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

import pytest
import pyvisa
import serial

from harness.sim.scpi import ScpiEngine, ScpiPtyServer, ScpiTcpServer
from tests.sim.scpi import IDENTITY, Supply

pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")

TIMEOUT_S = 2.0


@pytest.fixture(scope="module")
def visa():
    manager = pyvisa.ResourceManager("@py")
    yield manager
    manager.close()


@pytest.fixture
def supply():
    return Supply()


@pytest.fixture
def engine(supply):
    return ScpiEngine(supply, lock=supply.lock)


@pytest.fixture
def tcp(engine):
    with ScpiTcpServer(engine) as server:
        yield server


@pytest.fixture
def pty(engine):
    with ScpiPtyServer(engine) as server:
        yield server


def open_visa(visa, resource: str):
    return visa.open_resource(
        resource, read_termination="\n", write_termination="\n", timeout=int(TIMEOUT_S * 1000)
    )


@pytest.fixture
def visa_tcp(visa, tcp):
    instrument = open_visa(visa, tcp.resource)
    yield instrument
    instrument.close()


def errors(query: Callable[[str], str]) -> list[int]:
    """Every queued error code through ``query``, oldest first."""
    codes = []
    while (entry := query("SYST:ERR?").strip()) != '0,"No error"':
        codes.append(int(entry.split(",")[0]))
        assert len(codes) <= 20
    return codes


def raw_connection(server: ScpiTcpServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT_S)


def read_line(connection: socket.socket) -> bytes:
    line = b""
    while not line.endswith(b"\n"):
        chunk = connection.recv(1)
        if not chunk:
            break
        line += chunk
    return line


def finishes(action: Callable[[], None]) -> bool:
    """Whether ``action`` returns within the timeout (run in a thread, so a hang cannot hang the test)."""
    thread = threading.Thread(target=action, daemon=True)
    thread.start()
    thread.join(TIMEOUT_S * 2)
    return not thread.is_alive()


# ---------------------------------------------------------------- TCP


def test_tcp_resource_names_the_loopback_port(tcp):
    assert tcp.host == "127.0.0.1"
    assert tcp.resource == f"TCPIP::127.0.0.1::{tcp.port}::SOCKET"


def test_tcp_queries_and_compound_queries_through_pyvisa(visa_tcp, supply):
    assert visa_tcp.query("*IDN?") == IDENTITY
    visa_tcp.write("sour:volt 12.5 V;:OUTP ON")
    assert visa_tcp.query("*OPC?") == "1"  # the commands before it have run
    assert (supply.voltage_v, supply.output) == (12.5, True)
    assert visa_tcp.query("VOLT?;:OUTP?;:MEAS:VOLT?;*OPC?") == "12.5;1;12.5;1"


def test_tcp_error_queue_after_garbage(visa_tcp, supply):
    visa_tcp.write_raw(b"\x00\x01\x02\n\xff\xfe garbage\nVOLT 1e6\nVOLT?;FOO;VOLT?\n")
    assert visa_tcp.read() == "0.0"
    assert errors(visa_tcp.query) == [-101, -101, -222, -113]
    assert visa_tcp.query("*IDN?") == IDENTITY
    assert supply.voltage_v == 0.0


def test_tcp_two_clients_at_once_share_the_instrument_but_not_their_error_queues(visa, tcp, supply):
    first, second = open_visa(visa, tcp.resource), open_visa(visa, tcp.resource)
    failures: list[str] = []

    def hammer(instrument, bad: str, volts: float) -> None:
        for _ in range(25):
            instrument.write(bad)
            if instrument.query("*IDN?") != IDENTITY:
                failures.append("identity")
        instrument.query(f"VOLT {volts};*OPC?")

    threads = [
        threading.Thread(target=hammer, args=(first, "FOO", 1.0)),
        threading.Thread(target=hammer, args=(second, "VOLT 1000", 2.0)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert failures == []
        assert set(errors(first.query)) == {-113, -350}
        assert set(errors(second.query)) == {-222, -350}
        assert first.query("VOLT?") == second.query("VOLT?") == str(supply.voltage_v)
    finally:
        first.close()
        second.close()


def test_tcp_overlong_line_is_discarded_with_an_error(visa_tcp, supply):
    visa_tcp.write_raw(b"VOLT 5;" + b" " * 100_000 + b"VOLT 6\n")
    assert visa_tcp.query("*IDN?") == IDENTITY
    assert errors(visa_tcp.query) == [-363]
    assert supply.voltage_v == 0.0


def test_tcp_half_closed_client_still_gets_its_reply(tcp):
    with raw_connection(tcp) as connection:
        connection.sendall(b"VOLT 3\nVOLT?")  # no terminator: end of input ends the message
        connection.shutdown(socket.SHUT_WR)
        assert read_line(connection) == b"3.0\n"
        assert connection.recv(1) == b""


def test_tcp_close_disconnects_clients_is_idempotent_and_stops_listening(engine):
    server = ScpiTcpServer(engine).start()
    port = server.port
    with raw_connection(server) as idle, raw_connection(server) as flooding:
        flooding.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        flooding.settimeout(0.2)
        with pytest.raises(TimeoutError):  # never reads: the server blocks writing replies
            while True:
                flooding.send(b";".join([b"*IDN?"] * 100) + b"\n")
        assert finishes(server.close)
        assert idle.recv(1) == b""
    server.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S)


def test_tcp_server_starts_once_and_knows_its_port_only_when_started(engine):
    server = ScpiTcpServer(engine)
    with pytest.raises(RuntimeError):
        _ = server.port
    with server, pytest.raises(RuntimeError):
        server.start()
    with pytest.raises(RuntimeError):
        server.start()


# ---------------------------------------------------------------- pty


def test_pty_resource_names_the_slave_device(pty):
    assert pty.device_path.startswith("/dev/")
    assert pty.resource == f"ASRL{pty.device_path}::INSTR"


def test_pty_queries_compound_queries_and_errors_through_pyserial(pty, supply):
    with serial.Serial(pty.device_path, timeout=TIMEOUT_S) as port:

        def query(message: str) -> str:
            port.write(message.encode() + b"\r\n")
            return port.readline().decode()

        assert query("*IDN?") == IDENTITY + "\n"
        assert query("VOLT 42;VOLT?;:OUTP?") == "42.0;0\n"
        port.write(b"\x00\n\xc3(\nVOLT 999\n")
        assert errors(query) == [-101, -101, -222]
        assert supply.voltage_v == 42.0


def test_pty_through_pyvisa_asrl(visa, pty, supply):
    instrument = open_visa(visa, pty.resource)
    try:
        assert instrument.query("*IDN?") == IDENTITY
        instrument.write("OUTP ON;:VOLT 7")
        assert instrument.query("MEAS:VOLT?;:OUTP?") == "7.0;1"
        instrument.write_raw(b"\xff\n")
        assert errors(instrument.query) == [-101]
    finally:
        instrument.close()


def test_pty_close_is_prompt_even_with_a_client_that_stopped_reading(engine):
    server = ScpiPtyServer(engine).start()
    with serial.Serial(server.device_path, timeout=TIMEOUT_S, write_timeout=0.2) as port:
        with pytest.raises(serial.SerialTimeoutException):
            while True:
                port.write(b"*IDN?\n" * 1000)
        assert finishes(server.close)
    server.close()


# ---------------------------------------------------------------- both at once


def test_clients_on_both_transports_see_one_consistent_plant(visa, tcp, pty, supply):
    """TCP and pty clients on one engine, while a plant thread steps: every message sees one state."""
    stop = threading.Event()
    replies: list[str] = []

    def run_plant() -> None:
        while not stop.wait(0.0002):  # a plant ticking every 0.2 ms, not a busy loop hogging the GIL
            supply.step()

    def poll_tcp() -> None:
        instrument = open_visa(visa, tcp.resource)
        replies.extend(instrument.query("PLAN:A?;B?") for _ in range(200))
        instrument.close()

    def poll_pty() -> None:
        with serial.Serial(pty.device_path, timeout=TIMEOUT_S) as port:
            for _ in range(200):
                port.write(b"PLAN:A?;B?\n")
                replies.append(port.readline().decode().strip())

    plant = threading.Thread(target=run_plant)
    clients = [threading.Thread(target=poll_tcp), threading.Thread(target=poll_pty)]
    plant.start()
    for client in clients:
        client.start()
    for client in clients:
        client.join()
    stop.set()
    plant.join()
    assert len(replies) == 400
    pairs = [reply.split(";") for reply in replies]
    assert all(a == b for a, b in pairs)
    assert len({a for a, _ in pairs}) > 1  # the plant did move between messages
