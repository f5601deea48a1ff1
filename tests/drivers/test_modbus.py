"""ModbusTransport and ModbusDriver over the wire: pymodbus clients against the Modbus stand-in.

Serial RTU runs on a pseudo-terminal bridged to the stand-in's RTU-over-TCP port: a serial device server
the other way round, so the client's real serial path is exercised.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import threading
import tty
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.base import DriverConfig, Identity
from drivers.errors import ConnectionLost, InstrumentRejected, InstrumentTimeout, InstrumentUnavailable
from drivers.modbus import (
    Framing,
    ModbusAddress,
    ModbusDriver,
    ModbusTransport,
    SerialLine,
    check_modbus_resource,
    parse_modbus_resource,
)
from harness.sim.modbus import Access, ModbusStandIn, Point, PointType, Range, RegisterMap
from tests.drivers import free_port

ROLE = "controller"
UNIT = 3
BLOCK_REGISTERS = 300
"""Registers 0..299 exist; 300..399 do not; the setpoint is at 400."""
SETPOINT_ADDRESS = 400
BLOCK_MAX = 1000
SHORT_TIMEOUT_S = 0.2
ILLEGAL_ADDRESS = 0x02
ILLEGAL_VALUE = 0x03
GATEWAY_NO_RESPONSE = 0x0B


def register_map() -> RegisterMap:
    block = [
        Point(f"r{i}", PointType.UINT16, i, access=Access.RW, validator=Range(0, BLOCK_MAX), value=i)
        for i in range(BLOCK_REGISTERS)
    ]
    setpoint = Point("setpoint", PointType.INT16, SETPOINT_ADDRESS, access=Access.RW, value=0)
    return RegisterMap([*block, setpoint])


@pytest.fixture
def regmap() -> RegisterMap:
    return register_map()


@pytest.fixture
def stand_in(regmap: RegisterMap) -> Iterator[ModbusStandIn]:
    with ModbusStandIn({UNIT: regmap}) as running:
        yield running


@pytest.fixture
def transport(stand_in: ModbusStandIn) -> Iterator[ModbusTransport]:
    link = ModbusTransport(ROLE, stand_in.resource, timeout_s=SHORT_TIMEOUT_S)
    link.open()
    yield link
    link.close()


class PtyBridge:
    """A pseudo-terminal whose bytes go to and come from a TCP port: ``device`` is the serial port to open."""

    def __init__(self, port: int) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._master)
        self.device = os.ttyname(self._slave)
        self._socket = socket.create_connection(("127.0.0.1", port))
        self._wake_read, self._wake_write = os.pipe()
        self._thread = threading.Thread(target=self._relay, daemon=True)
        self._thread.start()

    def close(self) -> None:
        os.write(self._wake_write, b"\0")
        self._thread.join(5.0)
        self._socket.close()
        for fd in (self._master, self._slave, self._wake_read, self._wake_write):
            os.close(fd)

    def _relay(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                readable, _, _ = select.select([self._master, self._socket, self._wake_read], [], [])
                if self._wake_read in readable:
                    return
                if self._master in readable:
                    self._socket.sendall(os.read(self._master, 4096))
                if self._socket in readable:
                    data = self._socket.recv(4096)
                    if not data:
                        return
                    os.write(self._master, data)


@pytest.fixture
def rtu_line(regmap: RegisterMap) -> Iterator[PtyBridge]:
    with ModbusStandIn({UNIT: regmap}, framer="rtu") as running:
        bridge = PtyBridge(running.port)
        yield bridge
        bridge.close()


# ---------------------------------------------------------------- reading and writing


def test_long_reads_are_split_into_legal_requests(transport: ModbusTransport) -> None:
    assert transport.read_registers(0, BLOCK_REGISTERS) == list(range(BLOCK_REGISTERS))
    assert transport.read_registers(120, 10, "across a split") == list(range(120, 130))


# Each example writes the registers it reads back, so sharing one stand-in between examples is sound.
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_written_registers_read_back(transport: ModbusTransport, data: st.DataObject) -> None:
    values = data.draw(st.lists(st.integers(0, BLOCK_MAX), min_size=1, max_size=123))
    address = data.draw(st.integers(0, BLOCK_REGISTERS - len(values)))
    transport.write_registers(address, values)
    assert transport.read_registers(address, len(values)) == values


def test_signed_point_takes_twos_complement(transport: ModbusTransport, regmap: RegisterMap) -> None:
    transport.write_registers(SETPOINT_ADDRESS, [0xFFFE], "setpoint")
    assert transport.read_registers(SETPOINT_ADDRESS, 1) == [0xFFFE]


@pytest.mark.parametrize(
    ("operation", "code"),
    [
        (lambda link: link.read_registers(BLOCK_REGISTERS, 2, "gap"), ILLEGAL_ADDRESS),
        (lambda link: link.read_registers(BLOCK_REGISTERS - 1, 2, "gap"), ILLEGAL_ADDRESS),
        (lambda link: link.write_registers(BLOCK_REGISTERS + 5, [1], "gap"), ILLEGAL_ADDRESS),
        (lambda link: link.write_registers(10, [BLOCK_MAX + 1], "r10"), ILLEGAL_VALUE),
    ],
)
def test_modbus_exceptions_are_rejections_with_their_code(
    transport: ModbusTransport, operation, code
) -> None:
    with pytest.raises(InstrumentRejected) as caught:
        operation(transport)
    assert caught.value.code == code
    assert caught.value.role == ROLE and caught.value.resource == transport.resource
    assert "gap" in caught.value.command or "r10" in caught.value.command
    assert transport.read_registers(10, 1) == [10]  # nothing was written, and the link still works


def test_out_of_range_requests_are_refused_before_the_wire(transport: ModbusTransport) -> None:
    with pytest.raises(ValueError, match="address space"):
        transport.read_registers(65535, 2)
    with pytest.raises(ValueError, match="address space"):
        transport.read_registers(0, 0)
    with pytest.raises(ValueError, match="123"):
        transport.write_registers(0, [0] * 124)
    with pytest.raises(ValueError, match=r"0\.\.65535"):
        transport.write_registers(0, [70000])


def test_rtu_framing_over_tcp(regmap: RegisterMap) -> None:
    with ModbusStandIn({UNIT: regmap}, framer="rtu") as running:
        link = ModbusTransport(ROLE, running.resource, timeout_s=SHORT_TIMEOUT_S)
        assert link.address.framing is Framing.RTU_OVER_TCP
        link.open()
        try:
            link.write_registers(5, [77, 78])
            assert link.read_registers(0, BLOCK_REGISTERS)[4:8] == [4, 77, 78, 7]
        finally:
            link.close()


def test_serial_rtu_on_a_pty(rtu_line: PtyBridge) -> None:
    link = ModbusTransport(
        ROLE, f"modbus+rtu://{rtu_line.device}/{UNIT}?baudrate=115200&parity=N", timeout_s=1.0
    )
    link.open()
    try:
        link.write_registers(200, [1, 2, 3])
        assert link.read_registers(199, 5) == [199, 1, 2, 3, 203]
        with pytest.raises(InstrumentRejected) as caught:
            link.read_registers(BLOCK_REGISTERS, 1)
        assert caught.value.code == ILLEGAL_ADDRESS
    finally:
        link.close()


# ---------------------------------------------------------------- units that are not there


def test_missing_unit_behind_a_tcp_gateway_is_a_gateway_rejection(stand_in: ModbusStandIn) -> None:
    resource = f"modbus+tcp://127.0.0.1:{stand_in.port}/{UNIT + 1}"
    link = ModbusTransport(ROLE, resource, timeout_s=SHORT_TIMEOUT_S)
    link.open()
    try:
        with pytest.raises(InstrumentRejected) as caught:
            link.read_registers(0, 1)
    finally:
        link.close()
    assert caught.value.code == GATEWAY_NO_RESPONSE


def test_missing_unit_on_a_serial_line_times_out(rtu_line: PtyBridge) -> None:
    link = ModbusTransport(
        ROLE, f"modbus+rtu://{rtu_line.device}/{UNIT + 1}?parity=N", timeout_s=SHORT_TIMEOUT_S
    )
    link.open()
    try:
        with pytest.raises(InstrumentTimeout) as caught:
            link.read_registers(0, 1, "probe")
        assert "probe" in caught.value.command and "0.2 s" in caught.value.problem
    finally:
        link.close()


def test_missing_unit_over_rtu_framing_times_out_then_the_unit_that_exists_answers(regmap) -> None:
    with ModbusStandIn({UNIT: regmap}, framer="rtu") as running:
        missing = ModbusTransport(
            ROLE, f"modbus+rtu-tcp://127.0.0.1:{running.port}/9", timeout_s=SHORT_TIMEOUT_S
        )
        missing.open()
        try:
            with pytest.raises(InstrumentTimeout):
                missing.read_registers(0, 1)
        finally:
            missing.close()
        present = ModbusTransport(ROLE, running.resource, timeout_s=SHORT_TIMEOUT_S)
        present.open()
        try:
            assert present.read_registers(0, 2) == [0, 1]
        finally:
            present.close()


# ---------------------------------------------------------------- connections


def test_nothing_listening_is_unavailable_naming_role_and_resource() -> None:
    resource = f"modbus+tcp://127.0.0.1:{free_port()}/1"
    with pytest.raises(InstrumentUnavailable) as caught:
        ModbusTransport(ROLE, resource, timeout_s=SHORT_TIMEOUT_S).open()
    assert caught.value.role == ROLE and caught.value.resource == resource and resource in str(caught.value)


def test_line_settings_the_port_refuses_make_it_unavailable(rtu_line: PtyBridge) -> None:
    """A pty refuses parity (EINVAL from termios), and pyserial does not report that as an OSError."""
    resource = f"modbus+rtu://{rtu_line.device}/{UNIT}?parity=E"
    with pytest.raises(InstrumentUnavailable, match="cannot open"):
        ModbusTransport(ROLE, resource, timeout_s=SHORT_TIMEOUT_S).open()


def test_missing_serial_device_is_unavailable() -> None:
    resource = "modbus+rtu:///dev/gridhil-no-such-port/1"
    with pytest.raises(InstrumentUnavailable, match="gridhil-no-such-port"):
        ModbusTransport(ROLE, resource, timeout_s=SHORT_TIMEOUT_S).open()


def test_silent_server_times_out_and_the_next_request_reconnects() -> None:
    connections: list[socket.socket] = []
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(5.0)
        link = ModbusTransport(ROLE, f"modbus+tcp://127.0.0.1:{listener.getsockname()[1]}/1", timeout_s=0.2)
        link.open()
        try:
            connections.append(listener.accept()[0])
            with pytest.raises(InstrumentTimeout):
                link.read_registers(0, 1)
            with pytest.raises(InstrumentTimeout):
                link.read_registers(0, 1)
            connections.append(listener.accept()[0])  # the second request came on a new connection
        finally:
            link.close()
            for connection in connections:
                connection.close()


def test_read_after_a_restart_is_retried_once_and_succeeds(stand_in: ModbusStandIn, regmap) -> None:
    link = ModbusTransport(ROLE, stand_in.resource, timeout_s=SHORT_TIMEOUT_S)
    link.open()
    try:
        assert link.read_registers(0, 1) == [0]
        port = stand_in.port
        stand_in.close()
        with ModbusStandIn({UNIT: regmap}, port=port):
            assert link.read_registers(1, 2) == [1, 2]
    finally:
        link.close()


def test_write_after_a_restart_is_not_retried(stand_in: ModbusStandIn, regmap) -> None:
    link = ModbusTransport(ROLE, stand_in.resource, timeout_s=SHORT_TIMEOUT_S)
    link.open()
    try:
        link.read_registers(0, 1)
        port = stand_in.port
        stand_in.close()
        with ModbusStandIn({UNIT: regmap}, port=port):
            with pytest.raises(ConnectionLost) as caught:
                link.write_registers(0, [42], "r0")
            assert "r0" in caught.value.command
            assert link.read_registers(0, 1) == [0]  # not written; the next request reconnected
    finally:
        link.close()


def test_closed_transport_refuses(transport: ModbusTransport) -> None:
    transport.close()
    transport.close()
    with pytest.raises(ConnectionLost, match="not open"):
        transport.read_registers(0, 1)


# ---------------------------------------------------------------- resource strings


@pytest.mark.parametrize(
    ("resource", "address"),
    [
        ("modbus+tcp://10.0.0.30:502/1", ModbusAddress(Framing.TCP, 1, host="10.0.0.30", port=502)),
        ("modbus+tcp://meter-3/255", ModbusAddress(Framing.TCP, 255, host="meter-3", port=502)),
        (
            "modbus+rtu-tcp://10.0.0.31:4001/7",
            ModbusAddress(Framing.RTU_OVER_TCP, 7, host="10.0.0.31", port=4001),
        ),
        (
            "modbus+rtu:///dev/ttyUSB0/1?baudrate=9600&parity=N&stopbits=2",
            ModbusAddress(Framing.RTU, 1, device="/dev/ttyUSB0", line=SerialLine(9600, "N", 8, 2)),
        ),
        (
            "modbus+rtu:///dev/serial/by-id/usb-FTDI/12",
            ModbusAddress(Framing.RTU, 12, device="/dev/serial/by-id/usb-FTDI"),
        ),
        ("modbus+rtu://COM3/1?baudrate=19200", ModbusAddress(Framing.RTU, 1, device="COM3")),
    ],
)
def test_resources_parse(resource: str, address: ModbusAddress) -> None:
    assert parse_modbus_resource(resource) == address


@pytest.mark.parametrize(
    ("resource", "complaint"),
    [
        ("10.0.0.30:502", "expected modbus"),
        ("modbus://10.0.0.30:502/1", "expected modbus"),
        ("modbus+tcp://10.0.0.30:502", "no unit id"),
        ("modbus+tcp://10.0.0.30:502/x", "unit id 'x'"),
        ("modbus+tcp://10.0.0.30:502/256", "unit id '256'"),
        ("modbus+tcp://:502/1", "host"),
        ("modbus+tcp://10.0.0.30:0/1", "port"),
        ("modbus+tcp://10.0.0.30:http/1", "port"),
        ("modbus+tcp://10.0.0.30/1?baudrate=9600", "TCP takes no settings"),
        ("modbus+rtu:///dev/ttyUSB0", "unit id 'ttyUSB0'"),
        ("modbus+rtu:///1", "needs a serial device"),
        ("modbus+rtu:///dev/ttyUSB0/0", "unit id '0'"),
        ("modbus+rtu:///dev/ttyUSB0/248", "unit id '248'"),
        ("modbus+rtu:///dev/ttyUSB0/1?parity=X", "parity 'X'"),
        ("modbus+rtu:///dev/ttyUSB0/1?baudrate=fast", "baudrate 'fast'"),
        ("modbus+rtu:///dev/ttyUSB0/1?speed=9600", "unknown setting 'speed'"),
    ],
)
def test_malformed_resources_say_what_is_wrong(resource: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint) as caught:
        check_modbus_resource(resource)
    assert repr(resource) in str(caught.value)


# ---------------------------------------------------------------- driver base


class Controller(ModbusDriver):
    __test__ = False

    def identity(self) -> Identity:
        return Identity("test", "controller", str(self.transport.read_registers(0, 1)[0]), "")

    def safe(self) -> None:
        self.transport.write_registers(SETPOINT_ADDRESS, [0], "setpoint")


def test_driver_base_opens_and_goes_safe(stand_in: ModbusStandIn) -> None:
    with Controller(DriverConfig(ROLE, stand_in.resource, options={"timeout_s": 1})) as driver:
        assert driver.transport.timeout_s == 1.0
        assert driver.identity().serial == "0"
        driver.transport.write_registers(SETPOINT_ADDRESS, [50])
        driver.safe()
        assert driver.transport.read_registers(SETPOINT_ADDRESS, 1) == [0]
    Controller.check_resource(stand_in.resource)
    with pytest.raises(ValueError, match="unit id"):
        Controller.check_resource("modbus+tcp://x:502/999")
