"""Tests of the harness core (bench file, safe-state guard, ``gridhil check``); shared fakes.

:class:`FakeDriver` is a driver without a wire: what it does is chosen by its resource
(``fake://ok``, ``fake://down`` ...), and every call it receives is written to a shared log so a
test can see what was touched, in which order.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar, Self

import pytest

import drivers.registry
from drivers.base import Driver, DriverConfig, Identity, Range
from drivers.errors import GarbageReply, InstrumentTimeout, InstrumentUnavailable
from harness.controller.runner import ControllerRunner
from harness.controller.variants import build_controller
from harness.sim.bench import SimBench

FAKE = "fake-acme"
FAKE_IDENTITY = Identity("Acme", "BX-100", "SN42", "2.1.0")


class FakeDriver(Driver):
    """Resources: ``fake://ok``; ``fake://down`` (open fails); ``fake://garbled`` (identity fails);
    ``fake://unsafe`` (safe() raises); ``fake://stuck`` (safe() blocks until :attr:`release` is set).
    Option ``mode`` (a string) exists so a bench file can give it a wrongly typed option."""

    RANGES: ClassVar = {"voltage_max": Range(0.0, 500.0, "V"), "current_max": Range(0.0, 100.0, "A")}
    OPTIONS = frozenset({"mode"})
    log: ClassVar[list[tuple[str, str]]] = []
    release: ClassVar[threading.Event] = threading.Event()

    def __init__(self, config: DriverConfig) -> None:
        super().__init__(config)
        self.mode = config.option("mode", "normal")
        self.behaviour = config.resource.removeprefix("fake://")

    @classmethod
    def check_resource(cls, resource: str) -> None:
        if not resource.startswith("fake://"):
            raise ValueError("a fake resource starts with fake://")

    def _note(self, what: str) -> None:
        self.log.append((self.role, what))

    def open(self) -> Self:
        self._note("open")
        if self.behaviour == "down":
            raise InstrumentUnavailable(self.role, self.resource, "*IDN?", "connection refused")
        return self

    def close(self) -> None:
        self._note("close")

    def identity(self) -> Identity:
        if self.behaviour == "garbled":
            raise GarbageReply(self.role, self.resource, "*IDN?", "reply 'x\\x00' is not an identity")
        return FAKE_IDENTITY

    def safe(self) -> None:
        self._note("safe")
        if self.behaviour == "unsafe":
            raise InstrumentTimeout(self.role, self.resource, "OUTPut OFF", "no reply within 2.0 s")
        if self.behaviour == "stuck" and not self.release.wait(30.0):
            raise AssertionError("the test never released the stuck driver")


def calls(what: str) -> list[str]:
    """The roles that received ``what`` (open, close, safe), in order."""
    return [role for role, call in FakeDriver.log if call == what]


@contextmanager
def fake_registry() -> Iterator[None]:
    """The registry with :class:`FakeDriver` added as :data:`FAKE`, restored afterwards.

    The built-in drivers are loaded first, into the real registry, so that the import of
    ``drivers.builtin`` (which happens once per process) never lands in the temporary copy.
    """
    drivers.registry.driver_names()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(drivers.registry, "_REGISTRY", dict(drivers.registry._REGISTRY))
        drivers.registry.register(FAKE)(FakeDriver)
        FakeDriver.log.clear()
        FakeDriver.release.clear()
        try:
            yield
        finally:
            FakeDriver.release.set()


def fake_role(role: str, behaviour: str = "ok", extra: str = "") -> str:
    """A ``[roles.<role>]`` table using the fake driver."""
    return f'[roles.{role}]\ndriver = "{FAKE}"\nresource = "fake://{behaviour}"\n{extra}\n'


def bench_text(*roles: str, name: str = "fake bench", bench_extra: str = "") -> str:
    return f'[bench]\nname = "{name}"\n{bench_extra}\n' + "".join(roles)


@contextmanager
def reference_controller(sim: SimBench) -> Iterator[ControllerRunner]:
    """The reference controller serving its face beside a simulated bench (no cycles are run)."""
    with ControllerRunner(build_controller(None), sim.pcs_face.resource) as runner:
        yield runner
