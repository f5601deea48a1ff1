"""The Chroma 17040 driver: exact messages (protocol pairs), limits, and the stand-in over TCP."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.base import DriverConfig
from drivers.chroma_17040 import (
    BatteryEmulator,
    BatteryReading,
    BatteryState,
    ExtensionMissing,
    FaultKind,
    InsertedFault,
)
from drivers.errors import (
    ConnectionLost,
    GarbageReply,
    InstrumentError,
    InstrumentRejected,
    InstrumentTimeout,
    LimitViolation,
)
from drivers.registry import driver_class
from harness.sim.packs import InjectedFault
from harness.sim.standins.battery import BatteryEmulator as BatteryStandIn
from tests.drivers.pairs import Fail, PairMismatch, expect, garbage_instrument, rejected
from tests.sim.standins import run

RESOURCE = "TCPIP::10.0.0.20::60000::SOCKET"


def battery(channels: int = 2, **limits: float) -> BatteryEmulator:
    return BatteryEmulator(DriverConfig("battery", RESOURCE, limits=limits, options={"channels": channels}))


# ---------------------------------------------------------------- the pair transport itself


def test_pairs_fail_on_a_different_message_a_wrong_kind_and_leftovers():
    driver = battery()
    with pytest.raises(PairMismatch, match="expected 'CHANnel 1'"), expect(driver, [("CHANnel 1", None)]):
        driver.select(2)
    with pytest.raises(PairMismatch, match="is a query here"), expect(driver, [("CHANnel 1", "1")]):
        driver.select(1)
    with pytest.raises(AssertionError, match="never sent"), expect(driver, [("CHANnel 1", None)] * 2):
        driver.select(1)
    # A driver that swallows the mismatch is still caught at the end.
    with (
        pytest.raises(AssertionError, match="no pair left"),
        expect(driver, []),
        contextlib.suppress(PairMismatch),
    ):
        driver.select(1)


def test_a_bench_file_finds_it_by_name():
    assert driver_class("chroma-17040") is BatteryEmulator


# ---------------------------------------------------------------- every command, byte for byte


def test_channel_count_is_asked_at_open_and_the_selection_restored():
    driver = BatteryEmulator(DriverConfig("battery", RESOURCE))
    pairs = [("CHANnel?", "3"), ("CHANnel MAXimum", None), ("CHANnel?", "12"), ("CHANnel 3", None)]
    with expect(driver, pairs) as wire:
        assert driver.open() is driver
    assert driver.channels == 12
    assert wire.opened == 1


def test_a_channel_count_the_instrument_will_not_give_asks_for_the_option():
    driver = BatteryEmulator(DriverConfig("battery", RESOURCE))
    pairs = [("CHANnel?", "1"), ("CHANnel MAXimum", rejected(-224, "Illegal parameter value"))]
    with expect(driver, pairs) as wire, pytest.raises(InstrumentRejected, match="option channels") as caught:
        driver.open()
    assert caught.value.code == -224
    assert wire.closed == 1
    with pytest.raises(InstrumentError, match="not opened"):
        driver.safe()


def test_the_channels_option_needs_no_question():
    driver = battery(channels=5)
    with expect(driver, []):
        driver.open()
    assert driver.channels == 5


@pytest.mark.parametrize(
    ("call", "sent"),
    [
        (lambda d: d.select(2), "CHANnel 2"),
        (lambda d: d.battery_mode(), "OUTPut:MODe 1"),
        (lambda d: d.set_output(1, True), "CHANnel 1;:BATTery:OUTPut ON"),
        (lambda d: d.set_output(2, False), "CHANnel 2;:BATTery:OUTPut OFF"),
        (lambda d: d.set_capacity(2, 150), "CHANnel 2;:BATTery:CAPacity 150"),
        (lambda d: d.set_capacity(1, 62.5), "CHANnel 1;:BATTery:CAPacity 62.5"),
        (lambda d: d.set_initial_soc(1, 55.5), "CHANnel 1;:BATTery:INITial 0;:BATTery:INITial:CAPacity 55.5"),
        (lambda d: d.set_resistance(2, 0.015), "CHANnel 2;:BATTery:ESR 0.015"),
        (
            lambda d: d.upload_ocv(2, [0, 50, 100], [300.5, 350, 401.25]),
            "CHANnel 2;:BATTery:CURVe 0,3,300.5,350,401.25;:BATTery:CURVe 1,3,0,50,100",
        ),
        (
            lambda d: d.set_protection(1, over_current_a=200, under_voltage_v=280, over_voltage_v=410),
            "CHANnel 1;:BATTery:VOLP 280;:BATTery:VOH 410;:BATTery:OCP 200",
        ),
        (
            lambda d: d.set_protection(
                2, soc_high_pct=95, soc_low_pct=5, low_voltage_alarm_v=290, high_voltage_alarm_v=400
            ),
            "CHANnel 2;:BATTery:BVL 290;:BATTery:BVH 400;:BATTery:BOL 5;:BATTery:BOH 95",
        ),
        (lambda d: d.clear_protection(2), "CHANnel 2;:PROTection:CLEar"),
        (lambda d: d.insert_fault(1, FaultKind.WELD), "CHANnel 1;:FAULt:INSert WELD"),
        (lambda d: d.insert_fault(2, FaultKind.THERMAL, 5000), "CHANnel 2;:FAULt:INSert THERMAL,5000"),
        (lambda d: d.insert_fault(2, FaultKind.DRIFT, -7.5), "CHANnel 2;:FAULt:INSert DRIFT,-7.5"),
        (lambda d: d.clear_fault(1, FaultKind.ISOLATION), "CHANnel 1;:FAULt:CLEar ISOLATION"),
    ],
)
def test_each_setting_is_one_exact_message(call, sent):
    driver = battery()
    with expect(driver, [(sent, None)]):
        call(driver)


def test_measure_asks_each_quantity_on_its_channel():
    driver = battery()
    pairs = [
        ("CHANnel 2;:MEASure:VOLTage?", "402.5"),
        ("CHANnel 2;:MEASure:CURRent?", "-12.25"),
        ("CHANnel 2;:MEASure:POWer?", "-4930.625"),
        ("CHANnel 2;:MEASure:SOC?", "71.5"),
    ]
    with expect(driver, pairs):
        assert driver.measure(2) == BatteryReading(402.5, -12.25, -4930.625, 71.5)


def test_state_is_the_fault_bits_and_the_output():
    driver = battery()
    with expect(driver, [("CHANnel 1;:MEASure:STATe?", "18,0"), ("CHANnel 2;:MEASure:STATe?", "0,1")]):
        tripped = driver.state(1)
        assert tripped == BatteryState(18, False)
        assert not tripped.healthy
        assert driver.state(2).healthy


def test_a_real_17040_refusing_fault_insertion_is_told_apart():
    driver = battery()
    with (
        expect(driver, [("CHANnel 1;:FAULt:INSert OPEN", rejected(-113, "Undefined header"))]),
        pytest.raises(ExtensionMissing, match="real Chroma 17040") as caught,
    ):
        driver.insert_fault(1, FaultKind.OPEN)
    assert caught.value.code == -113
    with (
        expect(driver, [("CHANnel 1;:FAULt:CLEar OPEN", rejected(-221, "Settings conflict"))]),
        pytest.raises(InstrumentRejected) as caught,
    ):
        driver.clear_fault(1, FaultKind.OPEN)
    assert caught.value.code == -221
    assert not isinstance(caught.value, ExtensionMissing)
    assert "real Chroma" not in str(caught.value)


def test_injected_is_the_channels_fault_mask():
    driver = battery()
    with expect(driver, [("CHANnel 2;:FAULt:MASK?", "20"), ("CHANnel 1;:FAULt:MASK?", "0")]):
        assert driver.injected(2) == InsertedFault.WELD | InsertedFault.COMMS
        assert driver.injected(1) == InsertedFault(0)


def test_injected_all_asks_each_channel_without_channel_lists_and_once_with_them():
    per_channel = battery(channels=3)
    pairs = [
        ("CHANnel 1;:FAULt:MASK?", "0"),
        ("CHANnel 2;:FAULt:MASK?", "16"),
        ("CHANnel 3;:FAULt:MASK?", "33"),
    ]
    with expect(per_channel, pairs):
        masks = per_channel.injected_all()
    listed = listing(3)
    with expect(listed, [("FAULt:MASK? (@1:3)", "0,16,33")]):
        assert listed.injected_all() == masks
    assert masks == [InsertedFault(0), InsertedFault.COMMS, InsertedFault.DRIFT | InsertedFault.ISOLATION]


@pytest.mark.parametrize(
    ("lists", "call", "sent"),
    [
        (False, lambda d: d.injected(1), "CHANnel 1;:FAULt:MASK?"),
        (False, lambda d: d.injected_all(), "CHANnel 1;:FAULt:MASK?"),
        (True, lambda d: d.injected_all(), "FAULt:MASK? (@1:2)"),
    ],
)
def test_a_real_17040_has_no_fault_mask_and_says_why(lists, call, sent):
    driver = listing(2) if lists else battery()
    with (
        expect(driver, [(sent, rejected(-113, "Undefined header"))]),
        pytest.raises(ExtensionMissing) as caught,
    ):
        call(driver)
    assert caught.value.code == -113
    assert caught.value.command == sent
    assert "real Chroma 17040" in str(caught.value)


def test_safe_goes_through_every_channel_and_names_each_failure():
    driver = battery(channels=4)
    pairs = [
        ("CHANnel 1;:BATTery:OUTPut OFF", None),
        ("CHANnel 2;:BATTery:OUTPut OFF", rejected(-221, "Settings conflict;pack 1 refused")),
        ("CHANnel 3;:BATTery:OUTPut OFF", None),
        ("CHANnel 4;:BATTery:OUTPut OFF", rejected(-221, "Settings conflict;pack 3 refused")),
    ]
    with expect(driver, pairs), pytest.raises(InstrumentError) as caught:
        driver.safe()
    message = str(caught.value)
    assert "2 of 4 channels" in message
    assert "channel 2: -221" in message
    assert "channel 4: -221" in message
    assert "channel 1:" not in message
    assert "channel 3:" not in message
    assert caught.value.role == "battery"
    assert caught.value.resource == RESOURCE


@pytest.mark.parametrize("gone", [InstrumentTimeout, ConnectionLost])
def test_safe_stops_at_a_dead_link_instead_of_timing_out_on_every_channel(gone):
    driver = battery(channels=4)
    pairs = [
        ("CHANnel 1;:BATTery:OUTPut OFF", None),
        ("CHANnel 2;:BATTery:OUTPut OFF", Fail(gone, "no reply within 2.0 s")),
    ]
    with expect(driver, pairs), pytest.raises(InstrumentError) as caught:
        driver.safe()
    assert "channel 2: no reply within 2.0 s; channels 3.. not tried" in str(caught.value)


def test_safe_on_healthy_channels_raises_nothing():
    driver = battery(channels=3)
    with expect(driver, [(f"CHANnel {n};:BATTery:OUTPut OFF", None) for n in (1, 2, 3)]):
        driver.safe()


# ---------------------------------------------------------------- limits: nothing reaches the wire


@pytest.mark.parametrize(
    ("limits", "call"),
    [
        ({}, lambda d: d.set_output(0, True)),
        ({}, lambda d: d.set_output(3, True)),
        ({}, lambda d: d.measure(3)),
        ({}, lambda d: d.set_capacity(1, 20_000)),
        ({"capacity_max": 100.0}, lambda d: d.set_capacity(1, 150)),
        ({}, lambda d: d.set_capacity(1, 0)),
        ({}, lambda d: d.set_initial_soc(1, 100.5)),
        ({"soc_max": 90.0}, lambda d: d.set_initial_soc(1, 95)),
        ({}, lambda d: d.set_initial_soc(1, float("nan"))),
        ({}, lambda d: d.set_resistance(1, 0)),
        ({"resistance_max": 0.5}, lambda d: d.set_resistance(1, 1.0)),
        ({"voltage_max": 400.0}, lambda d: d.upload_ocv(1, [0, 100], [300, 401])),
        ({}, lambda d: d.upload_ocv(1, [0, 50, 100], [300, 350])),
        ({}, lambda d: d.upload_ocv(1, [0], [300])),
        ({}, lambda d: d.upload_ocv(1, [0, 50, 50, 100], [300, 310, 320, 330])),
        ({}, lambda d: d.upload_ocv(1, [0, 50, 100], [300, 290, 320])),
        ({}, lambda d: d.upload_ocv(1, [-1, 50, 100], [300, 310, 320])),
        ({"voltage_max": 400.0}, lambda d: d.set_protection(1, over_voltage_v=420)),
        ({"current_max": 150.0}, lambda d: d.set_protection(1, over_current_a=200)),
        ({}, lambda d: d.set_protection(1, under_voltage_v=400, over_voltage_v=300)),
        ({}, lambda d: d.set_protection(1, soc_low_pct=50, soc_high_pct=50)),
        ({}, lambda d: d.set_protection(1)),
        ({}, lambda d: d.insert_fault(1, FaultKind.WELD, 1.0)),
        ({}, lambda d: d.insert_fault(1, FaultKind.DRIFT, 101)),
        ({}, lambda d: d.insert_fault(1, FaultKind.THERMAL, -1)),
    ],
)
def test_a_setting_outside_the_limits_sends_nothing(limits, call):
    driver = battery(**limits)
    with expect(driver, []), pytest.raises(LimitViolation) as caught:
        call(driver)
    assert caught.value.role == "battery"
    assert caught.value.command.startswith("CHANnel ")


@settings(max_examples=100, deadline=None)
@given(
    voltage_max=st.floats(0.0, 1000.0),
    volts=st.floats(-100.0, 1100.0, allow_nan=False),
)
def test_a_protection_voltage_is_sent_exactly_when_within_the_bench_limit(voltage_max, volts):
    driver = battery(voltage_max=voltage_max)
    within = 0.0 <= volts <= voltage_max
    pairs = [(f"CHANnel 1;:BATTery:VOH {volts:.9g}", None)] if within else []
    with expect(driver, pairs):
        if within:
            driver.set_protection(1, over_voltage_v=volts)
        else:
            with pytest.raises(LimitViolation, match="voltage_max"):
                driver.set_protection(1, over_voltage_v=volts)


@pytest.mark.parametrize(
    ("limits", "options"),
    [
        ({"voltage_max": 1200.0}, {}),
        ({"power_max": 10.0}, {}),
        ({}, {"channels": -1}),
    ],
)
def test_a_bench_asking_beyond_the_instrument_is_refused(limits, options):
    with pytest.raises(LimitViolation):
        BatteryEmulator(DriverConfig("battery", RESOURCE, limits=limits, options=options))


def test_a_channels_option_of_the_wrong_type_is_refused():
    with pytest.raises(ValueError, match="channels"):
        BatteryEmulator(DriverConfig("battery", RESOURCE, options={"channels": "8"}))


# ---------------------------------------------------------------- garbage


def listing(channels: int = 2) -> BatteryEmulator:
    options = {"channels": channels, "channel_lists": True}
    return BatteryEmulator(DriverConfig("battery", RESOURCE, options=options))


def test_with_channel_lists_the_whole_instrument_is_read_in_one_query_per_quantity():
    driver = listing(3)
    pairs = [
        ("MEASure:VOLTage? (@1:3)", "400,401,402"),
        ("MEASure:CURRent? (@1:3)", "1.5,-2,0"),
        ("MEASure:POWer? (@1:3)", "600,-802,0"),
        ("MEASure:SOC? (@1:3)", "50,51,52"),
        ("MEASure:STATe? (@1:3)", "0,1,16,1,0,0"),
    ]
    with expect(driver, pairs):
        readings, states = driver.measure_all(), driver.state_all()
    assert readings[1] == BatteryReading(401.0, -2.0, -802.0, 51.0)
    assert states == [BatteryState(0, True), BatteryState(16, True), BatteryState(0, False)]


@pytest.mark.parametrize(
    ("call", "sent", "reply"),
    [
        (lambda d: d.measure_all(), "MEASure:VOLTage? (@1:2)", "400"),
        (lambda d: d.state_all(), "MEASure:STATe? (@1:2)", "0,1,0"),
        (lambda d: d.state_all(), "MEASure:STATe? (@1:2)", "0,1,0,2"),
        (lambda d: d.injected_all(), "FAULt:MASK? (@1:2)", "16"),
    ],
)
def test_a_channel_list_reply_of_the_wrong_size_is_garbage(call, sent, reply):
    driver = listing(2)
    with expect(driver, [(sent, reply)]), pytest.raises(GarbageReply, match="channel"):
        call(driver)


@pytest.mark.parametrize(
    ("call", "sent", "reply"),
    [
        (lambda d: d.measure(1), "CHANnel 1;:MEASure:VOLTage?", "402V"),
        (lambda d: d.state(1), "CHANnel 1;:MEASure:STATe?", "0"),
        (lambda d: d.state(1), "CHANnel 1;:MEASure:STATe?", "0.5,1"),
        (lambda d: d.state(1), "CHANnel 1;:MEASure:STATe?", "OK,1"),
        (lambda d: d.injected(1), "CHANnel 1;:FAULt:MASK?", "2.5"),
        (lambda d: d.injected(1), "CHANnel 1;:FAULt:MASK?", "-1"),
        (lambda d: d.injected(1), "CHANnel 1;:FAULt:MASK?", "COMM"),
    ],
)
def test_garbage_replies_are_garbage_errors(call, sent, reply):
    driver = battery()
    with expect(driver, [(sent, reply)]), pytest.raises(GarbageReply) as caught:
        call(driver)
    assert caught.value.command == sent


@pytest.mark.parametrize(
    ("count", "then"),
    [("2.5", []), ("0", [("CHANnel 1", None)])],
)
def test_a_channel_count_that_is_no_count_is_garbage(count, then):
    driver = BatteryEmulator(DriverConfig("battery", RESOURCE))
    pairs = [("CHANnel?", "1"), ("CHANnel MAXimum", None), ("CHANnel?", count), *then]
    with expect(driver, pairs) as wire, pytest.raises(GarbageReply, match="CHANnel"):
        driver.open()
    assert wire.closed == 1


def test_an_instrument_answering_garbage_over_the_wire():
    with garbage_instrument("Chroma,17040,0,1.0") as resource:
        config = DriverConfig("battery", resource, options={"channels": 2, "timeout_s": 1.0})
        with BatteryEmulator(config) as driver:
            driver.set_output(1, True)
            with pytest.raises(GarbageReply, match="MEASure:VOLTage"):
                driver.measure(1)
            with pytest.raises(GarbageReply, match="MEASure:STATe"):
                driver.state(2)


# ---------------------------------------------------------------- over the wire, against the stand-in


@pytest.fixture
def emulator(started, plant, lock):
    stand_in = started(BatteryStandIn(plant, lock))
    return started(BatteryEmulator(DriverConfig("battery", stand_in.resource)))


@pytest.mark.parametrize("channel_lists", [False, True])
def test_reading_every_channel_matches_reading_each(started, plant, lock, channel_lists):
    stand_in = started(BatteryStandIn(plant, lock))
    options = {"channel_lists": channel_lists}
    driver = started(BatteryEmulator(DriverConfig("battery", stand_in.resource, options=options)))
    with lock:
        plant.packs.inject(InjectedFault.ISOLATION, 5)
    run(plant, lock, 0.5)
    each = [driver.measure(channel) for channel in range(1, 9)]
    assert driver.measure_all() == each
    assert driver.state_all() == [driver.state(channel) for channel in range(1, 9)]
    assert driver.state_all()[5].fault_bits != 0


def test_open_finds_every_pack_as_a_channel(emulator, plant):
    assert emulator.channels == plant.packs.n == 8
    identity = emulator.identity()
    assert (identity.manufacturer, identity.model) == ("Chroma", "17040")


def test_output_switches_that_packs_contactor_only(emulator, plant, lock):
    emulator.set_output(3, False)
    with lock:
        closed = plant.packs.contactor_closed.copy()
    assert not closed[2]
    assert closed[[0, 1, 3, 4, 5, 6, 7]].all()
    assert emulator.state(3) == BatteryState(0, False)
    assert emulator.state(4).output_on
    emulator.set_output(3, True)
    with lock:
        assert plant.packs.contactor_closed[2]


def test_settings_reach_the_pack(emulator, plant, lock):
    emulator.set_capacity(2, 123.0)
    emulator.set_initial_soc(2, 42.0)
    emulator.set_resistance(2, 0.2)
    with lock:
        assert plant.packs.capacity_ah[1] == pytest.approx(123.0)
        assert plant.packs.soc[1] == pytest.approx(0.42)
        assert plant.packs.soc[0] != pytest.approx(0.42)
        assert plant.packs.resistance_ohm[:, 1].sum() == pytest.approx(0.2, rel=0.05)


def test_an_uploaded_ocv_curve_becomes_the_packs(emulator, plant, lock):
    emulator.set_initial_soc(1, 50.0)
    emulator.upload_ocv(1, [0, 50, 100], [300.0, 340.0, 400.0])
    with lock:
        assert plant.packs.ocv_v()[0] == pytest.approx(340.0, rel=0.01)
        assert plant.packs.ocv_v()[1] != pytest.approx(340.0, rel=0.01)


def test_measure_reports_the_plants_pack(emulator, plant, lock):
    run(plant, lock, 0.2)
    reading = emulator.measure(5)
    with lock:
        packs = plant.packs
        expected = (packs.terminal_v[4], packs.current_a[4], packs.power_w[4], packs.soc[4] * 100.0)
    assert (reading.voltage_v, reading.current_a, reading.power_w, reading.soc_pct) == pytest.approx(expected)


def test_protection_levels_are_taken(emulator):
    emulator.set_protection(1, under_voltage_v=250, over_voltage_v=450, over_current_a=300)
    assert emulator.transport.query_float("CHANnel 1;:BATTery:VOH?") == 450.0
    assert emulator.transport.query_float("CHANnel 1;:BATTery:OCP?") == 300.0
    assert emulator.transport.query_float("CHANnel 2;:BATTery:OCP?") != 300.0


def test_a_curve_the_instrument_refuses_is_its_error(emulator, plant, lock):
    with lock:
        before = plant.packs.ocv_v()
    with pytest.raises(InstrumentRejected, match="BATTery:CURVe") as caught:
        emulator.upload_ocv(1, [10, 50, 90], [300.0, 340.0, 400.0])
    assert caught.value.code == -224
    with lock:
        np.testing.assert_array_equal(plant.packs.ocv_v(), before)


def test_faults_inserted_show_in_the_state_and_clear(emulator, plant, lock):
    emulator.insert_fault(2, FaultKind.ISOLATION)
    run(plant, lock, 0.05)
    state = emulator.state(2)
    assert not state.healthy
    assert state.output_on, "an isolation fault is reported; isolating the pack is the controller's job"
    with lock:
        assert plant.packs.injected(InjectedFault.ISOLATION)[1]
    emulator.clear_fault(2, FaultKind.ISOLATION)
    emulator.clear_protection(2)
    assert emulator.state(2).healthy
    emulator.insert_fault(3, FaultKind.THERMAL, 2000.0)
    with lock:
        assert plant.packs.injected(InjectedFault.THERMAL_RUNAWAY)[2]


@pytest.mark.parametrize("channel_lists", [False, True])
def test_injected_reads_back_every_kind_the_driver_inserts(started, plant, lock, channel_lists):
    """The driver's bits and the stand-in's agree, kind by kind, and with or without channel lists."""
    stand_in = started(BatteryStandIn(plant, lock))
    options = {"channel_lists": channel_lists}
    driver = started(BatteryEmulator(DriverConfig("battery", stand_in.resource, options=options)))
    kinds = list(FaultKind)
    for channel, kind in enumerate(kinds, start=1):
        driver.insert_fault(channel, kind)
    driver.insert_fault(8, FaultKind.COMMS)
    driver.insert_fault(8, FaultKind.THERMAL, 10.0)
    expected = [InsertedFault[kind.name] for kind in kinds] + [
        InsertedFault(0),
        InsertedFault.COMMS | InsertedFault.THERMAL,
    ]
    assert driver.injected_all() == expected
    assert [driver.injected(channel) for channel in range(1, 9)] == expected
    driver.clear_fault(8, FaultKind.COMMS)
    assert driver.injected(8) == InsertedFault.THERMAL
    with lock:
        assert plant.packs.injected(InjectedFault.BMS_COMMS_LOSS)[4], "the fifth channel's link is still cut"


def test_safe_opens_every_contactor_and_names_a_welded_one(emulator, plant, lock):
    emulator.insert_fault(6, FaultKind.WELD)
    with pytest.raises(InstrumentError, match=r"1 of 8 channels.*channel 6: -221"):
        emulator.safe()
    with lock:
        closed = plant.packs.contactor_closed.copy()
    np.testing.assert_array_equal(closed, np.arange(8) == 5)
    emulator.clear_fault(6, FaultKind.WELD)
    emulator.safe()
    with lock:
        assert not plant.packs.contactor_closed.any()
