"""Pack criteria: what the pack manager must do about a pack the instruments see faulted or whose BMS
stopped talking, and how evenly it drains the fleet.

Judged from the battery emulator's own view of each pack (``pack_fault``, ``pack_injected``,
``pack_isolated``, ``pack_soc`` and ``pack_current_a`` come from its channels, not from the controller),
so a controller that does not notice a fault, trusts a BMS that stopped talking, or misjudges a pack's
energy cannot hide it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from drivers.chroma_17040 import InsertedFault
from harness.criteria.signals import Window, evidence, runs
from harness.trace import (
    INJECTED_UNKNOWN,
    PACK_CURRENT_A,
    PACK_FAULT,
    PACK_INJECTED,
    PACK_ISOLATED,
    PACK_SOC,
    Trace,
)
from harness.verdict import Verdict

DEFAULT_ISOLATION_DEADLINE_S = 2.0
"""A first insulation fault in an unearthed DC system is not yet a hazard, a second one is: the pack
is to be off the bus within seconds, not cycles [A]. Two pack reads of the recorder (1 s each)."""


def fault_isolation(
    trace: Trace, *, deadline_s: float = DEFAULT_ISOLATION_DEADLINE_S, window: Window | None = None
) -> Verdict:
    """Every pack seen faulted is disconnected within ``deadline_s`` of the fault first being seen.

    Measured: the longest time a faulted pack stayed connected (to the end of the window if it never
    was disconnected). Resolution: the recorder's pack read period (the time between two reads of a
    channel's state). A pack faulted and disconnected already at the first sample counts 0.
    """
    part = trace if window is None else trace.window(*window)
    faulted = part.channel(PACK_FAULT) != 0
    connected = ~part.channel(PACK_ISOLATED).astype(bool)
    worst_s, worst_pack, worst_at = 0.0, -1, part.start_s
    for pack in np.flatnonzero(faulted.any(axis=0)):
        onset = int(np.argmax(faulted[:, pack]))
        after = connected[onset:, pack]
        still = int(np.argmin(after)) if not after.all() else after.size
        end_s = part.t[onset + still] if still < after.size else part.end_s
        connected_s = float(end_s - part.t[onset])
        if connected_s > worst_s or worst_pack < 0:
            worst_s, worst_pack, worst_at = connected_s, int(pack), float(part.t[onset])
    if worst_pack < 0:
        return Verdict("fault_isolation", True, 0.0, deadline_s, deadline_s, "s", detail="no pack faulted")
    return Verdict.at_most(
        "fault_isolation",
        worst_s,
        deadline_s,
        "s",
        when=(worst_at, worst_at + worst_s),
        reference="[A] pack isolation contract (reference/domain.md §3.4)",
        detail=f"pack {worst_pack} faulted at {worst_at:g} s stayed connected {worst_s:g} s",
        evidence=evidence(part, part.start_s, part.end_s, PACK_FAULT, PACK_ISOLATED),
    )


DEFAULT_SILENT_BMS_DEADLINE_S = 5.0
"""[A] reference/domain.md §3.4 has a pack whose BMS link is lost taken as untrusted and derated or opened
"after a timeout", without a number. Its frozen data hide whatever happens in it (bms-comms-loss inserts an
isolation fault it cannot report), so once the silence is confirmed it is to be handled as a reported
fault is. 5 s = up to 2 s to confirm the silence (a few missed CAN heartbeats; the reference controller
calls a pack stale after 0.5 s of silence and opens it after 2 s) + the 2 s :func:`fault_isolation` gives
a reported fault + 1 s, one pack read of the recorder, by which the opening may be seen late (the loss is
seen up to a read late too, which only shortens what is measured)."""
DEFAULT_SILENT_BMS_MAX_CURRENT_A = 0.5
"""[A] as ``isolation_current``: a derated pack carries no more than a meter's noise."""


def silent_bms(
    trace: Trace,
    *,
    deadline_s: float = DEFAULT_SILENT_BMS_DEADLINE_S,
    max_current_a: float = DEFAULT_SILENT_BMS_MAX_CURRENT_A,
    window: Window | None = None,
) -> Verdict:
    """Every pack whose BMS link is lost is out of service within ``deadline_s`` of the loss first being
    seen, until the link returns: isolated (``pack_isolated``) or carrying at most ``max_current_a``.

    A loss is the COMMS bit of ``pack_injected`` (the conditions the battery emulator inserted); each run
    of samples holding it is one loss, judged from its first sample (the window's first, for a loss
    already seen there) to the first sample without it, or to the window's end. Measured: the longest
    time from a loss first seen to the end of the last sample at which the pack was still in service
    (connected and carrying more than ``max_current_a``, or a current that is no number), 0 when it was
    never; a sample holds until the next. A trace without ``pack_injected``, or where the emulator could
    not tell it (:data:`~harness.trace.INJECTED_UNKNOWN`), cannot be judged and fails.
    """
    part = trace if window is None else trace.window(*window)
    reference = "[A] BMS comms loss: the pack is untrusted, out of service after a timeout (domain.md §3.4)"
    injected = part.channel(PACK_INJECTED) if PACK_INJECTED in part else None
    if injected is None or np.any(injected == INJECTED_UNKNOWN):
        detail = f"{PACK_INJECTED} not recorded: the battery emulator cannot tell which BMS links are cut"
        return Verdict.at_most("silent_bms", math.nan, deadline_s, "s", reference=reference, detail=detail)
    lost = (injected & int(InsertedFault.COMMS)) != 0
    connected = ~part.channel(PACK_ISOLATED).astype(bool)
    in_service = connected & ~(np.abs(part.channel(PACK_CURRENT_A)) <= max_current_a)
    held_until_s = np.append(part.t[1:], part.end_s)
    worst_s, worst_pack, worst_at = 0.0, -1, part.start_s
    for pack in np.flatnonzero(lost.any(axis=0)):
        for run in runs(lost[:, pack]):
            onset, end = run.start, run.stop
            serving = np.flatnonzero(in_service[onset:end, pack])
            served_s = float(held_until_s[onset + serving[-1]] - part.t[onset]) if serving.size else 0.0
            if served_s > worst_s or worst_pack < 0:
                worst_s, worst_pack, worst_at = served_s, int(pack), float(part.t[onset])
    if worst_pack < 0:
        detail = "no BMS link lost"
        return Verdict.at_most("silent_bms", 0.0, deadline_s, "s", reference=reference, detail=detail)
    return Verdict.at_most(
        "silent_bms",
        worst_s,
        deadline_s,
        "s",
        when=(worst_at, worst_at + worst_s),
        reference=reference,
        detail=f"pack {worst_pack}, BMS link lost at {worst_at:g} s, stayed in service {worst_s:g} s",
        evidence=evidence(part, part.start_s, part.end_s, PACK_INJECTED, PACK_ISOLATED, PACK_CURRENT_A),
    )


DEFAULT_MIN_SHARING_RATIO = 0.8
"""[A] The pack that reaches its reserve first stops discharging: its power moves to the others and the
energy they still hold above their reserve waits on it. 0.8 lets the first pack fall 20 % short of the
typical one: room for the plant's scatter (an energy-weighted split measures 0.96-1.0) and for SOC read
to 0.01 % (docs/criteria.md), while splits blind to nameplate measure 0.17-0.32 on a mixed fleet."""
DEFAULT_SHARING_RESERVE_SOC = 0.15
"""The reference controller's default ``ReserveSoC``, as for ``soc_bounds``."""


def sharing_balance(
    trace: Trace,
    *,
    min_ratio: float = DEFAULT_MIN_SHARING_RATIO,
    reserve_soc: float = DEFAULT_SHARING_RESERVE_SOC,
    window: Window | None = None,
) -> Verdict:
    """The fleet drains evenly: every pack would reach ``reserve_soc`` about when the others do.

    For every pack connected (``pack_isolated`` false) and discharging (``pack_current_a`` > 0) at every
    sample of the window: its projected time to the reserve at its present rate, (SOC at the window's
    end - ``reserve_soc``) / SOC fall rate, the rate being the least-squares slope of ``pack_soc`` over
    the window (0 s for a pack already at the reserve, infinite for one whose SOC does not fall).
    Measured: the shortest projected time over the median one (1.0 = perfectly even). A window where no
    pack is connected and discharging throughout cannot be judged and fails.
    """
    part = trace if window is None else trace.window(*window)
    connected = ~part.channel(PACK_ISOLATED).astype(bool).any(axis=0)
    discharging = (part.channel(PACK_CURRENT_A) > 0.0).all(axis=0)
    packs = np.flatnonzero(connected & discharging)
    common: dict[str, Any] = {
        "when": (part.start_s, part.end_s),
        "reference": "[A] even drain by available energy (reference/domain.md §3.4 pack-manager baseline)",
        "evidence": evidence(part, part.start_s, part.end_s, PACK_SOC, PACK_CURRENT_A),
    }
    if len(part) < 2 or not packs.size:
        detail = "no pack connected and discharging throughout the window: nothing to judge"
        return Verdict.at_least("sharing_balance", math.nan, min_ratio, "ratio", detail=detail, **common)
    time_s = _time_to_reserve_s(part.t, part.channel(PACK_SOC)[:, packs], reserve_soc)
    first = int(np.argmin(time_s))
    shortest_s, median_s = float(time_s[first]), float(np.median(time_s))
    ratio = shortest_s / median_s if median_s > 0.0 else math.nan  # inf / inf is NaN too: nothing falls
    detail = (
        f"pack {packs[first]} reaches {reserve_soc:g} SOC first, in {shortest_s:.4g} s at its present rate; "
        f"median {median_s:.4g} s over {packs.size} packs"
    )
    return Verdict.at_least("sharing_balance", ratio, min_ratio, "ratio", detail=detail, **common)


def _time_to_reserve_s(t: np.ndarray, soc: np.ndarray, reserve_soc: float) -> np.ndarray:
    """Per column of ``soc`` (samples x packs): seconds to ``reserve_soc`` from the last sample at the
    least-squares rate of fall; 0 at or below the reserve, infinite where SOC does not fall."""
    centred_t = t - t.mean()
    slope = centred_t @ (soc - soc.mean(axis=0)) / float(centred_t @ centred_t)
    above = np.clip(soc[-1] - reserve_soc, 0.0, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        time_s = above / np.fmax(-slope, 0.0)
    return np.where(above > 0.0, time_s, 0.0)
