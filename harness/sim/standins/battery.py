"""Chroma 17040 battery emulator (battery-simulation mode) as a stand-in: one channel per plant pack.

``CHANnel <n>`` selects pack ``n - 1``; every ``BATTery:``, ``MEASure:``, ``PROTection:`` and ``FAULt:``
command acts on the selected channel only. What reaches the plant:

- ``BATTery:OUTPut ON|OFF`` commands that pack's contactor (the others keep theirs). A command the
  pack refuses (a latched fault or a contactor failed open refuses a close, a welded contactor an
  open) changes nothing and queues -221. ``BATTery:OUTPut?`` is the contactor as it is.
- ``PROTection:CLEar`` resets the pack's latched BMS faults (the contactor stays open until commanded).
- ``MEASure:VOLTage? CURRent? POWer? SOC?``: the pack's true terminal voltage (V), current (A, +
  discharge), terminal power (W) and SOC (%) from the plant, not what its BMS reports.
  ``MEASure:STATe?`` -> ``<FaultCode bits>,<contactor closed 0|1>``; the first field is 0 when healthy.
  Each takes an optional SCPI channel list, ``MEASure:SOC? (@1:805)``, and then answers for every
  channel listed, in its order (``STATe``: the two fields per channel): one query reads the whole
  fleet instead of one per channel (a stand-in extension; the driver uses it only when the bench
  file's ``channel_lists`` option says the instrument has it).
- ``FAULt:INSert <kind>[,<value>]`` / ``FAULt:CLEar <kind>`` / ``FAULt?``: a stand-in extension a real
  17040 lacks, to inject the plant's pack faults: ISOLation, THERmal (value: internal heat in W),
  WELD (contactor welded), OPEN (contactor failed open), COMMs (BMS link lost), DRIFt (value: reported-SOC
  offset in %). ``FAULt?`` lists the kinds this instrument inserted on the channel (``NONE`` if none).
  ``FAULt:MASK?`` answers the same as an integer bit mask, one bit per kind inserted: ISOLation 1,
  THERmal 2, WELD 4, OPEN 8, COMMs 16, DRIFt 32 (0: none). Like the ``MEASure`` queries it takes an
  optional channel list, ``FAULt:MASK? (@1:805)``, and then answers one mask per channel listed, so the
  recorder reads which packs' BMS links were cut in one query. Only what ``FAULt:INSert`` inserted shows:
  a BMS link cut by the relay box (harness.sim.standins.wiring) is not this instrument's to know.

- ``BATTery:CAPacity <Ah>`` sets the pack's present capacity (its state of health follows),
  ``BATTery:INITial:CAPacity <%>`` puts the pack at that SOC now, ``BATTery:ESR <ohm>`` sets its DC
  resistance (R0 + R1 at 25 °C, 50 % SOC). ``BATTery:CURVe 0`` (OCV, V) and ``BATTery:CURVe 1`` (SOC,
  %) are sent separately; once both are present with the same number of points, the SOC points run
  from 0 to 100 and the OCV never falls, they become the pack's OCV curve (-224 otherwise).

Kept in the instrument only (queries return them): the DCR curves, curve voltage limits, the
protection and alarm levels (the plant's BMS decides the trips) and efficiencies.
``BATTery:CURVe <k>,<n>,<v1>...`` checks that ``n`` values follow (-109 fewer, -108 more) and their
range (-222); SOC points must rise strictly and OCV points must not fall (-224).

Ranges are at plant scale (pack voltages of several hundred volts), not a real 17040 channel's.
``*RST`` (as the real one: outputs off) clears the faults this instrument inserted, then opens every
contactor, and restores the power-on settings: those read from the plant when the stand-in was built,
capacity and ESR re-applied to the packs; the charge a pack holds is left where it is.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from functools import partial

import numpy as np

from harness.sim.packs import InjectedFault, PackArray
from harness.sim.plant import Plant
from harness.sim.scpi import (
    Boolean,
    ChannelList,
    Choice,
    CommandTable,
    ErrorCode,
    Integer,
    Number,
    Repeat,
    ScpiEngine,
    ScpiError,
    ScpiTcpServer,
)
from harness.sim.standins import StandIn

IDENTITY = "Chroma,17040,GRIDHIL-SIM,1.00"
VOLTAGE_MAX_V = 1000.0
CURRENT_MAX_A = 2000.0
CAPACITY_MAX_AH = 10_000.0
ESR_MIN_OHM = 1e-6
ESR_MAX_OHM = 10.0
HEAT_MAX_W = 1e6
CURVE_POINTS_MAX = 1000


class FaultKind(Enum):
    """The ``FAULt:INSert`` kinds (stand-in extension) and the plant fault each one injects."""

    ISOLATION = "ISOLation"
    THERMAL = "THERmal"
    WELD = "WELD"
    OPEN = "OPEN"
    COMMS = "COMMs"
    DRIFT = "DRIFt"

    @property
    def bit(self) -> int:
        """The kind's bit in ``FAULt:MASK?``: 1 << its place in this enum (ISOLation 1 ... DRIFt 32)."""
        return 1 << list(FaultKind).index(self)


_INJECTED = {
    FaultKind.ISOLATION: InjectedFault.ISOLATION,
    FaultKind.THERMAL: InjectedFault.THERMAL_RUNAWAY,
    FaultKind.WELD: InjectedFault.WELDED_CONTACTOR,
    FaultKind.OPEN: InjectedFault.CONTACTOR_FAILED_OPEN,
    FaultKind.COMMS: InjectedFault.BMS_COMMS_LOSS,
    FaultKind.DRIFT: InjectedFault.SOC_DRIFT,
}
_REPLACES = {FaultKind.WELD: FaultKind.OPEN, FaultKind.OPEN: FaultKind.WELD}
"""A weld and a failed-open contactor replace each other in the plant; the record follows."""


class Curve(Enum):
    """``BATTery:CURVe`` tables: what the values are and their range."""

    OCV = 0
    SOC = 1
    DCR_DISCHARGE = 2
    DCR_CHARGE = 3


_CURVE_NUMBER = Integer(0, len(Curve) - 1)
_CURVE_RANGE = {
    Curve.OCV: (0.0, VOLTAGE_MAX_V),
    Curve.SOC: (0.0, 100.0),
    Curve.DCR_DISCHARGE: (0.0, ESR_MAX_OHM),
    Curve.DCR_CHARGE: (0.0, ESR_MAX_OHM),
}


@dataclass
class ChannelSettings:
    """A channel's settings as the instrument holds them (see the module docstring for which act)."""

    capacity_ah: float
    initial_soc_pct: float
    esr_ohm: float
    initial_mode: int = 0
    curve_high_v: float = VOLTAGE_MAX_V
    curve_low_v: float = 0.0
    under_voltage_protect_v: float = 0.0
    over_voltage_protect_v: float = VOLTAGE_MAX_V
    low_voltage_alarm_v: float = 0.0
    high_voltage_alarm_v: float = VOLTAGE_MAX_V
    soc_high_limit_pct: float = 100.0
    soc_low_limit_pct: float = 0.0
    over_current_protect_a: float = CURRENT_MAX_A
    charge_efficiency_pct: float = 100.0
    discharge_efficiency_pct: float = 100.0
    curves: dict[Curve, tuple[float, ...]] = field(default_factory=dict)


_VOLTS = Number(0.0, VOLTAGE_MAX_V, "V")
_PERCENT = Number(0.0, 100.0, "PCT")
_STORED: tuple[tuple[str, str, Integer | Number], ...] = (
    ("BATTery:CAPacity", "capacity_ah", Number(0.001, CAPACITY_MAX_AH, "AH")),
    ("BATTery:INITial", "initial_mode", Integer(0, 1)),
    ("BATTery:INITial:CAPacity", "initial_soc_pct", _PERCENT),
    ("BATTery:ESR", "esr_ohm", Number(ESR_MIN_OHM, ESR_MAX_OHM, "OHM")),
    ("BATTery:VH", "curve_high_v", _VOLTS),
    ("BATTery:VL", "curve_low_v", _VOLTS),
    ("BATTery:VOLP", "under_voltage_protect_v", _VOLTS),
    ("BATTery:VOH", "over_voltage_protect_v", _VOLTS),
    ("BATTery:BVL", "low_voltage_alarm_v", _VOLTS),
    ("BATTery:BVH", "high_voltage_alarm_v", _VOLTS),
    ("BATTery:BOH", "soc_high_limit_pct", Number(-100.0, 200.0, "PCT")),
    ("BATTery:BOL", "soc_low_limit_pct", Number(-100.0, 200.0, "PCT")),
    ("BATTery:OCP", "over_current_protect_a", Number(0.0, CURRENT_MAX_A, "A")),
    ("BATTery:EFFCHG", "charge_efficiency_pct", _PERCENT),
    ("BATTery:EFFDSG", "discharge_efficiency_pct", _PERCENT),
)
"""Channel settings: (pattern, ChannelSettings field, parameter). Those in :data:`_APPLIED` also act on
the plant."""
_MEASURED: dict[str, Callable[[PackArray], tuple[np.ndarray, ...]]] = {
    "VOLTage": lambda packs: (packs.terminal_v,),
    "CURRent": lambda packs: (packs.current_a,),
    "POWer": lambda packs: (packs.power_w,),
    "SOC": lambda packs: (packs.soc * 100.0,),
    "STATe": lambda packs: (packs.fault.astype(np.int64), packs.contactor_closed.astype(np.int64)),
}
"""``MEASure:<name>?``: the pack's true values from the plant (not what its BMS reports), all packs."""

_APPLIED: dict[str, Callable[[PackArray, int, float], None]] = {
    "capacity_ah": PackArray.set_capacity,
    "initial_soc_pct": lambda packs, pack, pct: packs.set_soc(pack, pct / 100.0),
    "esr_ohm": PackArray.set_resistance,
}


class BatteryEmulator(StandIn):
    """A Chroma 17040 on ``TCPIP::127.0.0.1::<port>::SOCKET`` with one channel per pack of ``plant``."""

    def __init__(self, plant: Plant, lock: threading.RLock) -> None:
        super().__init__(plant, lock)
        packs = plant.packs
        with lock:
            self._power_on_capacity_ah = packs.capacity_ah.copy()
            self._power_on_soc_pct = packs.soc * 100.0
            fleet = packs.fleet
            self._power_on_esr_ohm = (fleet.r0_new_ohm + fleet.r1_new_ohm) * fleet.resistance_ratio
        self._settings: dict[int, ChannelSettings] = {}
        self._inserted: dict[int, list[FaultKind]] = {}
        """Per channel, the fault kinds this instrument inserted, in order."""
        self._channel = 1
        self._output_mode = 0
        self.commands = self._command_table()

    @property
    def identity(self) -> str:
        return IDENTITY

    @property
    def channels(self) -> int:
        return self.plant.packs.n

    def _make_server(self) -> ScpiTcpServer:
        return ScpiTcpServer(ScpiEngine(self, lock=self.lock))

    def reset(self) -> None:
        """``*RST``: clear inserted faults, all outputs (contactors) off, power-on capacity and ESR."""
        packs = self.plant.packs
        for channel, inserted in self._inserted.items():
            for kind in inserted:
                packs.clear(_INJECTED[kind], channel - 1)
        self._inserted.clear()
        packs.command_contactors(False)
        for channel, settings in self._settings.items():
            pack = channel - 1
            if settings.capacity_ah != self._power_on_capacity_ah[pack]:
                packs.set_capacity(pack, self._power_on_capacity_ah[pack])
            if settings.esr_ohm != self._power_on_esr_ohm[pack]:
                packs.set_resistance(pack, self._power_on_esr_ohm[pack])
        self._settings.clear()
        self._channel = 1
        self._output_mode = 0

    # ------------------------------------------------------------------ the command table

    def _command_table(self) -> CommandTable:
        table = CommandTable()
        table.add(
            "CHANnel",
            setter=self._select,
            query=lambda: self._channel,
            params=(Integer(1, self.channels),),
        )
        table.add(
            "OUTPut:MODe",
            setter=self._set_output_mode,
            query=lambda: self._output_mode,
            params=(Integer(0, 3),),
        )
        table.add("BATTery:OUTPut", setter=self._set_output, query=self._output, params=(Boolean(),))
        for pattern, name, spec in _STORED:
            store, stored = partial(self._store, name), partial(self._stored, name)
            table.add(pattern, setter=store, query=stored, params=(spec,))
        table.add(
            "BATTery:CURVe",
            setter=self._set_curve,
            query=self._curve,
            params=(_CURVE_NUMBER, Integer(1, CURVE_POINTS_MAX), Repeat(Number(), 1, CURVE_POINTS_MAX)),
            query_params=(_CURVE_NUMBER,),
        )
        table.add("PROTection:CLEar", setter=self._clear_protection)
        channels = (ChannelList(1, self.plant.packs.n, optional=True),)
        for name, quantity in _MEASURED.items():
            table.add(f"MEASure:{name}?", query=partial(self._measured, quantity), query_params=channels)
        table.add(
            "FAULt:INSert",
            setter=self._insert_fault,
            params=(Choice(FaultKind), Number(optional=True)),
        )
        table.add("FAULt:CLEar", setter=self._clear_fault, params=(Choice(FaultKind),))
        table.add("FAULt?", query=self._faults)
        table.add("FAULt:MASK?", query=self._fault_masks, query_params=channels)
        return table

    # ------------------------------------------------------------------ instrument settings

    @property
    def _pack(self) -> int:
        return self._channel - 1

    def _select(self, channel: int) -> None:
        self._channel = channel

    def _set_output_mode(self, mode: int) -> None:
        self._output_mode = mode

    def _channel_settings(self) -> ChannelSettings:
        settings = self._settings.get(self._channel)
        if settings is None:
            pack = self._pack
            settings = ChannelSettings(
                capacity_ah=float(self._power_on_capacity_ah[pack]),
                initial_soc_pct=float(self._power_on_soc_pct[pack]),
                esr_ohm=float(self._power_on_esr_ohm[pack]),
            )
            self._settings[self._channel] = settings
        return settings

    def _store(self, name: str, value: float) -> None:
        apply = _APPLIED.get(name)
        if apply is not None:
            apply(self.plant.packs, self._pack, value)
        setattr(self._channel_settings(), name, value)

    def _stored(self, name: str) -> float:
        return getattr(self._channel_settings(), name)

    def _set_curve(self, number: int, count: int, values: list[float]) -> None:
        curve = Curve(number)
        if len(values) < count:
            raise ScpiError(ErrorCode.MISSING_PARAMETER, f"{count} points announced, {len(values)} sent")
        if len(values) > count:
            raise ScpiError(ErrorCode.PARAMETER_NOT_ALLOWED, f"{count} points announced, {len(values)} sent")
        low, high = _CURVE_RANGE[curve]
        outside = [value for value in values if not low <= value <= high]
        if outside:
            raise ScpiError(ErrorCode.DATA_OUT_OF_RANGE, f"{outside[0]:g} outside {low:g}..{high:g}")
        steps = np.diff(values)
        if (curve is Curve.SOC and np.any(steps <= 0)) or (curve is Curve.OCV and np.any(steps < 0)):
            raise ScpiError(ErrorCode.ILLEGAL_PARAMETER_VALUE, f"{curve.name} points out of order")
        curves = self._channel_settings().curves
        curves[curve] = tuple(values)
        ocv, soc = curves.get(Curve.OCV, ()), curves.get(Curve.SOC, ())
        if curve in (Curve.OCV, Curve.SOC) and ocv and len(ocv) == len(soc):
            try:
                self.plant.packs.set_ocv_curve(self._pack, np.asarray(soc) / 100.0, np.asarray(ocv))
            except ValueError as error:
                del curves[curve]
                raise ScpiError(ErrorCode.ILLEGAL_PARAMETER_VALUE, str(error)) from error

    def _curve(self, number: int) -> tuple[float, ...]:
        points = self._channel_settings().curves.get(Curve(number), ())
        return (len(points), *points)

    # ------------------------------------------------------------------ the plant

    def _set_output(self, on: bool) -> None:
        packs, pack = self.plant.packs, self._pack
        wanted = packs.contactor_closed.copy()
        wanted[pack] = on
        packs.command_contactors(wanted)
        if bool(packs.contactor_closed[pack]) != on:
            reason = "a welded contactor" if not on else "a latched fault or a contactor failed open"
            raise ScpiError(ErrorCode.SETTINGS_CONFLICT, f"pack {pack} refused: {reason}")

    def _output(self) -> bool:
        return bool(self.plant.packs.contactor_closed[self._pack])

    def _clear_protection(self) -> None:
        self.plant.packs.reset_faults(self._pack)

    def _measured(
        self, quantity: Callable[[PackArray], tuple[np.ndarray, ...]], channels: tuple[int, ...] | None
    ) -> list[float | int | bool]:
        """``quantity``'s field(s) for the selected channel, or for every channel of the list, in its
        order, the fields of one channel together."""
        packs = self.plant.packs
        chosen = [self._pack] if channels is None else [channel - 1 for channel in channels]
        columns = [field[chosen].tolist() for field in quantity(packs)]
        return [value for row in zip(*columns, strict=True) for value in row]

    def _insert_fault(self, kind: FaultKind, value: float | None) -> None:
        params = _fault_parameters(kind, value)
        self.plant.packs.inject(_INJECTED[kind], self._pack, **params)
        inserted = self._inserted.setdefault(self._channel, [])
        for gone in (kind, _REPLACES.get(kind)):
            if gone in inserted:
                inserted.remove(gone)
        inserted.append(kind)

    def _clear_fault(self, kind: FaultKind) -> None:
        self.plant.packs.clear(_INJECTED[kind], self._pack)
        inserted = self._inserted.get(self._channel, [])
        if kind in inserted:
            inserted.remove(kind)

    def _faults(self) -> str | list[FaultKind]:
        return self._inserted.get(self._channel) or "NONE"

    def _fault_masks(self, channels: tuple[int, ...] | None) -> list[int]:
        """``FAULt:MASK?``: the selected channel's inserted kinds as bits, or every listed channel's."""
        chosen = (self._channel,) if channels is None else channels
        return [sum(kind.bit for kind in self._inserted.get(channel, ())) for channel in chosen]


_FAULT_VALUES: dict[FaultKind, tuple[str, float, float, Callable[[float], float]]] = {
    FaultKind.THERMAL: ("heat_w", 0.0, HEAT_MAX_W, float),
    FaultKind.DRIFT: ("offset", -100.0, 100.0, lambda pct: pct / 100.0),
}
"""Kinds that take a value: (plant parameter, lowest, highest, instrument value -> plant value)."""


def _fault_parameters(kind: FaultKind, value: float | None) -> dict[str, float]:
    """The plant's parameters for ``FAULt:INSert <kind>,<value>``; -108 / -222 for a value that misfits."""
    converter = _FAULT_VALUES.get(kind)
    if value is None:
        return {}
    if converter is None:
        raise ScpiError(ErrorCode.PARAMETER_NOT_ALLOWED, f"{kind.value} takes no value")
    name, low, high, convert = converter
    if not low <= value <= high:
        raise ScpiError(ErrorCode.DATA_OUT_OF_RANGE, f"{value:g} outside {low:g}..{high:g}")
    return {name: convert(value)}
