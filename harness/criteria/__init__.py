"""Criteria: functions from a :class:`~harness.trace.Trace` to a :class:`~harness.verdict.Verdict`.

``signals`` holds the building blocks (band, step, ramp, settling); ``power`` the steady-power criteria
a sequence names, ``packs`` what the pack manager must do about faulted packs and silent BMSs and how
evenly it drains the fleet. ``CRITERIA`` maps the names a sequence file uses to the functions.
"""

from __future__ import annotations

from collections.abc import Callable

from harness.criteria import packs, power
from harness.trace import Trace
from harness.verdict import Verdict

CRITERIA: dict[str, Callable[..., Verdict]] = {
    "itic": power.itic,
    "load_served": power.load_served,
    "frequency_band": power.frequency_band,
    "rocof": power.rocof,
    "grid_ramp": power.grid_ramp,
    "grid_band_energy": power.grid_band_energy,
    "soc_bounds": power.soc_bounds,
    "isolation_current": power.isolation_current,
    "fault_isolation": packs.fault_isolation,
    "silent_bms": packs.silent_bms,
    "sharing_balance": packs.sharing_balance,
    "settle_time": power.settle_time,
    "resync": power.resync,
}


def judge(trace: Trace, name: str, **limits: object) -> Verdict:
    """Run the criterion a sequence names, with its limits; KeyError names the known criteria."""
    try:
        criterion = CRITERIA[name]
    except KeyError:
        raise KeyError(f"unknown criterion {name!r}; known: {', '.join(sorted(CRITERIA))}") from None
    return criterion(trace, **limits)
