"""Fixtures every stand-in test module shares; a module overrides ``plant`` when it needs another plant."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import pyvisa

from harness.sim.plant import Plant
from tests.sim.standins import small_plant


@pytest.fixture(scope="module")
def visa() -> Iterator[pyvisa.ResourceManager]:
    manager = pyvisa.ResourceManager("@py")
    yield manager
    manager.close()


@pytest.fixture
def lock() -> threading.RLock:
    return threading.RLock()


@pytest.fixture
def plant() -> Plant:
    return small_plant()
