"""The second-life fleet draw: catalogue, distributions, the reference plant, FleetSpec behaviour."""

from __future__ import annotations

import math
from dataclasses import fields
from statistics import NormalDist

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.sim.chemistry import CELL_V_MIN, CELL_V_NOMINAL, Chemistry, ocv_cell, table_offsets
from harness.sim.fleet import (
    DEFAULT_MIX,
    MAKE_INDEX,
    MAKES,
    REFERENCE_PLANT,
    FleetSpec,
    draw_fleet,
)

LARGE_N = 20_000
SEEDS = st.integers(0, 2**32 - 1)


def truncated_normal_moments(mean: float, sd: float, low: float, high: float) -> tuple[float, float]:
    """Mean and sd of normal(mean, sd) truncated to [low, high] (textbook closed form)."""
    unit = NormalDist()
    a, b = (low - mean) / sd, (high - mean) / sd
    mass = unit.cdf(b) - unit.cdf(a)
    shift = (unit.pdf(a) - unit.pdf(b)) / mass
    variance = 1 + (a * unit.pdf(a) - b * unit.pdf(b)) / mass - shift**2
    return mean + sd * shift, sd * math.sqrt(variance)


@pytest.fixture(scope="module")
def large_fleet() -> FleetSpec:
    return draw_fleet(LARGE_N, seed=7)


@pytest.fixture(scope="module")
def default_fleet() -> FleetSpec:
    return draw_fleet()


# --- catalogue ------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", MAKES, ids=lambda m: m.name)
def test_catalogue_values_are_plausible_for_an_ev_pack(make):
    assert 20e3 <= make.nameplate_wh <= 100e3
    assert 300.0 <= make.nominal_voltage_v <= 400.0
    assert make.series_cells == (106 if make.chemistry is Chemistry.LFP else 96)
    assert 0.02 <= make.r0_new_ohm + make.r1_new_ohm <= 0.15
    assert 20.0 <= make.tau_s <= 60.0
    assert 100.0 <= make.max_charge_a <= make.max_discharge_a <= 1000.0
    assert 250e3 <= make.thermal_mass_j_per_k <= 700e3  # 250-700 kg of pack at ~1000 J/kg/K
    assert 0.005 <= make.thermal_resistance_k_per_w <= 0.1


def test_catalogue_mixes_chemistries_and_sizes():
    chemistries = {make.chemistry for make in MAKES}
    assert chemistries == set(Chemistry)
    sizes_kwh = [make.nameplate_wh / 1e3 for make in MAKES]
    assert min(sizes_kwh) < 40 and max(sizes_kwh) > 60


def test_nameplate_is_capacity_times_nominal_voltage():
    leaf = MAKES[MAKE_INDEX["nissan-leaf-24"]]
    assert leaf.nominal_voltage_v == pytest.approx(360.0)
    assert leaf.nameplate_wh == pytest.approx(66.2 * 360.0)


def test_default_mix_names_known_makes_and_sums_to_one():
    assert set(DEFAULT_MIX) <= set(MAKE_INDEX)
    assert sum(DEFAULT_MIX.values()) == pytest.approx(1.0)


# --- the reference plant --------------------------------------------------------------------------


def test_default_fleet_reproduces_the_reference_plant(default_fleet):
    assert default_fleet.n == REFERENCE_PLANT.packs
    total_wh = default_fleet.nameplate_wh.sum()
    assert total_wh == pytest.approx(REFERENCE_PLANT.nameplate_wh, rel=0.03)
    assert total_wh / default_fleet.n == pytest.approx(78e3, rel=0.03)


def test_default_fleet_has_well_over_the_plant_power_at_mid_soc(default_fleet):
    assert default_fleet.rated_discharge_power_w(0.5).sum() >= 2 * REFERENCE_PLANT.power_w


def test_rated_power_falls_with_soc_and_resistance(default_fleet):
    mid = default_fleet.rated_discharge_power_w(0.5)
    assert np.all(default_fleet.rated_discharge_power_w(0.1) <= mid)
    worn = default_fleet.aged(default_fleet.soh, 3 * default_fleet.resistance_ratio)
    assert np.all(worn.rated_discharge_power_w(0.5) < mid)
    assert np.all(mid > 0)


def test_rated_power_respects_the_cell_under_voltage_limit(default_fleet):
    # With 50x the resistance the DC drop, not the current rating, sets the power: the average cell
    # sits exactly at its under-voltage limit, so the power is current x floor voltage.
    weak = default_fleet.aged(default_fleet.soh, 50 * default_fleet.resistance_ratio)
    power_w = weak.rated_discharge_power_w(0.5)
    resistance_ohm = (weak.r0_new_ohm + weak.r1_new_ohm) * weak.resistance_ratio
    ocv_v = weak.series_cells * ocv_cell(table_offsets(weak.chemistry), np.full(weak.n, 0.5))
    floor_v = weak.series_cells * CELL_V_MIN[weak.chemistry]
    current_a = (ocv_v - floor_v) / resistance_ohm
    limited = current_a < weak.max_discharge_a * weak.soh
    assert limited.any()
    np.testing.assert_allclose(power_w[limited], (current_a * floor_v)[limited], rtol=1e-9)


# --- determinism and shape ------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(seed=SEEDS, n=st.integers(1, 300))
def test_draw_is_deterministic_for_a_seed(seed, n):
    first, second = draw_fleet(n, seed), draw_fleet(n, seed)
    for field in fields(FleetSpec):
        np.testing.assert_array_equal(getattr(first, field.name), getattr(second, field.name))


def test_different_seeds_give_different_fleets():
    assert not np.array_equal(draw_fleet(50, 1).soh, draw_fleet(50, 2).soh)


def test_per_make_fields_come_from_the_catalogue(default_fleet):
    for i, make in enumerate(MAKES):
        packs = default_fleet.make == i
        assert np.all(default_fleet.chemistry[packs] == make.chemistry)
        assert np.all(default_fleet.capacity_new_ah[packs] == make.capacity_new_ah)
        assert np.all(default_fleet.r0_new_ohm[packs] == make.r0_new_ohm)
        assert np.all(default_fleet.thermal_mass_j_per_k[packs] == make.thermal_mass_j_per_k)
    np.testing.assert_allclose(
        default_fleet.nominal_voltage_v,
        default_fleet.series_cells * CELL_V_NOMINAL[default_fleet.chemistry],
    )


# --- make shares ----------------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(seed=SEEDS, n=st.integers(1, 2000))
def test_make_counts_are_the_shares_rounded(seed, n):
    counts = np.bincount(draw_fleet(n, seed).make, minlength=len(MAKES))
    assert counts.sum() == n
    for name, share in DEFAULT_MIX.items():
        assert abs(counts[MAKE_INDEX[name]] - share * n) < 1.0


def test_custom_mix_draws_only_its_makes_and_normalises_shares():
    fleet = draw_fleet(100, 3, mix={"nissan-leaf-24": 3.0, "tesla-model-3-sr-lfp": 1.0})
    counts = np.bincount(fleet.make, minlength=len(MAKES))
    assert counts[MAKE_INDEX["nissan-leaf-24"]] == 75
    assert counts[MAKE_INDEX["tesla-model-3-sr-lfp"]] == 25
    assert set(fleet.chemistry.tolist()) == {Chemistry.LMO, Chemistry.LFP}


def test_makes_are_shuffled_not_blocked(default_fleet):
    # Contiguous blocks would put every Leaf on the same few strings of the plant.
    assert np.count_nonzero(np.diff(default_fleet.make)) > default_fleet.n / 2


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n": 0},
        {"mix": {"no-such-car": 1.0}},
        {"mix": {"nissan-leaf-24": -1.0, "nissan-leaf-40": 2.0}},
        {"mix": {"nissan-leaf-24": 0.0}},
        {"soh_resistance_correlation": 1.0},
        {"knee_fraction": 1.5},
        {"soh_sd": 0.0},
        {"soh_bounds": (0.9, 0.6)},
    ],
)
def test_bad_arguments_are_refused(kwargs):
    with pytest.raises(ValueError):
        draw_fleet(**kwargs)


# --- state of health ------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    seed=SEEDS,
    n=st.integers(1, 500),
    mean=st.floats(0.6, 0.9),
    sd=st.floats(0.01, 0.2),
    width=st.tuples(st.floats(0.02, 0.3), st.floats(0.02, 0.3)),
)
def test_soh_stays_inside_its_bounds(seed, n, mean, sd, width):
    bounds = (mean - width[0], min(mean + width[1], 1.0))
    soh = draw_fleet(n, seed, soh_mean=mean, soh_sd=sd, soh_bounds=bounds).soh
    assert np.all((soh >= bounds[0]) & (soh <= bounds[1]))


def test_soh_has_the_moments_of_the_truncated_normal(large_fleet):
    expected_mean, expected_sd = truncated_normal_moments(0.75, 0.06, 0.55, 0.92)
    assert expected_mean == pytest.approx(0.7497, abs=1e-4)  # the parent's 0.75, pulled down by the cut
    assert expected_sd == pytest.approx(0.0592, abs=1e-4)
    # Standard errors at n = 20,000: mean 0.06/141 = 4e-4, sd 0.06/200 = 3e-4; allow 4 of them.
    assert large_fleet.soh.mean() == pytest.approx(expected_mean, abs=1.7e-3)
    assert large_fleet.soh.std(ddof=1) == pytest.approx(expected_sd, abs=1.2e-3)


def test_soh_follows_the_truncated_normal_cdf(large_fleet):
    unit = NormalDist()
    low_p, high_p = unit.cdf((0.55 - 0.75) / 0.06), unit.cdf((0.92 - 0.75) / 0.06)
    points = np.array([0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9])
    expected = np.array([(unit.cdf((x - 0.75) / 0.06) - low_p) / (high_p - low_p) for x in points])
    empirical = np.searchsorted(np.sort(large_fleet.soh), points) / LARGE_N
    # Kolmogorov-Smirnov 1 % critical value at n = 20,000 is 1.63/sqrt(n) = 0.0115.
    assert np.max(np.abs(empirical - expected)) < 0.0115


@settings(max_examples=20, deadline=None)
@given(seed=SEEDS, mean=st.floats(0.65, 0.85), sd=st.floats(0.02, 0.1))
def test_soh_mean_tracks_its_parameters(seed, mean, sd):
    bounds = (0.55, 0.92)
    expected_mean, expected_sd = truncated_normal_moments(mean, sd, *bounds)
    soh = draw_fleet(4000, seed, soh_mean=mean, soh_sd=sd, soh_bounds=bounds).soh
    assert soh.mean() == pytest.approx(expected_mean, abs=5 * expected_sd / math.sqrt(4000))


# --- resistance ratio and its tie to SoH ----------------------------------------------------------


def test_resistance_ratio_is_lognormal_with_the_requested_median(large_fleet):
    log_ratio = np.log(large_fleet.resistance_ratio)
    # The log-median's standard error is 1.25 x 0.25 / sqrt(20,000) = 0.0022.
    assert np.median(log_ratio) == pytest.approx(math.log(1.5), abs=0.009)
    assert log_ratio.std(ddof=1) == pytest.approx(0.25, abs=0.005)


def test_weaker_packs_have_higher_resistance(large_fleet):
    rho = np.corrcoef(large_fleet.soh, np.log(large_fleet.resistance_ratio))[0, 1]
    # Copula rho -0.7 on the normal scores; the truncation of SoH barely changes it (se 0.004).
    assert rho == pytest.approx(-0.7, abs=0.02)
    weakest, strongest = np.quantile(large_fleet.soh, [0.1, 0.9])
    assert np.median(large_fleet.resistance_ratio[large_fleet.soh <= weakest]) > np.median(
        large_fleet.resistance_ratio[large_fleet.soh >= strongest]
    )


@settings(max_examples=20, deadline=None)
@given(seed=SEEDS, rho=st.floats(-0.9, 0.9))
def test_correlation_follows_its_parameter(seed, rho):
    fleet = draw_fleet(20_000, seed, soh_resistance_correlation=rho)
    measured = np.corrcoef(fleet.soh, np.log(fleet.resistance_ratio))[0, 1]
    # Standard error (1 - rho^2)/sqrt(20000) <= 0.0071, so 0.04 is over five of them: hypothesis tries
    # many seeds, and a tolerance of three or four standard errors is crossed by chance (seed 26 did).
    # The truncation shrinks |rho| by ~1 %.
    assert measured == pytest.approx(rho, abs=0.04)


# --- cells and knees ------------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(seed=SEEDS, n=st.integers(1, 300))
def test_weakest_cell_below_mean_and_strongest_above(seed, n):
    fleet = draw_fleet(n, seed)
    assert np.all(fleet.weakest_cell < 1.0)
    assert np.all(fleet.strongest_cell > 1.0)


@pytest.mark.parametrize("sigma", [0.02, 0.04])
def test_cell_extremes_scale_with_the_spread(sigma):
    fleet = draw_fleet(2000, 5, cell_spread=(sigma, sigma), mix={"tesla-model-3-lr": 1.0})
    # The expected extreme of 96 standard normals is about 2.5 (standard error here ~0.01).
    assert np.mean(1.0 - fleet.weakest_cell) / sigma == pytest.approx(2.5, abs=0.12)
    assert np.mean(fleet.strongest_cell - 1.0) / sigma == pytest.approx(2.5, abs=0.12)


@settings(max_examples=30, deadline=None)
@given(seed=SEEDS, n=st.integers(1, 2000), fraction=st.floats(0.0, 0.2))
def test_knee_marks_the_requested_fraction(seed, n, fraction):
    knee = draw_fleet(n, seed, knee_fraction=fraction).knee
    assert knee.dtype == bool
    assert knee.sum() == round(fraction * n)


# --- FleetSpec behaviour --------------------------------------------------------------------------


def test_subset_keeps_the_selected_packs(default_fleet):
    mask = default_fleet.chemistry == Chemistry.LFP
    subset = default_fleet.subset(mask)
    assert subset.n == mask.sum()
    for field in fields(FleetSpec):
        np.testing.assert_array_equal(getattr(subset, field.name), getattr(default_fleet, field.name)[mask])
    assert subset.nameplate_wh.sum() == pytest.approx(default_fleet.nameplate_wh[mask].sum())


def test_aged_changes_only_health_and_resistance(default_fleet):
    soh = default_fleet.soh * 0.9
    aged = default_fleet.aged(soh, default_fleet.resistance_ratio * 1.2)
    np.testing.assert_array_equal(aged.soh, soh)
    np.testing.assert_allclose(aged.usable_wh, default_fleet.nameplate_wh * soh)
    for field in fields(FleetSpec):
        if field.name not in {"soh", "resistance_ratio"}:
            assert getattr(aged, field.name) is getattr(default_fleet, field.name)


def test_fleetspec_refuses_ragged_arrays(default_fleet):
    with pytest.raises(ValueError, match="soh"):
        default_fleet.aged(default_fleet.soh[:-1], default_fleet.resistance_ratio)
