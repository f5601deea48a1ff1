"""The plant's PCS/BMS face: the only way a controller under test reads and commands the plant.

Unit 1 serves a SunSpec image at 40000 (models 1, 701, 704, 802 and the vendor model 64900, layouts in
:mod:`harness.sim.standins.sunspec_models`) and, below it, one 17-register block per pack. Pack ``i`` lives on
unit ``1 + i // 2352`` at PDU address ``17 * (i % 2352)``: as many whole blocks as fit below 40000 (0-39983).
Units 2 and up carry the blocks of their packs and, at 40000, a SunSpec image with model 1 only.

Every unit also serves its packs' commands and status as arrays of one register per pack from 50000 (power
command, contactor command, status: :data:`PACK_ARRAY_POINTS`), so that a controller commands 123 packs per
request instead of one. Blocks and arrays command through one :class:`PackCommands` and act alike.

Everything a pack block reports is what the pack's BMS reports: a pack whose BMS link is lost keeps its last
values and its heartbeat stops, while the true pack moves on. Contactor state and fault bits are live.

Write semantics, for every register: a write must cover whole writable points, else exception 02; a value
outside the point's valid values (an unknown enum code included) is exception 03; either way nothing changes.
Commands (``ModeReq``, ``PccCmd``, ``BlkStrt``, ``PcsRst``, ``AlmRst``, ``FltRst``) act when written, are a
no-op when 0 is written, and read back 0. Every accepted write reaches the plant before the response leaves;
breaker requests are carried out by the plant at its next step.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Protocol

import numpy as np

from harness.sim.modbus import (
    SUNSPEC_BASE_ADDRESS,
    Access,
    ExceptionCode,
    ModbusError,
    ModbusStandIn,
    OneOf,
    Point,
    PointType,
    Range,
    RegisterMap,
    Value,
    common_model,
    decode,
    sunspec_points,
)
from harness.sim.modbus.registers import MAX_ADDRESS
from harness.sim.packs import FaultCode, Index, PackArray
from harness.sim.pcs import PcsControl, PcsMode
from harness.sim.plant import Plant
from harness.sim.standins import StandIn
from harness.sim.standins.sunspec_models import (
    ALARM_TEXT_REGISTERS,
    BATTERY,
    DER_CONTROL,
    DER_MEASURE,
    MICROGRID,
    Act,
    BankOperation,
    BankState,
    BatteryEventBit,
    BreakerCommand,
    BreakerPending,
    BreakerState,
    ChargeStatus,
    ConnectionState,
    Contactor,
    DerAlarmBit,
    DerModeBit,
    InverterState,
    ModeRequest,
    NormalBand,
    OpenReason,
    OperatingState,
    PcsControlCode,
    PcsModeCode,
    PowerSetMode,
    battery_model,
    bits,
    der_control_model,
    der_measure_model,
    microgrid_model,
)

FACE_UNIT = 1
MANUFACTURER = "gridhil"
FACE_MODEL_NAME = "PCS-BMS-SIM"
FACE_SERIAL = "SIM-PCS-0001"
FACE_VERSION = "1.00"
IDENTITY = f"{MANUFACTURER},{FACE_MODEL_NAME},{FACE_SERIAL},{FACE_VERSION}"
"""Unit 1's model 1: manufacturer, model, serial number and version."""
COUNTER_MODULUS = 65535
"""Heartbeats and counters count up to 65534 and wrap to 0 (65535 is uint16's "not implemented")."""
HOLDING_BAND_W = 1e3
"""Model 802 ``ChaSt`` reads HOLDING while the bank's power stays within this of zero."""
SQRT3 = math.sqrt(3.0)

T = PointType
_TEXT_BYTES = 2 * ALARM_TEXT_REGISTERS


# ----------------------------------------------------------------------------- the per-pack block

PACK_LAYOUT: tuple[Point, ...] = (
    Point("SoC", T.UINT16, units="%", scale_factor=-2, description="state of charge, as reported"),
    Point("SoH", T.UINT16, units="%", scale_factor=-2, description="state of health: capacity over new"),
    Point("V", T.UINT16, units="V", scale_factor=-1, description="terminal voltage, as reported"),
    Point("A", T.INT16, units="A", scale_factor=-1, description="current, + discharge, as reported"),
    Point("Tmp", T.INT16, units="C", scale_factor=-1, description="temperature, as reported"),
    Point("CellVMin", T.UINT16, units="V", scale_factor=-3, description="weakest cell voltage, as reported"),
    Point(
        "CellVMax", T.UINT16, units="V", scale_factor=-3, description="strongest cell voltage, as reported"
    ),
    Point("ContSt", T.ENUM16, description="contactor: 0 open, 1 closed"),
    Point(
        "Flt",
        T.BITFIELD16,
        description="latched BMS faults: 1 over-voltage, 2 under-voltage, 4 over-current, "
        "8 over-temperature, 16 isolation",
    ),
    Point("Hb", T.UINT16, description="BMS heartbeat: counts plant steps, stops while the BMS link is lost"),
    Point("WDisChaMax", T.UINT16, units="W", scale_factor=2, description="discharge power limit (BMS)"),
    Point("WChaMax", T.UINT16, units="W", scale_factor=2, description="charge power limit (BMS)"),
    Point("W", T.INT16, units="W", scale_factor=2, description="power, + discharge: reported V x A"),
    Point(
        "WCmd",
        T.INT16,
        units="W",
        scale_factor=2,
        access=Access.RW,
        validator=Range(-3_276_700, 3_276_700),
        description="power command, + discharge: the pack's share of the PCS power while PackShrEna is 1",
    ),
    Point(
        "ContCmd",
        T.ENUM16,
        access=Access.RW,
        validator=OneOf.members(Contactor),
        value=1,
        description="contactor command: 0 open, 1 close (refused by a faulted pack); reads the last command",
    ),
    Point(
        "FltRst",
        T.UINT16,
        access=Access.RW,
        validator=OneOf.members(Act),
        value=Act.NONE,
        description="write 1: clear the pack's latched faults (the contactor stays open); 0 no-op; reads 0",
    ),
    Point(
        "WHRtg",
        T.UINT16,
        units="Wh",
        scale_factor=1,
        description="nameplate energy, as reported: capacity when new x nominal voltage (24-100 kWh in the "
        "reference fleet's makes); 10 Wh steps, up to 655 kWh",
    ),
)
"""The block of one pack, one register per point, in address order (offset = position). ``WHRtg`` comes last
so that the offsets of the points before it, and the three contiguous command registers, stay as they were."""
PACK_REGISTERS = sum(point.size for point in PACK_LAYOUT)
PACKS_PER_UNIT = SUNSPEC_BASE_ADDRESS // PACK_REGISTERS
"""Whole pack blocks below the SunSpec image: 2352 of 17 registers (addresses 0-39983)."""

_RAW_LIMITS = {
    T.INT16: (-32767, 32767, -32768),
    T.UINT16: (0, 65534, 65535),
    T.ENUM16: (0, 65534, 65535),
    T.BITFIELD16: (0, 65534, 65535),
}
"""Per type: lowest and highest raw value, and the not-implemented pattern (as a signed number for int16)."""


def pack_block_map(lock: threading.RLock | None = None) -> RegisterMap:
    """The block of pack 0 as a register map: what the register doc prints for the per-pack layout."""
    placed = [replace(point, address=offset) for offset, point in enumerate(PACK_LAYOUT)]
    title = (
        f"Per-pack block: pack i on unit {FACE_UNIT} + i // {PACKS_PER_UNIT}, "
        f"at {PACK_REGISTERS} x (i mod {PACKS_PER_UNIT}) + offset; shown for pack 0"
    )
    return RegisterMap(placed, lock=lock, title=title)


# ----------------------------------------------------------------------------- the per-pack arrays

POWER_ARRAY = 50_000
"""PDU address of the power command array: the k-th pack of a unit (pack ``i``, ``k = i mod 2352``) at
``POWER_ARRAY + k``. Well clear of the SunSpec chain at 40000, which ends at 40394 on unit 1."""
CONTACTOR_ARRAY = POWER_ARRAY + PACKS_PER_UNIT
STATUS_ARRAY = CONTACTOR_ARRAY + PACKS_PER_UNIT
STATUS_FAULT_MASK = 0xFF
STATUS_CONTACTOR_BIT = 8
assert STATUS_ARRAY + PACKS_PER_UNIT <= MAX_ADDRESS + 1
assert sum(FaultCode) <= STATUS_FAULT_MASK  # every fault bit fits the low byte

_BLOCK_POINT = {point.name: point for point in PACK_LAYOUT}
PACK_ARRAY_POINTS: tuple[Point, ...] = (
    replace(
        _BLOCK_POINT["WCmd"],
        address=POWER_ARRAY,
        description="power command, + discharge: the pack's block WCmd, same type and scaling",
    ),
    replace(
        _BLOCK_POINT["ContCmd"],
        address=CONTACTOR_ARRAY,
        description="contactor command: the pack's block ContCmd; reads the last command",
    ),
    Point(
        "St",
        T.BITFIELD16,
        address=STATUS_ARRAY,
        description=f"bits 0-7: the block's Flt (latched); bit {STATUS_CONTACTOR_BIT}: contactor closed",
    ),
)
"""The arrays' points for the unit's first pack; the k-th pack's are ``k`` registers further."""

PACK_ARRAYS_TEXT = f"""\
### Per-pack arrays

Every unit that carries packs also serves three arrays of one register per pack, in pack order: the
unit's k-th pack (pack i, k = i mod {PACKS_PER_UNIT}) has its `WCmd` at {POWER_ARRAY} + k, its `ContCmd`
at {CONTACTOR_ARRAY} + k and its `St` at {STATUS_ARRAY} + k; addresses past the unit's last pack answer
exception 02. A write to `WCmd` or `ContCmd` is validated whole (one bad value: exception 03, nothing
changes) and acts exactly as writes of the same values to the packs' block registers; reads return the
commands in force, which the blocks read too. One write of 123 registers commands 123 packs; one read
of 125 `St` registers checks the faults and contactors of 125 packs. `WCmd` keeps the block's int16 x
100 W: its range, +/-3.28 MW, is over twenty times the largest pack power limit of the reference fleet
(about 150 kW).
"""


def pack_array_map(lock: threading.RLock | None = None) -> RegisterMap:
    """The arrays' registers of a unit's first pack as a register map, for the register doc."""
    title = (
        f"Per-pack arrays: pack i on unit {FACE_UNIT} + i // {PACKS_PER_UNIT}, "
        f"at base + (i mod {PACKS_PER_UNIT}); shown for pack 0"
    )
    return RegisterMap(PACK_ARRAY_POINTS, lock=lock, title=title)


# ----------------------------------------------------------------------------- commands and encoding


def _exponent(point: Point) -> int:
    factor = point.scale_factor
    if isinstance(factor, str):
        raise TypeError(f"{point.name}: per-pack points take fixed exponents")
    return factor or 0


@dataclass(frozen=True)
class _Encoding:
    """How some one-register points read, as columns (one row per point): many packs encode in one pass."""

    scale: np.ndarray
    lowest: np.ndarray
    highest: np.ndarray
    missing: np.ndarray

    @classmethod
    def of(cls, points: Sequence[Point]) -> _Encoding:
        def column(values: Iterable[float]) -> np.ndarray:
            return np.array(list(values), dtype=float)[:, None]

        limits = [_RAW_LIMITS[point.type] for point in points]
        return cls(
            scale=column(10.0 ** -_exponent(point) for point in points),
            lowest=column(low for low, _, _ in limits),
            highest=column(high for _, high, _ in limits),
            missing=column(missing for _, _, missing in limits),
        )

    def registers(self, values: np.ndarray) -> np.ndarray:
        """Registers (0..0xFFFF) of ``values``: points x packs in engineering units, NaN not implemented.

        Values beyond a point's range read as its nearest end rather than failing the request.
        """
        raw = np.rint(values * self.scale)
        raw = np.where(np.isnan(raw), self.missing, np.clip(raw, self.lowest, self.highest))
        return raw.astype(np.int64) & 0xFFFF


_BLOCK_ENCODING = _Encoding.of(PACK_LAYOUT)


def _written(point: Point, register: int, pack: int) -> Value:
    """A register written to a pack's writable point, decoded and validated, or the Modbus exception."""
    value = decode(point.type, [register], scale_factor=_exponent(point))
    if value is None or (point.validator is not None and not point.validator(value)):
        raise ModbusError(ExceptionCode.ILLEGAL_DATA_VALUE, f"pack {pack} {point.name}: {value!r}")
    return value


@dataclass
class PackCommands:
    """The controller's per-pack commands as the face holds them, and what commanding packs does.

    Pack blocks, arrays and model 802 all command through here, so they act alike. ``WCmd`` and ``ContCmd``
    read ``power_w`` and ``contactor`` back.
    """

    plant: Plant
    power_w: np.ndarray
    contactor: np.ndarray

    @classmethod
    def of(cls, plant: Plant) -> PackCommands:
        packs = plant.packs
        return cls(plant, power_w=np.zeros(packs.n), contactor=packs.contactor_closed.astype(np.int64))

    def command_power(self, packs: Index, power_w: np.ndarray | float) -> None:
        """New power commands; while pack sharing is on they are the plant's pack shares at once."""
        self.power_w[packs] = power_w
        if self.plant.pack_share is not None:
            self.plant.pack_share = self.power_w.copy()

    def command_contactors(self, packs: Index, closed: np.ndarray | bool) -> None:
        """Contactor commands for ``packs`` (the others keep their state); a faulted pack refuses to close."""
        closed = np.asarray(closed, dtype=bool)
        pack_array = self.plant.packs
        wanted = pack_array.contactor_closed.copy()
        wanted[packs] = closed
        pack_array.command_contactors(wanted)
        self.contactor[packs] = closed


def pack_status(packs: PackArray, window: slice) -> np.ndarray:
    """The ``St`` array's value for the packs in ``window``: fault bits, and the contactor bit."""
    return packs.fault[window] | packs.contactor_closed[window].astype(np.int64) << STATUS_CONTACTOR_BIT


# ----------------------------------------------------------------------------- the regions of a unit


class Region(Protocol):
    """Addresses ``start .. end - 1`` of a face unit, served from the plant beside the SunSpec image.

    Callers hold the plant's lock and keep requests inside the region.
    """

    start: int

    @property
    def end(self) -> int: ...

    def read(self, address: int, count: int) -> list[int]: ...

    def check_write(self, address: int, registers: Sequence[int]) -> Callable[[], None]:
        """Decode and validate a write, or raise the Modbus exception; the result applies it."""
        ...


@dataclass(frozen=True)
class _PackWrite:
    pack: int
    name: str
    value: Value


class PackBlocks:
    """The blocks of packs ``first .. first + count - 1`` at addresses ``0 .. 17 * count - 1``.

    Reads are encoded for all requested packs at once (numpy, no Python per pack).
    """

    start = 0

    def __init__(self, commands: PackCommands, first: int, count: int) -> None:
        self._commands = commands
        self.first = first
        self.count = count

    @property
    def end(self) -> int:
        return self.count * PACK_REGISTERS

    def read(self, address: int, count: int) -> list[int]:
        low = address // PACK_REGISTERS
        high = (address + count - 1) // PACK_REGISTERS + 1
        columns = self._columns(self.first + low, self.first + high)
        values = np.array([columns[point.name] for point in PACK_LAYOUT], dtype=float)
        start = address - low * PACK_REGISTERS
        registers: list[int] = _BLOCK_ENCODING.registers(values).T.ravel()[start : start + count].tolist()
        return registers

    def check_write(self, address: int, registers: Sequence[int]) -> Callable[[], None]:
        """A write of whole writable pack points only; they act in address order."""
        writes = []
        for position, register in enumerate(registers):
            slot, offset = divmod(address + position, PACK_REGISTERS)
            point = PACK_LAYOUT[offset]
            pack = self.first + slot
            if point.access is not Access.RW:
                raise ModbusError(
                    ExceptionCode.ILLEGAL_DATA_ADDRESS, f"pack {pack} {point.name} is read-only"
                )
            writes.append(_PackWrite(pack, point.name, _written(point, register, pack)))
        return partial(self._apply, writes)

    def _apply(self, writes: Iterable[_PackWrite]) -> None:
        commands = self._commands
        for write in writes:
            if write.name == "WCmd":
                commands.command_power(write.pack, _float(write.value))
            elif write.name == "ContCmd":
                commands.command_contactors(write.pack, bool(write.value))
            elif write.value == Act.ACT:
                commands.plant.packs.reset_faults(write.pack)

    def _columns(self, low: int, high: int) -> dict[str, np.ndarray]:
        packs = self._commands.plant.packs
        window = slice(low, high)
        discharge_w, charge_w = packs.power_limits()
        volts = packs.reported_v[window]
        amps = packs.reported_current_a[window]
        return {
            "SoC": packs.reported_soc[window] * 100.0,
            "SoH": packs.fleet.soh[window] * 100.0,
            "V": volts,
            "A": amps,
            "Tmp": packs.reported_temperature_c[window],
            "CellVMin": packs.cell_v_min[window],
            "CellVMax": packs.cell_v_max[window],
            "ContSt": packs.contactor_closed[window],
            "Flt": packs.fault[window],
            "Hb": packs.heartbeat[window] % COUNTER_MODULUS,
            "WDisChaMax": discharge_w[window],
            "WChaMax": charge_w[window],
            "W": volts * amps,
            "WCmd": self._commands.power_w[window],
            "ContCmd": self._commands.contactor[window],
            "FltRst": np.zeros(high - low),
            "WHRtg": packs.fleet.nameplate_wh[window],
        }


class PackColumn:
    """One point of a unit's packs ``first .. first + count - 1``, one register each from ``point.address``.

    ``values(window)`` is the point for the packs in a slice of the fleet. A writable column's ``command``
    takes such a slice and the written values, once the whole write is validated.
    """

    def __init__(
        self,
        point: Point,
        first: int,
        count: int,
        values: Callable[[slice], np.ndarray],
        command: Callable[[slice, np.ndarray], None] | None = None,
    ) -> None:
        if (command is None) != (point.access is Access.R):
            raise ValueError(f"{point.name}: a writable column needs a command, a read-only one none")
        self.point = point
        self.start = point.address
        self.first = first
        self.count = count
        self._values = values
        self._command = command
        self._encoding = _Encoding.of([point])

    @property
    def end(self) -> int:
        return self.start + self.count

    def read(self, address: int, count: int) -> list[int]:
        values = np.asarray(self._values(self._window(address, count)), dtype=float)
        registers: list[int] = self._encoding.registers(values[None, :])[0].tolist()
        return registers

    def check_write(self, address: int, registers: Sequence[int]) -> Callable[[], None]:
        if self._command is None:
            raise ModbusError(ExceptionCode.ILLEGAL_DATA_ADDRESS, f"the {self.point.name} array is read-only")
        window = self._window(address, len(registers))
        first = window.start
        values = np.array(
            [_written(self.point, register, first + k) for k, register in enumerate(registers)], dtype=float
        )
        return partial(self._command, window, values)

    def _window(self, address: int, count: int) -> slice:
        low = self.first + address - self.start
        return slice(low, low + count)


def pack_columns(commands: PackCommands, first: int, count: int) -> list[PackColumn]:
    """The arrays of the unit carrying packs ``first .. first + count - 1``."""
    power, contactor, status = PACK_ARRAY_POINTS
    return [
        PackColumn(power, first, count, commands.power_w.__getitem__, commands.command_power),
        PackColumn(contactor, first, count, commands.contactor.__getitem__, commands.command_contactors),
        PackColumn(status, first, count, partial(pack_status, commands.plant.packs)),
    ]


class FaceUnitMap(RegisterMap):
    """One unit of the face: its SunSpec image (the base map) at 40000 and the regions served from the plant
    around it (the pack blocks from 0, the per-pack arrays from 50000).

    A request may run across adjacent parts: it is served from one plant snapshot and written all-or-nothing.
    """

    def __init__(
        self, points: Iterable[Point], regions: Iterable[Region], *, lock: threading.RLock, title: str = ""
    ) -> None:
        super().__init__(points, lock=lock, title=title)
        self.regions = sorted(regions, key=lambda region: region.start)
        image = super().spans()
        parts = sorted(
            [(region.start, region.end) for region in self.regions]
            + [(image[0][0], image[-1][0] + image[-1][1])]
        )
        for (_, end), (start, _) in itertools.pairwise(parts):
            if start < end:
                raise ValueError(f"{title}: parts overlap at address {start}")
        self._plant_lock = lock

    def spans(self) -> list[tuple[int, int]]:
        parts = sorted(
            [(region.start, region.end - region.start) for region in self.regions] + super().spans()
        )
        runs = parts[:1]
        for start, count in parts[1:]:
            first, length = runs[-1]
            if first + length == start:
                runs[-1] = (first, length + count)
            else:
                runs.append((start, count))
        return runs

    def read(self, address: int, count: int) -> list[int]:
        pieces = self._pieces(address, count)
        registers: list[int] = []
        with self._plant_lock:
            for region, start, length in pieces:
                if region is None:
                    registers += super().read(start, length)
                else:
                    registers += region.read(start, length)
        return registers

    def write(self, address: int, registers: Sequence[int]) -> None:
        pieces = self._pieces(address, len(registers))
        with self._plant_lock:
            actions = []
            image: tuple[int, Sequence[int]] | None = None
            for region, start, length in pieces:
                own = registers[start - address : start - address + length]
                if region is None:
                    image = (start, own)
                else:
                    actions.append(region.check_write(start, own))
            if image is not None:  # at most one: no region lies inside the image
                super().write(*image)
            for action in actions:
                action()

    def _pieces(self, address: int, count: int) -> list[tuple[Region | None, int, int]]:
        """The request cut where parts meet: (region, or None for the SunSpec image; address; count)."""
        if count < 1:
            raise ModbusError(ExceptionCode.ILLEGAL_DATA_VALUE, f"register count {count}")
        pieces: list[tuple[Region | None, int, int]] = []
        position, end = address, address + count
        while position < end:
            region = next((region for region in self.regions if region.start <= position < region.end), None)
            if region is not None:
                stop = min(end, region.end)
            else:  # the image, up to the next region: addresses it lacks answer exception 02
                stop = min([end, *(region.start for region in self.regions if region.start > position)])
            pieces.append((region, position, stop - position))
            position = stop
        return pieces


# ----------------------------------------------------------------------------- 701: DER AC measurement

_INVERTER_STATE = {
    PcsMode.OFF: InverterState.OFF,
    PcsMode.GRID_FOLLOWING: InverterState.RUNNING,
    PcsMode.GRID_FORMING: InverterState.RUNNING,
    PcsMode.TRIPPED: InverterState.FAULT,
}
_DER_MODE = {
    PcsMode.GRID_FOLLOWING: bits([DerModeBit.GRID_FOLLOWING]),
    PcsMode.GRID_FORMING: bits([DerModeBit.GRID_FORMING]),
}


def _der_measurement(plant: Plant, band: NormalBand) -> dict[str, Value]:
    bus, pcs = plant.bus, plant.pcs
    voltage_ll = bus.voltage_pu * plant.grid.nominal_voltage_v
    voltage_ln = voltage_ll / SQRT3
    power_w = bus.pcs_ac_w
    phase_w = power_w / 3.0
    phase_a = abs(phase_w) / voltage_ln if voltage_ln > 0.0 else 0.0
    alarms = band.voltage_bits(bus.voltage_pu, DerAlarmBit.AC_UNDER_VOLT, DerAlarmBit.AC_OVER_VOLT)
    if voltage_ll > 0.0:
        alarms |= band.frequency_bits(
            bus.frequency_hz, DerAlarmBit.UNDER_FREQUENCY, DerAlarmBit.OVER_FREQUENCY
        )
    if not plant.pcc.closed:
        alarms |= 1 << DerAlarmBit.GRID_DISCONNECT
    tripped = pcs.mode is PcsMode.TRIPPED
    if tripped:
        alarms |= 1 << DerAlarmBit.MANUFACTURER_ALRM
    power_factor = 1.0 if pcs.running else None
    values: dict[str, Value] = {
        "St": OperatingState.ON if pcs.running else OperatingState.OFF,
        "InvSt": _INVERTER_STATE[pcs.mode],
        "ConnSt": ConnectionState.CONNECTED
        if pcs.running and plant.pcc.closed
        else ConnectionState.DISCONNECTED,
        "Alrm": alarms,
        "DERMode": _DER_MODE.get(pcs.mode, 0),
        "W": power_w,
        "VA": abs(power_w),
        "Var": 0.0,
        "PF": power_factor,
        "A": 3.0 * phase_a,
        "LLV": voltage_ll,
        "LNV": voltage_ln,
        "Hz": bus.frequency_hz if voltage_ll > 0.0 else 0.0,
        "MnAlrmInfo": _text(pcs.trip_reason) if tripped else None,
    }
    for line, pair in ((1, "L1L2"), (2, "L2L3"), (3, "L3L1")):
        values |= {
            f"WL{line}": phase_w,
            f"VAL{line}": abs(phase_w),
            f"VarL{line}": 0.0,
            f"PFL{line}": power_factor,
            f"AL{line}": phase_a,
            f"V{pair}": voltage_ll,
            f"VL{line}": voltage_ln,
        }
    return {f"{DER_MEASURE}.{name}": value for name, value in values.items()}


def _text(reason: str) -> str | None:
    """``reason`` cut to what ``MnAlrmInfo`` holds."""
    return reason.encode()[:_TEXT_BYTES].decode(errors="ignore") or None


# ----------------------------------------------------------------------------- 704: DER AC controls


@dataclass
class ActivePowerSetting:
    """Model 704's active power points as the face holds them; :meth:`dispatch_w` is what they ask for."""

    enabled: int = 1
    mode: int = PowerSetMode.WATTS
    watts: float = 0.0
    percent: float = 0.0
    limit_enabled: int = 0
    limit_percent: float = 100.0

    def dispatch_w(self, rated_w: float) -> float:
        if not self.enabled:
            return 0.0
        wanted = self.watts if self.mode == PowerSetMode.WATTS else self.percent / 100.0 * rated_w
        if self.limit_enabled:
            wanted = min(wanted, self.limit_percent / 100.0 * rated_w)
        return wanted


_ACTIVE_POWER_FIELDS = {
    "WSetEna": "enabled",
    "WSetMod": "mode",
    "WSet": "watts",
    "WSetPct": "percent",
    "WMaxLimPctEna": "limit_enabled",
    "WMaxLimPct": "limit_percent",
}


def _bind_der_control(regmap: RegisterMap, plant: Plant) -> None:
    pcs = plant.pcs
    setting = ActivePowerSetting(watts=pcs.dispatch_w)

    def apply(field: str, value: Value) -> None:
        setattr(setting, field, value)
        pcs.dispatch_w = setting.dispatch_w(pcs.rated_w)

    for point, field in _ACTIVE_POWER_FIELDS.items():
        _bind(regmap, f"{DER_CONTROL}.{point}", partial(getattr, setting, field), partial(apply, field))
    _bind(
        regmap,
        f"{DER_CONTROL}.AntiIslEna",
        lambda: int(not pcs.islanding_enabled),
        lambda value: setattr(pcs, "islanding_enabled", not value),
    )


def _bind(
    regmap: RegisterMap, name: str, getter: Callable[[], Value], apply: Callable[[Value], None]
) -> None:
    regmap.bind_getter(name, getter)
    regmap.bind_apply(name, apply)


# ----------------------------------------------------------------------------- 802: battery bank

_FAULT_EVENTS = {
    FaultCode.OVER_TEMPERATURE: BatteryEventBit.OVER_TEMP_ALARM,
    FaultCode.OVER_CURRENT: BatteryEventBit.OVER_DISCHARGE_CURRENT_ALARM,
    FaultCode.OVER_VOLTAGE: BatteryEventBit.OVER_VOLT_ALARM,
    FaultCode.UNDER_VOLTAGE: BatteryEventBit.UNDER_VOLT_ALARM,
    FaultCode.ISOLATION: BatteryEventBit.GROUND_FAULT,
}


def _bank(plant: Plant) -> dict[str, Value]:
    packs = plant.packs
    fleet = packs.fleet
    discharge_w, charge_w = packs.power_limits()
    online = packs.online
    volts, amps = packs.reported_v, packs.reported_current_a
    power_w = float(np.dot(volts, amps))
    energy_j = packs.energy_capacity_j
    latched = int(np.bitwise_or.reduce(packs.fault))
    cell_high, cell_low = packs.cell_v_max, packs.cell_v_min
    if not online.any():
        charge_status, state = ChargeStatus.OFF, BankState.FAULT if latched else BankState.DISCONNECTED
    else:
        state = BankState.CONNECTED
        charge_status = ChargeStatus.HOLDING
        if power_w > HOLDING_BAND_W:
            charge_status = ChargeStatus.DISCHARGING
        elif power_w < -HOLDING_BAND_W:
            charge_status = ChargeStatus.CHARGING
    online_v = volts[online]
    values: dict[str, Value] = {
        "AHRtg": float(fleet.capacity_new_ah.sum()),
        "WHRtg": float(fleet.nameplate_wh.sum()),
        "WChaRteMax": float(charge_w.sum()),
        "WDisChaRteMax": float(discharge_w.sum()),
        "SoC": 100.0 * float(np.dot(packs.reported_soc, energy_j) / energy_j.sum()),
        "SoH": 100.0 * float(fleet.usable_wh.sum() / fleet.nameplate_wh.sum()),
        "ChaSt": charge_status,
        "Hb": _heartbeat(plant),
        "State": state,
        "Evt1": bits(event for code, event in _FAULT_EVENTS.items() if latched & code),
        "V": float(online_v.mean()) if online_v.size else None,
        "VMax": float(online_v.max()) if online_v.size else None,
        "VMin": float(online_v.min()) if online_v.size else None,
        "CellVMax": float(cell_high.max()),
        "CellVMaxStr": int(cell_high.argmax()),
        "CellVMin": float(cell_low.min()),
        "CellVMinStr": int(cell_low.argmin()),
        "A": float(amps.sum()),
        "W": power_w,
    }
    return {f"{BATTERY}.{name}": value for name, value in values.items()}


def _bind_battery(regmap: RegisterMap, plant: Plant, commands: PackCommands) -> None:
    packs = plant.packs

    def operate(value: Value) -> None:
        commands.command_contactors(slice(None), value == BankOperation.CONNECT)

    regmap.bind_apply(f"{BATTERY}.SetOp", operate)
    _bind(regmap, f"{BATTERY}.AlmRst", lambda: Act.NONE, _on_act(partial(packs.reset_faults, slice(None))))


def _on_act(action: Callable[[], object]) -> Callable[[Value], None]:
    """The apply callback of a write-to-act register: ACT runs ``action``, NONE does nothing."""

    def apply(value: Value) -> None:
        if value == Act.ACT:
            action()

    return apply


def _heartbeat(plant: Plant) -> int:
    return int(plant.t) % COUNTER_MODULUS


# ----------------------------------------------------------------------------- 64900: gridhil microgrid

_PCS_MODE_CODE = {
    PcsMode.OFF: PcsModeCode.OFF,
    PcsMode.GRID_FOLLOWING: PcsModeCode.GRID_FOLLOWING,
    PcsMode.GRID_FORMING: PcsModeCode.GRID_FORMING,
    PcsMode.TRIPPED: PcsModeCode.TRIPPED,
}
_CONTROL = {PcsControlCode.POWER: PcsControl.POWER, PcsControlCode.PCC_SMOOTHING: PcsControl.PCC_SMOOTHING}
_CONTROL_CODE = {control: code for code, control in _CONTROL.items()}
_PLAIN_REASONS = {
    "": OpenReason.NONE,
    "planned island": OpenReason.PLANNED,
    "loss of grid": OpenReason.LOSS_OF_GRID,
}
_TRIP_PREFIX, _TRIP_SUFFIX = "IEEE 1547 ", " trip"


def open_reason(text: str) -> OpenReason:
    """The code of a PCC open reason as the plant words it."""
    if text in _PLAIN_REASONS:
        return _PLAIN_REASONS[text]
    if text.startswith(_TRIP_PREFIX) and text.endswith(_TRIP_SUFFIX):
        name = text[len(_TRIP_PREFIX) : -len(_TRIP_SUFFIX)]
        return OpenReason.__members__.get(name, OpenReason.OTHER)
    return OpenReason.OTHER


def _pending(plant: Plant) -> BreakerPending:
    pcc = plant.pcc
    if pcc.open_requested:
        return BreakerPending.OPEN
    if not pcc.close_requested:
        return BreakerPending.NONE
    return BreakerPending.CLOSE_SYNC_CHECKED if pcc.close_sync_check else BreakerPending.CLOSE_SYNC_BYPASSED


def _microgrid_state(plant: Plant) -> dict[str, Value]:
    pcc, bus, packs = plant.pcc, plant.bus, plant.packs
    nominal_v = plant.grid.nominal_voltage_v
    grid = plant.grid.state_at(plant.t)
    sync = plant.sync_check()
    grid_live = grid.available and grid.voltage_pu > 0.0
    values: dict[str, Value] = {
        "PcsMode": _PCS_MODE_CODE[plant.pcs.mode],
        "PccSt": BreakerState.CLOSED if pcc.closed else BreakerState.OPEN,
        "PccPend": _pending(plant),
        "PccOpenRsn": open_reason(pcc.last_open_reason),
        "PccCloses": len(pcc.closes) % COUNTER_MODULUS,
        "SyncDV": sync.dv_pu * nominal_v,
        "SyncDHz": sync.df_hz,
        "SyncDAng": sync.dtheta_deg,
        "GridV": grid.voltage_pu * nominal_v if grid_live else 0.0,
        "GridHz": grid.frequency_hz if grid_live else 0.0,
        "BusV": bus.voltage_pu * nominal_v,
        "BusHz": bus.frequency_hz if bus.voltage_pu > 0.0 else 0.0,
        "PccW": bus.grid_w,
        "PacksOnl": int(packs.online.sum()),
        "PacksFlt": int(np.count_nonzero(packs.fault)),
        "Hb": _heartbeat(plant),
    }
    return {f"{MICROGRID}.{name}": value for name, value in values.items()}


def _request_mode(plant: Plant, request: Value) -> None:
    pcs, bus = plant.pcs, plant.bus
    if request == ModeRequest.NONE:
        return
    if request == ModeRequest.STOP:
        if pcs.mode is not PcsMode.TRIPPED:
            pcs.mode = PcsMode.OFF
    elif request == ModeRequest.FOLLOW:
        pcs.start_following(bus.load_served_w - bus.pv_w)
    else:
        pcs.start_forming()
    plant.note(f"face: PCS {ModeRequest(request).name.lower()} requested, PCS now {pcs.mode.value}")


def _command_breaker(plant: Plant, command: Value) -> None:
    pcc = plant.pcc
    if command == BreakerCommand.OPEN:
        pcc.request_open()
    elif command == BreakerCommand.CLOSE:
        pcc.request_close(sync_check=True)
    elif command == BreakerCommand.CLOSE_NO_SYNC:
        pcc.request_close(sync_check=False)
    elif command == BreakerCommand.CANCEL:
        pcc.cancel_close()


def _set_units(plant: Plant, mask: Value) -> None:
    """Units coming back first, so that swapping units never passes through "none available" (a trip)."""
    pcs = plant.pcs
    wanted = [bool(int(mask or 0) >> index & 1) for index in range(len(pcs.units))]
    for index in sorted(range(len(wanted)), key=lambda index: not wanted[index]):
        pcs.set_unit_available(index, wanted[index])


def _unit_mask(plant: Plant) -> int:
    return bits(index for index, unit in enumerate(plant.pcs.units) if unit.available)


def _share(plant: Plant, commands: PackCommands, enabled: Value) -> None:
    plant.pack_share = commands.power_w.copy() if enabled else None


def _bind_microgrid(regmap: RegisterMap, plant: Plant, commands: PackCommands, units: int) -> None:
    pcs, pcc = plant.pcs, plant.pcc
    nominal_v = plant.grid.nominal_voltage_v

    def name(point: str) -> str:
        return f"{MICROGRID}.{point}"

    def setter(target: object, attribute: str, convert: Callable[[Value], object]) -> Callable[[Value], None]:
        return lambda value: setattr(target, attribute, convert(value))

    regmap.bind_block([name(point) for point in _STATE_POINTS], lambda: _microgrid_state(plant))
    _bind(regmap, name("ModeReq"), lambda: ModeRequest.NONE, partial(_request_mode, plant))
    _bind(regmap, name("Ctl"), lambda: _CONTROL_CODE[pcs.control], setter(pcs, "control", _control))
    _bind(regmap, name("PccRmp"), lambda: pcs.pcc_ramp_w_per_s, setter(pcs, "pcc_ramp_w_per_s", _float))
    _bind(
        regmap,
        name("AutoIslEna"),
        lambda: int(pcc.auto_island_enabled),
        setter(pcc, "auto_island_enabled", bool),
    )
    _bind(regmap, name("IslEna"), lambda: int(pcs.islanding_enabled), setter(pcs, "islanding_enabled", bool))
    _bind(
        regmap, name("HzSet"), lambda: pcs.frequency_setpoint_hz, setter(pcs, "frequency_setpoint_hz", _float)
    )
    _bind(
        regmap,
        name("VSet"),
        lambda: pcs.voltage_setpoint_pu * nominal_v,
        setter(pcs, "voltage_setpoint_pu", lambda value: _float(value) / nominal_v),
    )
    _bind(regmap, name("PccCmd"), lambda: BreakerCommand.NONE, partial(_command_breaker, plant))
    _bind(regmap, name("BlkStrt"), lambda: Act.NONE, _on_act(plant.black_start))
    _bind(regmap, name("PcsRst"), lambda: Act.NONE, _on_act(pcs.reset))
    _bind(regmap, name("UnitAvail"), partial(_unit_mask, plant), partial(_set_units, plant))
    _bind(
        regmap,
        name("PackShrEna"),
        lambda: int(plant.pack_share is not None),
        partial(_share, plant, commands),
    )
    regmap.bind_getter(name("WRtg"), lambda: pcs.rated_w)
    regmap.bind_getter(name("NPack"), lambda: plant.packs.n)
    regmap.bind_getter(name("NPackUnit"), lambda: units)


_STATE_POINTS = (
    "PcsMode",
    "PccSt",
    "PccPend",
    "PccOpenRsn",
    "PccCloses",
    "SyncDV",
    "SyncDHz",
    "SyncDAng",
    "GridV",
    "GridHz",
    "BusV",
    "BusHz",
    "PccW",
    "PacksOnl",
    "PacksFlt",
    "Hb",
)


def _control(value: Value) -> PcsControl:
    return _CONTROL[PcsControlCode(int(value or 0))]


def _float(value: Value) -> float:
    if not isinstance(value, int | float):
        raise TypeError(f"a number was validated, got {value!r}")
    return float(value)


# ----------------------------------------------------------------------------- the face


def face_maps(plant: Plant, lock: threading.RLock, commands: PackCommands) -> dict[int, FaceUnitMap]:
    """Unit id -> map: unit 1 with the full SunSpec image, one more unit per further 2352 packs.

    Reads the plant (to learn which values its block getters return): call it holding ``lock``.
    """
    units = math.ceil(plant.packs.n / PACKS_PER_UNIT)
    maps = {}
    for index in range(units):
        unit = FACE_UNIT + index
        first = index * PACKS_PER_UNIT
        count = min(PACKS_PER_UNIT, plant.packs.n - first)
        regions: list[Region] = [PackBlocks(commands, first, count), *pack_columns(commands, first, count)]
        last = first + count - 1
        title = f"PCS/BMS face, unit {unit} (packs {first}-{last})"
        models = [
            common_model(
                manufacturer=MANUFACTURER,
                model=FACE_MODEL_NAME,
                serial_number=FACE_SERIAL if unit == FACE_UNIT else f"{FACE_SERIAL}-U{unit}",
                version=FACE_VERSION,
            )
        ]
        if unit == FACE_UNIT:
            models += [
                der_measure_model(),
                der_control_model(plant.pcs.rated_w),
                battery_model(),
                microgrid_model(
                    nominal_v=plant.grid.nominal_voltage_v,
                    nominal_hz=plant.pcs.nominal_frequency_hz,
                    pcs_units=len(plant.pcs.units),
                ),
            ]
        maps[unit] = FaceUnitMap(sunspec_points(models), regions, lock=lock, title=title)
    _bind_unit_one(maps[FACE_UNIT], plant, commands, units)
    return maps


def _bind_unit_one(regmap: RegisterMap, plant: Plant, commands: PackCommands, units: int) -> None:
    band = NormalBand.of(plant.pcc.settings)
    regmap.bind_block(tuple(_der_measurement(plant, band)), lambda: _der_measurement(plant, band))
    regmap.bind_block(tuple(_bank(plant)), lambda: _bank(plant))
    _bind_der_control(regmap, plant)
    _bind_battery(regmap, plant, commands)
    _bind_microgrid(regmap, plant, commands, units)


class PcsFace(StandIn):
    """The PCS/BMS face stand-in on ``host:port`` (port 0: ephemeral), reading and commanding ``plant``.

    ``maps`` (unit -> register map) is what the register doc renders; ``resource`` names unit 1.
    """

    def __init__(self, plant: Plant, lock: threading.RLock, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(plant, lock)
        with lock:
            self.maps = face_maps(plant, lock, PackCommands.of(plant))
        self._address = (host, port)

    @property
    def identity(self) -> str:
        return IDENTITY

    def _make_server(self) -> ModbusStandIn:
        host, port = self._address
        return ModbusStandIn(self.maps, host=host, port=port)
