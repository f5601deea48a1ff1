"""The on-site PV plant: solar position, clear-sky irradiance, tracking, transient clouds, inverter limit.

Equations, re-implemented from their published forms:
- solar position: NOAA solar calculator (Meeus-based series for declination, equation of time and
  earth-sun distance) with NOAA's refraction correction; the sun is up when its apparent elevation > 0;
- clear sky: Ineichen & Perez (2002) with Kasten & Young (1989) air mass and the barometric pressure of
  the site's altitude, with a monthly Linke turbidity interpolated by day of year;
- plane of array: beam + Hay-Davies sky diffuse + ground reflection (albedo 0.25) on a horizontal
  north-south single-axis tracker (±60°, backtracking at GCR 0.35) or a fixed 30° tilt facing the equator.

The plant asks for power every sub-step, so the clear-sky values are computed once per whole second and
interpolated in between; clouds and the inverter limit are applied per call.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_J2000 = datetime(2000, 1, 1, 12, 0, tzinfo=UTC)
_SECONDS_PER_DAY = 86400.0
_SOLAR_CONSTANT_W_M2 = 1366.1
_STANDARD_PRESSURE_PA = 101325.0
_ALBEDO = 0.25
_TRACKER_MAX_ANGLE_DEG = 60.0
_TRACKER_GCR = 0.35
_FIXED_TILT_DEG = 30.0
_STC_IRRADIANCE_W_M2 = 1000.0

LINKE_TURBIDITY_BY_MONTH: tuple[float, ...] = (
    1.80,
    1.72,
    2.08,
    2.92,
    3.59,
    3.76,
    4.00,
    3.97,
    3.46,
    2.99,
    2.67,
    1.80,
)
"""Monthly Linke turbidity (air mass 2) for the site, January first, each taken at mid-month.

Fitted so this module reproduces pvlib's Ineichen monthly mean daily GHI for Reno/Sparks quoted in
reference/domain.md §5.2 (pvlib looks its values up in a climatology file we do not ship). Other sites
get the same table: a plausible dry, high-altitude climate, not a measured one.
"""

_MID_MONTH_DAYS = tuple(
    (datetime(2001, month, 15) - datetime(2001, 1, 1)).days + 0.5 for month in range(1, 13)
)
# The table wrapped over the new year, for interpolation between mid-December and mid-January.
_TURBIDITY_DAYS = (_MID_MONTH_DAYS[-1] - 365.0, *_MID_MONTH_DAYS, _MID_MONTH_DAYS[0] + 365.0)
_TURBIDITY_VALUES = (LINKE_TURBIDITY_BY_MONTH[-1], *LINKE_TURBIDITY_BY_MONTH, LINKE_TURBIDITY_BY_MONTH[0])


@dataclass(frozen=True)
class SunPosition:
    """Where the sun is: apparent (refracted) zenith and azimuth (clockwise from north), in degrees."""

    apparent_zenith_deg: float
    azimuth_deg: float
    earth_sun_distance_au: float

    @property
    def up(self) -> bool:
        return self.apparent_zenith_deg < 90.0


def _refraction_deg(elevation_deg: float) -> float:
    """NOAA's approximation of atmospheric refraction at a true solar elevation."""
    if elevation_deg > 85.0:
        return 0.0
    if elevation_deg > 5.0:
        te = math.tan(math.radians(elevation_deg))
        arcsec = 58.1 / te - 0.07 / te**3 + 0.000086 / te**5
    elif elevation_deg > -0.575:
        e = elevation_deg
        arcsec = 1735.0 + e * (-518.2 + e * (103.4 + e * (-12.79 + e * 0.711)))
    else:
        arcsec = -20.772 / math.tan(math.radians(elevation_deg))
    return arcsec / 3600.0


def _solar_position(days_since_j2000: float, latitude_deg: float, longitude_deg: float) -> SunPosition:
    jc = days_since_j2000 / 36525.0
    mean_long = math.radians((280.46646 + jc * (36000.76983 + jc * 0.0003032)) % 360.0)
    anomaly = math.radians(357.52911 + jc * (35999.05029 - 0.0001537 * jc))
    ecc = 0.016708634 - jc * (0.000042037 + 0.0000001267 * jc)
    centre_deg = (
        math.sin(anomaly) * (1.914602 - jc * (0.004817 + 0.000014 * jc))
        + math.sin(2.0 * anomaly) * (0.019993 - 0.000101 * jc)
        + math.sin(3.0 * anomaly) * 0.000289
    )
    true_anomaly = anomaly + math.radians(centre_deg)
    distance_au = 1.000001018 * (1.0 - ecc * ecc) / (1.0 + ecc * math.cos(true_anomaly))
    node = math.radians(125.04 - 1934.136 * jc)
    apparent_long = mean_long + math.radians(centre_deg - 0.00569 - 0.00478 * math.sin(node))
    obliquity = math.radians(
        23.0
        + (26.0 + (21.448 - jc * (46.815 + jc * (0.00059 - jc * 0.001813))) / 60.0) / 60.0
        + 0.00256 * math.cos(node)
    )
    declination = math.asin(math.sin(obliquity) * math.sin(apparent_long))
    y = math.tan(obliquity / 2.0) ** 2
    equation_of_time_min = 4.0 * math.degrees(
        y * math.sin(2.0 * mean_long)
        - 2.0 * ecc * math.sin(anomaly)
        + 4.0 * ecc * y * math.sin(anomaly) * math.cos(2.0 * mean_long)
        - 0.5 * y * y * math.sin(4.0 * mean_long)
        - 1.25 * ecc * ecc * math.sin(2.0 * anomaly)
    )
    utc_minutes = ((days_since_j2000 + 0.5) % 1.0) * 1440.0
    true_solar_minutes = (utc_minutes + equation_of_time_min + 4.0 * longitude_deg) % 1440.0
    hour_angle = math.radians(true_solar_minutes / 4.0 - 180.0)
    lat = math.radians(latitude_deg)
    cos_zenith = math.sin(lat) * math.sin(declination) + math.cos(lat) * math.cos(declination) * math.cos(
        hour_angle
    )
    elevation_deg = 90.0 - math.degrees(math.acos(max(-1.0, min(1.0, cos_zenith))))
    azimuth_deg = (
        math.degrees(
            math.atan2(
                math.sin(hour_angle),
                math.cos(hour_angle) * math.sin(lat) - math.tan(declination) * math.cos(lat),
            )
        )
        + 180.0
    ) % 360.0
    apparent_zenith_deg = 90.0 - elevation_deg - _refraction_deg(elevation_deg)
    return SunPosition(apparent_zenith_deg, azimuth_deg, distance_au)


def solar_position(when: datetime, latitude_deg: float, longitude_deg: float) -> SunPosition:
    """The sun seen from a site (longitude east-positive) at an aware datetime."""
    if when.tzinfo is None:
        raise ValueError("when must be timezone-aware")
    return _solar_position((when - _J2000).total_seconds() / _SECONDS_PER_DAY, latitude_deg, longitude_deg)


def linke_turbidity(day_of_year: float) -> float:
    """The monthly table at a (1-based) day of the year, interpolated linearly between mid-month days."""
    day = day_of_year - 1.0
    i = bisect_right(_TURBIDITY_DAYS, day)
    d0, d1 = _TURBIDITY_DAYS[i - 1], _TURBIDITY_DAYS[i]
    v0, v1 = _TURBIDITY_VALUES[i - 1], _TURBIDITY_VALUES[i]
    return v0 + (v1 - v0) * (day - d0) / (d1 - d0)


@dataclass(frozen=True)
class ClearSky:
    """Clear-sky global horizontal, direct normal and diffuse horizontal irradiance, W/m²."""

    ghi_w_m2: float
    dni_w_m2: float
    dhi_w_m2: float


_NIGHT = ClearSky(0.0, 0.0, 0.0)


def ineichen_clear_sky(
    apparent_zenith_deg: float, altitude_m: float, linke: float, dni_extra_w_m2: float
) -> ClearSky:
    """Ineichen-Perez clear sky (without the Perez enhancement) at a site altitude and Linke turbidity."""
    if apparent_zenith_deg >= 90.0:
        return _NIGHT
    cos_zenith = math.cos(math.radians(apparent_zenith_deg))
    relative_airmass = 1.0 / (cos_zenith + 0.50572 * (96.07995 - apparent_zenith_deg) ** -1.6364)
    pressure_ratio = (1.0 - 2.25577e-5 * altitude_m) ** 5.25588
    airmass = relative_airmass * pressure_ratio
    fh1 = math.exp(-altitude_m / 8000.0)
    fh2 = math.exp(-altitude_m / 1250.0)
    cg1 = 5.09e-5 * altitude_m + 0.868
    cg2 = 3.92e-5 * altitude_m + 0.0387
    ghi = cg1 * dni_extra_w_m2 * cos_zenith * math.exp(-cg2 * airmass * (fh1 + fh2 * (linke - 1.0)))
    beam_normal = dni_extra_w_m2 * max((0.664 + 0.163 / fh1) * math.exp(-0.09 * airmass * (linke - 1.0)), 0.0)
    beam_limit = ghi * max((1.0 - (0.1 - 0.2 * math.exp(-linke)) / (0.1 + 0.882 / fh1)) / cos_zenith, 0.0)
    dni = min(beam_normal, beam_limit)
    return ClearSky(ghi, dni, ghi - dni * cos_zenith)


def tracker_rotation_deg(apparent_zenith_deg: float, azimuth_deg: float) -> float:
    """Rotation of a horizontal N-S single-axis tracker (positive: facing east), backtracking, ±60°."""
    zenith = math.radians(apparent_zenith_deg)
    azimuth = math.radians(azimuth_deg)
    ideal = math.atan2(math.sin(zenith) * math.sin(azimuth), math.cos(zenith))
    cos_ideal = math.cos(ideal)
    if cos_ideal < _TRACKER_GCR:
        ideal -= math.copysign(math.acos(cos_ideal / _TRACKER_GCR), ideal)
    limit = math.radians(_TRACKER_MAX_ANGLE_DEG)
    return math.degrees(max(-limit, min(limit, ideal)))


def _plane_of_array(
    sun: SunPosition, sky: ClearSky, dni_extra_w_m2: float, tracking: bool, latitude_deg: float
) -> float:
    """Global irradiance on the modules (beam + Hay-Davies sky diffuse + ground reflected), W/m²."""
    zenith = math.radians(sun.apparent_zenith_deg)
    azimuth = math.radians(sun.azimuth_deg)
    sun_east = math.sin(zenith) * math.sin(azimuth)
    sun_north = math.sin(zenith) * math.cos(azimuth)
    sun_up = math.cos(zenith)
    if tracking:
        rotation = math.radians(tracker_rotation_deg(sun.apparent_zenith_deg, sun.azimuth_deg))
        cos_tilt = math.cos(rotation)
        cos_incidence = sun_east * math.sin(rotation) + sun_up * cos_tilt
    else:
        tilt = math.radians(_FIXED_TILT_DEG)
        toward_equator = -1.0 if latitude_deg >= 0.0 else 1.0
        cos_tilt = math.cos(tilt)
        cos_incidence = toward_equator * sun_north * math.sin(tilt) + sun_up * cos_tilt
    cos_incidence = max(cos_incidence, 0.0)
    anisotropy = sky.dni_w_m2 / dni_extra_w_m2
    beam_ratio = cos_incidence / max(sun_up, 0.01745)
    sky_diffuse = sky.dhi_w_m2 * (anisotropy * beam_ratio + (1.0 - anisotropy) * 0.5 * (1.0 + cos_tilt))
    ground = sky.ghi_w_m2 * _ALBEDO * 0.5 * (1.0 - cos_tilt)
    return sky.dni_w_m2 * cos_incidence + sky_diffuse + ground


@dataclass(frozen=True)
class _Cloud:
    start_s: float
    depth: float
    duration_s: float
    ramp_s: float

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s + self.ramp_s

    def cover(self, t: float) -> float:
        """Share of ``depth`` in force at ``t`` (trapezoid: ramp in, hold, ramp out)."""
        if self.ramp_s == 0.0:
            return 1.0
        return min(1.0, (t - self.start_s) / self.ramp_s, (self.end_s - t) / self.ramp_s)


class SolarPlant:
    """A PV plant's AC output: clear-sky irradiance on the modules, transient clouds, inverter clipping.

    ``available_w`` is what the inverters could deliver now; ``output_w`` is that after the
    ``curtailment_w`` cap the plant/controller sets, so curtailed energy is available − output.
    """

    def __init__(
        self,
        rated_ac_w: float = 12e6,
        dc_ac_ratio: float = 1.3,
        latitude_deg: float = 39.53,
        longitude_deg: float = -119.81,
        altitude_m: float = 1340.0,
        start_utc: datetime = datetime(2026, 6, 21, 19, 0, tzinfo=UTC),
        derate: float = 0.86,
        tracking: bool = True,
        seed: int = 0,
    ) -> None:
        if not 0.0 <= rated_ac_w < math.inf:
            raise ValueError(f"rated_ac_w must be >= 0 (0: no PV), got {rated_ac_w}")
        if not 0.0 < dc_ac_ratio < math.inf:
            raise ValueError(f"dc_ac_ratio must be > 0, got {dc_ac_ratio}")
        if not -90.0 <= latitude_deg <= 90.0:
            raise ValueError(f"latitude_deg must be within [-90, 90], got {latitude_deg}")
        if not -180.0 <= longitude_deg <= 180.0:
            raise ValueError(f"longitude_deg must be within [-180, 180], got {longitude_deg}")
        if not -500.0 <= altitude_m <= 9000.0:
            raise ValueError(f"altitude_m must be within [-500, 9000], got {altitude_m}")
        if not 0.0 < derate <= 1.0:
            raise ValueError(f"derate must be within (0, 1], got {derate}")
        if start_utc.tzinfo is None:
            raise ValueError("start_utc must be timezone-aware")
        self.rated_ac_w = rated_ac_w
        self.dc_ac_ratio = dc_ac_ratio
        self.latitude_deg = latitude_deg
        self.longitude_deg = longitude_deg
        self.altitude_m = altitude_m
        self.start_utc = start_utc.astimezone(UTC)
        self.derate = derate
        self.tracking = tracking
        self._w_per_poa = rated_ac_w * dc_ac_ratio * derate / _STC_IRRADIANCE_W_M2
        self._start_days = (self.start_utc - _J2000).total_seconds() / _SECONDS_PER_DAY
        self._rng = random.Random(seed)
        self._clouds: list[_Cloud] = []
        self._cloud_starts_s: list[float] = []
        self._longest_cloud_s = 0.0
        self._curtailment_w: float | None = None
        self._cache_second: int | None = None
        self._ghi_lo = self._ghi_hi = self._poa_lo = self._poa_hi = 0.0

    # --- controls ---------------------------------------------------------------------------

    @property
    def curtailment_w(self) -> float | None:
        """AC cap set by the plant/controller; None means no cap."""
        return self._curtailment_w

    @curtailment_w.setter
    def curtailment_w(self, value: float | None) -> None:
        if value is not None and not 0.0 <= value < math.inf:
            raise ValueError(f"curtailment_w must be None or >= 0, got {value}")
        self._curtailment_w = value

    def cloud(self, at: float, depth: float, duration_s: float, ramp_s: float = 5.0) -> None:
        """A passing cloud: irradiance falls by ``depth`` (0..1) over ``ramp_s`` from ``at``, holds until
        ``at + duration_s`` and recovers over ``ramp_s``. Overlapping clouds multiply their transmission.
        """
        if not 0.0 <= depth <= 1.0:
            raise ValueError(f"depth must be within [0, 1], got {depth}")
        if not 0.0 < duration_s < math.inf:
            raise ValueError(f"duration_s must be > 0, got {duration_s}")
        if not 0.0 <= ramp_s < math.inf:
            raise ValueError(f"ramp_s must be >= 0, got {ramp_s}")
        if not math.isfinite(at):
            raise ValueError(f"at must be finite, got {at}")
        cloud = _Cloud(at, depth, duration_s, ramp_s)
        i = bisect_right(self._cloud_starts_s, at)
        self._cloud_starts_s.insert(i, at)
        self._clouds.insert(i, cloud)
        self._longest_cloud_s = max(self._longest_cloud_s, cloud.end_s - at)

    def scatter_clouds(
        self,
        start_s: float,
        end_s: float,
        per_hour: float,
        max_depth: float = 0.8,
        mean_duration_s: float = 120.0,
        ramp_s: float = 5.0,
    ) -> int:
        """Schedule random clouds (Poisson arrivals) between ``start_s`` and ``end_s`` from the seeded
        generator; returns how many. The same seed and the same calls give the same clouds.
        """
        if not end_s >= start_s:
            raise ValueError(f"end_s must be >= start_s, got {end_s} < {start_s}")
        if not 0.0 < per_hour < math.inf:
            raise ValueError(f"per_hour must be > 0, got {per_hour}")
        if not 0.0 < mean_duration_s < math.inf:
            raise ValueError(f"mean_duration_s must be > 0, got {mean_duration_s}")
        count = 0
        at = start_s + self._rng.expovariate(per_hour / 3600.0)
        while at < end_s:
            depth = self._rng.uniform(0.0, max_depth)
            duration_s = ramp_s + self._rng.expovariate(1.0 / mean_duration_s)
            self.cloud(at, depth, duration_s, ramp_s)
            count += 1
            at += self._rng.expovariate(per_hour / 3600.0)
        return count

    # --- per-step queries -------------------------------------------------------------------

    def clear_sky_ghi_w_m2(self, t: float) -> float:
        """Clear-sky global horizontal irradiance at plant time ``t`` (no clouds)."""
        second = math.floor(t)
        if second != self._cache_second:
            self._refresh(second)
        return self._ghi_lo + (self._ghi_hi - self._ghi_lo) * (t - second)

    def irradiance_w_m2(self, t: float) -> float:
        """Plane-of-array global irradiance at ``t``, clouds included."""
        second = math.floor(t)
        if second != self._cache_second:
            self._refresh(second)
        poa = self._poa_lo + (self._poa_hi - self._poa_lo) * (t - second)
        return poa * self._transmission(t) if self._clouds else poa

    def available_w(self, t: float) -> float:
        """AC power the plant could deliver at ``t``: DC from irradiance, clipped at the inverter rating."""
        dc_w = self.irradiance_w_m2(t) * self._w_per_poa
        return dc_w if dc_w < self.rated_ac_w else self.rated_ac_w

    def output_w(self, t: float) -> float:
        """AC power delivered at ``t``: :meth:`available_w` under the curtailment cap."""
        available = self.available_w(t)
        cap = self._curtailment_w
        return available if cap is None or available <= cap else cap

    def _transmission(self, t: float) -> float:
        starts = self._cloud_starts_s
        clouds = self._clouds
        share = 1.0
        for i in range(bisect_left(starts, t - self._longest_cloud_s), bisect_right(starts, t)):
            cloud = clouds[i]
            if t < cloud.end_s:
                share *= 1.0 - cloud.depth * cloud.cover(t)
        return share

    def _refresh(self, second: int) -> None:
        """Recompute the clear-sky values at the whole seconds either side of the present second."""
        if self._cache_second is not None and second == self._cache_second + 1:
            self._ghi_lo, self._poa_lo = self._ghi_hi, self._poa_hi
        else:
            self._ghi_lo, self._poa_lo = self._clear_sky_at(float(second))
        self._ghi_hi, self._poa_hi = self._clear_sky_at(float(second + 1))
        self._cache_second = second

    def _clear_sky_at(self, t: float) -> tuple[float, float]:
        """(GHI, plane-of-array irradiance) under a clear sky at plant time ``t``."""
        sun = _solar_position(self._start_days + t / _SECONDS_PER_DAY, self.latitude_deg, self.longitude_deg)
        if not sun.up:
            return 0.0, 0.0
        dni_extra = _SOLAR_CONSTANT_W_M2 / (sun.earth_sun_distance_au * sun.earth_sun_distance_au)
        day_of_year = (self.start_utc + timedelta(seconds=t)).timetuple().tm_yday
        sky = ineichen_clear_sky(
            sun.apparent_zenith_deg, self.altitude_m, linke_turbidity(day_of_year), dni_extra
        )
        return sky.ghi_w_m2, _plane_of_array(sun, sky, dni_extra, self.tracking, self.latitude_deg)
