"""The battery power-conversion system (PCS): inverter units between the pack DC link and the AC bus.

The PCS is modelled at the level a microgrid controller sees it: a power rating made of several
units (a unit trip removes its share), a conversion loss, two ways of running (grid-following,
where it follows a power setpoint while the grid holds the bus; grid-forming, where it holds bus
voltage and frequency itself and takes whatever balance the bus needs), and a fast local loop
that can keep the grid-side power ramp-limited while the battery absorbs fast load swings.

The PCC breaker and its protections (islanding detection, IEEE 1547 trip settings, sync check)
live in :mod:`harness.sim.pcc`; the power balance of the bus lives in :mod:`harness.sim.plant`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

DEFAULT_PCC_RAMP_PU_PER_S = 0.01
"""Default grid-side ramp limit of the PCC smoothing loop: 1 % of the PCS rating per second."""


class PcsMode(Enum):
    OFF = "off"
    GRID_FOLLOWING = "grid_following"
    GRID_FORMING = "grid_forming"
    TRIPPED = "tripped"


class PcsControl(Enum):
    """How the PCS picks its output while grid-following."""

    POWER = "power"
    """Follow ``dispatch_w`` as given (the grid takes every load swing)."""
    PCC_SMOOTHING = "pcc_smoothing"
    """Hold the grid-side power on a ramp-limited track of the net load minus ``dispatch_w``."""


@dataclass
class PcsUnit:
    """One inverter unit. Change ``available`` through :meth:`Pcs.set_unit_available` only."""

    rated_w: float
    available: bool = True


@dataclass
class Pcs:
    """A PCS of several units sharing one DC link.

    Loss model: ``loss = rated * (no_load_loss + load_loss * (P/rated)**2)`` while running, which puts
    full-load efficiency near 98 % and makes light-load efficiency realistically poor.
    """

    units: list[PcsUnit]
    no_load_loss: float = 0.003
    load_loss: float = 0.015
    droop_hz_per_pu: float = 0.6
    inertia_tau_s: float = 0.2
    restore_tau_s: float = 5.0
    nominal_frequency_hz: float = 60.0
    mode: PcsMode = PcsMode.GRID_FOLLOWING
    control: PcsControl = PcsControl.POWER
    dispatch_w: float = 0.0
    pcc_ramp_w_per_s: float = 1e6
    voltage_setpoint_pu: float = 1.0
    frequency_setpoint_hz: float = 60.0
    islanding_enabled: bool = True
    trip_reason: str = ""
    output_w: float = 0.0
    frequency_hz: float = 60.0
    _grid_track_w: float | None = field(default=None, repr=False)
    _power_filtered_w: float = field(default=0.0, repr=False)
    _restore_hz: float = field(default=0.0, repr=False)
    rated_w: float = field(init=False)
    _units_available_w: float = field(init=False, repr=False)

    @classmethod
    def of_rating(cls, rated_w: float, units: int) -> Pcs:
        if rated_w <= 0 or units < 1:
            raise ValueError(f"PCS needs a positive rating and at least one unit, got {rated_w} W, {units}")
        return cls(
            units=[PcsUnit(rated_w / units) for _ in range(units)],
            pcc_ramp_w_per_s=DEFAULT_PCC_RAMP_PU_PER_S * rated_w,
        )

    def __post_init__(self) -> None:
        self.rated_w = sum(u.rated_w for u in self.units)
        self._units_available_w = sum(u.rated_w for u in self.units if u.available)

    @property
    def available_w(self) -> float:
        """AC rating of the units that are not tripped."""
        return 0.0 if self.mode is PcsMode.TRIPPED else self._units_available_w

    @property
    def running(self) -> bool:
        mode = self.mode
        return mode is PcsMode.GRID_FOLLOWING or mode is PcsMode.GRID_FORMING

    def loss_w(self, ac_w: float) -> float:
        if not self.running:
            return 0.0
        rated = self.rated_w
        ratio = ac_w / rated
        return rated * (self.no_load_loss + self.load_loss * ratio * ratio)

    def dc_w(self, ac_w: float) -> float:
        """DC-link power (+ out of the batteries) needed for ``ac_w`` on the bus (+ into the bus)."""
        return ac_w + self.loss_w(ac_w)

    def ac_limits_w(self, dc_discharge_w: float, dc_charge_w: float) -> tuple[float, float]:
        """Largest AC export and import the units and the packs' DC limits allow together."""
        rating = self.available_w
        if rating <= 0 or not self.running:
            return 0.0, 0.0
        export = min(rating, dc_discharge_w)
        export = max(0.0, min(export, dc_discharge_w - self.loss_w(export)))
        charge = min(rating, dc_charge_w)
        charge = max(0.0, min(charge, dc_charge_w + self.loss_w(-charge)))
        return export, charge

    def trip(self, reason: str) -> None:
        self.mode = PcsMode.TRIPPED
        self.trip_reason = reason
        self.output_w = 0.0

    def set_unit_available(self, index: int, available: bool) -> None:
        """Trip (or bring back) one unit. The only way to change a unit's availability."""
        self.units[index].available = available
        self._units_available_w = sum(u.rated_w for u in self.units if u.available)
        if not any(u.available for u in self.units) and self.mode is not PcsMode.TRIPPED:
            self.trip("all PCS units tripped")

    def reset(self) -> None:
        """Clear a trip; the PCS comes back OFF and must be started again."""
        if self.mode is PcsMode.TRIPPED and any(u.available for u in self.units):
            self.mode = PcsMode.OFF
            self.trip_reason = ""

    def start_forming(self) -> None:
        """Form the bus, the droop referred to the output the PCS carries now (a seamless transfer).

        The frequency starts at its setpoint and moves only with the output's *change*. From
        grid-following at a planned island, where the controller has already taken the PCC flow onto
        the PCS, the bus balance does not change when the breaker opens, so neither does the
        frequency: a real PCS starts its droop (and the restoration that follows it) from the
        operating point it was following, rather than stepping by the droop of its whole output (at
        a full charge, 0.6 Hz, beyond the 60.5 Hz band, with nothing on the bus having moved). After
        a transfer gap or from off (an unplanned island, a black start) it carries nothing yet, and
        the droop of what it then picks up pulls the frequency as before.
        """
        if self.mode is PcsMode.TRIPPED or not any(u.available for u in self.units):
            return
        self.mode = PcsMode.GRID_FORMING
        self._power_filtered_w = self.output_w
        self._restore_hz = self.droop_hz_per_pu * self.output_w / self.rated_w

    def start_following(self, net_load_w: float) -> None:
        """Go grid-following without a bump: the grid-side track starts where the grid now is."""
        if self.mode is PcsMode.TRIPPED:
            return
        self.mode = PcsMode.GRID_FOLLOWING
        self.frequency_hz = self.nominal_frequency_hz
        self._grid_track_w = net_load_w - self.output_w

    def following_setpoint_w(self, dt: float, net_load_w: float) -> float:
        """AC output wanted while grid-following, before limits; ``net_load_w`` = load minus PV."""
        if self.control is PcsControl.POWER:
            return self.dispatch_w
        target = net_load_w - self.dispatch_w
        track = target if self._grid_track_w is None else self._grid_track_w
        step = self.pcc_ramp_w_per_s * dt
        track += min(step, max(-step, target - track))
        self._grid_track_w = track
        return net_load_w - track

    def forming_frequency_hz(self, dt: float, output_w: float) -> float:
        """Droop with a first-order lag (virtual inertia) and slow restoration to the setpoint."""
        lag = dt / (self.inertia_tau_s + dt)
        self._power_filtered_w += lag * (output_w - self._power_filtered_w)
        droop = self.droop_hz_per_pu * self._power_filtered_w / self.rated_w
        self._restore_hz += dt / self.restore_tau_s * (self.frequency_setpoint_hz - self.frequency_hz)
        self.frequency_hz = self.frequency_setpoint_hz + self._restore_hz - droop
        return self.frequency_hz
