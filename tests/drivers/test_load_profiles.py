"""Sequence load profiles played by the electronic load on a lab bench (harness.bench_setup): what the
load's own modes make of each profile, read back from the racks it drives, is the profile."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.base import DriverConfig
from drivers.chroma_63200 import ElectronicLoad
from harness.bench_setup import BenchSetupError, play_profile
from harness.sim.load import CheckpointDips, Constant, Steps, TrainingSwings
from harness.sim.standins.electronic_load import ElectronicLoad as LoadStandIn

NOMINAL_V = 480.0
DURATION_S = 130.0


@pytest.fixture
def electronic_load(started, plant, lock):
    stand_in = started(LoadStandIn(plant, lock))
    config = DriverConfig("load", stand_in.resource, options={"nominal_voltage_v": NOMINAL_V})
    return started(ElectronicLoad(config))


@pytest.mark.parametrize(
    "profile",
    [
        Constant(0.65),
        TrainingSwings(period_s=2.0, duty=0.6, low=0.2, high=0.95, edge_s=0.15),
        CheckpointDips(base=0.9, interval_s=40.0, duration_s=8.0, level=0.1),
        Steps(((0.0, 0.1), (5.0, 0.8), (20.0, 0.4))),
        Steps(((3.0, 0.5), (9.0, 1.0))),
    ],
    ids=["constant", "swings", "checkpoint-dips", "steps", "steps-after-idle"],
)
def test_the_racks_play_the_profile_the_sequence_asks_for(electronic_load, plant, lock, profile):
    rated_w = plant.load.rated_w
    play_profile(electronic_load, profile, rated_w, DURATION_S)
    times = np.arange(0.0, DURATION_S, 0.05) + 0.013  # off the edges' corners
    with lock:
        played = np.array([plant.load.uncapped_demand_w(t) for t in times])
    wanted = np.array([profile.fraction(t) * rated_w for t in times])
    assert played == pytest.approx(wanted, rel=1e-6, abs=1e-3 * rated_w)


def test_jittered_swings_are_refused_naming_why(electronic_load, plant):
    with pytest.raises(BenchSetupError, match=r"jitter 0.2.*use jitter = 0"):
        play_profile(electronic_load, TrainingSwings(jitter=0.2), plant.load.rated_w, 10.0)


def test_a_profile_longer_than_the_loads_list_is_refused(electronic_load, plant):
    dips = CheckpointDips(base=0.9, interval_s=2.0, duration_s=1.0, level=0.1)
    with pytest.raises(BenchSetupError, match="list steps over the run; the load holds 100"):
        play_profile(electronic_load, dips, plant.load.rated_w, 600.0)
