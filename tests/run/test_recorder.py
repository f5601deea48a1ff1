"""The recorder's ``pack_injected`` channel: what the battery emulator inserted, read with the packs.

A lab's battery emulator (a real 17040) has no ``FAULt:MASK?``: the run must go on without it, with the
channel marked unknown, and ``silent_bms`` must say it cannot judge rather than pass.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from drivers.base import DriverConfig
from drivers.chroma_17040 import BatteryEmulator, ExtensionMissing, InsertedFault
from drivers.controller_link import ControllerLink, ControllerMode
from drivers.errors import InstrumentRejected
from drivers.sunspec_meter import SunSpecMeter
from drivers.yokogawa_wt import PowerAnalyzer
from harness.criteria.packs import silent_bms
from harness.recorder import Recorder, trace_channels
from harness.run import run_sequence
from harness.sequence_builder import SequenceBuilder
from harness.trace import INJECTED_UNKNOWN, PACK_INJECTED, Trace, TraceWriter
from tests.drivers.pairs import Reply, expect, rejected

CHANNELS = 2
PACK_READ = [
    ("MEASure:VOLTage? (@1:2)", "400,401"),
    ("MEASure:CURRent? (@1:2)", "10,-2"),
    ("MEASure:POWer? (@1:2)", "4000,-802"),
    ("MEASure:SOC? (@1:2)", "50,51"),
    ("MEASure:STATe? (@1:2)", "0,1,0,1"),
]
"""What one read of the packs asks a battery emulator with channel lists, before ``FAULt:MASK?``."""
MASKS = "FAULt:MASK? (@1:2)"


class Analyzer(PowerAnalyzer):
    def configure(self, items: object) -> None:
        pass

    def read(self) -> dict[str, float | None]:
        return {"URMS,1": 277.0, "FU,1": 60.0, "P,SIGMA": 1.0e5}


class Meter(SunSpecMeter):
    def read(self) -> SimpleNamespace:  # type: ignore[override]
        return SimpleNamespace(power_w=0.0)


class Controller(ControllerLink):
    def status(self) -> SimpleNamespace:  # type: ignore[override]
        return SimpleNamespace(mode=ControllerMode.ISLANDED, pcs_w=1.0e5, power_cap_w=None, fleet_soc=0.5)


def record(tmp_path, masks: list[Reply]) -> Trace:
    """Samples at 0.1, 0.2 and 1.1 s (packs read at 0.1 and 1.1 s); ``masks``: the replies to
    ``FAULt:MASK?`` at each pack read that asks it."""
    battery = BatteryEmulator(
        DriverConfig(
            "battery", "TCPIP::10.0.0.20::60000::SOCKET", options={"channels": 2, "channel_lists": True}
        )
    )
    drivers = {
        "battery": battery,
        "load_meter": Analyzer(DriverConfig("load_meter", "TCPIP::10.0.0.21::10001::SOCKET")),
        "pcc_meter": Meter(DriverConfig("pcc_meter", "modbus+tcp://10.0.0.30:502/1")),
        "controller": Controller(DriverConfig("controller", "modbus+tcp://10.0.0.40:502/1")),
    }
    asked = [pair for reply in masks for pair in (*PACK_READ, (MASKS, reply))]
    pairs = asked + PACK_READ * (2 - len(masks))
    with TraceWriter(tmp_path / "trace", trace_channels(CHANNELS)) as writer, expect(battery, pairs):
        recorder = Recorder(writer, drivers, demand_w=lambda _t_s: 1.0e5, nominal_phase_v=277.0)
        for t_s in (0.1, 0.2, 1.1):
            recorder.sample(t_s)
    return Trace.load(tmp_path / "trace")


def test_the_inserted_conditions_are_read_with_the_packs_and_held_between_reads(tmp_path):
    trace = record(tmp_path, ["0,16", "0,0"])
    np.testing.assert_array_equal(trace.channel(PACK_INJECTED), [[0, 16], [0, 16], [0, 0]])
    assert not trace.events


def test_an_emulator_without_the_extension_is_asked_once_and_its_packs_still_read(tmp_path):
    trace = record(tmp_path, [rejected(-113, "Undefined header")])
    np.testing.assert_array_equal(trace.channel(PACK_INJECTED), np.full((3, CHANNELS), INJECTED_UNKNOWN))
    np.testing.assert_array_equal(trace.channel("pack_current_a"), [[10.0, -2.0]] * 3)
    (event,) = trace.events
    assert (event.t, event.source) == (0.1, "recorder")
    assert "pack_injected unknown" in event.text and "real Chroma 17040" in event.text
    verdict = silent_bms(trace)
    assert not verdict.passed and np.isnan(verdict.measured)
    assert "cannot tell" in verdict.detail


def test_any_other_refusal_still_stops_the_run(tmp_path):
    with pytest.raises(InstrumentRejected, match="-200") as caught:
        record(tmp_path, [rejected(-200, "Execution error")])
    assert not isinstance(caught.value, ExtensionMissing)


def test_a_cut_bms_link_reaches_the_trace_over_the_wire(tmp_path):
    sequence = (
        SequenceBuilder("comms-cut")
        .title("one BMS link cut for two seconds")
        .duration(5.0)
        .initial(soc=0.7, load={"profile": "constant", "level": 0.5}, grid={"voltage_pu": 0.0})
        .at(1.0)
        .call("battery", "insert_fault", channel=3, kind="comms")
        .at(3.0)
        .call("battery", "clear_fault", channel=3, kind="comms")
        .criterion("silent_bms")
        .build()
    )
    result = run_sequence(sequence, out_dir=tmp_path, packs=8)
    trace = Trace.load(tmp_path / "trace")
    lost = (trace.channel(PACK_INJECTED) & InsertedFault.COMMS) != 0
    np.testing.assert_array_equal(lost[:, [0, 1, 3, 4, 5, 6, 7]], False)
    np.testing.assert_array_equal(
        trace.t[lost[:, 2]], trace.t[(trace.t >= 1.1 - 1e-9) & (trace.t < 3.1 - 1e-9)]
    )
    (verdict,) = result.verdicts
    assert verdict.passed and "BMS link lost at 1.1 s" in verdict.detail
