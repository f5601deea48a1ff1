"""A fleet of second-life EV packs: the per-pack parameters the plant is built from."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from statistics import NormalDist

import numpy as np

from harness.sim.chemistry import CELL_V_MIN, CELL_V_NOMINAL, Chemistry, ocv_cell, table_offsets


@dataclass(frozen=True)
class FleetSpec:
    """Per-pack parameters of a fleet, one array entry per pack (all arrays have shape (n,)).

    Electrical values are pack-level: ``capacity_new_ah`` is the capacity of the series string when
    the pack was new, ``r0_new_ohm``/``r1_new_ohm`` the ohmic and RC-branch resistance of the whole
    pack when new at 25 °C and 50 % SOC. The present state of the pack is ``soh`` (capacity over new)
    and ``resistance_ratio`` (resistance over new). ``make`` indexes :data:`MAKES`, ``chemistry`` holds
    :class:`Chemistry` values.
    """

    make: np.ndarray
    chemistry: np.ndarray
    series_cells: np.ndarray
    capacity_new_ah: np.ndarray
    soh: np.ndarray
    resistance_ratio: np.ndarray
    r0_new_ohm: np.ndarray
    r1_new_ohm: np.ndarray
    tau_s: np.ndarray
    weakest_cell: np.ndarray
    strongest_cell: np.ndarray
    max_discharge_a: np.ndarray
    max_charge_a: np.ndarray
    thermal_mass_j_per_k: np.ndarray
    thermal_resistance_k_per_w: np.ndarray
    knee: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.make)
        for field in fields(self):
            value = getattr(self, field.name)
            if np.shape(value) != (n,):
                raise ValueError(f"FleetSpec.{field.name} has shape {np.shape(value)}, expected ({n},)")

    @property
    def n(self) -> int:
        return len(self.make)

    @property
    def nominal_voltage_v(self) -> np.ndarray:
        return self.series_cells * CELL_V_NOMINAL[self.chemistry]

    @property
    def nameplate_wh(self) -> np.ndarray:
        """Energy of each pack when new, at nominal voltage."""
        return self.capacity_new_ah * self.nominal_voltage_v

    @property
    def usable_wh(self) -> np.ndarray:
        """Energy each pack holds now: nameplate times state of health."""
        return self.nameplate_wh * self.soh

    def subset(self, index: np.ndarray | slice) -> FleetSpec:
        """The fleet made of the selected packs only."""
        return replace(self, **{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def aged(self, soh: np.ndarray, resistance_ratio: np.ndarray) -> FleetSpec:
        """The same packs with a new state of health and resistance ratio."""
        return replace(self, soh=np.asarray(soh, float), resistance_ratio=np.asarray(resistance_ratio, float))

    def rated_discharge_power_w(self, soc: float = 0.5) -> np.ndarray:
        """Steady discharge power of each pack at its rated current from ``soc``, at 25 °C.

        The rated current is ``max_discharge_a`` scaled by the state of health (a BMS derates an aged
        pack in proportion to its capacity), reduced where the DC drop across ``r0 + r1`` at the present
        resistance ratio would take the average cell below its under-voltage limit. This is a rating for
        sizing checks, not the live limit of the plant's BMS model.
        """
        ocv_v = self.series_cells * ocv_cell(table_offsets(self.chemistry), np.full(self.n, soc))
        resistance_ohm = (self.r0_new_ohm + self.r1_new_ohm) * self.resistance_ratio
        floor_v = self.series_cells * CELL_V_MIN[self.chemistry]
        current_a = np.minimum(self.max_discharge_a * self.soh, (ocv_v - floor_v) / resistance_ohm)
        current_a = np.maximum(current_a, 0.0)
        return current_a * (ocv_v - current_a * resistance_ohm)


@dataclass(frozen=True)
class PackMake:
    """One EV model's traction pack when new, as a whole pack (series string of parallel cell groups).

    Resistances are the pack's DC values at 25 °C and 50 % SOC: ``r0_new_ohm`` the ohmic part,
    ``r1_new_ohm`` the RC branch with time constant ``tau_s``. Currents are continuous ratings.
    ``thermal_resistance_k_per_w`` is pack-to-ambient in a second-life rack: about 0.015 K/W for
    liquid-cooled packs with their loop running, 0.05 K/W for the passively cooled Leaf packs [A].
    """

    name: str
    chemistry: Chemistry
    series_cells: int
    capacity_new_ah: float
    r0_new_ohm: float
    r1_new_ohm: float
    tau_s: float
    max_discharge_a: float
    max_charge_a: float
    thermal_mass_j_per_k: float
    thermal_resistance_k_per_w: float

    @property
    def nominal_voltage_v(self) -> float:
        return self.series_cells * float(CELL_V_NOMINAL[self.chemistry])

    @property
    def nameplate_wh(self) -> float:
        """Energy when new, at nominal voltage (how the fleet's MWh figure is counted)."""
        return self.capacity_new_ah * self.nominal_voltage_v


SPECIFIC_HEAT_J_PER_KG_K = 1000.0
"""Lumped specific heat of a whole pack (cells, modules, enclosure) used for the thermal masses."""

# Pack data from public teardowns and spec sheets [K]; resistances are cell DCIR scaled to the pack
# (series / parallel) plus ~5 mOhm of busbars and contactors [A]. Masses are whole-pack masses in kg.
MAKES: tuple[PackMake, ...] = (
    PackMake(
        "nissan-leaf-24", Chemistry.LMO, series_cells=96, capacity_new_ah=66.2,
        r0_new_ohm=0.040, r1_new_ohm=0.050, tau_s=30.0, max_discharge_a=200.0, max_charge_a=120.0,
        thermal_mass_j_per_k=294 * SPECIFIC_HEAT_J_PER_KG_K, thermal_resistance_k_per_w=0.05,
    ),
    PackMake(
        "nissan-leaf-40", Chemistry.NMC, series_cells=96, capacity_new_ah=115.0,
        r0_new_ohm=0.030, r1_new_ohm=0.040, tau_s=35.0, max_discharge_a=300.0, max_charge_a=140.0,
        thermal_mass_j_per_k=303 * SPECIFIC_HEAT_J_PER_KG_K, thermal_resistance_k_per_w=0.05,
    ),
    PackMake(
        "chevrolet-bolt-60", Chemistry.NMC, series_cells=96, capacity_new_ah=171.0,
        r0_new_ohm=0.028, r1_new_ohm=0.032, tau_s=40.0, max_discharge_a=350.0, max_charge_a=160.0,
        thermal_mass_j_per_k=435 * SPECIFIC_HEAT_J_PER_KG_K, thermal_resistance_k_per_w=0.015,
    ),
    PackMake(
        "chevrolet-bolt-66", Chemistry.NMC, series_cells=96, capacity_new_ah=188.0,
        r0_new_ohm=0.026, r1_new_ohm=0.030, tau_s=40.0, max_discharge_a=350.0, max_charge_a=160.0,
        thermal_mass_j_per_k=430 * SPECIFIC_HEAT_J_PER_KG_K, thermal_resistance_k_per_w=0.015,
    ),
    PackMake(
        "tesla-model-3-lr", Chemistry.NMC, series_cells=96, capacity_new_ah=214.0,
        r0_new_ohm=0.030, r1_new_ohm=0.022, tau_s=25.0, max_discharge_a=450.0, max_charge_a=250.0,
        thermal_mass_j_per_k=480 * SPECIFIC_HEAT_J_PER_KG_K, thermal_resistance_k_per_w=0.015,
    ),
    PackMake(
        "tesla-model-s-100", Chemistry.NMC, series_cells=96, capacity_new_ah=285.0,
        r0_new_ohm=0.033, r1_new_ohm=0.022, tau_s=25.0, max_discharge_a=450.0, max_charge_a=250.0,
        thermal_mass_j_per_k=625 * SPECIFIC_HEAT_J_PER_KG_K, thermal_resistance_k_per_w=0.015,
    ),
    PackMake(
        "tesla-model-3-sr-lfp", Chemistry.LFP, series_cells=106, capacity_new_ah=161.0,
        r0_new_ohm=0.037, r1_new_ohm=0.027, tau_s=50.0, max_discharge_a=400.0, max_charge_a=200.0,
        thermal_mass_j_per_k=420 * SPECIFIC_HEAT_J_PER_KG_K, thermal_resistance_k_per_w=0.015,
    ),
)
"""The catalogue of makes; ``FleetSpec.make`` holds indices into this tuple. NCA Tesla packs count as NMC."""

MAKE_INDEX: dict[str, int] = {make.name: i for i, make in enumerate(MAKES)}

DEFAULT_MIX: dict[str, float] = {
    "nissan-leaf-24": 0.04,
    "nissan-leaf-40": 0.04,
    "chevrolet-bolt-60": 0.04,
    "chevrolet-bolt-66": 0.08,
    "tesla-model-3-lr": 0.30,
    "tesla-model-s-100": 0.40,
    "tesla-model-3-sr-lfp": 0.10,
}
"""Shares chosen so 805 packs hold the reference plant's 63 MWh (mean ≈ 78 kWh of nameplate per pack)."""


@dataclass(frozen=True)
class ReferencePlant:
    """What the default fleet must reproduce (reference/domain.md §0)."""

    packs: int = 805
    nameplate_wh: float = 63e6
    power_w: float = 12e6


REFERENCE_PLANT = ReferencePlant()

_STANDARD_NORMAL = NormalDist()
_normal_cdf = np.vectorize(_STANDARD_NORMAL.cdf, otypes=[float])
_normal_ppf = np.vectorize(_STANDARD_NORMAL.inv_cdf, otypes=[float])
_OPEN_UNIT_LOW, _OPEN_UNIT_HIGH = np.nextafter(0.0, 1.0), np.nextafter(1.0, 0.0)


def _allocate(n: int, mix: dict[str, float]) -> np.ndarray:
    """Pack count per make (indexed like MAKES): the shares of ``n``, rounded by largest remainder."""
    unknown = set(mix) - set(MAKE_INDEX)
    if unknown:
        raise ValueError(f"unknown makes in mix: {sorted(unknown)}; known: {sorted(MAKE_INDEX)}")
    shares = np.zeros(len(MAKES))
    for name, share in mix.items():
        shares[MAKE_INDEX[name]] = share
    if np.any(shares < 0) or not np.isfinite(shares).all() or shares.sum() <= 0:
        raise ValueError(f"mix shares must be finite, >= 0 and not all zero: {mix}")
    exact = n * shares / shares.sum()
    counts = np.floor(exact).astype(np.intp)
    remainder_order = np.argsort(-(exact - counts), kind="stable")
    counts[remainder_order[: n - counts.sum()]] += 1
    return counts


def _truncated_normal_from_scores(
    z: np.ndarray, mean: float, sd: float, bounds: tuple[float, float]
) -> np.ndarray:
    """Map standard-normal scores onto the normal(mean, sd) truncated to ``bounds``, keeping their ranks."""
    low_p, high_p = _normal_cdf((np.asarray(bounds) - mean) / sd)
    u = np.clip(low_p + _normal_cdf(z) * (high_p - low_p), _OPEN_UNIT_LOW, _OPEN_UNIT_HIGH)
    return np.clip(mean + sd * _normal_ppf(u), *bounds)


def _cell_extremes(
    rng: np.random.Generator, series_cells: np.ndarray, spread: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Weakest and strongest cell capacity of each pack, relative to the mean of its series cells."""
    sigma = rng.uniform(*spread, size=len(series_cells))
    cells = 1.0 + sigma[:, None] * rng.standard_normal((len(series_cells), int(series_cells.max())))
    present = np.arange(cells.shape[1]) < series_cells[:, None]
    cells /= np.where(present, cells, 0.0).sum(axis=1, keepdims=True) / series_cells[:, None]
    return np.where(present, cells, np.inf).min(axis=1), np.where(present, cells, -np.inf).max(axis=1)


def draw_fleet(
    n: int = 805,
    seed: int = 0,
    *,
    mix: dict[str, float] = DEFAULT_MIX,
    soh_mean: float = 0.75,
    soh_sd: float = 0.06,
    soh_bounds: tuple[float, float] = (0.55, 0.92),
    resistance_median: float = 1.5,
    resistance_sigma_ln: float = 0.25,
    soh_resistance_correlation: float = -0.7,
    cell_spread: tuple[float, float] = (0.02, 0.03),
    knee_fraction: float = 0.02,
) -> FleetSpec:
    """Draw a second-life fleet of ``n`` packs, deterministic for ``seed`` (reference/domain.md §3.1).

    - Makes: exactly ``n`` x share packs of each make (largest-remainder rounding), in random order.
    - SoH: the normal(``soh_mean``, ``soh_sd``) truncated to ``soh_bounds``. ``soh_mean`` and ``soh_sd``
      are the parameters of the parent normal, not the moments of the result: at the defaults the
      drawn SoH has mean 0.7497 and sd 0.0592.
    - Resistance ratio (R/R_new): lognormal with median ``resistance_median`` and log-sd
      ``resistance_sigma_ln``, tied to SoH by a Gaussian copula: the normal scores behind SoH and
      log R have correlation ``soh_resistance_correlation`` (negative: weaker packs have higher R).
    - Cells: each pack's within-pack capacity sigma is uniform in ``cell_spread``; its series cells are
      drawn normal around 1 and the weakest/strongest cell is their min/max over their mean.
    - Knee: round(``knee_fraction`` x n) packs, picked at random, will hit an early knee when aged.
    """
    if n < 1:
        raise ValueError(f"a fleet needs at least one pack, got n={n}")
    if not -1.0 < soh_resistance_correlation < 1.0:
        raise ValueError(f"soh_resistance_correlation must be in (-1, 1), got {soh_resistance_correlation}")
    if not 0.0 <= knee_fraction <= 1.0:
        raise ValueError(f"knee_fraction must be in [0, 1], got {knee_fraction}")
    if soh_sd <= 0 or not soh_bounds[0] < soh_bounds[1]:
        raise ValueError(f"need soh_sd > 0 and soh_bounds low < high, got {soh_sd}, {soh_bounds}")
    rng = np.random.default_rng(seed)
    make = rng.permutation(np.repeat(np.arange(len(MAKES)), _allocate(n, mix)))

    scores = rng.standard_normal((2, n))
    rho = soh_resistance_correlation
    resistance_score = rho * scores[0] + np.sqrt(1.0 - rho * rho) * scores[1]
    soh = _truncated_normal_from_scores(scores[0], soh_mean, soh_sd, soh_bounds)
    resistance_ratio = resistance_median * np.exp(resistance_sigma_ln * resistance_score)

    def column(attribute: str, dtype: type = float) -> np.ndarray:
        return np.array([getattr(m, attribute) for m in MAKES], dtype=dtype)[make]

    series_cells = column("series_cells", np.intp)
    weakest_cell, strongest_cell = _cell_extremes(rng, series_cells, cell_spread)
    knee = np.zeros(n, dtype=bool)
    knee[rng.choice(n, size=round(knee_fraction * n), replace=False)] = True
    return FleetSpec(
        make=make,
        chemistry=column("chemistry", np.intp),
        series_cells=series_cells,
        capacity_new_ah=column("capacity_new_ah"),
        soh=soh,
        resistance_ratio=resistance_ratio,
        r0_new_ohm=column("r0_new_ohm"),
        r1_new_ohm=column("r1_new_ohm"),
        tau_s=column("tau_s"),
        weakest_cell=weakest_cell,
        strongest_cell=strongest_cell,
        max_discharge_a=column("max_discharge_a"),
        max_charge_a=column("max_charge_a"),
        thermal_mass_j_per_k=column("thermal_mass_j_per_k"),
        thermal_resistance_k_per_w=column("thermal_resistance_k_per_w"),
        knee=knee,
    )
