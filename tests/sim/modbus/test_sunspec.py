"""SunSpec images over the wire: the 'SunS' marker, a client's walk down the model chain, model 1 content."""

from __future__ import annotations

import pytest
from pymodbus.client import ModbusTcpClient

from harness.sim.modbus import Access, ModbusStandIn, Point, PointType, Range
from harness.sim.modbus.sunspec import Model, common_model, sunspec_map, sunspec_points
from tests.sim.modbus import client_of

T = PointType
UNIT = 3
STRING = ModbusTcpClient.DATATYPE.STRING
MAX_READ = 125


def meter_model(name: str) -> Model:
    """A small vendor-range meter model: 9 registers (1+1+1+1+2+1+2)."""
    return Model(
        64001,
        name,
        (
            Point("A", T.INT16, units="A", scale_factor="A_SF"),
            Point("A_SF", T.SUNSSF, value=-2),
            Point("W", T.INT16, units="W", scale_factor="W_SF"),
            Point("W_SF", T.SUNSSF, value=1),
            Point("TotWhExp", T.ACC32, units="Wh", scale_factor="TotWh_SF"),
            Point("TotWh_SF", T.SUNSSF, value=0),
            Point("Evt", T.BITFIELD32, value=0),
        ),
    )


COMMON = common_model(manufacturer="gridhil", model="PCC-SIM", serial_number="SIM-0001", version="0.1.0")
EMPTY = Model(64099, "empty", ())
MODELS = [COMMON, meter_model("meter_a"), meter_model("meter_b"), EMPTY]
EXPECTED_CHAIN = [(1, 66), (64001, 9), (64001, 9), (64099, 0)]  # model 1 is 66 long by the SunSpec spec


@pytest.fixture
def stand_in():
    regmap = sunspec_map(MODELS, title="test image")
    regmap.bind_getter("meter_a.A", lambda: 12.34)
    regmap.bind_getter("meter_b.A", lambda: -0.5)
    regmap.bind_getter("meter_a.W", lambda: 123_450.0)
    with ModbusStandIn({UNIT: regmap}) as server:
        yield server


def read(client: ModbusTcpClient, address: int, count: int) -> list[int]:
    response = client.read_holding_registers(address, count=count, device_id=UNIT)
    assert not response.isError(), (address, count, response)
    return response.registers


def walk_chain(client: ModbusTcpClient) -> list[tuple[int, int, int]]:
    """What a SunSpec client does: check the marker, then follow ID/L headers to the end model."""
    assert client.convert_from_registers(read(client, 40000, 2), STRING) == "SunS"
    chain = []
    address = 40002
    while True:
        model_id, length = read(client, address, 2)
        if model_id == 0xFFFF:
            assert length == 0
            return chain
        chain.append((address, model_id, length))
        for offset in range(0, length, MAX_READ):  # every body register is mapped
            read(client, address + 2 + offset, min(MAX_READ, length - offset))
        address += 2 + length


def test_marker_and_chain_walk_reach_every_model_with_the_right_length(stand_in):
    with client_of(stand_in) as client:
        chain = walk_chain(client)
        assert [(model_id, length) for _, model_id, length in chain] == EXPECTED_CHAIN
        assert [address for address, _, _ in chain] == [40002, 40002 + 68, 40002 + 68 + 11, 40002 + 68 + 22]
        end = 40002 + 68 + 22 + 2
        assert read(client, end, 2) == [0xFFFF, 0]
        beyond = client.read_holding_registers(end + 2, count=1, device_id=UNIT)
        assert beyond.isError() and beyond.exception_code == 2


def test_model_1_carries_identity_strings_and_a_writable_device_address(stand_in):
    with client_of(stand_in) as client:
        body = read(client, 40004, 66)
        fields = {"Mn": (0, 16), "Md": (16, 32), "Opt": (32, 40), "Vr": (40, 48), "SN": (48, 64)}
        text = {name: client.convert_from_registers(body[a:b], STRING) for name, (a, b) in fields.items()}
        assert text == {"Mn": "gridhil", "Md": "PCC-SIM", "Opt": "", "Vr": "0.1.0", "SN": "SIM-0001"}
        assert body[64:66] == [1, 0x8000]  # DA, Pad
        assert not client.write_register(40004 + 64, 17, device_id=UNIT).isError()
        refused = client.write_register(40004 + 64, 248, device_id=UNIT)
        assert refused.isError() and refused.exception_code == 3
        assert read(client, 40004 + 64, 1) == [17]


def test_points_are_scaled_by_their_own_models_scale_factors(stand_in):
    with client_of(stand_in) as client:
        a_body, b_body = read(client, 40072, 9), read(client, 40083, 9)
    assert a_body[0:4] == [1234, 0xFFFE, 12345, 1]  # 12.34 A at -2, 123450 W at +1
    assert b_body[0:2] == [0x10000 - 50, 0xFFFE]  # -0.5 A at -2
    assert b_body[2] == 0x8000  # meter_b.W has no source: "not implemented"
    assert a_body[4:6] == [0, 0]  # acc32 not implemented
    assert a_body[7:9] == [0, 0]  # Evt: no events


def test_point_names_are_prefixed_by_model_and_documented():
    regmap = sunspec_map(MODELS)
    assert regmap.point("SunS").pdu_address == 40000
    assert regmap.point("common.ID").pdu_address == 40002
    assert regmap.point("common.SN").pdu_address == 40004 + 48
    assert regmap.point("meter_b.W").scale_factor == "meter_b.W_SF"
    assert regmap.point("end.ID").pdu_address == 40094
    assert regmap.point("common.DA").access is Access.RW
    table = regmap.markdown_table()
    assert "| `common.SN` | 40052 | 40053 | 440053 | 16 | string |" in table


def test_an_image_starts_with_model_1_and_names_models_uniquely():
    with pytest.raises(ValueError, match="model 1"):
        sunspec_points([meter_model("m")])
    with pytest.raises(ValueError, match="unique"):
        sunspec_points([COMMON, meter_model("m"), meter_model("m")])
    with pytest.raises(ValueError, match="unique"):
        sunspec_points([COMMON, meter_model("end")])


def test_model_points_are_placed_by_the_image_not_by_hand():
    with pytest.raises(ValueError, match="places"):
        Model(64002, "bad", (Point("X", T.UINT16, 40010),))
    with pytest.raises(ValueError, match="model id"):
        Model(0xFFFF, "bad", ())


def test_images_can_sit_at_other_base_addresses():
    points = sunspec_points([COMMON], base_address=0)
    assert [(p.name, p.pdu_address) for p in points[:2]] == [("SunS", 0), ("common.ID", 2)]
    assert points[-1].name == "end.L" and points[-1].pdu_address == 2 + 2 + 66 + 1


def test_writable_model_points_keep_their_validator_after_placement():
    model = Model(64003, "ctl", (Point("WSet", T.INT16, access=Access.RW, validator=Range(0, 100)),))
    placed = {p.name: p for p in sunspec_points([COMMON, model])}
    assert placed["ctl.WSet"].validator == Range(0, 100)
    assert placed["ctl.WSet"].pdu_address == 40002 + 68 + 2
