"""Put a lab bench in a sequence's starting state through its drivers: :func:`prepare_bench`.

On the simulated bench the plant is built from ``[initial]``. On a lab bench the fleet is what is
wired to the battery emulator (its size, makes and state of health are the operator's to prepare, and
so is a PV simulator's profile); what the drivers can set, gridhil sets before the clock starts:

- every battery-emulator channel's SOC (``set_initial_soc``), and its output on (the safe state a
  previous run ended in switched them off);
- the grid simulator in fixed mode with its output relay closed (a list or an outage of the last run
  must not carry over), its voltage and frequency, and its output (off when ``voltage_pu = 0``);
- the electronic load drawing the profile's starting level (the run plays the whole profile, in the
  load's own modes, at its time zero: :func:`play_profile`);
- then the controller is enabled with no dispatch, asked to reconnect if the run starts on the grid
  (a planned island of the last run holds the plant islanded until asked), and setup waits (up to
  ``settle_timeout_s`` of wall time) until it reports the steady mode the grid implies
  (grid-connected, or islanded when the grid is off) and the racks draw what the profile asks at its
  start, or the controller's cap when lower (within 1 %), both for a second: a run starts from a
  steady plant, not from the aftermath of the last one (whose safe state switched the battery
  outputs off).
"""

from __future__ import annotations

import time
from itertools import pairwise

from drivers.chroma_17040 import BatteryEmulator
from drivers.chroma_61800 import GridSimulator
from drivers.chroma_63200 import LIST_STEPS_MAX, ElectronicLoad, LoadStep
from drivers.controller_link import ControllerLink, ControllerMode
from harness.bench_file import Bench
from harness.sequence import Initial
from harness.sim.load import CheckpointDips, Constant, Profile, Steps, TrainingSwings


class BenchSetupError(Exception):
    """A sequence's starting state cannot be set up on this bench; the message says what and why."""


SETTLE_TIMEOUT_S = 120.0
"""Long enough for a black start, a stable-grid hold, resynchronisation and racks that dropped to
restart (tens of seconds each on a real plant)."""
SETTLE_POLL_S = 0.2
RACKS_DRAWING = 0.99
"""Share of the profile's starting power the load must draw for the racks to count as back: within
``load_served``'s 1 % meter deadband, so a run does not start while racks still ramp after a restart
(their deficit would be judged as the run's)."""
SETTLED_HOLD_S = 1.0
"""How long the plant must stay settled before the run starts, so a reading on its way through is
not taken for the steady state."""


def prepare_bench(initial: Initial, bench: Bench, *, settle_timeout_s: float = SETTLE_TIMEOUT_S) -> None:
    """Set what the drivers can of ``initial`` (see the module doc), in that order, and wait for the
    plant to settle; :class:`BenchSetupError` naming what it waited for when it does not."""
    rated_w, nominal_v = ratings(bench)
    battery: BatteryEmulator = bench["battery"]
    for channel in range(1, battery.channels + 1):
        battery.set_initial_soc(channel, initial.soc * 100.0)
        battery.set_output(channel, True)
    grid: GridSimulator = bench["grid"]
    grid.stop_list()  # a list the last run left playing
    grid.restore()  # the output relay a grid outage of the last run left open
    if initial.grid.voltage_pu > 0.0:
        grid.set_voltage(initial.grid.voltage_pu * nominal_v)
        grid.set_frequency(initial.grid.frequency_hz)
        grid.output(True)
    else:
        grid.output(False)
    profile = initial.load.build()
    load: ElectronicLoad = bench["load"]
    load.constant_power(profile.fraction(0.0) * rated_w)
    load.on()
    controller: ControllerLink = bench["controller"]
    controller.enable()
    controller.set_dispatch(0.0)
    expected = ControllerMode.GRID_CONNECTED if initial.grid.voltage_pu > 0.0 else ControllerMode.ISLANDED
    if expected is ControllerMode.GRID_CONNECTED:
        controller.reconnect()  # a planned island of the last run waits for this; connected, it is a no-op
    starting_w = profile.fraction(0.0) * rated_w

    def settled() -> str | None:
        status = controller.status()
        if status.mode is not expected:
            return f"the controller reports {status.mode.name}, not {expected.name}"
        cap_w = status.power_cap_w
        wanted_w = RACKS_DRAWING * (starting_w if cap_w is None else min(starting_w, cap_w))
        drawing_w = load.measure().power_w
        if drawing_w < wanted_w:
            return f"the racks draw {drawing_w:g} W, not yet {wanted_w:g} W"
        return None

    deadline = time.monotonic() + settle_timeout_s
    settled_since: float | None = None
    while True:
        waiting_for = settled()
        now = time.monotonic()
        if waiting_for is not None:
            settled_since = None
        elif settled_since is None:
            settled_since = now
        elif now - settled_since >= SETTLED_HOLD_S:
            return
        if now > deadline:
            waiting_for = waiting_for or f"settled for only {now - (settled_since or now):.1f} s"
            raise BenchSetupError(f"the bench did not settle within {settle_timeout_s:g} s: {waiting_for}")
        time.sleep(SETTLE_POLL_S)


def ratings(bench: Bench) -> tuple[float, float]:
    """The racks' rated power (W) and the rack bus's nominal line-to-neutral voltage (V), from ``[bench]``."""
    spec = bench.spec
    missing = [
        key
        for key, value in (("racks_rated_w", spec.racks_rated_w), ("nominal_phase_v", spec.nominal_phase_v))
        if value is None
    ]
    if missing:
        raise BenchSetupError(
            f"{spec.source}: [bench] needs {' and '.join(missing)} to run a sequence "
            "(load levels are shares of the racks' rated power; bus voltage is judged in pu)"
        )
    assert spec.racks_rated_w is not None and spec.nominal_phase_v is not None
    return spec.racks_rated_w, spec.nominal_phase_v


def play_profile(load: ElectronicLoad, profile: Profile, rated_w: float, duration_s: float) -> None:
    """Program ``load`` to draw ``profile`` (shares of ``rated_w``) from when it goes on, and switch it on.

    Constant levels use constant power; training swings the dynamic mode (high level for ``duty`` of
    the period, one edge time); checkpoint dips and steps a list that covers ``duration_s``, the
    static power holding after it.
    """
    match profile:
        case Constant(level=level):
            load.constant_power(level * rated_w)
        case TrainingSwings(jitter=jitter) if jitter > 0.0:
            raise BenchSetupError(
                f"training_swings with jitter {jitter:g}: an electronic load's dynamic mode repeats one "
                "iteration exactly; use jitter = 0 on a lab bench"
            )
        case TrainingSwings(period_s=period_s, duty=duty, low=low, high=high, edge_s=edge_s):
            high_s = duty * period_s
            load.dynamic(low * rated_w, high * rated_w, period_s - high_s, high_s, edge_s)
        case CheckpointDips(base=float() | int() as base):
            load.constant_power(base * rated_w)
            load.program(_dip_steps(profile, float(base), rated_w, duration_s))
        case Steps(points=points):
            load.constant_power(points[-1][1] * rated_w)
            steps = [LoadStep(0.0, points[0][0])] if points[0][0] > 0.0 else []
            steps += [
                LoadStep(level * rated_w, next_t - t)
                for (t, level), (next_t, _) in pairwise(points)
            ]
            if steps:
                load.program(_fits(steps))
        case _:
            raise BenchSetupError(f"load profile {profile!r} has no electronic-load equivalent")
    load.on()


def _dip_steps(dips: CheckpointDips, base: float, rated_w: float, duration_s: float) -> list[LoadStep]:
    """Base for a full interval, then dip and base again every interval, until ``duration_s``."""
    steps = [LoadStep(base * rated_w, dips.interval_s)]
    t_s = dips.interval_s
    while t_s < duration_s:
        steps += [
            LoadStep(dips.level * rated_w, dips.duration_s),
            LoadStep(base * rated_w, dips.interval_s - dips.duration_s),
        ]
        t_s += dips.interval_s
    return _fits(steps)


def _fits(steps: list[LoadStep]) -> list[LoadStep]:
    if len(steps) > LIST_STEPS_MAX:
        raise BenchSetupError(
            f"the load profile needs {len(steps)} list steps over the run; the load holds {LIST_STEPS_MAX}"
        )
    return steps
