"""The Numato relay driver over a pseudo-terminal: against the relay box stand-in wired into a plant, and
against recording and misbehaving boards served on their own pseudo-terminals to check the exact bytes."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.base import DriverConfig, Identity
from drivers.errors import GarbageReply, InstrumentRejected, InstrumentTimeout, LimitViolation
from drivers.numato_relay import RelayBox
from harness.sim.pty_server import ByteHandler
from harness.sim.standins import relay_box as standin
from harness.sim.standins.wiring import GRID_BREAKER_RELAY
from tests.sim.standins import small_plant

pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")

ROLE = "relays"
RELAYS = 16
FAST_TIMEOUT_S = 0.3
"""For boards that never finish an answer: how long the driver waits before it gives up."""


def driver_for(resource: str, **options: object) -> RelayBox:
    return RelayBox(DriverConfig(ROLE, resource, options={"timeout_s": 2.0, **options}))


@pytest.fixture
def plant():
    return small_plant()


@pytest.fixture
def box(started, plant, lock):
    return started(standin.RelayBox(plant, lock))


@pytest.fixture
def relays(started, box):
    return started(driver_for(box.resource))


# ----------------------------------------------------------------------------- boards on their own pty


class Recorder:
    """A board's byte stream that records what the driver sent, then answers as ``inner`` does."""

    def __init__(self, inner: standin.NumatoTerminal) -> None:
        self.inner = inner
        self.received = bytearray()
        self._guard = threading.Lock()

    def feed(self, data: bytes) -> bytes:
        with self._guard:
            self.received += data
        return self.inner.feed(data)

    def take(self) -> bytes:
        """What was received since the last take."""
        with self._guard:
            data = bytes(self.received)
            self.received.clear()
        return data


class Board:
    """A byte stream that answers every ``\\r``-terminated line with ``answer(line)``, echo included."""

    def __init__(self, answer: Callable[[bytes], bytes]) -> None:
        self._answer = answer
        self._line = bytearray()

    def feed(self, data: bytes) -> bytes:
        out = bytearray()
        for byte in data:
            if byte == 0x0D:
                out += self._answer(bytes(self._line))
                self._line.clear()
            else:
                self._line.append(byte)
        return bytes(out)


@contextmanager
def served(terminal: ByteHandler) -> Iterator[str]:
    """The resource of a pseudo-terminal whose far end is ``terminal``."""
    with standin.NumatoPtyServer(lambda: terminal) as server:
        yield server.resource


@pytest.fixture
def recorded(plant, lock):
    """A driver on the stand-in's command interpreter, behind a recorder of the exact bytes."""
    recorder = Recorder(standin.NumatoTerminal(standin.RelayBox(plant, lock).execute))
    with served(recorder) as resource, driver_for(resource) as driver:
        recorder.take()
        yield driver, recorder


def numato_answer(line: bytes, reply: bytes | None) -> bytes:
    return line + b"\r\n" + (b"" if reply is None else reply + b"\r\n") + b">"


# ----------------------------------------------------------------------------- against the stand-in


def test_identity_is_the_board_id_and_firmware_version(relays, box):
    identity = relays.identity()
    assert identity == Identity("Numato Lab", "16 Channel USB Relay Module", "00000000", "00000008")
    fields = (identity.manufacturer, identity.model, identity.serial, identity.firmware)
    assert ",".join(fields) == box.identity


def test_a_relay_acts_on_the_plant_and_reads_back(relays, plant, lock):
    relays.on(0)  # default wiring: relay 0 trips PCS unit 0
    with lock:
        assert [unit.available for unit in plant.pcs.units] == [False, True, True, True]
    assert relays.read(0) is True
    assert relays.read(1) is False
    assert relays.read_all() == 0b1
    relays.off(0)
    with lock:
        assert plant.pcs.units[0].available
    assert relays.read(0) is False


def test_high_relay_numbers_use_numato_letters(relays, plant, lock):
    relays.on(10)  # default wiring: relay 10 (A) cuts pack 0's BMS link
    relays.on(15)
    assert relays.read_all() == 1 << 10 | 1 << 15
    assert relays.read(10) and relays.read(15)


def test_reset_turns_every_relay_off(relays, plant, lock):
    for relay in (0, 2, GRID_BREAKER_RELAY):
        relays.on(relay)
    with lock:
        assert plant.utility_breaker_open
    relays.reset()
    assert relays.read_all() == 0
    with lock:
        assert not plant.utility_breaker_open
        assert all(unit.available for unit in plant.pcs.units)


def test_safe_turns_every_relay_off_and_releases_the_faults(relays, plant, lock):
    relays.write_all(0xFFFF)
    with lock:
        assert not any(unit.available for unit in plant.pcs.units)
    relays.safe()
    assert relays.read_all() == 0
    with lock:
        assert all(unit.available for unit in plant.pcs.units)
        assert not plant.utility_breaker_open


def test_safe_on_relays_are_on_in_the_safe_state(box, plant, lock):
    with driver_for(box.resource, safe_on=[GRID_BREAKER_RELAY, 1]) as relays:
        relays.on(0)
        relays.safe()
        assert relays.read_all() == 1 << GRID_BREAKER_RELAY | 1 << 1
    with lock:
        assert plant.utility_breaker_open
        assert [unit.available for unit in plant.pcs.units] == [True, False, True, True]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(st.integers(0, RELAYS - 1), st.booleans()), max_size=12))
def test_read_back_follows_any_sequence_of_switching(relays, steps):
    relays.reset()
    expected = 0
    for relay, on in steps:
        if on:
            relays.on(relay)
            expected |= 1 << relay
        else:
            relays.off(relay)
            expected &= ~(1 << relay)
    assert relays.read_all() == expected
    for relay, _ in steps:
        assert relays.read(relay) is bool(expected >> relay & 1)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bitmap=st.integers(0, (1 << RELAYS) - 1))
def test_write_all_then_read_all_round_trips(relays, bitmap):
    relays.write_all(bitmap)
    assert relays.read_all() == bitmap


# ----------------------------------------------------------------------------- the exact bytes


def test_exact_bytes_of_each_command(recorded):
    driver, recorder = recorded
    driver.on(0)
    assert recorder.take() == b"relay on 0\r"
    driver.off(11)
    assert recorder.take() == b"relay off B\r"
    assert driver.read(11) is False
    assert recorder.take() == b"relay read B\r"
    driver.write_all(0x0402)
    assert recorder.take() == b"relay writeall 0402\r"
    assert driver.read_all() == 0x0402
    assert recorder.take() == b"relay readall\r"
    driver.reset()
    assert recorder.take() == b"reset\r"
    driver.identity()
    assert recorder.take() == b"id get\rver\r"


def test_safe_writes_all_safe_positions_in_one_command_then_reads_back(recorded):
    driver, recorder = recorded
    driver.on(3)
    recorder.take()
    driver.safe()
    assert recorder.take() == b"relay writeall 0000\rrelay readall\r"


def test_an_eight_relay_board_gets_two_hex_digits(plant, lock):
    recorder = Recorder(standin.NumatoTerminal(standin.RelayBox(plant, lock).execute))
    with served(recorder) as resource, driver_for(resource, relay_count=8, safe_on=[7]) as driver:
        assert driver.identity().model == "8 Channel USB Relay Module"
        recorder.take()
        driver.safe()
        assert recorder.take() == b"relay writeall 80\rrelay readall\r"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    relay=st.one_of(st.integers(max_value=-1), st.integers(min_value=RELAYS)),
    action=st.sampled_from(["on", "off", "read"]),
)
def test_relay_out_of_range_is_refused_before_anything_is_sent(recorded, relay, action):
    driver, recorder = recorded
    refusal = rf"relay {relay} is not one of this board's relays 0\.\.15"
    with pytest.raises(LimitViolation, match=refusal) as caught:
        getattr(driver, action)(relay)
    assert caught.value.role == ROLE
    assert caught.value.command == f"relay {action}"
    driver.on(1)  # the next command is the first thing on the wire
    assert recorder.take() == b"relay on 1\r"


def test_bitmap_beyond_the_board_is_refused_before_anything_is_sent(recorded):
    driver, recorder = recorded
    with pytest.raises(LimitViolation, match="beyond relay 15"):
        driver.write_all(1 << RELAYS)
    with pytest.raises(LimitViolation):
        driver.write_all(-1)
    assert recorder.take() == b""
    driver.reset()
    assert recorder.take() == b"reset\r"


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"relay_count": 0}, "relay_count"),
        ({"relay_count": 33}, "relay_count"),
        ({"relay_count": "16"}, "relay_count"),
        ({"safe_on": [16]}, "safe_on"),
        ({"safe_on": "4"}, "safe_on"),
        ({"relay_count": 8, "safe_on": [8]}, "safe_on"),
    ],
)
def test_bad_bench_options_are_refused_when_the_driver_is_built(options, problem):
    with pytest.raises(ValueError, match=problem):
        driver_for("serial:///dev/null", **options)


# ----------------------------------------------------------------------------- misbehaving boards


def test_a_board_that_answers_garbage_fails_to_open():
    garbage = Board(lambda line: b"\x15\xfe?? SYNTAX\r\n>")
    with served(garbage) as resource, pytest.raises(GarbageReply) as caught:
        driver_for(resource).open()
    assert caught.value.role == ROLE
    assert caught.value.resource == resource
    assert "SYNTAX" in caught.value.problem


def board_with(replies: dict[bytes, bytes | None]) -> Board:
    """A board that echoes and prompts like a Numato but replies ``replies[line]`` (no reply if absent)."""
    return Board(lambda line: numato_answer(line, replies.get(line)))


IDENTITY_REPLIES: dict[bytes, bytes | None] = {b"ver": b"00000008", b"id get": b"00000000"}


@pytest.mark.parametrize(
    ("call", "line", "reply"),
    [
        (lambda driver: driver.read(2), b"relay read 2", b"maybe"),
        (lambda driver: driver.read_all(), b"relay readall", b"ZZ"),
        (lambda driver: driver.read_all(), b"relay readall", b"1FFFF"),
        (lambda driver: driver.read_all(), b"relay readall", b"0x01"),
        (lambda driver: driver.on(2), b"relay on 2", b"OK"),
    ],
    ids=["read-not-on-off", "readall-not-hex", "readall-too-wide", "readall-0x", "reply-where-none"],
)
def test_replies_of_the_wrong_shape_are_garbage(call, line, reply):
    board = board_with({**IDENTITY_REPLIES, line: reply})
    with served(board) as resource, driver_for(resource) as driver, pytest.raises(GarbageReply) as caught:
        call(driver)
    assert caught.value.command == line.decode()
    assert repr(reply)[1:] in caught.value.problem


def test_a_wrong_echo_is_garbage():
    board = Board(lambda line: numato_answer(line.replace(b"on", b"off"), None))
    with served(board) as resource, driver_for(resource) as driver, pytest.raises(GarbageReply, match="echo"):
        driver.on(1)


def test_a_board_that_never_prompts_times_out():
    silent = Board(lambda line: line + b"\r\n")
    with served(silent) as resource, pytest.raises(InstrumentTimeout) as caught:
        driver_for(resource, timeout_s=FAST_TIMEOUT_S).open()
    assert caught.value.role == ROLE


def test_safe_fails_loudly_when_the_board_ignores_the_command(plant, lock):
    """A board without ``writeall`` (or one that lost it) answers with the prompt alone, as for any unknown
    command: only the read-back shows the relays stayed where they were."""
    box = standin.RelayBox(plant, lock)

    def ignoring_writeall(line: str) -> str | None:
        return None if line.startswith("relay writeall") else box.execute(line)

    with served(standin.NumatoTerminal(ignoring_writeall)) as resource, driver_for(resource) as driver:
        driver.on(GRID_BREAKER_RELAY)
        with pytest.raises(InstrumentRejected, match="read back 0x10"):
            driver.safe()
