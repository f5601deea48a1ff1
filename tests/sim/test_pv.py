"""The PV plant: sun, clear sky against the pvlib figures of domain.md §5.2, clouds, clipping, curtailment."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.sim.pv import SolarPlant, solar_position, tracker_rotation_deg

RENO = (39.53, -119.81)
HOUR = 3600.0
# Solar noon at Reno is about 20:00 UTC, local solar midnight about 08:00 UTC.
NIGHT_START = 4.0 * HOUR  # 04:00 UTC = 21:00 PDT
NIGHT_END = 11.5 * HOUR  # 11:30 UTC = 04:30 PDT


def plant_on(day: datetime, **kwargs) -> SolarPlant:
    return SolarPlant(start_utc=day.replace(tzinfo=UTC), **kwargs)


def daily_kwh_m2(fn, step_s: float = 60.0, start_s: float = 8 * HOUR) -> float:
    steps = int(86400 / step_s)
    return sum(fn(start_s + k * step_s) for k in range(steps)) * step_s / 3.6e6


def test_sun_at_the_solstices_reaches_the_textbook_noon_elevation():
    for day, declination_deg in ((datetime(2026, 6, 21), 23.44), (datetime(2026, 12, 21), -23.44)):
        noon_zenith = min(
            solar_position(
                (day + timedelta(hours=19, minutes=m)).replace(tzinfo=UTC), *RENO
            ).apparent_zenith_deg
            for m in range(0, 120)
        )
        assert noon_zenith == pytest.approx(RENO[0] - declination_deg, abs=0.1)


def test_equation_of_time_moves_solar_noon():
    """Early November the sun crosses the meridian at Greenwich ~16.4 min before 12:00 UTC."""
    before = solar_position(datetime(2026, 11, 3, 11, 42, 30, tzinfo=UTC), 51.5, 0.0)
    after = solar_position(datetime(2026, 11, 3, 11, 44, 40, tzinfo=UTC), 51.5, 0.0)
    assert before.azimuth_deg < 180.0 < after.azimuth_deg


def test_solar_position_needs_an_aware_time():
    with pytest.raises(ValueError, match="timezone"):
        solar_position(datetime(2026, 1, 1), *RENO)


@pytest.mark.parametrize(
    "zenith_deg, azimuth_deg, rotation_deg",
    [(0.0, 180.0, 0.0), (30.0, 90.0, 30.0), (30.0, 270.0, -30.0), (65.0, 90.0, 60.0), (89.9, 270.0, -0.2)],
)
def test_tracker_follows_limits_and_flattens_at_low_sun(zenith_deg, azimuth_deg, rotation_deg):
    assert tracker_rotation_deg(zenith_deg, azimuth_deg) == pytest.approx(rotation_deg, abs=0.05)


@settings(max_examples=100, deadline=None)
@given(st.floats(70.0, 89.9), st.sampled_from([90.0, 270.0]))
def test_backtracking_sits_on_the_row_shading_boundary(zenith_deg, azimuth_deg):
    """Backtracked, a row's shadow just reaches the next row: cos(sun - tracker) = cos(sun) / GCR."""
    sun_rad = math.radians(zenith_deg if azimuth_deg == 90.0 else -zenith_deg)
    tracker_rad = math.radians(tracker_rotation_deg(zenith_deg, azimuth_deg))
    if math.cos(sun_rad) < 0.35:
        assert math.cos(sun_rad - tracker_rad) == pytest.approx(math.cos(sun_rad) / 0.35, abs=1e-9)


def test_night_is_exactly_zero():
    plant = plant_on(datetime(2026, 6, 21))
    for k in range(int((NIGHT_END - NIGHT_START) / 61.7)):
        t = NIGHT_START + k * 61.7
        assert plant.available_w(t) == 0.0
        assert plant.irradiance_w_m2(t) == 0.0
        assert plant.clear_sky_ghi_w_m2(t) == 0.0


def test_output_peaks_at_solar_noon_and_is_symmetric():
    plant = plant_on(datetime(2026, 6, 21), dc_ac_ratio=0.8)
    samples = {t: plant.clear_sky_ghi_w_m2(t) for t in range(12 * 3600, 28 * 3600, 60)}
    peak_t = max(samples, key=samples.__getitem__)
    assert abs(peak_t - 20.03 * HOUR) < 10 * 60
    assert samples[peak_t] == pytest.approx(1000.0, rel=0.1)
    for offset in (2 * 3600, 4 * 3600):
        assert samples[peak_t - offset] == pytest.approx(samples[peak_t + offset], rel=0.02)
    assert (
        plant.available_w(peak_t)
        > plant.available_w(peak_t - 3 * 3600)
        > plant.available_w(peak_t - 6 * 3600)
    )


@pytest.mark.parametrize(
    "month, ghi, tracker_poa, fixed_poa",
    [(6, 8.77, 11.89, 8.19), (12, 2.80, 4.43, 5.68)],
)
def test_mid_month_daily_irradiation_matches_pvlib_figures(month, ghi, tracker_poa, fixed_poa):
    """domain.md §5.2 monthly means (pvlib Ineichen; tracker ±60° GCR 0.35; fixed 30° south).

    The turbidity table is fitted to the GHI figures, so GHI gets the brief's 12 %; the plane-of-array
    figures are not fitted (they test position, tracking and transposition) and get 2 %.
    """
    day = datetime(2026, month, 15)
    tracker = plant_on(day)
    fixed = plant_on(day, tracking=False)
    assert daily_kwh_m2(tracker.clear_sky_ghi_w_m2) == pytest.approx(ghi, rel=0.12)
    assert daily_kwh_m2(tracker.irradiance_w_m2) == pytest.approx(tracker_poa, rel=0.02)
    assert daily_kwh_m2(fixed.irradiance_w_m2) == pytest.approx(fixed_poa, rel=0.02)


def test_tracking_beats_fixed_tilt_in_summer_but_not_at_midwinter_noon():
    summer_tracker, summer_fixed = (
        plant_on(datetime(2026, 6, 15)),
        plant_on(datetime(2026, 6, 15), tracking=False),
    )
    assert daily_kwh_m2(summer_tracker.irradiance_w_m2, 300) > 1.3 * daily_kwh_m2(
        summer_fixed.irradiance_w_m2, 300
    )
    winter_tracker, winter_fixed = (
        plant_on(datetime(2026, 12, 15)),
        plant_on(datetime(2026, 12, 15), tracking=False),
    )
    noon = 20 * HOUR
    assert winter_fixed.irradiance_w_m2(noon) > winter_tracker.irradiance_w_m2(noon)


def test_a_cloud_ramps_in_holds_and_clears():
    clear, cloudy = SolarPlant(), SolarPlant()
    cloudy.cloud(at=100.0, depth=0.6, duration_s=60.0, ramp_s=10.0)
    ratios = [
        cloudy.irradiance_w_m2(t) / clear.irradiance_w_m2(t)
        for t in (99.0, 105.0, 110.0, 150.0, 165.0, 171.0)
    ]
    assert ratios == pytest.approx([1.0, 0.7, 0.4, 0.4, 0.7, 1.0])
    assert cloudy.available_w(130.0) < clear.available_w(130.0)


def test_overlapping_clouds_multiply_their_transmission():
    clear, cloudy = SolarPlant(), SolarPlant()
    cloudy.cloud(at=0.0, depth=0.5, duration_s=100.0, ramp_s=0.0)
    cloudy.cloud(at=50.0, depth=0.5, duration_s=100.0, ramp_s=0.0)
    assert cloudy.irradiance_w_m2(75.0) == pytest.approx(0.25 * clear.irradiance_w_m2(75.0))
    assert cloudy.irradiance_w_m2(125.0) == pytest.approx(0.5 * clear.irradiance_w_m2(125.0))


def test_inverter_clips_at_the_ac_rating():
    clipped = SolarPlant()  # DC/AC 1.3 at a June noon: clipped
    assert clipped.available_w(1800.0) == clipped.rated_ac_w
    linear = SolarPlant(dc_ac_ratio=0.8, derate=0.9)
    poa = linear.irradiance_w_m2(1800.0)
    assert linear.available_w(1800.0) == pytest.approx(poa / 1000.0 * 12e6 * 0.8 * 0.9)


@settings(max_examples=100, deadline=None)
@given(st.floats(0.0, 2 * 86400.0), st.floats(1.0, 2.0), st.floats(0.1, 1.0))
def test_available_power_stays_within_zero_and_rating(t, dc_ac_ratio, derate):
    plant = SolarPlant(dc_ac_ratio=dc_ac_ratio, derate=derate)
    assert 0.0 <= plant.available_w(t) <= plant.rated_ac_w


def test_curtailment_caps_output_not_availability():
    plant = SolarPlant()
    plant.curtailment_w = 5e6
    assert plant.available_w(1800.0) == 12e6
    assert plant.output_w(1800.0) == 5e6
    plant.curtailment_w = None
    assert plant.output_w(1800.0) == 12e6
    with pytest.raises(ValueError, match="curtailment_w"):
        plant.curtailment_w = -1.0


def test_query_order_does_not_change_values():
    forward, backward = SolarPlant(), SolarPlant()
    times = [k * 0.37 for k in range(200)]
    ahead = [forward.irradiance_w_m2(t) for t in times]
    behind = [backward.irradiance_w_m2(t) for t in reversed(times)][::-1]
    assert ahead == pytest.approx(behind, rel=1e-12)


def test_random_clouds_are_deterministic_for_a_seed():
    def trace(seed: int) -> list[float]:
        plant = SolarPlant(seed=seed)
        assert plant.scatter_clouds(0.0, 3600.0, per_hour=30.0) > 5
        return [plant.available_w(t) for t in range(0, 3600, 7)]

    assert trace(1) == trace(1)
    assert trace(1) != trace(2)
    assert min(trace(1)) < SolarPlant(seed=1).available_w(0.0)


def test_start_time_may_be_given_in_any_timezone():
    pdt = timezone(timedelta(hours=-7))
    local = SolarPlant(start_utc=datetime(2026, 6, 21, 12, 0, tzinfo=pdt))
    utc = SolarPlant(start_utc=datetime(2026, 6, 21, 19, 0, tzinfo=UTC))
    assert local.irradiance_w_m2(100.0) == utc.irradiance_w_m2(100.0)


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"rated_ac_w": -1.0}, "rated_ac_w"),
        ({"dc_ac_ratio": -1.0}, "dc_ac_ratio"),
        ({"latitude_deg": 91.0}, "latitude_deg"),
        ({"longitude_deg": 181.0}, "longitude_deg"),
        ({"derate": 1.5}, "derate"),
        ({"start_utc": datetime(2026, 6, 21, 19)}, "start_utc"),
    ],
)
def test_invalid_plant_parameters(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        SolarPlant(**kwargs)


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"depth": 1.5}, "depth"),
        ({"duration_s": 0.0}, "duration_s"),
        ({"ramp_s": -1.0}, "ramp_s"),
    ],
)
def test_invalid_clouds(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        SolarPlant().cloud(**({"at": 0.0, "depth": 0.5, "duration_s": 10.0} | kwargs))
