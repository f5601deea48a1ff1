"""Trace records, windows, and the writer's on-disk format surviving a crash."""

import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.sim.voltage_events import VoltageEvent, VoltageEventKind
from harness.trace import (
    BUS_VOLTAGE_PU,
    EVENTS_FILE,
    PACK_ISOLATED,
    PACK_SOC,
    TIME_FILE,
    BreakerClose,
    ChannelSpec,
    Trace,
    TraceEvent,
    TraceWriter,
)
from harness.verdict import Verdict

REPO = Path(__file__).resolve().parents[2]
SPECS = {
    BUS_VOLTAGE_PU: ChannelSpec(),
    PACK_SOC: ChannelSpec(shape=(3,)),
    PACK_ISOLATED: ChannelSpec("bool", (3,)),
}


def sample(i: int) -> dict[str, np.ndarray | float]:
    return {
        BUS_VOLTAGE_PU: 1.0 + 0.001 * i,
        PACK_SOC: np.array([0.5, 0.6, 0.7]) - 1e-4 * i,
        PACK_ISOLATED: np.array([False, i % 2 == 1, True]),
    }


def test_trace_rejects_bad_time_and_lengths():
    with pytest.raises(ValueError, match="strictly increasing"):
        Trace([0.0, 1.0, 1.0], {})
    with pytest.raises(ValueError, match="channel 'x'"):
        Trace([0.0, 1.0], {"x": [1.0, 2.0, 3.0]})


def test_channel_error_names_the_known_channels():
    trace = Trace([0.0, 1.0], {"grid_w": [1.0, 2.0], "pv_w": [0.0, 0.0]})
    with pytest.raises(KeyError, match=r"'pcs_w'.*grid_w, pv_w"):
        trace.channel("pcs_w")


def test_channels_are_read_only():
    trace = Trace([0.0, 1.0], {"grid_w": [1.0, 2.0]})
    with pytest.raises(ValueError):
        trace.channel("grid_w")[0] = 5.0


def test_window_keeps_samples_records_and_overlapping_voltage_events():
    t = np.arange(10.0)
    trace = Trace(
        t,
        {"grid_w": t * 2, PACK_SOC: np.stack([t, -t], axis=1)},
        events=[TraceEvent(2.0, "sequence", "grid.outage()"), TraceEvent(8.0, "plant", "late")],
        voltage_events=[
            VoltageEvent(VoltageEventKind.DIP, 1.5, 2.0, 0.6),  # overlaps [3, 6]
            VoltageEvent(VoltageEventKind.SWELL, 7.0, 0.1, 1.15),  # after
        ],
        breaker_closes=[BreakerClose(4.0, 0.01, 0.02, 3.0, True)],
    )
    part = trace.window(3.0, 6.0)
    np.testing.assert_array_equal(part.t, [3.0, 4.0, 5.0, 6.0])
    np.testing.assert_array_equal(part.channel("grid_w"), [6.0, 8.0, 10.0, 12.0])
    assert part.channel(PACK_SOC).shape == (4, 2)
    assert part.events == ()
    assert [v.start_s for v in part.voltage_events] == [1.5]
    assert len(part.breaker_closes) == 1


def test_writer_round_trip(tmp_path):
    with TraceWriter(tmp_path / "run", SPECS, chunk_samples=4) as writer:
        for i in range(10):
            writer.append(0.1 * i, sample(i))
        writer.event(TraceEvent(0.3, "sequence", "packs.fault(3, 'isolation')"))
        writer.voltage_event(VoltageEvent(VoltageEventKind.INTERRUPTION, 0.25, 0.012, 0.0))
        writer.breaker_close(BreakerClose(0.8, 0.02, 0.05, 4.0, True))
    trace = Trace.load(tmp_path / "run")
    np.testing.assert_allclose(trace.t, 0.1 * np.arange(10))
    np.testing.assert_allclose(trace.channel(PACK_SOC)[7], sample(7)[PACK_SOC])
    assert trace.channel(PACK_ISOLATED).dtype == bool
    np.testing.assert_array_equal(trace.channel(PACK_ISOLATED)[:, 1], np.arange(10) % 2 == 1)
    assert trace.events == (TraceEvent(0.3, "sequence", "packs.fault(3, 'isolation')"),)
    assert trace.voltage_events == (VoltageEvent(VoltageEventKind.INTERRUPTION, 0.25, 0.012, 0.0),)
    assert trace.breaker_closes == (BreakerClose(0.8, 0.02, 0.05, 4.0, True),)


def test_writer_keeps_each_sample_when_the_caller_reuses_its_arrays(tmp_path):
    """A recorder holds its per-pack arrays and updates them in place; every row must keep the values
    it had when it was appended, not those at the next flush."""
    held = sample(0)
    with TraceWriter(tmp_path / "run", SPECS, chunk_samples=8) as writer:
        for i in range(5):
            held[PACK_SOC][:] = sample(i)[PACK_SOC]
            held[PACK_ISOLATED][:] = sample(i)[PACK_ISOLATED]
            writer.append(0.1 * i, held)
    trace = Trace.load(tmp_path / "run")
    np.testing.assert_allclose(trace.channel(PACK_SOC), [sample(i)[PACK_SOC] for i in range(5)])
    np.testing.assert_array_equal(trace.channel(PACK_ISOLATED)[:, 1], np.arange(5) % 2 == 1)


def test_writer_refuses_bad_samples_and_an_existing_trace(tmp_path):
    writer = TraceWriter(tmp_path, SPECS)
    writer.append(1.0, sample(0))
    with pytest.raises(ValueError, match="after the previous"):
        writer.append(1.0, sample(1))
    with pytest.raises(KeyError, match=r"missing channels \['pack_isolated'\]"):
        writer.append(2.0, {k: v for k, v in sample(1).items() if k != PACK_ISOLATED})
    with pytest.raises(ValueError, match="shape"):
        writer.append(2.0, {**sample(1), PACK_SOC: np.zeros(4)})
    writer.close()
    with pytest.raises(FileExistsError):
        TraceWriter(tmp_path, SPECS)


_CRASHING_WRITER = """
import os, signal, sys
import numpy as np
sys.path.insert(0, sys.argv[2])
from harness.trace import ChannelSpec, TraceEvent, TraceWriter
specs = {"grid_w": ChannelSpec(), "pack_soc": ChannelSpec(shape=(2,))}
writer = TraceWriter(sys.argv[1], specs, chunk_samples=50)
for i in range(120):
    writer.append(0.01 * i, {"grid_w": float(i), "pack_soc": [i, -i]})
    if i == 60:
        writer.event(TraceEvent(0.6, "sequence", "grid.outage()"))
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_load_reads_back_what_a_killed_writer_flushed(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", _CRASHING_WRITER, str(tmp_path), str(REPO)], timeout=60, check=False
    )
    assert result.returncode == -signal.SIGKILL
    trace = Trace.load(tmp_path)
    # Two whole chunks of 50 were flushed; the last 20 samples died in the buffer.
    assert len(trace) == 100
    np.testing.assert_array_equal(trace.channel("grid_w"), np.arange(100.0))
    np.testing.assert_array_equal(trace.channel("pack_soc")[:, 1], -np.arange(100.0))
    assert trace.events == (TraceEvent(0.6, "sequence", "grid.outage()"),)


def test_load_drops_torn_records_and_lines(tmp_path):
    writer = TraceWriter(tmp_path, SPECS, chunk_samples=1)
    for i in range(5):
        writer.append(float(i), sample(i))
    writer.event(TraceEvent(1.0, "plant", "ok"))
    # A crash mid-write: half a record of one channel, a line without its end.
    with (tmp_path / f"ch.{PACK_SOC}.bin").open("ab") as handle:
        handle.write(np.zeros(3).tobytes()[:13])
    with (tmp_path / TIME_FILE).open("ab") as handle:
        handle.write(np.array([5.0]).tobytes())
    with (tmp_path / EVENTS_FILE).open("a") as handle:
        handle.write(json.dumps({"t": 2.0, "source": "plant", "text": "torn"})[:20])
    trace = Trace.load(tmp_path)
    assert len(trace) == 5
    assert trace.events == (TraceEvent(1.0, "plant", "ok"),)
    writer.close()


def test_verdict_json_is_strict_json():
    verdict = Verdict(
        "x", False, float("inf"), 1.0, float("-inf"), "s", (0.0, 1.0), evidence={"v": np.array([1.0, np.nan])}
    )
    text = json.dumps(verdict.to_json(), allow_nan=False)
    assert json.loads(text)["measured"] == "inf"
    assert json.loads(text)["evidence"]["v"] == [1.0, "nan"]
    assert Verdict.at_most("y", 2.0, 3.0, "W").margin == 1.0
    assert not Verdict.at_least("y", 2.0, 3.0, "W").passed
