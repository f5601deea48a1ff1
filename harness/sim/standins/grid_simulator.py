"""Chroma 61800/61845 regenerative grid simulator as a stand-in: it is the plant's utility grid.

Voltages are line-to-neutral rms, as the 61800 programs them: ``pu = V / (nominal / sqrt 3)`` with
``nominal`` the grid's line-to-line voltage. What reaches the plant (``plant.grid``), at plant time:

- ``[SOURce:]VOLTage[:LEVel][:IMMediate][:AMPLitude]:AC <V>`` and ``[SOURce:]FREQuency[:IMMediate] <Hz>``
  -> ``set_voltage`` / ``set_frequency``. While a LIST runs they are refused with -221 (the list owns
  the output; change them before or after).
- The output is live while ``OUTPut[:STATe]`` and ``OUTPut:RELay`` are both ON; going dead is
  ``grid.outage`` now (open-ended), coming back ``grid.restore`` now. Turning the output off stops a
  running LIST.
- LIST mode: ``OUTPut:MODE LIST``, then ``LIST:DWELl`` (milliseconds, as the real 61800 and the SunSpec
  SVP driver use), ``LIST:VOLTage:AC:STARt|END`` (V), ``LIST:FREQuency:STARt|END`` (Hz), optional
  ``LIST:SHAPe`` (A|B, stored), ``LIST:COUNt`` (repeats), ``LIST:BASE TIME`` (the only base supported).
  ``TRIGger[:STATe] ON`` plays the steps as :class:`GridSegment` ramps from now; it needs LIST mode and
  a live output, and every list the same non-zero length (-221 otherwise). ``TRIGger[:STATe]?`` is
  ``RUNNING`` until the plant clock passes the list's end, then ``OFF``. ``TRIGger OFF`` (or
  ``OUTPut:MODE FIXED``) stops a running list: the fixed voltage and frequency take over at once.
- ``MEASure:VOLTage:AC?`` / ``MEASure:FREQuency?``: the grid source now (0 while dead);
  ``MEASure:POWer:AC?``: the plant's grid import in W (total of the three phases, + = into the plant);
  ``MEASure:CURRent:AC?``: the per-phase rms current that import implies.

Stored only: ``[SOURce:]CURRent:LIMit``, ``[SOURce:]VOLTage:LIMit:AC``, ``LIST:COUPle``, ``LIST:TRIGger``.
The stand-in starts in the state the plant's grid is in (output ON if it is alive, its present voltage
and frequency). ``*RST``: output OFF (an outage now), FIXED mode, LIST data cleared, and the power-on
settings: nominal voltage and frequency, which are applied to the plant's grid too.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from enum import Enum
from functools import partial

from harness.sim.grid import FREQUENCY_MAX_HZ, FREQUENCY_MIN_HZ, GridSegment
from harness.sim.plant import Plant
from harness.sim.scpi import (
    Boolean,
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

IDENTITY = "Chroma,61845,GRIDHIL-SIM,1.00"
VOLTAGE_MAX_V = 300.0
"""Line-to-neutral, the 61800's high range."""
CURRENT_LIMIT_MAX_A = 100.0
LIST_STEPS_MAX = 100
DWELL_MIN_MS = 0.1
DWELL_MAX_MS = 99_999_999.9
COUNT_MAX = 65_535


class OutputMode(Enum):
    FIXED = "FIXED"
    LIST = "LIST"


class TriggerState(Enum):
    OFF = "OFF"
    RUNNING = "RUNNING"


class ListBase(Enum):
    TIME = "TIME"


class ListCoupling(Enum):
    ALL = "ALL"
    NONE = "NONE"


class ListTrigger(Enum):
    AUTO = "AUTO"
    MANUAL = "MANual"


_VOLTS = Number(0.0, VOLTAGE_MAX_V, "V")
_HERTZ = Number(FREQUENCY_MIN_HZ, FREQUENCY_MAX_HZ, "HZ")


@dataclass
class ListProgram:
    """The LIST subsystem's data as the instrument holds it (volts and milliseconds, as sent)."""

    count: int = 1
    dwell_ms: list[float] = field(default_factory=list)
    shape: list[str] = field(default_factory=list)
    voltage_start_v: list[float] = field(default_factory=list)
    voltage_end_v: list[float] = field(default_factory=list)
    frequency_start_hz: list[float] = field(default_factory=list)
    frequency_end_hz: list[float] = field(default_factory=list)
    base: ListBase = ListBase.TIME
    coupling: ListCoupling = ListCoupling.ALL
    trigger: ListTrigger = ListTrigger.AUTO

    def segments(self, volts_per_pu: float) -> list[GridSegment]:
        """The steps as plant segments; -221 unless every list has the same, non-zero length."""
        columns = (
            self.dwell_ms,
            self.voltage_start_v,
            self.voltage_end_v,
            self.frequency_start_hz,
            self.frequency_end_hz,
        )
        lengths = {len(column) for column in columns}
        if self.shape:
            lengths.add(len(self.shape))
        if len(lengths) != 1 or 0 in lengths:
            raise ScpiError(ErrorCode.SETTINGS_CONFLICT, f"LIST lengths differ or are 0: {sorted(lengths)}")
        return [
            GridSegment(dwell / 1000.0, v_start / volts_per_pu, v_end / volts_per_pu, f_start, f_end)
            for dwell, v_start, v_end, f_start, f_end in zip(*columns, strict=True)
        ]


# (pattern, ListProgram field, parameter of one element) for the comma-separated LIST columns.
_LIST_COLUMNS = (
    ("LIST:DWELl", "dwell_ms", Number(DWELL_MIN_MS, DWELL_MAX_MS)),
    ("LIST:SHAPe", "shape", Choice(["A", "B"])),
    ("LIST:VOLTage:AC:STARt", "voltage_start_v", _VOLTS),
    ("LIST:VOLTage:AC:END", "voltage_end_v", _VOLTS),
    ("LIST:FREQuency:STARt", "frequency_start_hz", _HERTZ),
    ("LIST:FREQuency:END", "frequency_end_hz", _HERTZ),
)
_LIST_SCALARS = (
    ("LIST:COUNt", "count", Integer(1, COUNT_MAX)),
    ("LIST:BASE", "base", Choice(ListBase)),
    ("LIST:COUPle", "coupling", Choice(ListCoupling)),
    ("LIST:TRIGger", "trigger", Choice(ListTrigger)),
)


class GridSimulator(StandIn):
    """A Chroma 61845 on ``TCPIP::127.0.0.1::<port>::SOCKET`` driving ``plant.grid``."""

    def __init__(self, plant: Plant, lock: threading.RLock) -> None:
        super().__init__(plant, lock)
        grid = plant.grid
        self._volts_per_pu = grid.nominal_voltage_v / math.sqrt(3.0)
        with lock:
            now = grid.state_at(plant.t)
        self._output = now.available
        self._relay = True
        self._voltage_v = now.voltage_pu * self._volts_per_pu if now.available else self._volts_per_pu
        self._frequency_hz = now.frequency_hz
        self._power_on_defaults()
        self.commands = self._command_table()

    @property
    def identity(self) -> str:
        return IDENTITY

    @property
    def volts_per_pu(self) -> float:
        """Line-to-neutral volts of 1 pu: the grid's nominal line-to-line voltage over sqrt 3."""
        return self._volts_per_pu

    def _make_server(self) -> ScpiTcpServer:
        return ScpiTcpServer(ScpiEngine(self, lock=self.lock))

    def _power_on_defaults(self) -> None:
        self._mode = OutputMode.FIXED
        self._list = ListProgram()
        self._list_end_s: float | None = None
        self._current_limit_a = CURRENT_LIMIT_MAX_A
        self._voltage_limit_v = VOLTAGE_MAX_V

    def reset(self) -> None:
        """``*RST``: output off (outage now), FIXED, LIST cleared, nominal voltage and frequency."""
        was_live = self._live
        self._output = False
        self._apply_output(was_live)
        self._power_on_defaults()
        grid, now = self.plant.grid, self.plant.t
        self._voltage_v = self._volts_per_pu
        self._frequency_hz = grid.nominal_frequency_hz
        grid.set_voltage(at=now, voltage_pu=1.0)
        grid.set_frequency(at=now, frequency_hz=self._frequency_hz)

    def _command_table(self) -> CommandTable:
        table = CommandTable()
        table.add(
            "[SOURce:]VOLTage[:LEVel][:IMMediate][:AMPLitude]:AC",
            setter=self._set_voltage,
            query=lambda: self._voltage_v,
            params=(_VOLTS,),
        )
        table.add(
            "[SOURce:]FREQuency[:IMMediate]",
            setter=self._set_frequency,
            query=lambda: self._frequency_hz,
            params=(_HERTZ,),
        )
        table.add(
            "[SOURce:]CURRent:LIMit",
            setter=partial(setattr, self, "_current_limit_a"),
            query=lambda: self._current_limit_a,
            params=(Number(0.0, CURRENT_LIMIT_MAX_A, "A"),),
        )
        table.add(
            "[SOURce:]VOLTage:LIMit:AC",
            setter=partial(setattr, self, "_voltage_limit_v"),
            query=lambda: self._voltage_limit_v,
            params=(_VOLTS,),
        )
        table.add("OUTPut[:STATe]", setter=self._set_output, query=lambda: self._output, params=(Boolean(),))
        table.add("OUTPut:RELay", setter=self._set_relay, query=lambda: self._relay, params=(Boolean(),))
        mode = Choice(OutputMode)
        table.add("OUTPut:MODE", setter=self._set_mode, query=lambda: self._mode, params=(mode,))
        for pattern, name, spec in (
            *((pattern, name, Repeat(item, 1, LIST_STEPS_MAX)) for pattern, name, item in _LIST_COLUMNS),
            *_LIST_SCALARS,
        ):
            table.add(
                pattern,
                setter=partial(self._set_list_field, name),
                query=partial(self._list_field, name),
                params=(spec,),
            )
        table.add("TRIGger[:STATe]", setter=self._set_trigger, query=self._trigger_state, params=(Boolean(),))
        table.add("MEASure:VOLTage:AC?", query=self._measured_voltage_v)
        table.add("MEASure:FREQuency?", query=self._measured_frequency_hz)
        table.add("MEASure:POWer:AC?", query=lambda: self.plant.bus.grid_w)
        table.add("MEASure:CURRent:AC?", query=self._measured_current_a)
        return table

    # ------------------------------------------------------------------ fixed settings and output

    @property
    def _running(self) -> bool:
        return self._list_end_s is not None and self.plant.t < self._list_end_s

    @property
    def _live(self) -> bool:
        return self._output and self._relay

    def _refuse_while_running(self, what: str) -> None:
        if self._running:
            raise ScpiError(ErrorCode.SETTINGS_CONFLICT, f"{what} while a LIST runs")

    def _set_voltage(self, voltage_v: float) -> None:
        self._refuse_while_running("voltage change")
        self.plant.grid.set_voltage(at=self.plant.t, voltage_pu=voltage_v / self._volts_per_pu)
        self._voltage_v = voltage_v

    def _set_frequency(self, frequency_hz: float) -> None:
        self._refuse_while_running("frequency change")
        self.plant.grid.set_frequency(at=self.plant.t, frequency_hz=frequency_hz)
        self._frequency_hz = frequency_hz

    def _set_output(self, on: bool) -> None:
        was_live = self._live
        self._output = on
        self._apply_output(was_live)

    def _set_relay(self, closed: bool) -> None:
        was_live = self._live
        self._relay = closed
        self._apply_output(was_live)

    def _apply_output(self, was_live: bool) -> None:
        """Take the grid down or bring it back when the output went dead or live."""
        grid, now = self.plant.grid, self.plant.t
        if was_live and not self._live:
            self._stop_list()
            grid.outage(at=now)
        elif self._live and not was_live:
            grid.restore(at=now)

    def _set_mode(self, mode: OutputMode) -> None:
        if mode is OutputMode.FIXED:
            self._stop_list()
        self._mode = mode

    # ------------------------------------------------------------------ LIST

    def _set_list_field(self, name: str, value: object) -> None:
        """Edit the LIST data; editing it while a list runs does not change what plays."""
        setattr(self._list, name, value)

    def _list_field(self, name: str) -> object:
        return getattr(self._list, name)

    def _set_trigger(self, on: bool) -> None:
        if not on:
            self._stop_list()
            return
        if self._mode is not OutputMode.LIST:
            raise ScpiError(ErrorCode.SETTINGS_CONFLICT, "TRIGger ON needs OUTPut:MODE LIST")
        if not self._live:
            raise ScpiError(ErrorCode.SETTINGS_CONFLICT, "TRIGger ON needs the output on")
        segments = self._list.segments(self._volts_per_pu)
        now = self.plant.t
        self.plant.grid.play(at=now, segments=segments, repeat=self._list.count)
        self._list_end_s = now + self._list.count * sum(segment.dwell_s for segment in segments)

    def _trigger_state(self) -> TriggerState:
        return TriggerState.RUNNING if self._running else TriggerState.OFF

    def _stop_list(self) -> None:
        """End a running list now: the fixed voltage and frequency take over."""
        if self._running:
            grid, now = self.plant.grid, self.plant.t
            grid.set_voltage(at=now, voltage_pu=self._voltage_v / self._volts_per_pu)
            grid.set_frequency(at=now, frequency_hz=self._frequency_hz)
        self._list_end_s = None

    # ------------------------------------------------------------------ measurements

    def _measured_voltage_v(self) -> float:
        return self.plant.grid.state_at(self.plant.t).voltage_pu * self._volts_per_pu

    def _measured_frequency_hz(self) -> float:
        state = self.plant.grid.state_at(self.plant.t)
        return state.frequency_hz if state.available else 0.0

    def _measured_current_a(self) -> float:
        voltage_v = self._measured_voltage_v()
        return abs(self.plant.bus.grid_w) / (3.0 * voltage_v) if voltage_v > 0.0 else 0.0
