"""What a controller sees, decides and publishes: the records shared by its parts.

A controller cycle is ``view -> decide -> actions``: :class:`PlantView` is the plant as the PCS/BMS
face shows it (what BMSs *report*, stale when a link is lost), :class:`Actions` what the controller
writes back, :class:`ControllerStatus` what it publishes on its own face for the harness, and
:class:`ControllerCommands` what the harness (or an operator) asked of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntEnum, IntFlag

import numpy as np


class ControllerMode(IntEnum):
    """The controller's operating state (IEEE 2030.7 SS1/SS2 and the transitions between them)."""

    STOPPED = 0
    GRID_CONNECTED = 1
    ISLANDED = 2
    TRANSITIONING = 3
    BLACK_START = 4
    FAULT = 5


class Alarm(IntFlag):
    """Alarm bits a controller publishes."""

    NONE = 0
    PACK_FAULT = 1 << 0
    """A pack reports a latched BMS fault."""
    PACK_ISOLATED = 1 << 1
    """At least one pack is isolated (contactor opened by the controller)."""
    BMS_STALE = 1 << 2
    """A pack's BMS heartbeat stopped: its data is not trusted."""
    WELDED_CONTACTOR = 1 << 3
    """A pack could not be isolated: its contactor stays closed."""
    LOW_SOC = 1 << 4
    """The fleet is at its SOC reserve."""
    POWER_SHORTFALL = 1 << 5
    """The fleet cannot carry the racks: a power cap is requested."""
    PCS_TRIPPED = 1 << 6
    SYNC_TIMEOUT = 1 << 7
    """Reconnection waited too long for the sync-check window."""
    GRID_UNSTABLE = 1 << 8
    """The grid is back but not yet stable enough to reconnect."""
    PCS_UNIT_LOST = 1 << 9


class PcsState(Enum):
    """The PCS as the face reports it."""

    OFF = "off"
    GRID_FOLLOWING = "grid_following"
    GRID_FORMING = "grid_forming"
    TRIPPED = "tripped"


class ModeRequest(Enum):
    STOP = "stop"
    FOLLOW = "follow"
    FORM = "form"


class PcsControl(Enum):
    POWER = "power"
    PCC_SMOOTHING = "pcc_smoothing"


class BreakerCommand(Enum):
    OPEN = "open"
    CLOSE_WITH_SYNC_CHECK = "close_sync"
    CLOSE_BYPASSING_SYNC_CHECK = "close_bypass"
    CANCEL_CLOSE = "cancel"


@dataclass(frozen=True)
class PackView:
    """Every pack as its BMS reports it; arrays of shape (n,). SOC and SoH are fractions (0..1); a pack's
    energy now is ``soh x nameplate_wh`` (a mixed fleet's nameplates differ several-fold)."""

    soc: np.ndarray
    soh: np.ndarray
    voltage_v: np.ndarray
    current_a: np.ndarray
    temperature_c: np.ndarray
    cell_v_min: np.ndarray
    cell_v_max: np.ndarray
    contactor_closed: np.ndarray
    fault_bits: np.ndarray
    heartbeat: np.ndarray
    discharge_limit_w: np.ndarray
    charge_limit_w: np.ndarray
    power_command_w: np.ndarray
    nameplate_wh: np.ndarray
    """Energy when new (capacity when new x nominal voltage), as the BMS reports it."""

    @property
    def n(self) -> int:
        return len(self.soc)


@dataclass(frozen=True)
class PlantView:
    """One consistent read of the PCS/BMS face."""

    pcs_state: PcsState
    pcs_output_w: float
    """AC power out of the PCS into the bus (+) or into the batteries (-)."""
    pcs_rated_w: float
    pcs_units: int
    pcs_units_available: int
    breaker_closed: bool
    close_pending: bool
    grid_voltage_pu: float
    grid_frequency_hz: float
    bus_voltage_pu: float
    bus_frequency_hz: float
    sync_dv_pu: float
    sync_df_hz: float
    sync_dtheta_deg: float
    pcc_w: float
    """Power imported through the PCC breaker (+), exported (-)."""
    fleet_soc: float
    fleet_discharge_max_w: float
    fleet_charge_max_w: float
    packs: PackView


@dataclass
class Actions:
    """What a controller writes to the face this cycle; ``None`` leaves a setting as it is."""

    mode_request: ModeRequest | None = None
    control: PcsControl | None = None
    pcc_ramp_w_per_s: float | None = None
    dispatch_w: float | None = None
    auto_island_enabled: bool | None = None
    islanding_enabled: bool | None = None
    frequency_setpoint_hz: float | None = None
    voltage_setpoint_pu: float | None = None
    breaker: BreakerCommand | None = None
    black_start: bool = False
    pcs_reset: bool = False
    pack_share_enabled: bool | None = None
    pack_power_w: np.ndarray | None = None
    """Per-pack power commands (W, + discharge), written only where they changed."""
    pack_contactors: np.ndarray | None = None
    """Per-pack contactor commands (True close), written only where they changed."""
    pack_fault_resets: tuple[int, ...] = ()


@dataclass
class ControllerStatus:
    """What a controller publishes on its own face for the harness."""

    mode: ControllerMode = ControllerMode.STOPPED
    heartbeat: int = 0
    alarms: Alarm = Alarm.NONE
    packs_online: int = 0
    packs_isolated: int = 0
    fleet_soc: float = 0.0
    available_energy_wh: float = 0.0
    pcc_w: float = 0.0
    pcs_w: float = 0.0
    dispatch_w: float = 0.0
    power_cap_w: float | None = None
    """The cap the controller asks the racks to keep to; None: no cap."""


@dataclass
class ControllerCommands:
    """What the harness has asked of a controller; requests are cleared once taken up."""

    enabled: bool = True
    planned_island_requested: bool = False
    reconnect_requested: bool = False
    restart_requested: bool = False
    dispatch_w: float = 0.0
    grid_ramp_w_per_s: float = 120e3
    reserve_soc: float = 0.15
