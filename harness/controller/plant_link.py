"""The controller's link to the plant: one :class:`PlantView` per read, :class:`Actions` written back.

Everything goes through the PCS/BMS face (docs/register-map.md) over Modbus, with the face's documented
layouts: the SunSpec models 701, 704, 802 and the vendor model 64900 on unit 1 at 40000, one 17-register block
per pack from address 0, 2352 packs per unit id (pack ``i`` on unit ``1 + i // 2352``), and on each unit the
per-pack command arrays from 50000 (one register per pack). The blocks carry every per-pack value the view
holds, the nameplate energy included: it never changes, but reading it with the rest costs one register in 17.

At :meth:`PlantLink.open` the SunSpec chain is walked once: the models are found by id, their lengths checked
against the layouts this module decodes with, and their scale factors read (the face documents them as fixed).
A :meth:`PlantLink.read` is then the fewest 125-register requests that cover the points the view needs (two
for the SunSpec part) plus every pack block, decoded with numpy.

:meth:`PlantLink.apply` writes only what the actions set, in an order that makes one cycle's actions act
together: a PCS reset, then settings, dispatch, pack fault resets, per-pack commands, pack sharing, and last
the mode request, black start and breaker command. Per-pack power and contactor commands go to the face's
arrays, for the packs whose value differs from the view (power at register resolution, 100 W): in the fewest
requests of at most 123 registers covering them on their units. A request also rewrites the packs it spans
between two that differ, with the value the actions give them: the one the view shows.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import numpy as np

from drivers.errors import GarbageReply, IdentityMismatch
from drivers.modbus import MAX_READ_REGISTERS, MAX_WRITE_REGISTERS, ModbusTransport
from harness.controller.model import (
    Actions,
    BreakerCommand,
    ModeRequest,
    PackView,
    PcsControl,
    PcsState,
    PlantView,
)
from harness.sim.modbus.registers import Point, PointType, Value, decode, encode
from harness.sim.modbus.sunspec import END_MODEL_ID, SUNS_MARKER, SUNSPEC_BASE_ADDRESS, Model
from harness.sim.standins import sunspec_models as face
from harness.sim.standins.pcs_face import PACK_ARRAY_POINTS, PACK_LAYOUT, PACK_REGISTERS, PACKS_PER_UNIT

DEFAULT_NOMINAL_V = 480.0
"""The reference site's line-to-line voltage; the face publishes volts, the view per unit."""

_MEASURE, _CONTROL, _BATTERY, _MICROGRID = (
    face.DER_MEASURE_MODEL_ID,
    face.DER_CONTROL_MODEL_ID,
    face.BATTERY_MODEL_ID,
    face.MICROGRID_MODEL_ID,
)


def _layouts() -> dict[int, Model]:
    """The models the link decodes, by id. Their arguments set validators only: the layout is the same for
    every plant."""
    return {
        _MEASURE: face.der_measure_model(),
        _CONTROL: face.der_control_model(rated_w=1.0),
        _BATTERY: face.battery_model(),
        _MICROGRID: face.microgrid_model(nominal_v=1.0, nominal_hz=1.0, pcs_units=1),
    }


_VIEW_POINTS: dict[int, tuple[str, ...]] = {
    _MEASURE: ("W",),
    _BATTERY: ("SoC", "WDisChaRteMax", "WChaRteMax"),
    _MICROGRID: (
        "PcsMode",
        "PccSt",
        "PccPend",
        "SyncDV",
        "SyncDHz",
        "SyncDAng",
        "GridV",
        "GridHz",
        "BusV",
        "BusHz",
        "PccW",
        "NUnit",
        "WRtg",
        "UnitAvail",
        "NPack",
        "NPackUnit",
    ),
}
"""The points a view is made of, by model."""

_PCS_STATE = {
    face.PcsModeCode.OFF: PcsState.OFF,
    face.PcsModeCode.GRID_FOLLOWING: PcsState.GRID_FOLLOWING,
    face.PcsModeCode.GRID_FORMING: PcsState.GRID_FORMING,
    face.PcsModeCode.TRIPPED: PcsState.TRIPPED,
}
_CLOSING = frozenset({face.BreakerPending.CLOSE_SYNC_CHECKED, face.BreakerPending.CLOSE_SYNC_BYPASSED})
_MODE_CODE = {
    ModeRequest.STOP: face.ModeRequest.STOP,
    ModeRequest.FOLLOW: face.ModeRequest.FOLLOW,
    ModeRequest.FORM: face.ModeRequest.FORM,
}
_CONTROL_CODE = {
    PcsControl.POWER: face.PcsControlCode.POWER,
    PcsControl.PCC_SMOOTHING: face.PcsControlCode.PCC_SMOOTHING,
}
_BREAKER_CODE = {
    BreakerCommand.OPEN: face.BreakerCommand.OPEN,
    BreakerCommand.CLOSE_WITH_SYNC_CHECK: face.BreakerCommand.CLOSE,
    BreakerCommand.CLOSE_BYPASSING_SYNC_CHECK: face.BreakerCommand.CLOSE_NO_SYNC,
    BreakerCommand.CANCEL_CLOSE: face.BreakerCommand.CANCEL,
}


# ----------------------------------------------------------------------------- the per-pack blocks

_PACK_OFFSET = {point.name: offset for offset, point in enumerate(PACK_LAYOUT)}
if any(point.size != 1 or point.type.width != 1 for point in PACK_LAYOUT):
    raise ImportError("the per-pack decoder handles one-register points only")
_PACK_SCALED = {  # PackView field: (pack point, factor to the view's unit)
    "soc": ("SoC", 0.01),
    "soh": ("SoH", 0.01),
    "voltage_v": ("V", 1.0),
    "current_a": ("A", 1.0),
    "temperature_c": ("Tmp", 1.0),
    "cell_v_min": ("CellVMin", 1.0),
    "cell_v_max": ("CellVMax", 1.0),
    "discharge_limit_w": ("WDisChaMax", 1.0),
    "charge_limit_w": ("WChaMax", 1.0),
    "power_command_w": ("WCmd", 1.0),
    "nameplate_wh": ("WHRtg", 1.0),
}
_SIGNED_MISSING = -0x8000
_UNSIGNED_MISSING = 0xFFFF
_ARRAY = {point.name: point for point in PACK_ARRAY_POINTS}
_POWER_COMMAND, _CONTACTOR_COMMAND = _ARRAY["WCmd"], _ARRAY["ContCmd"]
if (_POWER_COMMAND.type, _CONTACTOR_COMMAND.type) != (PointType.INT16, PointType.ENUM16):
    raise ImportError("the per-pack command arrays are written as int16 power and enum16 contactor commands")


def _exponent(point: Point) -> int:
    factor = point.scale_factor
    if isinstance(factor, str):
        raise TypeError(f"{point.name}: the per-pack block takes fixed exponents")
    return factor or 0


def _pack_column(raw: np.ndarray, name: str) -> np.ndarray:
    """Point ``name`` of every pack in engineering units; NaN where it reads "not implemented"."""
    point = PACK_LAYOUT[_PACK_OFFSET[name]]
    column = raw[:, _PACK_OFFSET[name]]
    if point.type is PointType.INT16:
        column = column.astype(np.int16)
        missing = _SIGNED_MISSING
    else:
        missing = _UNSIGNED_MISSING
    values = column * 10.0 ** _exponent(point)
    values[column == missing] = np.nan
    return values


def _pack_view(raw: np.ndarray) -> PackView:
    """Decode an (n, PACK_REGISTERS) array of pack blocks as registers."""
    scaled = {field: _pack_column(raw, name) * factor for field, (name, factor) in _PACK_SCALED.items()}
    return PackView(
        contactor_closed=raw[:, _PACK_OFFSET["ContSt"]] == face.Contactor.CLOSED,
        fault_bits=raw[:, _PACK_OFFSET["Flt"]].astype(np.int64),
        heartbeat=raw[:, _PACK_OFFSET["Hb"]].astype(np.int64),
        **scaled,
    )


def _power_command_raw(power_w: np.ndarray) -> np.ndarray:
    """``WCmd`` register values (signed) for power commands, clipped to what the register carries."""
    step_w = 10.0 ** _exponent(_POWER_COMMAND)
    raw = np.rint(np.asarray(power_w, dtype=float) / step_w)
    return np.clip(raw, _SIGNED_MISSING + 1, -_SIGNED_MISSING - 1).astype(np.int64)


# ----------------------------------------------------------------------------- the SunSpec image


@dataclass(frozen=True)
class _Span:
    address: int
    count: int

    @property
    def end(self) -> int:
        return self.address + self.count


def _coalesce(spans: Iterable[_Span], limit: int) -> list[_Span]:
    """The fewest spans of at most ``limit`` registers covering ``spans`` (gaps between them included)."""
    merged: list[_Span] = []
    for span in sorted(spans, key=lambda span: span.address):
        if merged and max(merged[-1].end, span.end) - merged[-1].address <= limit:
            last = merged[-1]
            merged[-1] = _Span(last.address, max(last.end, span.end) - last.address)
        else:
            merged.append(span)
    return merged


@dataclass(frozen=True)
class _Image:
    """The face's SunSpec models as found at open: where each point is, and the fixed scale factors."""

    models: Mapping[int, Model]
    bodies: Mapping[int, int]
    """Model id -> PDU address of the first register after its ID and L."""
    factors: Mapping[tuple[int, str], int]

    def point(self, model_id: int, name: str) -> tuple[Point, int]:
        """The point and its PDU address."""
        address = self.bodies[model_id]
        for point in self.models[model_id].points:
            if point.name == name:
                return point, address
            address += point.size
        raise KeyError(f"model {model_id} has no point {name}")

    def span(self, model_id: int, name: str) -> _Span:
        point, address = self.point(model_id, name)
        return _Span(address, point.size)

    def factor(self, model_id: int, point: Point) -> int:
        factor = point.scale_factor
        if isinstance(factor, str):
            return self.factors[model_id, factor]
        return factor or 0

    def decode(self, model_id: int, name: str, registers: Mapping[int, int]) -> Value:
        point, address = self.point(model_id, name)
        words = [registers[address + index] for index in range(point.size)]
        return decode(point.type, words, scale_factor=self.factor(model_id, point))

    def encode(self, model_id: int, name: str, value: Value) -> list[int]:
        point, _ = self.point(model_id, name)
        return encode(point.type, value, scale_factor=self.factor(model_id, point))


def _scale_factor_names(model: Model) -> set[str]:
    return {point.scale_factor for point in model.points if isinstance(point.scale_factor, str)}


@dataclass(frozen=True)
class _Write:
    """One write request: ``registers`` from PDU ``address`` of face unit ``unit``."""

    unit: int
    address: int
    registers: list[int]
    what: str


# ----------------------------------------------------------------------------- the link


class PlantLink:
    """A controller's Modbus link to the plant's PCS/BMS face at ``resource`` (unit 1 of the face).

    ``nominal_v`` is the site's nominal line-to-line voltage (a controller is commissioned with it): the face
    publishes volts, the view per unit. Pack units 2.. are reached at the same host and port.
    """

    def __init__(
        self,
        resource: str,
        *,
        role: str = "pcs",
        timeout_s: float = 2.0,
        nominal_v: float = DEFAULT_NOMINAL_V,
    ) -> None:
        if not nominal_v > 0.0:
            raise ValueError(f"nominal_v must be positive, got {nominal_v}")
        self.role = role
        self.resource = resource
        self.timeout_s = timeout_s
        self.nominal_v = nominal_v
        self._units = [ModbusTransport(role, resource, timeout_s=timeout_s)]
        self._image: _Image | None = None
        self._plan: list[_Span] = []
        self._packs = 0

    # ------------------------------------------------------------------------- open / close

    def open(self) -> Self:
        """Connect, walk the SunSpec chain, learn the fleet size and connect to every pack unit."""
        if self._image is not None:
            return self
        try:
            self._units[0].open()
            image = self._walk()
            plan = _coalesce(
                (image.span(model_id, name) for model_id, names in _VIEW_POINTS.items() for name in names),
                MAX_READ_REGISTERS,
            )
            registers = self._read_spans(plan)
            packs = int(image.decode(_MICROGRID, "NPack", registers) or 0)
            units = int(image.decode(_MICROGRID, "NPackUnit", registers) or 0)
            if units != math.ceil(packs / PACKS_PER_UNIT):
                raise self._mismatch(f"{packs} packs on {units} units: not {PACKS_PER_UNIT} a unit")
            self._units += [
                ModbusTransport(self.role, _on_unit(self.resource, unit), timeout_s=self.timeout_s)
                for unit in range(2, units + 1)
            ]
            for transport in self._units[1:]:
                transport.open()
        except BaseException:
            self.close()
            raise
        self._image, self._plan, self._packs = image, plan, packs
        return self

    def close(self) -> None:
        """Disconnect from every unit; idempotent."""
        for transport in self._units:
            transport.close()
        del self._units[1:]
        self._image = None

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def packs(self) -> int:
        """Packs in the fleet, as the face said at open."""
        return self._packs

    def _walk(self) -> _Image:
        """Find the models of the chain at 40000; IdentityMismatch if the face is not the documented one."""
        unit = self._units[0]
        marker = decode(PointType.STRING, unit.read_registers(SUNSPEC_BASE_ADDRESS, 2, "SunS"))
        if marker != SUNS_MARKER:
            raise self._mismatch(f"no SunS marker at 40000 (read {marker!r})")
        layouts = _layouts()
        bodies: dict[int, int] = {}
        address = SUNSPEC_BASE_ADDRESS + 2
        while True:
            model_id, length = unit.read_registers(address, 2, "model header")
            if model_id == END_MODEL_ID:
                break
            layout = layouts.get(model_id)
            if layout is not None and layout.length != length:
                raise self._mismatch(f"model {model_id} is {length} registers, expected {layout.length}")
            bodies[model_id] = address + 2
            address += 2 + length
        missing = sorted(set(layouts) - set(bodies))
        if missing:
            raise self._mismatch(f"models {missing} missing from the chain")
        image = _Image(layouts, bodies, {})
        wanted = [
            (model_id, name) for model_id, model in layouts.items() for name in _scale_factor_names(model)
        ]
        registers = self._read_spans(
            _coalesce((image.span(model_id, name) for model_id, name in wanted), MAX_READ_REGISTERS)
        )
        factors = {}
        for model_id, name in wanted:
            factor = image.decode(model_id, name, registers)
            if factor is not None:  # a point whose scale factor is not implemented is not used here
                factors[model_id, name] = int(factor)
        return _Image(layouts, bodies, factors)

    def _mismatch(self, problem: str) -> IdentityMismatch:
        """The face is not the documented one."""
        return IdentityMismatch(self.role, self.resource, "open", problem)

    def _read_spans(self, spans: Sequence[_Span]) -> dict[int, int]:
        registers: dict[int, int] = {}
        for span in spans:
            words = self._units[0].read_registers(span.address, span.count, "SunSpec points")
            registers.update(zip(range(span.address, span.end), words, strict=True))
        return registers

    def _opened(self) -> _Image:
        if self._image is None:
            raise RuntimeError(f"{self.role} ({self.resource}): PlantLink is not open")
        return self._image

    # ------------------------------------------------------------------------- read

    def read(self) -> PlantView:
        """One read of the face: the SunSpec points the view needs, then every pack block."""
        image = self._opened()
        registers = self._read_spans(self._plan)
        blocks: list[int] = []
        for index, transport in enumerate(self._units):
            count = min(PACKS_PER_UNIT, self._packs - index * PACKS_PER_UNIT)
            blocks += transport.read_registers(0, count * PACK_REGISTERS, "pack blocks")
        raw = np.array(blocks, dtype=np.int64).reshape(self._packs, PACK_REGISTERS)

        def number(model_id: int, name: str) -> float:
            value = image.decode(model_id, name, registers)
            return math.nan if value is None else float(value)

        def code(model_id: int, name: str) -> int:
            value = image.decode(model_id, name, registers)
            if not isinstance(value, int):
                raise GarbageReply(self.role, self.resource, "read", f"{name} reads {value!r}")
            return value

        pcs_code = code(_MICROGRID, "PcsMode")
        if pcs_code not in _PCS_STATE:
            raise GarbageReply(self.role, self.resource, "read", f"PcsMode reads unknown code {pcs_code}")
        return PlantView(
            pcs_state=_PCS_STATE[face.PcsModeCode(pcs_code)],
            pcs_output_w=number(_MEASURE, "W"),
            pcs_rated_w=number(_MICROGRID, "WRtg"),
            pcs_units=code(_MICROGRID, "NUnit"),
            pcs_units_available=code(_MICROGRID, "UnitAvail").bit_count(),
            breaker_closed=code(_MICROGRID, "PccSt") == face.BreakerState.CLOSED,
            close_pending=code(_MICROGRID, "PccPend") in _CLOSING,
            grid_voltage_pu=number(_MICROGRID, "GridV") / self.nominal_v,
            grid_frequency_hz=number(_MICROGRID, "GridHz"),
            bus_voltage_pu=number(_MICROGRID, "BusV") / self.nominal_v,
            bus_frequency_hz=number(_MICROGRID, "BusHz"),
            sync_dv_pu=number(_MICROGRID, "SyncDV") / self.nominal_v,
            sync_df_hz=number(_MICROGRID, "SyncDHz"),
            sync_dtheta_deg=number(_MICROGRID, "SyncDAng"),
            pcc_w=number(_MICROGRID, "PccW"),
            fleet_soc=number(_BATTERY, "SoC") / 100.0,
            fleet_discharge_max_w=number(_BATTERY, "WDisChaRteMax"),
            fleet_charge_max_w=number(_BATTERY, "WChaRteMax"),
            packs=_pack_view(raw),
        )

    # ------------------------------------------------------------------------- apply

    def apply(self, actions: Actions, view: PlantView) -> None:
        """Write what ``actions`` set; per-pack commands only where they differ from ``view``.

        The dispatch is clipped to the PCS rating and per-pack power commands to what ``WCmd`` carries.
        A face refusal raises InstrumentRejected; the writes before it stay done.
        """
        for write in self._writes(actions, view):
            self._units[write.unit - 1].write_registers(write.address, write.registers, write.what)

    def _writes(self, actions: Actions, view: PlantView) -> list[_Write]:
        """The write requests for ``actions``, in the order they are sent."""
        image = self._opened()
        if view.packs.n != self._packs:
            raise ValueError(f"the view has {view.packs.n} packs, the face {self._packs}")
        settings: dict[str, Value] = {}
        if actions.control is not None:
            settings["Ctl"] = _CONTROL_CODE[actions.control]
        if actions.pcc_ramp_w_per_s is not None:
            settings["PccRmp"] = float(actions.pcc_ramp_w_per_s)
        if actions.auto_island_enabled is not None:
            settings["AutoIslEna"] = int(actions.auto_island_enabled)
        if actions.islanding_enabled is not None:
            settings["IslEna"] = int(actions.islanding_enabled)
        if actions.frequency_setpoint_hz is not None:
            settings["HzSet"] = float(actions.frequency_setpoint_hz)
        if actions.voltage_setpoint_pu is not None:
            settings["VSet"] = float(actions.voltage_setpoint_pu) * self.nominal_v
        dispatch: dict[str, Value] = {}
        if actions.dispatch_w is not None:
            rated_w = view.pcs_rated_w
            dispatch = {
                "WSetEna": face.Enable.ENABLED,
                "WSetMod": face.PowerSetMode.WATTS,
                "WSet": float(np.clip(actions.dispatch_w, -rated_w, rated_w)),
            }
        writes = [
            *self._point_writes(image, _MICROGRID, {"PcsRst": face.Act.ACT} if actions.pcs_reset else {}),
            *self._point_writes(image, _MICROGRID, settings),
            *self._point_writes(image, _CONTROL, dispatch),
            *(self._pack_write(pack, "FltRst", face.Act.ACT) for pack in actions.pack_fault_resets),
            *self._pack_command_writes(actions, view.packs),
        ]
        commands: dict[str, Value] = {}
        if actions.pack_share_enabled is not None:
            commands["PackShrEna"] = int(actions.pack_share_enabled)
        if actions.mode_request is not None:
            commands["ModeReq"] = _MODE_CODE[actions.mode_request]
        if actions.black_start:
            commands["BlkStrt"] = face.Act.ACT
        if actions.breaker is not None:
            commands["PccCmd"] = _BREAKER_CODE[actions.breaker]
        for name, value in commands.items():  # one request each, in this order
            writes += self._point_writes(image, _MICROGRID, {name: value})
        return writes

    def _point_writes(self, image: _Image, model_id: int, values: Mapping[str, Value]) -> list[_Write]:
        """Writes of SunSpec points, adjacent ones merged into one request."""
        placed = sorted(
            (image.point(model_id, name)[1], name, list(image.encode(model_id, name, value)))
            for name, value in values.items()
        )
        writes: list[_Write] = []
        for address, name, registers in placed:
            last = writes[-1] if writes else None
            if (
                last is not None
                and last.address + len(last.registers) == address
                and len(last.registers) + len(registers) <= MAX_WRITE_REGISTERS
            ):
                writes[-1] = _Write(1, last.address, last.registers + registers, f"{last.what},{name}")
            else:
                writes.append(_Write(1, address, registers, f"{model_id}.{name}"))
        return writes

    def _pack_command_writes(self, actions: Actions, packs: PackView) -> list[_Write]:
        """Writes of the power and contactor arrays: those the actions set and that differ from the view."""
        n = packs.n
        writes: list[_Write] = []
        if actions.pack_power_w is not None:
            wanted = np.asarray(actions.pack_power_w, dtype=float)
            if wanted.shape != (n,) or not np.isfinite(wanted).all():
                raise ValueError(f"pack_power_w must be {n} finite values, got shape {wanted.shape}")
            power = _power_command_raw(wanted)
            changed = power != _power_command_raw(np.nan_to_num(packs.power_command_w))
            writes += _array_writes(_POWER_COMMAND, power & 0xFFFF, changed)
        if actions.pack_contactors is not None:
            contactors = np.asarray(actions.pack_contactors, dtype=bool)
            if contactors.shape != (n,):
                raise ValueError(f"pack_contactors must be {n} values, got shape {contactors.shape}")
            codes = np.where(contactors, face.Contactor.CLOSED, face.Contactor.OPEN)
            writes += _array_writes(_CONTACTOR_COMMAND, codes, contactors != packs.contactor_closed)
        return writes

    def _pack_write(self, pack: int, name: str, value: Value) -> _Write:
        """A write of point ``name`` of pack ``pack``'s block."""
        if not 0 <= pack < self._packs:
            raise ValueError(f"pack {pack} is not in the fleet of {self._packs}")
        unit, slot = divmod(pack, PACKS_PER_UNIT)
        point = PACK_LAYOUT[_PACK_OFFSET[name]]
        registers = encode(point.type, value, scale_factor=_exponent(point))
        address = slot * PACK_REGISTERS + _PACK_OFFSET[name]
        return _Write(unit + 1, address, registers, f"pack {pack} {name}")


def _array_writes(point: Point, registers: np.ndarray, changed: np.ndarray) -> list[_Write]:
    """Writes of ``registers`` (one per pack) to ``point``'s array that cover the ``changed`` packs: on each
    unit the fewest requests of at most 123 registers, each carrying the registers of every pack it spans."""
    writes = []
    for unit_index, first in enumerate(range(0, changed.size, PACKS_PER_UNIT)):
        slots = np.flatnonzero(changed[first : first + PACKS_PER_UNIT]).tolist()
        for run in _coalesce((_Span(slot, 1) for slot in slots), MAX_WRITE_REGISTERS):
            packs = slice(first + run.address, first + run.end)
            writes.append(
                _Write(
                    unit_index + 1,
                    point.address + run.address,
                    registers[packs].tolist(),
                    f"packs {packs.start}-{packs.stop - 1} {point.name}",
                )
            )
    return writes


def _on_unit(resource: str, unit: int) -> str:
    """``resource`` with its unit id replaced by ``unit``."""
    location, mark, query = resource.partition("?")
    return f"{location.rpartition('/')[0]}/{unit}{mark}{query}"
