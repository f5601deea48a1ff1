"""The controller's own Modbus face: what it publishes for the harness, and the commands it takes.

Unit 1 serves a SunSpec image at 40000: model 1 (common: who the controller is) and the vendor model 64901
"gridhil controller" (layout: :func:`controller_model`, table in docs/controller-interface.md).

Reads come from the controller's :class:`ControllerStatus`, fetched from ``status_source()`` once per request
with the lock held, so one read sees one cycle's status. Writes go to a :class:`ControllerCommands`, validated
first (a value outside a point's valid values answers exception 03 and changes nothing) and applied with the
lock held. ``EnableCmd``, ``IslandCmd`` and ``ReconnectCmd`` are write-to-act registers: they act when
written, do nothing when 0 is written, and read back 0; the set-points (``DispatchW``, ``RampW``,
``ReserveSoC``) read back what is commanded now.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from enum import IntEnum, IntFlag
from typing import Self

from harness.controller.model import ControllerCommands, ControllerMode, ControllerStatus
from harness.lifecycle import Lifecycle
from harness.sim.modbus import (
    Access,
    ModbusStandIn,
    Model,
    OneOf,
    Point,
    PointType,
    Range,
    RegisterMap,
    Value,
    common_model,
    sunspec_map,
)
from harness.sim.standins.pcs_face import COUNTER_MODULUS
from harness.sim.standins.sunspec_models import MAX_RAMP_W_PER_S, Act

CONTROLLER_MODEL_ID = 64901
"""Vendor model (SunSpec reserves 64000-65535 for vendor models); 64900 is the plant face's."""
CONTROLLER = "controller"
"""The model's name: the prefix of its point names in the map (``controller.Mode``)."""
FACE_UNIT = 1
MANUFACTURER = "gridhil"
DEFAULT_MODEL_NAME = "reference-controller"
DEFAULT_SERIAL = "GRIDHIL-CTL-0001"
DEFAULT_VERSION = "1.00"
PERCENT = 100.0
SOC_SF = -2
"""Fleet SOC and the reserve travel as % x 100 (0.01 % resolution)."""
MAX_DISPATCH_W = 1e9
"""Largest |dispatch| accepted: beyond any site, well inside int32."""

StatusSource = Callable[[], ControllerStatus]

T = PointType
RW = Access.RW


class EnableCommand(IntEnum):
    """``EnableCmd`` codes."""

    NONE = 0
    ENABLE = 1
    STOP = 2
    RESTART = 3


class PendingBit(IntFlag):
    """``CmdPend``: requests the controller has not taken up yet."""

    NONE = 0
    PLANNED_ISLAND = 1 << 0
    RECONNECT = 1 << 1


def controller_model() -> Model:
    """Model 64901 "gridhil controller": status (read-only) then commands (writable)."""
    return Model(
        CONTROLLER_MODEL_ID,
        CONTROLLER,
        (
            Point("Mode", T.ENUM16, description="operating mode (ControllerMode)"),
            Point(
                "Hb",
                T.UINT16,
                description=f"heartbeat: +1 every control cycle, wraps from {COUNTER_MODULUS - 1} to 0",
            ),
            Point("Alrm", T.BITFIELD32, description="alarm bits (Alarm)"),
            Point("Ena", T.ENUM16, description="1 enabled, 0 stopped (by EnableCmd)"),
            Point(
                "CmdPend",
                T.BITFIELD16,
                description="requests not yet taken up: 1 planned island, 2 reconnect",
            ),
            Point("PackOn", T.UINT16, description="packs online (contactor closed, in service)"),
            Point("PackIso", T.UINT16, description="packs isolated by the controller"),
            Point("SoC", T.UINT16, units="%", scale_factor="SoC_SF", description="fleet state of charge"),
            Point("AvailWh", T.UINT32, units="Wh", description="energy the fleet can still deliver"),
            Point("PccW", T.INT32, units="W", description="power imported through the PCC (+), exported (-)"),
            Point("PcsW", T.INT32, units="W", description="PCS output: + into the bus, - charging the packs"),
            Point("DispW", T.INT32, units="W", description="PCS dispatch the controller applies now"),
            Point(
                "CapW",
                T.UINT32,
                units="W",
                description="power cap requested of the racks; not implemented (0xFFFFFFFF): no cap",
            ),
            Point(
                "EnableCmd",
                T.ENUM16,
                access=RW,
                validator=OneOf.members(EnableCommand),
                value=EnableCommand.NONE,
                description="write 1: enable, 2: stop (the controller stops commanding the plant), "
                "3: restart (state dropped, back after its boot time, the plant left as it is); reads 0",
            ),
            Point(
                "IslandCmd",
                T.ENUM16,
                access=RW,
                validator=OneOf.members(Act),
                value=Act.NONE,
                description="write 1: planned island (zero the PCC flow, then open the breaker); reads 0",
            ),
            Point(
                "ReconnectCmd",
                T.ENUM16,
                access=RW,
                validator=OneOf.members(Act),
                value=Act.NONE,
                description="write 1: reconnect to the grid (through the sync check); reads 0",
            ),
            Point(
                "DispatchW",
                T.INT32,
                units="W",
                access=RW,
                validator=Range(-MAX_DISPATCH_W, MAX_DISPATCH_W),
                description="dispatch set-point while grid-connected: + discharge, - charge",
            ),
            Point(
                "RampW",
                T.UINT32,
                units="W/s",
                access=RW,
                validator=Range(0.0, MAX_RAMP_W_PER_S),
                description="grid ramp limit: largest rate of change of the PCC power",
            ),
            Point(
                "ReserveSoC",
                T.UINT16,
                units="%",
                scale_factor="SoC_SF",
                access=RW,
                validator=Range(0.0, PERCENT),
                description="SOC reserve: the fleet is not discharged below it",
            ),
            Point("SoC_SF", T.SUNSSF, value=SOC_SF, description=f"scale factor of SoC, ReserveSoC: {SOC_SF}"),
        ),
    )


def _name(point: str) -> str:
    return f"{CONTROLLER}.{point}"


STATUS_POINTS = tuple(_name(point.name) for point in controller_model().points if point.type is not T.SUNSSF)
"""The points read from status and commands in one snapshot per request (every point but the constants)."""


def _published(status: ControllerStatus, commands: ControllerCommands) -> Mapping[str, Value]:
    pending = PendingBit.NONE
    if commands.planned_island_requested:
        pending |= PendingBit.PLANNED_ISLAND
    if commands.reconnect_requested:
        pending |= PendingBit.RECONNECT
    values: dict[str, Value] = {
        "Mode": int(ControllerMode(status.mode)),
        "Hb": status.heartbeat % COUNTER_MODULUS,
        "Alrm": int(status.alarms),
        "Ena": int(commands.enabled),
        "CmdPend": int(pending),
        "PackOn": status.packs_online,
        "PackIso": status.packs_isolated,
        "SoC": PERCENT * status.fleet_soc,
        "AvailWh": float(status.available_energy_wh),
        "PccW": float(status.pcc_w),
        "PcsW": float(status.pcs_w),
        "DispW": float(status.dispatch_w),
        "CapW": None if status.power_cap_w is None else float(status.power_cap_w),
        "EnableCmd": EnableCommand.NONE,
        "IslandCmd": Act.NONE,
        "ReconnectCmd": Act.NONE,
        "DispatchW": float(commands.dispatch_w),
        "RampW": float(commands.grid_ramp_w_per_s),
        "ReserveSoC": PERCENT * commands.reserve_soc,
    }
    return {_name(point): value for point, value in values.items()}


def _enable(commands: ControllerCommands, value: Value) -> None:
    if value == EnableCommand.ENABLE:
        commands.enabled = True
    elif value == EnableCommand.STOP:
        commands.enabled = False
    elif value == EnableCommand.RESTART:
        commands.restart_requested = True


def _request(commands: ControllerCommands, attribute: str) -> Callable[[Value], None]:
    def apply(value: Value) -> None:
        if value == Act.ACT:
            setattr(commands, attribute, True)

    return apply


def _number(value: Value) -> float:
    if not isinstance(value, int | float):
        raise TypeError(f"a number was validated, got {value!r}")
    return float(value)


def controller_map(
    status_source: StatusSource,
    commands: ControllerCommands,
    lock: AbstractContextManager[object],
    *,
    model: str = DEFAULT_MODEL_NAME,
    serial: str = DEFAULT_SERIAL,
    version: str = DEFAULT_VERSION,
) -> RegisterMap:
    """The face's register map (unit 1): common model + 64901, bound to ``status_source`` and ``commands``."""
    common = common_model(manufacturer=MANUFACTURER, model=model, serial_number=serial, version=version)
    regmap = sunspec_map([common, controller_model()], lock=lock, title=f"Controller face (unit {FACE_UNIT})")
    regmap.bind_block(STATUS_POINTS, lambda: _published(status_source(), commands))
    regmap.bind_apply(_name("EnableCmd"), lambda value: _enable(commands, value))
    regmap.bind_apply(_name("IslandCmd"), _request(commands, "planned_island_requested"))
    regmap.bind_apply(_name("ReconnectCmd"), _request(commands, "reconnect_requested"))
    regmap.bind_apply(_name("DispatchW"), lambda value: setattr(commands, "dispatch_w", _number(value)))
    regmap.bind_apply(_name("RampW"), lambda value: setattr(commands, "grid_ramp_w_per_s", _number(value)))
    regmap.bind_apply(
        _name("ReserveSoC"), lambda value: setattr(commands, "reserve_soc", _number(value) / PERCENT)
    )
    return regmap


class ControllerFace(Lifecycle):
    """The controller's Modbus TCP server on ``host:port`` (port 0: an ephemeral one) until closed.

    ``lock`` is the controller's lock: it holds it while it updates its status or takes up commands; the
    face holds it while it reads the status or applies a write.
    """

    def __init__(
        self,
        status_source: StatusSource,
        commands: ControllerCommands,
        lock: AbstractContextManager[object],
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        model: str = DEFAULT_MODEL_NAME,
        serial: str = DEFAULT_SERIAL,
        version: str = DEFAULT_VERSION,
    ) -> None:
        self.register_map = controller_map(
            status_source, commands, lock, model=model, serial=serial, version=version
        )
        self.identity = f"{MANUFACTURER},{model},{serial},{version}"
        """Model 1's manufacturer, model, serial number and version."""
        self._server = ModbusStandIn({FACE_UNIT: self.register_map}, host=host, port=port)

    @property
    def resource(self) -> str:
        """The bench-file resource (``modbus+tcp://host:port/1``), known once started."""
        return self._server.resource

    def start(self) -> Self:
        self._server.start()
        return self

    def close(self) -> None:
        """Stop serving; idempotent."""
        self._server.close()

