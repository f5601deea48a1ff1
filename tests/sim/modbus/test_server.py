"""The Modbus stand-in through the real pymodbus client: reads, validated writes, exceptions, concurrency,
unknown units, RTU framing over TCP, and a clean shutdown."""

from __future__ import annotations

import logging
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from pymodbus.client import ModbusTcpClient
from pymodbus.exceptions import ModbusIOException

from harness.sim.modbus import (
    Access,
    Framing,
    ModbusStandIn,
    OneOf,
    Point,
    PointType,
    Range,
    RegisterMap,
    UnknownUnit,
)
from tests.sim.modbus import client_of

T = PointType
DT = ModbusTcpClient.DATATYPE
UNIT = 1
STEP_COMPUTE_S = 0.0002
# The test map: a block at 100..112, a gap, one setting at 200.
W, W_SF, TOTWH, WSET, MODE, NAME, PAIR_A, PAIR_B, LIMIT = 100, 101, 102, 104, 106, 107, 111, 112, 200


@dataclass
class Plant:
    """Stands for the simulated plant the stand-in reads and commands."""

    power_w: float = 1234.5
    energy_wh: int = 10_000_000
    setpoint_w: float = 0.0
    mode: int = 0
    pair_a: int = 0
    pair_b: int = 0


def plant_map(plant: Plant, lock: threading.Lock) -> RegisterMap:
    regmap = RegisterMap(
        [
            Point("W", T.INT16, W, units="W", scale_factor="W_SF"),
            Point("W_SF", T.SUNSSF, W_SF, value=0),
            Point("TotWh", T.ACC32, TOTWH, units="Wh"),
            Point("WSet", T.INT32, WSET, units="W", access=Access.RW, validator=Range(-5e6, 5e6)),
            Point("Mode", T.ENUM16, MODE, access=Access.RW, validator=OneOf(frozenset({0, 1, 2}))),
            Point("Name", T.STRING, NAME, size=4, value="pcs-1"),
            Point("PairA", T.UINT16, PAIR_A),
            Point("PairB", T.UINT16, PAIR_B),
            Point("Lim", T.UINT16, LIMIT, units="%", access=Access.RW, validator=Range(0, 100), value=100),
        ],
        lock=lock,
    )
    regmap.bind_getter("W", lambda: plant.power_w)
    regmap.bind_getter("TotWh", lambda: plant.energy_wh)
    regmap.bind_getter("WSet", lambda: plant.setpoint_w)
    regmap.bind_getter("Mode", lambda: plant.mode)
    regmap.bind_getter("PairA", lambda: plant.pair_a)
    regmap.bind_getter("PairB", lambda: plant.pair_b)
    regmap.bind_apply("WSet", lambda value: setattr(plant, "setpoint_w", value))
    regmap.bind_apply("Mode", lambda value: setattr(plant, "mode", value))
    return regmap


@pytest.fixture
def plant():
    return Plant()


@pytest.fixture
def lock():
    return threading.Lock()


@pytest.fixture
def stand_in(plant, lock):
    with ModbusStandIn({UNIT: plant_map(plant, lock)}) as server:
        yield server


def registers(client: ModbusTcpClient, address: int, count: int, unit: int = UNIT) -> list[int]:
    response = client.read_holding_registers(address, count=count, device_id=unit)
    assert not response.isError(), response
    return response.registers


def exception_code(response) -> int | None:
    return response.exception_code if response.isError() else None


def int32(client: ModbusTcpClient, address: int) -> int:
    return client.convert_from_registers(registers(client, address, 2), DT.INT32)


def test_resource_names_the_scheme_host_port_and_unit(stand_in):
    assert stand_in.resource == f"modbus+tcp://127.0.0.1:{stand_in.port}/{UNIT}"
    assert stand_in.units == (UNIT,)


def test_reads_reflect_the_plant_at_read_time(stand_in, plant):
    with client_of(stand_in) as client:
        first = registers(client, W, 4)
        plant.power_w, plant.energy_wh = -2000.4, 2**32 + 7
        second = registers(client, W, 4)
        name = client.convert_from_registers(registers(client, NAME, 4), DT.STRING)
    assert client.convert_from_registers(first[:1], DT.INT16) == 1234  # 1234.5 rounds half to even
    assert client.convert_from_registers(first[2:4], DT.UINT32) == 10_000_000
    assert client.convert_from_registers(second[:1], DT.INT16) == -2000
    assert client.convert_from_registers(second[2:4], DT.UINT32) == 7  # the accumulator rolled over
    assert name == "pcs-1"


def test_a_read_may_cover_part_of_a_32_bit_point(stand_in, plant):
    plant.energy_wh = 0x0012_3456
    with client_of(stand_in) as client:
        assert registers(client, TOTWH + 1, 1) == [0x3456]
        assert registers(client, TOTWH, 1) == [0x0012]


def test_writes_are_validated_and_applied(stand_in, plant):
    with client_of(stand_in) as client:
        assert not client.write_registers(WSET, client.convert_to_registers(-750_000, DT.INT32)).isError()
        assert not client.write_register(MODE, 2).isError()
        assert (plant.setpoint_w, plant.mode) == (-750_000, 2)
        assert int32(client, WSET) == -750_000
        assert not client.mask_write_register(address=MODE, and_mask=0x0000, or_mask=0x0001).isError()
        assert plant.mode == 1
        both = client.readwrite_registers(read_address=MODE, read_count=1, write_address=LIMIT, values=[40])
        assert both.registers == [1]
        assert registers(client, LIMIT, 1) == [40]  # a setting with no source reads back what was written


@pytest.mark.parametrize(
    ("address", "values"),
    [
        (WSET, [0x7FFF, 0xFFFF]),  # out of range
        (MODE, [3]),  # not one of the modes
        (MODE, [0xFFFF]),  # the "not implemented" pattern
        (LIMIT, [101]),
    ],
)
def test_invalid_values_answer_03_and_change_nothing(stand_in, plant, address, values):
    with client_of(stand_in) as client:
        before = registers(client, WSET, 3), registers(client, LIMIT, 1)
        assert exception_code(client.write_registers(address, values)) == 3
        assert (registers(client, WSET, 3), registers(client, LIMIT, 1)) == before
    assert (plant.setpoint_w, plant.mode) == (0.0, 0)


@pytest.mark.parametrize(
    ("address", "values"),
    [
        (W, [1]),  # read-only
        (WSET + 1, [1]),  # the low half of a 32-bit point
        (WSET, [0, 1, 1, 0]),  # WSet, Mode, and the read-only Name
        (150, [1]),  # unmapped
        (LIMIT + 1, [1]),
    ],
)
def test_writes_to_read_only_split_or_unmapped_registers_answer_02_and_change_nothing(
    stand_in, plant, address, values
):
    with client_of(stand_in) as client:
        before = registers(client, W, 13)
        assert exception_code(client.write_registers(address, values)) == 2
        assert exception_code(client.write_register(address, values[0])) == 2
        assert registers(client, W, 13) == before
    assert (plant.setpoint_w, plant.mode) == (0.0, 0)


def test_a_multi_register_write_is_all_or_nothing(stand_in, plant):
    with client_of(stand_in) as client:
        valid_setpoint = client.convert_to_registers(300_000, DT.INT32)
        assert exception_code(client.write_registers(WSET, [*valid_setpoint, 9])) == 3  # Mode 9 refused
        assert (plant.setpoint_w, plant.mode) == (0.0, 0)
        assert not client.write_registers(WSET, [*valid_setpoint, 1]).isError()
    assert (plant.setpoint_w, plant.mode) == (300_000, 1)


@pytest.mark.parametrize(("address", "count"), [(99, 1), (150, 1), (PAIR_B, 2), (W, 14), (LIMIT - 1, 2)])
def test_reads_touching_unmapped_registers_answer_02(stand_in, address, count):
    with client_of(stand_in) as client:
        assert exception_code(client.read_holding_registers(address, count=count, device_id=UNIT)) == 2


def test_only_holding_register_functions_are_served(stand_in):
    with client_of(stand_in) as client:
        assert exception_code(client.read_input_registers(W, count=1, device_id=UNIT)) == 1
        assert exception_code(client.read_coils(W, count=1, device_id=UNIT)) == 1
        assert exception_code(client.write_coil(W, True, device_id=UNIT)) == 1


def test_a_read_sees_one_consistent_plant_state(stand_in, plant, lock):
    """The plant thread updates PairA, computes a while, then PairB, all under the owner's lock; a read of
    both must never see them apart."""
    stop = threading.Event()

    def step_plant() -> None:
        step = 0
        while not stop.is_set():
            step = (step + 1) % 60_000
            with lock:
                plant.pair_a = step
                stop.wait(STEP_COMPUTE_S)  # numerics that release the GIL, as numpy does
                plant.pair_b = step
            stop.wait(STEP_COMPUTE_S)  # the next step is due later

    stepper = threading.Thread(target=step_plant, daemon=True)
    stepper.start()
    try:
        with client_of(stand_in) as client:
            seen = [registers(client, PAIR_A, 2) for _ in range(300)]
    finally:
        stop.set()
        stepper.join(5)
    assert all(a == b for a, b in seen)
    assert len({a for a, _ in seen}) > 1  # the plant really moved during the reads


def test_two_clients_at_once_each_get_their_own_answers(stand_in, plant):
    def session(limit: int) -> list[int]:
        with client_of(stand_in) as client:
            answers = []
            for _ in range(150):
                assert not client.write_register(LIMIT, limit).isError()
                answers.append(registers(client, NAME, 4)[0])
            return answers

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(session, [10, 20]))
    assert all(first == ord("p") << 8 | ord("c") for answers in results for first in answers)
    with client_of(stand_in) as client:
        assert registers(client, LIMIT, 1)[0] in (10, 20)


def test_unknown_units_get_a_gateway_exception_and_no_traceback(stand_in, caplog):
    caplog.set_level(logging.DEBUG)
    with client_of(stand_in) as client:
        assert exception_code(client.read_holding_registers(W, count=1, device_id=7)) == 0x0B
        assert exception_code(client.write_register(LIMIT, 1, device_id=0)) == 0x0B
        assert registers(client, LIMIT, 1) == [100]  # unit 0 wrote nothing; unit 1 still answers
    assert not [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]


def test_unknown_units_can_be_silent_like_an_rs485_slave(plant, lock):
    with ModbusStandIn({UNIT: plant_map(plant, lock)}, unknown_unit=UnknownUnit.SILENT) as server:
        with client_of(server, timeout_s=0.3) as client, pytest.raises(ModbusIOException):
            client.read_holding_registers(W, count=1, device_id=9)
        with client_of(server) as client:
            assert registers(client, LIMIT, 1) == [100]


def test_rtu_framing_over_tcp(plant, lock):
    with ModbusStandIn({5: plant_map(plant, lock)}, framer=Framing.RTU) as server:
        assert server.resource == f"modbus+rtu-tcp://127.0.0.1:{server.port}/5"
        with client_of(server, rtu=True) as client:
            assert registers(client, W, 1, unit=5) == [1234]
            assert not client.write_register(MODE, 2, device_id=5).isError()
            refused = client.write_register(MODE, 7, device_id=5)
            assert exception_code(refused) == 3
    assert plant.mode == 2


def test_a_failing_source_answers_04_and_the_server_carries_on(plant, lock, caplog):
    regmap = plant_map(plant, lock)
    regmap.bind_getter("Name", lambda: 1 / 0)
    with ModbusStandIn({UNIT: regmap}) as server, client_of(server) as client:
        assert exception_code(client.read_holding_registers(NAME, count=4, device_id=UNIT)) == 4
        assert registers(client, W, 1) == [1234]
    assert any("ZeroDivisionError" in r.exc_text for r in caplog.records if r.exc_text)


def test_close_hangs_up_frees_the_port_and_is_idempotent(plant, lock):
    server = ModbusStandIn({UNIT: plant_map(plant, lock)}).start()
    port = server.port
    connected = socket.create_connection(("127.0.0.1", port))
    with client_of(server) as client:
        registers(client, W, 1)
    server.close()
    server.close()
    connected.settimeout(5)
    assert connected.recv(16) == b""  # the server hung up the open connection
    connected.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5)
    with socket.create_server(("127.0.0.1", port)):
        pass
    with pytest.raises(RuntimeError, match="once"):
        server.start()


def test_a_busy_port_fails_start_loudly(plant, lock):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        stand_in = ModbusStandIn({UNIT: plant_map(plant, lock)}, port=taken.getsockname()[1])
        with pytest.raises(RuntimeError, match="failed to start"):
            stand_in.start()
        stand_in.close()


def test_unit_ids_are_checked():
    with pytest.raises(ValueError, match="unit id 0"):
        ModbusStandIn({0: RegisterMap([Point("a", T.UINT16, 0)])})
    with pytest.raises(ValueError, match="at least one"):
        ModbusStandIn({})


def test_a_stand_in_serves_several_units_from_one_port(plant, lock):
    other = RegisterMap([Point("X", T.UINT16, W, value=77)])
    with ModbusStandIn({UNIT: plant_map(plant, lock), 2: other}) as server, client_of(server) as client:
        assert registers(client, W, 1, unit=1) == [1234]
        assert registers(client, W, 1, unit=2) == [77]
        assert server.resource_for(2).endswith(f":{server.port}/2")


def test_close_before_start_is_safe(plant, lock):
    stand_in = ModbusStandIn({UNIT: plant_map(plant, lock)})
    stand_in.close()
    with pytest.raises(RuntimeError, match="not started"):
        _ = stand_in.port
    with pytest.raises(RuntimeError, match="once"):
        stand_in.start()
