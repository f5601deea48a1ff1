"""Ageing a second-life fleet with the BLAST-Lite models: reference numbers, invariants, knees, stretches."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.sim.chemistry import Chemistry
from harness.sim.degradation import (
    DEGRADATION_SCALAR_SIGMA_LN,
    LMO_RESISTANCE_EXPONENT,
    DutyCycle,
    FleetAgeing,
    age_fleet,
    capacity_retention,
)
from harness.sim.fleet import MAKES, FleetSpec, draw_fleet

YEAR_D = 365.0
SEEDS = st.integers(0, 2**32 - 1)
ALL_MAKES_EQUALLY = {make.name: 1.0 for make in MAKES}

# reference/domain.md §3.2: BLAST-Lite 1.1.1, daily 0.2 -> 0.9 -> 0.2 SOC cycle, 0.7 EFC/day, 17-33 °C.
REFERENCE_RETENTION = {
    Chemistry.NMC: (0.969, 0.944, 0.925),
    Chemistry.LMO: (0.898, 0.782, 0.682),
    Chemistry.LFP: (0.958, 0.927, 0.903),
}
# We run a constant 25 °C. Arrhenius rates are convex in temperature, so a 17-33 °C swing ages a
# little faster than its mean: we may retain up to 0.02 more, never noticeably less.
RETENTION_TOLERANCE = 0.02


@st.composite
def duties(draw: st.DrawFn) -> DutyCycle:
    dod = draw(st.floats(0.0, 1.0))
    return DutyCycle(
        efc_per_day=draw(st.floats(0.0, 3.0)),
        depth_of_discharge=dod,
        mean_soc=draw(st.floats(dod / 2, 1.0 - dod / 2)),
        temperature_c=draw(st.floats(-20.0, 60.0)),
        c_rate=draw(st.floats(0.0, 2.0)),
    )


@pytest.fixture(scope="module")
def mixed_fleet() -> FleetSpec:
    """Every make, with many knee packs, so every code path of every chemistry is exercised."""
    return draw_fleet(90, seed=11, mix=ALL_MAKES_EQUALLY, knee_fraction=0.2)


@pytest.fixture(scope="module")
def default_fleet() -> FleetSpec:
    return draw_fleet()


@pytest.fixture(scope="module")
def default_fleet_after_5_years(default_fleet) -> FleetSpec:
    return age_fleet(default_fleet, 5 * YEAR_D)


# --- reference numbers ----------------------------------------------------------------------------


@pytest.mark.parametrize("chemistry", list(Chemistry), ids=lambda c: c.name)
def test_fresh_cell_retention_matches_blast_lite_reference(chemistry):
    q = capacity_retention(chemistry, np.array([1, 3, 5]) * YEAR_D, DutyCycle())
    reference = np.array(REFERENCE_RETENTION[chemistry])
    assert np.all(np.abs(q - reference) <= RETENTION_TOLERANCE), (q, reference)
    assert np.all(q >= reference - 0.002), (q, reference)


@pytest.mark.parametrize("chemistry", list(Chemistry), ids=lambda c: c.name)
def test_hotter_duty_ages_faster(chemistry):
    years = np.array([1, 3, 5]) * YEAR_D
    cool = capacity_retention(chemistry, years, DutyCycle(temperature_c=25.0))
    hot = capacity_retention(chemistry, years, DutyCycle(temperature_c=40.0))
    assert np.all(hot < cool)


@pytest.mark.parametrize("chemistry", list(Chemistry), ids=lambda c: c.name)
def test_more_cycling_ages_faster(chemistry):
    calm = capacity_retention(chemistry, 3 * YEAR_D, DutyCycle(efc_per_day=0.3))
    busy = capacity_retention(chemistry, 3 * YEAR_D, DutyCycle(efc_per_day=1.5))
    assert busy < calm


@settings(max_examples=100, deadline=None)
@given(
    chemistry=st.sampled_from(list(Chemistry)),
    duty=duties(),
    days=st.lists(st.floats(0.0, 20 * YEAR_D), min_size=1, max_size=8),
)
def test_fresh_cell_retention_starts_at_one_and_never_rises(chemistry, duty, days):
    days = np.sort(np.array(days))
    q = capacity_retention(chemistry, days, duty)
    assert np.all((q > 0) & (q <= 1.0))
    assert np.all(np.diff(q) <= 1e-12)
    assert capacity_retention(chemistry, 0.0, duty) == 1.0


@settings(max_examples=50, deadline=None)
@given(duty=duties(), days=st.floats(0.0, 20 * YEAR_D))
def test_leaf_fade_rises_with_temperature_for_any_duty(duty, days):
    hotter = replace(duty, temperature_c=min(duty.temperature_c + 5, 60))
    assert capacity_retention(Chemistry.LMO, days, hotter) <= capacity_retention(Chemistry.LMO, days, duty)


# --- invariants of fleet ageing -------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(duty=duties(), seed=SEEDS)
def test_zero_days_changes_nothing(mixed_fleet, duty, seed):
    aged = age_fleet(mixed_fleet, 0.0, duty, seed)
    np.testing.assert_array_equal(aged.soh, mixed_fleet.soh)
    np.testing.assert_array_equal(aged.resistance_ratio, mixed_fleet.resistance_ratio)


@settings(max_examples=100, deadline=None)
@given(duty=duties(), seed=SEEDS, days=st.floats(0.0, 20 * YEAR_D))
def test_ageing_never_restores_capacity_nor_lowers_resistance(mixed_fleet, duty, seed, days):
    aged = age_fleet(mixed_fleet, days, duty, seed)
    assert np.all(np.isfinite(aged.soh) & np.isfinite(aged.resistance_ratio))
    assert np.all((aged.soh > 0) & (aged.soh <= mixed_fleet.soh))
    assert np.all(aged.resistance_ratio >= mixed_fleet.resistance_ratio)


@settings(max_examples=100, deadline=None)
@given(duty=duties(), seed=SEEDS, days=st.tuples(st.floats(0.0, 20 * YEAR_D), st.floats(0.0, 20 * YEAR_D)))
def test_more_days_never_give_more_capacity(mixed_fleet, duty, seed, days):
    shorter, longer = (age_fleet(mixed_fleet, d, duty, seed) for d in sorted(days))
    assert np.all(longer.soh <= shorter.soh + 1e-12)
    assert np.all(longer.resistance_ratio >= shorter.resistance_ratio - 1e-12)


@settings(max_examples=30, deadline=None)
@given(seed=SEEDS)
def test_ageing_is_deterministic_for_a_seed(mixed_fleet, seed):
    first, second = (age_fleet(mixed_fleet, 3 * YEAR_D, seed=seed) for _ in range(2))
    np.testing.assert_array_equal(first.soh, second.soh)
    np.testing.assert_array_equal(first.resistance_ratio, second.resistance_ratio)
    other = age_fleet(mixed_fleet, 3 * YEAR_D, seed=seed + 1)
    assert not np.array_equal(first.soh, other.soh)


def test_ageing_keeps_every_other_field(mixed_fleet):
    aged = age_fleet(mixed_fleet, YEAR_D)
    np.testing.assert_array_equal(aged.capacity_new_ah, mixed_fleet.capacity_new_ah)
    np.testing.assert_array_equal(aged.knee, mixed_fleet.knee)
    np.testing.assert_array_equal(aged.weakest_cell, mixed_fleet.weakest_cell)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"efc_per_day": -0.1},
        {"c_rate": -1.0},
        {"depth_of_discharge": 1.2},
        {"mean_soc": 0.9, "depth_of_discharge": 0.5},
        {"temperature_c": 80.0},
    ],
)
def test_impossible_duty_cycles_are_refused(kwargs):
    with pytest.raises(ValueError):
        DutyCycle(**kwargs)


def test_negative_days_are_refused(mixed_fleet):
    with pytest.raises(ValueError):
        age_fleet(mixed_fleet, -1.0)
    with pytest.raises(ValueError):
        capacity_retention(Chemistry.NMC, -1.0, DutyCycle())


# --- the second-life start ------------------------------------------------------------------------


def test_leaf_fade_multiplies_the_present_soh(mixed_fleet):
    ageing = FleetAgeing.start(mixed_fleet, seed=4)
    aged = ageing.advance(4 * YEAR_D).fleet
    leaf = (mixed_fleet.chemistry == Chemistry.LMO) & ~mixed_fleet.knee
    expected = capacity_retention(Chemistry.LMO, ageing.degradation_scalar[leaf] * 4 * YEAR_D, DutyCycle())
    np.testing.assert_allclose(aged.soh[leaf] / mixed_fleet.soh[leaf], expected, rtol=1e-12)


def test_leaf_resistance_follows_its_capacity(mixed_fleet):
    aged = age_fleet(mixed_fleet, 4 * YEAR_D)
    leaf = (mixed_fleet.chemistry == Chemistry.LMO) & ~mixed_fleet.knee
    np.testing.assert_allclose(
        aged.resistance_ratio[leaf] / mixed_fleet.resistance_ratio[leaf],
        (aged.soh[leaf] / mixed_fleet.soh[leaf]) ** -LMO_RESISTANCE_EXPONENT,
        rtol=1e-12,
    )


def test_a_pack_at_full_health_follows_the_fresh_cell_curve(mixed_fleet):
    new = mixed_fleet.aged(np.ones(mixed_fleet.n), np.ones(mixed_fleet.n))
    ageing = FleetAgeing.start(new, seed=9)
    aged = ageing.advance(5 * YEAR_D).fleet
    for chemistry in (Chemistry.NMC, Chemistry.LFP):
        packs = (new.chemistry == chemistry) & ~new.knee
        scaled_days = ageing.degradation_scalar[packs] * 5 * YEAR_D
        np.testing.assert_allclose(aged.soh[packs], capacity_retention(chemistry, scaled_days, DutyCycle()))


def test_weaker_nmc_packs_fade_slower_along_their_power_law():
    # Equivalent age: a pack further down the decelerating LLI curve loses less in the same time.
    # The same seed gives pack i the same degradation scalar in both fleets.
    packs = draw_fleet(50, seed=0, mix={"tesla-model-3-lr": 1.0}, knee_fraction=0.0)
    healthier = packs.aged(np.full(50, 0.9), packs.resistance_ratio)
    weaker = packs.aged(np.full(50, 0.6), packs.resistance_ratio)
    lost_healthier = healthier.soh - age_fleet(healthier, 5 * YEAR_D, seed=1).soh
    lost_weaker = weaker.soh - age_fleet(weaker, 5 * YEAR_D, seed=1).soh
    assert np.all(lost_healthier > lost_weaker)


def test_degradation_scalar_spreads_identical_packs():
    one_pack = draw_fleet(1, seed=3, mix={"chevrolet-bolt-66": 1.0}, knee_fraction=0.0)
    clones = one_pack.subset(np.zeros(2000, dtype=int))
    ageing = FleetAgeing.start(clones, seed=5)
    loss = clones.soh - ageing.advance(3 * YEAR_D).fleet.soh
    assert np.log(ageing.degradation_scalar).std() == pytest.approx(DEGRADATION_SCALAR_SIGMA_LN, abs=0.02)
    assert np.all(np.diff(loss[np.argsort(ageing.degradation_scalar)]) >= 0)  # bigger scalar, more loss
    assert loss.std() / loss.mean() > 0.1


# --- stretches of ageing --------------------------------------------------------------------------


def test_ageing_in_stretches_equals_one_stretch(mixed_fleet):
    start = FleetAgeing.start(mixed_fleet, seed=2)
    whole = start.advance(5 * YEAR_D).fleet
    pieces = start.advance(100.0).advance(2 * YEAR_D).advance(5 * YEAR_D - 100.0 - 2 * YEAR_D)
    assert pieces.days == pytest.approx(5 * YEAR_D)
    np.testing.assert_allclose(pieces.fleet.soh, whole.soh, rtol=1e-9)
    np.testing.assert_allclose(pieces.fleet.resistance_ratio, whole.resistance_ratio, rtol=1e-9)


def test_stressors_may_change_between_stretches(mixed_fleet):
    start = FleetAgeing.start(mixed_fleet, seed=2)
    cool, hot = DutyCycle(temperature_c=20.0), DutyCycle(temperature_c=40.0)
    cool_year = start.advance(YEAR_D, cool).advance(YEAR_D, cool).fleet
    hot_summer = start.advance(YEAR_D, hot).advance(YEAR_D, cool).fleet
    # Only LLI fade is faster when hot: Kokam's LAM midpoint moves *later* with temperature, so a hot
    # year delays a knee.
    normal = ~mixed_fleet.knee
    assert np.all(hot_summer.soh[normal] < cool_year.soh[normal])


# --- knees and the whole fleet --------------------------------------------------------------------


def test_knee_packs_fall_off_a_cliff_in_every_chemistry(mixed_fleet):
    aged = age_fleet(mixed_fleet, 5 * YEAR_D)
    kept = aged.soh / mixed_fleet.soh
    growth = aged.resistance_ratio / mixed_fleet.resistance_ratio
    for chemistry in Chemistry:
        packs = mixed_fleet.chemistry == chemistry
        knee, normal = packs & mixed_fleet.knee, packs & ~mixed_fleet.knee
        assert knee.any() and normal.any()
        assert np.median(kept[knee]) < 0.5 < np.median(kept[normal])
        assert np.median(growth[knee]) > 2 * np.median(growth[normal])


def test_knee_packs_fade_more(default_fleet, default_fleet_after_5_years):
    lost = 1.0 - default_fleet_after_5_years.soh / default_fleet.soh
    assert lost[default_fleet.knee].mean() > 5 * lost[~default_fleet.knee].mean()


def test_knee_does_not_fire_in_the_first_months(default_fleet):
    aged = age_fleet(default_fleet, 90.0)
    assert np.all(aged.soh[default_fleet.knee] > 0.97 * default_fleet.soh[default_fleet.knee])


def test_five_years_at_the_default_duty_gives_a_plausible_fleet(default_fleet, default_fleet_after_5_years):
    before, after = default_fleet, default_fleet_after_5_years
    assert 0.02 <= before.soh.mean() - after.soh.mean() <= 0.08
    assert 0.66 <= after.soh.mean() <= 0.74
    assert np.mean(after.soh < 0.55) < 0.1  # mostly the Leaf packs and the knees
    kept = after.soh / before.soh
    lost = {c: 1 - np.mean(kept, where=(before.chemistry == c) & ~before.knee) for c in Chemistry}
    assert lost[Chemistry.LMO] > 5 * max(lost[Chemistry.NMC], lost[Chemistry.LFP])
    growth = after.resistance_ratio / before.resistance_ratio
    assert 1.0 < np.median(growth) < 1.5
