"""The one scheduler of a run: periodic tasks and one-shot steps on one clock, in a fixed order.

A run's work is a set of tasks: the controller's cycle, the recorder's sample (both periodic) and
the sequence's steps (each once, at its time). :class:`Schedule` runs them: at every instant some
task is due, it runs the due tasks in *lane* order (:class:`Lane`: controller, then recorder, then
steps; within a lane in the order they were added), so the recorder sees what the controller just
did and a step applied at ``t`` shows in the sample after ``t``. Between two instants time passes,
and how it passes is the clock:

- :class:`VirtualTime` (tests, CI, simulated benches): the plant is advanced by exactly the gap, so a
  run takes as long as its I/O and the same seed gives the same trace;
- :class:`WallTime` (lab benches): the scheduler waits until the wall clock reaches the instant;
  the plant is real and moves by itself. A late instant runs at once (work is never skipped).

Instants are counted in integer nanoseconds so that periodic times never drift and tasks of
different periods meet on exactly the same instant.
"""

from __future__ import annotations

import heapq
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Protocol

NS_PER_S = 1_000_000_000


class Lane(IntEnum):
    """Order of tasks due at the same instant."""

    CONTROLLER = 0
    RECORDER = 1
    STEPS = 2


def to_ns(t_s: float) -> int:
    return round(t_s * NS_PER_S)


class TimePassing(Protocol):
    """How the clock gets from one instant to the next."""

    def pass_to(self, now_s: float, next_s: float) -> None: ...


@dataclass
class VirtualTime:
    """Time passes by advancing the plant over the gap (``advance(dt_s)``, e.g. ``SimBench.advance``)
    in steps of at most ``max_step_s``: the simulated meters see the bus once per step, so a shorter
    step resolves load edges the analyzer averages over its interval."""

    advance: Callable[[float], object]
    max_step_s: float = math.inf

    def pass_to(self, now_s: float, next_s: float) -> None:
        gap_s = next_s - now_s
        if gap_s <= 0.0:
            return
        steps = max(1, math.ceil(gap_s / self.max_step_s - 1e-9))
        for _ in range(steps):
            self.advance(gap_s / steps)


class ClockStopped(Exception):
    """The wall clock's ``stop`` was set while the schedule waited for an instant."""


@dataclass
class WallTime:
    """Time passes on the wall clock; setting ``stop`` ends the wait with :class:`ClockStopped`."""

    stop: threading.Event = field(default_factory=threading.Event)
    _origin: float | None = None

    def pass_to(self, now_s: float, next_s: float) -> None:
        if self._origin is None:
            self._origin = time.monotonic() - now_s
        if self.stop.wait(max(0.0, self._origin + next_s - time.monotonic())):
            raise ClockStopped(f"stopped at {now_s:g} s, waiting for {next_s:g} s")


@dataclass(order=True)
class _Due:
    at_ns: int
    lane: Lane
    order: int
    task: _Task = field(compare=False)


@dataclass
class _Task:
    name: str
    lane: Lane
    action: Callable[[float], object]
    period_ns: int | None
    start_ns: int
    runs: int = 0

    def next_ns(self) -> int | None:
        if self.period_ns is None:
            return None
        return self.start_ns + self.runs * self.period_ns


class Schedule:
    """Tasks on one clock; :meth:`run_until` runs them. ``now_s`` is the clock's present time."""

    def __init__(self, passing: TimePassing, start_s: float = 0.0) -> None:
        self.passing = passing
        self._now_ns = to_ns(start_s)
        self._queue: list[_Due] = []
        self._added = 0

    @property
    def now_s(self) -> float:
        return self._now_ns / NS_PER_S

    def every(
        self,
        name: str,
        period_s: float,
        lane: Lane,
        action: Callable[[float], object],
        *,
        first_s: float | None = None,
    ) -> None:
        """Run ``action(t_s)`` every ``period_s`` from ``first_s`` (default: the present instant) on."""
        period_ns = to_ns(period_s)
        if period_ns <= 0:
            raise ValueError(f"task {name!r}: period_s must be more than 0, not {period_s}")
        start_ns = self._now_ns if first_s is None else to_ns(first_s)
        if start_ns < self._now_ns:
            raise ValueError(f"task {name!r}: first_s {first_s} is before the clock's present {self.now_s} s")
        self._push(_Task(name, lane, action, period_ns, start_ns))

    def at(self, name: str, at_s: float, lane: Lane, action: Callable[[float], object]) -> None:
        """Run ``action(t_s)`` once, at ``at_s`` (not before the present instant)."""
        at_ns = to_ns(at_s)
        if at_ns < self._now_ns:
            raise ValueError(f"task {name!r}: at {at_s} s is before the clock's present {self.now_s} s")
        self._push(_Task(name, lane, action, None, at_ns))

    def _push(self, task: _Task) -> None:
        heapq.heappush(self._queue, _Due(task.start_ns, task.lane, self._added, task))
        self._added += 1

    def run_until(self, end_s: float) -> None:
        """Run every task due before ``end_s``, then let time pass to ``end_s``.

        A task due exactly at ``end_s`` is left for the next call, so consecutive calls never run an
        instant twice. An exception from a task ends the run with the clock at that instant.
        """
        end_ns = to_ns(end_s)
        while self._queue and self._queue[0].at_ns < end_ns:
            at_ns = self._queue[0].at_ns
            self._pass_to(at_ns)
            while self._queue and self._queue[0].at_ns == at_ns:
                due = heapq.heappop(self._queue)
                task = due.task
                task.runs += 1
                following = task.next_ns()
                if following is not None:
                    heapq.heappush(self._queue, _Due(following, task.lane, due.order, task))
                task.action(at_ns / NS_PER_S)
        self._pass_to(end_ns)

    def _pass_to(self, at_ns: int) -> None:
        if at_ns > self._now_ns:
            self.passing.pass_to(self.now_s, at_ns / NS_PER_S)
            self._now_ns = at_ns
