"""The simulated bench: every stand-in instrument on a free loopback port around one plant.

``SimBench`` is what a lab bench is on a laptop: a battery emulator, a grid simulator, an
electronic load, a power analyzer at the rack bus, a PCC meter, a fault-insertion relay box and
the PCS/BMS face a controller connects to, each a real server speaking its instrument's protocol,
all reading and writing the same :class:`~harness.sim.plant.Plant` under one lock.

Time has two modes. In lock-step (tests, CI) the owner calls :meth:`SimBench.advance` and the plant
moves only then, so a run is as fast as its I/O and the same seed gives the same trace. In real
time (``gridhil sim``) :meth:`SimBench.run_realtime` advances the plant by the wall-clock time
that passed, for controllers that run as their own process.
"""

from __future__ import annotations

import json
import math
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Self

from harness.lifecycle import Lifecycle
from harness.sim.plant import BusState, Plant, PlantConfig
from harness.sim.standins.battery import BatteryEmulator
from harness.sim.standins.electronic_load import ElectronicLoad
from harness.sim.standins.grid_simulator import GridSimulator
from harness.sim.standins.pcc_meter import PccMeter
from harness.sim.standins.pcs_face import PcsFace
from harness.sim.standins.power_analyzer import PowerAnalyzer
from harness.sim.standins.relay_box import RelayBox

LOOPBACK = "127.0.0.1"
REALTIME_TICK_S = 0.01
REALTIME_MAX_STEP_S = 0.1
"""A stalled process catches up in steps no longer than this, so transfers stay resolved."""


@dataclass(frozen=True)
class Role:
    """One bench role: the driver a bench file names for it and the stand-in that plays it."""

    name: str
    driver: str
    standin: type
    options: str = ""
    """The role's ``options`` in the bench file (a TOML inline table), for what the stand-in offers."""


ROLES: tuple[Role, ...] = (
    Role("battery", "chroma-17040", BatteryEmulator, "{ channel_lists = true }"),
    Role("grid", "chroma-61800", GridSimulator),
    Role("load", "chroma-63200", ElectronicLoad),
    Role("load_meter", "yokogawa-wt", PowerAnalyzer),
    Role("pcc_meter", "sunspec-meter", PccMeter),
    Role("relays", "numato-relay", RelayBox),
)
CONTROLLER_DRIVER = "gridhil-controller"


def free_loopback_port(host: str = LOOPBACK) -> int:
    """A TCP port nobody listens on right now, for a server that another process will start."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class SimBench(Lifecycle):
    """Every stand-in of a bench around one plant; start, advance, close."""

    def __init__(self, config: PlantConfig | None = None, *, plant: Plant | None = None) -> None:
        self.config = config or PlantConfig()
        self.plant = plant if plant is not None else Plant.build(self.config)
        self.lock = threading.RLock()
        self.standins = {role.name: role.standin(self.plant, self.lock) for role in ROLES}
        self.pcs_face = PcsFace(self.plant, self.lock)
        self._analyzer: PowerAnalyzer = self.standins["load_meter"]
        self._stack: ExitStack | None = None

    def start(self) -> Self:
        """Start every stand-in; if one fails, the ones already started are closed again."""
        if self._stack is not None:
            raise RuntimeError("SimBench already started")
        with ExitStack() as stack:
            for standin in self._all():
                stack.enter_context(standin)
            self._stack = stack.pop_all()
        return self

    def close(self) -> None:
        """Close every stand-in, even when one fails to close; idempotent."""
        stack, self._stack = self._stack, None
        if stack is not None:
            stack.close()


    def _all(self) -> Iterator[object]:
        yield from self.standins.values()
        yield self.pcs_face

    @property
    def resources(self) -> dict[str, str]:
        """Role name -> the resource string its driver opens."""
        return {name: standin.resource for name, standin in self.standins.items()}

    def advance(self, dt: float) -> BusState:
        """Step the plant by ``dt`` under the lock; the analyzer integrates every sub-step, as a real one
        integrates the bus continuously (a transfer inside the step is averaged, not sampled at its end)."""
        with self.lock:
            return self.plant.step(dt, self._analyzer.sample)

    def run_realtime(self, stop: threading.Event, tick_s: float = REALTIME_TICK_S) -> None:
        """Advance the plant with the wall clock until ``stop`` is set.

        ``stop`` is also heeded between catch-up steps: a plant that falls behind the wall clock (1 ms
        sub-steps through a long dead bus on a loaded machine) never catches up, and must still stop.
        """
        last = time.monotonic()
        while not stop.wait(tick_s):
            now = time.monotonic()
            elapsed, last = now - last, now
            while elapsed > 0 and not stop.is_set():
                step = min(elapsed, REALTIME_MAX_STEP_S)
                self.advance(step)
                elapsed -= step

    def bench_file(self, controller_resource: str, name: str = "gridhil simulated bench") -> str:
        """The TOML bench file that points drivers at these stand-ins (DESIGN, "Bench file")."""
        lines = [
            "# Written by gridhil for its simulated bench: every address below is a stand-in on loopback.",
            "[bench]",
            f"name = {_toml_string(name)}",
            f"racks_rated_w = {self.plant.load.rated_w!r}",
            f"nominal_phase_v = {self.plant.grid.nominal_voltage_v / math.sqrt(3.0)!r}",
            "",
        ]
        for role in ROLES:
            lines += [
                f"[roles.{role.name}]",
                f"driver = {_toml_string(role.driver)}",
                f"resource = {_toml_string(self.standins[role.name].resource)}",
                *([f"options = {role.options}"] if role.options else []),
                "",
            ]
        lines += [
            "[roles.controller]",
            f"driver = {_toml_string(CONTROLLER_DRIVER)}",
            f"resource = {_toml_string(controller_resource)}",
            "",
            "[sim]",
            f"pcs = {_toml_string(self.pcs_face.resource)}",
            f"seed = {self.config.seed}",
            f"packs = {self.plant.packs.n}",
        ]
        return "\n".join(lines) + "\n"


def _toml_string(text: str) -> str:
    """A TOML basic string: JSON's escaping is a subset TOML accepts."""
    return json.dumps(text, ensure_ascii=False)

