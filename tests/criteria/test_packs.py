"""fault_isolation: a pack the instruments see faulted must be off the bus within the deadline."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.criteria.packs import fault_isolation
from harness.trace import PACK_FAULT, PACK_ISOLATED, Trace

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
