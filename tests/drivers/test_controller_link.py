"""The controller link driver: opening (SunSpec common + model 64901), limits checked before the wire, safe().

Status fields and every command round trip through the controller's face are in tests/controller/test_face.py.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator

import pytest

from drivers.base import DriverConfig, Identity
from drivers.controller_link import ControllerLink
from drivers.errors import GarbageReply, IdentityMismatch, InstrumentUnavailable, LimitViolation
from drivers.registry import driver_class
from harness.controller.face import ControllerFace, controller_model
from harness.controller.model import ControllerCommands, ControllerStatus
from harness.sim.modbus import (
    Framing,
    ModbusStandIn,
    Point,
    PointType,
    RegisterMap,
    common_model,
    sunspec_map,
)

ROLE = "controller"


def link_for(resource: str, **limits: float) -> ControllerLink:
    return ControllerLink(DriverConfig(ROLE, resource, limits=limits, options={"timeout_s": 2.0}))


class Served:
    """A controller face over a bare status and commands."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.commands = ControllerCommands()
        self.face = ControllerFace(ControllerStatus, self.commands, self.lock)

    def commanded(self) -> ControllerCommands:
        with self.lock:
            return ControllerCommands(**vars(self.commands))


@pytest.fixture
def served() -> Iterator[Served]:
    served = Served()
    with served.face:
        yield served


def test_registered_as_gridhil_controller():
    assert driver_class("gridhil-controller") is ControllerLink


def test_identity_is_the_common_model_of_the_face(served):
    with link_for(served.face.resource) as link:
        identity = link.identity()
    assert identity == Identity("gridhil", "reference-controller", "GRIDHIL-CTL-0001", "1.00")
    fields = (identity.manufacturer, identity.model, identity.serial, identity.firmware)
    assert ",".join(fields) == served.face.identity


def test_rtu_framing_over_tcp_reaches_the_controller_and_unimplemented_status_is_garbage():
    common = common_model(manufacturer="ACME", model="MGC-9", serial_number="0042", version="4.2")
    with ModbusStandIn({3: sunspec_map([common, controller_model()])}, framer=Framing.RTU) as server:
        assert server.resource.startswith("modbus+rtu-tcp://")
        with link_for(server.resource) as link:
            assert link.identity() == Identity("ACME", "MGC-9", "0042", "4.2")
            with pytest.raises(GarbageReply, match="Mode not implemented"):
                link.status()  # an image with no status bound: every point reads "not implemented"


def test_a_modbus_device_that_is_not_sunspec_is_refused_on_open():
    plain = RegisterMap([Point("setpoint", PointType.UINT16, 0, value=7)])
    refused = pytest.raises(IdentityMismatch, match="not a SunSpec device")
    with ModbusStandIn({1: plain}) as server, refused as caught:
        link_for(server.resource).open()
    assert (caught.value.role, caught.value.resource) == (ROLE, server.resource)


def test_a_sunspec_device_without_the_controller_model_is_refused_on_open():
    common = common_model(manufacturer="ACME", model="inverter", serial_number="7")
    refused = pytest.raises(IdentityMismatch, match="no gridhil controller model 64901")
    with ModbusStandIn({1: sunspec_map([common])}) as server, refused as caught:
        link_for(server.resource).open()
    assert caught.value.role == ROLE


def test_nothing_listening_is_unavailable():
    common = common_model(manufacturer="ACME", model="MGC-9", serial_number="0042")
    with ModbusStandIn({1: sunspec_map([common])}) as server:
        resource = server.resource  # closed again: its port is free
    with pytest.raises(InstrumentUnavailable) as caught:
        link_for(resource).open()
    assert caught.value.role == ROLE


@pytest.mark.parametrize(
    ("command", "value"),
    [
        ("set_dispatch", 1.000001e9),
        ("set_dispatch", -1.000001e9),
        ("set_dispatch", math.nan),
        ("set_grid_ramp", -1.0),
        ("set_grid_ramp", 2e9),
        ("set_grid_ramp", math.inf),
        ("set_reserve_soc", -0.01),
        ("set_reserve_soc", 1.01),
        ("set_reserve_soc", math.nan),
    ],
)
def test_a_set_point_outside_the_drivers_range_never_reaches_the_wire(served, command, value):
    before = served.commanded()
    with link_for(served.face.resource) as link, pytest.raises(LimitViolation) as caught:
        getattr(link, command)(value)
    assert (caught.value.role, caught.value.command) == (ROLE, command)
    assert served.commanded() == before


def test_the_bench_file_narrows_the_ranges(served):
    with link_for(served.face.resource, dispatch_max=2e6, grid_ramp_max=1e5, reserve_soc_max=0.5) as link:
        link.set_dispatch(-2e6)
        with pytest.raises(LimitViolation, match="dispatch_max"):
            link.set_dispatch(-2.1e6)
        with pytest.raises(LimitViolation, match="grid_ramp_max"):
            link.set_grid_ramp(1.5e5)
        with pytest.raises(LimitViolation, match="reserve_soc_max"):
            link.set_reserve_soc(0.6)
    assert served.commanded().dispatch_w == -2e6
    assert served.commanded().grid_ramp_w_per_s == ControllerCommands().grid_ramp_w_per_s


def test_a_limit_beyond_what_the_driver_can_do_is_refused():
    with pytest.raises(LimitViolation, match="reserve_soc_max"):
        link_for("modbus+tcp://127.0.0.1:502/1", reserve_soc_max=1.5)


def test_safe_asks_the_controller_to_stop(served):
    with link_for(served.face.resource) as link:
        assert link.status().enabled
        link.safe()
        assert not link.status().enabled
    assert served.commanded().enabled is False


def test_safe_with_the_controller_gone_raises_naming_the_role(served):
    link = link_for(served.face.resource).open()
    served.face.close()
    with pytest.raises(Exception) as caught:
        link.safe()
    assert getattr(caught.value, "role", None) == ROLE
    link.close()
