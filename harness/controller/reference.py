"""The reference controller's decisions: one :meth:`ReferenceController.decide` per control cycle.

Pure decision logic, no I/O: a cycle gets the time, one :class:`PlantView` and the harness's
:class:`ControllerCommands`, and returns the :class:`Actions` to write and the :class:`ControllerStatus`
to publish. Between cycles the controller remembers only what a real one must: pack heartbeats and
when they last moved, which packs it isolated and when, and the timers of its transitions.

Every behaviour sits in its own small method so that a broken variant (:mod:`.variants`) overrides
exactly one of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from harness.controller.model import (
    Actions,
    Alarm,
    BreakerCommand,
    ControllerCommands,
    ControllerMode,
    ControllerStatus,
    ModeRequest,
    PackView,
    PcsControl,
    PcsState,
    PlantView,
)

HEARTBEAT_MODULUS = 65535
"""The published heartbeat counts 0..65534 and wraps (65535 is uint16's "not implemented")."""
_ISLAND_CAPABLE = (PcsState.GRID_FOLLOWING, PcsState.GRID_FORMING)
"""PCS states from which a grid loss becomes an island."""


@dataclass(frozen=True)
class ControllerConfig:
    """Tuning of the reference controller. Times in s, powers in W, voltages in pu of nominal."""

    period_s: float = 0.1
    nominal_frequency_hz: float = 60.0
    nominal_voltage_pu: float = 1.0
    stale_s: float = 0.5
    """A pack whose BMS heartbeat has not moved for this long is untrusted (power command 0)."""
    isolate_stale_s: float = 2.0
    """An untrusted pack is isolated once its heartbeat has been still for this long."""
    weld_detect_s: float = 0.3
    """A pack commanded open whose contactor still reads closed after this long is welded."""
    transfer_grace_s: float = 0.5
    """A dead bus (breaker open, PCS not forming) must last this long before a black start:
    the plant's own unplanned-island transfer takes milliseconds and must not be mistaken for one."""
    bus_up_pu: float = 0.9
    """Bus voltage at which a black start counts as done."""
    grid_stable_s: float = 5.0
    grid_voltage_band_pu: float = 0.05
    grid_frequency_band_hz: float = 0.1
    sync_slip_hz: float = 0.05
    """Frequency offset that sweeps the island's phase past the grid's while waiting to close."""
    sync_timeout_s: float = 60.0
    planned_island_pcc_fraction: float = 0.02
    """A planned island opens the breaker once |PCC power| is below this fraction of the PCS rating
    and below what the grid ramp limit allows in ``planned_island_open_step_s``."""
    planned_island_open_step_s: float = 0.1
    """Opening drops the PCC flow to zero at once: that step is kept to what the grid ramp moves in
    this long (one control period), so opening continues the ramp rather than stepping (at 12 MW, 2 %
    of the rating alone would be a 240 kW step)."""
    bus_sag_pu: float = 0.95
    """Islanded bus voltage below this is a sign that the racks want more than the fleet gives."""
    cap_margin_fraction: float = 0.05
    """Headroom, as a fraction of the PCS rating, kept between the fleet's capability and the cap."""
    cap_release_s: float = 10.0
    """A shortfall cap is released after the racks have stayed this long below it by the margin."""
    contingency_margin_fraction: float = 0.05
    """Islanding readiness while grid-connected, as a fraction of the PCS rating: the headroom that
    the firm supply (the PCS units still running, within what the fleet can discharge) must keep
    over the site's net demand (racks less PV). Short of it (PCS units tripped at high load), the
    racks are capped to the firm supply less this headroom *before* the grid goes, so that an
    unplanned island carries them from its first milliseconds instead of current-limiting until the
    island's shortfall cap acts a control period later (a 0.1 s interruption where ITIC allows
    20 ms). PV is left out of the cap: a cloud can take it within seconds. The cap counts as capped
    energy, is released as the shortfall cap is, and carries over into an island as its shortfall
    cap."""
    reserve_cap_gain: float = 0.2
    """Per cycle, the cap at the SOC reserve moves by this fraction of the fleet's discharge."""
    share_step_w: float = 250e3
    """Per-pack commands are computed for the PCS power rounded up to this step, so that they change
    only when the power moves by a step, not every cycle (the plant treats them as weights)."""
    pack_command_resolution_w: float = 100.0
    """Per-pack commands are rounded to this (the face's register resolution)."""

    def __post_init__(self) -> None:
        positive = {
            "period_s": self.period_s,
            "nominal_frequency_hz": self.nominal_frequency_hz,
            "nominal_voltage_pu": self.nominal_voltage_pu,
            "stale_s": self.stale_s,
            "grid_frequency_band_hz": self.grid_frequency_band_hz,
            "grid_voltage_band_pu": self.grid_voltage_band_pu,
            "sync_timeout_s": self.sync_timeout_s,
            "planned_island_pcc_fraction": self.planned_island_pcc_fraction,
            "planned_island_open_step_s": self.planned_island_open_step_s,
            "share_step_w": self.share_step_w,
            "pack_command_resolution_w": self.pack_command_resolution_w,
        }
        bad = [name for name, value in positive.items() if not value > 0]
        if not self.isolate_stale_s >= self.stale_s:
            bad.append("isolate_stale_s (must be >= stale_s)")
        if not 0 < self.reserve_cap_gain <= 1:
            bad.append("reserve_cap_gain (must be in (0, 1])")
        if not 0 <= self.contingency_margin_fraction < 1:
            bad.append("contingency_margin_fraction (must be in [0, 1))")
        if bad:
            raise ValueError(f"ControllerConfig: out of range: {', '.join(bad)}")


@dataclass(frozen=True)
class PackHealth:
    """What the controller concludes about each pack this cycle; boolean arrays of shape (n,)."""

    faulted: np.ndarray
    """The BMS reports latched fault bits."""
    stale: np.ndarray
    """The BMS heartbeat stopped: the pack's data is not trusted."""
    isolated: np.ndarray
    """The controller has commanded the contactor open (latched)."""
    welded: np.ndarray
    """Commanded open, yet the contactor still reads closed."""
    usable: np.ndarray
    """May carry power: contactor closed, not isolated, trusted, no fault."""


def energy_wh(packs: PackView, fraction: np.ndarray) -> np.ndarray:
    """Energy in ``fraction`` (of SOC, clipped at 0) of each pack: SoH x nameplate x fraction (Wh).

    What a pack can give above its reserve (``fraction = SOC - reserve``) or take below full
    (``1 - SOC``); the plant's packs hold ``SoH x nameplate`` from SOC 0 to 1.
    """
    return packs.soh * packs.nameplate_wh * np.clip(fraction, 0.0, None)


def spread_w(total_w: float, weights: np.ndarray, limits_w: np.ndarray) -> np.ndarray:
    """Split ``total_w`` (>= 0) in proportion to ``weights``, each share within its limit.

    What a capped pack cannot take is re-spread over the others in proportion to their weights, so
    a strong pack is never held down to a weak pack's limit. Packs of zero weight or limit get
    nothing; if the limits add up to less than ``total_w`` every weighted pack is at its limit.
    """
    share = np.zeros(limits_w.shape)
    free = (weights > 0) & (limits_w > 0)
    if not free.any():
        return share
    weights = weights / float(weights[free].max())  # so that tiny or huge weights cannot overflow
    remaining = min(float(total_w), float(limits_w[free].sum()))
    while remaining > 0 and free.any():
        tentative = weights * (remaining / float(weights[free].sum()))
        over = free & (tentative >= limits_w)
        if not over.any():
            share[free] = tentative[free]
            break
        share[over] = limits_w[over]
        remaining -= float(limits_w[over].sum())
        free &= ~over
    return share


@dataclass
class _PackMemory:
    heartbeat: np.ndarray
    heartbeat_moved_s: np.ndarray
    isolated: np.ndarray
    isolated_since_s: np.ndarray

    @classmethod
    def first_seen(cls, now_s: float, heartbeat: np.ndarray) -> _PackMemory:
        n = len(heartbeat)
        return cls(heartbeat.copy(), np.full(n, now_s), np.zeros(n, bool), np.full(n, math.inf))


@dataclass
class _Memory:
    """Everything the controller carries from one cycle to the next."""

    mode: ControllerMode = ControllerMode.STOPPED
    heartbeat: int = 0
    packs: _PackMemory | None = None
    planned_island: bool = False
    reconnect_requested: bool = False
    auto_reconnect: bool = True
    grid_stable_since_s: float | None = None
    grid_stable: bool = False
    reconnect_since_s: float | None = None
    sync_timed_out: bool = False
    dead_bus_since_s: float | None = None
    black_start_requested: bool = False
    shortfall_cap_w: float | None = None
    cap_unneeded_since_s: float | None = None
    reserve_cap_w: float | None = None
    dispatch_w: float = 0.0


class ReferenceController:
    """The project's reference microgrid controller and pack manager (decisions only)."""

    def __init__(self, config: ControllerConfig | None = None) -> None:
        self.config = config or ControllerConfig()
        self._memory = _Memory()

    @property
    def mode(self) -> ControllerMode:
        return self._memory.mode

    # ------------------------------------------------------------------ the cycle

    def decide(
        self, now_s: float, view: PlantView, commands: ControllerCommands
    ) -> tuple[Actions, ControllerStatus]:
        """One control cycle. Latches and clears the request flags of ``commands`` it takes up."""
        memory = self._memory
        self._take_requests(commands)
        health = self._pack_health(now_s, view)
        mode = self._next_mode(now_s, view, commands)
        actions = Actions(pack_contactors=~health.isolated)
        if mode is ControllerMode.STOPPED:
            self._stop(actions)
        elif view.breaker_closed:
            self._run_grid_connected(now_s, view, commands, actions)
        elif mode is ControllerMode.BLACK_START:
            self._run_black_start(view, actions)
        elif view.pcs_state is PcsState.GRID_FORMING:
            self._run_island(now_s, view, commands, actions)
        # else: within the transfer grace of a dead bus; nothing to change yet, caps included (a cap
        # held for the grid loss must still be in force when the island forms)
        if mode is not ControllerMode.STOPPED:
            actions.pack_share_enabled = True
            actions.pack_power_w = self._pack_power_w(view, commands, health)
        if actions.dispatch_w is not None:
            memory.dispatch_w = actions.dispatch_w
        memory.mode = mode
        memory.heartbeat = (memory.heartbeat + 1) % HEARTBEAT_MODULUS
        return actions, self._status(view, commands, health)

    def _take_requests(self, commands: ControllerCommands) -> None:
        memory = self._memory
        if commands.planned_island_requested:
            memory.planned_island = True
            commands.planned_island_requested = False
        if commands.reconnect_requested:
            memory.reconnect_requested = True
            commands.reconnect_requested = False

    # ------------------------------------------------------------------ modes

    def _next_mode(self, now_s: float, view: PlantView, commands: ControllerCommands) -> ControllerMode:
        memory = self._memory
        if not commands.enabled:
            memory.planned_island = memory.reconnect_requested = False
            memory.dead_bus_since_s = None
            return ControllerMode.STOPPED
        if view.breaker_closed:
            memory.dead_bus_since_s = None
            memory.black_start_requested = False
            if memory.mode in (ControllerMode.ISLANDED, ControllerMode.BLACK_START) or (
                memory.reconnect_since_s is not None
            ):
                self._reconnected()
            return ControllerMode.TRANSITIONING if memory.planned_island else ControllerMode.GRID_CONNECTED
        if memory.planned_island:  # the breaker opened: the planned island is done
            memory.planned_island = False
            memory.auto_reconnect = False
        if view.pcs_state is not PcsState.GRID_FORMING:
            if memory.dead_bus_since_s is None:
                memory.dead_bus_since_s = now_s
            if now_s - memory.dead_bus_since_s < self.config.transfer_grace_s:
                # possibly the plant's own transfer to an island, milliseconds long: hold the mode
                return ControllerMode.ISLANDED if memory.mode is ControllerMode.STOPPED else memory.mode
            return ControllerMode.BLACK_START
        memory.dead_bus_since_s = None
        if memory.black_start_requested and view.bus_voltage_pu < self.config.bus_up_pu:
            return ControllerMode.BLACK_START
        memory.black_start_requested = False
        return self._island_mode(now_s, view)

    def _island_mode(self, now_s: float, view: PlantView) -> ControllerMode:
        """ISLANDED while waiting for a stable grid, TRANSITIONING while resynchronising to it."""
        memory = self._memory
        if not self._grid_stable(now_s, view):
            memory.reconnect_since_s = None
            return ControllerMode.ISLANDED
        if memory.reconnect_since_s is None:
            if not (memory.auto_reconnect or memory.reconnect_requested):
                return ControllerMode.ISLANDED
            memory.reconnect_since_s = now_s
        if now_s - memory.reconnect_since_s > self.config.sync_timeout_s:
            memory.sync_timed_out = True
            memory.reconnect_since_s = None
            memory.grid_stable_since_s = now_s  # wait for another stable hold before trying again
            return ControllerMode.ISLANDED
        return ControllerMode.TRANSITIONING

    def _reconnected(self) -> None:
        memory = self._memory
        memory.reconnect_since_s = memory.grid_stable_since_s = None
        memory.sync_timed_out = memory.reconnect_requested = memory.grid_stable = False
        memory.auto_reconnect = True

    def _grid_stable(self, now_s: float, view: PlantView) -> bool:
        """Whether the grid side has stayed within the voltage and frequency band for the hold time."""
        config, memory = self.config, self._memory
        within = (
            abs(view.grid_voltage_pu - config.nominal_voltage_pu) <= config.grid_voltage_band_pu
            and abs(view.grid_frequency_hz - config.nominal_frequency_hz) <= config.grid_frequency_band_hz
        )
        if not within:
            memory.grid_stable_since_s = None
        elif memory.grid_stable_since_s is None:
            memory.grid_stable_since_s = now_s
        since_s = memory.grid_stable_since_s
        memory.grid_stable = since_s is not None and now_s - since_s >= config.grid_stable_s
        return memory.grid_stable

    def _stop(self, actions: Actions) -> None:
        actions.mode_request = ModeRequest.STOP
        actions.dispatch_w = 0.0
        self._drop_caps()

    def _run_grid_connected(
        self, now_s: float, view: PlantView, commands: ControllerCommands, actions: Actions
    ) -> None:
        """Grid-following, ready to island; during a planned island the PCS takes over the site's
        import first."""
        memory = self._memory
        memory.shortfall_cap_w = self._contingency_cap_w(now_s, view)
        memory.reserve_cap_w = None
        self._follow(view, actions)
        actions.control = self._grid_control()
        actions.pcc_ramp_w_per_s = commands.grid_ramp_w_per_s
        islanding = self._islanding_enabled()
        actions.auto_island_enabled = actions.islanding_enabled = islanding
        actions.frequency_setpoint_hz = self.config.nominal_frequency_hz
        actions.voltage_setpoint_pu = self.config.nominal_voltage_pu
        wanted = view.pcs_output_w + view.pcc_w if memory.planned_island else commands.dispatch_w
        actions.dispatch_w = self._clamp_dispatch_w(wanted, view, commands)
        config = self.config
        near_zero_w = min(
            config.planned_island_pcc_fraction * view.pcs_rated_w,
            commands.grid_ramp_w_per_s * config.planned_island_open_step_s,
        )
        if memory.planned_island and abs(view.pcc_w) < near_zero_w:
            actions.breaker = BreakerCommand.OPEN

    def _follow(self, view: PlantView, actions: Actions) -> None:
        """Bring the PCS to grid-following: reset a trip, request FOLLOW only when not following
        (a repeated FOLLOW would restart the PCC smoothing track)."""
        if view.pcs_state is PcsState.TRIPPED:
            actions.pcs_reset = True
        elif view.pcs_state is not PcsState.GRID_FOLLOWING:
            actions.mode_request = ModeRequest.FOLLOW

    def _run_black_start(self, view: PlantView, actions: Actions) -> None:
        """Energise the dead bus: reset a tripped PCS, then ask for a black start once and wait."""
        memory = self._memory
        self._drop_caps()
        actions.frequency_setpoint_hz = self.config.nominal_frequency_hz
        actions.voltage_setpoint_pu = self.config.nominal_voltage_pu
        if view.pcs_state is PcsState.TRIPPED:
            actions.pcs_reset = True
        elif not memory.black_start_requested:
            actions.black_start = True
            memory.black_start_requested = True

    def _run_island(
        self, now_s: float, view: PlantView, commands: ControllerCommands, actions: Actions
    ) -> None:
        """Islanded: hold nominal V/f; while resynchronising, slip and ask for a sync-checked close."""
        config, memory = self.config, self._memory
        islanding = self._islanding_enabled()
        actions.auto_island_enabled = actions.islanding_enabled = islanding
        actions.voltage_setpoint_pu = config.nominal_voltage_pu
        actions.frequency_setpoint_hz = config.nominal_frequency_hz
        resyncing = memory.reconnect_since_s is not None
        if resyncing:
            actions.frequency_setpoint_hz += config.sync_slip_hz
            if not view.close_pending:
                actions.breaker = self._close_command()
        elif view.close_pending:
            actions.breaker = BreakerCommand.CANCEL_CLOSE
        self._power_cap(now_s, view, commands)

    # ------------------------------------------------------------------ single behaviours

    def _grid_control(self) -> PcsControl:
        """Grid-connected control: smooth the PCC so that the racks' swings do not reach the grid."""
        return PcsControl.PCC_SMOOTHING

    def _islanding_enabled(self) -> bool:
        """Whether the PCS may island (and form the bus) when the grid goes."""
        return True

    def _close_command(self) -> BreakerCommand:
        """How to reclose onto the grid: through the relay's sync check."""
        return BreakerCommand.CLOSE_WITH_SYNC_CHECK

    def _at_reserve(self, view: PlantView, commands: ControllerCommands) -> bool:
        """Whether the fleet is at its SOC reserve: no more discharge."""
        return view.fleet_soc <= commands.reserve_soc

    def _clamp_dispatch_w(self, wanted_w: float, view: PlantView, commands: ControllerCommands) -> float:
        """The dispatch within the fleet's and the PCS's limits, and no discharge at the reserve."""
        available_w = self._pcs_available_w(view)
        high = min(view.fleet_discharge_max_w, available_w)
        if self._at_reserve(view, commands):
            high = min(high, 0.0)
        low = -min(view.fleet_charge_max_w, available_w)
        return float(min(high, max(low, wanted_w)))

    @staticmethod
    def _pcs_available_w(view: PlantView) -> float:
        if view.pcs_units <= 0:
            return 0.0
        return view.pcs_rated_w * view.pcs_units_available / view.pcs_units

    def _fault_isolations(self, view: PlantView) -> np.ndarray:
        """Packs to isolate because their BMS reports a fault: all of them, at once."""
        return view.packs.fault_bits != 0

    def _stale_packs(self, now_s: float, heartbeat_moved_s: np.ndarray) -> np.ndarray:
        """Packs whose BMS heartbeat has not moved for ``stale_s`` (times of the last move given)."""
        return now_s - heartbeat_moved_s >= self.config.stale_s

    def _share(self, total_w: float, view: PlantView, usable: np.ndarray, reserve_soc: float) -> np.ndarray:
        """Per-pack power (W, + discharge) adding up to ``total_w``, spread over the usable packs in
        proportion to their available energy, SoH x nameplate x (SOC - reserve) (discharge), or room,
        SoH x nameplate x (1 - SOC) (charge), each within its limit: at a steady draw every pack then
        reaches its reserve (or full) together, whatever its make."""
        packs = view.packs
        if total_w >= 0:
            headroom, limits_w = packs.soc - reserve_soc, packs.discharge_limit_w
        else:
            headroom, limits_w = 1.0 - packs.soc, packs.charge_limit_w
        weights = np.where(usable, energy_wh(packs, headroom), 0.0)
        limits_w = np.where(usable, np.clip(limits_w, 0.0, None), 0.0)
        return math.copysign(1.0, total_w) * spread_w(abs(total_w), weights, limits_w)

    def _shortfall_cap_w(self, now_s: float, view: PlantView) -> float | None:
        """The cap asked of the racks when they want more than the fleet can give, with margin.

        Signs of a shortfall: the islanded bus sags, or the fleet's headroom over the PCS output is
        below the margin. The cap follows the fleet's capability (:meth:`_held_cap_w`).
        """
        config = self.config
        margin_w = config.cap_margin_fraction * view.pcs_rated_w
        supply_w = self._firm_supply_w(view)
        short = view.bus_voltage_pu < config.bus_sag_pu or supply_w - view.pcs_output_w < margin_w
        return self._held_cap_w(now_s, short, view.pcs_output_w, supply_w - margin_w, margin_w)

    def _contingency_cap_w(self, now_s: float, view: PlantView) -> float | None:
        """Islanding readiness: the cap that lets an unplanned island carry the racks at once.

        While grid-connected the island's load is the site's net demand, PCS output plus PCC import
        (racks less PV, whatever the dispatch). When the firm supply has less headroom over it than
        ``contingency_margin_fraction`` of the rating, the racks are capped to that supply less the
        headroom (:meth:`_held_cap_w`). Nothing is capped where no island can form or carry
        anything beyond the headroom (islanding disabled, the PCS tripped or off, the fleet unable
        to discharge): a cap would shed on the grid all that a grid loss could shed.
        """
        margin_w = self.config.contingency_margin_fraction * view.pcs_rated_w
        supply_w = self._firm_supply_w(view)
        island_w = supply_w - margin_w
        if not (self._islanding_enabled() and view.pcs_state in _ISLAND_CAPABLE and island_w > 0):
            self._memory.cap_unneeded_since_s = None
            return None
        net_w = view.pcs_output_w + view.pcc_w
        return self._held_cap_w(now_s, net_w > island_w, net_w, island_w, margin_w)

    def _held_cap_w(
        self, now_s: float, short: bool, drawn_w: float, capability_w: float, margin_w: float
    ) -> float | None:
        """A capability cap with hysteresis: asked for when ``short``, following ``capability_w``
        while held, released only after ``drawn_w`` has stayed below the held cap by ``margin_w`` for
        ``cap_release_s`` (so that racks held at the cap do not bounce off it)."""
        memory = self._memory
        held_w = memory.shortfall_cap_w
        if short or held_w is None:
            memory.cap_unneeded_since_s = None
            if not short:
                return None
        elif drawn_w >= held_w - margin_w:
            memory.cap_unneeded_since_s = None
        elif memory.cap_unneeded_since_s is None:
            memory.cap_unneeded_since_s = now_s
        elif now_s - memory.cap_unneeded_since_s >= self.config.cap_release_s:
            memory.cap_unneeded_since_s = None
            return None
        return max(0.0, capability_w)

    def _firm_supply_w(self, view: PlantView) -> float:
        """What the fleet can put on the bus through the PCS units still running."""
        return min(view.fleet_discharge_max_w, self._pcs_available_w(view))

    def _reserve_cap_w(self, view: PlantView, commands: ControllerCommands) -> float | None:
        """At the reserve, a cap that integrates the fleet's discharge away (PV carries what it can)."""
        memory = self._memory
        if not self._at_reserve(view, commands):
            memory.reserve_cap_w = None
            return None
        previous = max(view.pcs_output_w, 0.0) if memory.reserve_cap_w is None else memory.reserve_cap_w
        memory.reserve_cap_w = max(0.0, previous - self.config.reserve_cap_gain * view.pcs_output_w)
        return memory.reserve_cap_w

    # ------------------------------------------------------------------ helpers

    def _power_cap(self, now_s: float, view: PlantView, commands: ControllerCommands) -> None:
        memory = self._memory
        memory.shortfall_cap_w = self._shortfall_cap_w(now_s, view)
        memory.reserve_cap_w = self._reserve_cap_w(view, commands)

    def _drop_caps(self) -> None:
        memory = self._memory
        memory.shortfall_cap_w = memory.reserve_cap_w = memory.cap_unneeded_since_s = None

    def _current_cap_w(self) -> float | None:
        caps = [cap for cap in (self._memory.shortfall_cap_w, self._memory.reserve_cap_w) if cap is not None]
        return min(caps) if caps else None

    def _pack_memory(self, now_s: float, view: PlantView) -> _PackMemory:
        """The pack memory, with this cycle's heartbeats taken in (reset if the pack count changed)."""
        memory = self._memory
        heartbeat = np.asarray(view.packs.heartbeat)
        packs = memory.packs
        if packs is None or len(packs.heartbeat) != len(heartbeat):
            packs = memory.packs = _PackMemory.first_seen(now_s, heartbeat)
        moved = heartbeat != packs.heartbeat
        packs.heartbeat_moved_s[moved] = now_s
        packs.heartbeat[moved] = heartbeat[moved]
        return packs

    def _pack_health(self, now_s: float, view: PlantView) -> PackHealth:
        """Faults, stale BMSs, isolation (latched) and welded contactors, this cycle."""
        memory = self._pack_memory(now_s, view)
        stale = self._stale_packs(now_s, memory.heartbeat_moved_s)
        silent_s = now_s - memory.heartbeat_moved_s
        to_isolate = self._fault_isolations(view) | (stale & (silent_s >= self.config.isolate_stale_s))
        newly = to_isolate & ~memory.isolated
        memory.isolated |= newly
        memory.isolated_since_s[newly] = now_s
        closed = np.asarray(view.packs.contactor_closed, bool)
        welded = memory.isolated & closed & (now_s - memory.isolated_since_s >= self.config.weld_detect_s)
        faulted = view.packs.fault_bits != 0
        usable = closed & ~memory.isolated & ~stale & ~faulted
        return PackHealth(faulted, stale, memory.isolated.copy(), welded, usable)

    def _pack_power_w(self, view: PlantView, commands: ControllerCommands, health: PackHealth) -> np.ndarray:
        """Per-pack commands for the PCS's present power rounded up to a step, at register resolution.

        The plant weighs packs by these commands, so a usable pack never gets 0 (which would mean
        "only when the others are full"), and the step keeps commands from changing every cycle.
        """
        config = self.config
        step_w = config.share_step_w
        magnitude_w = max(step_w, math.ceil(abs(view.pcs_output_w) / step_w) * step_w)
        total_w = -magnitude_w if view.pcs_output_w < 0 else magnitude_w
        share = self._share(total_w, view, health.usable, commands.reserve_soc)
        resolution_w = config.pack_command_resolution_w
        rounded = np.round(np.abs(share) / resolution_w) * resolution_w
        rounded = np.where(np.abs(share) > 0, np.maximum(rounded, resolution_w), 0.0)
        return np.copysign(rounded, share)

    def _alarms(self, view: PlantView, commands: ControllerCommands, health: PackHealth) -> Alarm:
        memory = self._memory
        flags = {
            Alarm.PACK_FAULT: bool(health.faulted.any()),
            Alarm.PACK_ISOLATED: bool(health.isolated.any()),
            Alarm.BMS_STALE: bool(health.stale.any()),
            Alarm.WELDED_CONTACTOR: bool(health.welded.any()),
            Alarm.LOW_SOC: self._at_reserve(view, commands),
            Alarm.POWER_SHORTFALL: memory.shortfall_cap_w is not None,
            Alarm.PCS_TRIPPED: view.pcs_state is PcsState.TRIPPED,
            Alarm.SYNC_TIMEOUT: memory.sync_timed_out,
            Alarm.GRID_UNSTABLE: self._grid_unstable(view),
            Alarm.PCS_UNIT_LOST: view.pcs_units_available < view.pcs_units,
        }
        alarms = Alarm.NONE
        for flag, raised in flags.items():
            if raised:
                alarms |= flag
        return alarms

    def _grid_unstable(self, view: PlantView) -> bool:
        """Islanded with the grid live again, but not yet stable long enough to reconnect."""
        memory = self._memory
        return (
            not view.breaker_closed
            and memory.mode in (ControllerMode.ISLANDED, ControllerMode.TRANSITIONING)
            and view.grid_voltage_pu > 0.5 * self.config.nominal_voltage_pu
            and not memory.grid_stable
        )

    def _status(self, view: PlantView, commands: ControllerCommands, health: PackHealth) -> ControllerStatus:
        memory = self._memory
        packs = view.packs
        trusted = ~health.isolated & ~health.stale
        above_reserve_wh = energy_wh(packs, packs.soc - commands.reserve_soc)
        return ControllerStatus(
            mode=memory.mode,
            heartbeat=memory.heartbeat,
            alarms=self._alarms(view, commands, health),
            packs_online=int((np.asarray(packs.contactor_closed, bool) & ~health.isolated).sum()),
            packs_isolated=int(health.isolated.sum()),
            fleet_soc=view.fleet_soc,
            available_energy_wh=float(above_reserve_wh[trusted].sum()),
            pcc_w=view.pcc_w,
            pcs_w=view.pcs_output_w,
            dispatch_w=memory.dispatch_w,
            power_cap_w=self._current_cap_w(),
        )
