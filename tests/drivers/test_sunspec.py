"""SunSpecDevice over the wire: the PCC meter stand-in, and SunSpec images the Modbus stand-in serves.

Images are built by the server side's own encoder (``harness.sim.modbus``) from this client's model
definitions, so every round trip checks our decoding against an independent encoder.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator, Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.base import Identity
from drivers.errors import IdentityMismatch, InstrumentRejected, LimitViolation
from drivers.modbus import ModbusTransport
from drivers.sunspec import (
    SUNSPEC_MODELS,
    Kind,
    ModelDef,
    PointValue,
    SunSpecDevice,
    scaled,
    sunspec_identity,
)
from harness.sim.modbus import (
    Access,
    ModbusStandIn,
    Model,
    Point,
    PointType,
    RegisterMap,
    common_model,
    sunspec_points,
)
from harness.sim.plant import Plant
from harness.sim.standins import pcc_meter
from harness.sim.standins.pcc_meter import PccMeter
from harness.sim.standins.sunspec_models import meter_model
from tests.drivers import bench_plant

ROLE = "pcc_meter"
ILLEGAL_VALUE = 0x03
COMMON = common_model(manufacturer="ACME", model="M-213", serial_number="42", version="2.0")


@pytest.fixture
def plant() -> Plant:
    return bench_plant(packs=4)


@pytest.fixture
def meter(started, plant: Plant, lock) -> PccMeter:
    return started(PccMeter(plant, lock))


@pytest.fixture
def device(meter: PccMeter) -> Iterator[SunSpecDevice]:
    transport = ModbusTransport(ROLE, meter.resource, timeout_s=1.0)
    transport.open()
    yield SunSpecDevice(transport)
    transport.close()


def served(models: list[Model], base: int = 40000, *, end_model: bool = True) -> ModbusStandIn:
    """A started stand-in serving a SunSpec image of ``models`` at ``base`` on unit 1."""
    points = sunspec_points(models, base_address=base)
    regmap = RegisterMap(points if end_model else points[:-2])
    return ModbusStandIn({1: regmap}).start()


def model_of(definition: ModelDef, values: Mapping[str, PointValue]) -> Model:
    """``definition`` as the server side declares a model, holding ``values`` (engineering units)."""
    points = tuple(
        Point(
            point.name,
            PointType(point.type),
            size=point.size,
            scale_factor=point.sf,
            access=Access.RW if point.writable else Access.R,
            value=values.get(point.name),
        )
        for point in definition.points
    )
    return Model(definition.model_id, f"m{definition.model_id}", points)


def read_over_the_wire(models: list[Model], model_id: int, index: int = 0, base: int = 40000) -> dict:
    stand_in = served(models, base)
    transport = ModbusTransport(ROLE, stand_in.resource, timeout_s=1.0)
    try:
        transport.open()
        return SunSpecDevice(transport).read_model(model_id, index)
    finally:
        transport.close()
        stand_in.close()


# ---------------------------------------------------------------- the PCC meter


def test_scan_finds_the_meter_models(device: SunSpecDevice) -> None:
    assert device.scan() == {1: [40002], 203: [40002 + 2 + 66]}


def test_common_model_identifies_the_meter(device: SunSpecDevice) -> None:
    common = device.common()
    assert (common["Mn"], common["Md"], common["SN"], common["Vr"], common["DA"]) == (
        "gridhil",
        "PCC-SIM-203",
        "SIM-PCC-0001",
        "1.00",
        1,
    )
    assert common["Opt"] is None
    identity = sunspec_identity(device, ROLE, "here")
    assert ",".join(vars(identity).values()) == pcc_meter.IDENTITY


def test_meter_readings_match_the_plant(device: SunSpecDevice, plant: Plant, lock) -> None:
    with lock:
        plant.step(5.0)  # the run's clock: the load draws from the grid
        truth_w = plant.bus.grid_w
        grid = plant.grid.state_at(plant.t)
        line_v = grid.voltage_pu * plant.grid.nominal_voltage_v
    reading = device.read_model(203)
    assert truth_w > 0.0
    assert reading["W"] == pytest.approx(truth_w, abs=10 ** reading["W_SF"] / 2)
    assert sum(reading[f"Wph{phase}"] for phase in "ABC") == pytest.approx(
        truth_w, abs=3 * 10 ** reading["W_SF"]
    )
    assert reading["Hz"] == pytest.approx(grid.frequency_hz, abs=10 ** reading["Hz_SF"] / 2)
    assert reading["PPV"] == pytest.approx(line_v, abs=10 ** reading["V_SF"] / 2)
    assert reading["PhVphA"] == pytest.approx(line_v / math.sqrt(3.0), abs=10 ** reading["V_SF"] / 2)
    assert reading["TotVAhExp"] is None and reading["TotVArh_SF"] is None  # not implemented by this meter
    assert reading["Evt"] == 0
    assert "Pad" not in device.common()


def test_device_address_is_writable_within_its_range(device: SunSpecDevice) -> None:
    device.write_point(1, "DA", 7)
    assert device.common()["DA"] == 7
    with pytest.raises(InstrumentRejected) as caught:
        device.write_point(1, "DA", 248)  # the meter's own range is 1-247
    assert caught.value.code == ILLEGAL_VALUE and "DA" in caught.value.command
    assert device.common()["DA"] == 7


def test_writes_the_standard_forbids_or_the_type_cannot_carry_never_reach_the_wire(
    device: SunSpecDevice,
) -> None:
    with pytest.raises(ValueError, match="read-only"):
        device.write_point(203, "W", 1000.0)
    with pytest.raises(LimitViolation, match="uint16"):
        device.write_point(1, "DA", 70000)
    with pytest.raises(LimitViolation, match="uint16"):
        device.write_point(1, "DA", 0xFFFF)  # uint16's "not implemented" pattern
    assert device.common()["DA"] == 1


def test_models_the_device_lacks_or_nobody_defined(device: SunSpecDevice) -> None:
    with pytest.raises(IdentityMismatch, match=r"0 instance\(s\) of model 213"):
        device.read_model(213)
    with pytest.raises(IdentityMismatch, match="index 1"):
        device.read_model(203, index=1)
    with pytest.raises(KeyError, match="999"):
        device.read_model(999)
    with pytest.raises(KeyError, match="Watts"):
        device.write_point(1, "Watts", 1)


# ---------------------------------------------------------------- definitions


def test_definitions_have_the_standard_lengths() -> None:
    lengths = {model_id: definition.length for model_id, definition in SUNSPEC_MODELS.items()}
    assert lengths == {
        1: 66,
        **dict.fromkeys((201, 202, 203, 204), 105),
        **dict.fromkeys((211, 212, 213, 214), 124),
    }
    for definition in SUNSPEC_MODELS.values():
        names = [point.name for point in definition.points]
        assert len(set(names)) == len(names)
        for point in definition.points:
            assert point.sf is None or definition.offsets[point.sf][1].kind is Kind.SCALE_FACTOR


def test_model_203_matches_the_meter_stand_in_point_for_point() -> None:
    theirs = [(p.name, p.type.value, p.size, p.scale_factor) for p in meter_model().points]
    ours = [(p.name, p.type, p.size, p.sf) for p in SUNSPEC_MODELS[203].points]
    assert ours == theirs


# ---------------------------------------------------------------- round trips through an independent encoder


float32s = st.floats(width=32, allow_nan=False, allow_infinity=False)


@settings(max_examples=25, deadline=None)
@given(data=st.data(), model_id=st.sampled_from([211, 212, 213, 214]))
def test_float_models_read_back_what_was_served(data: st.DataObject, model_id: int) -> None:
    definition = SUNSPEC_MODELS[model_id]
    values = {
        point.name: data.draw(
            st.one_of(st.none(), float32s if point.kind is Kind.FLOAT else st.integers(0, 2**32 - 2))
        )
        for point in definition.points
    }
    read = read_over_the_wire([COMMON, model_of(definition, values)], model_id)
    assert read == values


@settings(max_examples=25, deadline=None)
@given(data=st.data(), model_id=st.sampled_from([201, 202, 203, 204]))
def test_integer_models_read_back_scaled(data: st.DataObject, model_id: int) -> None:
    definition = SUNSPEC_MODELS[model_id]
    factors = {
        p.name: data.draw(st.integers(-4, 4)) for p in definition.points if p.kind is Kind.SCALE_FACTOR
    }
    raw: dict[str, int | None] = {}
    for point in definition.points:
        if point.kind is Kind.SIGNED:
            raw[point.name] = data.draw(st.one_of(st.none(), st.integers(-32767, 32767)))
        elif point.kind is Kind.ACCUMULATOR:
            raw[point.name] = data.draw(st.one_of(st.none(), st.integers(1, 2**32 - 1)))
        elif point.kind is Kind.UNSIGNED:
            raw[point.name] = data.draw(st.one_of(st.none(), st.integers(0, 2**32 - 2)))

    def exponent(name: str) -> int:
        factor = definition.offsets[name][1].sf
        return factors[factor] if factor else 0

    expected = {name: None if value is None else scaled(value, exponent(name)) for name, value in raw.items()}
    read = read_over_the_wire([COMMON, model_of(definition, {**expected, **factors})], model_id)
    assert read == {**expected, **factors}


@pytest.mark.parametrize("base", [0, 50000])
def test_other_base_addresses_and_second_instances(base: int) -> None:
    first = {"W": 1.5, "Hz": 50.0}
    second = {"W": -2.5, "Hz": 60.0}
    models = [COMMON, model_of(SUNSPEC_MODELS[213], first), model_of(SUNSPEC_MODELS[213], second)]
    models[2] = Model(213, "second", models[2].points)
    stand_in = served(models, base)
    transport = ModbusTransport(ROLE, stand_in.resource, timeout_s=1.0)
    try:
        transport.open()
        device = SunSpecDevice(transport)
        assert device.scan() == {1: [base + 2], 213: [base + 70, base + 70 + 126]}
        assert device.read_model(213, index=1)["W"] == -2.5
        assert device.read_model(213)["Hz"] == 50.0
        assert sunspec_identity(device, ROLE, stand_in.resource) == Identity("ACME", "M-213", "42", "2.0")
    finally:
        transport.close()
        stand_in.close()


def test_a_common_model_without_manufacturer_is_no_identity() -> None:
    anonymous = common_model(manufacturer="", model="X", serial_number="1")
    stand_in = served([anonymous])
    transport = ModbusTransport(ROLE, stand_in.resource, timeout_s=1.0)
    try:
        transport.open()
        with pytest.raises(IdentityMismatch, match="no manufacturer") as caught:
            sunspec_identity(SunSpecDevice(transport), ROLE, stand_in.resource)
        assert caught.value.role == ROLE
    finally:
        transport.close()
        stand_in.close()


def test_a_chain_without_the_end_model_is_tolerated() -> None:
    stand_in = served([COMMON], end_model=False)
    transport = ModbusTransport(ROLE, stand_in.resource, timeout_s=1.0)
    try:
        transport.open()
        assert SunSpecDevice(transport).scan() == {1: [40002]}
    finally:
        transport.close()
        stand_in.close()


def test_no_marker_anywhere_is_not_a_sunspec_device() -> None:
    not_sunspec = RegisterMap(
        [Point("x", PointType.UINT16, 40000, value=1), Point("y", PointType.UINT16, 40001)]
    )
    with ModbusStandIn({1: not_sunspec}) as stand_in:
        transport = ModbusTransport(ROLE, stand_in.resource, timeout_s=1.0)
        transport.open()
        try:
            with pytest.raises(IdentityMismatch, match="no 'SunS' marker"):
                SunSpecDevice(transport).scan()
        finally:
            transport.close()


def test_float32_values_survive_as_float32() -> None:
    """A float64 that float32 cannot hold exactly reads back as its float32 rounding."""
    value = 0.1
    (as_float32,) = struct.unpack(">f", struct.pack(">f", value))
    read = read_over_the_wire([COMMON, model_of(SUNSPEC_MODELS[213], {"PF": value})], 213)
    assert read["PF"] == as_float32 != value
