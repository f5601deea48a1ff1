"""The Yokogawa WT power analyzer stand-in, driven over TCP by pyvisa-py and fed bus samples."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.sim.load import TrainingSwings
from harness.sim.plant import BusState
from harness.sim.standins.power_analyzer import IDENTITY, PowerAnalyzer
from tests.sim.standins import ask, error_of, open_visa, run, scpi_messages, send

pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")

NOMINAL_LN_V = 480.0 / math.sqrt(3.0)
ITEMS = ":NUM:NORM:NUM 11;ITEM8 P,SIGMA;ITEM9 S,SIGMA;ITEM10 LAMBDA,SIGMA;ITEM11 URMS,SIGMA"
# Items 1-7 are the defaults: URMS,1 IRMS,1 P,1 S,1 Q,1 LAMBDA,1 FU,1.


@pytest.fixture
def analyzer(plant, lock):
    with PowerAnalyzer(plant, lock) as stand_in:
        yield stand_in


@pytest.fixture
def meter(visa, analyzer):
    with open_visa(visa, analyzer.resource) as instrument:
        assert error_of(instrument, ":COMMunicate:REMote ON;:NUMeric:FORMat ASCii") == 0
        yield instrument


def values(meter, query: str = ":NUMeric:NORMal:VALue?") -> list[float]:
    return [float(value) for value in ask(meter, query).split(",")]


def expected(samples: list[tuple[float, float, float, float]]) -> dict[str, float]:
    """What the analyzer must report for one interval of (voltage_pu, load_w, frequency_hz, dt) samples."""
    pu, load_w, frequency_hz, dt = (np.array(column) for column in zip(*samples, strict=True))
    span_s = dt.sum()
    u_v = pu * NOMINAL_LN_V
    i_a = np.divide(load_w / 3.0, u_v, out=np.zeros_like(u_v), where=u_v > 0)
    urms_v = math.sqrt(float((u_v**2 * dt).sum() / span_s))
    irms_a = math.sqrt(float((i_a**2 * dt).sum() / span_s))
    p_w = float((load_w * dt).sum() / span_s)
    alive = frequency_hz > 0
    s_va = 3.0 * urms_v * irms_a
    return {
        "urms_v": urms_v,
        "irms_a": irms_a,
        "p_w": p_w,
        "s_va": s_va,
        "q_var": math.sqrt(max(s_va**2 - p_w**2, 0.0)),
        "lambda": p_w / s_va if s_va > 0 else math.nan,
        "frequency_hz": (
            float((frequency_hz * dt)[alive].sum() / dt[alive].sum()) if alive.any() else math.nan
        ),
    }


def assert_reports(reading: list[float], want: dict[str, float]) -> None:
    urms, irms, p1, s1, q1, lambda1, fu, p_sigma, s_sigma, lambda_sigma, urms_sigma = reading
    approx = {"rel": 2e-5, "abs": 1e-9, "nan_ok": True}
    assert urms == pytest.approx(want["urms_v"], **approx)
    assert urms_sigma == pytest.approx(want["urms_v"], **approx)
    assert irms == pytest.approx(want["irms_a"], **approx)
    assert p1 == pytest.approx(want["p_w"] / 3.0, **approx)
    assert p_sigma == pytest.approx(want["p_w"], **approx)
    assert s1 == pytest.approx(want["s_va"] / 3.0, **approx)
    assert s_sigma == pytest.approx(want["s_va"], **approx)
    assert q1 == pytest.approx(want["q_var"] / 3.0, rel=2e-5, abs=1e-3 * want["s_va"] + 1e-9)
    assert lambda1 == pytest.approx(want["lambda"], **approx)
    assert lambda_sigma == pytest.approx(want["lambda"], **approx)
    assert fu == pytest.approx(want["frequency_hz"], **approx)


def bus(voltage_pu: float, load_w: float, frequency_hz: float) -> BusState:
    return BusState(voltage_pu=voltage_pu, frequency_hz=frequency_hz, load_served_w=load_w)


def test_identity_wiring_and_no_data_before_the_first_interval(meter, analyzer):
    assert meter.query("*IDN?") == IDENTITY == analyzer.identity
    assert ask(meter, ":INPut:WIRing?") == "P3W4"
    assert ask(meter, ":RATE?") == "0.1"
    assert ask(meter, ":NUM:NORM:NUM?") == "15"
    assert ask(meter, ":NUMERIC:NORMAL:VALUE?") == ",".join(["NAN"] * 15)
    assert ask(meter, ":NUM:NORM:ITEM1?;ITEM7?;ITEM8?") == "URMS,1;FU,1;NONE"


_sample = st.tuples(
    st.floats(0.01, 1.2) | st.just(0.0),
    st.floats(0.0, 5e6),
    st.floats(55.0, 65.0) | st.just(0.0),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(samples=st.lists(_sample, min_size=1, max_size=20))
def test_one_interval_reports_the_rms_and_means_of_what_was_fed(meter, analyzer, samples):
    assert error_of(meter, ITEMS + ";:RATE 0.1") == 0
    dt = 0.1 / len(samples)
    for voltage_pu, load_w, frequency_hz in samples:
        analyzer.sample(bus(voltage_pu, load_w, frequency_hz), dt)
    fed = [(voltage_pu, load_w, frequency_hz, dt) for voltage_pu, load_w, frequency_hz in samples]
    assert_reports(values(meter), expected(fed))


def test_a_step_across_an_interval_boundary_is_split_at_it(meter, analyzer):
    assert error_of(meter, ITEMS + ";:RATE 100MS") == 0
    a, b, c = bus(1.0, 3e6, 60.0), bus(0.8, 2e6, 59.0), bus(1.1, 1e6, 61.0)
    analyzer.sample(a, 0.07)
    assert values(meter, ":NUM:VAL? 1") == [pytest.approx(math.nan, nan_ok=True)]
    analyzer.sample(b, 0.07)
    assert_reports(values(meter), expected([(1.0, 3e6, 60.0, 0.07), (0.8, 2e6, 59.0, 0.03)]))
    analyzer.sample(c, 0.06)
    assert_reports(values(meter), expected([(0.8, 2e6, 59.0, 0.04), (1.1, 1e6, 61.0, 0.06)]))
    analyzer.sample(a, 0.35)  # several whole intervals of one value, then half of the next
    assert_reports(values(meter), expected([(1.0, 3e6, 60.0, 0.1)]))
    analyzer.sample(b, 0.05)
    assert_reports(values(meter), expected([(1.0, 3e6, 60.0, 0.05), (0.8, 2e6, 59.0, 0.05)]))


def test_changing_the_rate_restarts_the_interval(meter, analyzer):
    assert error_of(meter, ITEMS) == 0
    analyzer.sample(bus(1.0, 3e6, 60.0), 0.05)
    assert error_of(meter, ":RATE 0.2") == 0
    analyzer.sample(bus(0.5, 1e6, 60.0), 0.15)
    assert values(meter, ":NUM:VAL? 1") == [pytest.approx(math.nan, nan_ok=True)]
    analyzer.sample(bus(0.5, 1e6, 60.0), 0.05)
    assert_reports(values(meter), expected([(0.5, 1e6, 60.0, 0.2)]))
    assert error_of(meter, ":RATE 0.001") == -222
    assert error_of(meter, ":RATE 21") == -222
    assert float(ask(meter, ":RATE?")) == 0.2


def test_rack_bus_values_at_plant_scale_over_a_swinging_load_and_a_sag(meter, analyzer, plant, lock):
    assert error_of(meter, ITEMS) == 0
    with lock:
        plant.load.set_profile(TrainingSwings(period_s=0.4, duty=0.5, edge_s=0.05), at=0.0)
        plant.grid.sag(at=1.03, residual_pu=0.85, duration_s=0.2)
    fed: list[tuple[float, float, float, float]] = []

    def feed(state: BusState, dt: float) -> None:
        analyzer.sample(state, dt)
        fed.append((state.voltage_pu, state.load_served_w, state.frequency_hz, dt))

    run(plant, lock, 1.1, dt=0.01, after_step=feed)
    assert min(voltage_pu for voltage_pu, *_ in fed[-10:]) < 0.9  # the interval just ended saw the sag
    assert_reports(values(meter), expected(fed[-10:]))
    run(plant, lock, 1.0, dt=0.01, after_step=feed)
    assert_reports(values(meter), expected(fed[-10:]))


def test_steady_bus_reads_nominal_voltage_and_the_served_load(meter, analyzer, plant, lock):
    assert error_of(meter, ITEMS) == 0
    run(plant, lock, 0.5, dt=0.05, after_step=analyzer.sample)
    with lock:
        state = plant.bus
        load_w, voltage_pu, frequency_hz = state.load_served_w, state.voltage_pu, state.frequency_hz
    urms, irms, p1, s1, q1, lambda1, fu, p_sigma, *_ = values(meter)
    assert load_w > 1e6
    assert urms == pytest.approx(voltage_pu * NOMINAL_LN_V, rel=1e-5)
    assert p_sigma == pytest.approx(load_w, rel=1e-5)
    assert p1 == pytest.approx(load_w / 3.0, rel=1e-5)
    assert irms == pytest.approx(load_w / 3.0 / (voltage_pu * NOMINAL_LN_V), rel=1e-5)
    assert (s1, q1, lambda1, fu) == (pytest.approx(p1, rel=1e-5), 0.0, 1.0, frequency_hz)


def test_item_configuration_and_its_errors(meter, analyzer):
    assert error_of(meter, ":NUM:NORM:NUM 3;ITEM1 UDC,2;ITEM2 I,SIGMA;ITEM3 FU,SIGMA") == 0
    assert ask(meter, ":NUM:ITEM1?;ITEM2?;ITEM3?") == "UDC,2;I,SIGMA;FU,SIGMA"
    analyzer.sample(bus(1.0, 3e6, 60.0), 0.1)
    udc, i_sigma, fu_sigma = values(meter)
    assert udc == 0.0
    assert i_sigma == pytest.approx(1e6 / NOMINAL_LN_V, rel=1e-5)
    assert math.isnan(fu_sigma)
    assert error_of(meter, ":NUM:NORM:ITEM2 P,4") == -222
    assert error_of(meter, ":NUM:NORM:ITEM2 P,SIGMAX") == -224
    assert error_of(meter, ":NUM:NORM:ITEM2 P") == -109
    assert error_of(meter, ":NUM:NORM:ITEM2 NONE,1") == -108
    assert error_of(meter, ":NUM:NORM:ITEM2 WATTS,1") == -224
    assert error_of(meter, ":NUM:NORM:ITEM0 P,1") == -114
    assert error_of(meter, ":NUM:NORM:ITEM256 P,1") == -114
    assert error_of(meter, ":NUM:NORM:NUM 256") == -222
    assert error_of(meter, ":NUM:FORM FLOAT") == -224
    assert error_of(meter, ":COMM:HEAD ON") == -221
    assert error_of(meter, ":COMM:HEAD OFF") == 0
    assert ask(meter, ":NUM:ITEM2?") == "I,SIGMA"
    assert error_of(meter, ":NUM:NORM:ITEM2 NONE") == 0
    assert ask(meter, ":NUM:VAL?") == "0.00000E+00,NAN,NAN"


def test_voltage_event_log_shows_the_plants_events(meter, plant, lock):
    with lock:
        plant.grid.sag(at=0.2, residual_pu=0.75, duration_s=0.3)
        plant.grid.sag(at=0.8, residual_pu=1.15, duration_s=0.1)
        plant.grid.outage(at=1.5, duration_s=0.1)
    run(plant, lock, 0.4)
    assert ask(meter, ":EVENt:COUNt?") == "1"
    kind, start_s, duration_s, residual_pu = ask(meter, ":EVEN:DATA? 1").split(",")
    assert (kind, float(start_s), float(residual_pu)) == ("DIP", pytest.approx(0.2), pytest.approx(0.75))
    assert float(duration_s) == pytest.approx(plant.t - 0.2)  # in progress, as it stands
    run(plant, lock, 1.5)
    with lock:
        events = list(plant.voltage_events.events)
    assert [event.kind.value for event in events] == ["dip", "swell", "interruption"]
    assert ask(meter, ":EVEN:COUN?") == "3"
    for k, event in enumerate(events, start=1):
        assert ask(meter, f":EVEN:DATA? {k}") == (
            f"{event.kind.value.upper()},{event.start_s!r},{event.duration_s!r},{event.residual_pu!r}"
        )
    assert error_of(meter, ":EVEN:DATA? 4") == -222
    assert error_of(meter, ":EVENt:CLEar") == 0
    assert ask(meter, ":EVEN:COUN?") == "0"
    with lock:
        assert len(plant.voltage_events.events) == 3  # the plant's log is untouched


def test_clearing_hides_events_that_started_before_it(meter, plant, lock):
    with lock:
        plant.grid.sag(at=0.2, residual_pu=0.75, duration_s=0.3)
        plant.grid.sag(at=0.8, residual_pu=0.8, duration_s=0.1)
    run(plant, lock, 0.3)
    assert error_of(meter, ":EVEN:CLE") == 0  # the dip in progress goes too
    run(plant, lock, 0.7)
    assert ask(meter, ":EVEN:COUN?") == "1"
    assert ask(meter, ":EVEN:DATA? 1").startswith("DIP,0.8")


def test_reset_restores_defaults_and_forgets_data(meter, analyzer):
    assert error_of(meter, ITEMS + ";:RATE 0.5") == 0
    analyzer.sample(bus(1.0, 3e6, 60.0), 0.5)
    assert error_of(meter, "*RST") == 0
    assert ask(meter, ":NUM:NUM?;ITEM8?;:RATE?") == "15;NONE;0.1"
    assert ask(meter, ":NUM:VAL? 1") == "NAN"


def _plant_state(plant) -> tuple:
    return dataclasses.astuple(plant.bus), len(plant.voltage_events.events), plant.load.power_cap_w, plant.t


FUZZ_HEADERS = [
    ":COMM:REM", ":COMMunicate:HEADer", ":NUM:FORM", ":NUM:NORM:NUM", ":NUM:NUM", ":NUM:NORM:ITEM1",
    ":NUM:ITEM255", ":NUM:NORM:ITEM300", ":NUM:NORM:VAL", ":NUMERIC:VALUE", ":RATE", ":INP:WIR", ":EVEN:COUN",
    ":EVEN:DATA", ":EVEN:CLE",
]  # fmt: skip
FUZZ_WORDS = ["ON", "OFF", "ASC", "FLO", "URMS", "IRMS", "P", "S", "LAMBDA", "FU", "NONE", "SIGMA", "1", "3"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(message=scpi_messages(FUZZ_HEADERS, FUZZ_WORDS))
def test_random_commands_never_break_it_nor_touch_the_plant(meter, plant, lock, message):
    with lock:
        before = _plant_state(plant)
    send(meter, message)
    with lock:
        assert _plant_state(plant) == before
    assert meter.query("*IDN?") == IDENTITY
