"""Safe state on every exit path: the guard that calls every driver's ``safe()`` however a run ends.

A run can end normally, with an exception (an instrument timeout included), with Ctrl-C
(KeyboardInterrupt / SIGINT) or with SIGTERM. :class:`SafeStateGuard` is a context manager; while
inside it, SIGINT and SIGTERM raise an exception in the main thread so every ``finally`` runs, and on
the way out it calls ``safe()`` on every driver in turn, each in a worker thread under its own
deadline: a driver that raises or overruns is reported and the guard moves on to the next. A
failure to go safe never hides the exception that ended the run: it is attached to it as a note.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from types import FrameType, TracebackType
from typing import Self

from drivers.base import Driver

SignalHandler = Callable[[int, FrameType | None], object] | int | None
"""What ``signal.signal`` takes and returns: a function, SIG_DFL / SIG_IGN, or None (set outside Python)."""

DEFAULT_DEADLINE_S = 5.0
GUARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM)
SAFE_ORDER = ("load", "battery", "grid", "relays")
"""Roles made safe first, in this order; every other role follows in the order given.

The load stops drawing before its sources go (a real electronic load sinking from a battery emulator
that switches off sees its input collapse under it); the sources go before the relays release the
faults they hold, so undoing a fault never meets live outputs. Meters and the controller link have
no outputs and come last.
"""


class SafeOutcome(Enum):
    OK = "ok"
    ERROR = "error"
    TIMED_OUT = "timed out"


@dataclass(frozen=True)
class SafeResult:
    """How one driver's ``safe()`` went."""

    role: str
    outcome: SafeOutcome
    elapsed_s: float
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.role}: {self.outcome.value}" + (f" ({self.detail})" if self.detail else "")


@dataclass(frozen=True)
class SafeReport:
    """Every driver's safe-state result, in the order they were made safe."""

    results: tuple[SafeResult, ...]

    @property
    def ok(self) -> bool:
        return all(result.outcome is SafeOutcome.OK for result in self.results)

    @property
    def failures(self) -> tuple[SafeResult, ...]:
        return tuple(result for result in self.results if result.outcome is not SafeOutcome.OK)

    def __getitem__(self, role: str) -> SafeResult:
        for result in self.results:
            if result.role == role:
                return result
        raise KeyError(role)

    def __str__(self) -> str:
        return "safe state: " + "; ".join(str(result) for result in self.results)


class SafeStateError(Exception):
    """The run ended normally but at least one driver did not reach its safe state."""

    def __init__(self, report: SafeReport) -> None:
        self.report = report
        failed = "; ".join(str(result) for result in report.failures)
        super().__init__(f"not every output reached its safe state: {failed}")


class Terminated(BaseException):
    """SIGTERM arrived inside a :class:`SafeStateGuard`.

    A BaseException, like KeyboardInterrupt, so that ``except Exception`` in a test does not swallow it.
    """

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"terminated by {signal.Signals(signum).name}")


def signal_exception(signum: int) -> BaseException:
    """What a guarded signal raises: KeyboardInterrupt for SIGINT (as Python does), else Terminated."""
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


def safe_order(roles: Mapping[str, Driver]) -> list[str]:
    """The roles in the order they are made safe (see :data:`SAFE_ORDER`)."""
    rank = {role: index for index, role in enumerate(SAFE_ORDER)}
    return sorted(roles, key=lambda role: rank.get(role, len(SAFE_ORDER)))


def make_safe(drivers: Mapping[str, Driver], deadline_s: float = DEFAULT_DEADLINE_S) -> SafeReport:
    """Call ``safe()`` on every driver in turn, each given ``deadline_s``; never raises."""
    return SafeReport(tuple(_make_one_safe(role, drivers[role], deadline_s) for role in safe_order(drivers)))


def _make_one_safe(role: str, driver: Driver, deadline_s: float) -> SafeResult:
    """Run ``driver.safe()`` in a daemon thread so a driver stuck in I/O cannot hold the others (or
    the interpreter's exit) hostage; past the deadline it is left to finish or fail on its own."""
    failure: list[BaseException] = []

    def work() -> None:
        try:
            driver.safe()
        except BaseException as error:  # reported, whatever it is: this thread must not die silently
            failure.append(error)

    started = time.monotonic()
    worker = threading.Thread(target=work, name=f"safe-{role}", daemon=True)
    worker.start()
    worker.join(deadline_s)
    elapsed_s = time.monotonic() - started
    if worker.is_alive():
        overran = f"safe() still running after {deadline_s:g} s"
        return SafeResult(role, SafeOutcome.TIMED_OUT, elapsed_s, overran)
    if failure:
        error = failure[0]
        return SafeResult(role, SafeOutcome.ERROR, elapsed_s, f"{type(error).__name__}: {error}")
    return SafeResult(role, SafeOutcome.OK, elapsed_s)


class SafeStateGuard:
    """Brings every driver to its safe state on leaving the ``with`` block, however it is left.

    ``drivers`` is read on exit, so roles opened inside the block (added to the same dict) are
    made safe too. After exit, :attr:`report` holds the outcome. On a normal exit a failure to go
    safe raises :class:`SafeStateError`; when the block raised, that exception propagates unchanged
    with the report attached as a note. Signal handlers are installed only in the main thread (the
    only one Python delivers signals to); elsewhere the guard still goes safe on every exception.
    """

    def __init__(self, drivers: Mapping[str, Driver], deadline_s: float = DEFAULT_DEADLINE_S) -> None:
        if not deadline_s > 0:
            raise ValueError(f"deadline_s must be more than 0, not {deadline_s}")
        self.drivers = drivers
        self.deadline_s = deadline_s
        self.report: SafeReport | None = None
        self._previous: dict[int, SignalHandler] = {}
        self._deferred: int | None = None

    def __enter__(self) -> Self:
        self.report = None
        self._deferred = None
        self._install(self._interrupt)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # A second Ctrl-C while going safe must not cut the safe-state sequence short: note it instead.
        self._install(self._defer)
        try:
            self.report = make_safe(self.drivers, self.deadline_s)
        finally:
            self._restore()
        report = self.report
        if exc is not None:
            if not report.ok:
                exc.add_note(str(report))
            return
        if self._deferred is not None:
            interrupt = signal_exception(self._deferred)
            interrupt.add_note(str(report))
            raise interrupt
        if not report.ok:
            raise SafeStateError(report)

    def _interrupt(self, signum: int, frame: FrameType | None) -> None:
        raise signal_exception(signum)

    def _defer(self, signum: int, frame: FrameType | None) -> None:
        if self._deferred is None:
            self._deferred = signum

    def _install(self, handler: Callable[[int, FrameType | None], None]) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in GUARDED_SIGNALS:
            previous = signal.signal(signum, handler)
            self._previous.setdefault(signum, previous)

    def _restore(self) -> None:
        for signum, previous in self._previous.items():
            # None: the handler was not installed from Python; the default is the closest we can restore.
            signal.signal(signum, signal.SIG_DFL if previous is None else previous)
        self._previous.clear()
