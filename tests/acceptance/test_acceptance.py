"""Acceptance: the whole sequence library against the reference controller and its broken variants.

Every library sequence must pass against the reference controller; every broken variant must fail at
least one library sequence on a named criterion (a new variant no sequence catches fails the table's
test: it names a blind spot of the library to close, not a variant to excuse).

Runs at 24 packs (ratings scale with the fleet, harness.run); each run is one lock-step simulated
bench with every instrument reached over its socket.
"""

from __future__ import annotations

import pytest

from harness.controller.variants import variant_names
from harness.run import RunResult, run_sequence
from harness.run_command import LIBRARY
from harness.sequence import load_library

SMALL_PACKS = 24
SEQUENCES = load_library(LIBRARY)

CAUGHT_BY: dict[str, tuple[str, tuple[str, ...]]] = {
    "never-island": ("unplanned-island-full-load", ("itic[itic]", "load_served")),
    "no-sync-check": ("unplanned-island-then-reconnect", ("resync",)),
    "no-smoothing": ("training-swings-smoothing", ("grid_band_energy", "grid_ramp")),
    "ignores-pack-faults": ("isolation-fault-aged-fleet", ("fault_isolation",)),
    "no-power-cap": ("demand-beyond-capacity", ("itic[itic]", "load_served")),
    "no-reserve": ("unplanned-island-at-reserve", ("soc_bounds",)),
    "equal-sharing": ("mixed-fleet-even-drain", ("sharing_balance",)),
    "trusts-stale-bms": ("bms-comms-loss", ("silent_bms",)),
}
"""variant -> (the library sequence that catches it, the criteria its one bug makes fail there)."""

def describe(result: RunResult) -> str:
    return "; ".join(f"{v.name}: {'pass' if v.passed else 'FAIL'} ({v.detail})" for v in result.verdicts)


def test_every_variant_has_a_sequence_that_catches_it():
    assert sorted(CAUGHT_BY) == variant_names()
    assert all(sequence in SEQUENCES for sequence, _ in CAUGHT_BY.values())


@pytest.mark.parametrize("sequence_id", sorted(SEQUENCES))
def test_the_library_passes_against_the_reference_controller(sequence_id, tmp_path):
    sequence = SEQUENCES[sequence_id]
    result = run_sequence(sequence, out_dir=tmp_path, packs=SMALL_PACKS)
    assert [v.name.split("[")[0] for v in result.verdicts] == [c.name for c in sequence.criteria]
    assert result.passed, describe(result)


@pytest.mark.parametrize("variant", variant_names())
def test_each_broken_variant_fails_a_library_sequence_on_a_named_criterion(variant, tmp_path):
    sequence_id, criteria = CAUGHT_BY[variant]
    result = run_sequence(SEQUENCES[sequence_id], variant=variant, out_dir=tmp_path, packs=SMALL_PACKS)
    failed = {v.name for v in result.verdicts if not v.passed}
    assert set(criteria) <= failed, describe(result)
