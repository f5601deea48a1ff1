"""Tests of the shared SCPI machinery, and the tiny instrument they drive."""

from __future__ import annotations

import threading
from enum import Enum

from harness.sim.scpi import (
    Boolean,
    ChannelList,
    Choice,
    CommandTable,
    ErrorCode,
    Number,
    Repeat,
    ScpiError,
    Text,
    quote,
)

IDENTITY = "GRIDHIL,TEST-SUPPLY,0001,1.0"
VOLTAGE_MAX_V = 300.0


class Mode(Enum):
    FIXED = "FIXed"
    LIST = "LIST"


class Supply:
    """A settable 0-300 V source with an output, four battery slots, a relay bank and a two-value plant.

    ``step()`` is what a plant thread does between messages: it changes PLANt:A and PLANt:B together,
    under ``lock``, so a message that reads both sees them equal only if it runs under the same lock.
    """

    identity = IDENTITY

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()
        self.plant_a = 0
        self.plant_b = 0
        table = CommandTable()
        table.add(
            "[SOURce:]VOLTage[:LEVel][:IMMediate][:AMPLitude]",
            setter=self._set_voltage,
            query=self._voltage,
            params=(Number(0.0, VOLTAGE_MAX_V, "V", default=0.0),),
            query_params=(Choice(["MINimum", "MAXimum"], optional=True),),
        )
        table.add("OUTPut[:STATe]", setter=self._set_output, query=lambda: self.output, params=(Boolean(),))
        table.add("OUTPut:MODE", setter=self._set_mode, query=lambda: self.mode, params=(Choice(Mode),))
        table.add("MEASure:VOLTage?", query=lambda: self.voltage_v if self.output else 0.0)
        table.add(
            "BATTery#:CAPacity",
            setter=self.capacity_ah.__setitem__,
            query=self.capacity_ah.__getitem__,
            params=(Number(0.0, 200.0, "AH"),),
            suffix_range=(1, 4),
        )
        table.add(
            "ROUTe:CLOSe",
            setter=self._close_relays,
            query=lambda: sorted(self.closed),
            params=(ChannelList(1, 8),),
        )
        table.add(
            "LIST:VOLTage",
            setter=self._set_list,
            query=lambda: self.list_v,
            params=(Repeat(Number(0, 300, "V"), 1, 10),),
        )
        table.add("SYSTem:TEXT", setter=self._set_text, query=lambda: quote(self.text), params=(Text(),))
        table.add("ECHO?", query=quote, query_params=(Text(),))
        table.add("PLANt:A?", query=lambda: self.plant_a)
        table.add("PLANt:B?", query=lambda: self.plant_b)
        table.add("FAIL", setter=self._fail)
        self.commands = table

    def reset(self) -> None:
        self.voltage_v = 0.0
        self.output = False
        self.mode = Mode.FIXED
        self.capacity_ah = {1: 0.0, 2: 0.0, 3: 0.0, 4: 0.0}
        self.closed: set[int] = set()
        self.list_v: list[float] = []
        self.text = ""

    def step(self) -> None:
        with self.lock:
            self.plant_a += 1
            self.plant_b += 1

    def _set_voltage(self, value_v: float) -> None:
        self.voltage_v = value_v

    def _voltage(self, limit: str | None) -> float:
        return {None: self.voltage_v, "MINIMUM": 0.0, "MAXIMUM": VOLTAGE_MAX_V}[limit]

    def _set_output(self, on: bool) -> None:
        self.output = on

    def _set_mode(self, mode: Mode) -> None:
        if self.output:
            raise ScpiError(ErrorCode.SETTINGS_CONFLICT, "mode change with the output on")
        self.mode = mode

    def _close_relays(self, channels: tuple[int, ...]) -> None:
        self.closed.update(channels)

    def _set_list(self, values_v: list[float]) -> None:
        self.list_v = values_v

    def _set_text(self, text: str) -> None:
        self.text = text

    def _fail(self) -> None:
        raise RuntimeError("handler bug")
