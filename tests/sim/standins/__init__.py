"""Tests of the stand-in instruments, driven through real clients (pyvisa-py, pyserial, pymodbus); shared
helpers. The fixtures they share are in ``conftest.py``."""

from __future__ import annotations

import re
import string
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from urllib.parse import urlparse

from hypothesis import strategies as st
from pymodbus.client import ModbusTcpClient
from pyvisa import ResourceManager
from pyvisa.resources import MessageBasedResource

from harness.sim.plant import BusState, Plant, PlantConfig

TIMEOUT_S = 2.0
_ERROR_ENTRY = re.compile(r'-?\d+,".*"')


def small_plant(**config) -> Plant:
    """A plant of 8 packs (fast to build and step), otherwise the reference defaults."""
    return Plant.build(PlantConfig(packs=8, **config))


def open_visa(manager: ResourceManager, resource: str) -> MessageBasedResource:
    instrument = manager.open_resource(
        resource, read_termination="\n", write_termination="\n", timeout=int(TIMEOUT_S * 1000)
    )
    assert isinstance(instrument, MessageBasedResource)
    return instrument


def send(instrument: MessageBasedResource, message: str) -> tuple[list[str], int]:
    """Send ``message``, then ``SYST:ERR?``: the reply lines ``message`` produced and the first error
    code it queued (0 if none). The error queue is left empty."""
    instrument.write(message)
    instrument.write("SYST:ERR?")
    lines = []
    while not _ERROR_ENTRY.fullmatch(line := instrument.read()):
        lines.append(line)
    instrument.write("*CLS")
    return lines, int(line.split(",")[0])


def error_of(instrument: MessageBasedResource, message: str) -> int:
    """The error code ``message`` queues (0 if none)."""
    return send(instrument, message)[1]


def ask(instrument: MessageBasedResource, query: str) -> str:
    """The one reply line of ``query``, which must not fail."""
    lines, code = send(instrument, query)
    assert code == 0, f"{query} failed with {code}"
    assert len(lines) == 1, lines
    return lines[0]


def assert_refusal_changes_nothing(
    instrument: MessageBasedResource,
    message: str,
    lock: threading.RLock,
    state: Callable[[], object],
    identity: str,
) -> None:
    """Send ``message``: if the instrument refused it, ``state()`` (read under ``lock``) is as before;
    either way the instrument still answers ``*IDN?`` with ``identity``."""
    with lock:
        before = state()
    _, code = send(instrument, message)
    with lock:
        after = state()
    if code != 0:
        assert after == before, f"{message!r} failed with {code} but changed the plant"
    assert instrument.query("*IDN?") == identity


def run(
    plant: Plant,
    lock: threading.RLock,
    duration_s: float,
    dt: float = 0.01,
    after_step: Callable[[BusState, float], None] | None = None,
) -> None:
    """Step ``plant`` for ``duration_s`` in steps of ``dt`` under ``lock``, as the lock-step clock does."""
    steps = round(duration_s / dt)
    for _ in range(steps):
        with lock:
            bus = plant.step(dt)
            if after_step is not None:
                after_step(bus, dt)


_GARBAGE_ALPHABET = "".join(c for c in string.printable if c not in ";\r\n\t\x0b\x0c")


def scpi_messages(headers: Sequence[str], words: Sequence[str]) -> st.SearchStrategy[str]:
    """Single-unit SCPI messages: a known header (or a near miss), set or query, with 0-4 parameters
    drawn from numbers, the instrument's keywords and garbage. No ``;``: one unit, so a message either
    fails before it touches anything or runs."""
    header = st.one_of(
        st.sampled_from(headers),
        st.sampled_from(headers).map(lambda h: h + "X"),
        st.text(_GARBAGE_ALPHABET, min_size=1, max_size=12),
    )
    token = st.one_of(
        st.integers(-(10**7), 10**7).map(str),
        st.floats(allow_nan=False, allow_infinity=False).map(repr),
        st.sampled_from(words),
        st.text(_GARBAGE_ALPHABET, max_size=8),
    )
    return st.builds(
        lambda name, query, params: (name + ("?" if query else "") + " " + ",".join(params)).rstrip(),
        header,
        st.booleans(),
        st.lists(token, max_size=4),
    )


# ----------------------------------------------------------------------------- a small SunSpec client

SUNS = [0x5375, 0x6E53]
END_MODEL = 0xFFFF
MAX_READ = 125


class SunSpecClient:
    """Reads and writes one unit of a Modbus stand-in by its bench-file resource, as a driver does."""

    def __init__(self, client: ModbusTcpClient, unit: int) -> None:
        self.client = client
        self.unit = unit

    def read(self, address: int, count: int) -> list[int]:
        registers: list[int] = []
        for start in range(address, address + count, MAX_READ):
            reply = self.client.read_holding_registers(
                start, count=min(MAX_READ, address + count - start), device_id=self.unit
            )
            assert not reply.isError(), (self.unit, start, reply)
            registers += reply.registers
        return registers

    def read_error(self, address: int, count: int = 1) -> int:
        """The exception code a read is refused with."""
        reply = self.client.read_holding_registers(address, count=count, device_id=self.unit)
        assert reply.isError(), (address, reply.registers)
        return int(reply.exception_code)

    def write(self, address: int, registers: list[int]) -> int | None:
        """Write; the exception code, or None when accepted."""
        reply = self.client.write_registers(address, registers, device_id=self.unit)
        return int(reply.exception_code) if reply.isError() else None

    def chain(self) -> dict[int, tuple[int, int]]:
        """Model id -> (address of its body, length), walking from the 'SunS' marker at 40000."""
        assert self.read(40000, 2) == SUNS
        models: dict[int, tuple[int, int]] = {}
        address = 40002
        while True:
            model_id, length = self.read(address, 2)
            if model_id == END_MODEL:
                assert length == 0
                return models
            assert model_id not in models
            models[model_id] = (address + 2, length)
            address += 2 + length

    def body(self, model_id: int) -> list[int]:
        address, length = self.chain()[model_id]
        return self.read(address, length)

    def text(self, registers: list[int]) -> str:
        return bytes(b for register in registers for b in register.to_bytes(2, "big")).rstrip(b"\0").decode()


@contextmanager
def connect(resource: str) -> Iterator[SunSpecClient]:
    """A client of ``modbus+tcp://host:port/unit``."""
    url = urlparse(resource)
    assert url.scheme == "modbus+tcp" and url.hostname == "127.0.0.1"
    client = ModbusTcpClient(url.hostname, port=url.port, timeout=3, retries=0)
    assert client.connect()
    try:
        yield SunSpecClient(client, int(url.path.strip("/")))
    finally:
        client.close()


def signed(raw: int) -> int:
    return raw - 0x10000 if raw >= 0x8000 else raw


def scaled(raw: int, sf_raw: int, *, is_signed: bool = True) -> float:
    return (signed(raw) if is_signed else raw) * 10.0 ** signed(sf_raw)


def uint32(registers: list[int]) -> int:
    return registers[0] << 16 | registers[1]


def identity_of(wire: SunSpecClient) -> str:
    """Manufacturer, model, serial number and version from model 1, as the stand-ins' identity puts them."""
    common = wire.body(1)
    return ",".join(
        wire.text(common[start : start + size]) for start, size in ((0, 16), (16, 16), (48, 16), (40, 8))
    )
