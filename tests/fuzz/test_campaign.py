"""Fuzz campaigns on the simulated bench: broken variants are caught, the reference is not, failures
replay from their files, and hypothesis' database makes a rerun start from them."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from harness import cli
from harness.fuzz.campaign import DATABASE_DIR, Campaign, CampaignResult, run_campaign
from harness.sequence import load_sequence

NEVER_ISLAND_SEED = 3
NO_SYNC_CHECK_SEED = 0
BUDGET = 8
"""Examples per campaign: the broken variants below fail within it."""
SHRINK_S = 8.0
NO_SYNC_CHECK_SHRINK_S = 40.0
"""Seed 0's first no-sync-check failure comes with capacity steps and a three-unit PCS trip around the
reconnection; shrinking it to the reconnection alone takes 20-40 s here (measured with two campaigns
sharing the machine's two cores)."""


def gridhil(*argv: str) -> tuple[int, str]:
    """``gridhil ARGV`` in this process, and what it printed."""
    args = cli.build_parser().parse_args(list(argv))
    printed = io.StringIO()
    return args.handler(args, printed), printed.getvalue()


@pytest.fixture(scope="module")
def never_island(tmp_path_factory) -> tuple[int, str, Path]:
    """``gridhil fuzz`` against never-island: exit code, what it printed, the out directory."""
    out = tmp_path_factory.mktemp("never-island")
    options = ["--examples", str(BUDGET), "--seed", str(NEVER_ISLAND_SEED), "--shrink-s", str(SHRINK_S)]
    code, printed = gridhil("fuzz", "--variant", "never-island", *options, "--out", str(out))
    return code, printed, out


@pytest.fixture(scope="module")
def no_sync_check(tmp_path_factory) -> CampaignResult:
    out = tmp_path_factory.mktemp("no-sync-check")
    variant, shrink_s = "no-sync-check", NO_SYNC_CHECK_SHRINK_S
    campaign = Campaign(out, examples=BUDGET, seed=NO_SYNC_CHECK_SEED, variant=variant, shrink_s=shrink_s)
    return run_campaign(campaign)


def test_gridhil_fuzz_finds_never_island_shows_each_example_and_exits_1(never_island):
    code, printed, out = never_island
    assert code == 1, printed
    examples = [line for line in printed.splitlines() if line.startswith("  example ")]
    assert examples and "FAILED" in examples[-1], "one line per example, the failing one says so"
    assert all(" rules, " in line and " s: " in line for line in examples), "its rules and the time reached"
    assert "replay: FAILED" in printed and "(reproduced)" in printed
    summary = json.loads((out / "fuzz-never-island-1.json").read_text())
    assert summary["reproduced"] and summary["replay"]["failed"]
    assert {"itic", "load_served"} & set(summary["failed"]), "the racks lose their bus"
    assert summary["found_after_examples"] <= BUDGET


def test_a_campaign_against_no_sync_check_writes_a_minimal_replayable_resync_failure(no_sync_check):
    finding = no_sync_check.finding
    assert finding is not None
    assert "resync" in finding.failed and finding.reproduced
    assert load_sequence(finding.path) == finding.sequence
    assert finding.sequence.id == "fuzz-no-sync-check-1"
    assert "resync" in finding.sequence.title
    first = [criterion.name for criterion in finding.sequence.criteria[: len(finding.failed)]]
    assert sorted(first) == sorted(finding.failed), "what failed comes first, then the standard ones"
    judged = {criterion.name for criterion in finding.sequence.criteria}
    assert {"itic", "load_served", "soc_bounds", "frequency_band", "resync"} <= judged
    assert len(finding.sequence.steps) <= 4, "shrunk: a loss of the grid (or an island) and a reconnection"


@pytest.mark.parametrize("variant", ["never-island", "no-sync-check"])
def test_the_written_file_fails_alike_under_gridhil_run(variant, never_island, no_sync_check, tmp_path):
    out = never_island[2] if variant == "never-island" else no_sync_check.campaign.out_dir
    path = out / f"fuzz-{variant}-1.toml"
    failed = set(json.loads(path.with_suffix(".json").read_text())["failed"])
    code, printed = gridhil("run", str(path), "--variant", variant, "--out", str(tmp_path))
    assert code == 1, printed
    record = json.loads((tmp_path / f"fuzz-{variant}-1" / "record.json").read_text())
    replayed = {v["name"].split("[")[0] for v in record["verdicts"] if not v["passed"]}
    assert failed <= replayed, printed


def test_the_reference_with_a_fixed_seed_and_a_small_budget_fails_nothing(tmp_path):
    result = run_campaign(Campaign(tmp_path, examples=3, seed=0))
    assert result.finding is None, [r.failed for r in result.tally.reports]
    assert result.tally.examples >= 3
    assert not list(tmp_path.glob("*.toml"))


def test_the_database_lives_in_the_out_directory_and_a_rerun_starts_from_the_failure(never_island, tmp_path):
    out = never_island[2]
    assert any((out / DATABASE_DIR / "never-island").rglob("*")), "hypothesis saved the failure"
    fresh = run_campaign(Campaign(tmp_path, examples=1, seed=11, variant="never-island", shrink_s=0.0))
    assert fresh.finding is None, "one example drawn afresh does not fail"
    again = run_campaign(Campaign(out, examples=1, seed=11, variant="never-island", shrink_s=0.0))
    assert again.finding is not None and again.tally.first_failure == 1, "the saved failure ran first"
    first = load_sequence(out / "fuzz-never-island-1.toml")
    assert again.finding.path.name == "fuzz-never-island-2.toml", "an earlier finding is not overwritten"
    assert again.finding.sequence.steps == first.steps
