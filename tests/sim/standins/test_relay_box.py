"""The Numato relay box stand-in and its wiring into the plant, driven over a pseudo-terminal by pyserial."""

from __future__ import annotations

import string

import numpy as np
import pytest
import serial
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.sim.packs import InjectedFault
from harness.sim.standins.relay_box import RelayBox
from harness.sim.standins.wiring import (
    GridBreaker,
    PackBmsLink,
    PackContactor,
    PcsUnit,
    RelayWiring,
)
from tests.sim.standins import TIMEOUT_S, run, small_plant

pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")


@pytest.fixture
def box(plant, lock):
    with RelayBox(plant, lock) as stand_in:
        yield stand_in


@pytest.fixture
def port(box):
    with serial.Serial(box.device_path, 115200, timeout=TIMEOUT_S) as connection:
        yield connection


def exchange(port, line: str) -> bytes:
    """Send one command line (``\\r``-terminated) and read the device's answer up to its prompt."""
    port.write(line.encode() + b"\r")
    answer = port.read_until(b">")
    assert answer.endswith(b">"), answer
    return answer


def reply(port, line: str) -> str | None:
    """The reply text of one command (None if it has none), checking the echo and prompt around it."""
    answer = exchange(port, line)
    head = line.encode() + b"\r\n"
    assert answer.startswith(head), answer
    body = answer[len(head) : -1]
    if not body:
        return None
    assert body.endswith(b"\r\n"), answer
    return body[:-2].decode()


def test_identity_version_and_id(box, port):
    assert box.identity == "Numato Lab,16 Channel USB Relay Module,00000000,00000008"
    assert box.resource == f"serial://{box.device_path}?baudrate=115200"
    assert exchange(port, "ver") == b"ver\r\n00000008\r\n>"
    assert reply(port, "id get") == "00000000"
    assert reply(port, "id set Rack0042") is None
    assert reply(port, "id get") == "Rack0042"
    assert reply(port, "id set short") is None
    assert reply(port, "id get") == "Rack0042"
    assert box.identity.endswith(",Rack0042,00000008")


def test_echo_prompt_and_line_endings(port):
    assert exchange(port, "relay on 0") == b"relay on 0\r\n>"
    assert exchange(port, "relay read 0") == b"relay read 0\r\non\r\n>"
    port.write(b"relay off 0\r\n")  # a CRLF client: the LF is echoed after the prompt and ignored
    assert port.read_until(b">") == b"relay off 0\r\n>"
    port.write(b"\nrelay read 0\r")
    assert port.read_until(b">") == b"\n\nrelay read 0\r\noff\r\n>"
    assert exchange(port, "") == b"\r\n>"


def test_pack_contactor_relay_forces_the_contactor_open_until_released(port, plant, lock):
    assert reply(port, "relay on 5") is None  # default wiring: relay 5 = pack 0's contactor
    with lock:
        assert not plant.packs.contactor_closed[0]
        plant.packs.command_contactors(True)
        assert not plant.packs.contactor_closed[0]
        assert plant.packs.contactor_closed[1:].all()
    assert reply(port, "relay off 5") is None
    with lock:
        assert not plant.packs.contactor_closed[0]  # released, not re-closed
        plant.packs.command_contactors(True)
        assert plant.packs.contactor_closed[0]


def test_bms_link_relay_freezes_the_heartbeat_until_released(port, plant, lock):
    assert reply(port, "relay on A") is None  # relay 10 = pack 0's BMS link
    with lock:
        before = plant.packs.heartbeat.copy()
    run(plant, lock, 0.05)
    with lock:
        moved = plant.packs.heartbeat != before
    assert not moved[0]
    assert moved[1:].all()
    assert reply(port, "relay off a") is None
    run(plant, lock, 0.05)
    with lock:
        assert plant.packs.heartbeat[0] > before[0]


def test_pcs_unit_relay_trips_the_unit_until_released(port, plant, lock):
    assert reply(port, "relay on 2") is None
    with lock:
        assert [unit.available for unit in plant.pcs.units] == [True, True, False, True]
    assert reply(port, "relay read 2") == "on"
    assert reply(port, "relay off 2") is None
    with lock:
        assert all(unit.available for unit in plant.pcs.units)


def test_grid_breaker_relay_cuts_the_grid_at_the_pcc_whatever_the_source_does(port, plant, lock):
    run(plant, lock, 0.3, dt=0.1)
    assert reply(port, "relay on 4") is None
    with lock:
        assert plant.utility_breaker_open
        assert plant.grid.state_at(plant.t).available, "the grid source itself is untouched"
    run(plant, lock, 0.2, dt=0.1)
    with lock:
        assert not plant.pcc.closed, "the PCC saw the grid go and islanded"
        assert plant.pcc.last_open_reason == "loss of grid"
    assert reply(port, "relay off 4") is None
    with lock:
        assert not plant.utility_breaker_open
        assert plant.sync_check().dv_pu == pytest.approx(0.0, abs=0.05), "the grid is back at the PCC"


def test_readall_writeall_and_reset(port, plant, lock):
    assert reply(port, "relay readall") == "0000"
    for relay in ("0", "4", "F"):
        assert reply(port, f"relay on {relay}") is None
    assert reply(port, "relay readall") == "8011"
    assert reply(port, "relay writeall 0402") is None  # relay 10 (BMS link 0) and 1 (PCS unit 1)
    assert reply(port, "relay readall") == "0402"
    with lock:
        assert [unit.available for unit in plant.pcs.units] == [True, False, True, True]
        assert not plant.utility_breaker_open
    assert reply(port, "reset") is None
    assert reply(port, "relay readall") == "0000"
    with lock:
        assert all(unit.available for unit in plant.pcs.units)


def test_custom_wiring(plant, lock):
    wiring = RelayWiring(8, {0: PackContactor(7), 1: PackBmsLink(6), 7: PcsUnit(3), 6: GridBreaker()})
    with (
        RelayBox(plant, lock, wiring) as box,
        serial.Serial(box.device_path, timeout=TIMEOUT_S) as port,
    ):
        assert box.identity.startswith("Numato Lab,8 Channel")
        assert reply(port, "relay on 0") is None
        assert reply(port, "relay on 7") is None
        assert reply(port, "relay readall") == "81"
        with lock:
            np.testing.assert_array_equal(plant.packs.contactor_closed, [True] * 7 + [False])
            assert not plant.pcs.units[3].available
        assert reply(port, "relay on 8") is None  # no relay 8 on an 8-relay box: ignored
        assert reply(port, "relay readall") == "81"


def test_wiring_is_checked_against_the_plant(plant, lock):
    with pytest.raises(ValueError, match="relays"):
        RelayWiring(4, {4: GridBreaker()})
    with pytest.raises(ValueError, match="packs"):
        RelayBox(plant, lock, RelayWiring(8, {0: PackContactor(8)}))
    with pytest.raises(ValueError, match="units"):
        RelayBox(plant, lock, RelayWiring(8, {0: PcsUnit(4)}))
    small = RelayWiring.default(small_plant(pcs_units=2), relay_count=8)
    assert small.targets == {
        0: PcsUnit(0),
        1: PcsUnit(1),
        4: GridBreaker(),
        5: PackContactor(0),
        6: PackBmsLink(0),
    }


def _plant_state(plant) -> tuple:
    packs = plant.packs
    arrays = (
        packs.contactor_closed,
        packs.injected(InjectedFault.CONTACTOR_FAILED_OPEN),
        packs.injected(InjectedFault.BMS_COMMS_LOSS),
    )
    injected = tuple(array.tobytes() for array in arrays)
    units = tuple(unit.available for unit in plant.pcs.units)
    return injected, units, plant.utility_breaker_open


_relay_token = st.sampled_from("0123456789ABCDEFabcdef")
_valid_command = st.one_of(
    st.sampled_from(["ver", "id get", "reset", "relay readall", "id set ABCD1234"]),
    st.builds("relay {} {}".format, st.sampled_from(["on", "off", "read"]), _relay_token),
    st.integers(0, 0xFFFF).map("relay writeall {:04x}".format),
)
_word = st.text(string.ascii_letters + string.digits, min_size=1, max_size=8)
_bad_relay = st.sampled_from(["G", "Z", "10", "-1", "0x"])
_not_a_relay_verb = _word.filter(lambda w: w.lower() not in ("on", "off", "read", "writeall"))
_invalid_command = st.one_of(
    st.builds("relay {} {}".format, st.sampled_from(["on", "off", "read"]), _bad_relay),
    st.builds("relay {} 0".format, _not_a_relay_verb),
    st.builds("relay on {} {}".format, _relay_token, _word),
    st.integers(0x10000, 0xFFFFFF).map("relay writeall {:x}".format),
    st.just("relay writeall zz"),
    _word.filter(lambda w: w.lower() not in ("ver", "reset", "id", "relay")),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=_valid_command.map(lambda c: (c, True)) | _invalid_command.map(lambda c: (c, False)))
def test_random_commands_never_break_it_and_unknown_ones_change_nothing(port, plant, lock, command):
    line, valid = command
    with lock:
        before = _plant_state(plant)
    answer = exchange(port, line)
    assert answer.startswith(line.encode() + b"\r\n")
    if not valid:
        assert answer == line.encode() + b"\r\n>"
        with lock:
            assert _plant_state(plant) == before
    assert exchange(port, "ver") == b"ver\r\n00000008\r\n>"
