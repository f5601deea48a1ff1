"""Yokogawa WT-series power analyzer (``:NUMeric`` command model of the WT1800/WT3000/WT5000) at the rack bus.

**Wiring.** Three elements in three-phase four-wire (``P3W4``, ``[:INPut]:WIRing?``) on the rack bus,
a balanced load: element ``k`` measures phase ``k`` to neutral, so ``U = bus pu x nominal / sqrt 3``
(``nominal`` = ``plant.grid.nominal_voltage_v``, line to line), ``P = load_served_w / 3`` and
``I = P / U``. ``SIGMA`` is the three-phase total: U and I the mean of the elements (as the WT's ΣU, ΣI
for P3W4), P, S and Q the sums. The racks draw at unity power factor, so Q is only what the averaging
below makes of a varying load; ``FU`` is the bus frequency; ``UDC`` and ``IDC`` (the mean of an AC
waveform) are 0.

**Updates.** Like the real one, the analyzer publishes a new set of values every update interval
(``:RATE``, default 0.1 s) and ``:NUMeric:NORMal:VALue?`` returns the last complete set. The plant has no
waveforms, so the analyzer is fed: whoever steps the plant calls :meth:`PowerAnalyzer.sample` with the
bus after each sub-step and its length (the SimBench passes it to ``Plant.step`` as ``on_substep``).
Within an interval, ``URMS``/``IRMS`` are true rms values (the square root of the time-mean of the
squared values fed), ``P`` and ``FU`` time-weighted means (FU over the time the bus was alive),
``S = URMS x IRMS``, ``Q = sqrt(S^2 - P^2)`` and ``LAMBDA = P / S``. A step that crosses an interval
boundary is split at it. Changing ``:RATE`` restarts the interval.

**No data.** Before the first interval completes, for ``NONE`` items, for ``LAMBDA`` with S = 0, for
``FU`` of a dead bus and for ``FU,SIGMA``, the value is ``NAN``, as the WT sends in ASCII format (its
binary format would carry 9.91E+37; only ``:NUMeric:FORMat ASCii`` is supported). Values are <NR3> with
six significant digits.

**Voltage events** (a documented extension, as a power-quality analyzer logs them): ``:EVENt:COUNt?``,
``:EVENt:DATA? <k>`` (1-based) -> ``<DIP|SWELL|INTERRUPTION>,<start_s>,<duration_s>,<residual_pu>`` from
``plant.voltage_events`` (completed events, then the one in progress as it stands), and ``:EVENt:CLEar``,
which hides every event that started before it (the plant's log itself is never changed).

The analyzer only reads the plant. ``*RST``: default items, ``NUMber`` 15, ``RATE`` 0.1 s, no data.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from enum import Enum

from harness.sim.plant import BusState, Plant
from harness.sim.scpi import (
    Boolean,
    Choice,
    CommandTable,
    ErrorCode,
    Integer,
    Number,
    Param,
    ScpiEngine,
    ScpiError,
    ScpiTcpServer,
)
from harness.sim.scpi.parser import CharacterToken, NumberToken, Token
from harness.sim.standins import StandIn
from harness.sim.voltage_events import VoltageEvent

IDENTITY = "YOKOGAWA,WT5000,GRIDHIL-SIM,F1.01"
ELEMENTS = 3
WIRING = "P3W4"
ITEMS_MAX = 255
DEFAULT_ITEM_COUNT = 15
DEFAULT_RATE_S = 0.1
RATE_MIN_S = 0.01
RATE_MAX_S = 20.0
NO_DATA = "NAN"
_CLOSE_TOLERANCE = 1e-9
"""An interval closes within this fraction of its length, so ten 10 ms steps make a 0.1 s interval."""


class Function(Enum):
    """Measurement functions; ``U`` and ``I`` are the WT3000 names of the rms voltage and current."""

    URMS = "URMS"
    IRMS = "IRMS"
    U_RMS = "U"
    I_RMS = "I"
    P = "P"
    S = "S"
    Q = "Q"
    LAMBDA = "LAMBDA"
    FU = "FU"
    UDC = "UDC"
    IDC = "IDC"
    NONE = "NONE"


SIGMA = "SIGMA"
Element = int | str
"""1..ELEMENTS, or :data:`SIGMA`."""


class _ElementParam(Param):
    """An element: ``1``..``ELEMENTS`` or ``SIGMA``; optional because ``NONE`` takes none."""

    optional = True

    def convert(self, token: Token) -> Element:
        if isinstance(token, CharacterToken):
            if token.text != SIGMA:
                raise ScpiError(ErrorCode.ILLEGAL_PARAMETER_VALUE, token.text)
            return SIGMA
        if not isinstance(token, NumberToken) or token.suffix:
            raise ScpiError(ErrorCode.DATA_TYPE_ERROR, "element number or SIGMA expected")
        element = round(token.value)
        if not 1 <= element <= ELEMENTS:
            raise ScpiError(ErrorCode.DATA_OUT_OF_RANGE, f"element {element} outside 1..{ELEMENTS}")
        return element


@dataclass(frozen=True)
class Item:
    function: Function
    element: Element = 1

    def __str__(self) -> str:
        return "NONE" if self.function is Function.NONE else f"{self.function.value},{self.element}"


_NO_ITEM = Item(Function.NONE)
_DEFAULT_FUNCTIONS = ("URMS", "IRMS", "P", "S", "Q", "LAMBDA", "FU")
DEFAULT_ITEMS = tuple(Item(Function[name]) for name in _DEFAULT_FUNCTIONS)


@dataclass(frozen=True)
class Reading:
    """One update interval of one element (the load is balanced, so every element reads the same)."""

    urms_v: float
    irms_a: float
    p_w: float
    frequency_hz: float
    """NaN if the bus was dead the whole interval."""

    def value(self, item: Item) -> float:
        """The item's value; NaN for no data."""
        function, sigma = item.function, item.element == SIGMA
        elements = ELEMENTS if sigma else 1
        s_va = self.urms_v * self.irms_a * elements
        p_w = self.p_w * elements
        if function in (Function.URMS, Function.U_RMS):
            return self.urms_v
        if function in (Function.IRMS, Function.I_RMS):
            return self.irms_a
        if function is Function.P:
            return p_w
        if function is Function.S:
            return s_va
        if function is Function.Q:
            return math.sqrt(max(s_va * s_va - p_w * p_w, 0.0))
        if function is Function.LAMBDA:
            return p_w / s_va if s_va > 0.0 else math.nan
        if function is Function.FU:
            return math.nan if sigma else self.frequency_hz
        if function in (Function.UDC, Function.IDC):
            return 0.0
        return math.nan


@dataclass
class _Interval:
    """Integrals over the interval being measured: time, U^2 dt, I^2 dt, P dt (one element), f dt."""

    span_s: float = 0.0
    u_sq_v2s: float = 0.0
    i_sq_a2s: float = 0.0
    p_j: float = 0.0
    f_cycles: float = 0.0
    alive_s: float = 0.0

    def add(self, u_v: float, i_a: float, p_w: float, f_hz: float, dt: float) -> None:
        self.span_s += dt
        self.u_sq_v2s += u_v * u_v * dt
        self.i_sq_a2s += i_a * i_a * dt
        self.p_j += p_w * dt
        if f_hz > 0.0:
            self.f_cycles += f_hz * dt
            self.alive_s += dt

    def reading(self) -> Reading:
        span = self.span_s
        return Reading(
            urms_v=math.sqrt(self.u_sq_v2s / span),
            irms_a=math.sqrt(self.i_sq_a2s / span),
            p_w=self.p_j / span,
            frequency_hz=self.f_cycles / self.alive_s if self.alive_s > 0.0 else math.nan,
        )


def format_value(value: float) -> str:
    """<NR3> with six significant digits, ``NAN`` for no data."""
    return NO_DATA if math.isnan(value) else f"{value:.5E}"


class PowerAnalyzer(StandIn):
    """A Yokogawa WT on ``TCPIP::127.0.0.1::<port>::SOCKET`` measuring the plant's rack bus."""

    def __init__(self, plant: Plant, lock: threading.RLock) -> None:
        super().__init__(plant, lock)
        self._volts_per_pu = plant.grid.nominal_voltage_v / math.sqrt(3.0)
        self._remote = False
        self._events_cleared_at_s = -math.inf
        self._power_on_defaults()
        self.commands = self._command_table()

    @property
    def identity(self) -> str:
        return IDENTITY

    def _make_server(self) -> ScpiTcpServer:
        return ScpiTcpServer(ScpiEngine(self, lock=self.lock))

    def _power_on_defaults(self) -> None:
        self._items = list(DEFAULT_ITEMS) + [_NO_ITEM] * (ITEMS_MAX - len(DEFAULT_ITEMS))
        self._item_count = DEFAULT_ITEM_COUNT
        self._rate_s = DEFAULT_RATE_S
        self._interval = _Interval()
        self._latest: Reading | None = None

    def reset(self) -> None:
        self._power_on_defaults()

    # ------------------------------------------------------------------ the feed

    def sample(self, bus: BusState, dt: float) -> None:
        """Account for the bus holding ``bus``'s values over the last ``dt`` seconds of plant time.

        Call after every plant sub-step, with its length; takes the lock itself (an RLock, so
        calling it under the lock is fine).
        """
        if not dt > 0.0:
            raise ValueError(f"sample needs a positive dt, got {dt!r}")
        with self.lock:
            u_v = bus.voltage_pu * self._volts_per_pu
            p_w = bus.load_served_w / ELEMENTS
            i_a = p_w / u_v if u_v > 0.0 else 0.0
            f_hz = bus.frequency_hz
            rate = self._rate_s
            interval = self._interval
            part = min(dt, rate - interval.span_s)
            interval.add(u_v, i_a, p_w, f_hz, part)
            left = dt - part
            if interval.span_s < rate * (1.0 - _CLOSE_TOLERANCE):
                return
            self._latest = interval.reading()
            if left >= rate * (1.0 - _CLOSE_TOLERANCE):
                self._latest = Reading(u_v, i_a, p_w, f_hz if f_hz > 0.0 else math.nan)
                left = math.fmod(left, rate)
            self._interval = _Interval()
            if left > rate * _CLOSE_TOLERANCE:
                self._interval.add(u_v, i_a, p_w, f_hz, left)

    # ------------------------------------------------------------------ the command table

    def _command_table(self) -> CommandTable:
        table = CommandTable()
        table.add(
            ":COMMunicate:REMote", setter=self._set_remote, query=lambda: self._remote, params=(Boolean(),)
        )
        table.add(":COMMunicate:HEADer", setter=self._set_header, query=lambda: False, params=(Boolean(),))
        table.add(":NUMeric:FORMat", setter=_accept, query=lambda: "ASCII", params=(Choice(["ASCii"]),))
        table.add(
            ":NUMeric[:NORMal]:NUMber",
            setter=self._set_item_count,
            query=lambda: self._item_count,
            params=(Integer(1, ITEMS_MAX),),
        )
        table.add(
            ":NUMeric[:NORMal]:ITEM#",
            setter=self._set_item,
            query=lambda x: str(self._items[x - 1]),
            params=(Choice(Function), _ElementParam()),
            suffix_range=(1, ITEMS_MAX),
        )
        table.add(
            ":NUMeric[:NORMal]:VALue?",
            query=self._values,
            query_params=(Integer(1, ITEMS_MAX, optional=True),),
        )
        rate = Number(RATE_MIN_S, RATE_MAX_S, "S")
        table.add(":RATE", setter=self._set_rate, query=lambda: self._rate_s, params=(rate,))
        table.add("[:INPut]:WIRing?", query=lambda: WIRING)
        table.add(":EVENt:COUNt?", query=lambda: len(self._events()))
        table.add(":EVENt:DATA?", query=self._event, query_params=(Integer(1, 2**31 - 1),))
        table.add(":EVENt:CLEar", setter=self._clear_events)
        return table

    def _set_remote(self, on: bool) -> None:
        self._remote = on

    @staticmethod
    def _set_header(on: bool) -> None:
        if on:
            raise ScpiError(ErrorCode.SETTINGS_CONFLICT, "response headers are not supported")

    def _set_item_count(self, count: int) -> None:
        self._item_count = count

    def _set_item(self, x: int, function: Function, element: Element | None) -> None:
        if function is Function.NONE:
            if element is not None:
                raise ScpiError(ErrorCode.PARAMETER_NOT_ALLOWED, "NONE takes no element")
            self._items[x - 1] = _NO_ITEM
            return
        if element is None:
            raise ScpiError(ErrorCode.MISSING_PARAMETER, "element")
        self._items[x - 1] = Item(function, element)

    def _set_rate(self, rate_s: float) -> None:
        self._rate_s = rate_s
        self._interval = _Interval()

    def _values(self, number: int | None) -> str:
        items = self._items[: self._item_count] if number is None else [self._items[number - 1]]
        latest = self._latest
        return ",".join(format_value(math.nan if latest is None else latest.value(item)) for item in items)

    # ------------------------------------------------------------------ voltage events

    def _events(self) -> list[VoltageEvent]:
        log = self.plant.voltage_events
        current = log.in_progress(self.plant.t)
        events = [*log.events, current] if current is not None else log.events
        return [event for event in events if event.start_s >= self._events_cleared_at_s]

    def _event(self, k: int) -> tuple[str, float, float, float]:
        events = self._events()
        if k > len(events):
            raise ScpiError(ErrorCode.DATA_OUT_OF_RANGE, f"event {k} of {len(events)}")
        event = events[k - 1]
        return event.kind.value.upper(), event.start_s, event.duration_s, event.residual_pu

    def _clear_events(self) -> None:
        self._events_cleared_at_s = self.plant.t


def _accept(_value: object) -> None:
    """A setting with a single allowed value: nothing to store."""
