"""A sequence run on a lab bench: a bench file, its own controller, the wall clock.

The "lab" here is two processes, exactly as an engineer would meet them: ``gridhil sim`` (the
instruments, in real time) and ``gridhil controller`` (the controller under test), known to the run
only through the bench file they share. Nothing of the plant is reachable from the test.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from harness.bench_file import load_bench_file, parse_bench_text
from harness.bench_setup import BenchSetupError
from harness.run import RunStatus, run_sequence
from harness.sequence import parse_sequence_text
from harness.trace import BUS_VOLTAGE_PU, LOAD_DEMAND_W, LOAD_SERVED_W, Trace
from tests.processes import kill_if_running, read_until, start_gridhil, stop

pytest_plugins = ["pytester"]

LAB_SEQUENCE = """
id = "lab-outage"
title = "Grid outage on the lab bench"
duration_s = 4.0

[initial]
soc = 0.6
load = { profile = "constant", level = 0.5 }

[[steps]]
at_s = 1.5
call = "grid.outage"

[[criteria]]
name = "load_served"
limits = { max_unserved_j = 0 }
"""


@pytest.fixture
def lab_bench(tmp_path_factory) -> Iterator[Path]:
    """A bench file for a running simulated lab (stand-ins in real time) and a controller process.

    A fresh lab per test: a run's safe state switches the battery outputs off, and a plant left
    islanded goes dark; the next run would wait for the racks to restart (prepare_bench does that,
    tens of seconds)."""
    bench_path = tmp_path_factory.mktemp("lab") / "bench.toml"
    sim = start_gridhil("sim", "--write-bench", str(bench_path), "--packs", "24")
    controller = None
    try:
        read_until(sim, "stop with Ctrl-C")
        controller = start_gridhil("controller", "--bench", str(bench_path))
        read_until(controller, "serving its face")
        yield bench_path
        assert stop(controller)[0] == 0
        assert stop(sim)[0] == 0
    finally:
        kill_if_running(controller)
        kill_if_running(sim)


def test_a_sequence_runs_on_the_wall_clock_against_the_benchs_own_controller(lab_bench, tmp_path):
    sequence = parse_sequence_text(LAB_SEQUENCE)
    result = run_sequence(sequence, bench=load_bench_file(lab_bench), out_dir=tmp_path)
    assert result.passed, [(v.name, v.detail) for v in result.verdicts]
    trace = Trace.load(result.trace_dir)
    before, after = trace.window(0.5, 1.4), trace.window(2.5, 3.9)
    rated_w = load_bench_file(lab_bench).racks_rated_w
    assert np.allclose(before.channel(LOAD_DEMAND_W), 0.5 * rated_w)
    assert np.allclose(before.channel(LOAD_SERVED_W), 0.5 * rated_w, rtol=0.03), "the load plays the profile"
    assert np.allclose(after.channel(LOAD_SERVED_W), 0.5 * rated_w, rtol=0.03), "the island carries it"
    assert np.allclose(after.channel(BUS_VOLTAGE_PU), 1.0, atol=0.05)
    record = json.loads(result.record_path.read_text())
    assert record["packs"] is None and record["bench"]["simulated"] is False
    assert record["bench"]["instruments"]["controller"]["model"], "the controller's identity is recorded"
    assert [s["call"] for s in record["steps_applied"]] == ["grid.outage"]
    assert 1.5 <= record["steps_applied"][0]["t_s"] < 1.6


def test_setting_stop_ends_a_lab_run_early_and_keeps_what_it_recorded(lab_bench, tmp_path):
    stop_run = threading.Event()
    sequence = parse_sequence_text(LAB_SEQUENCE.replace("duration_s = 4.0", "duration_s = 60.0"))

    def progress(t_s: float) -> None:
        if t_s >= 2.0:
            stop_run.set()

    with pytest.raises(Exception, match="stopped at"):
        run_sequence(
            sequence, bench=load_bench_file(lab_bench), out_dir=tmp_path, stop=stop_run, progress=progress
        )
    record = json.loads((tmp_path / "record.json").read_text())
    assert record["status"] == RunStatus.INTERRUPTED.value
    assert [s["call"] for s in record["steps_applied"]] == ["grid.outage"]
    assert 1.9 <= Trace.load(tmp_path / "trace").t[-1] < 3.0


def test_a_lab_bench_without_its_ratings_is_refused_before_anything_runs(lab_bench, tmp_path):
    text = lab_bench.read_text().replace("racks_rated_w", "# racks_rated_w")
    with pytest.raises(BenchSetupError, match=r"\[bench\] needs racks_rated_w"):
        run_sequence(parse_sequence_text(LAB_SEQUENCE), bench=parse_bench_text(text), out_dir=tmp_path)
    assert json.loads((tmp_path / "record.json").read_text())["status"] == RunStatus.ERROR.value


def test_a_variant_is_refused_on_a_lab_bench(lab_bench, tmp_path):
    with pytest.raises(ValueError, match="a lab bench has its own"):
        run_sequence(
            parse_sequence_text(LAB_SEQUENCE),
            bench=load_bench_file(lab_bench),
            variant="never-island",
            out_dir=tmp_path,
        )


def test_the_plugins_run_sequence_runs_on_the_bench_file_given(lab_bench, pytester: pytest.Pytester):
    pytester.makefile(".toml", lab_outage=LAB_SEQUENCE)
    pytester.makepyfile(
        """
        from harness.sequence import load_sequence

        def test_outage(run_sequence, bench_spec):
            result = run_sequence(load_sequence("lab_outage.toml"))
            assert result.passed, result.verdicts
            assert bench_spec.sim is not None  # the lab here is gridhil sim; run_sequence did not start one

        def test_variant(run_sequence):
            run_sequence(load_sequence("lab_outage.toml"), variant="never-island")
        """
    )
    result = pytester.runpytest("--bench", str(lab_bench), "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*variant 'never-island' runs on the simulated bench*"])


def test_a_run_starts_on_the_lab_a_run_before_it_left_islanded_and_dark(lab_bench, tmp_path):
    """The first run ends in its grid outage, its safe state then switches the battery outputs off: the
    second finds the simulator's output relay open, a dark island and racks that dropped. Setup closes
    the relay, the controller reconnects, the racks restart, and the run starts from a steady plant."""
    sequence = parse_sequence_text(LAB_SEQUENCE)
    bench = load_bench_file(lab_bench)
    assert run_sequence(sequence, bench=bench, out_dir=tmp_path / "first").passed
    again = run_sequence(sequence, bench=bench, out_dir=tmp_path / "second")
    assert again.passed, [(v.name, v.detail) for v in again.verdicts]
    served = Trace.load(again.trace_dir).window(0.1, 1.4).channel(LOAD_SERVED_W)
    assert np.allclose(served, 0.5 * bench.racks_rated_w, rtol=0.02), "the racks were back before time zero"
