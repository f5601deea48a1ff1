"""The PCS/BMS face through the real pymodbus client: the SunSpec chain, readings against the plant, the
effect of every writable register, refused writes that change nothing, the per-pack blocks and arrays (over
two units for a big fleet), a pack whose BMS link is lost, and the PCC breaker commanded over the wire.

Offsets of models 701, 704 and 802 are the standard's (sunspec/models); the vendor model's, the per-pack
block's and the per-pack arrays' are the documented layout (docs/register-map.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.sim.modbus import Point
from harness.sim.packs import FaultCode, InjectedFault
from harness.sim.pcs import PcsControl, PcsMode
from harness.sim.plant import Plant, PlantConfig
from harness.sim.standins.pcs_face import PcsFace
from harness.sim.standins.sunspec_models import microgrid_model
from tests.sim.factories import uniform_fleet
from tests.sim.standins import SunSpecClient, connect, identity_of, run, scaled, signed, uint32

FACE_PLANT = PlantConfig(packs=12, pcs_rated_w=1.2e6, pv_rated_w=0.0, load_rated_w=0.4e6)
RATED_W = 1.2e6
NOMINAL_LL_V = 480.0
PACKS_PER_UNIT = 2352
"""Whole 17-register blocks below the SunSpec image at 40000."""
BIG_FLEET = 2600

DER_MEASURE, DER_CONTROL, BATTERY, MICROGRID, PACK = 701, 704, 802, 64900, 0
"""Model ids; PACK stands for pack 0's block at address 0."""


def offsets_of(points: tuple[Point, ...]) -> dict[str, int]:
    """Body offset of each point of a model laid out back to back."""
    offsets, position = {}, 0
    for point in points:
        offsets[point.name] = position
        position += point.size
    return offsets


OFFSETS: dict[int, dict[str, int]] = {
    1: {"DA": 64},
    DER_MEASURE: {
        "St": 1, "InvSt": 2, "ConnSt": 3, "Alrm": 4, "DERMode": 6, "W": 8, "VA": 9, "Var": 10, "PF": 11,
        "A": 12, "LLV": 13, "LNV": 14, "Hz": 15, "WL1": 39, "A_SF": 111, "V_SF": 112, "Hz_SF": 113,
        "W_SF": 114, "PF_SF": 115, "MnAlrmInfo": 121,
    },
    DER_CONTROL: {
        "WMaxLimPctEna": 12, "WMaxLimPct": 13, "WSetEna": 20, "WSetMod": 21, "WSet": 22, "WSetRvrt": 24,
        "WSetPct": 26, "AntiIslEna": 50, "WMaxLimPct_SF": 52, "WSet_SF": 53, "WSetPct_SF": 54,
    },
    BATTERY: {
        "WChaRteMax": 2, "WDisChaRteMax": 3, "SoCRsvMax": 7, "SoCRsvMin": 8, "SoC": 9, "SoH": 11,
        "ChaSt": 14, "Hb": 16, "CtrlHb": 17, "AlmRst": 18, "State": 20, "Evt1": 24, "V": 32, "CellVMax": 35,
        "CellVMaxStr": 36, "A": 42, "W": 45, "SetOp": 48, "WChaDisChaMax_SF": 52, "SoC_SF": 54,
        "SoH_SF": 56, "V_SF": 57, "CellV_SF": 58, "A_SF": 59, "W_SF": 61,
    },
    MICROGRID: offsets_of(microgrid_model(nominal_v=NOMINAL_LL_V, nominal_hz=60.0, pcs_units=4).points),
    PACK: {
        "SoC": 0, "SoH": 1, "V": 2, "A": 3, "Tmp": 4, "CellVMin": 5, "CellVMax": 6, "ContSt": 7, "Flt": 8,
        "Hb": 9, "WDisChaMax": 10, "WChaMax": 11, "W": 12, "WCmd": 13, "ContCmd": 14, "FltRst": 15,
        "WHRtg": 16,
    },
}  # fmt: skip
PACK_SCALING = {  # name: (signed, exponent)
    "SoC": (False, -2), "SoH": (False, -2), "V": (False, -1), "A": (True, -1), "Tmp": (True, -1),
    "CellVMin": (False, -3), "CellVMax": (False, -3), "WDisChaMax": (False, 2), "WChaMax": (False, 2),
    "W": (True, 2), "WCmd": (True, 2), "WHRtg": (False, 1),
}  # fmt: skip
PACK_REGISTERS = 17
POWER_ARRAY, CONTACTOR_ARRAY, STATUS_ARRAY = 50_000, 52_352, 54_704
"""The per-pack arrays: a unit's k-th pack at base + k."""
STATUS_CONTACTOR = 1 << 8


PCS_MODE_CODES = {PcsMode.OFF: 1, PcsMode.GRID_FOLLOWING: 2, PcsMode.GRID_FORMING: 3, PcsMode.TRIPPED: 4}


def int32(value: int) -> list[int]:
    raw = value & 0xFFFFFFFF
    return [raw >> 16, raw & 0xFFFF]


class Face:
    """The face's unit as a controller sees it: points found by model and name."""

    def __init__(self, wire: SunSpecClient) -> None:
        self.wire = wire
        self.base = {model: address for model, (address, _) in wire.chain().items()}
        self.base[PACK] = 0

    def address(self, model: int, name: str) -> int:
        return self.base[model] + OFFSETS[model][name]

    def get(self, model: int, name: str, count: int = 1) -> list[int]:
        return self.wire.read(self.address(model, name), count)

    def one(self, model: int, name: str) -> int:
        return self.get(model, name)[0]

    def put(self, model: int, name: str, registers: list[int]) -> int | None:
        return self.wire.write(self.address(model, name), registers)

    def ok(self, model: int, name: str, registers: list[int]) -> None:
        assert self.put(model, name, registers) is None, (model, name, registers)

    def value(self, model: int, name: str, sf_name: str, *, is_signed: bool = True) -> float:
        return scaled(self.one(model, name), self.one(model, sf_name), is_signed=is_signed)


def pack_values(wire: SunSpecClient, address: int) -> dict[str, float]:
    """One pack block decoded with the documented layout."""
    raw = wire.read(address, PACK_REGISTERS)
    values: dict[str, float] = {}
    for name, offset in OFFSETS[PACK].items():
        is_signed, exponent = PACK_SCALING.get(name, (False, 0))
        values[name] = (signed(raw[offset]) if is_signed else raw[offset]) * 10.0**exponent
    return values


# ----------------------------------------------------------------------------- fixtures


def build_plant(packs: int = FACE_PLANT.packs) -> Plant:
    return Plant.build(FACE_PLANT, fleet=uniform_fleet(packs))


@pytest.fixture
def plant():
    return build_plant()


@pytest.fixture
def face_standin(plant, lock):
    with PcsFace(plant, lock) as started:
        yield started


@pytest.fixture
def wire(face_standin):
    with connect(face_standin.resource) as client:
        yield client


@pytest.fixture
def face(wire):
    return Face(wire)


def snapshot(plant: Plant) -> tuple[object, ...]:
    """Everything a face write may change."""
    pcs, pcc, packs = plant.pcs, plant.pcc, plant.packs
    return (
        pcs.mode, pcs.control, pcs.dispatch_w, pcs.frequency_setpoint_hz, pcs.voltage_setpoint_pu,
        pcs.pcc_ramp_w_per_s, pcs.islanding_enabled, tuple(unit.available for unit in pcs.units),
        pcc.closed, pcc.open_requested, pcc.close_requested, pcc.auto_island_enabled,
        tuple(packs.contactor_closed), tuple(packs.fault), plant.pack_share is None,
    )  # fmt: skip


# ----------------------------------------------------------------------------- the SunSpec image


def test_chain_walk_finds_common_der_battery_and_vendor_models(wire, face_standin):
    chain = wire.chain()
    assert [(model, length) for model, (_, length) in chain.items()] == [
        (1, 66), (701, 153), (704, 65), (802, 62), (64900, 35),
    ]  # fmt: skip
    assert identity_of(wire) == face_standin.identity
    assert face_standin.identity.startswith("gridhil,PCS-BMS-SIM,")


def test_der_measurement_follows_the_pcs(face, plant, lock):
    face.ok(DER_CONTROL, "WSet", int32(600_000))
    run(plant, lock, 2.0, dt=0.5)
    assert plant.pcs.dispatch_w == 600_000
    assert face.value(DER_MEASURE, "W", "W_SF") == pytest.approx(plant.bus.pcs_ac_w, abs=500.0)
    assert plant.bus.pcs_ac_w > 0  # the PCS injects: + W
    phase_a = plant.bus.pcs_ac_w / (np.sqrt(3.0) * NOMINAL_LL_V)
    assert face.value(DER_MEASURE, "A", "A_SF") == pytest.approx(3 * phase_a, abs=5.0)
    assert face.value(DER_MEASURE, "WL1", "W_SF") == pytest.approx(plant.bus.pcs_ac_w / 3, abs=500.0)
    assert face.value(DER_MEASURE, "LLV", "V_SF") == pytest.approx(NOMINAL_LL_V, abs=0.05)
    assert face.value(DER_MEASURE, "LNV", "V_SF") == pytest.approx(NOMINAL_LL_V / np.sqrt(3.0), abs=0.05)
    hz = uint32(face.get(DER_MEASURE, "Hz", 2)) * 10.0 ** signed(face.one(DER_MEASURE, "Hz_SF"))
    assert hz == pytest.approx(60.0, abs=0.0005)
    assert face.value(DER_MEASURE, "PF", "PF_SF", is_signed=False) == pytest.approx(1.0)
    states = [face.one(DER_MEASURE, name) for name in ("St", "InvSt", "ConnSt")]
    assert states == [2, 4, 2]  # on, running, connected
    assert uint32(face.get(DER_MEASURE, "DERMode", 2)) == 1 << 0  # grid-following
    assert uint32(face.get(DER_MEASURE, "Alrm", 2)) == 0


def test_tripped_pcs_reads_as_a_fault_with_its_reason_until_reset(face, plant):
    face.ok(MICROGRID, "UnitAvail", [0])
    assert plant.pcs.mode is PcsMode.TRIPPED
    assert face.one(DER_MEASURE, "InvSt") == 7
    assert uint32(face.get(DER_MEASURE, "Alrm", 2)) & 1 << 16
    assert face.wire.text(face.get(DER_MEASURE, "MnAlrmInfo", 32)) == plant.pcs.trip_reason != ""
    assert face.one(MICROGRID, "PcsMode") == 4
    face.ok(MICROGRID, "UnitAvail", [0b1111])
    face.ok(MICROGRID, "PcsRst", [1])
    assert plant.pcs.mode is PcsMode.OFF
    assert face.one(MICROGRID, "PcsRst") == 0
    assert face.one(DER_MEASURE, "InvSt") == 1
    assert face.get(DER_MEASURE, "MnAlrmInfo", 32) == [0] * 32


# ----------------------------------------------------------------------------- writable registers


@pytest.mark.parametrize(
    ("writes", "dispatch_w"),
    [
        ([("WSetMod", [1]), ("WSet", int32(300_000))], 300_000.0),
        ([("WSet", int32(-450_000))], -450_000.0),
        ([("WSetMod", [0]), ("WSetPct", [2500])], 0.25 * RATED_W),
        ([("WSet", int32(500_000)), ("WMaxLimPctEna", [1]), ("WMaxLimPct", [100])], 0.10 * RATED_W),
        ([("WSet", int32(500_000)), ("WSetEna", [0])], 0.0),
    ],
    ids=["watts", "charge", "percent", "capped", "disabled"],
)
def test_active_power_setpoint_becomes_the_pcs_dispatch(face, plant, writes, dispatch_w):
    for name, registers in writes:
        face.ok(DER_CONTROL, name, registers)
        assert face.get(DER_CONTROL, name, len(registers)) == registers
    assert plant.pcs.dispatch_w == pytest.approx(dispatch_w)


def test_anti_islanding_and_islanding_enable_are_one_setting_seen_twice(face, plant):
    face.ok(DER_CONTROL, "AntiIslEna", [1])
    assert plant.pcs.islanding_enabled is False
    assert face.one(MICROGRID, "IslEna") == 0
    face.ok(MICROGRID, "IslEna", [1])
    assert plant.pcs.islanding_enabled is True
    assert face.one(DER_CONTROL, "AntiIslEna") == 0


@pytest.mark.parametrize(
    ("name", "registers", "effect"),
    [
        ("Ctl", [1], lambda plant: plant.pcs.control is PcsControl.PCC_SMOOTHING),
        ("PccRmp", [0, 50_000], lambda plant: plant.pcs.pcc_ramp_w_per_s == 50_000),
        ("AutoIslEna", [0], lambda plant: plant.pcc.auto_island_enabled is False),
        ("HzSet", [5950], lambda plant: plant.pcs.frequency_setpoint_hz == pytest.approx(59.5)),
        ("VSet", [4900], lambda plant: plant.pcs.voltage_setpoint_pu == pytest.approx(490.0 / 480.0)),
        ("UnitAvail", [0b0101], lambda plant: [u.available for u in plant.pcs.units] == [1, 0, 1, 0]),
    ],
)
def test_vendor_settings_reach_the_plant_and_read_back(face, plant, name, registers, effect):
    face.ok(MICROGRID, name, registers)
    assert effect(plant)
    assert face.get(MICROGRID, name, len(registers)) == registers


def test_swapping_pcs_units_never_passes_through_none_available(face, plant):
    face.ok(MICROGRID, "UnitAvail", [0b0001])
    face.ok(MICROGRID, "UnitAvail", [0b1000])
    assert plant.pcs.mode is PcsMode.GRID_FOLLOWING
    assert face.one(MICROGRID, "UnitAvail") == 0b1000


@pytest.mark.parametrize(
    ("request_code", "mode"),
    [(1, PcsMode.OFF), (3, PcsMode.GRID_FORMING), (2, PcsMode.GRID_FOLLOWING)],
    ids=["stop", "form", "follow"],
)
def test_mode_requests_drive_the_pcs_and_read_back_zero(face, plant, request_code, mode):
    plant.pcs.mode = PcsMode.OFF if mode is not PcsMode.OFF else PcsMode.GRID_FOLLOWING
    face.ok(MICROGRID, "ModeReq", [request_code])
    assert plant.pcs.mode is mode
    assert face.one(MICROGRID, "ModeReq") == 0
    assert face.one(MICROGRID, "PcsMode") == PCS_MODE_CODES[mode]
    assert "face: PCS" in plant.journal[-1].text


def test_breaker_commands_act_at_the_next_plant_step(face, plant, lock):
    face.ok(MICROGRID, "PccCmd", [1])
    assert (plant.pcc.closed, face.one(MICROGRID, "PccPend"), face.one(MICROGRID, "PccCmd")) == (True, 1, 0)
    run(plant, lock, 0.01)
    assert not plant.pcc.closed
    states = [face.one(MICROGRID, name) for name in ("PccSt", "PccPend", "PccOpenRsn", "PcsMode")]
    assert states == [0, 0, 1, 3]  # open, nothing pending, planned island, grid-forming
    assert face.one(DER_MEASURE, "ConnSt") == 1
    assert uint32(face.get(DER_MEASURE, "Alrm", 2)) & 1 << 4  # grid disconnect

    face.ok(MICROGRID, "PccCmd", [2])  # sync-checked: the island has not drifted yet
    assert face.one(MICROGRID, "PccPend") == 2
    run(plant, lock, 0.01)
    assert plant.pcc.closed and plant.pcc.closes[-1].sync_checked
    assert [face.one(MICROGRID, name) for name in ("PccSt", "PccCloses", "PcsMode")] == [1, 1, 2]

    face.ok(MICROGRID, "PccCmd", [1])
    run(plant, lock, 0.5)
    face.ok(MICROGRID, "PccCmd", [3])
    assert face.one(MICROGRID, "PccPend") == 3
    face.ok(MICROGRID, "PccCmd", [4])
    assert face.one(MICROGRID, "PccPend") == 0
    run(plant, lock, 0.01)
    assert not plant.pcc.closed
    face.ok(MICROGRID, "PccCmd", [3])
    run(plant, lock, 0.01)
    assert plant.pcc.closed and not plant.pcc.closes[-1].sync_checked


@pytest.mark.parametrize(("auto_island", "code"), [(1, 2), (0, 13)], ids=["loss-of-grid", "ieee1547-uv2"])
def test_open_reason_codes_name_what_opened_the_breaker(face, plant, lock, auto_island, code):
    face.ok(MICROGRID, "AutoIslEna", [auto_island])
    with lock:
        plant.grid.sag(at=plant.t, residual_pu=0.4, duration_s=3.0)
    run(plant, lock, 2.5, dt=0.05)
    assert not plant.pcc.closed
    assert face.one(MICROGRID, "PccOpenRsn") == code


def test_sync_check_data_match_the_plant_across_the_open_breaker(face, plant, lock):
    face.ok(MICROGRID, "PccCmd", [1])
    run(plant, lock, 0.5)
    sync = plant.sync_check()
    grid = plant.grid.state_at(plant.t)

    def read(name: str, exponent: int) -> float:
        return signed(face.one(MICROGRID, name)) * 10.0**exponent

    assert read("SyncDV", -1) == pytest.approx(sync.dv_pu * NOMINAL_LL_V, abs=0.05)
    assert read("SyncDHz", -2) == pytest.approx(sync.df_hz, abs=0.005)
    assert read("SyncDAng", -1) == pytest.approx(sync.dtheta_deg, abs=0.05)
    assert abs(sync.dtheta_deg) > 1.0  # the island drifted: the numbers say something
    assert read("GridV", -1) == pytest.approx(grid.voltage_pu * NOMINAL_LL_V, abs=0.05)
    assert read("GridHz", -2) == pytest.approx(grid.frequency_hz, abs=0.005)
    assert read("BusV", -1) == pytest.approx(plant.bus.voltage_pu * NOMINAL_LL_V, abs=0.05)
    assert read("BusHz", -2) == pytest.approx(plant.bus.frequency_hz, abs=0.005)


def test_black_start_energises_a_dead_island(face, plant, lock):
    face.ok(MICROGRID, "IslEna", [0])
    face.ok(MICROGRID, "PccCmd", [1])
    run(plant, lock, 0.01)
    assert plant.pcs.mode is PcsMode.OFF and face.one(MICROGRID, "BusV") == 0
    face.ok(MICROGRID, "BlkStrt", [1])
    assert plant.pcs.mode is PcsMode.GRID_FORMING
    assert face.one(MICROGRID, "BlkStrt") == 0
    run(plant, lock, 0.5)
    assert 0 < face.one(MICROGRID, "BusV") < 4800


def test_pack_share_enable_hands_the_pack_commands_to_the_plant(face, plant):
    for pack, power_w in ((0, 10_000), (1, -2_500), (7, 40_000)):
        assert face.wire.write(pack * PACK_REGISTERS + 13, [(power_w // 100) & 0xFFFF]) is None
    assert plant.pack_share is None
    face.ok(MICROGRID, "PackShrEna", [1])
    expected = np.zeros(plant.packs.n)
    expected[[0, 1, 7]] = [10_000, -2_500, 40_000]
    np.testing.assert_array_equal(plant.pack_share, expected)
    assert face.wire.write(5 * PACK_REGISTERS + 13, [300]) is None
    assert plant.pack_share[5] == 30_000
    face.ok(MICROGRID, "PackShrEna", [0])
    assert plant.pack_share is None
    assert face.one(MICROGRID, "PackShrEna") == 0


def test_bank_model_sums_what_the_packs_report(face, plant, lock):
    face.ok(DER_CONTROL, "WSet", int32(600_000))
    run(plant, lock, 5.0, dt=0.5)
    packs = plant.packs
    discharge_w, charge_w = packs.power_limits()
    soc = np.dot(packs.reported_soc, packs.energy_capacity_j) / packs.energy_capacity_j.sum()
    assert face.value(BATTERY, "SoC", "SoC_SF", is_signed=False) == pytest.approx(100 * soc, abs=0.005)
    assert face.value(BATTERY, "SoH", "SoH_SF", is_signed=False) == pytest.approx(80.0, abs=0.005)
    sf = "WChaDisChaMax_SF"
    for name, limits_w in (("WDisChaRteMax", discharge_w), ("WChaRteMax", charge_w)):
        assert face.value(BATTERY, name, sf, is_signed=False) == pytest.approx(limits_w.sum(), abs=5e3)
    power_w = float(np.dot(packs.reported_v, packs.reported_current_a))
    assert power_w > 600_000
    assert face.value(BATTERY, "W", "W_SF") == pytest.approx(power_w, abs=500.0)
    assert face.value(BATTERY, "A", "A_SF") == pytest.approx(packs.reported_current_a.sum(), abs=5.0)
    volts = face.value(BATTERY, "V", "V_SF", is_signed=False)
    assert volts == pytest.approx(packs.reported_v.mean(), abs=0.05)
    cell_volts = face.value(BATTERY, "CellVMax", "CellV_SF", is_signed=False)
    assert cell_volts == pytest.approx(packs.cell_v_max.max(), abs=0.0005)
    assert face.one(BATTERY, "CellVMaxStr") == int(packs.cell_v_max.argmax())
    states = [face.one(BATTERY, name) for name in ("ChaSt", "State", "Hb")]
    assert states == [3, 3, 5]  # discharging, connected, 5 s of plant time


def test_bank_settings_store_and_bank_operations_reach_every_pack(face, plant, lock):
    for name, value in (("SoCRsvMin", 1500), ("SoCRsvMax", 9000), ("CtrlHb", 42)):
        face.ok(BATTERY, name, [value])
        assert face.one(BATTERY, name) == value
    face.ok(BATTERY, "SetOp", [2])
    assert not plant.packs.contactor_closed.any()
    states = [face.one(BATTERY, "State"), face.one(BATTERY, "ChaSt"), face.one(MICROGRID, "PacksOnl")]
    assert states == [1, 1, 0]  # disconnected, off, no pack online
    assert face.one(PACK, "ContSt") == face.one(PACK, "ContCmd") == 0
    face.ok(BATTERY, "SetOp", [1])
    assert plant.packs.contactor_closed.all()
    assert face.one(BATTERY, "SetOp") == 1

    with lock:
        plant.packs.inject(InjectedFault.ISOLATION, 2)
        plant.step(0.01)
        plant.packs.clear(InjectedFault.ISOLATION, 2)
    assert plant.packs.fault[2] == FaultCode.ISOLATION
    assert uint32(face.get(BATTERY, "Evt1", 2)) == 1 << 22
    assert face.one(MICROGRID, "PacksFlt") == 1
    face.ok(BATTERY, "AlmRst", [1])
    assert not plant.packs.fault.any()
    assert face.one(BATTERY, "AlmRst") == 0
    assert uint32(face.get(BATTERY, "Evt1", 2)) == 0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(power_w=st.integers(min_value=-int(RATED_W), max_value=int(RATED_W)))
def test_any_setpoint_in_the_rating_is_the_dispatch_and_reads_back(face, plant, power_w):
    face.ok(DER_CONTROL, "WSet", int32(power_w))
    assert plant.pcs.dispatch_w == power_w
    assert face.get(DER_CONTROL, "WSet", 2) == int32(power_w)


# ----------------------------------------------------------------------------- refused writes


INVALID = [
    (MICROGRID, "ModeReq", [7], 3),
    (MICROGRID, "PccCmd", [9], 3),
    (MICROGRID, "Ctl", [2], 3),
    (MICROGRID, "PccRmp", [0x4000, 0], 3),
    (MICROGRID, "HzSet", [7000], 3),
    (MICROGRID, "VSet", [3000], 3),
    (MICROGRID, "UnitAvail", [16], 3),
    (MICROGRID, "BlkStrt", [2], 3),
    (MICROGRID, "PcsRst", [2], 3),
    (MICROGRID, "PackShrEna", [2], 3),
    (MICROGRID, "PcsMode", [1], 2),
    (DER_CONTROL, "WSetMod", [2], 3),
    (DER_CONTROL, "WSet", int32(2_000_000), 3),
    (DER_CONTROL, "WSet", [0x8000, 0], 3),
    (DER_CONTROL, "WSetPct", [10001], 3),
    (DER_CONTROL, "WMaxLimPct", [1001], 3),
    (DER_CONTROL, "WSetRvrt", [0, 1], 2),
    (DER_MEASURE, "W", [1], 2),
    (BATTERY, "SetOp", [3], 3),
    (BATTERY, "SoCRsvMin", [10001], 3),
    (BATTERY, "AlmRst", [2], 3),
    (1, "DA", [0], 3),
    (PACK, "WCmd", [0x8000], 3),
    (PACK, "ContCmd", [2], 3),
    (PACK, "FltRst", [2], 3),
    (PACK, "SoC", [0], 2),
    (PACK, "WCmd", [100, 5], 3),  # WCmd fine, ContCmd not: all-or-nothing
    (PACK, "FltRst", [1, 0], 2),  # runs into the pack's read-only WHRtg
    (PACK, "WHRtg", [5000], 2),
]


@pytest.mark.parametrize(("model", "name", "registers", "code"), INVALID)
def test_refused_writes_answer_an_exception_and_change_nothing(face, plant, model, name, registers, code):
    before = snapshot(plant)
    shown = face.get(model, name, len(registers))
    assert face.put(model, name, registers) == code
    assert snapshot(plant) == before
    assert face.get(model, name, len(registers)) == shown


@pytest.mark.parametrize(
    ("model", "name", "tripped"),
    [
        (MICROGRID, "ModeReq", False),
        (MICROGRID, "PccCmd", False),
        (MICROGRID, "BlkStrt", False),
        (MICROGRID, "PcsRst", True),
        (BATTERY, "AlmRst", False),
        (PACK, "FltRst", False),
    ],
)
def test_writing_zero_to_a_command_does_nothing(face, plant, lock, model, name, tripped):
    with lock:  # a state each command would change: dead island, close pending, pack 0 faulted
        plant.pcs.islanding_enabled = False
        plant.pcc.request_open()
        plant.packs.inject(InjectedFault.ISOLATION, 0)
        plant.step(0.01)
        plant.packs.clear(InjectedFault.ISOLATION, 0)
        plant.pcc.request_close()
        if tripped:
            plant.pcs.trip("test trip")
    before = snapshot(plant)
    assert plant.packs.fault[0] and plant.pcc.close_requested and plant.pcs.mode is not PcsMode.GRID_FORMING
    face.ok(model, name, [0])
    assert snapshot(plant) == before
    assert face.one(model, name) == 0


# ----------------------------------------------------------------------------- per-pack blocks


def assert_block_reports(values: dict[str, float], plant: Plant, pack: int) -> None:
    packs = plant.packs
    discharge_w, charge_w = packs.power_limits()
    expected = {
        "SoC": (100 * packs.reported_soc[pack], 0.005),
        "SoH": (100 * packs.fleet.soh[pack], 0.005),
        "V": (packs.reported_v[pack], 0.05),
        "A": (packs.reported_current_a[pack], 0.05),
        "Tmp": (packs.reported_temperature_c[pack], 0.05),
        "CellVMin": (packs.cell_v_min[pack], 0.0005),
        "CellVMax": (packs.cell_v_max[pack], 0.0005),
        "ContSt": (float(packs.contactor_closed[pack]), 0.0),
        "Flt": (float(packs.fault[pack]), 0.0),
        "Hb": (float(packs.heartbeat[pack] % 65535), 0.0),
        "WDisChaMax": (discharge_w[pack], 50.0),
        "WChaMax": (charge_w[pack], 50.0),
        "W": (packs.reported_v[pack] * packs.reported_current_a[pack], 50.0),
        "WHRtg": (packs.fleet.nameplate_wh[pack], 5.0),
    }
    for name, (value, tolerance) in expected.items():
        assert values[name] == pytest.approx(value, abs=tolerance + 1e-9), name


def test_first_and_last_pack_blocks_report_what_their_bms_reports(face, plant, lock):
    face.ok(DER_CONTROL, "WSet", int32(600_000))
    run(plant, lock, 3.0, dt=0.5)
    last = plant.packs.n - 1
    for pack in (0, last):
        assert_block_reports(pack_values(face.wire, pack * PACK_REGISTERS), plant, pack)
    assert plant.packs.reported_current_a[last] > 0  # the packs discharge: the numbers say something
    assert face.wire.read_error(plant.packs.n * PACK_REGISTERS) == 2


def test_each_pack_block_reports_its_nameplate_energy_to_10_wh(lock):
    """A mixed fleet's packs differ several-fold in energy; 5 to 150 kWh reads at 10 Wh resolution."""
    nominal_v = uniform_fleet(1).nominal_voltage_v[0]
    nameplate_wh = np.array([5_000.0, 23_814.0, 77_777.0, 98_496.0, 150_000.0])
    plant = Plant.build(FACE_PLANT, fleet=uniform_fleet(5, capacity_new_ah=nameplate_wh / nominal_v))
    with PcsFace(plant, lock) as standin, connect(standin.resource) as wire:
        raw = [wire.read(pack * PACK_REGISTERS + OFFSETS[PACK]["WHRtg"], 1)[0] for pack in range(5)]
        with lock:
            plant.packs.inject(InjectedFault.BMS_COMMS_LOSS, 2)
            plant.step(0.5)
        silent = pack_values(wire, 2 * PACK_REGISTERS)["WHRtg"]
    assert raw == [500, 2381, 7778, 9850, 15000]
    assert silent == pytest.approx(77_780.0)  # a silent BMS keeps reporting it


def test_pack_commands_act_on_that_pack_only(face, plant, lock):
    pack = 4
    address = pack * PACK_REGISTERS
    assert face.wire.write(address + 14, [0]) is None
    assert [bool(closed) for closed in plant.packs.contactor_closed] == [index != pack for index in range(12)]
    assert face.wire.write(address + 14, [1]) is None
    assert plant.packs.contactor_closed.all()

    with lock:
        plant.packs.inject(InjectedFault.ISOLATION, pack)
        plant.step(0.01)
        plant.packs.clear(InjectedFault.ISOLATION, pack)
        plant.packs.command_contactors(np.arange(plant.packs.n) != pack)  # the pack manager isolates it
    assert face.wire.write(address + 14, [1]) is None  # accepted, but a faulted pack's BMS refuses to close
    assert not plant.packs.contactor_closed[pack]
    assert pack_values(face.wire, address)["Flt"] == FaultCode.ISOLATION
    assert face.wire.write(address + 15, [1]) is None
    assert plant.packs.fault[pack] == 0 and not plant.packs.contactor_closed[pack]
    assert face.wire.write(address + 13, [300, 1, 0]) is None  # command, contactor, no reset: one write
    assert plant.packs.contactor_closed.all()
    assert pack_values(face.wire, address)["WCmd"] == 30_000
    assert pack_values(face.wire, address)["FltRst"] == 0


def test_comms_lost_pack_freezes_while_the_true_pack_moves(face, plant, lock):
    face.ok(DER_CONTROL, "WSet", int32(900_000))
    run(plant, lock, 2.0, dt=0.5)
    lost, healthy = 3, 4
    with lock:
        plant.packs.inject(InjectedFault.BMS_COMMS_LOSS, lost)
        true_soc = plant.packs.soc[lost]
    frozen = pack_values(face.wire, lost * PACK_REGISTERS)
    moving = pack_values(face.wire, healthy * PACK_REGISTERS)
    run(plant, lock, 20.0, dt=0.5)
    later = pack_values(face.wire, lost * PACK_REGISTERS)
    for name in ("SoC", "V", "A", "Tmp", "CellVMin", "CellVMax", "Hb", "W"):
        assert later[name] == frozen[name], name
    assert plant.packs.soc[lost] < true_soc - 0.001  # the pack itself kept discharging
    after = pack_values(face.wire, healthy * PACK_REGISTERS)
    assert after["Hb"] > moving["Hb"] and after["SoC"] < moving["SoC"]


def test_fleet_over_2352_packs_continues_on_unit_2(lock):
    plant = build_plant(BIG_FLEET)
    with PcsFace(plant, lock) as standin, connect(standin.resource) as unit_1:
        with lock:
            plant.pcs.dispatch_w = 1e6
            plant.step(0.5)
            plant.step(0.5)
        assert unit_1.read(40000, 2) == [0x5375, 0x6E53]
        face = Face(unit_1)
        assert [face.one(MICROGRID, "NPack"), face.one(MICROGRID, "NPackUnit")] == [BIG_FLEET, 2]
        unit_2 = SunSpecClient(unit_1.client, 2)
        assert list(unit_2.chain()) == [1]
        assert unit_2.text(unit_2.body(1)[48:64]).endswith("-U2")
        for wire, pack in (
            (unit_1, 0),
            (unit_1, PACKS_PER_UNIT - 1),
            (unit_2, PACKS_PER_UNIT),
            (unit_2, BIG_FLEET - 1),
        ):
            address = (pack % PACKS_PER_UNIT) * PACK_REGISTERS
            assert_block_reports(pack_values(wire, address), plant, pack)
        assert len(unit_1.read((PACKS_PER_UNIT - 1) * PACK_REGISTERS, PACK_REGISTERS)) == PACK_REGISTERS
        assert unit_1.read_error(PACKS_PER_UNIT * PACK_REGISTERS, 16) == 2  # the gap below 40000
        assert unit_2.read_error((BIG_FLEET - PACKS_PER_UNIT) * PACK_REGISTERS) == 2
        assert SunSpecClient(unit_1.client, 3).read_error(0) == 0x0B
        assert unit_2.write((2550 - PACKS_PER_UNIT) * PACK_REGISTERS + 14, [0]) is None
        assert not plant.packs.contactor_closed[2550] and plant.packs.contactor_closed[50]

        assert unit_1.read(CONTACTOR_ARRAY - 2, 4) == [0, 0, 1, 1]  # a full unit's arrays meet
        assert unit_1.write(CONTACTOR_ARRAY - 1, [5, 0]) is None  # pack 2351's power, pack 0's contactor
        assert unit_2.write(POWER_ARRAY + 2551 - PACKS_PER_UNIT, [7]) is None
        assert unit_2.read(STATUS_ARRAY + 2550 - PACKS_PER_UNIT, 2) == [0, STATUS_CONTACTOR]
        assert unit_2.read_error(POWER_ARRAY + BIG_FLEET - PACKS_PER_UNIT) == 2
        with lock:
            assert not plant.packs.contactor_closed[0] and plant.packs.contactor_closed[1:2550].all()
        assert pack_values(unit_1, (PACKS_PER_UNIT - 1) * PACK_REGISTERS)["WCmd"] == 500
        assert pack_values(unit_2, (2551 - PACKS_PER_UNIT) * PACK_REGISTERS)["WCmd"] == 700


# ----------------------------------------------------------------------------- per-pack arrays


def power_registers(power_w: np.ndarray) -> list[int]:
    """``WCmd`` registers: int16, 100 W a step."""
    return [int(raw) & 0xFFFF for raw in np.rint(power_w / 100.0)]


def status_of(plant: Plant) -> list[int]:
    """The documented ``St`` of every pack: fault bits, and bit 8 while the contactor is closed."""
    packs = plant.packs
    return [
        int(fault) | STATUS_CONTACTOR * bool(closed)
        for fault, closed in zip(packs.fault, packs.contactor_closed, strict=True)
    ]


def test_pack_arrays_command_and_read_the_same_commands_as_the_blocks(face, plant, lock):
    wire, n = face.wire, plant.packs.n
    face.ok(MICROGRID, "PackShrEna", [1])
    powers_w = np.linspace(-60_000.0, 50_000.0, n).round(-2)
    assert wire.write(POWER_ARRAY, power_registers(powers_w)) is None  # every pack in one request
    np.testing.assert_array_equal(plant.pack_share, powers_w)
    assert [pack_values(wire, pack * PACK_REGISTERS)["WCmd"] for pack in range(n)] == pytest.approx(powers_w)
    assert wire.write(5 * PACK_REGISTERS + OFFSETS[PACK]["WCmd"], [123]) is None  # and a block write ...
    assert wire.read(POWER_ARRAY + 4, 3) == power_registers(np.array([powers_w[4], 12_300.0, powers_w[6]]))
    assert plant.pack_share[5] == 12_300.0  # ... shows in the array

    opened = [2, 3, 9]
    assert wire.write(CONTACTOR_ARRAY, [int(pack not in opened) for pack in range(n)]) is None
    assert np.flatnonzero(~plant.packs.contactor_closed).tolist() == opened
    commands = [pack_values(wire, pack * PACK_REGISTERS)["ContCmd"] for pack in range(n)]
    assert wire.read(CONTACTOR_ARRAY, n) == commands == [int(pack not in opened) for pack in range(n)]

    with lock:
        plant.packs.inject(InjectedFault.ISOLATION, 4)
        plant.step(0.01)
        plant.packs.clear(InjectedFault.ISOLATION, 4)
        plant.packs.command_contactors(~np.isin(np.arange(n), [*opened, 4]))
    assert wire.write(CONTACTOR_ARRAY + 4, [1]) is None  # accepted; the faulted pack's BMS refuses to close
    assert not plant.packs.contactor_closed[4]
    status = wire.read(STATUS_ARRAY, n)
    assert status == status_of(plant)
    assert (status[0], status[2], status[4]) == (STATUS_CONTACTOR, 0, FaultCode.ISOLATION)
    blocks = [pack_values(wire, pack * PACK_REGISTERS) for pack in range(n)]
    assert status == [int(block["Flt"]) | STATUS_CONTACTOR * int(block["ContSt"]) for block in blocks]


ARRAY_INVALID = [
    pytest.param(POWER_ARRAY, [100, 0x8000, 200], 3, id="power not implemented among good values"),
    pytest.param(CONTACTOR_ARRAY + 3, [0, 1, 2], 3, id="unknown contactor code among good ones"),
    pytest.param(STATUS_ARRAY, [0], 2, id="status is read-only"),
    pytest.param(POWER_ARRAY + 11, [1, 1], 2, id="past the last pack"),
    pytest.param(CONTACTOR_ARRAY - 1, [1, 1], 2, id="from the gap before the contactor array"),
]


@pytest.mark.parametrize(("address", "registers", "code"), ARRAY_INVALID)
def test_refused_array_writes_answer_an_exception_and_change_nothing(face, plant, address, registers, code):
    wire, n = face.wire, plant.packs.n

    def commands() -> list[int]:
        return wire.read(POWER_ARRAY, n) + wire.read(CONTACTOR_ARRAY, n)

    assert wire.write(CONTACTOR_ARRAY, [0] * n) is None and wire.write(POWER_ARRAY, [7] * n) is None
    before, shown = snapshot(plant), commands()
    assert wire.write(address, registers) == code
    assert snapshot(plant) == before
    assert commands() == shown


def test_array_reads_end_at_the_units_last_pack(face, plant):
    n = plant.packs.n
    for base in (POWER_ARRAY, CONTACTOR_ARRAY, STATUS_ARRAY):
        assert len(face.wire.read(base, n)) == n
        assert face.wire.read_error(base, n + 1) == 2
        assert face.wire.read_error(base + n) == 2
    assert face.wire.read_error(45_000) == 2  # between the SunSpec chain and the arrays


@dataclass
class Twin:
    plant: Plant
    wire: SunSpecClient

    def state(self) -> tuple[object, ...]:
        """What pack commands change, and the commands as the arrays and the blocks read them back."""
        n = self.plant.packs.n
        blocks = [self.wire.read(pack * PACK_REGISTERS + OFFSETS[PACK]["WCmd"], 2) for pack in range(n)]
        return (
            tuple(self.plant.packs.contactor_closed),
            tuple(self.plant.pack_share),
            tuple(self.wire.read(POWER_ARRAY, n) + self.wire.read(CONTACTOR_ARRAY, n)),
            tuple(register for block in blocks for register in block),
            tuple(self.wire.read(STATUS_ARRAY, n)),
        )


@pytest.fixture
def twins(lock) -> Iterator[tuple[Twin, Twin]]:
    """Two equal plants behind two faces: pack sharing on, pack 6 faulted (its BMS refuses to close)."""
    with ExitStack() as stack:
        made = []
        for _ in range(2):
            plant = build_plant()
            plant.pack_share = np.zeros(plant.packs.n)
            plant.packs.inject(InjectedFault.ISOLATION, 6)
            plant.step(0.01)
            plant.packs.clear(InjectedFault.ISOLATION, 6)
            plant.packs.command_contactors(np.arange(plant.packs.n) != 6)
            standin = stack.enter_context(PcsFace(plant, lock))
            made.append(Twin(plant, stack.enter_context(connect(standin.resource))))
        yield made[0], made[1]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    first=st.integers(0, FACE_PLANT.packs - 1),
    powers=st.lists(st.integers(-32767, 32767), min_size=1, max_size=FACE_PLANT.packs),
    contactors=st.lists(st.sampled_from([0, 1]), min_size=1, max_size=FACE_PLANT.packs),
)
def test_an_array_write_acts_as_the_same_writes_to_the_blocks(twins, first, powers, contactors):
    """Each example writes through the arrays of one face and pack by pack through the blocks of the other;
    the twins start equal, so they must stay equal."""
    by_array, by_block = twins
    powers = powers[: FACE_PLANT.packs - first]
    contactors = contactors[: FACE_PLANT.packs - first]
    assert by_array.wire.write(POWER_ARRAY + first, [raw & 0xFFFF for raw in powers]) is None
    assert by_array.wire.write(CONTACTOR_ARRAY + first, contactors) is None
    for offset, raw in enumerate(powers):
        address = (first + offset) * PACK_REGISTERS + OFFSETS[PACK]["WCmd"]
        assert by_block.wire.write(address, [raw & 0xFFFF]) is None
    for offset, code in enumerate(contactors):
        address = (first + offset) * PACK_REGISTERS + OFFSETS[PACK]["ContCmd"]
        assert by_block.wire.write(address, [code]) is None
    assert by_array.state() == by_block.state()
    assert by_array.plant.pack_share[first : first + len(powers)].tolist() == [100.0 * raw for raw in powers]
    assert not by_array.plant.packs.contactor_closed[6]
