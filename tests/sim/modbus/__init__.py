"""Tests of the Modbus stand-ins; the helpers here talk to them the way a driver does, through pymodbus."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pymodbus import FramerType
from pymodbus.client import ModbusTcpClient

from harness.sim.modbus import ModbusStandIn


@contextmanager
def client_of(
    stand_in: ModbusStandIn, *, rtu: bool = False, timeout_s: float = 2.0
) -> Iterator[ModbusTcpClient]:
    """A connected sync client, as a driver would hold one; closed on exit."""
    client = ModbusTcpClient(
        stand_in.host,
        port=stand_in.port,
        framer=FramerType.RTU if rtu else FramerType.SOCKET,
        timeout=timeout_s,
        retries=0,
    )
    assert client.connect()
    try:
        yield client
    finally:
        client.close()
