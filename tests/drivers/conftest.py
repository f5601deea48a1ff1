"""Fixtures the driver tests share; a module overrides ``plant`` when it needs another plant."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest

from harness.sim.plant import Plant
from tests.drivers import bench_plant


@pytest.fixture
def lock() -> threading.RLock:
    return threading.RLock()


@pytest.fixture
def plant() -> Plant:
    return bench_plant()


@pytest.fixture
def started() -> Iterator[Callable[[AbstractContextManager[Any]], Any]]:
    """``started(thing)`` enters ``thing`` (a stand-in, a driver, a test server) and returns what it
    yields; everything entered is left after the test, the last entered first."""
    with contextlib.ExitStack() as stack:
        yield stack.enter_context
