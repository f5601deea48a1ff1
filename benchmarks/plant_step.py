"""Cost of one quiet plant step (grid-connected, bus settled) for 24, 805 and 10,000 packs.

Run: ``python benchmarks/plant_step.py``. Prints microseconds per step (median and best of several
repeats: the best is the figure least disturbed by other work on the machine) and pack-steps per
second at the median. The aim for the 805-pack reference plant is under 50 µs per step.
"""

from __future__ import annotations

import statistics
import time

from harness.sim.plant import Plant, PlantConfig

STEP_S = 0.1
PACK_COUNTS = (24, 805, 10_000)


def time_steps(packs: int, steps: int, repeats: int = 7) -> tuple[float, float]:
    plant = Plant.build(PlantConfig(packs=packs))
    plant.pcs.dispatch_w = 2e6
    for _ in range(200):
        plant.step(STEP_S)
    per_step = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            plant.step(STEP_S)
        per_step.append((time.perf_counter() - start) / steps)
    return statistics.median(per_step), min(per_step)


def main() -> None:
    print(f"{'packs':>7} {'µs/step median':>15} {'best':>7} {'pack-steps/s':>14}")
    for packs in PACK_COUNTS:
        median, best = time_steps(packs, steps=2000 if packs < 5000 else 300)
        print(f"{packs:>7} {median * 1e6:>15.1f} {best * 1e6:>7.1f} {packs / median:>14,.0f}")


if __name__ == "__main__":
    main()
