"""Steady power to the compute racks: the criteria a sequence is judged by.

Each criterion is ``criterion(trace, **limits) -> Verdict``; every limit has a default whose source
is named here and in ``docs/criteria.md`` (reference/domain.md §1, §2.1, §5.1, §6; [A] marks a
harness assumption, not a standard's number). Each takes an optional ``window=(t0, t1)`` that
narrows the trace first. Only :func:`grid_ramp` (no number in any source) and
:func:`settle_time` (the transition's time is the sequence's) need an argument.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from enum import Enum

import numpy as np

from drivers.controller_link import ControllerMode
from harness.criteria.signals import (
    Extreme,
    Window,
    band_energy,
    band_extreme,
    evidence,
    hold_durations,
    runs,
    settles,
    windowed_slope,
)
from harness.sim.itic import (
    ITIC_LOWER_POINTS,
    ITIC_UPPER_POINTS,
    SEMI_F47_POINTS,
    itic_lower_pu,
    itic_upper_pu,
    semi_f47_lower_pu,
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
    PACK_FAULT,
    PACK_ISOLATED,
    PACK_SOC,
    POWER_CAP_W,
    Trace,
)
from harness.verdict import Verdict

ITIC_REFERENCE = "ITIC (CBEMA) curve, rev. 2000 (OPQ polygon)"
SEMI_F47_REFERENCE = "SEMI F47-0706 and ITIC (CBEMA) 2000"
BAND_REFERENCE = "IEEE 2030.8-style metric; band [A] (reference/domain.md §1.4)"
ROCOF_REFERENCE = "IEEE 1547-2018 Cat III RoCoF ride-through, 3 Hz/s"
SWING_REFERENCE = "Choukse et al., arXiv:2508.14318: 0.1-20 Hz band, <= 20 % (reference/domain.md §2.1)"
SYNC_REFERENCE = "typical sync-check: 10 deg, 5 %, 0.1 Hz (reference/domain.md §1.4)"
ALIVE_PU = 0.5
"""[A] Below this bus voltage the frequency reading is not trusted (the bus is not alive)."""

_HORIZON_S = 1e6
_CURVE_VERTICES_S = tuple(sorted({d for d, _ in (*ITIC_LOWER_POINTS, *ITIC_UPPER_POINTS, *SEMI_F47_POINTS)}))
_SNAP_S = 1e-9


class Profile(Enum):
    """Which sag curve :func:`itic` judges against (swells are always judged by ITIC)."""

    ITIC = "itic"
    SEMI_F47 = "semi_f47"
    """The stricter of ITIC and SEMI F47 at each duration."""


def _scope(trace: Trace, window: Window | None) -> Trace:
    return trace if window is None else trace.window(*window)


def _longest_tolerated_s(tolerated: Callable[[float], bool]) -> float:
    """Longest duration an event is tolerated, given ``tolerated`` is true up to it and false after.

    Bisection, then snapped to a curve vertex within 1 ns so an event exactly on a vertex passes.
    """
    if not tolerated(0.0):
        return 0.0
    if tolerated(_HORIZON_S):
        return math.inf
    low, high = 0.0, _HORIZON_S
    while low < (middle := (low + high) / 2.0) < high:
        low, high = (middle, high) if tolerated(middle) else (low, middle)
    for vertex in _CURVE_VERTICES_S:
        if abs(vertex - low) <= _SNAP_S and tolerated(vertex):
            return vertex
    return low


def _sag_floor_pu(profile: Profile) -> Callable[[float], float]:
    if profile is Profile.ITIC:
        return itic_lower_pu
    return lambda duration_s: max(itic_lower_pu(duration_s), semi_f47_lower_pu(duration_s))


def allowed_duration_s(
    event: VoltageEvent, profile: Profile = Profile.ITIC, holdup_s: float | None = None
) -> float:
    """How long an event at ``event.residual_pu`` may last and stay inside the envelope."""
    residual = event.residual_pu
    if event.kind is VoltageEventKind.SWELL:
        return _longest_tolerated_s(lambda d: residual <= itic_upper_pu(d))
    floor = _sag_floor_pu(profile)
    allowed = _longest_tolerated_s(lambda d: residual >= floor(d))
    if holdup_s is not None and residual < ITIC_LOWER_POINTS[1][1]:
        allowed = min(allowed, holdup_s)
    return allowed


def level_excursions(t: np.ndarray, voltage_pu: np.ndarray, profile: Profile) -> list[VoltageEvent]:
    """Every stretch of samples beyond each level of the envelope, as an event just beyond that level.

    A sag level L (0.9, 0.8, 0.7 pu; F47 adds 0.5) yields a DIP for each run of samples below L, with
    the residual just under L; swell levels (1.1, 1.2, 1.4, 2.0 pu) likewise. Judged by
    :func:`allowed_duration_s`, this is the cumulative time below (above) each threshold that the
    racks' PSUs see, as ``harness.sim.itic.RideThroughMonitor`` counts it. A run still going at the
    last sample ends there.
    """
    sag_points = ITIC_LOWER_POINTS if profile is Profile.ITIC else (*ITIC_LOWER_POINTS, *SEMI_F47_POINTS)
    sag_levels = sorted({v for _, v in sag_points if 0.0 < v < 1.0})
    swell_levels = sorted({v for _, v in ITIC_UPPER_POINTS if 1.0 < v < ITIC_UPPER_POINTS[0][1]})
    thresholds = [
        *((voltage_pu < level, VoltageEventKind.DIP, np.nextafter(level, 0.0)) for level in sag_levels),
        *(
            (voltage_pu > level, VoltageEventKind.SWELL, np.nextafter(level, np.inf))
            for level in swell_levels
        ),
    ]
    found = []
    for beyond, kind, residual in thresholds:
        edges = np.diff(np.concatenate(([0], beyond.astype(np.int8), [0])))
        starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        ends = t[np.minimum(stops, t.size - 1)]
        found.extend(
            VoltageEvent(kind, float(t[i]), float(end - t[i]), float(residual))
            for i, end in zip(starts, ends, strict=True)
        )
    return found


def itic(
    trace: Trace,
    *,
    profile: str = "itic",
    holdup_s: float | None = None,
    method: str = "events",
    window: Window | None = None,
) -> Verdict:
    """Every voltage event, as (residual, duration), inside the ITIC envelope (or ITIC + F47).

    ``method="events"`` judges the analyzer's event log, each event as a rectangle (its lowest
    residual for its whole duration); ``method="levels"`` judges the time ``bus_voltage_pu`` spends
    beyond each level of the curve (:func:`level_excursions`), which does not fail a short deep
    notch followed by a long shallow sag that the rectangle would. Measured: the duration of the
    event that used most of its allowance; limit: what the curve allows at that event's residual.
    ``holdup_s`` (e.g. 0.016, a PSU's hold-up) tightens the 20 ms the curve allows below 0.7 pu.
    """
    chosen = Profile(profile)
    part = _scope(trace, window)
    reference = ITIC_REFERENCE if chosen is Profile.ITIC else SEMI_F47_REFERENCE
    name = f"itic[{chosen.value}]"
    if method == "events":
        events = list(part.voltage_events)
    elif method == "levels":
        events = level_excursions(part.t, part.channel(BUS_VOLTAGE_PU), chosen)
    else:
        raise ValueError(f"method must be 'events' or 'levels', got {method!r}")
    if not events:
        return Verdict(
            name, True, 0.0, math.inf, math.inf, "s", reference=reference, detail="no voltage events"
        )
    allowed = np.array([allowed_duration_s(e, chosen, holdup_s) for e in events])
    durations = np.array([e.duration_s for e in events])
    with np.errstate(divide="ignore", invalid="ignore"):
        used = np.where(allowed > 0.0, durations / allowed, np.where(durations > 0.0, np.inf, 0.0))
    worst = int(np.argmax(used))
    event = events[worst]
    failed = int(np.count_nonzero(durations > allowed))
    return Verdict.at_most(
        name,
        event.duration_s,
        allowed[worst],
        "s",
        when=(event.start_s, event.start_s + event.duration_s),
        reference=reference,
        detail=(
            f"{len(events)} events, {failed} outside; worst: {event.kind.value} to {event.residual_pu:g} pu "
            f"for {event.duration_s:g} s at {event.start_s:g} s (allowed {allowed[worst]:g} s)"
        ),
        evidence={
            "start_s": np.array([e.start_s for e in events]),
            "duration_s": durations,
            "residual_pu": np.array([e.residual_pu for e in events]),
            "allowed_s": allowed,
        },
    )


PSU_HOLD_UP_S = 0.016
"""Rack power supplies ride through about 16 ms of no input at full load (reference/domain.md: the
transfer budget, ITIC's 20 ms at 0 V)."""


def load_served(
    trace: Trace,
    *,
    max_unserved_j: float = 0.0,
    deadband_fraction: float = 0.01,
    hold_up_s: float = PSU_HOLD_UP_S,
    window: Window | None = None,
) -> Verdict:
    """Energy the racks asked for and did not get, against ``max_unserved_j``.

    What the racks may draw is their demand, or the controller's power cap when lower: energy held
    back by a cap is *capped* (a soft shed, reported apart), not unserved (reference/domain.md §2.2,
    §5.1). A sample's served power is the analyzer's mean over the interval before it, while its cap
    was read at its end: a cap lifted within that interval was still in force over part of it, so
    each sample is judged against the lower of its cap and the one before (:func:`interval_cap_w`).
    A deficit within ``deadband_fraction`` of what may be drawn is meter error [A] and counts 0.
    Each unbroken deficit is first drawn from the racks' PSU hold-up, ``hold_up_s`` of their largest
    draw in it: a transfer gap the power supplies bridge leaves the GPUs powered, so only what exceeds
    the hold-up is unserved (the hold-up refills once the bus is back).
    """
    part = _scope(trace, window)
    demand = part.channel(LOAD_DEMAND_W)
    served = part.channel(LOAD_SERVED_W)
    drawable = np.minimum(demand, interval_cap_w(part))
    deficit = np.clip(drawable - served, 0.0, None)
    counted = np.where(deficit > deadband_fraction * drawable, deficit, 0.0)
    weights = hold_durations(part.t, part.start_s, part.end_s)
    unserved_j = ridden_j = 0.0
    for episode in runs(counted > 0.0):
        deficit_j = float(np.sum(counted[episode] * weights[episode]))
        bridged_j = min(deficit_j, hold_up_s * float(np.max(drawable[episode])))
        ridden_j += bridged_j
        unserved_j += deficit_j - bridged_j
    capped_j = float(np.sum((demand - drawable) * weights))
    worst = int(np.argmax(deficit))
    names = [LOAD_DEMAND_W, LOAD_SERVED_W, *([POWER_CAP_W] if POWER_CAP_W in part else [])]
    return Verdict.at_most(
        "load_served",
        unserved_j,
        max_unserved_j,
        "J",
        when=(part.start_s, part.end_s),
        reference="reference/domain.md §5.1 (EENS; capped energy counted apart; PSU hold-up §1)",
        detail=(
            f"unserved {unserved_j:g} J, worst deficit {deficit[worst]:g} W at {part.t[worst]:g} s; "
            f"ridden through on PSU hold-up {ridden_j:g} J; capped {capped_j:g} J"
        ),
        evidence=evidence(part, part.start_s, part.end_s, *names),
    )


def interval_cap_w(trace: Trace) -> np.ndarray:
    """The cap in force over each sample's interval, taken as the lower of the cap read at the sample
    and the one read at the sample before (uncapped, NaN, is infinite). Over a lab bench's unaligned
    clocks a cap may change anywhere in the interval; on the simulated bench the cap read before is
    exactly the one in force. A cap newly imposed is thus judged one sample early, which can only
    count less as unserved."""
    if POWER_CAP_W not in trace:
        return np.full(len(trace), np.inf)
    cap = np.nan_to_num(trace.channel(POWER_CAP_W), nan=np.inf)
    return np.minimum(cap, np.concatenate((cap[:1], cap[:-1])))


def _alive(trace: Trace, alive_pu: float) -> np.ndarray:
    if BUS_VOLTAGE_PU not in trace:
        return np.ones(len(trace), dtype=bool)
    return trace.channel(BUS_VOLTAGE_PU) >= alive_pu


def _extreme_verdict(
    name: str,
    extreme: Extreme | None,
    unit: str,
    *,
    when: Window,
    reference: str,
    detail: str,
    evidence: dict[str, np.ndarray],
) -> Verdict:
    """A verdict from the worst sample against a band; nothing to judge passes with infinite margin."""
    measured, limit, margin = (
        (math.nan, math.nan, math.inf) if extreme is None else (extreme.value, extreme.bound, extreme.margin)
    )
    return Verdict(name, margin >= 0.0, measured, limit, margin, unit, when, reference, detail, evidence)


def frequency_band(
    trace: Trace,
    *,
    low_hz: float = 59.3,
    high_hz: float = 60.5,
    alive_pu: float = ALIVE_PU,
    window: Window | None = None,
) -> Verdict:
    """Bus frequency inside ``[low_hz, high_hz]`` at every sample where the bus is alive."""
    part = _scope(trace, window)
    extreme = band_extreme(part.t, part.channel(BUS_FREQUENCY_HZ), low_hz, high_hz, _alive(part, alive_pu))
    return _extreme_verdict(
        "frequency_band",
        extreme,
        "Hz",
        when=(part.start_s, part.end_s),
        reference=BAND_REFERENCE,
        detail="bus never alive" if extreme is None else f"worst {extreme.value:g} Hz at {extreme.t:g} s",
        evidence=evidence(part, part.start_s, part.end_s, BUS_FREQUENCY_HZ),
    )


def _max_rate_verdict(
    name: str,
    trace: Trace,
    channel: str,
    window_s: float,
    limit: float,
    unit: str,
    valid: np.ndarray,
    reference: str,
) -> Verdict:
    ends, slopes = windowed_slope(trace.t, trace.channel(channel), window_s, valid)
    if slopes.size == 0:
        return Verdict(name, True, 0.0, limit, math.inf, unit, reference=reference, detail="no full window")
    worst = int(np.argmax(np.abs(slopes)))
    return Verdict.at_most(
        name,
        abs(float(slopes[worst])),
        limit,
        unit,
        when=(float(ends[worst]) - window_s, float(ends[worst])),
        reference=reference,
        detail=f"steepest {slopes[worst]:g} {unit} over {window_s:g} s ending {ends[worst]:g} s",
        evidence=evidence(trace, trace.start_s, trace.end_s, channel),
    )


def rocof(
    trace: Trace,
    *,
    limit_hz_per_s: float = 3.0,
    window_s: float = 0.5,
    alive_pu: float = ALIVE_PU,
    window: Window | None = None,
) -> Verdict:
    """Largest |df/dt| over a sliding ``window_s`` (0.5 s, the usual RoCoF relay window [K]) on a live bus."""
    part = _scope(trace, window)
    valid = _alive(part, alive_pu)
    return _max_rate_verdict(
        "rocof", part, BUS_FREQUENCY_HZ, window_s, limit_hz_per_s, "Hz/s", valid, ROCOF_REFERENCE
    )


def grid_ramp(
    trace: Trace, *, limit_w_per_s: float, window_s: float = 1.0, window: Window | None = None
) -> Verdict:
    """Largest |dP/dt| of the grid-side power over a sliding ``window_s``, against ``limit_w_per_s``.

    No source gives a number (the paper asks for "a ramp-rate limit in MW/s"), so the sequence sets it.
    """
    part = _scope(trace, window)
    valid = np.ones(len(part), dtype=bool)
    reference = "Choukse et al., arXiv:2508.14318: ramp-rate limit (reference/domain.md §2.1)"
    return _max_rate_verdict("grid_ramp", part, GRID_W, window_s, limit_w_per_s, "W/s", valid, reference)


def grid_band_energy(
    trace: Trace,
    *,
    max_share: float = 0.20,
    band_hz: tuple[float, float] = (0.1, 20.0),
    sample_rate_hz: float | None = None,
    window: Window | None = None,
) -> Verdict:
    """Grid-side swing energy in ``band_hz`` as a share of the load-side swing energy in the same band.

    share = E_band(grid_w) / E_band(load_served_w), each from :func:`band_energy` on the same uniform
    grid (``sample_rate_hz``, default: the median sample rate). The band's top is cut at Nyquist,
    and the window must last at least 1 / low edge (10 s for 0.1 Hz) to resolve the band's bottom.
    """
    part = _scope(trace, window)
    low_hz, high_hz = band_hz
    span_s = part.end_s - part.start_s
    if not span_s >= 1.0 / low_hz:
        raise ValueError(
            f"grid_band_energy needs >= {1.0 / low_hz:g} s of trace to see {low_hz:g} Hz, got {span_s}"
        )
    rate_hz = sample_rate_hz if sample_rate_hz is not None else 1.0 / float(np.median(np.diff(part.t)))
    top_hz = min(high_hz, rate_hz / 2.0)
    grid_j = band_energy(part.t, part.channel(GRID_W), low_hz, top_hz, rate_hz)
    load_j = band_energy(part.t, part.channel(LOAD_SERVED_W), low_hz, top_hz, rate_hz)
    share = grid_j / load_j if load_j > 0.0 else (0.0 if grid_j == 0.0 else math.inf)
    return Verdict.at_most(
        "grid_band_energy",
        share,
        max_share,
        "fraction",
        when=(part.start_s, part.end_s),
        reference=SWING_REFERENCE,
        detail=f"grid/load swing energy, {low_hz:g}-{top_hz:g} Hz, resampled at {rate_hz:g} Hz: {share:.3g}",
        evidence=evidence(part, part.start_s, part.end_s, GRID_W, LOAD_SERVED_W),
    )


def _worst(*extremes: Extreme | None) -> Extreme | None:
    found = [e for e in extremes if e is not None]
    return min(found, key=lambda e: e.margin) if found else None


def soc_bounds(
    trace: Trace,
    *,
    min_soc: float = 0.05,
    max_soc: float = 0.95,
    reserve_soc: float = 0.15,
    window: Window | None = None,
) -> Verdict:
    """Fleet (and, if recorded, every pack's) SOC in ``[min_soc, max_soc]``; fleet SOC at or above
    ``reserve_soc`` while the controller reports ISLANDED.

    Defaults [A]: 5-95 % usable window; the reserve is the reference controller's default ReserveSoC.
    """
    part = _scope(trace, window)
    fleet = part.channel(FLEET_SOC)
    islanded = part.channel(CONTROLLER_MODE) == ControllerMode.ISLANDED if CONTROLLER_MODE in part else None
    checks = {
        "fleet": band_extreme(part.t, fleet, min_soc, max_soc),
        "pack": band_extreme(part.t, part.channel(PACK_SOC), min_soc, max_soc) if PACK_SOC in part else None,
        "islanded fleet reserve": (
            band_extreme(part.t, fleet, reserve_soc, math.inf, islanded) if islanded is not None else None
        ),
    }
    worst = _worst(*checks.values())
    which = next((label for label, e in checks.items() if e is worst), "")
    names = [FLEET_SOC, *([PACK_SOC] if PACK_SOC in part else [])]
    return _extreme_verdict(
        "soc_bounds",
        worst,
        "fraction",
        when=(part.start_s, part.end_s),
        reference="[A] harness defaults (reference/domain.md §3.4, §5.1 SOC_min)",
        detail=""
        if worst is None
        else f"worst: {which} SOC {worst.value:g} vs {worst.bound:g} at {worst.t:g} s",
        evidence=evidence(part, part.start_s, part.end_s, *names),
    )


def isolation_current(
    trace: Trace, *, deadline_s: float = 0.5, max_current_a: float = 0.5, window: Window | None = None
) -> Verdict:
    """No current (|I| <= ``max_current_a``) through a pack from ``deadline_s`` after it became isolated
    or faulted.

    A pack is judged while ``pack_isolated`` is true or (when recorded) ``pack_fault`` is not 0, from
    the sample where that began (from the first sample if it holds there): a faulted pack whose
    contactor cannot open (welded) must still be given no power. Defaults [A].
    """
    part = _scope(trace, window)
    isolated = part.channel(PACK_ISOLATED).astype(bool)
    if PACK_FAULT in part:
        isolated = isolated | (part.channel(PACK_FAULT) != 0)
    current = np.abs(part.channel(PACK_CURRENT_A))
    times = np.broadcast_to(part.t[:, None], isolated.shape)
    rising = isolated & ~np.vstack([np.zeros((1, isolated.shape[1]), dtype=bool), isolated[:-1]])
    since = np.maximum.accumulate(np.where(rising, times, -np.inf), axis=0)
    judged = isolated & (times >= since + deadline_s)
    if not judged.any():
        return Verdict(
            "isolation_current",
            True,
            0.0,
            max_current_a,
            max_current_a,
            "A",
            detail="no pack past its deadline",
        )
    masked = np.where(judged, current, -np.inf)
    row, pack = np.unravel_index(int(np.argmax(masked)), masked.shape)
    return Verdict.at_most(
        "isolation_current",
        float(current[row, pack]),
        max_current_a,
        "A",
        when=(part.start_s, part.end_s),
        reference="[A] isolation contract (reference/domain.md §3.4)",
        detail=f"largest current through an isolated pack: pack {pack} at {part.t[row]:g} s",
        evidence=evidence(part, part.start_s, part.end_s, PACK_ISOLATED, PACK_CURRENT_A),
    )


def settle_time(
    trace: Trace,
    *,
    after_s: float,
    within_s: float = 10.0,
    voltage_band_pu: float = 0.02,
    frequency_band_hz: float = 0.1,
    nominal_pu: float = 1.0,
    nominal_hz: float = 60.0,
) -> Verdict:
    """Time from ``after_s`` until bus voltage and frequency stay within 2 % and 0.1 Hz of nominal.

    The slower of the two is measured. ``within_s`` defaults to 10 s, where ITIC's steady state
    begins [A]; the band widths come from reference/domain.md §1.4.
    """
    voltage = settles(trace, BUS_VOLTAGE_PU, nominal_pu, voltage_band_pu, after_s, within_s)
    frequency = settles(trace, BUS_FREQUENCY_HZ, nominal_hz, frequency_band_hz, after_s, within_s)
    slower = voltage if voltage.margin <= frequency.margin else frequency
    return replace(
        slower,
        name="settle_time",
        reference="IEEE 2030.8-style metric (reference/domain.md §1.4)",
        detail=f"voltage: {voltage.detail}; frequency: {frequency.detail}",
        evidence={**voltage.evidence, **frequency.evidence},
    )


def resync(
    trace: Trace,
    *,
    max_dv_pu: float = 0.05,
    max_df_hz: float = 0.1,
    max_dtheta_deg: float = 10.0,
    window: Window | None = None,
) -> Verdict:
    """Every breaker close sync-checked and within |dV|, |df|, |dtheta| limits.

    Measured: the worst close's largest share of a limit (1.0 = on the limit); a close that was not
    sync-checked counts as infinitely far out.
    """
    part = _scope(trace, window)
    closes = part.breaker_closes
    if not closes:
        return Verdict(
            "resync", True, 0.0, 1.0, 1.0, "fraction of limit", reference=SYNC_REFERENCE, detail="no closes"
        )
    shares = np.array(
        [
            max(abs(c.dv_pu) / max_dv_pu, abs(c.df_hz) / max_df_hz, abs(c.dtheta_deg) / max_dtheta_deg)
            if c.sync_checked
            else math.inf
            for c in closes
        ]
    )
    worst = int(np.argmax(shares))
    close = closes[worst]
    return Verdict.at_most(
        "resync",
        float(shares[worst]),
        1.0,
        "fraction of limit",
        when=(close.t, close.t),
        reference=SYNC_REFERENCE,
        detail=(
            f"{len(closes)} closes; worst at {close.t:g} s: dV {close.dv_pu:g} pu, df {close.df_hz:g} Hz, "
            f"dtheta {close.dtheta_deg:g} deg, sync-checked {close.sync_checked}"
        ),
        evidence={
            "t": np.array([c.t for c in closes]),
            "dv_pu": np.array([c.dv_pu for c in closes]),
            "df_hz": np.array([c.df_hz for c in closes]),
            "dtheta_deg": np.array([c.dtheta_deg for c in closes]),
            "sync_checked": np.array([c.sync_checked for c in closes]),
        },
    )
