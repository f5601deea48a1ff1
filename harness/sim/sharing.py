"""Splitting the DC power the PCS asks for across packs that each have their own converter.

:func:`share_power` is weighted water-filling: every pack gets ``level x weight`` capped at its limit,
with one level chosen so that the shares add up to the total. It runs in rounds: spread what is left
over the uncapped packs in proportion to their weights, cap every pack that overshoots, repeat. A
round is a handful of whole-array operations and the first one usually places everything; a strong
pack is never held down to a weak pack's limit. After ``ROUNDS`` rounds the rest is placed exactly
from the packs sorted by the level at which each reaches its cap, so the cost stays bounded.
"""

from __future__ import annotations

import math

import numpy as np

from harness.sim.packs import PackArray

ROUNDS = 8
"""Proportional rounds before the exact (sorting) fill takes over."""


def share_power(
    total_w: float, weights: np.ndarray, discharge_limit_w: np.ndarray, charge_limit_w: np.ndarray
) -> np.ndarray:
    """Per-pack terminal power (W, + = discharge) adding up to ``total_w`` within each pack's limit.

    Weights that are not finite or not positive count as 0. Packs of zero weight take power only
    when the weighted packs are all at their limits, then in proportion to their limits; if every
    weight is 0 the whole split is in proportion to the limits. A pack with a zero limit gets
    nothing. If ``|total_w|`` exceeds the sum of the limits, every pack is at its limit and the
    caller sees the shortfall in the sum.
    """
    if not math.isfinite(total_w):
        raise ValueError(f"total power must be finite, got {total_w!r}")
    discharging = total_w >= 0.0
    limit = np.fmax(discharge_limit_w if discharging else charge_limit_w, 0.0)  # NaN limits count as 0
    target = abs(total_w)
    if target == 0.0:
        return np.zeros(limit.shape)
    share = _water_fill(target, weights, limit) if limit.sum() > target else limit
    return share if discharging else -share


def _water_fill(target: float, weights: np.ndarray, limit: np.ndarray) -> np.ndarray:
    """``min(level x weight, limit)`` over the weighted packs summing to ``target`` (< sum of limits)."""
    weight = np.fmax(weights, 0.0)  # NaN and negative weights count as 0; infinite ones see _fill_exactly
    share = None
    remaining = float(target)
    for _ in range(ROUNDS):
        weight_sum = float(weight.sum())
        if not 0.0 < weight_sum < math.inf:
            break
        level = remaining / weight_sum
        if not level < math.inf:
            break
        tentative = weight * level
        over = tentative > limit
        if not over.any():
            if share is None:
                return tentative
            share += tentative
            return share
        if share is None:
            share = np.zeros(limit.shape)
        np.copyto(share, limit, where=over)
        remaining -= float(np.sum(limit, where=over))
        np.copyto(weight, 0.0, where=over)
    return _fill_exactly(remaining, weight, limit, np.zeros(limit.shape) if share is None else share)


def _fill_exactly(target: float, weight: np.ndarray, limit: np.ndarray, share: np.ndarray) -> np.ndarray:
    """Complete ``share`` (packs capped so far hold their limit and have zero ``weight``) with
    ``target`` more: exact water-filling over the packs of positive weight, then any remainder over
    the zero-weight packs in proportion to their limits.

    Shares are formed from ratios of weights and the cap levels are compared in logarithms, so tiny
    or huge weights cannot overflow.
    """
    weight = np.where(np.isfinite(weight) & (limit > 0.0), weight, 0.0)
    weight /= max(weight.max(), np.finfo(float).smallest_subnormal)
    weighted = weight > 0.0  # after normalising: a weight that underflows counts as zero
    spare = ~weighted & (share == 0.0) & (limit > 0.0)
    order = np.flatnonzero(weighted)
    if order.size:
        weight = weight[order]
        log_cap_level = np.log(limit[order]) - np.log(weight)
        by_cap_level = np.argsort(log_cap_level, kind="stable")
        order, weight, log_cap_level = order[by_cap_level], weight[by_cap_level], log_cap_level[by_cap_level]
        capped_sum = np.concatenate([[0.0], np.cumsum(limit[order])])
        weight_from = np.cumsum(weight[::-1])[::-1]
        # Power placed when the level reaches each pack's cap, with the packs before it capped.
        with np.errstate(over="ignore"):
            placed_at_cap = capped_sum[:-1] + np.exp(log_cap_level + np.log(weight_from))
        k = int(np.searchsorted(placed_at_cap, target))
        share[order[:k]] = limit[order[:k]]
        if k < order.size:
            rest = order[k:]
            share[rest] = np.minimum((target - capped_sum[k]) * (weight[k:] / weight_from[k]), limit[rest])
            return share
        target -= capped_sum[-1]
    share[spare] = limit[spare] * min(target / limit[spare].sum(), 1.0)
    return share


def available_energy_weights(
    packs: PackArray, discharging: bool, soc_min: float = 0.05, soc_max: float = 0.98
) -> np.ndarray:
    """Energy each online pack can give above ``soc_min`` (discharging) or take below ``soc_max``
    (charging), in J at nominal voltage; 0 for packs that are offline or past the bound."""
    soc = packs.soc
    energy = np.subtract(soc, soc_min, out=soc) if discharging else np.subtract(soc_max, soc, out=soc)
    energy *= packs.energy_capacity_j
    np.maximum(energy, 0.0, out=energy)
    energy *= packs.online
    return energy
