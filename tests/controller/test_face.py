"""The controller's own face, through a plain pymodbus client and through the ControllerLink driver."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers import controller_link
from drivers.base import DriverConfig, Identity
from drivers.controller_link import ControllerLink, ControllerReading
from harness.controller.face import (
    CONTROLLER,
    CONTROLLER_MODEL_ID,
    DEFAULT_SERIAL,
    DEFAULT_VERSION,
    SOC_SF,
    ControllerFace,
    controller_model,
)
from harness.controller.model import Alarm, ControllerCommands, ControllerMode, ControllerStatus
from harness.sim.modbus import PointType, decode, encode
from tests.sim.standins import SunSpecClient, connect

ILLEGAL_DATA_ADDRESS = 2
ILLEGAL_DATA_VALUE = 3


class Controller:
    """What a controller shares with its face: the status it publishes, the commands it takes, its lock."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.status = ControllerStatus()
        self.commands = ControllerCommands()

    def publish(self, status: ControllerStatus) -> None:
        with self.lock:
            self.status = status

    def commanded(self) -> ControllerCommands:
        with self.lock:
            return dataclasses.replace(self.commands)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Controller, ControllerFace]]:
    controller = Controller()
    with ControllerFace(lambda: controller.status, controller.commands, controller.lock) as face:
        yield controller, face


@pytest.fixture
def controller(served) -> Controller:
    """The served controller, its commands back at their defaults."""
    controller, _ = served
    with controller.lock:
        for field in dataclasses.fields(ControllerCommands):
            setattr(controller.commands, field.name, field.default)
        controller.status = ControllerStatus()
    return controller


@pytest.fixture
def face(served, controller) -> ControllerFace:
    return served[1]


@pytest.fixture(scope="module")
def module_link(served) -> Iterator[ControllerLink]:
    with ControllerLink(DriverConfig("controller", served[1].resource, options={"timeout_s": 2.0})) as link:
        yield link


@pytest.fixture
def link(module_link, controller) -> ControllerLink:
    return module_link


@pytest.fixture
def client(face) -> Iterator[SunSpecClient]:
    with connect(face.resource) as sunspec:
        yield sunspec


def address_of(point: str) -> int:
    """PDU address of a 64901 point, from the model's layout after model 1 (common, 66 registers + header)."""
    offset = 0
    for candidate in controller_model().points:
        if candidate.name == point:
            return 40002 + 2 + 66 + 2 + offset
        offset += candidate.size
    raise KeyError(point)


def raw_write(client: SunSpecClient, point: str, value: float) -> int | None:
    """Encode ``value`` as the face's point ``point`` and write it; the exception code or None."""
    placed = next(candidate for candidate in controller_model().points if candidate.name == point)
    factor = SOC_SF if placed.scale_factor else 0
    return client.write(address_of(point), encode(placed.type, value, scale_factor=factor))


def raw_read(client: SunSpecClient, point: str) -> float | int | str | None:
    placed = next(candidate for candidate in controller_model().points if candidate.name == point)
    factor = SOC_SF if placed.scale_factor else 0
    return decode(placed.type, client.read(address_of(point), placed.size), scale_factor=factor)


# ----------------------------------------------------------------------------- the image


def test_the_image_is_the_common_model_then_64901(client, face):
    chain = client.chain()
    assert list(chain) == [1, CONTROLLER_MODEL_ID]
    body, length = chain[CONTROLLER_MODEL_ID]
    assert length == controller_model().length
    assert body == address_of(controller_model().points[0].name)
    assert face.register_map.point(f"{CONTROLLER}.Mode").pdu_address == address_of("Mode")
    assert raw_read(client, "SoC_SF") == SOC_SF


def test_identity_through_the_link_is_model_1(link, face):
    identity = link.identity()
    assert identity == Identity("gridhil", "reference-controller", DEFAULT_SERIAL, DEFAULT_VERSION)
    assert (
        ",".join((identity.manufacturer, identity.model, identity.serial, identity.firmware)) == face.identity
    )


def test_a_variant_names_itself_in_model_1():
    controller = Controller()
    with (
        ControllerFace(
            lambda: controller.status,
            controller.commands,
            controller.lock,
            model="never-island",
            serial="X-1",
        ) as face,
        ControllerLink(DriverConfig("controller", face.resource)) as link,
    ):
        assert link.identity() == Identity("gridhil", "never-island", "X-1", DEFAULT_VERSION)


def test_the_drivers_point_table_is_the_faces_layout():
    """drivers/ may not import the harness: its copy of the layout must stay the face's."""
    ours = controller_model()
    theirs = controller_link.CONTROLLER_MODEL
    assert theirs.model_id == ours.model_id and theirs.length == ours.length
    assert [point.name for point in theirs.points] == [point.name for point in ours.points]
    for mine, face_point in zip(theirs.points, ours.points, strict=True):
        assert (mine.type, mine.size, mine.units) == (
            face_point.type.value,
            face_point.size,
            face_point.units,
        )
        assert mine.sf == face_point.scale_factor
        assert mine.writable == (face_point.access.value == "RW")


def test_the_drivers_modes_are_the_controllers():
    assert {mode.name: mode.value for mode in controller_link.ControllerMode} == {
        mode.name: mode.value for mode in ControllerMode
    }


# ----------------------------------------------------------------------------- status


statuses = st.builds(
    ControllerStatus,
    mode=st.sampled_from(ControllerMode),
    heartbeat=st.integers(0, 10**6),
    alarms=st.builds(Alarm, st.integers(0, (1 << len(Alarm)) - 1)),
    packs_online=st.integers(0, 5000),
    packs_isolated=st.integers(0, 5000),
    fleet_soc=st.floats(0.0, 1.0),
    available_energy_wh=st.floats(0.0, 1e9),
    pcc_w=st.floats(-1e9, 1e9),
    pcs_w=st.floats(-1e9, 1e9),
    dispatch_w=st.floats(-1e9, 1e9),
    power_cap_w=st.none() | st.floats(0.0, 1e9),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(status=statuses)
def test_every_status_field_reads_back_through_the_link(controller, link, status):
    controller.publish(status)
    reading = link.status()
    assert reading.mode == status.mode and reading.mode.name == status.mode.name
    assert reading.heartbeat == status.heartbeat % 65535
    assert Alarm(reading.alarms) == status.alarms
    assert (reading.packs_online, reading.packs_isolated) == (status.packs_online, status.packs_isolated)
    assert reading.fleet_soc == pytest.approx(status.fleet_soc, abs=5e-5)
    for read, published in (
        (reading.available_energy_wh, status.available_energy_wh),
        (reading.pcc_w, status.pcc_w),
        (reading.pcs_w, status.pcs_w),
        (reading.dispatch_w, status.dispatch_w),
    ):
        assert read == pytest.approx(published, abs=0.5)
    if status.power_cap_w is None:
        assert reading.power_cap_w is None
    else:
        assert reading.power_cap_w == pytest.approx(status.power_cap_w, abs=0.5)


def test_a_status_read_through_a_plain_client(controller, client):
    controller.publish(
        ControllerStatus(
            mode=ControllerMode.ISLANDED,
            heartbeat=65536,
            alarms=Alarm.PACK_FAULT | Alarm.PCS_UNIT_LOST,
            packs_online=803,
            packs_isolated=2,
            fleet_soc=0.4567,
            available_energy_wh=28.5e6,
            pcc_w=-1234.0,
            pcs_w=4.2e6,
            dispatch_w=-3.0e6,
            power_cap_w=3.9e6,
        )
    )
    expected = {
        "Mode": ControllerMode.ISLANDED,
        "Hb": 1,
        "Alrm": 0b10_0000_0001,
        "PackOn": 803,
        "PackIso": 2,
        "SoC": 45.67,
        "AvailWh": 28_500_000,
        "PccW": -1234,
        "PcsW": 4_200_000,
        "DispW": -3_000_000,
        "CapW": 3_900_000,
    }
    assert {point: raw_read(client, point) for point in expected} == expected


def test_no_cap_is_the_not_implemented_pattern(controller, client):
    controller.publish(ControllerStatus(power_cap_w=None))
    assert client.read(address_of("CapW"), 2) == [0xFFFF, 0xFFFF]
    controller.publish(ControllerStatus(power_cap_w=0.0))
    assert client.read(address_of("CapW"), 2) == [0, 0]


def test_one_read_sees_one_published_status(controller, client):
    """The face reads the status once per request, under the lock: no read mixes two cycles."""
    stop = threading.Event()

    def publish() -> None:
        beat = 0
        while not stop.is_set():
            beat += 1
            controller.publish(ControllerStatus(heartbeat=beat, packs_online=beat % 60000, pcc_w=float(beat)))

    publisher = threading.Thread(target=publish)
    publisher.start()
    try:
        for _ in range(50):
            registers = client.read(address_of("Hb"), address_of("PcsW") - address_of("Hb"))
            high, low = registers[address_of("PccW") - address_of("Hb") :][:2]
            beat = high << 16 | low
            assert registers[0] == beat % 65535
            assert registers[address_of("PackOn") - address_of("Hb")] == beat % 60000
    finally:
        stop.set()
        publisher.join()


# ----------------------------------------------------------------------------- commands


def test_enable_and_stop(controller, link):
    link.stop()
    assert controller.commanded().enabled is False
    assert link.status().enabled is False
    link.enable()
    assert controller.commanded().enabled is True
    assert link.status().enabled is True


def test_planned_island_and_reconnect_are_requests_until_taken_up(controller, link):
    assert not link.status().planned_island_pending
    link.planned_island()
    assert controller.commanded().planned_island_requested
    assert link.status().planned_island_pending
    link.reconnect()
    assert controller.commanded().reconnect_requested
    assert link.status().reconnect_pending
    with controller.lock:  # the controller takes them up
        controller.commands.planned_island_requested = False
        controller.commands.reconnect_requested = False
    reading = link.status()
    assert not reading.planned_island_pending and not reading.reconnect_pending


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    dispatch_w=st.integers(-1_000_000_000, 1_000_000_000),
    ramp_w_per_s=st.integers(0, 1_000_000_000),
    reserve=st.integers(0, 10_000).map(lambda raw: raw / 10_000),
)
def test_set_points_reach_the_commands_and_read_back(controller, link, dispatch_w, ramp_w_per_s, reserve):
    link.set_dispatch(dispatch_w)
    link.set_grid_ramp(ramp_w_per_s)
    link.set_reserve_soc(reserve)
    commanded = controller.commanded()
    assert (commanded.dispatch_w, commanded.grid_ramp_w_per_s) == (dispatch_w, ramp_w_per_s)
    assert commanded.reserve_soc == pytest.approx(reserve, abs=1e-9)
    reading: ControllerReading = link.status()
    assert (reading.dispatch_setpoint_w, reading.grid_ramp_w_per_s) == (dispatch_w, ramp_w_per_s)
    assert reading.reserve_soc == pytest.approx(reserve, abs=1e-9)


def test_command_registers_read_back_zero_and_zero_is_a_no_op(controller, client):
    for point in ("EnableCmd", "IslandCmd", "ReconnectCmd"):
        assert raw_write(client, point, 1) is None
        assert raw_read(client, point) == 0
    acted = controller.commanded()
    for point in ("EnableCmd", "IslandCmd", "ReconnectCmd"):
        assert raw_write(client, point, 0) is None
    assert controller.commanded() == acted


@pytest.mark.parametrize(
    ("point", "registers", "code"),
    [
        ("EnableCmd", [4], ILLEGAL_DATA_VALUE),
        ("IslandCmd", [2], ILLEGAL_DATA_VALUE),
        ("ReconnectCmd", [0xFFFF], ILLEGAL_DATA_VALUE),
        ("DispatchW", encode(PointType.INT32, 1_000_000_001), ILLEGAL_DATA_VALUE),
        ("DispatchW", encode(PointType.INT32, None), ILLEGAL_DATA_VALUE),
        ("RampW", encode(PointType.UINT32, 1_000_000_001), ILLEGAL_DATA_VALUE),
        ("ReserveSoC", [10_001], ILLEGAL_DATA_VALUE),
        ("DispatchW", [0], ILLEGAL_DATA_ADDRESS),  # half of an int32
        ("Mode", [1], ILLEGAL_DATA_ADDRESS),
        ("SoC_SF", [0], ILLEGAL_DATA_ADDRESS),
    ],
)
def test_an_invalid_write_is_refused_and_changes_nothing(controller, client, point, registers, code):
    before = controller.commanded()
    readback = client.read(address_of("EnableCmd"), address_of("SoC_SF") + 1 - address_of("EnableCmd"))
    assert client.write(address_of(point), registers) == code
    assert controller.commanded() == before
    assert client.read(address_of("EnableCmd"), len(readback)) == readback


def test_a_multi_point_write_with_one_bad_value_is_all_or_nothing(controller, client):
    before = controller.commanded()
    good_dispatch = encode(PointType.INT32, 5_000)
    good_ramp = encode(PointType.UINT32, 1_000)
    bad_reserve = [20_000]
    assert (
        client.write(address_of("DispatchW"), good_dispatch + good_ramp + bad_reserve) == ILLEGAL_DATA_VALUE
    )
    assert controller.commanded() == before
