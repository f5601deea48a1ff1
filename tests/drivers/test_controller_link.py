"""The controller link stub over Modbus: identity from the SunSpec common model of a controller's face.

Until the reference controller serves its own face, the PCS/BMS face stand-in's common model stands in.
"""

from __future__ import annotations

import threading

import pytest

from drivers.base import DriverConfig, Identity
from drivers.controller_link import ControllerLink
from drivers.errors import IdentityMismatch, InstrumentUnavailable
from harness.sim.modbus import (
    Framing,
    ModbusStandIn,
    Point,
    PointType,
    RegisterMap,
    common_model,
    sunspec_map,
)
from harness.sim.standins.pcs_face import PcsFace
from tests.sim.standins import small_plant

ROLE = "controller"


def link_for(resource: str) -> ControllerLink:
    return ControllerLink(DriverConfig(ROLE, resource, options={"timeout_s": 2.0}))


@pytest.fixture
def face():
    with PcsFace(small_plant(), threading.RLock()) as started:
        yield started


def test_identity_is_the_common_model_of_the_face(face):
    with link_for(face.resource) as link:
        identity = link.identity()
    assert identity == Identity("gridhil", "PCS-BMS-SIM", "SIM-PCS-0001", "1.00")
    fields = (identity.manufacturer, identity.model, identity.serial, identity.firmware)
    assert ",".join(fields) == face.identity


def test_rtu_framing_over_tcp_reaches_the_same_identity():
    common = common_model(manufacturer="ACME", model="MGC-9", serial_number="0042", version="4.2")
    with ModbusStandIn({3: sunspec_map([common])}, framer=Framing.RTU) as server:
        assert server.resource.startswith("modbus+rtu-tcp://")
        with link_for(server.resource) as link:
            assert link.identity() == Identity("ACME", "MGC-9", "0042", "4.2")


def test_a_modbus_device_that_is_not_sunspec_is_refused_on_open():
    plain = RegisterMap([Point("setpoint", PointType.UINT16, 0, value=7)])
    refused = pytest.raises(IdentityMismatch, match="not a SunSpec device")
    with ModbusStandIn({1: plain}) as server, refused as caught:
        link_for(server.resource).open()
    assert (caught.value.role, caught.value.resource) == (ROLE, server.resource)


def test_nothing_listening_is_unavailable():
    common = common_model(manufacturer="ACME", model="MGC-9", serial_number="0042")
    with ModbusStandIn({1: sunspec_map([common])}) as server:
        resource = server.resource  # closed again: its port is free
    with pytest.raises(InstrumentUnavailable) as caught:
        link_for(resource).open()
    assert caught.value.role == ROLE


def test_safe_does_nothing_so_it_cannot_fail_even_when_the_controller_is_gone(face):
    link = link_for(face.resource).open()
    face.close()
    link.safe()
    link.close()
