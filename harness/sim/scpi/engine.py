"""The SCPI engine every SCPI stand-in uses: sessions, status registers, the error queue, common commands.

An instrument stand-in is an object with an identity string, a :class:`CommandTable` and a ``reset()``
(:class:`ScpiInstrument`). :class:`ScpiEngine` adds the IEEE 488.2 common commands and ``SYSTem:ERRor``
to its table. Each client connection gets a :class:`ScpiSession` with its own error queue and status
registers (as Keysight instruments keep one error queue per I/O session); all sessions share the
instrument and execute whole messages under the engine's lock, so a plant stepped by another thread
between messages is seen in one consistent state by every message.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

from harness.sim.scpi.mnemonic import SUFFIX_MAX
from harness.sim.scpi.params import Integer, bind_params, format_response
from harness.sim.scpi.parser import ErrorCode, ProgramUnit, ScpiError, parse_message
from harness.sim.scpi.tree import CommandTable, Cursor, Registration

log = logging.getLogger(__name__)


class ScpiInstrument(Protocol):
    """What a stand-in gives the engine: ``*IDN?`` text, its commands, and what ``*RST`` does."""

    @property
    def identity(self) -> str: ...

    @property
    def commands(self) -> CommandTable: ...

    def reset(self) -> None: ...


class ScpiEngine:
    """One instrument's SCPI front: its command tree plus the common commands, and the message lock.

    ``lock`` is the owner's lock around plant state (a private one if None); every message executes
    entirely under it, so handlers must not take it again (pass an RLock if they need to).
    """

    def __init__(
        self,
        instrument: ScpiInstrument,
        *,
        lock: AbstractContextManager[Any] | None = None,
        error_queue_depth: int = 20,
    ) -> None:
        if error_queue_depth < 2:
            raise ValueError("SCPI-99 requires an error queue of at least 2 entries")
        self.instrument = instrument
        self.lock: AbstractContextManager[Any] = threading.Lock() if lock is None else lock
        self.error_queue_depth = error_queue_depth
        self.commands = _builtin_commands()
        self.commands.include(instrument.commands)

    def open_session(self) -> ScpiSession:
        return ScpiSession(self)


_NO_ERROR = '0,"No error"'

# IEEE 488.2 standard event status register bits.
ESR_OPC = 1
ESR_QUERY_ERROR = 4
ESR_DEVICE_ERROR = 8
ESR_EXECUTION_ERROR = 16
ESR_COMMAND_ERROR = 32
# Status byte bits.
STB_ERROR_QUEUE = 4
STB_MAV = 16
STB_ESB = 32
STB_RQS = 64


def _esr_bit(code: int) -> int:
    if code == ErrorCode.QUEUE_OVERFLOW:
        return 0
    if code > 0:
        return ESR_DEVICE_ERROR
    return {1: ESR_COMMAND_ERROR, 2: ESR_EXECUTION_ERROR, 3: ESR_DEVICE_ERROR, 4: ESR_QUERY_ERROR}.get(
        -code // 100, ESR_DEVICE_ERROR
    )


class ScpiSession:
    """One client's view of an instrument: error queue, status registers and output queue.

    ``write`` executes a message; its replies (joined with ``;``) wait in the output queue for ``read``.
    Writing again before reading discards them with -410, as IEEE 488.2 §6.3.2.3 asks; stream transports
    read after every message, so for them that never happens.
    """

    def __init__(self, engine: ScpiEngine) -> None:
        self._engine = engine
        self._errors: deque[ScpiError] = deque()
        self._esr = 0
        self._ese = 0
        self._sre = 0
        self._output: str | None = None
        self._replies: list[str] = []

    def execute(self, message: str) -> str | None:
        """Write ``message`` and read its reply line (None if it held no query or failed before one)."""
        self.write(message)
        return self.read()

    def write(self, message: str) -> None:
        if self._output is not None:
            self._output = None
            self.report(ScpiError(ErrorCode.QUERY_INTERRUPTED))
        cursor = self._engine.commands.root
        with self._engine.lock:
            try:
                for unit in parse_message(message):
                    cursor = self._run(unit, cursor)
            except ScpiError as error:
                self.report(error)
        if self._replies:
            self._output = ";".join(self._replies)
            self._replies = []

    def read(self) -> str | None:
        output, self._output = self._output, None
        return output

    def report(self, error: ScpiError) -> None:
        """Queue ``error`` and set its event bit; a full queue keeps its oldest and ends with -350."""
        self._esr |= _esr_bit(error.code)
        if len(self._errors) < self._engine.error_queue_depth:
            self._errors.append(error)
        elif self._errors[-1].code != ErrorCode.QUEUE_OVERFLOW:
            self._errors[-1] = ScpiError(ErrorCode.QUEUE_OVERFLOW)

    def _run(self, unit: ProgramUnit, cursor: Cursor) -> Cursor:
        route, suffixes, cursor = self._engine.commands.resolve(unit.header, cursor)
        handler = route.handler
        values = bind_params(handler.params, unit.params)
        args = (self, *suffixes, *values) if handler.takes_session else (*suffixes, *values)
        try:
            result = handler.function(*args)
            if unit.header.query:
                self._replies.append(format_response(result))
        except ScpiError:
            raise
        except Exception as exc:
            log.exception("SCPI handler for %s failed", handler.pattern)
            raise ScpiError(ErrorCode.EXECUTION_ERROR, f"{type(exc).__name__}: {exc}") from exc
        return cursor

    # Built-in commands (IEEE 488.2 §10, SCPI-99 SYSTem), registered by _builtin_commands.

    def _status_byte(self) -> int:
        status = STB_ERROR_QUEUE if self._errors else 0
        if self._replies:
            status |= STB_MAV
        if self._esr & self._ese:
            status |= STB_ESB
        if status & self._sre:
            status |= STB_RQS
        return status

    def _identify(self) -> str:
        return self._engine.instrument.identity

    def _reset(self) -> None:
        self._engine.instrument.reset()

    def _clear_status(self) -> None:
        self._errors.clear()
        self._esr = 0

    def _read_event_status(self) -> int:
        value, self._esr = self._esr, 0
        return value

    def _set_event_enable(self, value: int) -> None:
        self._ese = value

    def _event_enable(self) -> int:
        return self._ese

    def _set_service_enable(self, value: int) -> None:
        self._sre = value & ~STB_RQS

    def _service_enable(self) -> int:
        return self._sre

    def _operation_complete(self) -> None:
        self._esr |= ESR_OPC

    def _next_error(self) -> str:
        return self._errors.popleft().entry() if self._errors else _NO_ERROR

    def _error_count(self) -> int:
        return len(self._errors)


def _no_operation(_session: ScpiSession) -> None:
    """``*WAI``: every command completes before the next one starts, so there is nothing to wait for."""


def _constant(value: str) -> Callable[[ScpiSession], str]:
    return lambda _session: value


def _builtin_commands() -> CommandTable:
    byte = (Integer(0, 255),)
    table = CommandTable()
    for pattern, setter, query, params in (
        ("*IDN?", None, ScpiSession._identify, ()),
        ("*RST", ScpiSession._reset, None, ()),
        ("*CLS", ScpiSession._clear_status, None, ()),
        ("*ESR?", None, ScpiSession._read_event_status, ()),
        ("*ESE", ScpiSession._set_event_enable, ScpiSession._event_enable, byte),
        ("*SRE", ScpiSession._set_service_enable, ScpiSession._service_enable, byte),
        ("*STB?", None, ScpiSession._status_byte, ()),
        ("*OPC", ScpiSession._operation_complete, _constant("1"), ()),
        ("*WAI", _no_operation, None, ()),
        ("*TST?", None, _constant("0"), ()),
        ("SYSTem:ERRor[:NEXT]?", None, ScpiSession._next_error, ()),
        ("SYSTem:ERRor:COUNt?", None, ScpiSession._error_count, ()),
        ("SYSTem:VERSion?", None, _constant("1999.0"), ()),
    ):
        table.register(Registration(pattern, setter, query, params, (), (1, SUFFIX_MAX), True))
    return table
