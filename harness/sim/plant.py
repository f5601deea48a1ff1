"""The microgrid plant: packs, PCS, PCC breaker, grid, PV and compute racks on one AC bus.

``Plant.step(dt)`` advances the plant by ``dt`` seconds of simulated time. Inputs (controller
commands, injected faults, grid events, load profiles) are set on the plant or its parts between
steps. There is no I/O and no wall clock: the plant's time is the sum of the steps it was given.

The bus is solved each sub-step from a power balance:

- breaker closed, grid alive: the grid holds voltage and frequency and takes the balance; the
  PCS follows its setpoint (or its ramp-limited PCC loop) and ceases momentarily in deep sags;
- breaker open, PCS grid-forming: the PCS holds voltage and a drooping frequency and takes the
  balance within its unit rating and the packs' DC limits; beyond them it current-limits and the
  bus voltage falls with the overload, which the racks' ride-through then judges;
- otherwise (transfer gap, dead grid behind a closed breaker, PCS off or tripped): the bus is dead.

A long step is cut into 1 ms sub-steps whenever anything fast is going on (a grid event, a
transfer, a sag, racks riding through), so the rack-bus voltage and the voltage event log are
resolved to 1 ms during transfers and faults while quiet periods cost one sub-step. The racks'
profile is read once a step, at its start, and held over it, as an electronic load holds each
setpoint of a list for its dwell: what the racks want over a step does not depend on whether the
step was cut into sub-steps, so a meter integrating the step sees the same demand a recorder takes
from the profile at the step's start. Whoever meters the bus passes ``on_substep`` to see every
sub-step with its length.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import numpy as np

from harness.sim.fleet import FleetSpec, draw_fleet
from harness.sim.grid import GridSource, GridState
from harness.sim.load import ComputeLoad, RackState
from harness.sim.packs import PackArray
from harness.sim.pcc import TIMER_TOLERANCE_S, Pcc, SyncCheck, wrap_degrees
from harness.sim.pcs import Pcs, PcsMode
from harness.sim.pv import SolarPlant
from harness.sim.sharing import available_energy_weights, share_power
from harness.sim.voltage_events import VoltageEventLog

_sum = np.add.reduce
"""``ndarray.sum`` without its Python-level wrapper: this runs several times per sub-step."""

HEALTHY_BUS_PU = 0.5
"""Below this the racks run on PSU hold-up and the PV inverters cease: neither draws nor feeds."""
SETTLED_BAND_PU = 0.02
RACK_NEWS = {
    RackState.DROPPED: "racks dropped: the bus stayed outside their ITIC tolerance past PSU hold-up",
    RackState.RESTARTING: "racks restarting",
}
OUT_OF_PHASE_TRIP_DEG = 45.0
OUT_OF_PHASE_DISTURBANCE_S = 2.0 / 60.0


@dataclass(frozen=True)
class PlantConfig:
    """What plant to build. The defaults are the reference plant (reference/domain.md §0)."""

    packs: int = 805
    seed: int = 0
    initial_soc: float = 0.7
    ambient_c: float = 25.0
    pcs_rated_w: float = 12e6
    pcs_units: int = 4
    pv_rated_w: float = 12e6
    load_rated_w: float = 4e6
    start_utc: datetime = datetime(2026, 6, 21, 19, 0, tzinfo=UTC)
    fine_dt_s: float = 0.001
    black_start_ramp_s: float = 2.0

    def __post_init__(self) -> None:
        checks = {
            "packs": self.packs >= 1,
            "initial_soc": 0.0 <= self.initial_soc <= 1.0,
            "pcs_rated_w": self.pcs_rated_w > 0,
            "pcs_units": self.pcs_units >= 1,
            "pv_rated_w": self.pv_rated_w >= 0,
            "load_rated_w": self.load_rated_w > 0,
            "fine_dt_s": 0 < self.fine_dt_s <= 0.01,
            "black_start_ramp_s": self.black_start_ramp_s >= 0,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            named = ", ".join(f"{name}={getattr(self, name)!r}" for name in bad)
            raise ValueError(f"PlantConfig: out of range: {named}")


def scaled_to_fleet(config: PlantConfig, packs: int) -> PlantConfig:
    """``config`` with ``packs`` packs and its PCS, racks and PV scaled by ``packs / config.packs``, so
    a small fleet keeps the reference plant's proportions (a 24-pack plant of 12 MW PCS and 4 MW racks
    could not carry its racks islanded)."""
    if packs < 1:
        raise ValueError(f"PlantConfig: out of range: packs={packs!r}")
    scale = packs / config.packs
    return replace(
        config,
        packs=packs,
        pcs_rated_w=config.pcs_rated_w * scale,
        load_rated_w=config.load_rated_w * scale,
        pv_rated_w=config.pv_rated_w * scale,
    )


@dataclass
class BusState:
    """The bus as solved by the last sub-step. The plant updates this one object in place."""

    t: float = 0.0
    voltage_pu: float = 1.0
    frequency_hz: float = 60.0
    phase_deg: float = 0.0
    load_request_w: float = 0.0
    load_served_w: float = 0.0
    pv_w: float = 0.0
    pcs_ac_w: float = 0.0
    battery_dc_w: float = 0.0
    pcs_loss_w: float = 0.0
    grid_w: float = 0.0
    """Power imported from the grid (+) or exported to it (-)."""


@dataclass(frozen=True)
class JournalEntry:
    """Something the plant did by itself or was made to do: breaker, PCS and transfer events."""

    t: float
    text: str


@dataclass
class EnergyLedger:
    """Energy in joules since the plant was built. ``balance_error_j`` is zero to rounding."""

    pv_j: float = 0.0
    grid_j: float = 0.0
    """Net energy from the grid: ``grid_import_j - grid_export_j``."""
    grid_import_j: float = 0.0
    grid_export_j: float = 0.0
    battery_dc_j: float = 0.0
    load_served_j: float = 0.0
    pcs_loss_j: float = 0.0
    load_unserved_j: float = 0.0

    @property
    def balance_error_j(self) -> float:
        return self.pv_j + self.grid_j + self.battery_dc_j - self.load_served_j - self.pcs_loss_j


@dataclass
class Plant:
    config: PlantConfig
    packs: PackArray
    pcs: Pcs
    pcc: Pcc
    grid: GridSource
    pv: SolarPlant
    load: ComputeLoad
    bus: BusState = field(default_factory=BusState)
    energy: EnergyLedger = field(default_factory=EnergyLedger)
    voltage_events: VoltageEventLog = field(default_factory=VoltageEventLog)
    journal: list[JournalEntry] = field(default_factory=list)
    utility_breaker_open: bool = False
    """The utility's own breaker upstream of the PCC (a fault-insertion relay): while open the grid is
    gone at the PCC, whatever the grid source (or grid simulator) is doing."""
    pack_share: np.ndarray | None = None
    """The controller's per-pack power command (W). The PCS draws whatever the bus needs, so the
    commands act as shares of that total; ``None`` shares by available energy."""
    t: float = 0.0
    _transfer_left_s: float | None = None
    _soft_start_s: float | None = None
    _disturbance_until_s: float = -1.0
    _disturbance_pu: float = 1.0
    _dc_limit_sums: tuple[float, float] = (0.0, 0.0)
    _dc_limits_version: int = -1
    _weights: np.ndarray | None = None
    _weights_key: tuple[int, bool] | None = None

    @classmethod
    def build(cls, config: PlantConfig | None = None, fleet: FleetSpec | None = None) -> Plant:
        config = config or PlantConfig()
        fleet = fleet if fleet is not None else draw_fleet(config.packs, seed=config.seed)
        return cls(
            config=config,
            packs=PackArray(fleet, soc=config.initial_soc, ambient_c=config.ambient_c),
            pcs=Pcs.of_rating(config.pcs_rated_w, config.pcs_units),
            pcc=Pcc(),
            grid=GridSource(),
            pv=SolarPlant(rated_ac_w=config.pv_rated_w, start_utc=config.start_utc, seed=config.seed),
            load=ComputeLoad(rated_w=config.load_rated_w),
        )

    def note(self, text: str) -> None:
        self.journal.append(JournalEntry(self.t, text))

    def black_start(self) -> None:
        """Energise a dead, islanded bus from the PCS with a soft-start voltage ramp."""
        if self.pcc.closed or self.pcs.mode is PcsMode.GRID_FORMING:
            return
        self.pcs.start_forming()
        if self.pcs.mode is PcsMode.GRID_FORMING:
            self._soft_start_s = 0.0
            self.note("black start: PCS grid-forming, soft-starting the bus")

    def step(self, dt: float, on_substep: Callable[[BusState, float], None] | None = None) -> BusState:
        """Advance by ``dt``; ``on_substep(bus, h)`` is called after each sub-step of length ``h``."""
        if not dt > 0:
            raise ValueError(f"Plant.step needs a positive dt, got {dt!r}")
        end = self.t + dt
        wanted_w = self.load.uncapped_demand_w(self.t)
        fine = self.config.fine_dt_s
        while end - self.t > 1e-12:
            t = self.t
            grid = self.grid.state_at(t)
            if self.utility_breaker_open:
                grid = replace(grid, available=False, voltage_pu=0.0)
            h = end - t
            if self._fast(grid):
                h = min(h, fine)
            change = self.grid.next_change_after(t)
            if change is not None and change < t + h:
                h = max(change - t, 1e-9)
            self._substep(h, grid, wanted_w)
            if on_substep is not None:
                on_substep(self.bus, h)
        return self.bus

    def _fast(self, grid: GridState) -> bool:
        """Whether anything that needs 1 ms resolution is going on."""
        return (
            abs(self.bus.voltage_pu - 1.0) > SETTLED_BAND_PU
            or (self.pcc.closed and abs(grid.voltage_pu - 1.0) > SETTLED_BAND_PU)
            or self._transfer_left_s is not None
            or self._soft_start_s is not None
            or self.t < self._disturbance_until_s
            or self.load.state is RackState.RIDING_THROUGH
            or self.grid.changing(self.t)
        )

    def _substep(self, h: float, grid: GridState, wanted_w: float) -> None:
        t = self.t
        pcs, pcc, load = self.pcs, self.pcc, self.load
        self._operate_breaker(h, grid)
        discharge_limit, charge_limit = self.packs.power_limits()
        demand = load.capped_w(wanted_w)
        request = demand * load.online_share(t)
        pv_available = self.pv.output_w(t)
        mode = pcs.mode

        if pcc.closed and grid.available:
            voltage, frequency = grid.voltage_pu, grid.frequency_hz
            healthy = voltage >= HEALTHY_BUS_PU
            served = request if healthy else 0.0
            pv = pv_available if healthy else 0.0
            pcs_ac = 0.0
            if mode is PcsMode.GRID_FOLLOWING and voltage >= pcc.settings.momentary_cessation_pu:
                export, charge = pcs.ac_limits_w(*self._dc_limits())
                pcs_ac = min(export, max(-charge, pcs.following_setpoint_w(h, served - pv)))
        elif not pcc.closed and mode is PcsMode.GRID_FORMING:
            voltage = pcs.voltage_setpoint_pu * self._soft_start_factor(h)
            export, charge = pcs.ac_limits_w(*self._dc_limits())
            pv = pv_available
            served = request
            need = request - pv
            if need > export:
                served = export + pv
                voltage *= served / request
            elif need < -charge:
                pv = request + charge
            pcs_ac = served - pv
            frequency = pcs.forming_frequency_hz(h, pcs_ac)
        else:
            voltage = frequency = served = pv = pcs_ac = 0.0

        if t < self._disturbance_until_s:
            voltage *= self._disturbance_pu

        loss = pcs.loss_w(pcs_ac)
        wanted_dc = pcs_ac + loss if pcs.running else 0.0
        battery_dc = self._dispatch_packs(h, wanted_dc, discharge_limit, charge_limit)
        pcs_ac = battery_dc - loss
        if pcc.closed:
            grid_w = served - pv - pcs_ac
        else:
            grid_w = 0.0
            served = pv + pcs_ac
        pcs.output_w = pcs_ac

        rack_state = load.state
        load.update(t, h, voltage)
        if load.state is not rack_state and load.state in RACK_NEWS:
            self.journal.append(JournalEntry(t + h, RACK_NEWS[load.state]))
        self.voltage_events.update(t, h, voltage)
        self._advance_phase(h, grid, frequency)
        self._account(h, pv, grid_w, battery_dc, served, loss, demand)

        self.t = t + h
        bus = self.bus
        bus.t = self.t
        bus.voltage_pu = voltage
        bus.frequency_hz = frequency
        bus.load_request_w = request
        bus.load_served_w = served
        bus.pv_w = pv
        bus.pcs_ac_w = pcs_ac
        bus.battery_dc_w = battery_dc
        bus.pcs_loss_w = loss
        bus.grid_w = grid_w
        if not pcc.closed and pcc.close_requested:
            self._try_close(grid)

    def _account(
        self, h: float, pv: float, grid_w: float, battery_dc: float, served: float, loss: float, demand: float
    ) -> None:
        ledger = self.energy
        ledger.pv_j += pv * h
        ledger.grid_j += grid_w * h
        if grid_w > 0:
            ledger.grid_import_j += grid_w * h
        else:
            ledger.grid_export_j -= grid_w * h
        ledger.battery_dc_j += battery_dc * h
        ledger.load_served_j += served * h
        ledger.pcs_loss_j += loss * h
        ledger.load_unserved_j += (demand - served) * h

    def _dispatch_packs(
        self, h: float, wanted_dc: float, discharge_limit: np.ndarray, charge_limit: np.ndarray
    ) -> float:
        """Split the DC power the PCS needs across the packs, step them, return what they gave."""
        discharging = wanted_dc >= 0
        if self.pack_share is not None:
            weights = self.pack_share if discharging else -self.pack_share
        else:
            weights = self._default_weights(discharging)
        pack_power = share_power(wanted_dc, weights, discharge_limit, charge_limit)
        self.packs.step(h, pack_power)
        return float(_sum(pack_power))

    def _dc_limits(self) -> tuple[float, float]:
        """The fleet's DC discharge and charge limits: sums of what the packs last published."""
        version = self.packs.limits_version
        if self._dc_limits_version != version:
            discharge, charge = self.packs.power_limits()
            self._dc_limit_sums = (float(_sum(discharge)), float(_sum(charge)))
            self._dc_limits_version = version
        return self._dc_limit_sums

    def _default_weights(self, discharging: bool) -> np.ndarray:
        """Share by available energy, recomputed when the packs republish their limits: SOC moves
        too little within one slow period to change a share noticeably."""
        key = (self.packs.limits_version, discharging)
        if self._weights_key != key:
            self._weights = available_energy_weights(self.packs, discharging=discharging)
            self._weights_key = key
        return self._weights

    def _operate_breaker(self, h: float, grid: GridState) -> None:
        pcc, pcs = self.pcc, self.pcs
        if pcc.closed:
            planned = pcc.open_requested
            reason = "planned island" if planned else pcc.protection_trip(h, grid)
            if not reason:
                return
            pcc.opened(reason)
            self.note(f"PCC breaker opened: {reason}")
            if not pcs.running:
                return
            if not pcs.islanding_enabled:
                pcs.mode = PcsMode.OFF
                self.note("PCS ceased (islanding disabled): the bus is dead")
            elif planned:
                pcs.start_forming()
                self.note("PCS grid-forming: planned island")
            else:
                pcs.mode = PcsMode.OFF
                self._transfer_left_s = pcc.settings.transfer_s - h
            return
        if self._transfer_left_s is not None:
            if self._transfer_left_s > TIMER_TOLERANCE_S:
                self._transfer_left_s -= h
                return
            self._transfer_left_s = None
            pcs.start_forming()
            if pcs.mode is PcsMode.GRID_FORMING:
                self.note("PCS grid-forming: unplanned island, bus re-energised")

    def _soft_start_factor(self, h: float) -> float:
        if self._soft_start_s is None:
            return 1.0
        self._soft_start_s += h
        ramp = self.config.black_start_ramp_s
        if ramp <= 0 or self._soft_start_s >= ramp:
            self._soft_start_s = None
            return 1.0
        return self._soft_start_s / ramp

    def _advance_phase(self, h: float, grid: GridState, frequency: float) -> None:
        bus = self.bus
        if self.pcc.closed and grid.available:
            bus.phase_deg = grid.phase_deg
        elif frequency > 0:
            nominal = self.pcs.nominal_frequency_hz
            bus.phase_deg = wrap_degrees(bus.phase_deg + 360.0 * (frequency - nominal) * h)

    def sync_check(self) -> SyncCheck:
        """Differences across the open breaker now (bus minus grid)."""
        grid = self.grid.state_at(self.t)
        bus = self.bus
        grid_voltage = grid.voltage_pu if grid.available and not self.utility_breaker_open else 0.0
        return SyncCheck(
            dv_pu=bus.voltage_pu - grid_voltage,
            df_hz=bus.frequency_hz - grid.frequency_hz,
            dtheta_deg=wrap_degrees(bus.phase_deg - grid.phase_deg),
        )

    def _try_close(self, grid: GridState) -> None:
        pcc = self.pcc
        if not grid.available:
            return
        sync = self.sync_check()
        dead_bus = self.bus.voltage_pu < 0.05
        if not dead_bus and pcc.close_sync_check and not sync.within(pcc.settings):
            return
        record = pcc.record_close(self.t, sync, dead_bus)
        checked = "sync-checked" if pcc.close_sync_check else "sync check bypassed"
        self.note(f"PCC breaker closed ({checked}, dtheta {sync.dtheta_deg:+.1f} deg)")
        if self.pcs.mode is PcsMode.GRID_FORMING:
            self.pcs.start_following(self.bus.load_served_w - self.bus.pv_w)
        if record.in_window:
            return
        angle = abs(sync.dtheta_deg)
        self._disturbance_pu = max(0.0, 1.0 - np.sin(np.radians(angle) / 2.0) - abs(sync.dv_pu))
        self._disturbance_until_s = self.t + OUT_OF_PHASE_DISTURBANCE_S
        if angle > OUT_OF_PHASE_TRIP_DEG:
            self.pcs.trip(f"out-of-phase breaker close ({sync.dtheta_deg:+.1f} deg): PCS over-current")
            self.note(self.pcs.trip_reason)
