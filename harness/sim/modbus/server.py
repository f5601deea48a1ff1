"""The Modbus TCP stand-in: register maps served by unit id. The only server-side module importing pymodbus.

pymodbus 3.16 (pinned: its API breaks every minor, reference/protocols.md §3) runs on its own asyncio loop in
a background thread. Each unit is a ``SimDevice`` whose ``SimData`` blocks cover exactly the mapped addresses
(so pymodbus itself answers exception 02 for the gaps) and whose ``action`` callback computes every read from
the map and lets the map validate, apply or veto every write before pymodbus touches its own copy.

Holding registers only: function codes 3, 6, 16, 22, 23 reach the map; any other data-access function
(coils, discrete inputs, input registers) answers exception 01, as a SunSpec device does.

Unknown unit ids (protocols.md §3.1: pymodbus logs a ``KeyError`` traceback and answers 04 for them) go to a
catch-all device that answers like a Modbus TCP gateway, exception 0x0B (gateway target failed to respond),
or, by default with RTU framing, stays silent as an RS-485 slave that is not addressed does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Mapping
from enum import Enum

from pymodbus import FramerType
from pymodbus.constants import ExcCodes
from pymodbus.exceptions import NoSuchIdException
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from harness.lifecycle import Lifecycle
from harness.sim.modbus.registers import ModbusError, RegisterMap

_log = logging.getLogger(__name__)

_HOLDING_REGISTER_CODES = frozenset({3, 6, 16, 22, 23})
_ADDRESS_SPACE = 0x10000
_CATCH_ALL_UNIT = 0  # pymodbus: device id 0 serves every id not configured
_START_TIMEOUT_S = 10.0
_JOIN_TIMEOUT_S = 10.0


class Framing(Enum):
    SOCKET = "socket"
    """Modbus TCP: MBAP header."""
    RTU = "rtu"
    """RTU frames (unit id, PDU, CRC) carried over TCP, what serial device servers in raw mode pass on."""


class UnknownUnit(Enum):
    """How requests to a unit id the stand-in does not serve are answered."""

    GATEWAY_EXCEPTION = "gateway exception"
    """Exception 0x0B, gateway target device failed to respond."""
    SILENT = "silent"
    """No answer; the client times out."""


class ModbusStandIn(Lifecycle):
    """Serves ``maps`` (unit id -> register map) on ``host:port`` (port 0: an ephemeral one) until closed."""

    def __init__(
        self,
        maps: Mapping[int, RegisterMap],
        host: str = "127.0.0.1",
        port: int = 0,
        framer: Framing | str = Framing.SOCKET,
        unknown_unit: UnknownUnit | None = None,
    ) -> None:
        if not maps:
            raise ValueError("a stand-in serves at least one unit")
        for unit in maps:
            if not 1 <= unit <= 255:
                raise ValueError(f"unit id {unit} outside 1..255 (0 is broadcast)")
        self._maps = dict(maps)
        self._address = (host, port)
        self._framing = Framing(framer)
        if unknown_unit is None:
            rtu = self._framing is Framing.RTU
            unknown_unit = UnknownUnit.SILENT if rtu else UnknownUnit.GATEWAY_EXCEPTION
        self._unknown_unit = unknown_unit
        self._guard = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._port: int | None = None
        self._closed = False

    @property
    def host(self) -> str:
        return self._address[0]

    @property
    def port(self) -> int:
        """The bound port (known once started)."""
        if self._port is None:
            raise RuntimeError("stand-in not started")
        return self._port

    @property
    def units(self) -> tuple[int, ...]:
        return tuple(sorted(self._maps))

    @property
    def resource(self) -> str:
        """The bench-file resource of the lowest unit served."""
        return self.resource_for(self.units[0])

    def resource_for(self, unit: int) -> str:
        if unit not in self._maps:
            raise KeyError(f"unit {unit} not served")
        scheme = "modbus+tcp" if self._framing is Framing.SOCKET else "modbus+rtu-tcp"
        return f"{scheme}://{self.host}:{self.port}/{unit}"

    def start(self) -> ModbusStandIn:
        """Bind and serve; returns once the port is bound, raises if binding failed."""
        with self._guard:
            if self._closed or self._thread is not None:
                raise RuntimeError("a stand-in starts once")
            started = threading.Event()
            failure: list[BaseException] = []
            self._thread = threading.Thread(
                target=self._run, args=(started, failure), name="modbus-stand-in", daemon=True
            )
            self._thread.start()
        if not started.wait(_START_TIMEOUT_S):
            raise RuntimeError("Modbus stand-in did not start")
        if failure:
            self._thread.join(_JOIN_TIMEOUT_S)
            raise RuntimeError(f"Modbus stand-in failed to start on {self._address}") from failure[0]
        return self

    def close(self) -> None:
        """Stop serving, close every connection and the listener, join the thread; idempotent."""
        with self._guard:
            if self._closed:
                return
            self._closed = True
            thread, loop, stop = self._thread, self._loop, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(stop.set)
        if thread is not None:
            thread.join(_JOIN_TIMEOUT_S)


    def _run(self, started: threading.Event, failure: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._serve(loop, started))
        except Exception as exc:
            if started.is_set():
                _log.exception("Modbus stand-in on port %s stopped with an error", self._port)
            else:  # handed to start(), in the caller's thread
                failure.append(exc)
                started.set()
        finally:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    async def _serve(self, loop: asyncio.AbstractEventLoop, started: threading.Event) -> None:
        devices = [_device(unit, regmap) for unit, regmap in self._maps.items()]
        devices.append(_catch_all(self._unknown_unit))
        server = ModbusTcpServer(
            devices,
            framer=FramerType.SOCKET if self._framing is Framing.SOCKET else FramerType.RTU,
            address=self._address,
            ignore_missing_devices=self._unknown_unit is UnknownUnit.SILENT,
        )
        await server.serve_forever(background=True)
        listener = server.transport
        self._port = listener.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        stop = asyncio.Event()
        with self._guard:
            self._loop, self._stop = loop, stop
            closing = self._closed
        started.set()
        if not closing:
            await stop.wait()
        await server.shutdown()
        await asyncio.sleep(0)  # one loop turn: the closed connections' sockets are released in callbacks


def _device(unit: int, regmap: RegisterMap) -> SimDevice:
    async def action(
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        if function_code not in _HOLDING_REGISTER_CODES:
            return ExcCodes.ILLEGAL_FUNCTION
        try:
            if set_values is None:
                offset = address - start_address
                registers[offset : offset + count] = regmap.read(address, count)
            else:
                regmap.write(address, [int(value) for value in set_values])
        except ModbusError as exc:
            return ExcCodes(exc.code)
        except Exception:
            _log.exception("unit %d: function %d at %d+%d failed", unit, function_code, address, count)
            return ExcCodes.DEVICE_FAILURE
        return None

    blocks = [SimData(start, count=count, datatype=DataType.REGISTERS) for start, count in regmap.spans()]
    return SimDevice(id=unit, simdata=blocks, action=action)


def _catch_all(behaviour: UnknownUnit) -> SimDevice:
    """Device id 0, which pymodbus hands every request for an id it has no device for."""

    async def action(
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        if behaviour is UnknownUnit.SILENT:
            raise NoSuchIdException("unit not served")  # pymodbus drops the request (ignore_missing_devices)
        return ExcCodes.GATEWAY_NO_RESPONSE

    everywhere = SimData(0, count=_ADDRESS_SPACE, datatype=DataType.REGISTERS)
    return SimDevice(id=_CATCH_ALL_UNIT, simdata=[everywhere], action=action)
