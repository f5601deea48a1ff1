"""The controller under test, through its own Modbus face: its state, and the commands the harness gives it.

A gridhil controller serves a SunSpec image: model 1 (who it is) and the vendor model 64901 "gridhil
controller" (docs/controller-interface.md). This driver knows 64901 from its own point table below, written
from that document (``drivers`` imports nothing of the harness); a test holds it against the reference face.

:meth:`ControllerLink.status` is one read of the whole model, so its values belong to one control cycle.
Commands are single writes: ``EnableCmd`` (enable / stop), ``IslandCmd``, ``ReconnectCmd`` (write-to-act),
and the set-points ``DispatchW``, ``RampW``, ``ReserveSoC``, each checked against this driver's ranges (which
the bench file may narrow: ``dispatch_max``, ``grid_ramp_max``, ``reserve_soc_max``) before it is sent.

``safe()`` asks the controller to stop; the plant-side safe state is the instruments' job.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar, Self

from drivers.base import DriverConfig, Identity, Range
from drivers.errors import GarbageReply, IdentityMismatch
from drivers.modbus import ModbusDriver
from drivers.registry import register
from drivers.sunspec import SUNSPEC_MODELS, ModelDef, PointDef, PointValue, SunSpecDevice, sunspec_identity

CONTROLLER_MODEL_ID = 64901
PERCENT = 100.0

CONTROLLER_MODEL = ModelDef(
    CONTROLLER_MODEL_ID,
    "gridhil controller",
    (
        PointDef("Mode", "enum16"),
        PointDef("Hb", "uint16"),
        PointDef("Alrm", "bitfield32"),
        PointDef("Ena", "enum16"),
        PointDef("CmdPend", "bitfield16"),
        PointDef("PackOn", "uint16"),
        PointDef("PackIso", "uint16"),
        PointDef("SoC", "uint16", sf="SoC_SF", units="%"),
        PointDef("AvailWh", "uint32", units="Wh"),
        PointDef("PccW", "int32", units="W"),
        PointDef("PcsW", "int32", units="W"),
        PointDef("DispW", "int32", units="W"),
        PointDef("CapW", "uint32", units="W"),
        PointDef("EnableCmd", "enum16", writable=True),
        PointDef("IslandCmd", "enum16", writable=True),
        PointDef("ReconnectCmd", "enum16", writable=True),
        PointDef("DispatchW", "int32", units="W", writable=True),
        PointDef("RampW", "uint32", units="W/s", writable=True),
        PointDef("ReserveSoC", "uint16", sf="SoC_SF", units="%", writable=True),
        PointDef("SoC_SF", "sunssf"),
    ),
)
"""Model 64901 as docs/controller-interface.md lays it out."""


class ControllerMode(IntEnum):
    """``Mode`` codes (IEEE 2030.7 steady states and the transitions between them)."""

    STOPPED = 0
    GRID_CONNECTED = 1
    ISLANDED = 2
    TRANSITIONING = 3
    BLACK_START = 4
    FAULT = 5


class EnableCommand(IntEnum):
    """``EnableCmd`` codes."""

    ENABLE = 1
    STOP = 2
    RESTART = 3


ACT = 1
"""What a write-to-act register (``IslandCmd``, ``ReconnectCmd``) takes to act."""


@dataclass(frozen=True)
class ControllerReading:
    """One read of the controller's state, in SI units (SOC as a fraction 0..1)."""

    mode: ControllerMode
    heartbeat: int
    """+1 every control cycle, wraps from 65534 to 0."""
    alarms: int
    """``Alrm`` bits (docs/controller-interface.md)."""
    enabled: bool
    planned_island_pending: bool
    reconnect_pending: bool
    packs_online: int
    packs_isolated: int
    fleet_soc: float
    available_energy_wh: float
    pcc_w: float
    """Power imported through the PCC (+), exported (-)."""
    pcs_w: float
    """PCS output: + into the bus, - charging the packs."""
    dispatch_w: float
    """The dispatch the controller applies now."""
    power_cap_w: float | None
    """The cap the controller asks the racks to keep to; None: no cap."""
    dispatch_setpoint_w: float
    grid_ramp_w_per_s: float
    reserve_soc: float


_PENDING_ISLAND = 1 << 0
_PENDING_RECONNECT = 1 << 1


@register("gridhil-controller")
class ControllerLink(ModbusDriver):
    """A gridhil controller on Modbus TCP (or RTU): SunSpec model 1 and the vendor model 64901."""

    RANGES: ClassVar[dict[str, Range]] = {
        "dispatch_max": Range(0.0, 1e9, "W"),
        "grid_ramp_max": Range(0.0, 1e9, "W/s"),
        "reserve_soc_max": Range(0.0, 1.0, "(fraction)"),
    }

    def __init__(self, config: DriverConfig) -> None:
        super().__init__(config)
        self.device = SunSpecDevice(self.transport, {**SUNSPEC_MODELS, CONTROLLER_MODEL_ID: CONTROLLER_MODEL})

    def open(self) -> Self:
        """Connect, find the SunSpec models, read model 1 and check for model 64901 (raises if any fails)."""
        super().open()
        try:
            self.identity()
            found = self.device.scan()
            if CONTROLLER_MODEL_ID not in found:
                raise IdentityMismatch(
                    self.role,
                    self.resource,
                    "scan",
                    f"no gridhil controller model {CONTROLLER_MODEL_ID}; models found: {sorted(found)}",
                )
        except BaseException:
            self.close()
            raise
        return self

    def identity(self) -> Identity:
        """Manufacturer, model, serial number and version from the common model (1)."""
        return sunspec_identity(self.device, self.role, self.resource)

    def status(self) -> ControllerReading:
        """The controller's state now, from one read of model 64901."""
        values = self.device.read_model(CONTROLLER_MODEL_ID)
        mode_code = int(self._required(values, "Mode"))
        try:
            mode = ControllerMode(mode_code)
        except ValueError:
            raise GarbageReply(self.role, self.resource, "status", f"unknown Mode code {mode_code}") from None
        pending = int(self._required(values, "CmdPend"))
        cap = values.get("CapW")
        return ControllerReading(
            mode=mode,
            heartbeat=int(self._required(values, "Hb")),
            alarms=int(self._required(values, "Alrm")),
            enabled=bool(self._required(values, "Ena")),
            planned_island_pending=bool(pending & _PENDING_ISLAND),
            reconnect_pending=bool(pending & _PENDING_RECONNECT),
            packs_online=int(self._required(values, "PackOn")),
            packs_isolated=int(self._required(values, "PackIso")),
            fleet_soc=self._required(values, "SoC") / PERCENT,
            available_energy_wh=self._required(values, "AvailWh"),
            pcc_w=self._required(values, "PccW"),
            pcs_w=self._required(values, "PcsW"),
            dispatch_w=self._required(values, "DispW"),
            power_cap_w=None if cap is None else float(cap),
            dispatch_setpoint_w=self._required(values, "DispatchW"),
            grid_ramp_w_per_s=self._required(values, "RampW"),
            reserve_soc=self._required(values, "ReserveSoC") / PERCENT,
        )

    def enable(self) -> None:
        """Let the controller run the plant."""
        self._write("EnableCmd", EnableCommand.ENABLE)

    def stop(self) -> None:
        """Ask the controller to stop: it stops commanding the plant (see docs/controller-interface.md)."""
        self._write("EnableCmd", EnableCommand.STOP)

    def restart(self) -> None:
        """Restart the controller (a watchdog reset, a software update): it drops its state and comes
        back after its boot time, its set-points kept; meanwhile nothing commands the plant."""
        self._write("EnableCmd", EnableCommand.RESTART)

    def planned_island(self) -> None:
        """Ask for a planned island: the controller zeroes the PCC flow, then opens the breaker."""
        self._write("IslandCmd", ACT)

    def reconnect(self) -> None:
        """Ask the controller to reconnect to the grid (through the sync check)."""
        self._write("ReconnectCmd", ACT)

    def set_dispatch(self, w: float) -> None:
        """Dispatch set-point while grid-connected, W: + discharge, - charge; |w| within ``dispatch_max``."""
        self.check("set_dispatch", "|dispatch|", abs(w), "dispatch_max")
        self._write("DispatchW", round(w))

    def set_grid_ramp(self, w_per_s: float) -> None:
        """Grid ramp limit, W/s, within 0..``grid_ramp_max``."""
        self.check("set_grid_ramp", "grid ramp", w_per_s, "grid_ramp_max")
        self._write("RampW", round(w_per_s))

    def set_reserve_soc(self, fraction: float) -> None:
        """SOC reserve as a fraction, within 0..``reserve_soc_max`` (sent as % with 0.01 % resolution)."""
        self.check("set_reserve_soc", "reserve SOC", fraction, "reserve_soc_max")
        self._write("ReserveSoC", fraction * PERCENT)

    def safe(self) -> None:
        """``stop()``: asks the controller to stop; the plant-side safe state is the instruments' job."""
        self.stop()

    def _write(self, point: str, value: float) -> None:
        self.device.write_point(CONTROLLER_MODEL_ID, point, value)

    def _required(self, values: dict[str, PointValue], name: str) -> float:
        value = values.get(name)
        if not isinstance(value, int | float):
            raise GarbageReply(
                self.role, self.resource, "status", f"model {CONTROLLER_MODEL_ID} {name} not implemented"
            )
        return float(value)
