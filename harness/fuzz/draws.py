"""What the fuzzer draws, and from which ranges: the starting plant and each rule's arguments.

Ranges are realistic (the library's sequences and reference/domain.md) and chosen so that a failing
invariant means a controller bug, not physics: a fleet cannot run empty in an example (SOC starts at
0.5-0.9, or just above the reserve, and an example lasts at most :data:`MAX_DURATION_S`); a sag is
either deep enough for the plant to island or within what ITIC lets the racks ride behind a closed
breaker (:data:`SAG_BANDS`); at most :data:`MAX_TRIPPED_UNITS` of the four PCS units trip and at most
a quarter of the packs fault at once.
Values come on coarse grids (0.1 s, 1 %) so written sequences read well and shrink to round numbers.
"""

from __future__ import annotations

from hypothesis import strategies as st

from harness.fuzz.draft import Start

MAX_DURATION_S = 90.0
"""Longest example (simulated time)."""
LEAD_IN_S = (2.0, 10.0)
"""Time before the first rule: the plant settles on its starting state."""
GAP_S = (0.5, 20.0)
"""Time from one rule's step to the next."""
TYPICAL_GAP_S = 5.0
"""The gap hypothesis shrinks towards: long enough for a transition to show, so that a minimal example
is a few rules 5 s apart rather than many rules crowded at the shortest gap."""
TICK_S = 0.1
"""Grid of every drawn time (the control period: steps land on control cycles)."""
OUTAGE_MAX_S = 30.0
"""A grid outage longer than this is restored by the next rule (or left open at the example's end)."""
SAG_GAP_S = 2.5
"""Least time after a sag before the next rule: the grid simulator's list has ended by then."""
PCS_UNITS = 4
"""PCS units behind the fault-insertion relays 0-3 (harness.sim.standins.wiring)."""
MAX_TRIPPED_UNITS = PCS_UNITS - 1
GRID_BREAKER_RELAY = 4
"""The relay wired to the utility's breaker upstream of the PCC."""
FAULTED_SHARE = 0.25
"""At most this share of the packs carry an inserted fault at once."""
FAULT_KINDS = ("isolation", "thermal", "weld", "open", "comms", "drift")
THERMAL_W = (5e3, 1e6)
"""Internal heat of a thermal fault (the library's thermal event: 1 MW)."""
DRIFT_PCT = (-20.0, 20.0)
"""SOC-estimator drift (the library: +20 %)."""
CAPACITY_FACTOR = (0.4, 1.0)
"""A degradation step's capacity, as a share of the pack's present capacity (knee: 40 % of new)."""
RESISTANCE_FACTOR = (1.0, 5.0)
"""A degradation step's DC resistance, as a multiple of the pack's present one (library: 2.5-5x)."""
DISPATCH_SHARE = (-0.5, 0.5)
"""Grid-connected dispatch, as a share of the racks' rated power (+ discharge)."""
PV_RATED_W = (1e6, 10e6)
"""PV plant at reference scale (805 packs), scaled with the fleet like every rating. At most 10 MW: an
unplanned island must take the PV surplus onto the 12 MW PCS at once, and its 0.6 Hz/pu droop leaves
the 60.5 Hz band beyond about 0.83 of its rating; the simulated PV has no over-frequency droop of its
own to help (docs/fuzz.md, finding 5), so a larger plant would find the model's limit, not the
controller's."""
GRID_HOW = ("simulator", "breaker")
"""How the grid is lost: the grid simulator's output relay, or the utility breaker's relay."""
NOMINAL_HZ = 60.0
CLOUD_S = (2.0, 30.0)
"""How long a cloud holds its depth."""
CLOUD_RAMP_S = (0.0, 10.0)
"""How long a cloud takes to come and to go."""
LOAD_LEVEL = (0.05, 1.0)
"""A load step's level, as a share of the racks' rated power."""


def ticks(low_s: float, high_s: float, simplest_s: float | None = None) -> st.SearchStrategy[float]:
    """A time in ``[low_s, high_s]`` on the :data:`TICK_S` grid that shrinks towards ``simplest_s``
    (default ``low_s``)."""
    origin = round((low_s if simplest_s is None else simplest_s) / TICK_S)
    offsets = st.integers(round(low_s / TICK_S) - origin, round(high_s / TICK_S) - origin)
    return offsets.map(lambda n: round((origin + n) * TICK_S, 1))


def shares(low: float, high: float, step: float = 0.01) -> st.SearchStrategy[float]:
    """A value in ``[low, high]`` on a grid of ``step``."""
    digits = len(f"{step:g}".partition(".")[2])
    return st.integers(round(low / step), round(high / step)).map(lambda n: round(n * step, digits))


@st.composite
def training_swings(draw: st.DrawFn) -> dict[str, object]:
    period_s = draw(shares(0.5, 3.0, 0.1))
    duty = draw(shares(0.3, 0.8, 0.05))
    edge_limit_s = min(duty, 1.0 - duty) * period_s
    return {
        "profile": "training_swings",
        "period_s": period_s,
        "duty": duty,
        "low": draw(shares(0.1, 0.4)),
        "high": draw(shares(0.6, 1.0)),
        "edge_s": draw(shares(0.05, min(0.2, round(edge_limit_s, 2)))),
    }


LOAD_TABLES = st.one_of(
    shares(0.1, 1.0).map(lambda level: {"profile": "steps", "points": [[0.0, level]]}),
    shares(0.1, 1.0).map(lambda level: {"profile": "constant", "level": level}),
    training_swings(),
    st.fixed_dictionaries(
        {
            "profile": st.just("checkpoint_dips"),
            "base": shares(0.6, 1.0),
            "interval_s": shares(20.0, 60.0, 1.0),
            "duration_s": shares(5.0, 15.0, 1.0),
            "level": shares(0.05, 0.3),
        }
    ),
)
"""The racks' profile: ``steps`` (load-step rules add points to it) or a swinging one."""
START_SOC = st.one_of(shares(0.5, 0.9), shares(0.1505, 0.153, 0.0005))
"""Charged, or just above the 0.15 reserve (the library's unplanned-island-at-reserve)."""


def starts(packs: int, *, pv: bool = True) -> st.SearchStrategy[Start]:
    """The starting plant of ``packs`` packs; without ``pv`` (a lab bench) no PV plant."""
    return st.builds(
        Start,
        packs=st.just(packs),
        seed=st.integers(0, 999),
        soh_mean=shares(0.6, 0.9),
        aged_years=st.integers(0, 10).map(float),
        soc=START_SOC,
        load=LOAD_TABLES,
        pv_rated_w=st.one_of(st.just(0.0), shares(*PV_RATED_W, 0.5e6)) if pv else st.just(0.0),
        grid_live=st.booleans().map(lambda dead: not dead),
    )


SAG_BANDS = (((0.0, 0.65), 2.0), ((0.72, 0.78), 0.45), ((0.82, 0.88), 2.0))
"""(residual pu range, longest duration s) of the sags drawn, each band kept 0.02-0.05 pu inside an
ITIC level: below 0.7 pu the plant's static switch islands within the PSUs' hold-up; at 0.7-0.8 pu ITIC
allows 0.5 s and at 0.8-0.9 pu 10 s, which the racks ride behind the closed breaker."""


@st.composite
def sags(draw: st.DrawFn) -> tuple[float, float]:
    """(residual pu, duration s) of a grid sag from :data:`SAG_BANDS`."""
    (low, high), longest_s = draw(st.sampled_from(SAG_BANDS))
    return draw(shares(low, high)), draw(shares(0.02, longest_s))


def fault_values(kind: str) -> st.SearchStrategy[float | None]:
    """The value an inserted fault takes: heat (W) for thermal, offset (%) for drift, none otherwise."""
    if kind == "thermal":
        return shares(*THERMAL_W, 5e3)
    if kind == "drift":
        return shares(*DRIFT_PCT, 1.0)
    return st.none()
