"""The Chroma 17040 battery emulator stand-in, driven over TCP by pyvisa-py against a small plant."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from harness.sim.packs import FaultCode, InjectedFault
from harness.sim.standins.battery import IDENTITY, BatteryEmulator
from tests.sim.standins import ask, assert_refusal_changes_nothing, error_of, open_visa, run, scpi_messages

pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")


@pytest.fixture
def emulator(plant, lock):
    with BatteryEmulator(plant, lock) as stand_in:
        yield stand_in


@pytest.fixture
def battery(visa, emulator):
    with open_visa(visa, emulator.resource) as instrument:
        yield instrument


def select(battery, pack: int) -> None:
    assert error_of(battery, f"CHANnel {pack + 1}") == 0


def test_identity_and_resource(battery, emulator):
    assert battery.query("*IDN?") == IDENTITY == emulator.identity
    assert emulator.resource.startswith("TCPIP::127.0.0.1::")
    assert emulator.resource.endswith("::SOCKET")


def test_channels_select_packs(battery, plant):
    assert ask(battery, "CHAN?") == "1"
    select(battery, 2)
    assert ask(battery, "CHANNEL?") == "3"
    for bad in (0, plant.packs.n + 1):
        assert error_of(battery, f"CHAN {bad}") == -222
    assert ask(battery, "CHAN?") == "3"


def test_output_switches_only_the_selected_packs_contactor(battery, plant, lock):
    select(battery, 2)
    assert error_of(battery, "BATTery:OUTPut OFF") == 0
    with lock:
        expected = np.ones(plant.packs.n, dtype=bool)
        expected[2] = False
        np.testing.assert_array_equal(plant.packs.contactor_closed, expected)
    assert ask(battery, "BATT:OUTP?") == "0"
    select(battery, 3)
    assert ask(battery, "BATT:OUTP?") == "1"
    select(battery, 2)
    assert error_of(battery, "BATT:OUTP 1") == 0
    with lock:
        assert plant.packs.contactor_closed.all()


def test_a_refused_contactor_command_is_an_error_and_changes_nothing(battery, plant, lock):
    select(battery, 1)
    assert error_of(battery, "FAULt:INSert WELD") == 0
    assert error_of(battery, "BATT:OUTP OFF") == -221
    with lock:
        assert plant.packs.contactor_closed[1]
    assert error_of(battery, "FAUL:CLE WELD") == 0
    assert error_of(battery, "BATT:OUTP OFF") == 0
    with lock:
        assert not plant.packs.contactor_closed[1]


def test_isolation_fault_is_latched_and_left_to_the_pack_manager_and_protection_clear_resets_it(
    battery, plant, lock
):
    select(battery, 4)
    assert error_of(battery, "FAUL:INS ISOL") == 0
    run(plant, lock, 0.1)
    with lock:
        assert plant.packs.fault[4] & FaultCode.ISOLATION
        assert plant.packs.contactor_closed[4], "a first insulation fault is reported, not acted on"
        assert not plant.packs.fault[[0, 1, 2, 3, 5, 6, 7]].any()
    assert ask(battery, "MEAS:STAT?") == f"{int(FaultCode.ISOLATION)},1"
    assert error_of(battery, "BATT:OUTP OFF") == 0, "the pack manager isolates it"
    assert error_of(battery, "BATT:OUTP ON") == -221, "no close while the fault is latched"
    assert error_of(battery, "FAUL:CLE ISOL") == 0
    assert error_of(battery, "PROTection:CLEar") == 0
    with lock:
        assert plant.packs.fault[4] == 0
    assert ask(battery, "MEAS:STAT?") == "0,0"
    assert error_of(battery, "BATT:OUTP ON") == 0
    run(plant, lock, 0.1)
    assert ask(battery, "MEAS:STATe?") == "0,1"


def test_thermal_fault_heats_only_its_pack(battery, plant, lock):
    select(battery, 0)
    assert error_of(battery, "FAUL:INS THER,200000") == 0
    with lock:
        start_c = plant.packs.temperature_c.copy()
    run(plant, lock, 5.0, dt=0.1)
    with lock:
        rise_c = plant.packs.temperature_c - start_c
    assert rise_c[0] > 1.0
    assert np.all(np.abs(rise_c[1:]) < 0.1)
    assert error_of(battery, "FAUL:INS THER,2e6") == -222


def test_failed_open_contactor_opens_and_refuses_to_close_until_cleared(battery, plant, lock):
    select(battery, 5)
    assert error_of(battery, "FAUL:INS OPEN") == 0
    with lock:
        assert not plant.packs.contactor_closed[5]
    assert error_of(battery, "BATT:OUTP ON") == -221
    assert error_of(battery, "FAUL:CLEar OPEN") == 0
    assert error_of(battery, "BATT:OUTP ON") == 0
    with lock:
        assert plant.packs.contactor_closed[5]


def test_comms_fault_freezes_the_bms_heartbeat_until_cleared(battery, plant, lock):
    select(battery, 6)
    assert error_of(battery, "FAUL:INS COMMS") == 0
    with lock:
        before = plant.packs.heartbeat.copy()
    run(plant, lock, 0.1)
    with lock:
        moved = plant.packs.heartbeat != before
    assert not moved[6]
    assert moved[[0, 1, 2, 3, 4, 5, 7]].all()
    assert error_of(battery, "FAUL:CLE COMM") == 0
    run(plant, lock, 0.1)
    with lock:
        assert plant.packs.heartbeat[6] > before[6]


def test_drift_fault_offsets_the_reported_soc_in_percent(battery, plant, lock):
    select(battery, 3)
    assert error_of(battery, "FAUL:INS DRIFt,5") == 0
    with lock:
        offset = plant.packs.reported_soc - plant.packs.soc
    np.testing.assert_allclose(offset, [0, 0, 0, 0.05, 0, 0, 0, 0], atol=1e-12)
    assert float(ask(battery, "MEAS:SOC?")) == pytest.approx(float(plant.packs.soc[3]) * 100.0)
    assert error_of(battery, "FAUL:INS ISOL,3") == -108
    assert error_of(battery, "FAUL:INS DRIF,150") == -222
    assert error_of(battery, "FAUL:CLE DRIF") == 0
    with lock:
        np.testing.assert_allclose(plant.packs.reported_soc, plant.packs.soc, atol=1e-12)


def test_fault_query_lists_what_this_instrument_inserted(battery):
    select(battery, 2)
    assert ask(battery, "FAULt?") == "NONE"
    for kind in ("DRIF,1", "WELD", "COMM"):
        assert error_of(battery, f"FAUL:INS {kind}") == 0
    assert ask(battery, "FAUL?") == "DRIF,WELD,COMM"
    assert error_of(battery, "FAUL:INS OPEN") == 0  # replaces the weld, as in the plant
    assert ask(battery, "FAUL?") == "DRIF,COMM,OPEN"
    select(battery, 3)
    assert ask(battery, "FAUL?") == "NONE"


def test_fault_mask_gives_the_inserted_kinds_as_bits_per_channel_or_for_a_channel_list(battery, plant):
    select(battery, 2)
    assert ask(battery, "FAULt:MASK?") == "0"
    assert error_of(battery, "FAUL:INS DRIF,1;:FAUL:INS WELD;:FAUL:INS COMM") == 0
    assert ask(battery, "FAUL:MASK?") == str(32 + 4 + 16)
    assert error_of(battery, "FAUL:INS OPEN;:FAUL:CLE DRIF") == 0  # the open contactor replaces the weld
    assert ask(battery, "FAUL:MASK?") == str(8 + 16)
    select(battery, 0)
    assert error_of(battery, "FAUL:INS ISOL;:FAUL:INS THER,1000") == 0
    assert ask(battery, "FAUL:MASK?") == "3"
    n = plant.packs.n
    assert ask(battery, f"FAUL:MASK? (@1:{n})") == ",".join(["3", "0", "24"] + ["0"] * (n - 3))
    assert ask(battery, "FAUL:MASK? (@3,1,3)") == "24,3,24", "in the list's order"
    assert ask(battery, "CHAN?") == "1", "a channel list leaves the selection alone"
    assert error_of(battery, f"FAUL:MASK? (@1:{n + 1})") == -222
    assert error_of(battery, "FAUL:MASK 3") != 0, "a query only"
    assert error_of(battery, "*RST") == 0
    assert ask(battery, f"FAUL:MASK? (@1:{n})") == ",".join(["0"] * n)


def test_fault_mask_shows_only_what_this_instrument_inserted(battery, plant, lock):
    """A BMS link cut elsewhere (the relay box, harness.sim.standins.wiring) is not the emulator's to know."""
    with lock:
        plant.packs.inject(InjectedFault.BMS_COMMS_LOSS, 4)
    assert ask(battery, f"FAUL:MASK? (@1:{plant.packs.n})") == ",".join(["0"] * plant.packs.n)


def test_measurements_are_the_true_plant_values(battery, plant, lock):
    plant.pcs.dispatch_w = 60e3
    run(plant, lock, 1.0, dt=0.1)
    for pack in (0, 5, 7):
        select(battery, pack)
        voltage, current, power, soc = (
            float(value) for value in ask(battery, "MEAS:VOLT?;CURR?;POW?;SOC?").split(";")
        )
        with lock:
            packs = plant.packs
            assert current > 0.0
            assert voltage == packs.terminal_v[pack]
            assert current == packs.current_a[pack]
            assert power == packs.power_w[pack]
            assert soc == packs.soc[pack] * 100.0


STORED = [
    ("BATTery:CAPacity", "150.5", "0", "10001"),
    ("BATTery:INITial", "1", "-1", "2"),
    ("BATTery:INITial:CAPacity", "55.0", "-0.1", "100.1"),
    ("BATTery:ESR", "0.05", "-1", "11"),
    ("BATTery:VH", "400.0", "-1", "1001"),
    ("BATTery:VL", "280.0", "-1", "1001"),
    ("BATTery:VOLP", "270.0", "-1", "1001"),
    ("BATTery:VOH", "410.0", "-1", "1001"),
    ("BATTery:BVL", "290.0", "-1", "1001"),
    ("BATTery:BVH", "405.0", "-1", "1001"),
    ("BATTery:BOH", "110.0", "-101", "201"),
    ("BATTery:BOL", "-20.0", "-101", "201"),
    ("BATTery:OCP", "300.0", "-1", "2001"),
    ("BATTery:EFFCHG", "95.5", "-1", "101"),
    ("BATTery:EFFDSG", "96.5", "-1", "101"),
]


@pytest.mark.parametrize(("header", "value", "below", "above"), STORED)
def test_stored_settings_round_trip_per_channel_and_refuse_out_of_range(battery, header, value, below, above):
    select(battery, 1)
    default = ask(battery, f"{header}?")
    assert error_of(battery, f"{header} {value}") == 0
    assert float(ask(battery, f"{header}?")) == float(value)
    for bad in (below, above):
        assert error_of(battery, f"{header} {bad}") == -222
    assert float(ask(battery, f"{header}?")) == float(value)
    select(battery, 2)
    assert float(ask(battery, f"{header}?")) != float(value)
    select(battery, 1)
    assert error_of(battery, "*RST") == 0
    select(battery, 1)
    assert ask(battery, f"{header}?") == default


def test_power_on_settings_come_from_the_plant(battery, plant):
    select(battery, 6)
    assert float(ask(battery, "BATT:CAP?")) == plant.packs.capacity_ah[6]
    assert float(ask(battery, "BATT:INIT:CAP?")) == pytest.approx(plant.config.initial_soc * 100.0)
    fleet = plant.packs.fleet
    esr = (fleet.r0_new_ohm[6] + fleet.r1_new_ohm[6]) * fleet.resistance_ratio[6]
    assert float(ask(battery, "BATT:ESR?")) == pytest.approx(esr)


def test_curves_are_validated_and_kept(battery):
    select(battery, 0)
    # The SunSpec SVP driver's formatting, spaces before the commas included.
    assert error_of(battery, "BATTery:CURVe 0, 3 , 300.00, 350.00, 400.00") == 0
    assert error_of(battery, "BATT:CURV 1,3,0.0,50.0,100.0") == 0
    assert ask(battery, "BATT:CURV? 0") == "3,300.0,350.0,400.0"
    assert ask(battery, "BATT:CURV? 1") == "3,0.0,50.0,100.0"
    assert ask(battery, "BATT:CURV? 2") == "0"
    assert error_of(battery, "BATT:CURV 0,4,300,350,400") == -109
    assert error_of(battery, "BATT:CURV 0,2,300,350,400") == -108
    assert error_of(battery, "BATT:CURV 1,3,0,50,150") == -222
    assert error_of(battery, "BATT:CURV 1,3,0,50,50") == -224
    assert error_of(battery, "BATT:CURV 0,3,300,290,400") == -224
    assert error_of(battery, "BATT:CURV 2,2,-0.1,0.2") == -222
    assert error_of(battery, "BATT:CURV 4,1,1") == -222
    assert ask(battery, "BATT:CURV? 0") == "3,300.0,350.0,400.0"
    assert error_of(battery, "BATT:CURV 3,2,0.2,0.1") == 0  # DCR points need no order


def test_capacity_soc_esr_and_ocv_curve_reach_the_pack(battery, plant, lock):
    with lock:
        power_on_capacity = float(plant.packs.capacity_ah[2])
    select(battery, 2)
    assert error_of(battery, "BATT:CAP 40;:BATT:INIT:CAP 30;:BATT:ESR 0.5") == 0
    with lock:
        packs = plant.packs
        assert packs.capacity_ah[2] == pytest.approx(40.0)
        assert packs.soc[2] == pytest.approx(0.30)
        assert packs.fleet.resistance_ratio[2] * (
            packs.fleet.r0_new_ohm[2] + packs.fleet.r1_new_ohm[2]
        ) == pytest.approx(0.5)
        others = np.delete(packs.capacity_ah, 2)
    assert error_of(battery, "BATT:CURV 0,3,300,330,400;:BATT:CURV 1,3,0,50,100") == 0
    with lock:
        assert plant.packs.ocv_v()[2] == pytest.approx(300.0 + 30.0 / 50.0 * 30.0)
        np.testing.assert_array_equal(np.delete(plant.packs.capacity_ah, 2), others)
    assert error_of(battery, "BATT:CURV 1,3,10,50,100") == -224, "an OCV curve must span 0..100 % SOC"
    assert error_of(battery, "*RST") == 0
    with lock:
        assert plant.packs.capacity_ah[2] == pytest.approx(power_on_capacity), "*RST restores capacity"
        assert plant.packs.soc[2] == pytest.approx(0.30), "*RST leaves the charge where it is"


def test_reset_turns_every_output_off_and_clears_inserted_faults(battery, plant, lock):
    select(battery, 3)
    assert error_of(battery, "FAUL:INS DRIF,5;:FAUL:INS WELD") == 0
    select(battery, 5)
    assert error_of(battery, "CHAN 6;:BATT:CAP 12") == 0
    assert error_of(battery, "*RST") == 0
    with lock:
        assert not plant.packs.contactor_closed.any()  # the weld was cleared first, so it opened too
        np.testing.assert_allclose(plant.packs.reported_soc, plant.packs.soc, atol=1e-12)
    assert ask(battery, "CHAN?") == "1"
    select(battery, 3)
    assert ask(battery, "FAUL?") == "NONE"
    select(battery, 5)
    assert float(ask(battery, "BATT:CAP?")) == plant.packs.capacity_ah[5]


def test_stand_in_lifecycle(plant, lock):
    emulator = BatteryEmulator(plant, lock)
    with pytest.raises(RuntimeError):
        _ = emulator.resource
    emulator.close()  # before start: fine
    with pytest.raises(RuntimeError):
        emulator.start()
    with BatteryEmulator(plant, lock) as running:
        resource = running.resource
    running.close()  # again: fine
    assert resource.startswith("TCPIP::")


def _pack_state(packs) -> tuple[bytes, ...]:
    arrays = (
        packs.contactor_closed, packs.fault, packs.soc, packs.capacity_ah, packs.fleet.resistance_ratio,
        packs.ocv_v(), *(packs.injected(kind) for kind in InjectedFault),
    )  # fmt: skip
    return tuple(np.asarray(array).tobytes() for array in arrays)


FUZZ_HEADERS = [
    "CHAN", "CHANnel", "OUTP:MOD", "BATT:OUTP", "BATTery:OUTPut", "BATT:CAP", "BATT:INIT", "BATT:INIT:CAP",
    "BATT:ESR", "BATT:VH", "BATT:VOLP", "BATT:BOL", "BATT:OCP", "BATT:EFFCHG", "BATT:CURV", "PROT:CLE",
    "MEAS:VOLT", "MEAS:SOC", "MEAS:STAT", "FAUL:INS", "FAULt:INSert", "FAUL:CLE", "FAUL", "FAUL:MASK",
]  # fmt: skip
FUZZ_WORDS = ["ON", "OFF", "MAX", "MIN", "DEF", "ISOL", "THER", "WELD", "OPEN", "COMM", "DRIF", "ISOLATION"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(message=scpi_messages(FUZZ_HEADERS, FUZZ_WORDS))
def test_random_commands_never_break_it_and_errors_change_nothing(battery, plant, lock, message):
    assert_refusal_changes_nothing(battery, message, lock, lambda: _pack_state(plant.packs), IDENTITY)
