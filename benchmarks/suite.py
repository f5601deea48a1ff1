"""The sequence library against the reference controller: simulated time, wall time, their ratio.

Run: ``python benchmarks/suite.py [--packs N]`` (default 24 packs, the size the tests use; 805 is
the reference plant). Every instrument is reached over its socket, the controller over its face,
on one virtual clock. The Sequences issue aims at the whole library at least 20x faster than real
time.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from harness.run import run_sequence
from harness.run_command import LIBRARY
from harness.sequence import load_library


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--packs", type=int, default=24, help="fleet size (ratings scale with it)")
    args = parser.parse_args()
    library = load_library(LIBRARY)
    print(f"{'sequence':<34} {'simulated s':>12} {'wall s':>8} {'x real time':>12} {'passed':>7}")
    simulated_total = wall_total = 0.0
    with tempfile.TemporaryDirectory() as out:
        for sequence_id, sequence in sorted(library.items()):
            start = time.perf_counter()
            result = run_sequence(sequence, out_dir=Path(out) / sequence_id, packs=args.packs)
            wall = time.perf_counter() - start
            simulated_total += sequence.duration_s
            wall_total += wall
            row(sequence_id, sequence.duration_s, wall, str(result.passed))
    row(f"library ({len(library)} sequences)", simulated_total, wall_total, "")


def row(name: str, simulated_s: float, wall_s: float, passed: str) -> None:
    print(f"{name:<34} {simulated_s:>12.1f} {wall_s:>8.2f} {simulated_s / wall_s:>12.2f} {passed:>7}")


if __name__ == "__main__":
    main()
