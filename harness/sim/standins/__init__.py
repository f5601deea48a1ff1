"""Stand-in instruments: real servers on 127.0.0.1 speaking real instruments' wire protocols, all
reading and writing one :class:`~harness.sim.plant.Plant`.

Every stand-in is built from ``(plant, lock)``. ``lock`` guards the plant: a stand-in touches the plant
only while holding it (the SCPI engine runs each whole message under it), and the run's clock steps the
plant under the same lock between messages, so every message sees one consistent plant. Pass a
``threading.RLock``: some stand-ins take it again from code the engine already runs under it.

Lifecycle, the same for all: ``start()`` (once; returns the stand-in), ``close()`` (idempotent, also
before ``start``), use as a context manager, ``resource`` (the VISA resource string a driver opens, known
once started) and ``identity`` (what the real instrument answers to ``*IDN?`` or its equivalent).
Building a stand-in never changes the plant: where an instrument has an output, it starts out in the
state the plant is in, as an instrument that was already running when the test connected.
"""

from __future__ import annotations

import threading
from abc import abstractmethod
from typing import Protocol, Self

from harness.lifecycle import Lifecycle
from harness.sim.plant import Plant


class Server(Protocol):
    """What serves a stand-in: a transport with a resource string (``ScpiTcpServer``, a ``PtyServer``,
    ``ModbusStandIn``)."""

    @property
    def resource(self) -> str: ...

    def start(self) -> object: ...

    def close(self) -> None: ...


class StandIn(Lifecycle):
    """The lifecycle every stand-in shares; subclasses say who they are and what serves them."""

    def __init__(self, plant: Plant, lock: threading.RLock) -> None:
        self.plant = plant
        self.lock = lock
        self._server: Server | None = None
        self._closed = False

    @property
    @abstractmethod
    def identity(self) -> str:
        """The instrument's identification text, in the real vendor's format."""

    @abstractmethod
    def _make_server(self) -> Server:
        """A new, unstarted server for this stand-in (called once, by :meth:`start`)."""

    @property
    def resource(self) -> str:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} not started")
        return self._server.resource

    def start(self) -> Self:
        if self._closed or self._server is not None:
            raise RuntimeError("a stand-in starts once")
        server = self._make_server()
        server.start()
        self._server = server
        return self

    def close(self) -> None:
        """Stop serving; idempotent. The plant is left as it is (closing is not a safe-state action)."""
        self._closed = True
        if self._server is not None:
            self._server.close()

