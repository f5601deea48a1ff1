"""Power sharing across packs: weighted water-filling within limits, and energy-based weights."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from harness.sim.packs import InjectedFault, PackArray
from harness.sim.sharing import available_energy_weights, share_power
from tests.sim.factories import uniform_fleet


@st.composite
def splits(draw):
    n = draw(st.integers(1, 30))
    # Subnormal values are left out: the checks below divide by weights (see the tiny-weight test).
    weight = st.one_of(
        st.floats(0.0, 1e6, allow_subnormal=False),
        st.sampled_from([0.0, -1.0, math.nan, math.inf, -math.inf, 1e-300]),
    )
    limit = st.one_of(st.floats(1e-3, 5e5), st.just(0.0))
    weights = draw(hnp.arrays(float, n, elements=weight))
    discharge = draw(hnp.arrays(float, n, elements=limit))
    charge = draw(hnp.arrays(float, n, elements=limit))
    scale = draw(st.one_of(st.just(0.0), st.floats(1e-9, 1.2)))
    side = discharge if draw(st.booleans()) else charge
    total = scale * side.sum() * (1.0 if side is discharge else -1.0)
    return total, weights, discharge, charge


def usable(weights: np.ndarray) -> np.ndarray:
    return np.isfinite(weights) & (weights > 0.0)


@settings(max_examples=300, deadline=None)
@given(split=splits())
def test_water_filling_invariants(split):
    total, weights, discharge, charge = split
    share = share_power(total, weights, discharge, charge)
    limit = discharge if total >= 0 else charge
    magnitude = share if total >= 0 else -share

    assert share.shape == weights.shape and np.all(np.isfinite(share))
    assert np.all(magnitude >= 0.0), "every pack works in the direction of the total"
    assert np.all(magnitude <= limit), "never beyond a limit"
    assert np.all(share[limit == 0.0] == 0.0), "nothing for a zero-limit pack"
    if abs(total) <= limit.sum():
        assert share.sum() == pytest.approx(total, rel=1e-9, abs=1e-6)
    else:
        assert np.array_equal(magnitude, limit)
        return

    weighted = usable(weights) & (limit > 0)
    if weighted.any():
        assert np.all(magnitude[~weighted & (limit > 0)] == 0.0) or np.all(
            magnitude[weighted] == limit[weighted]
        ), "zero weights wait until the weighted packs are at their limits"
    # Water-filling: the packs below their cap share one level; a capped pack's cap is below that level.
    # (Levels are compared where shares are far from underflow.)
    relative = np.where(weighted, weights, 0.0) / max(weights[weighted].max(initial=0.0), 1e-300)
    reference = weighted & (magnitude < limit) & (relative >= 1e-12)
    if reference.any():
        level = magnitude[reference] / relative[reference]
        assert np.allclose(level, level.max(), rtol=1e-9, atol=0.0)
        capped = weighted & (magnitude == limit)
        assert np.all(limit[capped] <= level.max() * relative[capped] * (1 + 1e-9))


def test_a_strong_pack_is_not_dragged_down_to_a_weak_packs_limit():
    share = share_power(80e3, np.array([1.0, 1.0]), np.array([10e3, 100e3]), np.zeros(2))
    assert share.tolist() == pytest.approx([10e3, 70e3])


def test_the_remainder_follows_the_weights_of_the_packs_with_headroom():
    share = share_power(90e3, np.array([1.0, 1.0, 2.0]), np.array([10e3, 100e3, 100e3]), np.zeros(3))
    assert share.tolist() == pytest.approx([10e3, 80e3 / 3, 160e3 / 3])


def test_without_any_usable_weight_the_split_follows_the_limits():
    weights = np.array([0.0, -3.0, math.nan, math.inf])
    share = share_power(-30e3, weights, np.zeros(4), np.array([10e3, 20e3, 30e3, 0.0]))
    assert share.tolist() == pytest.approx([-5e3, -10e3, -15e3, 0.0])


def test_zero_weight_packs_take_only_what_the_weighted_packs_cannot():
    share = share_power(50e3, np.array([1.0, 0.0, 0.0]), np.array([20e3, 10e3, 30e3]), np.zeros(3))
    assert share.tolist() == pytest.approx([20e3, 7.5e3, 22.5e3])


def test_tiny_weights_keep_their_proportions_without_overflow():
    weights = np.array([5e-324, 1e-310, 2e-310, 0.0])
    share = share_power(6.0, weights, np.array([10.0, 1.5, 10.0, 10.0]), np.zeros(4))
    assert share.tolist() == pytest.approx([0.0, 1.5, 4.5, 0.0], abs=1e-9)
    # Normalised, the tiny weights' caps sit beyond the largest float: their order must still be right.
    share = share_power(-839.5, np.array([1e-300, 1e-300, 4e5]), np.zeros(3), np.array([1259.0, 419.0, 1.0]))
    assert share.tolist() == pytest.approx([-419.5, -419.0, -1.0])


def test_charging_uses_the_charge_limits():
    share = share_power(-40e3, np.array([1.0, 3.0]), np.array([1e6, 1e6]), np.array([50e3, 20e3]))
    assert share.tolist() == pytest.approx([-20e3, -20e3])


def test_a_total_beyond_the_limits_puts_every_pack_at_its_limit():
    share = share_power(1e6, np.array([1.0, 5.0, 0.0]), np.array([10e3, 20e3, 30e3]), np.zeros(3))
    assert share.tolist() == [10e3, 20e3, 30e3]


def test_nothing_asked_nothing_given_and_a_non_finite_total_is_refused():
    assert share_power(0.0, np.ones(3), np.ones(3), np.ones(3)).tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError):
        share_power(math.nan, np.ones(3), np.ones(3), np.ones(3))


def test_available_energy_weights_count_energy_above_the_floor_or_room_below_the_ceiling():
    packs = PackArray(uniform_fleet(4), soc=np.array([0.5, 0.03, 0.99, 0.5]))
    packs.inject(InjectedFault.CONTACTOR_FAILED_OPEN, 3)
    capacity_j = 200.0 * 0.8 * 3600.0 * 96 * 3.65
    discharge = available_energy_weights(packs, discharging=True)
    charge = available_energy_weights(packs, discharging=False, soc_max=0.95)
    assert discharge.tolist() == pytest.approx([0.45 * capacity_j, 0.0, 0.94 * capacity_j, 0.0])
    assert charge.tolist() == pytest.approx([0.45 * capacity_j, 0.92 * capacity_j, 0.0, 0.0])


def test_energy_weighted_sharing_empties_packs_together():
    soc = np.array([0.9, 0.5, 0.3])
    fleet = uniform_fleet(3, soh=np.array([0.6, 0.8, 0.9]))

    def remaining_after_drain(energy_weighted: bool) -> np.ndarray:
        packs = PackArray(fleet, soc=soc)
        for _ in range(150):
            discharge_w, charge_w = packs.power_limits()
            weights = available_energy_weights(packs, discharging=True) if energy_weighted else np.ones(3)
            packs.step(10.0, share_power(60e3, weights, discharge_w, charge_w))
        return (packs.soc - 0.05) / (soc - 0.05)

    remaining = remaining_after_drain(energy_weighted=True)
    assert 0.2 < remaining.mean() < 0.8 and np.ptp(remaining) < 0.05
    assert np.ptp(remaining_after_drain(energy_weighted=False)) > 0.3, (
        "an equal split empties the small pack first"
    )
