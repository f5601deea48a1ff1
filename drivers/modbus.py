"""Modbus client: the transport and the base of Modbus role drivers. The one client module using pymodbus.

pymodbus is pinned to 3.16 (its API breaks every minor, reference/protocols.md §3); everything it is asked
goes through :class:`ModbusTransport`, so an upgrade touches this file only.

Resources:

* ``modbus+tcp://host[:port]/unit`` -- Modbus TCP (MBAP header), port 502 by default, unit 0-255;
* ``modbus+rtu-tcp://host[:port]/unit`` -- RTU frames (with CRC) over TCP, what serial device servers in
  raw mode pass on;
* ``modbus+rtu:///dev/ttyUSB0/1?baudrate=19200&parity=E`` (``modbus+rtu://COM3/1?...`` on Windows) -- RTU on
  a local serial line, unit 1-247; ``baudrate`` (19200), ``parity`` (N/E/O, default E as the Modbus serial
  line specification requires), ``bytesize`` (7/8, default 8), ``stopbits`` (1/2, default 1).

TCP framings use pymodbus's sync client. The serial line uses its async client on a private event loop:
the sync serial client polls for the reply (2-9 ms a request on a pty, protocols.md §3.4), the async one
waits on the port's file descriptor.

Recovery: a read that finds the connection lost is retried once on a new connection; a write is never
retried (it may have acted). After a timeout the connection is dropped, so a late reply can never be taken
for the next request's; the next request connects again.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol, Self, TypeVar
from urllib.parse import parse_qsl, urlsplit

from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient, ModbusTcpClient
from pymodbus.constants import ExcCodes
from pymodbus.exceptions import ConnectionException, ModbusIOException
from pymodbus.pdu import ModbusPDU

from drivers.base import Driver, DriverConfig
from drivers.errors import (
    ConnectionLost,
    GarbageReply,
    InstrumentRejected,
    InstrumentTimeout,
    InstrumentUnavailable,
)

# pymodbus logs every refused connection and timeout itself; with no logging set up, Python would
# print them on stderr beside our own error, which already names role, resource and command. The
# records still reach any handler an application configures.
logging.getLogger("pymodbus").addHandler(logging.NullHandler())

MAX_READ_REGISTERS = 125
"""Modbus limit of one read holding registers request (function 03)."""
MAX_WRITE_REGISTERS = 123
"""Modbus limit of one write multiple registers request (function 16)."""
ADDRESS_SPACE = 0x10000
DEFAULT_TCP_PORT = 502
_PORT_MAX = 65535
_REGISTER_MAX = 0xFFFF
_T = TypeVar("_T")
_LOOP_GRACE_S = 1.0
"""How much longer than its own timeout a request on the event loop may take before we give up on it."""


class Framing(Enum):
    TCP = "modbus+tcp"
    RTU_OVER_TCP = "modbus+rtu-tcp"
    RTU = "modbus+rtu"


@dataclass(frozen=True)
class SerialLine:
    baudrate: int = 19200
    parity: str = "E"
    bytesize: int = 8
    stopbits: int = 1


@dataclass(frozen=True)
class ModbusAddress:
    """Where a Modbus device is: framing, unit id, and host and port (TCP) or device and line (RTU)."""

    framing: Framing
    unit: int
    host: str = ""
    port: int = DEFAULT_TCP_PORT
    device: str = ""
    line: SerialLine = field(default_factory=SerialLine)


_LINE_SETTINGS: dict[str, dict[str, object]] = {
    "parity": {"N": "N", "E": "E", "O": "O"},
    "bytesize": {"7": 7, "8": 8},
    "stopbits": {"1": 1, "2": 2},
}


def parse_modbus_resource(resource: str) -> ModbusAddress:
    """The :class:`ModbusAddress` of ``resource``; ValueError naming what is wrong."""
    scheme = resource.partition("://")[0]
    framings = {framing.value: framing for framing in Framing}
    if scheme not in framings or "://" not in resource:
        raise ValueError(
            f"Modbus resource {resource!r}: expected modbus+tcp://host:port/unit, "
            f"modbus+rtu-tcp://host:port/unit or modbus+rtu:///dev/ttyUSB0/unit?baudrate=19200"
        )
    framing = framings[scheme]
    parts = urlsplit(resource)
    if framing is Framing.RTU:
        device, _, unit_text = (parts.netloc + parts.path).rpartition("/")
        if not device or device == "/":
            raise ValueError(
                f"Modbus resource {resource!r}: needs a serial device and a unit id (modbus+rtu:///dev/ttyUSB0/1)"
            )
        return ModbusAddress(
            framing, _unit(resource, unit_text, 1, 247), device=device, line=_line(resource, parts.query)
        )
    if parts.query:
        raise ValueError(f"Modbus resource {resource!r}: TCP takes no settings (?{parts.query})")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if not parts.hostname or (port is not None and not 1 <= port <= _PORT_MAX):
        raise ValueError(f"Modbus resource {resource!r}: needs host[:port] with a port in 1..{_PORT_MAX}")
    if not parts.path.startswith("/"):
        raise ValueError(f"Modbus resource {resource!r}: no unit id (append /1 for unit 1)")
    unit = _unit(resource, parts.path[1:], 0, 255)
    return ModbusAddress(framing, unit, host=parts.hostname, port=port or DEFAULT_TCP_PORT)


def check_modbus_resource(resource: str) -> None:
    """ValueError naming what is wrong with ``resource`` as a Modbus resource."""
    parse_modbus_resource(resource)


def _unit(resource: str, text: str, low: int, high: int) -> int:
    if not text.isdigit() or not low <= int(text) <= high:
        raise ValueError(f"Modbus resource {resource!r}: unit id {text!r} is not a number in {low}..{high}")
    return int(text)


def _line(resource: str, query: str) -> SerialLine:
    settings: dict[str, Any] = {}
    for name, text in parse_qsl(query, keep_blank_values=True):
        if name == "baudrate":
            if not text.isdigit() or int(text) <= 0:
                raise ValueError(f"Modbus resource {resource!r}: baudrate {text!r} is not a positive integer")
            settings[name] = int(text)
        elif name in _LINE_SETTINGS:
            allowed = _LINE_SETTINGS[name]
            if text not in allowed:
                raise ValueError(
                    f"Modbus resource {resource!r}: {name} {text!r} is not one of {', '.join(allowed)}"
                )
            settings[name] = allowed[text]
        else:
            known = ", ".join(["baudrate", *_LINE_SETTINGS])
            raise ValueError(f"Modbus resource {resource!r}: unknown setting {name!r}; known: {known}")
    return SerialLine(**settings)


# ---------------------------------------------------------------------------- links: pymodbus clients


Request = Callable[[Any], Any]
"""Calls one request method on a pymodbus client; returns its response (or, async, an awaitable of it)."""


class _Link(Protocol):
    """One pymodbus client, sync or async, behind the same blocking calls."""

    @property
    def connected(self) -> bool: ...

    def connect(self) -> bool: ...

    def call(self, request: Request) -> ModbusPDU: ...

    def close(self) -> None: ...


class _SyncLink:
    """pymodbus's sync TCP client (MBAP or RTU framing)."""

    def __init__(self, address: ModbusAddress, timeout_s: float) -> None:
        framer = FramerType.SOCKET if address.framing is Framing.TCP else FramerType.RTU
        self._client = ModbusTcpClient(
            address.host, port=address.port, framer=framer, timeout=timeout_s, retries=0
        )

    @property
    def connected(self) -> bool:
        return self._client.connected

    def connect(self) -> bool:
        return bool(self._client.connect())

    def call(self, request: Request) -> ModbusPDU:
        return request(self._client)

    def close(self) -> None:
        self._client.close()


class _AsyncSerialLink:
    """pymodbus's async serial client on a private event loop thread, called blocking."""

    def __init__(self, address: ModbusAddress, timeout_s: float) -> None:
        self._timeout_s = timeout_s + _LOOP_GRACE_S
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="modbus-rtu-client", daemon=True)
        self._thread.start()
        line = address.line

        async def build() -> AsyncModbusSerialClient:  # pymodbus clients must be built on their loop
            return AsyncModbusSerialClient(
                address.device,
                framer=FramerType.RTU,
                baudrate=line.baudrate,
                parity=line.parity,
                bytesize=line.bytesize,
                stopbits=line.stopbits,
                timeout=timeout_s,
                retries=0,
                reconnect_delay=0,
            )

        self._client = self._run(build())

    @property
    def connected(self) -> bool:
        return self._client.connected

    def connect(self) -> bool:
        return bool(self._run(self._client.connect()))

    def call(self, request: Request) -> ModbusPDU:
        return self._run(request(self._client))

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._client.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(self._timeout_s)
        self._loop.close()

    def _run(self, work: Awaitable[_T]) -> _T:
        future = asyncio.run_coroutine_threadsafe(_awaited(work), self._loop)
        try:
            return future.result(self._timeout_s)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise ModbusIOException("No response received: the request did not complete") from None


async def _awaited(work: Awaitable[_T]) -> _T:
    return await work


def _link(address: ModbusAddress, timeout_s: float) -> _Link:
    if address.framing is Framing.RTU:
        return _AsyncSerialLink(address, timeout_s)
    return _SyncLink(address, timeout_s)


# ---------------------------------------------------------------------------- transport


class ModbusTransport:
    """Holding registers of one Modbus unit. Thread-safe: each request (with its retry) is atomic."""

    def __init__(self, role: str, resource: str, *, timeout_s: float = 2.0) -> None:
        if not timeout_s > 0.0:
            raise ValueError(f"{role}: timeout_s must be positive, got {timeout_s}")
        self.role = role
        self.resource = resource
        self.timeout_s = timeout_s
        self.address = parse_modbus_resource(resource)
        self._lock = threading.RLock()
        self._link: _Link | None = None

    def open(self) -> None:
        """Connect (TCP) or open the port (RTU); InstrumentUnavailable if that fails. Idempotent.

        Nothing is read: which registers exist is the driver's knowledge.
        """
        with self._lock:
            if self._link is None:
                self._link = self._connected_link("")

    def close(self) -> None:
        """Disconnect; idempotent."""
        with self._lock:
            link, self._link = self._link, None
            if link is not None:
                link.close()

    def read_registers(self, address: int, count: int, what: str = "") -> list[int]:
        """``count`` holding registers from PDU ``address`` (0-based), in requests of at most 125.

        ``what`` names the registers in errors (e.g. ``"ac_meter.W"``).
        """
        _check_span(address, count)
        registers: list[int] = []
        for start in range(address, address + count, MAX_READ_REGISTERS):
            registers += self._read_block(start, min(MAX_READ_REGISTERS, address + count - start), what)
        return registers

    def _read_block(self, address: int, count: int, what: str) -> list[int]:
        command = _describe("read", address, count, what)
        unit = self.address.unit
        response = self._request(
            command,
            lambda client: client.read_holding_registers(address, count=count, device_id=unit),
            retry=True,
        )
        if len(response.registers) != count:
            raise GarbageReply(
                self.role, self.resource, command, f"{len(response.registers)} registers in the reply"
            )
        return list(response.registers)

    def write_registers(self, address: int, values: Sequence[int], what: str = "") -> None:
        """Write ``values`` (0..0xFFFF each) from PDU ``address`` in one request (function 16, at most 123).

        A longer write is refused (ValueError) rather than split: a split write is not atomic.
        """
        values = list(values)
        _check_span(address, len(values))
        if len(values) > MAX_WRITE_REGISTERS:
            raise ValueError(f"{len(values)} registers in one write; Modbus allows {MAX_WRITE_REGISTERS}")
        bad = [value for value in values if not isinstance(value, int) or not 0 <= value <= _REGISTER_MAX]
        if bad:
            raise ValueError(f"register values must be integers in 0..{_REGISTER_MAX}, got {bad}")
        unit = self.address.unit
        self._request(
            _describe("write", address, len(values), what),
            lambda client: client.write_registers(address, values, device_id=unit),
            retry=False,
        )

    def _request(self, command: str, request: Request, *, retry: bool) -> Any:
        with self._lock:
            if self._link is None:
                raise ConnectionLost(self.role, self.resource, command, "not open")
            if not self._link.connected:
                self._replace_link(command)
            try:
                return self._once(self._link, command, request)
            except ConnectionLost:
                if not retry:
                    raise
            self._replace_link(command)
            return self._once(self._link, command, request)

    def _once(self, link: _Link, command: str, request: Request) -> Any:
        try:
            response = link.call(request)
        except ConnectionException as exc:
            raise ConnectionLost(self.role, self.resource, command, str(exc)) from exc
        except ModbusIOException as exc:
            link.close()  # a late reply must not answer the next request
            if "No response" in str(exc):
                raise InstrumentTimeout(
                    self.role, self.resource, command, f"no reply within {self.timeout_s} s"
                ) from exc
            raise GarbageReply(self.role, self.resource, command, str(exc)) from exc
        if response.isError():
            code = response.exception_code
            raise InstrumentRejected(
                self.role,
                self.resource,
                command,
                f"Modbus exception {code:02X} ({_exception_name(code)})",
                code,
            )
        return response

    def _replace_link(self, command: str) -> None:
        if self._link is not None:
            self._link.close()
        try:
            self._link = self._connected_link(command)
        except InstrumentUnavailable as exc:
            raise ConnectionLost(
                self.role, self.resource, command, f"connection lost, and reconnecting failed: {exc.problem}"
            ) from exc

    def _connected_link(self, command: str) -> _Link:
        link = _link(self.address, self.timeout_s)
        where = self.address.device or f"{self.address.host}:{self.address.port}"
        try:
            connected = link.connect()
        except Exception as exc:  # e.g. termios.error (not an OSError) for line settings a port refuses
            link.close()
            raise InstrumentUnavailable(
                self.role, self.resource, command, f"cannot open {where}: {type(exc).__name__}: {exc}"
            ) from exc
        if not connected:
            link.close()
            raise InstrumentUnavailable(self.role, self.resource, command, f"cannot connect to {where}")
        return link


def _check_span(address: int, count: int) -> None:
    if count < 1 or address < 0 or address + count > ADDRESS_SPACE:
        raise ValueError(f"registers {address}+{count} are not within the Modbus address space 0..65535")


def _describe(action: str, address: int, count: int, what: str) -> str:
    span = f"{action} {count} register{'s' if count > 1 else ''} at {address}"
    return f"{span} ({what})" if what else span


def _exception_name(code: int) -> str:
    try:
        return ExcCodes(code).name.lower().replace("_", " ")
    except ValueError:
        return "not a standard exception code"


class ModbusDriver(Driver):
    """Base of Modbus role drivers. Option from the role's table: ``timeout_s`` (default 2.0)."""

    OPTIONS = frozenset({"timeout_s"})

    def __init__(self, config: DriverConfig) -> None:
        super().__init__(config)
        self.transport = ModbusTransport(
            config.role, config.resource, timeout_s=config.option("timeout_s", 2.0)
        )

    @classmethod
    def check_resource(cls, resource: str) -> None:
        check_modbus_resource(resource)

    def open(self) -> Self:
        self.transport.open()
        return self

    def close(self) -> None:
        self.transport.close()
