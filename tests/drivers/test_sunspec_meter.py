"""The SunSpec meter driver over Modbus TCP: the PCC meter stand-in against the plant's ground truth, and
SunSpec images served by the Modbus stand-in for the meter models and misbehaviours the PCC meter lacks."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.base import DriverConfig, Identity
from drivers.errors import ConnectionLost, GarbageReply, IdentityMismatch, InstrumentUnavailable
from drivers.sunspec import SUNSPEC_MODELS
from drivers.sunspec_meter import SunSpecMeter
from harness.sim.modbus import ModbusStandIn, Model, Point, PointType, Value, common_model, sunspec_map
from harness.sim.plant import Plant
from harness.sim.standins.pcc_meter import PccMeter
from harness.sim.standins.pcs_face import PcsFace
from harness.sim.standins.sunspec_models import MeterEventBit, meter_model
from tests.drivers import bench_plant
from tests.sim.standins import run

ROLE = "pcc_meter"
NOMINAL_LL_V = 480.0
SQRT3 = 3.0**0.5
EXPORT_DISPATCH_W = 1.0e6
"""PCS dispatch above the load: the plant exports the difference."""
KW = 1e3
"""Resolution of the PCC meter's powers and energies (scale factor 3)."""
COMMON = common_model(manufacturer="ACME", model="Meter-2", serial_number="77", version="3.1")


def build_plant(dispatch_w: float = 0.0) -> Plant:
    plant = bench_plant(packs=20)
    plant.pcs.dispatch_w = dispatch_w
    return plant


def meter_for(resource: str, **options: object) -> SunSpecMeter:
    return SunSpecMeter(DriverConfig(ROLE, resource, options={"timeout_s": 2.0, **options}))


@pytest.fixture
def plant():
    return build_plant()


@pytest.fixture
def pcc(started, plant, lock):
    return started(PccMeter(plant, lock))


@pytest.fixture
def meter(started, pcc):
    return started(meter_for(pcc.resource))


# ----------------------------------------------------------------------------- images of other meters


def float_meter(model_id: int, values: Mapping[str, Value]) -> Model:
    """A 21x meter model holding ``values`` (others not implemented), laid out by the client's definition."""
    points = tuple(
        Point(point.name, PointType(point.type), size=point.size, value=values.get(point.name))
        for point in SUNSPEC_MODELS[model_id].points
    )
    return Model(model_id, f"meter{model_id}", points)


def integer_meter(values: Mapping[str, Value]) -> Model:
    """A model 203 holding ``values``, laid out as the PCC meter stand-in lays it out (its scale factors)."""
    base = meter_model()
    points = tuple(replace(point, value=values.get(point.name, point.value)) for point in base.points)
    return Model(base.model_id, "meter203", points)


@contextmanager
def served(*models: Model) -> Iterator[str]:
    """The resource of a Modbus stand-in serving the SunSpec image of model 1 and ``models`` on unit 1."""
    with ModbusStandIn({1: sunspec_map([COMMON, *models])}) as server:
        yield server.resource


FLOAT_VALUES: dict[str, Value] = {
    "W": -1234.5,
    "VA": 1300.25,
    "VAR": -406.75,
    "PF": -0.95,
    "Hz": 59.875,
    "PhV": 277.125,
    "PPV": 480.0,
    "A": 4.5,
    "TotWhImp": 1.5e6,
    "TotWhExp": 2048.0,
    "Evt": 1 << MeterEventBit.OVER_VOLTAGE,
}
INTEGER_VALUES: dict[str, Value] = {
    "W": 250e3,
    "VA": 251e3,
    "VAR": -3e3,
    "PF": 99.5,
    "Hz": 60.01,
    "PhV": 276.9,
    "PPV": 479.6,
    "A": 1500.0,
    "TotWhImp": 42e3,
    "TotWhExp": 7e3,
    "Evt": 0,
}


# ----------------------------------------------------------------------------- against the PCC meter


def test_open_finds_the_wye_meter_and_identity_is_the_common_model(meter, pcc):
    assert meter.model_id == 203
    identity = meter.identity()
    assert identity == Identity("gridhil", "PCC-SIM-203", "SIM-PCC-0001", "1.00")
    fields = (identity.manufacturer, identity.model, identity.serial, identity.firmware)
    assert ",".join(fields) == pcc.identity


@pytest.mark.parametrize(("dispatch_w", "importing"), [(0.0, True), (EXPORT_DISPATCH_W, False)])
def test_a_reading_is_the_plant_at_the_pcc(lock, dispatch_w, importing):
    plant = build_plant(dispatch_w)
    with PccMeter(plant, lock) as pcc, meter_for(pcc.resource) as meter:
        run(plant, lock, 30.0, dt=0.5)
        reading = meter.read()
        with lock:
            grid_w = plant.bus.grid_w
            imported_wh = plant.energy.grid_import_j / 3600.0
            exported_wh = plant.energy.grid_export_j / 3600.0
    assert (grid_w > 0) is importing
    assert reading.power_w == pytest.approx(grid_w, abs=KW / 2)
    assert reading.va == pytest.approx(abs(grid_w), abs=KW / 2)
    assert reading.var == 0.0
    assert reading.pf == pytest.approx(1.0)
    assert reading.frequency_hz == pytest.approx(60.0, abs=0.005)
    assert reading.voltage_v == pytest.approx(NOMINAL_LL_V / SQRT3, abs=0.05)
    assert reading.voltage_ll_v == pytest.approx(NOMINAL_LL_V, abs=0.05)
    phase_current_a = abs(grid_w) / (SQRT3 * NOMINAL_LL_V)
    assert reading.current_a == pytest.approx(3 * phase_current_a, abs=5.0)  # the stand-in sums the phases
    assert reading.energy_imported_wh == pytest.approx(imported_wh, abs=KW / 2)
    assert reading.energy_exported_wh == pytest.approx(exported_wh, abs=KW / 2)
    assert (reading.energy_exported_wh > 0) is not importing
    assert reading.events == 0


def test_a_grid_outage_reads_as_power_failure(meter, plant, lock):
    with lock:
        plant.grid.outage(at=plant.t + 0.1)
    run(plant, lock, 1.0)
    reading = meter.read()
    assert reading.events & 1 << MeterEventBit.POWER_FAILURE
    assert reading.voltage_v == reading.voltage_ll_v == reading.frequency_hz == 0.0
    assert reading.power_w == 0.0
    assert reading.pf is None  # the meter does not implement PF while no power flows


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    voltage_pu=st.floats(min_value=0.5, max_value=1.2),
    frequency_hz=st.floats(min_value=57.0, max_value=63.0),
    dispatch_w=st.floats(min_value=-0.5e6, max_value=1.0e6),
)
def test_readings_follow_the_grid_and_the_plant_within_one_step_of_resolution(
    meter, plant, lock, voltage_pu, frequency_hz, dispatch_w
):
    with lock:
        plant.grid.set_voltage(at=plant.t, voltage_pu=voltage_pu)
        plant.grid.set_frequency(at=plant.t, frequency_hz=frequency_hz)
        plant.pcs.dispatch_w = dispatch_w
        plant.step(0.02)
        grid = plant.grid.state_at(plant.t)
        grid_w = plant.bus.grid_w
    reading = meter.read()
    assert reading.voltage_ll_v == pytest.approx(grid.voltage_pu * NOMINAL_LL_V, abs=0.05 + 1e-9)
    assert reading.frequency_hz == pytest.approx(grid.frequency_hz, abs=0.005 + 1e-9)
    assert reading.power_w == pytest.approx(grid_w, abs=KW / 2 + 1e-6)


def test_safe_checks_the_link_and_fails_once_the_meter_is_gone(meter, pcc):
    meter.safe()
    pcc.close()
    with pytest.raises(ConnectionLost) as caught:
        meter.safe()
    assert caught.value.role == ROLE
    assert caught.value.resource == pcc.resource


# ----------------------------------------------------------------------------- other meters, bad devices


def test_a_float_meter_reads_its_values_and_pf_as_a_ratio():
    with served(float_meter(213, FLOAT_VALUES)) as resource, meter_for(resource) as meter:
        assert meter.model_id == 213
        reading = meter.read()
    assert reading.power_w == -1234.5
    assert (reading.va, reading.var, reading.pf) == (1300.25, -406.75, pytest.approx(-0.95))
    assert (reading.frequency_hz, reading.voltage_v, reading.voltage_ll_v) == (59.875, 277.125, 480.0)
    assert (reading.current_a, reading.energy_imported_wh, reading.energy_exported_wh) == (4.5, 1.5e6, 2048.0)
    assert reading.events == 1 << MeterEventBit.OVER_VOLTAGE


def test_meter_index_picks_among_several_meter_models_in_address_order():
    models = (float_meter(211, FLOAT_VALUES), integer_meter(INTEGER_VALUES))
    with served(*models) as resource:
        with meter_for(resource) as first:
            assert first.model_id == 211
            assert first.read().power_w == FLOAT_VALUES["W"]
        with meter_for(resource, meter_index=1) as second:
            assert second.model_id == 203
            reading = second.read()
        assert reading.power_w == INTEGER_VALUES["W"]
        assert reading.pf == pytest.approx(0.995)  # 99.5 % from an integer meter
        assert reading.frequency_hz == pytest.approx(60.01)
        assert reading.energy_imported_wh == INTEGER_VALUES["TotWhImp"]
        with pytest.raises(IdentityMismatch, match="at least 3 SunSpec meter model"):
            meter_for(resource, meter_index=2).open()


def test_a_device_without_a_meter_model_is_refused_with_the_models_it_has(plant, lock):
    with PcsFace(plant, lock) as face, pytest.raises(IdentityMismatch) as caught:
        meter_for(face.resource).open()
    error = caught.value
    assert (error.role, error.resource) == (ROLE, face.resource)
    assert "201, 202, 203, 204, 211, 212, 213, 214" in error.problem
    assert "[1, 701, 704, 802, 64900]" in error.problem


@pytest.mark.parametrize("point", ["W", "Hz", "A", "Evt"])
def test_a_mandatory_point_not_implemented_is_garbage(point):
    values = {name: value for name, value in FLOAT_VALUES.items() if name != point}
    mandatory = pytest.raises(GarbageReply, match=f"{point} is mandatory")
    with served(float_meter(214, values)) as resource, meter_for(resource) as meter, mandatory as caught:
        meter.read()
    assert caught.value.command == "read model 214"


def test_energy_totals_not_implemented_read_zero_as_accumulators_that_never_counted():
    """An integer meter's acc32 reads 0 for "not implemented": indistinguishable from nothing counted yet."""
    values = {name: value for name, value in INTEGER_VALUES.items() if not name.startswith("TotWh")}
    with served(integer_meter(values)) as resource, meter_for(resource) as meter:
        reading = meter.read()
    assert (reading.energy_imported_wh, reading.energy_exported_wh) == (0.0, 0.0)


def test_optional_points_not_implemented_read_none():
    optional = ("VA", "VAR", "PF", "PhV", "PPV")
    values = {name: value for name, value in FLOAT_VALUES.items() if name not in optional}
    with served(float_meter(212, values)) as resource, meter_for(resource) as meter:
        reading = meter.read()
    assert (reading.va, reading.var, reading.pf, reading.voltage_v, reading.voltage_ll_v) == (None,) * 5
    assert reading.power_w == FLOAT_VALUES["W"]


def test_nothing_listening_is_unavailable():
    with served() as resource:
        pass  # closed again: its port is free
    with pytest.raises(InstrumentUnavailable) as caught:
        meter_for(resource).open()
    assert caught.value.role == ROLE


def test_reading_before_open_is_a_programming_error(pcc):
    with pytest.raises(RuntimeError, match="open the meter first"):
        meter_for(pcc.resource).read()


def test_a_negative_meter_index_is_refused():
    with pytest.raises(ValueError, match="meter_index"):
        meter_for("modbus+tcp://127.0.0.1:502/1", meter_index=-1)
