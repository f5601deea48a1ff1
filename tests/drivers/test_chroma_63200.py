"""The Chroma 63200 driver: exact messages (protocol pairs), limits, and the stand-in over a serial pty."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.base import DriverConfig
from drivers.chroma_63200 import ElectronicLoad, LoadReading, LoadStep
from drivers.errors import GarbageReply, InstrumentError, InstrumentRejected, LimitViolation
from drivers.registry import driver_class
from harness.sim.load import TrainingSwings
from harness.sim.standins.electronic_load import ElectronicLoad as LoadStandIn
from tests.drivers import LOAD_RATED_W
from tests.drivers.pairs import expect, rejected
from tests.sim.standins import run

RESOURCE = "ASRL/dev/ttyUSB3::INSTR"
RATED_W = LOAD_RATED_W
NOMINAL_V = 480.0


def load(limits: dict[str, float] | None = None, **options: object) -> ElectronicLoad:
    return ElectronicLoad(DriverConfig("load", RESOURCE, limits=limits or {}, options=options))


def test_a_bench_file_finds_it_by_name():
    assert driver_class("chroma-63200") is ElectronicLoad


# ---------------------------------------------------------------- every command, byte for byte


def test_open_takes_remote_control():
    driver = load()
    with expect(driver, [("CONFigure:REMote ON", None)]) as wire:
        assert driver.open() is driver
    assert (wire.opened, wire.closed) == (1, 0)


def test_an_open_whose_remote_is_refused_closes_again():
    driver = load()
    with (
        expect(driver, [("CONFigure:REMote ON", rejected(-113, "Undefined header"))]) as wire,
        pytest.raises(InstrumentRejected),
    ):
        driver.open()
    assert wire.closed == 1


@pytest.mark.parametrize(
    ("call", "sent"),
    [
        (lambda d: d.on(), ["LOAD ON"]),
        (lambda d: d.off(), ["LOAD OFF"]),
        (lambda d: d.safe(), ["LOAD OFF"]),
        (lambda d: d.constant_power(250_000), ["POWer:STATic:L1 250000", "MODE CPH"]),
        (lambda d: d.power_limit(1.5e5), ["POWer:LIMit 150000"]),
        (lambda d: d.power_limit(None), ["POWer:LIMit INFinity"]),
        (
            lambda d: d.dynamic(96_000, 288_000, 0.4, 0.6, 0.05),
            [
                "CURRent:DYNamic:L1 200",
                "CURRent:DYNamic:L2 600",
                "CURRent:DYNamic:T1 0.4",
                "CURRent:DYNamic:T2 0.6",
                "CURRent:DYNamic:RISE 0.008",
                "CURRent:DYNamic:FALL 0.008",
                "MODE CCDH",
            ],
        ),
    ],
)
def test_each_setting_is_its_exact_messages_mode_last(call, sent):
    driver = load(nominal_voltage_v=NOMINAL_V)
    with expect(driver, [(message, None) for message in sent]):
        call(driver)


def test_dynamic_without_a_nominal_voltage_converts_at_the_measured_one():
    driver = load()
    pairs = [
        ("MEASure:VOLTage?", "400.0"),
        ("CURRent:DYNamic:L1 250", None),
        ("CURRent:DYNamic:L2 250", None),
        ("CURRent:DYNamic:T1 1", None),
        ("CURRent:DYNamic:T2 1", None),
        ("CURRent:DYNamic:RISE 1", None),
        ("CURRent:DYNamic:FALL 1", None),
        ("MODE CCDH", None),
    ]
    with expect(driver, pairs):
        driver.dynamic(100_000, 100_000, 1, 1, 0.01)


def test_dynamic_on_a_dead_bus_without_a_nominal_voltage_sends_no_setting():
    driver = load()
    with (
        expect(driver, [("MEASure:VOLTage?", "0.0")]),
        pytest.raises(InstrumentError, match="nominal_voltage_v"),
    ):
        driver.dynamic(100_000, 200_000, 1, 1, 0.01)


@pytest.mark.parametrize(("mode", "leave"), [("CPH", []), ("LIST", [("MODE CPH", None)])])
def test_program_sends_the_list_then_list_mode(mode, leave):
    driver = load()
    pairs = [
        ("MODE?", mode),
        *leave,
        ("LIST:POWer 200000,300000,50000", None),
        ("LIST:DWELl 1,2.5,0.5", None),
        ("MODE LIST", None),
    ]
    with expect(driver, pairs):
        driver.program([LoadStep(2e5, 1.0), LoadStep(3e5, 2.5), LoadStep(5e4, 0.5)])


def test_measure_asks_each_quantity():
    driver = load()
    pairs = [("MEASure:VOLTage?", "479.5"), ("MEASure:CURRent?", "625.25"), ("MEASure:POWer?", "2.998E+5")]
    with expect(driver, pairs):
        assert driver.measure() == LoadReading(479.5, 625.25, 299800.0)


# ---------------------------------------------------------------- limits: nothing reaches the wire


@pytest.mark.parametrize(
    ("limits", "call"),
    [
        ({}, lambda d: d.constant_power(-1)),
        ({}, lambda d: d.constant_power(60e6)),
        ({"power_max": 1e5}, lambda d: d.constant_power(100_001)),
        ({"power_max": 1e5}, lambda d: d.power_limit(2e5)),
        ({"power_max": 1e5}, lambda d: d.dynamic(1e4, 1.5e5, 1, 1, 0.1)),
        ({}, lambda d: d.dynamic(2e5, 1e5, 1, 1, 0.1)),
        ({}, lambda d: d.dynamic(1e5, 2e5, 0, 1, 0.1)),
        ({}, lambda d: d.dynamic(1e5, 2e5, 1, 200_000, 0.1)),
        ({}, lambda d: d.dynamic(1e5, 2e5, 1, 1, 0)),
        ({}, lambda d: d.dynamic(1e5, 2e5, 1, 1, float("inf"))),
        ({}, lambda d: d.program([])),
        ({}, lambda d: d.program([LoadStep(1e5, 1.0)] * 101)),
        ({"power_max": 1e5}, lambda d: d.program([LoadStep(1e5, 1.0), LoadStep(1.1e5, 1.0)])),
        ({}, lambda d: d.program([LoadStep(1e5, 0.0001)])),
    ],
)
def test_a_setting_outside_the_limits_sends_nothing(limits, call):
    driver = load(limits, nominal_voltage_v=NOMINAL_V)
    with expect(driver, []), pytest.raises(LimitViolation) as caught:
        call(driver)
    assert caught.value.role == "load"
    assert caught.value.command


@settings(max_examples=100, deadline=None)
@given(power_max=st.floats(0.0, 50e6), w=st.floats(-1e6, 60e6))
def test_a_constant_power_is_sent_exactly_when_within_the_bench_limit(power_max, w):
    driver = load({"power_max": power_max})
    within = 0.0 <= w <= power_max
    pairs = [(f"POWer:STATic:L1 {w:.9g}", None), ("MODE CPH", None)] if within else []
    with expect(driver, pairs):
        if within:
            driver.constant_power(w)
        else:
            with pytest.raises(LimitViolation, match="power_max"):
                driver.constant_power(w)


@pytest.mark.parametrize(
    ("limits", "options"), [({"power_max": 60e6}, {}), ({}, {"nominal_voltage_v": -5.0})]
)
def test_a_bench_file_that_cannot_work_is_refused(limits, options):
    with pytest.raises(LimitViolation):
        load(limits, **options)


# ---------------------------------------------------------------- garbage


@pytest.mark.parametrize(
    ("call", "sent", "reply"),
    [
        (lambda d: d.measure(), "MEASure:VOLTage?", "OVP"),
        (lambda d: d.dynamic(1e5, 2e5, 1, 1, 0.1), "MEASure:VOLTage?", ""),
    ],
)
def test_garbage_replies_are_garbage_errors(call, sent, reply):
    driver = load()
    with expect(driver, [(sent, reply)]), pytest.raises(GarbageReply) as caught:
        call(driver)
    assert caught.value.command == sent


# ---------------------------------------------------------------- over the wire, against the stand-in


@pytest.fixture
def electronic_load(started, plant, lock):
    stand_in = started(LoadStandIn(plant, lock))
    config = DriverConfig("load", stand_in.resource, options={"nominal_voltage_v": NOMINAL_V})
    return started(ElectronicLoad(config))


def demand_w(plant, lock, at_s: float) -> float:
    with lock:
        return plant.load.uncapped_demand_w(at_s)


def test_open_puts_it_in_remote(electronic_load):
    assert electronic_load.identity().model == "63203"
    assert electronic_load.transport.query("CONFigure:REMote?") == "1"


def test_constant_power_and_off_reach_the_racks(electronic_load, plant, lock):
    electronic_load.constant_power(300_000.0)
    assert demand_w(plant, lock, plant.t) == 300_000.0
    electronic_load.safe()
    assert demand_w(plant, lock, plant.t) == 0.0
    electronic_load.on()
    assert demand_w(plant, lock, plant.t) == 300_000.0


def test_power_beyond_the_racks_is_the_instruments_refusal(electronic_load, plant, lock):
    before = demand_w(plant, lock, plant.t)
    with pytest.raises(InstrumentRejected) as caught:
        electronic_load.constant_power(RATED_W * 1.5)
    assert caught.value.code == -222
    assert demand_w(plant, lock, plant.t) == before


def test_dynamic_plays_training_swings(electronic_load, plant, lock):
    start = plant.t
    electronic_load.dynamic(100_000.0, 300_000.0, 0.4, 0.6, 0.05)
    swings = TrainingSwings(period_s=1.0, duty=0.6, low=0.25, high=0.75, edge_s=0.05)
    offsets = [0.0, 0.02, 0.3, 0.62, 0.64, 0.9, 1.3]
    want = [swings.fraction(t) * RATED_W for t in offsets]
    got = [demand_w(plant, lock, start + t) for t in offsets]
    assert got == pytest.approx(want, rel=1e-6)


def test_programs_replace_each_other_while_the_load_runs(electronic_load, plant, lock):
    electronic_load.constant_power(50_000.0)
    electronic_load.program([LoadStep(200_000.0, 1.0), LoadStep(300_000.0, 2.0)])
    start = plant.t
    assert [demand_w(plant, lock, start + t) for t in (0.5, 1.5, 3.5)] == [2e5, 3e5, 5e4]
    run(plant, lock, 0.5, dt=0.1)
    electronic_load.program([LoadStep(100_000.0, 1.0), LoadStep(150_000.0, 1.0), LoadStep(250_000.0, 1.0)])
    start = plant.t
    assert [demand_w(plant, lock, start + t) for t in (0.5, 1.5, 2.5, 3.5)] == [1e5, 1.5e5, 2.5e5, 5e4]


def test_power_limit_caps_the_racks(electronic_load, plant, lock):
    electronic_load.power_limit(150_000.0)
    with lock:
        assert plant.load.power_cap_w == 150_000.0
    electronic_load.power_limit(None)
    with lock:
        assert plant.load.power_cap_w is None


def test_measure_reports_the_rack_bus(electronic_load, plant, lock):
    electronic_load.constant_power(200_000.0)
    run(plant, lock, 0.3, dt=0.1)
    reading = electronic_load.measure()
    with lock:
        assert reading.power_w == pytest.approx(plant.bus.load_served_w)
        assert reading.voltage_v == pytest.approx(plant.bus.voltage_pu * NOMINAL_V)
    assert reading.power_w > 0.0
    assert reading.current_a == pytest.approx(reading.power_w / reading.voltage_v)
