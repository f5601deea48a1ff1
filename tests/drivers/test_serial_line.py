"""SerialLineTransport and SerialDriver over the wire: the relay box on a pty, a line server on socket://."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import closing

import pytest

from drivers.base import DriverConfig, Identity
from drivers.errors import ConnectionLost, InstrumentTimeout, InstrumentUnavailable
from drivers.serial_line import (
    SerialDriver,
    SerialLineTransport,
    check_serial_resource,
    parse_serial_resource,
)
from harness.sim.standins.relay_box import VERSION, NumatoTerminal, RelayBox
from tests.drivers import ThreadedServer, bench_plant, free_port

ROLE = "relays"
PROMPT = b">"
SHORT_TIMEOUT_S = 0.2


@pytest.fixture
def box(started, lock) -> RelayBox:
    return started(RelayBox(bench_plant(packs=4), lock))


@pytest.fixture
def relays(box: RelayBox) -> Iterator[SerialLineTransport]:
    link = SerialLineTransport(ROLE, box.resource, timeout_s=1.0)
    link.open()
    yield link
    link.close()


class LineServer(ThreadedServer):
    """A Numato-style terminal on a TCP socket, for ``socket://``: ``execute(line)`` answers each line.

    ``execute`` returning ``HANG_UP`` closes the connection instead of answering.
    """

    HANG_UP = "<hang up>"

    def __init__(self, execute: Callable[[str], str | None]) -> None:
        self._execute = execute
        super().__init__()

    @property
    def resource(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def _serve(self, connection: socket.socket, number: int) -> None:
        hung_up = threading.Event()

        def execute(line: str) -> str | None:
            reply = self._execute(line)
            if reply == self.HANG_UP:
                hung_up.set()
                return None
            return reply

        terminal = NumatoTerminal(execute)
        with contextlib.suppress(OSError):
            while data := connection.recv(4096):
                reply = terminal.feed(data)
                if hung_up.is_set():
                    connection.close()
                    return
                connection.sendall(reply)


@pytest.fixture
def line_server(started) -> Callable[[Callable[[str], str | None]], LineServer]:
    return lambda execute: started(closing(LineServer(execute)))


def numato_version(line: str) -> str | None:
    return {"ver": VERSION, "id get": "ABCD1234", "bye": LineServer.HANG_UP}.get(line)


# ---------------------------------------------------------------- talking


def test_relay_box_exchange_over_a_pty(relays: SerialLineTransport) -> None:
    assert relays.exchange("ver", PROMPT) == f"ver\r\n{VERSION}\r\n>".encode()
    relays.exchange("relay on 3", PROMPT)
    assert b"\r\non\r\n" in relays.exchange("relay read 3", PROMPT)
    assert relays.exchange("relay readall", PROMPT) == b"relay readall\r\n0008\r\n>"
    relays.exchange("reset", PROMPT)
    assert b"\r\noff\r\n" in relays.exchange("relay read 3", PROMPT)


def test_same_protocol_over_socket_url(line_server) -> None:
    server = line_server(numato_version)
    link = SerialLineTransport(ROLE, server.resource, timeout_s=1.0)
    link.open()
    try:
        assert link.exchange("id get", PROMPT) == b"id get\r\nABCD1234\r\n>"
    finally:
        link.close()


def test_bytes_after_the_marker_wait_for_the_next_read(relays: SerialLineTransport) -> None:
    relays.write_line("ver")
    assert relays.read_until(b"\r\n") == b"ver\r\n"
    assert relays.read_until(PROMPT) == f"{VERSION}\r\n>".encode()


def test_exchange_drops_what_an_earlier_reply_left_unread(relays: SerialLineTransport) -> None:
    assert relays.exchange("ver", b"\r\n") == b"ver\r\n"  # the version and prompt stay unread
    assert relays.exchange("id get", PROMPT).startswith(b"id get\r\n")


def test_missing_marker_times_out_showing_what_came(line_server) -> None:
    server = line_server(numato_version)
    link = SerialLineTransport(ROLE, server.resource, timeout_s=SHORT_TIMEOUT_S)
    link.open()
    try:
        with pytest.raises(InstrumentTimeout) as caught:
            link.exchange("ver", b"#")
    finally:
        link.close()
    assert caught.value.command == "ver" and caught.value.role == ROLE
    assert VERSION in caught.value.problem and "0.2 s" in caught.value.problem


def test_dropped_connection_is_lost_not_retried(line_server) -> None:
    server = line_server(numato_version)
    link = SerialLineTransport(ROLE, server.resource, timeout_s=1.0)
    link.open()
    try:
        with pytest.raises(ConnectionLost) as caught:
            link.exchange("bye", PROMPT)
    finally:
        link.close()
    assert caught.value.command == "bye"


# ---------------------------------------------------------------- opening


@pytest.mark.parametrize(
    "resource",
    [lambda: f"socket://127.0.0.1:{free_port()}", lambda: "serial:///dev/gridhil-no-such-port?baudrate=9600"],
)
def test_nothing_there_is_unavailable_naming_role_and_resource(resource: Callable[[], str]) -> None:
    where = resource()
    link = SerialLineTransport(ROLE, where, timeout_s=SHORT_TIMEOUT_S)
    with pytest.raises(InstrumentUnavailable) as caught:
        link.open()
    assert caught.value.role == ROLE and caught.value.resource == where and where in str(caught.value)


def test_a_local_port_is_opened_exclusively(relays: SerialLineTransport, box: RelayBox) -> None:
    second = SerialLineTransport("other", box.resource, timeout_s=SHORT_TIMEOUT_S)
    with pytest.raises(InstrumentUnavailable, match="lock"):
        second.open()
    relays.close()
    second.open()
    second.close()


def test_closed_transport_refuses(relays: SerialLineTransport) -> None:
    relays.close()
    relays.close()
    with pytest.raises(ConnectionLost, match="not open"):
        relays.exchange("ver", PROMPT)


# ---------------------------------------------------------------- resource strings


@pytest.mark.parametrize(
    ("resource", "url", "settings"),
    [
        ("serial:///dev/ttyACM0?baudrate=115200", "/dev/ttyACM0", {"baudrate": 115200}),
        (
            "serial:///dev/ttyUSB0?baudrate=19200&parity=E&stopbits=1.5&bytesize=7&rtscts=1",
            "/dev/ttyUSB0",
            {"baudrate": 19200, "parity": "E", "stopbits": 1.5, "bytesize": 7, "rtscts": True},
        ),
        ("serial://COM3?baudrate=9600", "COM3", {"baudrate": 9600}),
        ("/dev/ttyS0", "/dev/ttyS0", {}),
        ("socket://10.0.0.50:4001", "socket://10.0.0.50:4001", {}),
        ("rfc2217://moxa-7:4001?ign_set_control", "rfc2217://moxa-7:4001?ign_set_control", {}),
    ],
)
def test_resources_parse_to_what_pyserial_opens(resource: str, url: str, settings: dict) -> None:
    address = parse_serial_resource(resource)
    assert (address.url, address.settings) == (url, settings)
    assert address.local == (not url.startswith(("socket", "rfc2217")))


@pytest.mark.parametrize(
    ("resource", "complaint"),
    [
        ("", "not a device path"),
        ("ttyUSB0", "not a device path"),
        ("serial://?baudrate=9600", "not a device path"),
        ("usb://dev/ttyUSB0", "unknown scheme 'usb'"),
        ("serial:///dev/ttyUSB0?baud=9600", "unknown setting 'baud'"),
        ("serial:///dev/ttyUSB0?baudrate=fast", "baudrate: 'fast' is not a positive integer"),
        ("serial:///dev/ttyUSB0?parity=X", "parity: 'X' is not one of"),
        ("serial:///dev/ttyUSB0?baudrate", "baudrate: '' is not"),
        ("socket://10.0.0.50", "host:port"),
        ("socket://:4001", "host:port"),
        ("rfc2217://moxa-7:99999", "host:port"),
    ],
)
def test_malformed_resources_say_what_is_wrong(resource: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint) as caught:
        check_serial_resource(resource)
    assert repr(resource) in str(caught.value)


# ---------------------------------------------------------------- driver base


class NumatoLike(SerialDriver):
    __test__ = False

    def identity(self) -> Identity:
        version = self.transport.exchange("ver", PROMPT).split(b"\r\n")[1].decode()
        return Identity("Numato Lab", "USB relay", "", version)

    def safe(self) -> None:
        self.transport.exchange("reset", PROMPT)


def test_driver_base_opens_and_closes(box: RelayBox) -> None:
    config = DriverConfig(ROLE, box.resource, options={"timeout_s": 0.5})
    with NumatoLike(config) as driver:
        assert driver.transport.timeout_s == 0.5
        assert driver.identity().firmware == VERSION
        driver.transport.exchange("relay on 1", PROMPT)
        driver.safe()
        assert driver.transport.exchange("relay readall", PROMPT) == b"relay readall\r\n0000\r\n>"
    NumatoLike.check_resource(box.resource)
    with pytest.raises(ValueError, match="unknown scheme"):
        NumatoLike.check_resource("ftp://x")
