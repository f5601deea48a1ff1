"""The Yokogawa WT driver: exact messages (protocol pairs), item checks, and the stand-in over TCP."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.base import DriverConfig
from drivers.chroma_61800 import GridSimulator, ListStep
from drivers.errors import GarbageReply, InstrumentTimeout, LimitViolation
from drivers.registry import driver_class
from drivers.yokogawa_wt import EventKind, PowerAnalyzer, VoltageEvent
from harness.sim.standins.grid_simulator import GridSimulator as GridStandIn
from harness.sim.standins.power_analyzer import PowerAnalyzer as AnalyzerStandIn
from tests.drivers.pairs import Fail, expect, garbage_instrument
from tests.sim.standins import run

RESOURCE = "TCPIP::10.0.0.22::10001::SOCKET"
NOMINAL_LN_V = 480.0 / math.sqrt(3.0)
ITEMS = [("URMS", 1), ("p", "sigma"), ("FU", 1)]
CONFIGURE = [
    (":NUMeric:FORMat ASCii", None),
    (":NUMeric:NORMal:NUMber 3", None),
    (":NUMeric:NORMal:ITEM1 URMS,1", None),
    (":NUMeric:NORMal:ITEM2 P,SIGMA", None),
    (":NUMeric:NORMal:ITEM3 FU,1", None),
]


def analyzer() -> PowerAnalyzer:
    return PowerAnalyzer(DriverConfig("load_meter", RESOURCE))


def test_a_bench_file_finds_it_by_name():
    assert driver_class("yokogawa-wt") is PowerAnalyzer


# ---------------------------------------------------------------- every command, byte for byte


def test_open_takes_remote_control_without_headers():
    driver = analyzer()
    with expect(driver, [(":COMMunicate:REMote ON", None), (":COMMunicate:HEADer OFF", None)]) as wire:
        driver.open()
    assert (wire.opened, wire.closed) == (1, 0)


def test_configure_then_read_keys_values_by_item():
    driver = analyzer()
    pairs = [*CONFIGURE, (":NUMeric:NORMal:VALue?", "2.77128E+02,NAN,6.00000E+01")]
    with expect(driver, pairs):
        driver.configure(ITEMS)
        assert driver.read() == {"URMS,1": 277.128, "P,SIGMA": None, "FU,1": 60.0}


def test_without_configure_the_items_are_asked_once():
    driver = analyzer()
    pairs = [
        (":NUMeric:NORMal:NUMber?", "3"),
        (":NUMeric:NORMal:ITEM1?", "URMS,1"),
        (":NUMeric:NORMal:ITEM2?", "NONE"),
        (":NUMeric:NORMal:ITEM3?", "P,SIGMA"),
        (":NUMeric:NORMal:VALue?", "1.0E+00,NAN,2.5E+05"),
        (":NUMeric:NORMal:VALue?", "1.0E+00,NAN,9.91E+37"),
    ]
    with expect(driver, pairs):
        assert driver.read() == {"URMS,1": 1.0, "P,SIGMA": 250_000.0}
        assert driver.read() == {"URMS,1": 1.0, "P,SIGMA": None}


def test_events_are_read_one_by_one():
    driver = analyzer()
    pairs = [
        (":EVENt:COUNt?", "2"),
        (":EVENt:DATA? 1", "DIP,1.5,0.2,0.5"),
        (":EVENt:DATA? 2", "INTERRUPTION,3.25,0.125,0.0"),
        (":EVENt:CLEar", None),
        (":EVENt:COUNt?", "0"),
    ]
    with expect(driver, pairs):
        assert driver.events() == [
            VoltageEvent(EventKind.DIP, 1.5, 0.2, 0.5),
            VoltageEvent(EventKind.INTERRUPTION, 3.25, 0.125, 0.0),
        ]
        driver.clear_events()
        assert driver.events() == []


def test_safe_switches_nothing_but_checks_the_link():
    driver = analyzer()
    with expect(driver, [("*OPC?", "1")]):
        driver.safe()
    with (
        expect(driver, [("*OPC?", Fail(InstrumentTimeout, "no reply within 2.0 s"))]),
        pytest.raises(InstrumentTimeout),
    ):
        driver.safe()


# ---------------------------------------------------------------- items: nothing reaches the wire


@pytest.mark.parametrize(
    "items",
    [
        [],
        [("URMS", 1)] * 2,
        [(f"P{k}", 1) for k in range(256)],
        [("U RMS", 1)],
        [("NONE", 1)],
        [("", 1)],
        [("URMS", 0)],
        [("URMS", True)],
        [("URMS", "SIGMD")],
    ],
)
def test_items_the_analyzer_cannot_measure_send_nothing(items):
    driver = analyzer()
    with expect(driver, []), pytest.raises(LimitViolation) as caught:
        driver.configure(items)
    assert caught.value.role == "load_meter"


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["URMS", "IRMS", "P", "S", "Q", "LAMBDA", "FU"]), st.integers(1, 7)),
        min_size=1,
        max_size=20,
        unique=True,
    ),
    st.data(),
)
def test_values_come_back_keyed_by_the_items_in_order(items, data):
    values = data.draw(st.lists(st.floats(-1e7, 1e7) | st.none(), min_size=len(items), max_size=len(items)))
    reply = ",".join("NAN" if value is None else f"{value:.5E}" for value in values)
    pairs = [
        (":NUMeric:FORMat ASCii", None),
        (f":NUMeric:NORMal:NUMber {len(items)}", None),
        *((f":NUMeric:NORMal:ITEM{k} {f},{e}", None) for k, (f, e) in enumerate(items, start=1)),
        (":NUMeric:NORMal:VALue?", reply),
    ]
    driver = analyzer()
    with expect(driver, pairs):
        driver.configure(items)
        read = driver.read()
    assert list(read) == [f"{f},{e}" for f, e in items]
    for got, sent in zip(read.values(), values, strict=True):
        assert (got is None) if sent is None else got == pytest.approx(sent, rel=1e-5, abs=1e-300)


# ---------------------------------------------------------------- garbage


def configured_read(driver: PowerAnalyzer) -> None:
    driver.configure(ITEMS)
    driver.read()


@pytest.mark.parametrize(
    ("pairs", "call"),
    [
        ([*CONFIGURE, (":NUMeric:NORMal:VALue?", "1.0,2.0")], configured_read),
        ([*CONFIGURE, (":NUMeric:NORMal:VALue?", "1.0,2.0,3.0,4.0")], configured_read),
        ([*CONFIGURE, (":NUMeric:NORMal:VALue?", "1.0,-,3.0")], configured_read),
        ([(":NUMeric:NORMal:NUMber?", "two")], lambda d: d.read()),
        ([(":EVENt:COUNt?", "1.5")], lambda d: d.events()),
        ([(":EVENt:COUNt?", "-1")], lambda d: d.events()),
        ([(":EVENt:COUNt?", "1"), (":EVENt:DATA? 1", "BLIP,1,2,3")], lambda d: d.events()),
        ([(":EVENt:COUNt?", "1"), (":EVENt:DATA? 1", "DIP,1,2")], lambda d: d.events()),
        ([(":EVENt:COUNt?", "1"), (":EVENt:DATA? 1", "DIP,1,2,x")], lambda d: d.events()),
        ([("*OPC?", "0")], lambda d: d.safe()),
    ],
)
def test_garbage_replies_are_garbage_errors(pairs, call):
    driver = analyzer()
    with expect(driver, pairs), pytest.raises(GarbageReply) as caught:
        call(driver)
    assert caught.value.command == pairs[-1][0]


def test_an_instrument_answering_garbage_over_the_wire():
    with garbage_instrument("YOKOGAWA,WT5000,0,F1.0") as resource:
        config = DriverConfig("load_meter", resource, options={"timeout_s": 1.0})
        with PowerAnalyzer(config) as driver:
            driver.configure(ITEMS)
            with pytest.raises(GarbageReply, match="VALue"):
                driver.read()
            with pytest.raises(GarbageReply, match="COUNt"):
                driver.events()


# ---------------------------------------------------------------- over the wire, against the stand-in


@pytest.fixture
def stand_in(started, plant, lock):
    return started(AnalyzerStandIn(plant, lock))


@pytest.fixture
def meter(started, stand_in):
    return started(PowerAnalyzer(DriverConfig("load_meter", stand_in.resource)))


def test_reads_the_rack_bus(meter, stand_in, plant, lock):
    meter.configure([*ITEMS, ("IRMS", 2)])
    assert meter.read() == dict.fromkeys(["URMS,1", "P,SIGMA", "FU,1", "IRMS,2"])
    run(plant, lock, 0.3, after_step=stand_in.sample)
    read = meter.read()
    with lock:
        bus = plant.bus
        voltage_v = bus.voltage_pu * NOMINAL_LN_V
        power_w, frequency_hz = bus.load_served_w, bus.frequency_hz
    assert read["URMS,1"] == pytest.approx(voltage_v, rel=1e-4)
    assert read["P,SIGMA"] == pytest.approx(power_w, rel=1e-3)
    assert read["P,SIGMA"] > 0.0
    assert read["FU,1"] == pytest.approx(frequency_hz, rel=1e-4)
    assert read["IRMS,2"] == pytest.approx(power_w / 3.0 / voltage_v, rel=1e-3)


def test_reads_the_analyzers_own_items_without_configure(meter, stand_in, plant, lock):
    run(plant, lock, 0.2, after_step=stand_in.sample)
    read = meter.read()
    assert list(read) == ["URMS,1", "IRMS,1", "P,1", "S,1", "Q,1", "LAMBDA,1", "FU,1"]
    assert read["LAMBDA,1"] == pytest.approx(1.0, rel=1e-4)


def test_a_sag_played_by_the_grid_is_an_event(meter, stand_in, plant, lock):
    with GridStandIn(plant, lock) as grid_stand_in:
        with GridSimulator(DriverConfig("grid", grid_stand_in.resource)) as grid:
            grid.play([ListStep.hold(0.2, 0.8 * NOMINAL_LN_V, 60.0), ListStep.hold(0.2, NOMINAL_LN_V, 60.0)])
        run(plant, lock, 0.5, after_step=stand_in.sample)
    events = meter.events()
    with lock:
        truth = list(plant.voltage_events.events)
    assert [event.kind for event in events] == [EventKind.DIP]
    assert len(truth) == 1
    logged = truth[0]
    assert (events[0].start_s, events[0].duration_s, events[0].residual_pu) == pytest.approx(
        (logged.start_s, logged.duration_s, logged.residual_pu)
    )
    assert events[0].duration_s == pytest.approx(0.2, abs=0.01)
    assert events[0].residual_pu == pytest.approx(0.8, abs=0.02)
    meter.clear_events()
    assert meter.events() == []


def test_safe_checks_the_link_and_changes_nothing(meter):
    meter.configure(ITEMS)
    meter.safe()
    assert meter.read() == dict.fromkeys(["URMS,1", "P,SIGMA", "FU,1"])
