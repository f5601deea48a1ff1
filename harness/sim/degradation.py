"""Capacity fade and resistance growth of second-life packs: NREL BLAST-Lite's cell models in state form.

One model per chemistry (reference/domain.md §3.2), re-implemented from the published equations:

- NMC: Kokam 75 Ah NMC111-graphite. Calendar and cycling loss of lithium inventory (LLI) as power
  laws, loss of active material (LAM) as a sharp sigmoid in EFC; capacity is the lesser of the two.
- LMO: Nissan Leaf modules aged in their *second* life (Braco et al.). Capacity is relative to the
  start of second life; there is no resistance model.
- LFP: Sony-Murata 3 Ah LFP-graphite (Naumann et al.). Calendar loss is a sigmoid in time, cycling loss
  a power law in (rate x EFC); resistance grows linearly in time and in EFC. The break-in mode, which
  BLAST-Lite only fires above 3 EFC/day, is a first-life transient and is left out.

**State form.** Each mode is a state y (a loss or a resistance gain) on a trajectory y = f(x), x in days
or equivalent full cycles (EFC). A stretch of ageing finds where y sits on the trajectory for the
stretch's stressors (x0 = f⁻¹(y)) and moves along it: y ← f(x0 + s·dx), s the pack's degradation scalar.
This is the exact solution of BLAST-Lite's state equation with its rates multiplied by s (for a power
law dy = s·k·p·(y/k)^((p-1)/p)·dx), so a stretch of constant stressors needs one step whatever its
length, and stressors may change from one stretch to the next (:meth:`FleetAgeing.advance`).

**Stressors.** A :class:`DutyCycle` gives them. SOC-dependent rates are averaged over a triangular SOC
swing of ``depth_of_discharge`` around ``mean_soc`` (equal time at every level), as BLAST-Lite
time-averages rates over its SOC input. ``efc_per_day`` counts cycles of the capacity the pack had
when its ageing started, a fixed energy throughput held as the pack fades (the site's load does not
shrink with its packs): BLAST-Lite's default ``is_conserve_energy_throughput``. Its widening of the DOD
stressor as capacity fades is not modelled (estimated < 0.005 of NMC capacity at 5 years). ``c_rate`` is the
rate while cycling (the LFP model's C-rate stressor; BLAST-Lite feeds it a time average including rests,
which changes LFP capacity results by < 1 %).

**Second-life start** (:meth:`FleetAgeing.start`). NMC and LFP packs are placed on their curves at the
state that reproduces their present SoH: the loss 1 - SoH is split :data:`CALENDAR_SHARE` to calendar
and the rest to cycling (the LFP calendar sigmoid saturates, so its share is capped just below the
ceiling and the excess goes to cycling). The resistance states start at the equivalent age of those
losses, and only their growth ratio r(x_end)/r(x_start) is applied to the pack's own resistance ratio.
The equivalent ages are long (a Kokam cell at 25 °C needs centuries of calendar time to lose 15 %), so
further LLI fade and resistance growth of NMC packs are slow: the model's verdict, not a fit to
second-life data. LMO packs start the Leaf second-life model at zero and its fade multiplies their
present SoH.

**Knee.** The LAM sigmoid (Kokam's, midpoint q5 ≈ 7,000 EFC at 25 °C) runs for every NMC pack, starting
at :data:`FIRST_LIFE_EFC`. For knee packs of any chemistry its midpoint is divided by
:data:`KNEE_LAM_SPEEDUP`, so at the default duty their capacity falls off a cliff one to three years
into second life; LMO and LFP knee packs borrow the Kokam sigmoid because their models have no LAM mode.

**Resistance.** Growth is the larger of the LLI ratio (NMC, LFP: the model's r_LLI; LMO: capacity
to the power -:data:`LMO_RESISTANCE_EXPONENT`) and the LAM ratio (r_LAM = -0.08 + 1.09 / q_LAM).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from harness.sim.chemistry import Chemistry
from harness.sim.fleet import FleetSpec

CALENDAR_SHARE = 0.6
"""Share of a pack's first-life capacity loss put on the calendar curve [A]: EV packs sit parked more
than 90 % of their life and calendar ageing is commonly the larger part of their fade."""
FIRST_LIFE_EFC = 1000.0
"""Throughput of an EV pack's first life in EFC of its new capacity [A]: ~250,000 km at ~250 km per cycle."""
KNEE_LAM_SPEEDUP = 5.0
"""Factor dividing the LAM midpoint of knee packs."""
DEGRADATION_SCALAR_SIGMA_LN = 0.3
"""Pack-to-pack variation: every pack's degradation rates are multiplied by lognormal(0, this)."""
LMO_RESISTANCE_EXPONENT = math.log(1.5) / math.log(1.0 / 0.75)
"""R/R_new = SoH^-x for LMO packs; x ≈ 1.41 puts the fleet draw's median R/R_new of 1.5 at SoH 0.75."""
CAPACITY_FLOOR = 0.01
"""Lowest relative capacity reported (Kokam's LAM floor); a pack there is long dead."""

_SIGMOID_START_LIMIT = 0.95
_SOC_LEVELS = 21
_KELVIN = 273.15


@dataclass(frozen=True)
class DutyCycle:
    """What a pack does each day, held constant over a stretch of ageing."""

    efc_per_day: float = 0.7
    depth_of_discharge: float = 0.7
    mean_soc: float = 0.55
    temperature_c: float = 25.0
    c_rate: float = 0.5

    def __post_init__(self) -> None:
        low, high = self.mean_soc - self.depth_of_discharge / 2, self.mean_soc + self.depth_of_discharge / 2
        if self.efc_per_day < 0 or self.c_rate < 0:
            raise ValueError(f"efc_per_day and c_rate must be >= 0: {self}")
        if not (0.0 <= self.depth_of_discharge <= 1.0 and low >= -1e-9 and high <= 1.0 + 1e-9):
            raise ValueError(f"the SOC swing mean_soc ± depth_of_discharge/2 must lie in [0, 1]: {self}")
        if not -20.0 <= self.temperature_c <= 60.0:
            raise ValueError(f"temperature_c must be in [-20, 60] °C: {self}")

    @property
    def soc_levels(self) -> np.ndarray:
        """SOC levels of the swing, equally weighted in time."""
        half = self.depth_of_discharge / 2
        return np.clip(np.linspace(self.mean_soc - half, self.mean_soc + half, _SOC_LEVELS), 0.0, 1.0)

    @property
    def temperature_k(self) -> float:
        return self.temperature_c + _KELVIN


def anode_potential_v(soc: np.ndarray) -> np.ndarray:
    """Graphite anode potential against Li/Li+ (Safari & Delacourt 2011), lithiation 0.0085-0.78 over SOC."""
    x = 0.0085 + np.asarray(soc) * (0.78 - 0.0085)
    return (
        0.6379
        + 0.5416 * np.exp(-305.5309 * x)
        + 0.044 * np.tanh(-(x - 0.1958) / 0.1088)
        - 0.1978 * np.tanh((x - 1.0571) / 0.0854)
        - 0.6875 * np.tanh((x + 0.0117) / 0.0529)
        - 0.0175 * np.tanh((x - 0.5692) / 0.0875)
    )


# --- trajectories: y = at(x), x = position(y) -------------------------------------------------------


class _Curve(Protocol):
    ceiling: float

    def at(self, x: np.ndarray) -> np.ndarray: ...

    def position(self, y: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class _Power:
    """y = k·x^p."""

    k: float
    p: float
    ceiling: float = math.inf

    def at(self, x: np.ndarray) -> np.ndarray:
        return self.k * x**self.p

    def position(self, y: np.ndarray) -> np.ndarray:
        return (y / self.k) ** (1.0 / self.p)


@dataclass(frozen=True)
class _ScaledPower:
    """y = (k·x)^p (BLAST-Lite's "power B")."""

    k: float
    p: float
    ceiling: float = math.inf

    def at(self, x: np.ndarray) -> np.ndarray:
        return (self.k * x) ** self.p

    def position(self, y: np.ndarray) -> np.ndarray:
        return y ** (1.0 / self.p) / self.k


@dataclass(frozen=True)
class _Sigmoid:
    """y = ceiling·tanh((k·x)^p / 2), the same curve as BLAST-Lite's 2·y∞·(1/2 - 1/(1 + exp((k·x)^p)))."""

    ceiling: float
    k: float | np.ndarray
    p: float

    def at(self, x: np.ndarray) -> np.ndarray:
        return self.ceiling * np.tanh((self.k * x) ** self.p / 2)

    def position(self, y: np.ndarray) -> np.ndarray:
        """Where y sits; a state at or above the ceiling sits at the far end, where the curve is flat."""
        fraction = np.clip(y / self.ceiling, 0.0, 1.0 - 1e-12)
        return (2 * np.arctanh(fraction)) ** (1.0 / self.p) / self.k


@dataclass(frozen=True)
class _Linear:
    """y = k·x, k >= 0."""

    k: float
    ceiling: float = math.inf

    def at(self, x: np.ndarray) -> np.ndarray:
        return self.k * x

    def position(self, y: np.ndarray) -> np.ndarray:
        return y / self.k if self.k > 0 else np.zeros_like(y)


def _advance(curve: _Curve, y: np.ndarray, dx: np.ndarray) -> np.ndarray:
    """The state after moving ``dx`` along ``curve`` from ``y``; never below ``y`` (rounding of f(f⁻¹(y)))."""
    return np.where(dx > 0, np.maximum(curve.at(curve.position(y) + dx), y), y)


# --- the three models ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Modes:
    """The trajectories of one chemistry's modes under one duty cycle."""

    calendar: _Curve
    cycling: _Curve
    r_calendar: _Curve
    r_cycling: _Curve


def _kokam_nmc(duty: DutyCycle) -> _Modes:
    t_norm = duty.temperature_k / 308.15
    ua_norm = anode_potential_v(duty.soc_levels) / 0.123
    q1 = float(np.mean(2.66e7 * np.exp(-17.8 / t_norm) * np.exp(-5.21 * ua_norm / t_norm)))
    q3 = 3.80e3 * math.exp(-18.4 / t_norm) * math.exp(1.04 * math.exp(duty.depth_of_discharge**2))
    return _Modes(
        calendar=_Power(q1, 0.357),
        cycling=_Power(q3, 0.778),
        r_calendar=_Power(0.0570 * q1, 1.25),
        r_cycling=_Power(4.87 * q3, 0.712),
    )


def _leaf_lmo(duty: DutyCycle) -> _Modes:
    t_k = duty.temperature_k
    k_cal = float(np.mean(3.25e8 * np.exp(-7580.0 / t_k) * np.exp(162.0 * duty.soc_levels / t_k)))
    # No resistance model: the LMO packs' resistance follows their capacity (see _Group.lli_resistance).
    no_growth = _Linear(0.0)
    return _Modes(_Power(k_cal, 0.464), _Power(7.58e-5, 1.08), r_calendar=no_growth, r_cycling=no_growth)


def _sony_lfp(duty: DutyCycle) -> _Modes:
    t_k = duty.temperature_k
    soc = duty.soc_levels
    ua = anode_potential_v(soc)
    ceiling = float(np.mean(0.98968715 * np.exp(-2881067.56 / t_k**2 * ua**0.5 + 8742.06309 / t_k * ua**0.5)))
    shape = float(
        np.mean(
            3.32850281e-4
            * np.exp(
                7.34553186e11 / t_k**4 * ua ** (1 / 3)
                - 2.82161576e-6 * t_k**3 * ua**0.25
                - 3.28499132e9 / t_k**3 * ua ** (1 / 3)
                + 1.27227594e-3 * t_k**2 * ua**0.25
            )
        )
    )
    dod, c_rate = duty.depth_of_discharge, duty.c_rate
    q5 = abs(-6.81260579e-6 + 2.59615973e-5 * dod + 2.11559710e-6 * math.exp(dod**2 * c_rate**3))
    r_cal_per_s = (
        3.4194e-10
        * math.exp(-71827.0 / 8.3144 * (1 / t_k - 1 / 298.15))
        * float(np.mean(-3.3903 * (soc - 0.5) ** 3 + 1.5604))
    )
    # The fitted C-rate factor turns negative above 1.05 C; growth is held at zero there instead.
    r_cyc_per_efc = max(-0.002 * c_rate + 0.0021, 0.0) * (6.8477 * (dod - 0.5) ** 3 + 0.91882) / 100
    return _Modes(
        calendar=_Sigmoid(ceiling, 1.30510034e-4, shape),
        cycling=_ScaledPower(q5, 1.12847759),
        r_calendar=_Linear(r_cal_per_s * 86400.0),
        r_cycling=_Linear(r_cyc_per_efc),
    )


_MODELS = {Chemistry.NMC: _kokam_nmc, Chemistry.LMO: _leaf_lmo, Chemistry.LFP: _sony_lfp}
_SECOND_LIFE_MODELS = frozenset({Chemistry.LMO})


def _lam_midpoint_efc(duty: DutyCycle) -> float:
    """Kokam's q5: about the EFC at which half the active material is lost."""
    return 1e4 + 153.0 * (duty.temperature_c - 55.0) * duty.depth_of_discharge * (duty.mean_soc / 0.6)


def _lam_curve(duty: DutyCycle, speedup: np.ndarray) -> _Sigmoid:
    return _Sigmoid(1.0, speedup / _lam_midpoint_efc(duty), 10.0)


def _lam_resistance(lam: np.ndarray) -> np.ndarray:
    return -0.08 + 1.09 / (1.01 - lam)


# --- packs of one chemistry ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Wear:
    """Degradation states of a group of packs, in the units of their chemistry's model."""

    calendar: np.ndarray
    cycling: np.ndarray
    lam: np.ndarray
    r_calendar: np.ndarray
    r_cycling: np.ndarray


@dataclass(frozen=True)
class _Group:
    """The packs of one chemistry: where they sit in the fleet and their wear, at start and now.

    ``reference`` is the capacity (relative to new) that the model's capacity is relative to: 1, or the
    SoH at the start of second life for the LMO model. The LAM mode runs only for ``lam_members``
    (indices into the group), each with its midpoint divided by ``lam_speedup``.
    """

    chemistry: Chemistry
    index: np.ndarray
    scalar: np.ndarray
    reference: np.ndarray
    lam_members: np.ndarray
    lam_speedup: np.ndarray
    start: _Wear
    wear: _Wear

    def capacity(self, wear: _Wear) -> np.ndarray:
        """Capacity relative to new: the lesser of what lithium inventory and active material allow."""
        lli = self.reference * (1.0 - wear.calendar - wear.cycling)
        return np.maximum(np.minimum(lli, 1.01 - wear.lam), CAPACITY_FLOOR)

    def lli_resistance(self, wear: _Wear) -> np.ndarray:
        """Resistance from lithium loss (SEI), relative to new; for LMO tied to the capacity instead."""
        if self.chemistry in _SECOND_LIFE_MODELS:
            lli = np.maximum(1.0 - wear.calendar - wear.cycling, CAPACITY_FLOOR)
            return lli**-LMO_RESISTANCE_EXPONENT
        return 1.0 + wear.r_calendar + wear.r_cycling

    def aged(self, days: float | np.ndarray, duty: DutyCycle) -> _Group:
        """The group after ``days`` (a scalar, or one horizon per pack) of ``duty``, in one exact step."""
        modes = _MODELS[self.chemistry](duty)
        wear = self.wear
        scaled_days = self.scalar * days
        scaled_efc_new = scaled_days * duty.efc_per_day * self.capacity(self.start)
        scaled_efc_model = scaled_efc_new / self.reference
        lam = wear.lam.copy()
        members = self.lam_members
        lam[members] = _advance(_lam_curve(duty, self.lam_speedup), lam[members], scaled_efc_new[members])
        return replace(
            self,
            wear=_Wear(
                calendar=_advance(modes.calendar, wear.calendar, scaled_days),
                cycling=_advance(modes.cycling, wear.cycling, scaled_efc_model),
                lam=lam,
                r_calendar=_advance(modes.r_calendar, wear.r_calendar, scaled_days),
                r_cycling=_advance(modes.r_cycling, wear.r_cycling, scaled_efc_model),
            ),
        )


def _fresh_group(chemistry: Chemistry, n: int) -> _Group:
    """``n`` fresh cells (for LMO: modules at the start of their second life), no pack-to-pack variation."""
    zeros = np.zeros(n)
    members = np.arange(n) if chemistry is Chemistry.NMC else np.arange(0)
    wear = _Wear(zeros, zeros, zeros, zeros, zeros)
    return _Group(chemistry, np.arange(n), np.ones(n), np.ones(n), members, np.ones(members.size), wear, wear)


def _second_life_group(
    chemistry: Chemistry, index: np.ndarray, fleet: FleetSpec, scalar: np.ndarray, duty: DutyCycle
) -> _Group:
    soh, knee = fleet.soh[index], fleet.knee[index]
    zeros = np.zeros(index.size)
    members = np.arange(index.size) if chemistry is Chemistry.NMC else np.flatnonzero(knee)
    speedup = np.where(knee[members], KNEE_LAM_SPEEDUP, 1.0)
    lam = zeros.copy()
    lam[members] = _lam_curve(duty, speedup).at(FIRST_LIFE_EFC)
    if chemistry in _SECOND_LIFE_MODELS:
        wear = _Wear(zeros, zeros, lam, zeros, zeros)
        return _Group(chemistry, index, scalar, soh, members, speedup, wear, wear)
    modes = _MODELS[chemistry](duty)
    loss = 1.0 - soh
    calendar = np.minimum(CALENDAR_SHARE * loss, _SIGMOID_START_LIMIT * modes.calendar.ceiling)
    cycling = loss - calendar
    wear = _Wear(
        calendar,
        cycling,
        lam,
        modes.r_calendar.at(modes.calendar.position(calendar)),
        modes.r_cycling.at(modes.cycling.position(cycling)),
    )
    return _Group(chemistry, index, scalar, np.ones(index.size), members, speedup, wear, wear)


# --- public API ------------------------------------------------------------------------------------


def capacity_retention(chemistry: Chemistry, days: float | np.ndarray, duty: DutyCycle) -> np.ndarray:
    """Relative capacity q(t) of a fresh cell after ``days`` of ``duty``.

    For LMO the cell is a Leaf module at the start of its second life and q is relative to that start.
    """
    horizon = np.atleast_1d(np.asarray(days, dtype=float))
    if np.any(horizon < 0):
        raise ValueError("days must be >= 0")
    group = _fresh_group(Chemistry(chemistry), horizon.size).aged(horizon, duty)
    return group.capacity(group.wear).reshape(np.shape(days))


@dataclass(frozen=True)
class FleetAgeing:
    """A fleet on its way through second life: the start fleet and every pack's degradation states.

    :meth:`start` places every pack on its model's curves, :meth:`advance` ages the packs (call it
    repeatedly to vary the duty cycle by season), :attr:`fleet` is the fleet as it is now.
    """

    start_fleet: FleetSpec
    degradation_scalar: np.ndarray
    days: float
    groups: tuple[_Group, ...]

    @classmethod
    def start(cls, fleet: FleetSpec, duty: DutyCycle = DutyCycle(), seed: int = 0) -> FleetAgeing:
        """Place each pack of ``fleet`` on its curves for ``duty``; ``seed`` draws the degradation scalars."""
        rng = np.random.default_rng(seed)
        scalar = rng.lognormal(0.0, DEGRADATION_SCALAR_SIGMA_LN, fleet.n)
        groups = tuple(
            _second_life_group(chemistry, index, fleet, scalar[index], duty)
            for chemistry in Chemistry
            if (index := np.flatnonzero(fleet.chemistry == chemistry)).size
        )
        return cls(fleet, scalar, 0.0, groups)

    def advance(self, days: float, duty: DutyCycle = DutyCycle()) -> FleetAgeing:
        """The same packs after ``days`` more of ``duty`` (one stretch of constant stressors)."""
        if days < 0:
            raise ValueError(f"days must be >= 0, got {days}")
        groups = tuple(group.aged(days, duty) for group in self.groups)
        return replace(self, days=self.days + days, groups=groups)

    @property
    def fleet(self) -> FleetSpec:
        """The fleet now: SoH scaled by the capacity ratio, R/R_new by the resistance growth since start."""
        soh = self.start_fleet.soh.copy()
        resistance_ratio = self.start_fleet.resistance_ratio.copy()
        for group in self.groups:
            start, now = group.start, group.wear
            soh[group.index] *= group.capacity(now) / group.capacity(start)
            growth = np.maximum(
                group.lli_resistance(now) / group.lli_resistance(start),
                _lam_resistance(now.lam) / _lam_resistance(start.lam),
            )
            resistance_ratio[group.index] *= growth
        return self.start_fleet.aged(soh, resistance_ratio)


def age_fleet(fleet: FleetSpec, days: float, duty: DutyCycle = DutyCycle(), seed: int = 0) -> FleetSpec:
    """``fleet`` after ``days`` of second life at ``duty``, starting from its present SoH and resistance.

    Each call starts second life afresh from the fleet's present state; to age in stretches of
    different duty, keep a :class:`FleetAgeing` and call its ``advance``.
    """
    return FleetAgeing.start(fleet, duty, seed).advance(days, duty).fleet
