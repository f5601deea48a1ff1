"""Steady-power criteria on synthetic traces that sit just inside and just outside each limit."""

import json
import math

import numpy as np
import pytest

from drivers.controller_link import ControllerMode
from harness.criteria import CRITERIA, judge
from harness.criteria.power import (
    frequency_band,
    grid_band_energy,
    grid_ramp,
    isolation_current,
    itic,
    load_served,
    resync,
    rocof,
    settle_time,
    soc_bounds,
)
from harness.sim.voltage_events import VoltageEvent, VoltageEventKind
from harness.trace import (
    BUS_FREQUENCY_HZ,
    BUS_VOLTAGE_PU,
    CONTROLLER_MODE,
    FLEET_SOC,
    GRID_W,
    LOAD_DEMAND_W,
    LOAD_SERVED_W,
    PACK_CURRENT_A,
    PACK_ISOLATED,
    PACK_SOC,
    POWER_CAP_W,
    BreakerClose,
    Trace,
)

DIP, SWELL, INTERRUPTION = VoltageEventKind.DIP, VoltageEventKind.SWELL, VoltageEventKind.INTERRUPTION
T = np.arange(0.0, 20.0, 0.01)


def events_trace(*events: VoltageEvent) -> Trace:
    return Trace([0.0, 30.0], {}, voltage_events=events)


def itic_of(kind, residual_pu, duration_s, **limits):
    return itic(events_trace(VoltageEvent(kind, 1.0, duration_s, residual_pu)), **limits)


@pytest.mark.parametrize(
    ("kind", "residual_pu", "allowed_s"),
    [
        (INTERRUPTION, 0.0, 0.020),
        (DIP, 0.69, 0.020),
        (DIP, 0.75, 0.5),
        (DIP, 0.85, 10.0),
        (SWELL, 1.15, 0.5),
        (SWELL, 1.3, 0.003),
        (SWELL, 1.7, 0.002),  # on the 200 % @ 1 ms -> 140 % @ 3 ms line
    ],
)
def test_itic_margin_is_the_time_left_on_the_curve(kind, residual_pu, allowed_s):
    inside = itic_of(kind, residual_pu, 0.9 * allowed_s)
    assert inside.passed
    assert inside.limit == pytest.approx(allowed_s, rel=1e-9)
    assert inside.margin == pytest.approx(0.1 * allowed_s, rel=1e-6)
    outside = itic_of(kind, residual_pu, 1.1 * allowed_s)
    assert not outside.passed
    assert outside.margin == pytest.approx(-0.1 * allowed_s, rel=1e-6)


def test_itic_event_exactly_on_a_vertex_passes():
    assert itic_of(DIP, 0.70, 0.5).passed
    assert itic_of(INTERRUPTION, 0.0, 0.020).passed


def test_itic_judges_the_worst_of_several_events():
    verdict = itic(
        events_trace(
            VoltageEvent(DIP, 1.0, 0.3, 0.8),
            VoltageEvent(INTERRUPTION, 5.0, 0.025, 0.0),
            VoltageEvent(SWELL, 9.0, 0.1, 1.15),
        )
    )
    assert not verdict.passed
    assert verdict.when == pytest.approx((5.0, 5.025))
    assert "1 outside" in verdict.detail
    assert itic(events_trace()).passed


def test_semi_f47_profile_is_stricter_beyond_one_second():
    assert itic_of(DIP, 0.85, 2.0).passed
    assert not itic_of(DIP, 0.85, 2.0, profile="semi_f47").passed
    assert itic_of(DIP, 0.85, 0.99, profile="semi_f47").passed
    with pytest.raises(ValueError):
        itic_of(DIP, 0.85, 2.0, profile="cbema")


def test_holdup_tightens_the_zero_voltage_allowance():
    assert itic_of(INTERRUPTION, 0.0, 0.015, holdup_s=0.016).passed
    verdict = itic_of(INTERRUPTION, 0.0, 0.017, holdup_s=0.016)
    assert not verdict.passed and verdict.margin == pytest.approx(-0.001)


def power_trace(served_w, cap_w=None) -> Trace:
    channels = {LOAD_DEMAND_W: np.full(T.size, 1e6), LOAD_SERVED_W: served_w}
    if cap_w is not None:
        channels[POWER_CAP_W] = cap_w
    return Trace(T, channels)


@pytest.mark.parametrize(("gap_s", "passed"), [(0.09, True), (0.11, False)])
def test_load_served_counts_unserved_energy(gap_s, passed):
    served = np.where((T >= 1.0) & (1.0 + gap_s - 1e-9 > T), 0.9e6, 1e6)
    verdict = load_served(power_trace(served), max_unserved_j=10e3, hold_up_s=0.0)
    assert verdict.passed is passed
    assert verdict.measured == pytest.approx(0.1e6 * gap_s)
    assert verdict.margin == pytest.approx(10e3 - 0.1e6 * gap_s)
    assert "worst deficit 100000 W at 1 s" in verdict.detail


@pytest.mark.parametrize(("gap_s", "unserved_j"), [(0.01, 0.0), (0.015, 0.0), (0.05, 34e3), (2.0, 1.984e6)])
def test_load_served_lets_the_psu_hold_up_bridge_a_short_gap(gap_s, unserved_j):
    """A transfer gap shorter than the PSUs' hold-up leaves the GPUs powered; a longer one does not,
    and only what exceeds the hold-up is unserved."""
    t = np.arange(0.0, 5.0, 0.001)
    served = np.where((t >= 1.0) & (1.0 + gap_s - 1e-9 > t), 0.0, 1e6)
    verdict = load_served(Trace(t, {LOAD_DEMAND_W: np.full(t.size, 1e6), LOAD_SERVED_W: served}))
    assert verdict.measured == pytest.approx(unserved_j, abs=1.0)
    assert verdict.passed is (unserved_j == 0.0)
    assert f"ridden through on PSU hold-up {min(gap_s, 0.016) * 1e6:g} J" in verdict.detail


def test_load_served_counts_capped_energy_apart_and_ignores_meter_error():
    capped = (T >= 2.0) & (T < 3.0 - 1e-9)
    cap = np.where(capped, 0.8e6, np.nan)
    served = np.where(capped, 0.8e6, 0.995e6)  # 0.5 % low: within the 1 % deadband
    verdict = load_served(power_trace(served, cap))
    assert verdict.passed and verdict.measured == 0.0
    assert "capped 202000 J" in verdict.detail  # 1 s capped, and the interval the cap was lifted in
    assert not load_served(power_trace(served, cap), deadband_fraction=0.001).passed


@pytest.mark.parametrize(("late_samples", "unserved_j"), [(1, 0.0), (2, 2e3)])
def test_a_lifted_cap_holds_over_the_interval_it_was_lifted_in(late_samples, unserved_j):
    """The analyzer's sample after the cap is lifted averages an interval the cap was still in force
    over; a draw still capped one sample later is unserved."""
    cap = np.where((T >= 2.0) & (T < 3.0 - 1e-9), 0.8e6, np.nan)
    served = np.where((T >= 2.0) & (late_samples * 0.01 > T - 3.0 + 0.005), 0.8e6, 1e6)
    verdict = load_served(power_trace(served, cap), hold_up_s=0.0)
    assert verdict.measured == pytest.approx(unserved_j)


def frequency_trace(frequency_hz, voltage_pu=None) -> Trace:
    volts = np.ones(T.size) if voltage_pu is None else voltage_pu
    return Trace(T, {BUS_FREQUENCY_HZ: frequency_hz, BUS_VOLTAGE_PU: volts})


@pytest.mark.parametrize(("nadir_hz", "margin_hz"), [(59.31, 0.01), (59.29, -0.01)])
def test_frequency_band_margin_against_the_nadir(nadir_hz, margin_hz):
    frequency = np.where((T > 5.0) & (T < 6.0), nadir_hz, 60.0)
    verdict = frequency_band(frequency_trace(frequency))
    assert verdict.passed is (margin_hz > 0)
    assert verdict.margin == pytest.approx(margin_hz)
    assert verdict.limit == 59.3


def test_frequency_band_ignores_a_dead_bus():
    dead = (T > 5.0) & (T < 6.0)
    trace = frequency_trace(np.where(dead, 0.0, 60.0), np.where(dead, 0.0, 1.0))
    assert frequency_band(trace).passed
    assert not frequency_band(trace, alive_pu=-1.0).passed


@pytest.mark.parametrize(("slope", "passed"), [(2.9, True), (3.1, False)])
def test_rocof_against_three_hz_per_second(slope, passed):
    frequency = 60.0 - slope * np.clip(T - 5.0, 0.0, 0.5)
    verdict = rocof(frequency_trace(frequency))
    assert verdict.passed is passed
    assert verdict.margin == pytest.approx(3.0 - slope, abs=1e-6)


def test_rocof_ignores_frequency_jumps_on_a_dead_bus():
    dead = (T > 5.0) & (T < 6.0)
    trace = frequency_trace(np.where(dead, 0.0, 60.0), np.where(dead, 0.0, 1.0))
    assert rocof(trace).passed
    assert rocof(trace).measured == 0.0


@pytest.mark.parametrize(("ramp_w_per_s", "passed"), [(0.9e6, True), (1.1e6, False)])
def test_grid_ramp_against_a_mw_per_second_limit(ramp_w_per_s, passed):
    grid = 2e6 + ramp_w_per_s * np.clip(T - 5.0, 0.0, 3.0)
    verdict = grid_ramp(Trace(T, {GRID_W: grid}), limit_w_per_s=1e6)
    assert verdict.passed is passed
    assert verdict.margin == pytest.approx(1e6 - ramp_w_per_s, rel=1e-6)


def swing_trace(grid_swing_w, drift_w=0.0) -> Trace:
    t = np.arange(0.0, 60.0, 0.01)
    tone = np.sin(2 * np.pi * 1.0 * t)
    load = 5e6 + 1e6 * tone
    grid = 5e6 + grid_swing_w * tone + drift_w * np.sin(2 * np.pi * 0.02 * t)
    return Trace(t, {GRID_W: grid, LOAD_SERVED_W: load})


@pytest.mark.parametrize(("share", "passed"), [(0.19, True), (0.21, False)])
def test_grid_band_energy_share_of_the_load_swing(share, passed):
    verdict = grid_band_energy(swing_trace(1e6 * math.sqrt(share)))
    assert verdict.passed is passed
    assert verdict.measured == pytest.approx(share, rel=1e-6)
    assert verdict.margin == pytest.approx(0.2 - share, abs=1e-6)


def test_grid_band_energy_ignores_slow_drift_and_needs_a_long_enough_trace():
    assert grid_band_energy(swing_trace(0.0, drift_w=2e6)).measured < 0.01
    with pytest.raises(ValueError, match="10 s"):
        grid_band_energy(swing_trace(0.0), window=(0.0, 5.0))


def soc_trace(fleet, pack=None, mode=None) -> Trace:
    channels = {FLEET_SOC: fleet}
    if pack is not None:
        channels[PACK_SOC] = pack
    if mode is not None:
        channels[CONTROLLER_MODE] = mode
    return Trace(T, channels)


@pytest.mark.parametrize(("low_soc", "margin"), [(0.051, 0.001), (0.049, -0.001)])
def test_soc_bounds_fleet_minimum(low_soc, margin):
    fleet = np.linspace(0.5, low_soc, T.size)
    verdict = soc_bounds(soc_trace(fleet))
    assert verdict.passed is (margin > 0)
    assert verdict.margin == pytest.approx(margin)


def test_soc_bounds_packs_and_the_islanded_reserve():
    fleet = np.full(T.size, 0.5)
    packs = np.tile([0.5, 0.94], (T.size, 1))
    assert soc_bounds(soc_trace(fleet, packs)).passed
    packs[500, 1] = 0.951
    verdict = soc_bounds(soc_trace(fleet, packs))
    assert not verdict.passed and verdict.limit == 0.95 and "pack" in verdict.detail
    low = np.full(T.size, 0.149)
    grid_connected = np.full(T.size, int(ControllerMode.GRID_CONNECTED))
    assert soc_bounds(soc_trace(low, mode=grid_connected)).passed
    islanded = np.where(T > 10.0, int(ControllerMode.ISLANDED), grid_connected)
    verdict = soc_bounds(soc_trace(low, mode=islanded))
    assert not verdict.passed and verdict.margin == pytest.approx(-0.001)
    assert "reserve" in verdict.detail


@pytest.mark.parametrize(("leak_a", "passed"), [(0.4, True), (0.6, False)])
def test_isolation_current_after_the_deadline(leak_a, passed):
    isolated = np.zeros((T.size, 2), dtype=bool)
    isolated[T >= 1.0, 1] = True
    current = np.full((T.size, 2), 80.0)
    current[T >= 1.0, 1] = np.where(T[T >= 1.0] < 1.45, 60.0, leak_a)  # still falling before the deadline
    verdict = isolation_current(Trace(T, {PACK_ISOLATED: isolated, PACK_CURRENT_A: current}))
    assert verdict.passed is passed
    assert verdict.margin == pytest.approx(0.5 - leak_a)
    assert "pack 1" in verdict.detail


def test_isolation_current_counts_from_each_new_isolation():
    isolated = np.zeros((T.size, 1), dtype=bool)
    isolated[(T >= 1.0) & (T < 2.0)] = True
    isolated[T >= 5.0] = True
    current = np.where(isolated, 0.0, 50.0)
    current[(T >= 5.0) & (T < 5.3)] = 20.0  # within 0.5 s of the second isolation
    assert isolation_current(Trace(T, {PACK_ISOLATED: isolated, PACK_CURRENT_A: current})).passed


def transition_trace(voltage_back_s, frequency_back_s) -> Trace:
    voltage = np.where((T >= 5.0) & (voltage_back_s > T), 0.9, 1.0)
    frequency = np.where((T >= 5.0) & (frequency_back_s > T), 59.5, 60.0)
    return Trace(T, {BUS_VOLTAGE_PU: voltage, BUS_FREQUENCY_HZ: frequency})


@pytest.mark.parametrize(("within_s", "passed"), [(2.6, True), (2.4, False)])
def test_settle_time_takes_the_slower_of_voltage_and_frequency(within_s, passed):
    verdict = settle_time(transition_trace(6.0, 7.5), after_s=5.0, within_s=within_s)
    assert verdict.passed is passed
    assert verdict.measured == pytest.approx(2.5, abs=1e-6)
    assert verdict.margin == pytest.approx(within_s - 2.5, abs=1e-6)
    assert settle_time(transition_trace(7.5, 6.0), after_s=5.0, within_s=within_s).passed is passed


def closes_trace(*closes: BreakerClose) -> Trace:
    return Trace([0.0, 30.0], {}, breaker_closes=closes)


def test_resync_margin_is_the_share_of_the_tightest_limit():
    inside = resync(closes_trace(BreakerClose(3.0, 0.049, -0.09, 9.5, True)))
    assert inside.passed and inside.measured == pytest.approx(0.98)  # dV is the tightest
    outside = resync(
        closes_trace(BreakerClose(3.0, 0.01, 0.01, 9.5, True), BreakerClose(8.0, 0.01, 0.0, -10.5, True))
    )
    assert not outside.passed and outside.margin == pytest.approx(-0.05) and outside.when == (8.0, 8.0)
    assert not resync(closes_trace(BreakerClose(3.0, 0.0, 0.0, 0.0, False))).passed
    assert resync(closes_trace()).passed


def test_judge_runs_a_named_criterion_and_names_the_known_ones():
    verdict = judge(closes_trace(BreakerClose(3.0, 0.0, 0.0, 11.0, True)), "resync", max_dtheta_deg=12.0)
    assert verdict.passed
    assert json.dumps(verdict.to_json(), allow_nan=False)
    with pytest.raises(KeyError, match="itic"):
        judge(closes_trace(), "itic_curve")
    assert set(CRITERIA) >= {"itic", "load_served", "resync", "settle_time"}


def test_window_narrows_what_a_criterion_judges():
    frequency = np.where((T > 5.0) & (T < 6.0), 59.0, 60.0)
    assert not frequency_band(frequency_trace(frequency)).passed
    assert frequency_band(frequency_trace(frequency), window=(7.0, 20.0)).passed


def transfer_trace(dropout_s: float, low_pu: float = 0.85, low_s: float = 1.0) -> Trace:
    """Sampled at 1 ms: 0 pu for ``dropout_s``, then ``low_pu`` for ``low_s``; logged as one event."""
    t = np.arange(0.0, 3.0, 0.001)
    start, dropped, recovered = 1.0, 1.0 + dropout_s, 1.0 + dropout_s + low_s
    voltage = np.where((t >= start - 1e-9) & (t < dropped - 1e-9), 0.0, 1.0)
    voltage = np.where((t >= dropped - 1e-9) & (t < recovered - 1e-9), low_pu, voltage)
    logged = VoltageEvent(INTERRUPTION, start, recovered - start, 0.0)
    return Trace(t, {BUS_VOLTAGE_PU: voltage}, voltage_events=[logged])


def test_itic_levels_judges_time_below_each_threshold_not_the_rectangle():
    trace = transfer_trace(0.005)
    assert not itic(trace).passed  # the log's rectangle: 0 pu for 1.005 s
    levels = itic(trace, method="levels")
    assert levels.passed
    assert levels.margin == pytest.approx(0.015, abs=1e-6)  # 5 ms of the 20 ms below 0.7 pu
    late = itic(transfer_trace(0.025), method="levels")
    assert not late.passed and late.margin == pytest.approx(-0.005, abs=1e-6)
    assert not itic(transfer_trace(0.005, low_pu=0.75, low_s=0.6), method="levels").passed
    assert itic(transfer_trace(0.005, low_pu=0.75, low_s=0.4), method="levels").passed
    with pytest.raises(ValueError, match="method"):
        itic(trace, method="rectangles")


def test_itic_levels_semi_f47_and_swells():
    assert not itic(transfer_trace(0.005), method="levels", profile="semi_f47").passed  # below 50 %
    t = np.arange(0.0, 2.0, 0.001)
    swell = Trace(t, {BUS_VOLTAGE_PU: np.where((t >= 0.5) & (t < 0.9), 1.15, 1.0)})
    assert itic(swell, method="levels").passed
    longer = Trace(t, {BUS_VOLTAGE_PU: np.where((t >= 0.5) & (t < 1.1), 1.15, 1.0)})
    assert not itic(longer, method="levels").passed
