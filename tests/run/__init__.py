"""Tests of running sequences: the clock, the recorder and runner, ``gridhil run``."""

from __future__ import annotations

from harness.sequence import Sequence, parse_sequence_text

SMALL_PACKS = 24
"""Fleet size the run tests use; the ratings scale with it (harness.run)."""


def outage_sequence_text(criteria: str = 'name = "itic"', duration_s: float = 6.0) -> str:
    """A short grid outage under training swings: quick to run, exercises every recorder channel."""
    return f"""
id = "short-outage"
title = "Short grid outage under training swings"
duration_s = {duration_s}

[initial]
soc = 0.7
load = {{ profile = "training_swings", period_s = 1.0, duty = 0.5, low = 0.3, high = 0.9, edge_s = 0.1 }}

[[steps]]
at_s = 2.0
call = "grid.outage"

[[criteria]]
{criteria}
"""


def outage_sequence(criteria: str = 'name = "itic"', duration_s: float = 6.0) -> Sequence:
    return parse_sequence_text(outage_sequence_text(criteria, duration_s))
