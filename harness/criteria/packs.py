"""Pack criteria: what the pack manager must do about a pack the instruments see faulted.

Judged from the battery emulator's own view of each pack (``pack_fault`` and ``pack_isolated`` come
from its channel state, not from the controller), so a controller that does not notice a fault, or
trusts a BMS that stopped talking, cannot hide it.
"""

from __future__ import annotations

import numpy as np

from harness.criteria.signals import Window, evidence
from harness.trace import PACK_FAULT, PACK_ISOLATED, Trace
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
