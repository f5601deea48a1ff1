"""One controller at work: read the plant, decide, write back, publish — once per cycle.

``ControllerRunner.cycle(now_s)`` is one control cycle. Who calls it decides the clock: in CI the
harness calls it in lock-step with the plant, between plant steps on the one virtual clock; as its
own process (``gridhil controller``) :meth:`ControllerRunner.run_realtime` calls it every period on
the wall clock.

A restart (``EnableCmd`` 3) plays a controller rebooting: for ``boot_s`` the cycles do nothing (the
plant is not read or commanded; the face publishes a stopped controller whose heartbeat does not move),
then a new controller of the same kind, with no memory of the old one, takes over with the commands
(set-points) as they were.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Self

from harness.controller.face import ControllerFace
from harness.controller.model import ControllerCommands, ControllerStatus
from harness.controller.plant_link import PlantLink
from harness.controller.reference import ReferenceController
from harness.lifecycle import Lifecycle

DEFAULT_BOOT_S = 3.0
"""How long a restarted controller takes to come back (an embedded controller's reboot)."""


class ControllerRunner(Lifecycle):
    """A controller wired to the plant's PCS/BMS face and serving its own face."""

    def __init__(
        self,
        controller: ReferenceController,
        pcs_resource: str,
        *,
        face_host: str = "127.0.0.1",
        face_port: int = 0,
        boot_s: float = DEFAULT_BOOT_S,
    ) -> None:
        self.controller = controller
        self.boot_s = boot_s
        self._booting_until_s: float | None = None
        self.lock = threading.RLock()
        self.status = ControllerStatus()
        self.commands = ControllerCommands()
        self.link = PlantLink(pcs_resource, role="pcs")
        self.face = ControllerFace(self._published, self.commands, self.lock, host=face_host, port=face_port)
        self._opened = False

    def _published(self) -> ControllerStatus:
        return self.status

    @property
    def face_resource(self) -> str:
        return self.face.resource

    def start(self) -> Self:
        self.link.open()
        try:
            self.face.start()
        except BaseException:
            self.link.close()
            raise
        self._opened = True
        return self

    def close(self) -> None:
        """Stop serving and let go of the plant; idempotent."""
        self.face.close()
        self.link.close()
        self._opened = False


    def cycle(self, now_s: float) -> ControllerStatus:
        """One control cycle at controller time ``now_s``."""
        if self._booting(now_s):
            return self.status
        view = self.link.read()
        with self.lock:
            commands = replace(self.commands)
            self.commands.planned_island_requested = False
            self.commands.reconnect_requested = False
        actions, status = self.controller.decide(now_s, view, commands)
        self.link.apply(actions, view)
        with self.lock:
            self.status = status
        return status

    def _booting(self, now_s: float) -> bool:
        """Whether a restart keeps this cycle idle; a requested restart starts one, a finished one
        puts a fresh controller in place."""
        with self.lock:
            if self.commands.restart_requested:
                self.commands.restart_requested = False
                self._booting_until_s = now_s + self.boot_s
                self.status = ControllerStatus()
        if self._booting_until_s is None:
            return False
        if now_s < self._booting_until_s:
            return True
        self._booting_until_s = None
        self.controller = type(self.controller)(self.controller.config)
        return False

    def run_realtime(self, stop: threading.Event) -> None:
        """Cycle every period on the wall clock until ``stop`` is set; a late cycle is not repeated."""
        period = self.controller.config.period_s
        start = time.monotonic()
        next_due = start
        while not stop.is_set():
            self.cycle(time.monotonic() - start)
            next_due += period
            late = time.monotonic() - next_due
            if late > 0:
                next_due += period * (late // period + 1)
            stop.wait(max(0.0, next_due - time.monotonic()))
