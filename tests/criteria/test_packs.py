"""fault_isolation: a pack the instruments see faulted must be off the bus within the deadline.
silent_bms: a pack whose BMS link is cut must be out of service within the deadline.
sharing_balance: the fleet drains evenly, judged on synthetic recorder traces."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.chroma_17040 import InsertedFault
from harness.criteria import judge
from harness.criteria.packs import fault_isolation, sharing_balance, silent_bms
from harness.sequence import CRITERIA_NAMES
from harness.trace import (
    INJECTED_UNKNOWN,
    PACK_CURRENT_A,
    PACK_FAULT,
    PACK_INJECTED,
    PACK_ISOLATED,
    PACK_SOC,
    Trace,
)

T = np.arange(0.0, 30.0, 0.1)


def pack_trace(fault_at_s: float | None, isolated_at_s: float | None, packs: int = 3) -> Trace:
    fault = np.zeros((T.size, packs), dtype=np.int64)
    isolated = np.zeros((T.size, packs), dtype=bool)
    if fault_at_s is not None:
        fault[fault_at_s - 1e-9 <= T, 1] = 16
    if isolated_at_s is not None:
        isolated[isolated_at_s - 1e-9 <= T, 1] = True
    return Trace(T, {PACK_FAULT: fault, PACK_ISOLATED: isolated})


@pytest.mark.parametrize(
    ("isolated_at_s", "connected_s", "passed"),
    [(10.0, 0.0, True), (11.9, 1.9, True), (12.5, 2.5, False), (None, 29.9 - 10.0, False)],
)
def test_time_connected_after_the_fault_against_the_deadline(isolated_at_s, connected_s, passed):
    verdict = fault_isolation(pack_trace(10.0, isolated_at_s), deadline_s=2.0)
    assert verdict.measured == pytest.approx(connected_s)
    assert verdict.passed is passed
    assert "pack 1 faulted at 10 s" in verdict.detail


def test_no_fault_passes_with_the_whole_margin():
    verdict = fault_isolation(pack_trace(None, None))
    assert verdict.passed and verdict.measured == 0.0 and verdict.detail == "no pack faulted"


def test_an_isolated_pack_that_then_faults_counts_nothing():
    assert fault_isolation(pack_trace(15.0, 5.0)).measured == 0.0


@settings(max_examples=100, deadline=None)
@given(fault_at=st.floats(0.0, 29.0), delay=st.floats(0.0, 40.0))
def test_measured_never_exceeds_what_the_trace_can_show(fault_at, delay):
    verdict = fault_isolation(pack_trace(fault_at, fault_at + delay), deadline_s=2.0)
    assert 0.0 <= verdict.measured <= T[-1] - fault_at + 0.1
    assert verdict.passed is (verdict.measured <= 2.0)


# ---------------------------------------------------------------------------------------- silent_bms

COMMS = int(InsertedFault.COMMS)
SERVING_A = 11.3
"""What a pack carries in service: the library's bms-comms-loss pack at 90 % of rack load."""


def silent_trace(
    lost: tuple[float, float | None] | None,
    out_at_s: float | None,
    *,
    derate: bool = False,
    other_bits: int = 0,
    packs: int = 3,
) -> Trace:
    """Pack 1's BMS link cut over ``lost`` = (from, to; None: to the end); from ``out_at_s`` the pack is
    isolated (or, with ``derate``, connected at 0.2 A). The other packs serve throughout."""
    injected = np.full((T.size, packs), other_bits, dtype=np.int64)
    isolated = np.zeros((T.size, packs), dtype=bool)
    current = np.full((T.size, packs), SERVING_A)
    if lost is not None:
        start_s, end_s = lost
        until_s = np.inf if end_s is None else end_s - 1e-9
        cut = (start_s - 1e-9 <= T) & (until_s > T)
        injected[cut, 1] |= COMMS
    if out_at_s is not None:
        out = out_at_s - 1e-9 <= T
        current[out, 1] = 0.2 if derate else 0.0
        isolated[out, 1] = not derate
    return Trace(T, {PACK_INJECTED: injected, PACK_ISOLATED: isolated, PACK_CURRENT_A: current})


@pytest.mark.parametrize(
    ("out_at_s", "derate", "served_s", "passed"),
    [
        (10.0, False, 0.0, True),
        (12.0, False, 2.0, True),
        (13.0, True, 3.0, True),
        (15.0, False, 5.0, True),
        (15.1, False, 5.1, False),
        (None, False, 29.9 - 10.0, False),
    ],
)
def test_time_in_service_after_the_link_is_lost_against_the_deadline(out_at_s, derate, served_s, passed):
    verdict = silent_bms(silent_trace((10.0, None), out_at_s, derate=derate), deadline_s=5.0)
    assert verdict.measured == pytest.approx(served_s)
    assert verdict.passed is passed
    assert verdict.margin == pytest.approx(5.0 - served_s)
    assert "pack 1, BMS link lost at 10 s" in verdict.detail
    assert verdict.when == (pytest.approx(10.0), pytest.approx(10.0 + served_s))
    assert set(verdict.evidence) == {"t", PACK_INJECTED, PACK_ISOLATED, PACK_CURRENT_A}


def test_a_derated_pack_must_stay_under_the_current_limit():
    derated = silent_trace((10.0, None), 11.0, derate=True)
    assert silent_bms(derated).passed
    assert not silent_bms(derated, max_current_a=0.1).passed


def test_a_pack_whose_link_returns_is_judged_only_while_it_was_lost():
    back_in_time = silent_trace((10.0, 14.0), None)
    verdict = silent_bms(back_in_time, deadline_s=5.0)
    assert verdict.passed and verdict.measured == pytest.approx(4.0)
    assert not silent_bms(back_in_time, deadline_s=3.9).passed


def test_each_loss_counts_from_its_own_start():
    first = np.array(silent_trace((5.0, 8.0), None).channel(PACK_INJECTED))
    both = first | silent_trace((20.0, None), None).channel(PACK_INJECTED)
    trace = with_channel(silent_trace(None, None), PACK_INJECTED, both)
    verdict = silent_bms(trace)
    assert verdict.measured == pytest.approx(29.9 - 20.0)
    assert "lost at 20 s" in verdict.detail


def test_the_window_judges_a_loss_already_seen_from_its_start():
    trace = silent_trace((10.0, None), 20.0)
    assert not silent_bms(trace).passed
    inside = silent_bms(trace, window=(16.0, 29.9))
    assert inside.passed and inside.measured == pytest.approx(4.0)
    assert silent_bms(trace, window=(0.0, 9.9)).detail == "no BMS link lost"


def test_no_link_lost_passes_whatever_else_was_inserted():
    other = int(InsertedFault.ISOLATION | InsertedFault.DRIFT | InsertedFault.WELD)
    verdict = silent_bms(silent_trace(None, None, other_bits=other))
    assert verdict.passed and verdict.measured == 0.0 and verdict.detail == "no BMS link lost"
    assert verdict.margin == verdict.limit


def test_a_current_that_is_no_number_counts_as_in_service():
    trace = silent_trace((10.0, None), 11.0, derate=True)
    current = np.array(trace.channel(PACK_CURRENT_A))
    current[T > 20.0, 1] = np.nan
    assert silent_bms(with_channel(trace, PACK_CURRENT_A, current)).measured == pytest.approx(29.9 - 10.0)


def test_without_the_emulators_record_of_the_cut_nothing_can_be_judged():
    unknown = with_channel(
        silent_trace(None, None), PACK_INJECTED, np.full((T.size, 3), INJECTED_UNKNOWN, dtype=np.int64)
    )
    missing = Trace(T, {PACK_ISOLATED: np.zeros((T.size, 3), bool), PACK_CURRENT_A: np.zeros((T.size, 3))})
    for trace in (unknown, missing):
        verdict = silent_bms(trace)
        assert not verdict.passed and np.isnan(verdict.measured)
        assert "cannot tell which BMS links are cut" in verdict.detail


def test_silent_bms_is_a_named_criterion():
    trace = silent_trace((10.0, None), 13.0)
    assert judge(trace, "silent_bms", deadline_s=2.5) == silent_bms(trace, deadline_s=2.5)
    assert "silent_bms" in CRITERIA_NAMES


@st.composite
def silent_packs(draw: st.DrawFn) -> Trace:
    """Two packs over 20 s in 0.5 s samples: links cut and restored, isolation and current at random."""
    samples = 40
    t = np.arange(samples) * 0.5
    lost = np.array(draw(st.lists(st.booleans(), min_size=2 * samples, max_size=2 * samples)))
    isolated = np.array(draw(st.lists(st.booleans(), min_size=2 * samples, max_size=2 * samples)))
    current = np.array(
        draw(st.lists(st.sampled_from([0.0, 0.3, 5.0]), min_size=2 * samples, max_size=2 * samples))
    )
    injected = np.where(lost, COMMS, 0).reshape(samples, 2)
    return Trace(
        t,
        {
            PACK_INJECTED: injected,
            PACK_ISOLATED: isolated.reshape(samples, 2),
            PACK_CURRENT_A: current.reshape(samples, 2),
        },
    )


@settings(max_examples=150, deadline=None)
@given(trace=silent_packs(), cut=st.integers(1, 40), pack=st.integers(0, 1), from_sample=st.integers(0, 39))
def test_a_failure_on_a_prefix_stays_and_isolating_a_pack_never_hurts(trace, cut, pack, from_sample):
    """What the fuzzer relies on (it judges the trace so far after every rule): the measure never falls as
    the trace grows. And a controller that isolates a pack sooner never measures worse."""
    whole = silent_bms(trace, deadline_s=2.0)
    prefix = silent_bms(trace, deadline_s=2.0, window=(0.0, float(trace.t[cut - 1])))
    assert prefix.measured <= whole.measured
    assert prefix.passed or not whole.passed
    assert 0.0 <= whole.measured <= trace.end_s - trace.start_s
    isolated = np.array(trace.channel(PACK_ISOLATED))
    isolated[from_sample:, pack] = True
    assert silent_bms(with_channel(trace, PACK_ISOLATED, isolated)).measured <= whole.measured + 1e-12


# ---------------------------------------------------------------------------------------- sharing_balance

SAMPLE_S = 0.1
"""The recorder's fast period; packs are read every READ_S and hold their values in between."""
READ_S = 1.0
RESERVE = 0.15
FLEET_C_RATE_PER_H = 0.085
"""Full rack load on the reference plant: 4 MW from 805 packs of 78 kWh nameplate at SoH 0.75."""


@dataclass(frozen=True)
class Drain:
    """Packs draining at constant power from ``soc``; ``power_w`` per pack, ``usable_wh`` per pack."""

    usable_wh: np.ndarray
    soc: np.ndarray
    power_w: np.ndarray

    def hours_to_reserve(self) -> np.ndarray:
        return (self.soc - RESERVE) * self.usable_wh / self.power_w

    def trace(
        self, duration_s: float, *, resolution: float = 0.0, read_offset_s: float = 0.0, start_s: float = 0.0
    ) -> Trace:
        """What the recorder writes: the true SOC read every second (rounded to ``resolution``), held
        between reads."""
        t = start_s + np.arange(SAMPLE_S, duration_s + SAMPLE_S / 2, SAMPLE_S)
        read_t = start_s + read_offset_s + np.floor((t - start_s - read_offset_s) / READ_S) * READ_S
        soc = self.soc - np.outer(np.maximum(read_t - start_s, 0.0), self.power_w / self.usable_wh / 3600.0)
        if resolution:
            soc = np.round(soc / resolution) * resolution
        current_a = np.broadcast_to(self.power_w / 350.0, soc.shape)
        return Trace(t, {PACK_SOC: soc, PACK_CURRENT_A: current_a, PACK_ISOLATED: np.zeros(soc.shape, bool)})


def mixed_fleet(packs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Usable energy (Wh) of a second-life fleet of 24-100 kWh makes, and SOCs a few % apart."""
    rng = np.random.default_rng(seed)
    usable_wh = rng.choice([24e3, 40e3, 60e3, 66e3, 75e3, 100e3], packs) * rng.uniform(0.55, 0.92, packs)
    return usable_wh, rng.uniform(0.3, 0.9) + rng.uniform(-0.03, 0.03, packs)


def even(usable_wh: np.ndarray, soc: np.ndarray, c_rate_per_h: float = FLEET_C_RATE_PER_H) -> Drain:
    """The fleet's power shared by available energy above the reserve: every pack lasts as long."""
    available_wh = usable_wh * (soc - RESERVE)
    total_w = c_rate_per_h * usable_wh.sum()
    return Drain(usable_wh, soc, total_w * available_wh / available_wh.sum())


def equal(usable_wh: np.ndarray, soc: np.ndarray) -> Drain:
    return Drain(usable_wh, soc, np.full(soc.shape, FLEET_C_RATE_PER_H * usable_wh.sum() / soc.size))


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    duration_s=st.floats(30.0, 60.0),
    load=st.floats(0.7, 1.0),
    resolution=st.sampled_from([0.0, 1e-4]),
    read_offset_s=st.floats(0.0, READ_S),
)
def test_an_even_drain_of_24_packs_measures_far_above_the_limit(
    seed, duration_s, load, resolution, read_offset_s
):
    """The slope's noise (1 s reads held between samples, SOC rounded to 0.01 %) over 30-60 s at 70-100 %
    of full rack load costs an even drain a few % of ratio: far less than the 20 % the limit allows."""
    drain = even(*mixed_fleet(24, seed), c_rate_per_h=load * FLEET_C_RATE_PER_H)
    verdict = sharing_balance(drain.trace(duration_s, resolution=resolution, read_offset_s=read_offset_s))
    assert verdict.passed
    assert verdict.measured >= 0.9
    if not resolution:
        assert verdict.measured == pytest.approx(1.0, abs=0.01)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1), duration_s=st.floats(30.0, 60.0), resolution=st.sampled_from([0.0, 1e-4])
)
def test_an_uneven_drain_measures_its_shortest_over_median_time_to_the_reserve(seed, duration_s, resolution):
    drain = equal(*mixed_fleet(24, seed))
    hours = drain.hours_to_reserve()
    verdict = sharing_balance(drain.trace(duration_s, resolution=resolution))
    assert verdict.measured == pytest.approx(hours.min() / np.median(hours), rel=0.05)
    assert verdict.passed is (verdict.measured >= 0.8)
    named = int(re.match(r"pack (\d+) reaches", verdict.detail)[1])
    assert hours[named] == pytest.approx(hours.min(), rel=0.05)  # the first, within the slope's noise


def test_power_split_equally_over_small_and_large_packs_fails():
    usable_wh = np.array([18e3, 18e3, 75e3, 75e3, 75e3])
    verdict = sharing_balance(equal(usable_wh, np.full(5, 0.5)).trace(60.0))
    assert not verdict.passed
    assert verdict.measured == pytest.approx(18 / 75, rel=0.01)
    assert verdict.margin == pytest.approx(verdict.measured - 0.8)
    assert verdict.unit == "ratio" and verdict.when == (pytest.approx(0.1), pytest.approx(60.0))
    assert set(verdict.evidence) == {"t", PACK_SOC, PACK_CURRENT_A}


def with_channel(trace: Trace, name: str, values: np.ndarray) -> Trace:
    channels = {channel: trace.channel(channel) for channel in trace.channel_names}
    return Trace(trace.t, {**channels, name: values})


def test_only_packs_connected_and_discharging_throughout_are_judged():
    usable_wh = np.array([18e3, 75e3, 75e3, 75e3, 75e3])
    trace = equal(usable_wh, np.full(5, 0.5)).trace(60.0)
    assert not sharing_balance(trace).passed  # the small pack drains four times as fast
    isolated = np.zeros((len(trace), 5), bool)
    isolated[-1, 0] = True
    assert sharing_balance(with_channel(trace, PACK_ISOLATED, isolated)).measured == pytest.approx(1.0)
    current = np.array(trace.channel(PACK_CURRENT_A))
    current[10, 0] = 0.0
    verdict = sharing_balance(with_channel(trace, PACK_CURRENT_A, current))
    assert verdict.measured == pytest.approx(1.0) and "over 4 packs" in verdict.detail


def test_a_pack_at_its_reserve_measures_zero_and_nothing_discharging_cannot_be_judged():
    drain = even(np.array([50e3, 60e3, 70e3]), np.array([0.5, 0.5, 0.5]))
    at_reserve = Drain(drain.usable_wh, np.array([RESERVE, 0.5, 0.5]), np.array([1e3, 4e3, 4e3]))
    assert sharing_balance(at_reserve.trace(30.0)).measured == 0.0
    idle = drain.trace(30.0)
    verdict = sharing_balance(with_channel(idle, PACK_CURRENT_A, np.zeros((len(idle), 3))))
    assert not verdict.passed and np.isnan(verdict.measured)
    assert "nothing to judge" in verdict.detail


def test_the_window_and_the_reserve_are_the_sequences_to_set():
    usable_wh = np.array([18e3, 75e3, 75e3])
    before = equal(usable_wh, np.full(3, 0.5)).trace(20.0)
    after = even(usable_wh, np.array(before.channel(PACK_SOC)[-1])).trace(40.0, start_s=before.end_s)
    joined = Trace(
        np.concatenate([before.t, after.t]),
        {name: np.concatenate([before.channel(name), after.channel(name)]) for name in before.channel_names},
    )
    assert not sharing_balance(joined).passed
    assert sharing_balance(joined, window=(25.0, 60.0)).measured == pytest.approx(1.0, abs=0.01)


def test_times_are_to_the_reserve_judged():
    """Shares even for a 15 % reserve, judged against 5 %: (SOC - 0.05) / (SOC - 0.15) per pack."""
    trace = even(np.array([60e3, 60e3, 60e3]), np.array([0.3, 0.6, 0.9])).trace(60.0)
    assert sharing_balance(trace).measured == pytest.approx(1.0, abs=1e-3)
    lower = sharing_balance(trace, reserve_soc=0.05)
    assert lower.measured == pytest.approx((0.85 / 0.75) / (0.55 / 0.45), rel=1e-3)


def test_sharing_balance_is_a_named_criterion():
    trace = even(np.array([30e3, 90e3]), np.array([0.6, 0.6])).trace(30.0)
    assert judge(trace, "sharing_balance", min_ratio=0.9) == sharing_balance(trace, min_ratio=0.9)
    assert "sharing_balance" in CRITERIA_NAMES
