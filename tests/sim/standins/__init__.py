"""Tests of the stand-in instruments, driven through real clients (pyvisa-py, pyserial); shared helpers."""

from __future__ import annotations

import re
import string
import threading
from collections.abc import Callable, Sequence

from hypothesis import strategies as st
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
