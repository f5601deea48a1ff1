"""Second-life EV packs behind per-pack DC/DC converters: a vectorised Thevenin model with a BMS.

One :class:`PackArray` holds every pack of the plant as rows of a few numpy arrays. Per pack:

- **Electrics.** Thevenin ECM: pack OCV = series cells x cell OCV(SOC), an ohmic ``R0`` and one RC
  pair (``R1``, ``tau``). Resistance = new x ``resistance_ratio`` x Arrhenius(T; Ea = 20 kJ/mol,
  25 °C reference) x a SOC factor exp(4 ln1.2 (SOC - 0.5)^2), which is 1.0 at 50 % and 1.2 at both
  ends; R0 and R1 scale together. Capacity = ``capacity_new_ah`` x ``soh``. Within a step the
  current is constant; the terminal voltage uses the RC voltage at the start of the step,
  ``V_t = OCV - v_rc - R0 I``, and the pack delivers exactly its (clipped) power command:
  ``R0 I^2 - E I + P = 0`` with ``E = OCV - v_rc``, solved as ``I = 2P / (E + sqrt(E^2 - 4 R0 P))``
  (no cancellation at small P). The RC branch then advances exactly:
  ``v_rc <- v_rc e^(-dt/tau) + R1 (1 - e^(-dt/tau)) I``.
- **Energy.** Per step: chemical ``OCV I dt``, terminal ``V_t I dt`` (= P dt) and loss
  ``(R0 I + v_rc) I dt``; chemical = terminal + loss to rounding. All of the loss heats the pack.
- **Cells.** Top-balanced series cells: the weakest cell sets the pack capacity, so pack SOC is the
  weakest cell's SOC and the strongest cell sits at ``1 - (1 - SOC) weakest/strongest``. The cell
  voltages of a step are those SOCs' OCV minus the per-cell share of ``v_rc + R0 I``.
- **Heat.** Lumped: ``C_th dT/dt = loss power + runaway heat - (T - T_amb)/R_th``, advanced exactly
  for the mean heat of the interval.
- **BMS limits.** Current limits ``max_*_a x soh``, cut by the most restrictive of: temperature (full
  10-45 °C, linear to 0 at 60 °C, linear to 20 % at -10 °C and held there below), SOC (discharge
  linear to 0 from SOC 0.15 to 0.05, charge from 0.85 to 0.98) and the cell-voltage window (weakest
  cell >= ``CELL_V_MIN`` and strongest <= ``CELL_V_MAX`` at the operating point). The power limits are
  the terminal power at those currents, zero for an open contactor or a latched fault. Because every
  cell stays below twice ``CELL_V_MIN``, the window keeps the current below the maximum-power point,
  so a power within the limits never exceeds ``E^2 / (4 R0)``.
- **BMS trips.** Cell voltage beyond its limit by ``CELL_TRIP_MARGIN_V``, current above
  ``OVER_CURRENT_RATIO`` x the (state-of-health scaled) rating, temperature above 65 °C, or an injected
  isolation fault. A trip latches its :class:`FaultCode` bit and opens the contactor unless it is
  welded.

**Two rates.** The electrical state (SOC, OCV, RC voltage, current, cell voltages, energy, voltage and
current trips) advances every step. What moves on thermal time scales - temperature, resistance, and
the BMS's published limits and temperature trip - is brought up to date every ``slow_period_s`` of
plant time (1 s by default, about the rate a BMS publishes its limits), and at once after anything
that changes which packs may run (a contactor command, a trip, an injected fault, a fault reset).
Between updates the converters hold the last published limits, as a real PCS does. The errors this
costs are far inside the trip margins (at 1C a resistance 1 s old is off by about 0.1 %).

**Converters.** The plant's DC/DC converters enforce the published limits of a healthy pack:
:meth:`PackArray.step` clips each command to them, so an in-limit command is delivered exactly. A
welded contactor on a tripped pack is the exception: its BMS has given up on it and publishes zero,
and its converter still draws what the controller commands, up to the converter's own rating
(``CONVERTER_CURRENT_RATIO`` x the pack's new rating) and the charge the pack holds. That is the case
a controller must handle. Whatever the command, SOC never leaves [0, 1].

**Cost.** A step is about 30 whole-array numpy operations on preallocated buffers and a slow update
about 45 more; nothing runs per pack in Python. Trips, welded tripped packs and very long steps leave
the common path.
"""

from __future__ import annotations

import math
from enum import Enum, IntFlag

import numpy as np

from harness.sim.chemistry import (
    CELL_V_MAX,
    CELL_V_MIN,
    OCV_TABLE,
    SOC_GRID,
    SOC_GRID_POINTS,
    segment_position,
    segment_table,
)
from harness.sim.fleet import FleetSpec

KELVIN = 273.15
ACTIVATION_ENERGY_J_PER_MOL = 20e3
GAS_CONSTANT_J_PER_MOL_K = 8.314462618
REFERENCE_TEMPERATURE_C = 25.0
SOC_END_RESISTANCE_FACTOR = 1.2

FULL_CURRENT_C = (10.0, 45.0)
"""Temperature band in which the BMS allows its full rated current."""
ZERO_CURRENT_HOT_C = 60.0
COLD_LIMIT_C = -10.0
COLD_FRACTION = 0.2
DISCHARGE_TAPER_SOC = (0.05, 0.15)
"""Discharge current rises linearly from zero at the lower SOC to full at the upper."""
CHARGE_TAPER_SOC = (0.85, 0.98)
"""Charge current falls linearly from full at the lower SOC to zero at the upper."""

CELL_TRIP_MARGIN_V = 0.1
OVER_CURRENT_RATIO = 1.5
OVER_TEMPERATURE_C = 65.0
CONVERTER_CURRENT_RATIO = 2.0
"""A pack converter's current rating over the pack's new rating (what limits a welded tripped pack)."""
DEFAULT_SLOW_PERIOD_S = 1.0
DEFAULT_RUNAWAY_HEAT_W = 20e3
DEFAULT_SOC_DRIFT = 0.1

_GRID_STEPS = SOC_GRID_POINTS - 1
_SOC_CURVATURE = 4.0 * math.log(SOC_END_RESISTANCE_FACTOR) / _GRID_STEPS**2
"""The SOC factor's exponent per squared table position (a position step is 1 % SOC)."""
_ACTIVATION_K = ACTIVATION_ENERGY_J_PER_MOL / GAS_CONSTANT_J_PER_MOL_K
_SOC_GUARD = 1.0 - 1e-9
"""Fraction of the stored charge a guarded step may move, so rounding never takes SOC past 0 or 1."""
_COLD_DERATE_PER_K = (1.0 - COLD_FRACTION) / (FULL_CURRENT_C[0] - COLD_LIMIT_C)
_COLD_DERATE_AT_0K = COLD_FRACTION - (COLD_LIMIT_C + KELVIN) * _COLD_DERATE_PER_K
_HOT_DERATE_PER_K = -1.0 / (ZERO_CURRENT_HOT_C - FULL_CURRENT_C[1])
_HOT_DERATE_AT_0K = -(ZERO_CURRENT_HOT_C + KELVIN) * _HOT_DERATE_PER_K
_CLOCK_TOLERANCE_S = 1e-9
"""Slack on the slow clock, so ten steps of 0.1 s make a 1 s period despite rounding."""
_MAX_POWER_GUARD = 0.999
"""Fraction of the maximum-power current an unprotected pack may reach (keeps the solve's root real)."""

assert np.all(CELL_V_MAX < 2.0 * CELL_V_MIN), "the voltage window must keep currents below maximum power"


class FaultCode(IntFlag):
    """Latched BMS trip causes, as a BMS reports them."""

    NONE = 0
    OVER_VOLTAGE = 1
    UNDER_VOLTAGE = 2
    OVER_CURRENT = 4
    OVER_TEMPERATURE = 8
    ISOLATION = 16


class InjectedFault(Enum):
    """Conditions a test injects into packs (through the relay box or battery emulator later)."""

    ISOLATION = "isolation"
    THERMAL_RUNAWAY = "thermal_runaway"
    """Parameter ``heat_w``: internal heat in W (default :data:`DEFAULT_RUNAWAY_HEAT_W`)."""
    WELDED_CONTACTOR = "welded_contactor"
    """The contactor cannot open; an open one welds when it next closes."""
    CONTACTOR_FAILED_OPEN = "contactor_failed_open"
    """Opens the contactor and refuses to close it. Replaces a weld, and a weld replaces it."""
    BMS_COMMS_LOSS = "bms_comms_loss"
    SOC_DRIFT = "soc_drift"
    """Parameter ``offset``: added to the reported SOC (default :data:`DEFAULT_SOC_DRIFT`)."""


_PARAMETERS: dict[InjectedFault, dict[str, float]] = {
    InjectedFault.THERMAL_RUNAWAY: {"heat_w": DEFAULT_RUNAWAY_HEAT_W},
    InjectedFault.SOC_DRIFT: {"offset": DEFAULT_SOC_DRIFT},
}

_REPORTED = ("soc", "v", "current_a", "temperature_c", "cell_v_min", "cell_v_max")

Index = int | slice | np.ndarray


def _read_only(array: np.ndarray) -> np.ndarray:
    view = array.view()
    view.flags.writeable = False
    return view


class PackArray:
    """Every pack of a fleet, stepped together (see the module docstring for the physics).

    State is exposed as read-only arrays of shape (n,): views that follow the state, or properties
    computed on access. Change it only through the methods. Positive power and current are
    discharge. Contactors start closed.
    """

    v_rc: np.ndarray
    current_a: np.ndarray
    terminal_v: np.ndarray
    """Terminal voltage at the operating point of the last step (the OCV before the first)."""
    power_w: np.ndarray
    """Terminal power delivered in the last step: the command after clipping."""
    contactor_closed: np.ndarray
    fault: np.ndarray
    """Latched :class:`FaultCode` bits."""
    online: np.ndarray
    """Packs the controller may use: contactor closed and no latched fault."""
    energy_loss_j: np.ndarray
    energy_terminal_j: np.ndarray
    energy_chemical_j: np.ndarray
    capacity_ah: np.ndarray
    """Present capacity: ``capacity_new_ah x soh``."""
    energy_capacity_j: np.ndarray
    """Energy from SOC 0 to 1 at nominal voltage (what energy-weighted dispatch weighs)."""
    limits_version: int = 0
    """Counts refreshes of the published limits (every slow period and after any contactor, fault or
    injection change): values derived from the slow state stay valid while it is unchanged."""

    def __init__(
        self,
        fleet: FleetSpec,
        soc: float | np.ndarray = 0.8,
        ambient_c: float = 25.0,
        *,
        slow_period_s: float = DEFAULT_SLOW_PERIOD_S,
    ) -> None:
        n = fleet.n
        soc = np.array(np.broadcast_to(np.asarray(soc, dtype=float), (n,)))
        if not np.all((soc >= 0.0) & (soc <= 1.0)):
            raise ValueError("initial SOC must lie in [0, 1]")
        if not slow_period_s >= 0.0:
            raise ValueError(f"slow_period_s must be >= 0, got {slow_period_s!r}")
        self.n = n
        self.fleet = fleet
        self._slow_period_s = slow_period_s
        self._slow_due_after_s = slow_period_s - _CLOCK_TOLERANCE_S
        self._ambient_k = ambient_c + KELVIN
        self._custom_ocv: dict[int, np.ndarray] = {}
        """Pack index -> pack-level OCV on the SOC grid, for packs given their own curve."""
        self._constants(fleet)
        self._pos = np.empty((2, n))
        """Table positions of the weakest (row 0) and strongest (row 1) cell: SOC x 100 + row base."""
        self._place(soc)

        self._v_rc = np.zeros(n)
        self._temperature_k = np.full(n, self._ambient_k)
        self._sensed = np.zeros((3, n))
        """Current, terminal voltage, and minus the strongest cell's share of the pack voltage: the rows
        the BMS compares with its trip thresholds each step."""
        self._current, self._terminal_v, self._neg_strong_v = self._sensed
        self._energy = np.zeros((3, n))  # cumulative loss, terminal, chemical (J)
        self._power = np.zeros(n)
        self._closed = np.ones(n, dtype=bool)
        self._online = np.ones(n, dtype=bool)
        self._fault = np.zeros(n, dtype=np.int64)
        self._welded = np.zeros(n, dtype=bool)
        self._failed_open = np.zeros(n, dtype=bool)
        self._isolation = np.zeros(n, dtype=bool)
        self._comms_lost = np.zeros(n, dtype=bool)
        self._drift = np.zeros(n)
        self._runaway_w = np.zeros(n)
        self._frozen = {name: np.zeros(n) for name in _REPORTED}
        self._frozen_heartbeat = np.zeros(n, dtype=np.int64)
        self._heartbeat_lag = np.zeros(n, dtype=np.int64)
        self._steps = 0
        self._unsettled_s = 0.0
        """Plant time since temperature, resistance and limits were last brought up to date."""
        self._loss_settled_j = np.zeros(n)

        self._ocv = np.empty((2, n))
        self._ocv_weak, self._ocv_strong = self._ocv
        self._e = np.empty(n)
        self._half_e = np.empty(n)
        self._half_e_sq = np.empty(n)
        self._r0 = np.empty(n)
        self._current_limit = np.empty((2, n))
        self._window = np.empty((2, n))
        self._limit = np.empty((2, n))
        self._discharge_limit, self._charge_limit = self._limit
        self._neg_charge_limit = np.empty(n)
        self._drop = np.empty(n)
        self._scratch = np.empty(n)
        self._r0_current = np.empty(n)
        self._flow = np.empty((3, n))  # this step's loss, terminal and chemical energy (J)
        self._loss_step, self._terminal_step, self._chemical_step = self._flow
        self._moved = np.empty((2, n))
        self._derate = np.empty(n)
        self._heat_target_k = np.empty(n)
        self._heat_decay = np.empty(n)
        self._hits = np.zeros((4, n), dtype=bool)
        self._over_current_hit, self._sensed_hits = self._hits[0], self._hits[1:]
        self._half = np.full(n, 0.5)
        self._zero = np.zeros((2, n))
        self._dt = math.nan
        self._fresh = False
        self._slow_due = True

        self._refresh_masks()
        self._ready()
        self._terminal_v[:] = self._e
        np.negative(self._ocv_strong, out=self._neg_strong_v)

        for name, array in (
            ("v_rc", self._v_rc),
            ("current_a", self._current),
            ("terminal_v", self._terminal_v),
            ("power_w", self._power),
            ("contactor_closed", self._closed),
            ("fault", self._fault),
            ("online", self._online),
            ("energy_loss_j", self._energy[0]),
            ("energy_terminal_j", self._energy[1]),
            ("energy_chemical_j", self._energy[2]),
        ):
            setattr(self, name, _read_only(array))
        self._publish_capacity()
        self._limit_views = (_read_only(self._discharge_limit), _read_only(self._charge_limit))

    def _place(self, soc: np.ndarray) -> None:
        """Put each pack's cells at pack SOC ``soc`` in its OCV table row."""
        strong_soc = 1.0 - (1.0 - soc) * self._weak_over_strong
        self._pos[0] = self._base + soc * _GRID_STEPS
        self._pos[1] = self._base + strong_soc * _GRID_STEPS

    def _publish_capacity(self) -> None:
        self.capacity_ah = _read_only(self._capacity_as / 3600.0)
        self.energy_capacity_j = _read_only(self._capacity_as * self.fleet.nominal_voltage_v)

    # ----------------------------------------------------------------- re-parameterising packs

    def set_soc(self, index: Index, soc: float | np.ndarray) -> None:
        """Put the packs at ``index`` at a new SOC (what a battery emulator's initial SOC does)."""
        value = np.asarray(soc, dtype=float)
        if not np.all((value >= 0.0) & (value <= 1.0)):
            raise ValueError(f"SOC must lie in [0, 1], got {soc!r}")
        present = self.soc
        present[index] = value
        self._place(present)
        self._changed()

    def set_capacity(self, index: Index, capacity_ah: float | np.ndarray) -> None:
        """Give the packs at ``index`` a new present capacity (their state of health follows)."""
        value = np.asarray(capacity_ah, dtype=float)
        if not np.all((value > 0.0) & np.isfinite(value)):
            raise ValueError(f"capacity must be a positive number of Ah, got {capacity_ah!r}")
        soh = np.array(self.fleet.soh)
        soh[index] = value / self.fleet.capacity_new_ah[index]
        self._rebuild(self.fleet.aged(soh, self.fleet.resistance_ratio))

    def set_resistance(self, index: Index, dc_resistance_ohm: float | np.ndarray) -> None:
        """Give the packs at ``index`` a new DC resistance R0 + R1 at 25 °C and 50 % SOC."""
        value = np.asarray(dc_resistance_ohm, dtype=float)
        if not np.all((value > 0.0) & np.isfinite(value)):
            raise ValueError(f"resistance must be a positive number of ohms, got {dc_resistance_ohm!r}")
        ratio = np.array(self.fleet.resistance_ratio)
        ratio[index] = value / (self.fleet.r0_new_ohm[index] + self.fleet.r1_new_ohm[index])
        self._rebuild(self.fleet.aged(self.fleet.soh, ratio))

    def set_ocv_curve(self, index: int, soc_points: np.ndarray, pack_v: np.ndarray) -> None:
        """Give pack ``index`` its own pack-level OCV curve (points at increasing SOC from 0 to 1)."""
        soc_points = np.asarray(soc_points, dtype=float)
        pack_v = np.asarray(pack_v, dtype=float)
        if soc_points.shape != pack_v.shape or soc_points.ndim != 1 or len(soc_points) < 2:
            raise ValueError("an OCV curve needs as many SOC points as voltages, at least two")
        if not (np.all(np.diff(soc_points) > 0) and soc_points[0] == 0.0 and soc_points[-1] == 1.0):
            raise ValueError("OCV curve SOC points must rise strictly from 0 to 1")
        if not (np.all(np.diff(pack_v) >= 0) and np.all(pack_v > 0)):
            raise ValueError("OCV curve voltages must be positive and never fall as SOC rises")
        self._custom_ocv[int(index)] = np.interp(SOC_GRID, soc_points, pack_v)
        self._rebuild(self.fleet)

    def _rebuild(self, fleet: FleetSpec) -> None:
        """New per-pack constants for ``fleet``, the state (SOC, RC voltage, heat, faults) kept."""
        soc = self.soc
        self.fleet = fleet
        self._constants(fleet)
        self._place(soc)
        self._publish_capacity()
        self._dt = math.nan
        self._changed()

    def _changed(self) -> None:
        self._fresh = False
        self._slow_due = True
        self._ready()

    def injected(self, kind: InjectedFault) -> np.ndarray:
        """Which packs carry the injected condition ``kind`` now (a copy)."""
        masks = {
            InjectedFault.ISOLATION: self._isolation,
            InjectedFault.THERMAL_RUNAWAY: self._runaway_w > 0.0,
            InjectedFault.WELDED_CONTACTOR: self._welded,
            InjectedFault.CONTACTOR_FAILED_OPEN: self._failed_open,
            InjectedFault.BMS_COMMS_LOSS: self._comms_lost,
            InjectedFault.SOC_DRIFT: self._drift != 0.0,
        }
        return np.array(masks[kind])

    def _constants(self, fleet: FleetSpec) -> None:
        """Everything per pack that the state never changes, in the form the hot path wants it."""
        n = fleet.n
        chemistry = np.asarray(fleet.chemistry, dtype=np.intp)
        cells = np.asarray(fleet.series_cells, dtype=float)
        self._cells = cells
        # One pack-level OCV table row per (chemistry, series cells) pair present in the fleet.
        pairs, row = np.unique(np.stack([chemistry, fleet.series_cells]), axis=1, return_inverse=True)
        tables = pairs[1][:, None] * OCV_TABLE[pairs[0]]
        if self._custom_ocv:
            custom = sorted(self._custom_ocv)
            row = np.array(row)
            row[custom] = len(tables) + np.arange(len(custom))
            tables = np.vstack([tables, *(self._custom_ocv[i] for i in custom)])
        self._segment_icpt, self._segment_slope = segment_table(tables)
        self._base = segment_position(row, 0.0)
        self._mid = self._base + 0.5 * _GRID_STEPS

        self._capacity_as = fleet.capacity_new_ah * fleet.soh * 3600.0
        self._weak_over_strong = fleet.weakest_cell / fleet.strongest_cell
        self._pos_per_as = np.stack(
            [_GRID_STEPS / self._capacity_as, _GRID_STEPS * self._weak_over_strong / self._capacity_as]
        )
        # R0 = r0_scale x exp(Ea/(R T) + SOC term): the Arrhenius reference is folded in.
        self._r0_scale = (
            fleet.r0_new_ohm
            * fleet.resistance_ratio
            * math.exp(-_ACTIVATION_K / (REFERENCE_TEMPERATURE_C + KELVIN))
        )
        self._r1_over_r0 = fleet.r1_new_ohm / fleet.r0_new_ohm
        self._tau_s = np.asarray(fleet.tau_s, dtype=float)
        self._neg_inv_thermal_tau = -1.0 / (fleet.thermal_mass_j_per_k * fleet.thermal_resistance_k_per_w)
        self._thermal_r = np.asarray(fleet.thermal_resistance_k_per_w, dtype=float)
        self._v_floor = cells * CELL_V_MIN[chemistry]
        self._v_ceiling = cells * CELL_V_MAX[chemistry]
        self._rated_a = np.stack([fleet.max_discharge_a * fleet.soh, fleet.max_charge_a * fleet.soh])
        self._converter_a = CONVERTER_CURRENT_RATIO * np.maximum(fleet.max_discharge_a, fleet.max_charge_a)

        # SOC tapers as lines in the table position: discharge in the weakest cell's, charge in the
        # strongest cell's. The strongest cell's SOC is affine in the pack SOC, so the charge line is
        # exactly the pack-SOC taper, and both rows come from one (2, n) multiply-add.
        low, high = DISCHARGE_TAPER_SOC
        full, empty = CHARGE_TAPER_SOC
        discharge_slope = 1.0 / ((high - low) * _GRID_STEPS)
        charge_slope = -1.0 / ((empty - full) * _GRID_STEPS * self._weak_over_strong)
        top = self._base + _GRID_STEPS
        self._taper_slope = np.stack([np.full(n, discharge_slope), charge_slope])
        self._taper_icpt = np.stack(
            [
                -(self._base + low * _GRID_STEPS) * discharge_slope,
                ((1.0 - empty) * self._weak_over_strong * _GRID_STEPS - top) * charge_slope,
            ]
        )
        # Electrical trips: current above / below, then rows of _sensed below their thresholds.
        self._over_current_a = OVER_CURRENT_RATIO * self._rated_a[0]
        self._lower = np.stack(
            [
                -OVER_CURRENT_RATIO * self._rated_a[1],
                cells * (CELL_V_MIN[chemistry] - CELL_TRIP_MARGIN_V),
                -cells * (CELL_V_MAX[chemistry] + CELL_TRIP_MARGIN_V),
            ]
        )
        # Held limits keep a taper from running SOC past 0 or 1 unless the hold plus a step outlasts
        # this; longer steps are guarded explicitly.
        positive = np.finfo(float).tiny
        hold_s = np.minimum(
            (high - low) * self._capacity_as / np.maximum(self._rated_a[0], positive),
            (empty - full) * self._capacity_as / np.maximum(self._rated_a[1], positive),
        )
        self._guard_above_s = float(hold_s.min()) - self._slow_period_s

    # ----------------------------------------------------------------- state read-outs

    @property
    def soc(self) -> np.ndarray:
        """True pack SOC (the weakest cell's)."""
        return (self._pos[0] - self._base) / _GRID_STEPS

    @property
    def temperature_c(self) -> np.ndarray:
        return self._temperature_k - KELVIN

    @property
    def ambient_c(self) -> float:
        return self._ambient_k - KELVIN

    @ambient_c.setter
    def ambient_c(self, value: float) -> None:
        self._settle_temperature()
        self._ambient_k = value + KELVIN

    @property
    def resistance_ohm(self) -> np.ndarray:
        """(R0, R1) per pack as of the last slow update."""
        self._ready()
        return np.stack([self._r0, self._r0 * self._r1_over_r0])

    def ocv_v(self) -> np.ndarray:
        """Pack open-circuit voltage now."""
        if not self._fresh:
            self._observe()
        return self._ocv_weak.copy()

    def power_limits(self) -> tuple[np.ndarray, np.ndarray]:
        """(discharge, charge) power limits in W, both >= 0, per pack, as the BMS last published them.

        The arrays are read-only views that later updates overwrite; copy them to keep them.
        """
        if self._slow_due:
            self._ready()
        return self._limit_views

    # ----------------------------------------------------------------- what the BMS reports

    @property
    def heartbeat(self) -> np.ndarray:
        """Counts steps while the pack's BMS link works; frozen while it is lost."""
        return np.where(self._comms_lost, self._frozen_heartbeat, self._steps - self._heartbeat_lag)

    @property
    def reported_soc(self) -> np.ndarray:
        return self._report("soc")

    @property
    def reported_v(self) -> np.ndarray:
        return self._report("v")

    @property
    def reported_current_a(self) -> np.ndarray:
        return self._report("current_a")

    @property
    def reported_temperature_c(self) -> np.ndarray:
        return self._report("temperature_c")

    @property
    def cell_v_min(self) -> np.ndarray:
        """Weakest cell's voltage at the last step's operating point, as reported."""
        return self._report("cell_v_min")

    @property
    def cell_v_max(self) -> np.ndarray:
        """Strongest cell's voltage at the last step's operating point, as reported."""
        return self._report("cell_v_max")

    def _report(self, name: str) -> np.ndarray:
        live = self._live_report(name)
        return np.where(self._comms_lost, self._frozen[name], live)

    def _live_report(self, name: str) -> np.ndarray:
        if name == "soc":
            return np.clip(self.soc + self._drift, 0.0, 1.0)
        if name == "v":
            return self._terminal_v.copy()
        if name == "current_a":
            return self._current.copy()
        if name == "temperature_c":
            return self.temperature_c
        if name == "cell_v_min":
            return self._terminal_v / self._cells
        return -self._neg_strong_v / self._cells

    # ----------------------------------------------------------------- the fast rate

    def _ready(self) -> None:
        if not self._fresh:
            self._observe()
        if self._slow_due:
            self._slow_update()

    def _observe(self) -> None:
        """OCV of both cell rows and ``E = OCV - v_rc`` for the present state."""
        pos, ocv, e = self._pos, self._ocv, self._e
        segment = pos.astype(np.intp)
        np.multiply(self._segment_slope.take(segment), pos, out=ocv)
        ocv += self._segment_icpt.take(segment)
        np.subtract(self._ocv_weak, self._v_rc, out=e)
        np.multiply(e, self._half, out=self._half_e)
        np.multiply(self._half_e, self._half_e, out=self._half_e_sq)
        self._fresh = True

    def _set_dt(self, dt: float) -> None:
        self._rc_decay = np.exp(-dt / self._tau_s)
        self._rc_gain = self._r1_over_r0 * (1.0 - self._rc_decay)
        self._dt_array = np.full(self.n, dt)
        self._dt = dt

    def step(self, dt: float, power_w: np.ndarray | float) -> None:
        """Advance every pack by ``dt`` seconds at terminal power ``power_w`` (W, + = discharge).

        Commands beyond the published limits are clipped to them (see the module docstring for
        welded tripped packs); an open contactor carries no current. ``power_w`` must not be NaN.
        """
        if not (dt > 0.0 and math.isfinite(dt)):
            raise ValueError(f"PackArray.step needs a positive finite dt, got {dt!r}")
        if dt != self._dt:
            self._set_dt(dt)
        self._ready()
        p, current, scratch, r0, drop = self._power, self._current, self._scratch, self._r0, self._drop
        r0_current, ocv_weak, terminal_v = self._r0_current, self._ocv_weak, self._terminal_v

        np.minimum(power_w, self._discharge_limit, out=p)
        np.maximum(p, self._neg_charge_limit, out=p)
        if dt > self._guard_above_s or self._unprotected.size:
            self._clip_physical(dt, power_w)

        np.multiply(r0, p, out=scratch)
        np.subtract(self._half_e_sq, scratch, out=scratch)
        np.sqrt(scratch, out=scratch)
        scratch += self._half_e
        np.divide(p, scratch, out=current)

        np.multiply(r0, current, out=r0_current)
        np.add(self._v_rc, r0_current, out=drop)
        np.subtract(ocv_weak, drop, out=terminal_v)
        np.subtract(drop, self._ocv_strong, out=self._neg_strong_v)
        np.multiply(current, self._dt_array, out=scratch)
        np.multiply(drop, scratch, out=self._loss_step)
        np.multiply(terminal_v, scratch, out=self._terminal_step)
        np.multiply(ocv_weak, scratch, out=self._chemical_step)
        self._energy += self._flow
        np.multiply(self._pos_per_as, scratch, out=self._moved)
        self._pos -= self._moved
        self._v_rc *= self._rc_decay
        r0_current *= self._rc_gain
        self._v_rc += r0_current

        hits = self._hits
        np.greater(current, self._over_current_a, out=self._over_current_hit)
        np.less(self._sensed, self._lower, out=self._sensed_hits)
        self._steps += 1
        self._fresh = False
        self._unsettled_s += dt
        if self._unsettled_s >= self._slow_due_after_s:
            self._slow_due = True
        if self._isolation_any or np.count_nonzero(hits):
            self._trip(
                np.where(hits[0] | hits[1], FaultCode.OVER_CURRENT, 0)
                | np.where(hits[2], FaultCode.UNDER_VOLTAGE, 0)
                | np.where(hits[3], FaultCode.OVER_VOLTAGE, 0)
            )

    def _clip_physical(self, dt: float, power_w: np.ndarray | float) -> None:
        """Bound every pack by the charge it holds for ``dt``; let unprotected packs (welded contactor,
        tripped BMS) take their command up to their converter's rating."""
        e, r0, soc = self._e, self._r0, self.soc
        stored_a = self._capacity_as * _SOC_GUARD / dt
        discharge_a = np.minimum(soc * stored_a, _MAX_POWER_GUARD * e / (2.0 * r0))
        charge_a = (1.0 - soc) * stored_a
        p, unprotected = self._power, self._unprotected
        if unprotected.size:
            discharge_a[unprotected] = np.minimum(discharge_a[unprotected], self._converter_a[unprotected])
            charge_a[unprotected] = np.minimum(charge_a[unprotected], self._converter_a[unprotected])
            p[unprotected] = np.broadcast_to(power_w, p.shape)[unprotected]
        np.clip(p, -(e + r0 * charge_a) * charge_a, (e - r0 * discharge_a) * discharge_a, out=p)

    # ----------------------------------------------------------------- the slow rate

    def _slow_update(self) -> None:
        """Temperature, its trip, resistance and the published limits, for the present state."""
        self.limits_version += 1
        self._settle_temperature()
        temperature_k, pos, e, r0, u = self._temperature_k, self._pos, self._e, self._r0, self._scratch
        too_hot = temperature_k > OVER_TEMPERATURE_C + KELVIN
        if too_hot.any():
            self._trip(np.where(too_hot, FaultCode.OVER_TEMPERATURE, 0))

        np.subtract(pos[0], self._mid, out=u)
        np.multiply(u, u, out=u)
        u *= _SOC_CURVATURE
        np.divide(_ACTIVATION_K, temperature_k, out=r0)
        r0 += u
        np.exp(r0, out=r0)
        r0 *= self._r0_scale

        limit, window = self._current_limit, self._window
        np.multiply(pos, self._taper_slope_a, out=limit)
        limit += self._taper_icpt_a
        np.subtract(e, self._v_floor, out=window[0])
        np.add(self._v_rc, self._v_ceiling, out=window[1])
        window[1] -= self._ocv_strong
        window /= r0
        np.minimum(limit, window, out=limit)
        np.multiply(self._rated_online, self._temperature_derate(), out=window)
        np.minimum(limit, window, out=limit)
        np.maximum(limit, self._zero, out=limit)

        power = self._limit
        np.multiply(limit, r0, out=power)
        np.subtract(e, self._discharge_limit, out=self._discharge_limit)
        np.add(e, self._charge_limit, out=self._charge_limit)
        power *= limit
        np.negative(self._charge_limit, out=self._neg_charge_limit)
        self._slow_due = False

    def _temperature_derate(self) -> np.ndarray:
        """Fraction of the rated current the temperature allows (into a work buffer)."""
        derate, hot = self._derate, self._scratch
        np.multiply(self._temperature_k, _COLD_DERATE_PER_K, out=derate)
        derate += _COLD_DERATE_AT_0K
        np.maximum(derate, COLD_FRACTION, out=derate)
        np.multiply(self._temperature_k, _HOT_DERATE_PER_K, out=hot)
        hot += _HOT_DERATE_AT_0K
        np.minimum(derate, hot, out=derate)
        return np.minimum(derate, 1.0, out=derate)

    def _settle_temperature(self) -> None:
        """Advance the temperature over the plant time since it was last settled, for the mean heat
        of that interval (exact for a constant heat), and restart the slow clock."""
        elapsed_s = self._unsettled_s
        if elapsed_s > 0.0:
            target_k, decay = self._heat_target_k, self._heat_decay
            np.subtract(self._energy[0], self._loss_settled_j, out=target_k)
            target_k *= 1.0 / elapsed_s
            target_k += self._runaway_w
            target_k *= self._thermal_r
            target_k += self._ambient_k
            np.multiply(self._neg_inv_thermal_tau, elapsed_s, out=decay)
            np.exp(decay, out=decay)
            self._temperature_k -= target_k
            self._temperature_k *= decay
            self._temperature_k += target_k
            self._loss_settled_j[:] = self._energy[0]
        self._unsettled_s = 0.0
        self._slow_due = True

    # ----------------------------------------------------------------- contactors and faults

    def _trip(self, code: np.ndarray) -> None:
        """Latch ``code`` (and any injected isolation fault) and open the contactors that can open.

        An isolation fault alone is latched and reported but opens nothing: a first insulation fault
        in an unearthed (IT) DC system is not yet a hazard, so the BMS leaves the decision to the pack
        manager, which must isolate the pack before a second fault makes it one.
        """
        code = code | np.where(self._isolation, FaultCode.ISOLATION, 0)
        tripped = (code & ~FaultCode.ISOLATION) != 0
        opening = tripped & self._closed & ~self._welded
        if np.any(code & ~self._fault) or opening.any():
            self._fault |= code
            self._closed &= ~opening
            self._refresh_masks()

    def _refresh_masks(self) -> None:
        np.equal(self._fault, 0, out=self._online)
        self._online &= self._closed
        self._rated_online = self._rated_a * self._online
        self._taper_slope_a = self._taper_slope * self._rated_online
        self._taper_icpt_a = self._taper_icpt * self._rated_online
        self._unprotected = np.flatnonzero(self._closed & (self._fault != 0))
        self._isolation_any = bool(self._isolation.any())
        self._slow_due = True

    def command_contactors(self, closed: np.ndarray | bool) -> None:
        """The controller's contactor command per pack (True = close).

        A close is refused while a fault is latched or the contactor has failed open; an open is
        refused by a welded contactor.
        """
        want = np.broadcast_to(np.asarray(closed, dtype=bool), (self.n,))
        may_close = (self._fault == 0) & ~self._failed_open
        self._closed[:] = (want & (self._closed | may_close)) | (self._closed & self._welded)
        # a contactor opened between steps carries nothing from now on, not from the next step
        self._current[~self._closed] = 0.0
        self._power[~self._closed] = 0.0
        self._refresh_masks()

    def reset_faults(self, index: Index) -> None:
        """Clear latched faults. Contactors stay open until commanded closed; a cause that persists
        (an injected isolation fault, a hot pack) trips again."""
        self._fault[index] = 0
        self._refresh_masks()

    def inject(self, kind: InjectedFault, index: Index, **params: float) -> None:
        """Start an injected condition on the packs at ``index``."""
        values = self._parameters(kind, params)
        if kind is InjectedFault.ISOLATION:
            self._isolation[index] = True
        elif kind is InjectedFault.THERMAL_RUNAWAY:
            self._settle_temperature()
            self._runaway_w[index] = values["heat_w"]
        elif kind is InjectedFault.WELDED_CONTACTOR:
            self._welded[index] = True
            self._failed_open[index] = False
        elif kind is InjectedFault.CONTACTOR_FAILED_OPEN:
            self._failed_open[index] = True
            self._welded[index] = False
            self._closed[index] = False
        elif kind is InjectedFault.BMS_COMMS_LOSS:
            newly = self._mask(index) & ~self._comms_lost
            for name in _REPORTED:
                self._frozen[name][newly] = self._live_report(name)[newly]
            self._frozen_heartbeat[newly] = self._steps - self._heartbeat_lag[newly]
            self._comms_lost |= newly
        else:
            self._drift[index] = values["offset"]
        self._refresh_masks()

    def clear(self, kind: InjectedFault, index: Index) -> None:
        """End an injected condition. Latched faults stay latched; contactors stay as they are."""
        if kind is InjectedFault.ISOLATION:
            self._isolation[index] = False
        elif kind is InjectedFault.THERMAL_RUNAWAY:
            self._settle_temperature()
            self._runaway_w[index] = 0.0
        elif kind is InjectedFault.WELDED_CONTACTOR:
            self._welded[index] = False
        elif kind is InjectedFault.CONTACTOR_FAILED_OPEN:
            self._failed_open[index] = False
        elif kind is InjectedFault.BMS_COMMS_LOSS:
            restored = self._mask(index) & self._comms_lost
            self._heartbeat_lag[restored] = self._steps - self._frozen_heartbeat[restored]
            self._comms_lost &= ~restored
        else:
            self._drift[index] = 0.0
        self._refresh_masks()

    def _mask(self, index: Index) -> np.ndarray:
        mask = np.zeros(self.n, dtype=bool)
        mask[index] = True
        return mask

    @staticmethod
    def _parameters(kind: InjectedFault, params: dict[str, float]) -> dict[str, float]:
        allowed = _PARAMETERS.get(kind, {})
        unknown = set(params) - set(allowed)
        if unknown:
            raise TypeError(
                f"{kind.name} takes no parameter(s) {sorted(unknown)}; allowed: {sorted(allowed)}"
            )
        return {**allowed, **params}
