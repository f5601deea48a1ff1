"""Fuzz campaigns on the simulated bench: how fast examples go, and what each variant's campaign finds.

Run: ``python benchmarks/fuzz.py [--examples N] [--seed N] [--packs N]`` prints examples per wall
second and simulated seconds per wall second for the reference controller and one broken variant.
``--all-variants`` instead runs a campaign against the reference and every broken variant and prints
the proof table of docs/fuzz.md: examples to the first failure, the criteria that failed, wall time,
the shrunk sequence's step count, whether its replay reproduced the failure, and whether the reference
controller passes the sequence found against a variant (if not, the failure is not the variant's).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from harness.controller.variants import REFERENCE, variant_names
from harness.fuzz.campaign import DEFAULT_PACKS, DEFAULT_SHRINK_S, Campaign, CampaignResult, run_campaign
from harness.run import run_sequence

SPEED_VARIANT = "no-sync-check"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=25, help="examples per campaign (default 25)")
    parser.add_argument("--seed", type=int, default=0, help="hypothesis seed (default 0)")
    parser.add_argument("--packs", type=int, default=DEFAULT_PACKS, help="fleet size (ratings scale with it)")
    parser.add_argument(
        "--shrink-s", type=float, default=DEFAULT_SHRINK_S, help="wall time spent shrinking a failure"
    )
    parser.add_argument("--all-variants", action="store_true", help="the proof table over every variant")
    parser.add_argument("--only", nargs="+", default=None, metavar="TARGET", help="these targets only")
    parser.add_argument("--out", type=Path, default=None, help="keep each campaign's directory under it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        out = args.out if args.out is not None else Path(scratch)
        if args.all_variants:
            proof(args, out)
        else:
            speed(args, out)


def campaign(args: argparse.Namespace, out: Path, target: str, shrink_s: float) -> CampaignResult:
    variant = None if target == REFERENCE else target
    settings = Campaign(out / target, args.examples, args.seed, variant, args.packs, shrink_s=shrink_s)
    return run_campaign(settings)


def speed(args: argparse.Namespace, out: Path) -> None:
    """Examples per wall second, and simulated seconds per wall second, in the examples themselves
    (drawing, running and judging them; a failure's writing and replay not counted), no shrinking."""
    columns = ("examples", 9), ("simulated s", 12), ("wall s", 8), ("examples/s", 11), ("sim s/s", 8)
    print(f"{'target':<16}" + "".join(f" {name:>{width}}" for name, width in columns))
    for target in (REFERENCE, SPEED_VARIANT):
        result = campaign(args, out, target, shrink_s=0.0)
        tally, wall_s = result.tally, result.tally.example_wall_s
        print(
            f"{target:<16} {tally.examples:>9} {tally.simulated_s:>12.1f} {wall_s:>8.1f} "
            f"{tally.examples / wall_s:>11.3f} {tally.simulated_s / wall_s:>8.2f}"
        )


def proof(args: argparse.Namespace, out: Path) -> None:
    """A campaign per target; for each, what it found, and whether the reference passes the found
    sequence (if it fails it too, the failure is not the variant's bug)."""
    header = f"{'target':<20} {'examples':>8} {'first failure':>13} {'failed':<28} {'wall s':>6} {'steps':>5}"
    print(header + " reproduced reference")
    for target in args.only or [REFERENCE, *variant_names()]:
        result = campaign(args, out, target, args.shrink_s)
        finding = result.finding
        if finding is None:
            print(f"{target:<20} {result.tally.examples:>8} {'-':>13} {'none':<28} {result.wall_s:>6.0f}")
            continue
        against = Path(tempfile.mkdtemp(prefix="against-reference-", dir=out / target))  # fresh on a rerun
        reference = run_sequence(finding.sequence, out_dir=against)
        print(
            f"{target:<20} {result.tally.examples:>8} {finding.after_examples:>13} "
            f"{', '.join(finding.failed):<28} {result.wall_s:>6.0f} {len(finding.sequence.steps):>5} "
            f"{finding.reproduced!s:>10} {'passes' if reference.passed else 'FAILS'}"
        )


if __name__ == "__main__":
    main()
