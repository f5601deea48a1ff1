"""What every fuzz example must keep true as it runs: the steady-power criteria with the library's limits.

The fuzzer judges these on the trace recorded so far after every rule, so an example stops at the first
rule after which one fails. Each is monotone in the trace's length (a failure on a prefix is a failure
of the whole), which is what makes a failure found part way a failure of the written sequence too.

Five judgements hold only where they are a fair demand, so they are judged over a window:

- smoothing (the grid must not see the racks' swings: ``grid_ramp``, the library's 150 kW/s over 0.5 s;
  the reference holds 120 kW/s, unsmoothed swings reach 200 kW/s at 24 packs and more on larger fleets)
  in an example that starts on the grid, from :data:`SMOOTHING_FROM_S` (the smoothing taking hold) until
  the first action after which the grid may see a step whatever the controller does: a grid loss, a
  sag, a planned island, a PCS unit trip (no headroom left to absorb a swing) or a cloud; where the
  racks swing (a ``training_swings`` profile) from a charged start (SOC >= 0.5), also the share of
  their swing energy that reaches the grid (``grid_band_energy``, the library's 0.2), which a swing
  too small to break the ramp limit still shows, once the stretch lasts 10 s and until a dispatch
  step too;
- an even drain (``sharing_balance``) over every stretch the plant is surely islanded (an islanded
  start or a grid loss, until the grid returns) in an example with no PV and well above the reserve,
  so that every pack discharges, from :data:`SHARING_FROM_S` after the island began or after a pack
  fault or degradation step within it, until the next one;
- the pack contract (``fault_isolation``, ``isolation_current``) until a pack holds a welded contactor
  and a latched fault together: nobody can open that pack (the library's welded-contactor sequence
  judges no pack criterion either);
- the SOC bounds (``soc_bounds``) until a pack's SOC estimate first drifts: the islanded reserve is
  judged on the fleet SOC the controller reports, which a drift moves at once with no charge moving
  (a -7 % drift on one of 24 packs put a fleet held at its 0.15 reserve at 0.1493); what a drift must
  not cause is the library's soc-estimator-drift sequence's to judge;
- a silent BMS taken out of service (``silent_bms``, the library's bms-comms-loss limits) in an example
  that cuts a BMS link, until a pack holds a welded contactor and a cut link together: that pack can only
  be derated, and a derated pack still carries current when the others cannot take the load. Only such an
  example needs it, and only a simulated bench draws one: its battery emulator records the cut, where a
  lab's (a real 17040) cannot tell it and ``silent_bms`` could not judge.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from harness.fuzz.draft import Draft
from harness.fuzz.draws import GRID_BREAKER_RELAY
from harness.sequence import Criterion, Step
from harness.verdict import Verdict

INVARIANTS: tuple[Criterion, ...] = (
    Criterion("itic", {"profile": "itic"}),
    Criterion("load_served", {"max_unserved_j": 0}),
    Criterion("frequency_band", {"low_hz": 59.3, "high_hz": 60.5}),
    Criterion("soc_bounds", {"min_soc": 0.05, "max_soc": 0.95, "reserve_soc": 0.15}),
    Criterion("isolation_current", {"max_current_a": 0.5, "deadline_s": 0.5}),
    Criterion("fault_isolation", {"deadline_s": 2.0}),
    Criterion("resync", {"max_dv_pu": 0.05, "max_df_hz": 0.1, "max_dtheta_deg": 10.0}),
)
"""The criteria and limits of the library's sequences (harness/sequences/library), in one place."""


SMOOTHING_FROM_S = 10.0
SMOOTHING_LIMITS = {"limit_w_per_s": 150.0e3, "window_s": 0.5}
SMOOTHING_ENDS = ("grid.outage", "grid.play", "controller.planned_island", "relays.on")
"""Steps after which the grid-side power may jump whatever the controller does (``relays.on``: a PCS unit
trips or the utility's breaker opens); a cloud ends the stretch too."""
SWING_LIMITS = {"max_share": 0.2, "band_hz": [0.1, 20.0]}
"""The library's training-swings-smoothing limits: at most a fifth of the racks' swing energy on the
grid (the reference lets through a few %, plain power mode all of it)."""
SWING_LEAST_S = 10.0
"""The band's 0.1 Hz bottom needs 10 s of trace (``grid_band_energy``)."""
SWING_LEAST_SOC = 0.5
"""Swings are judged from a charged start: smoothing them takes discharging on their peaks, which a
fleet at its reserve must not do (the reference then lets 0.79 of the swing energy through)."""
SWING_ENDS = (*SMOOTHING_ENDS, "controller.set_dispatch")
"""As :data:`SMOOTHING_ENDS`, and a dispatch step: its ramp is grid-side energy the racks did not
swing."""
SHARING_FROM_S = 5.0
SHARING_LEAST_S = 10.0
SHARING_LIMITS = {"min_ratio": 0.8, "reserve_soc": 0.15}
SHARING_LEAST_SOC = 0.5
SHARING_ENDS = ("battery.", "grid.")
"""Steps (by prefix) after which packs may stop discharging or be shared unevenly for a reason: a pack
fault or degradation, the grid coming back."""
PACK_CONTRACT = ("fault_isolation", "isolation_current")
LATCHING = ("isolation", "thermal")
"""Inserted faults that latch a BMS fault (a thermal one once the pack is hot enough)."""
SILENT_BMS = Criterion("silent_bms", {"deadline_s": 5.0, "max_current_a": 0.5})
"""The library's bms-comms-loss limits."""
LINK_CUT = "comms"
"""The inserted fault that cuts a pack's BMS link."""
DRIFT = "drift"
"""The inserted fault that offsets a pack's reported SOC."""


def invariants_for(draft: Draft, now_s: float) -> tuple[Criterion, ...]:
    """The invariants of ``draft`` at ``now_s``: :data:`INVARIANTS` (the pack contract only until a welded
    pack latches a fault: no controller can open it; the SOC bounds until an SOC drift), ``grid_ramp``,
    ``grid_band_energy`` and ``sharing_balance`` over the stretches where they are judged, once long
    enough, and ``silent_bms`` once a BMS link is cut."""
    ends_s = {name: welded_fault_s(draft) for name in PACK_CONTRACT}
    ends_s["soc_bounds"] = next((t_s for t_s, _, kinds in draft.faults() if DRIFT in kinds), None)
    base = tuple(
        criterion if ends_s.get(criterion.name) is None else _until(criterion, ends_s[criterion.name])
        for criterion in INVARIANTS
    )
    return (
        *base,
        *_smoothing(draft, now_s),
        *_swings(draft, now_s),
        *_sharing(draft, now_s),
        *_silent_bms(draft),
    )


def _until(criterion: Criterion, until_s: float) -> Criterion:
    return Criterion(criterion.name, {**criterion.limits, "window": [0.0, until_s]})


def _stretch(
    name: str, limits: Mapping[str, object], from_s: float, until_s: float, least_s: float
) -> tuple[Criterion, ...]:
    """``name`` judged over ``[from_s, until_s]``, if that lasts at least ``least_s``."""
    if until_s - from_s < least_s:
        return ()
    return (Criterion(name, {**limits, "window": [from_s, until_s]}),)


def _smoothing(draft: Draft, now_s: float) -> tuple[Criterion, ...]:
    """``grid_ramp`` from :data:`SMOOTHING_FROM_S` on an example that starts on the grid, until a step of
    :data:`SMOOTHING_ENDS` or a cloud."""
    if not draft.start.grid_live:
        return ()
    until_s = _grid_quiet_until(draft, now_s, SMOOTHING_ENDS)
    return _stretch("grid_ramp", SMOOTHING_LIMITS, SMOOTHING_FROM_S, until_s, SMOOTHING_LIMITS["window_s"])


def _swings(draft: Draft, now_s: float) -> tuple[Criterion, ...]:
    """``grid_band_energy`` over the smoothing stretch (from :data:`SMOOTHING_FROM_S`, until a step of
    :data:`SWING_ENDS` or a cloud) of an example that starts charged on the grid with swinging racks,
    once it lasts :data:`SWING_LEAST_S`: a share of swing energy needs swings to share."""
    start = draft.start
    if not start.grid_live or start.load["profile"] != "training_swings" or start.soc < SWING_LEAST_SOC:
        return ()
    until_s = _grid_quiet_until(draft, now_s, SWING_ENDS)
    return _stretch("grid_band_energy", SWING_LIMITS, SMOOTHING_FROM_S, until_s, SWING_LEAST_S)


def _grid_quiet_until(draft: Draft, now_s: float, ends: tuple[str, ...]) -> float:
    """The first step of ``ends`` or cloud, if any before ``now_s``: where the grid may jump whatever
    the controller does."""
    return min([s.at_s for s in draft.steps if s.call in ends] + [c.at_s for c in draft.clouds] + [now_s])


def _sharing(draft: Draft, now_s: float) -> tuple[Criterion, ...]:
    """``sharing_balance`` over every stretch the plant is surely islanded (an islanded start, or a grid
    loss, until the grid returns), from :data:`SHARING_FROM_S` after it began or after a step of
    :data:`SHARING_ENDS` within it, until the next such step, once it lasts :data:`SHARING_LEAST_S`;
    in an example with no PV (every pack discharges), from a charged start of a fleet not aged further
    (the reference's 100 W least command drains packs past their ageing knee too fast: docs/fuzz.md)."""
    start = draft.start
    if start.pv_rated_w > 0.0 or start.soc < SHARING_LEAST_SOC or start.aged_years > 0.0:
        return ()
    stretches: list[tuple[float, float]] = []
    since_s = None if start.grid_live else 0.0
    for step in draft.steps:
        change = _grid_change(step)
        if change is None and not step.call.startswith(SHARING_ENDS):
            continue
        if since_s is not None:
            stretches.append((since_s + SHARING_FROM_S, step.at_s))
        islanded = since_s is not None if change is None else change == "lost"
        since_s = step.at_s if islanded else None
    if since_s is not None:
        stretches.append((since_s + SHARING_FROM_S, now_s))
    return tuple(
        criterion
        for from_s, until_s in stretches
        for criterion in _stretch("sharing_balance", SHARING_LIMITS, from_s, until_s, SHARING_LEAST_S)
    )


def _grid_change(step: Step) -> str | None:
    """``"lost"`` or ``"back"`` for a step that takes the grid away or brings it back, else None."""
    breaker = step.args.get("relay") == GRID_BREAKER_RELAY
    if step.call == "grid.outage" or (step.call == "relays.on" and breaker):
        return "lost"
    if step.call in ("grid.restore", "grid.output") or (step.call == "relays.off" and breaker):
        return "back"
    return None


def _silent_bms(draft: Draft) -> tuple[Criterion, ...]:
    """:data:`SILENT_BMS` in an example that cuts a BMS link, until a welded pack's link is cut."""
    if not any(LINK_CUT in kinds for _, _, kinds in draft.faults()):
        return ()
    cut_s = welded_with_s(draft, (LINK_CUT,))
    return (SILENT_BMS if cut_s is None else _until(SILENT_BMS, cut_s),)


def welded_fault_s(draft: Draft) -> float | None:
    """When a pack first held a welded contactor and a latching fault together, if ever."""
    return welded_with_s(draft, LATCHING)


def welded_with_s(draft: Draft, kinds: Iterable[str]) -> float | None:
    """When a pack first held a welded contactor and one of the faults ``kinds`` together, if ever."""
    wanted = set(kinds)
    together = (t_s for t_s, _, held in draft.faults() if "weld" in held and held & wanted)
    return next(together, None)


def criterion_name(verdict: Verdict) -> str:
    """The criterion a verdict came from (``itic[itic]`` -> ``itic``)."""
    return verdict.name.split("[", 1)[0]


def failed_first(criteria: Iterable[Criterion], failed: Mapping[str, Verdict]) -> tuple[Criterion, ...]:
    """``criteria``, the failed ones first: what a written failing sequence is judged by."""
    return tuple(sorted(criteria, key=lambda criterion: criterion.name not in failed))


class InvariantBroken(AssertionError):
    """An invariant failed at ``reached_s``: the example so far (``draft``), the invariants it was judged
    by and the failed verdicts."""

    def __init__(
        self, draft: Draft, reached_s: float, criteria: Iterable[Criterion], failed: Mapping[str, Verdict]
    ) -> None:
        self.draft = draft
        self.reached_s = reached_s
        self.criteria = failed_first(criteria, failed)
        self.failed = dict(failed)
        details = "; ".join(f"{name}: {verdict.detail}" for name, verdict in failed.items())
        super().__init__(f"at {reached_s:g} s after {len(draft.steps)} steps: {details}")
