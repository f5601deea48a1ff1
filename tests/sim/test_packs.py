"""The vectorised pack model: physics against a scalar reference, invariants, limits, trips, faults."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from harness.sim.chemistry import (
    CELL_V_MAX,
    CELL_V_MIN,
    OCV_TABLE,
    SOC_GRID,
    Chemistry,
    ocv_cell,
    table_offsets,
)
from harness.sim.fleet import draw_fleet
from harness.sim.packs import (
    ACTIVATION_ENERGY_J_PER_MOL,
    CONVERTER_CURRENT_RATIO,
    GAS_CONSTANT_J_PER_MOL_K,
    FaultCode,
    InjectedFault,
    PackArray,
)
from tests.sim.factories import uniform_fleet

CAPACITY_AS = 200.0 * 0.8 * 3600.0  # factory default pack: 200 Ah new at SoH 0.8
RATED_A = 300.0 * 0.8


def packs_of(
    n: int = 4, soc: float | np.ndarray = 0.6, ambient_c: float = 25.0, slow_period_s: float = 1.0, **fleet
) -> PackArray:
    return PackArray(uniform_fleet(n, **fleet), soc=soc, ambient_c=ambient_c, slow_period_s=slow_period_s)


def run(packs: PackArray, seconds: float, power_w: np.ndarray | float, dt: float = 1.0) -> None:
    for _ in range(round(seconds / dt)):
        packs.step(dt, power_w)


def currents_at_limits(packs: PackArray) -> tuple[np.ndarray, np.ndarray]:
    """Currents when even-numbered packs discharge and odd-numbered packs charge at their published
    limits, in one short step (so both limits come from one state)."""
    discharge_w, charge_w = packs.power_limits()
    command = np.where(np.arange(packs.n) % 2 == 0, discharge_w, -charge_w)
    packs.step(1e-3, command)
    return packs.current_a[0::2].copy(), -packs.current_a[1::2].copy()


# ----------------------------------------------------------------------------- physics


@dataclass
class ScalarPack:
    """The documented equations for one pack, written out step by step as an independent reference."""

    soc: float
    chemistry: int = Chemistry.NMC
    cells: int = 96
    capacity_as: float = CAPACITY_AS
    r0_ohm: float = 0.1
    r1_ohm: float = 0.05
    tau_s: float = 30.0
    c_th: float = 1.5e5
    r_th: float = 0.02
    ambient_k: float = 298.15
    v_rc: float = 0.0
    temperature_k: float = 298.15

    def resistance(self) -> float:
        arrhenius = math.exp(
            ACTIVATION_ENERGY_J_PER_MOL / GAS_CONSTANT_J_PER_MOL_K * (1 / self.temperature_k - 1 / 298.15)
        )
        return arrhenius * 1.2 ** (4 * (self.soc - 0.5) ** 2)

    def step(self, dt: float, power_w: float) -> tuple[float, float, float]:
        scale = self.resistance()
        r0, r1 = self.r0_ohm * scale, self.r1_ohm * scale
        ocv = self.cells * float(np.interp(self.soc, SOC_GRID, OCV_TABLE[self.chemistry]))
        e = ocv - self.v_rc
        current = 2 * power_w / (e + math.sqrt(e * e - 4 * r0 * power_w))
        loss_j = (r0 * current + self.v_rc) * current * dt
        self.soc -= current * dt / self.capacity_as
        decay = math.exp(-dt / self.tau_s)
        self.v_rc = self.v_rc * decay + r1 * (1 - decay) * current
        target = self.ambient_k + self.r_th * loss_j / dt
        self.temperature_k = target + (self.temperature_k - target) * math.exp(-dt / (self.r_th * self.c_th))
        return current, e - r0 * current, loss_j


@pytest.mark.parametrize("chemistry", list(Chemistry))
def test_a_pack_follows_the_scalar_reference_through_discharge_and_charge(chemistry):
    packs = packs_of(1, soc=0.9, slow_period_s=0.0, chemistry=chemistry)
    reference = ScalarPack(soc=0.9, chemistry=int(chemistry))
    loss_j = 0.0
    for k in range(400):
        power_w = 60e3 if k < 300 else -40e3
        current, terminal_v, loss = reference.step(1.0, power_w)
        loss_j += loss
        packs.step(1.0, np.array([power_w]))
        assert packs.current_a[0] == pytest.approx(current, rel=1e-9)
        assert packs.terminal_v[0] == pytest.approx(terminal_v, rel=1e-9)
    packs.power_limits()  # brings the temperature up to date
    assert packs.soc[0] == pytest.approx(reference.soc, rel=1e-9)
    assert packs.v_rc[0] == pytest.approx(reference.v_rc, rel=1e-9)
    assert packs.temperature_c[0] == pytest.approx(reference.temperature_k - 273.15, rel=1e-9)
    assert packs.energy_loss_j[0] == pytest.approx(loss_j, rel=1e-9)


def test_constant_power_discharge_takes_the_right_charge_out():
    packs = packs_of(3, soc=0.8)
    moved_as = np.zeros(3)
    for _ in range(600):
        packs.step(0.5, np.array([30e3, 60e3, 0.0]))
        moved_as += packs.current_a * 0.5
    assert np.allclose((0.8 - packs.soc) * CAPACITY_AS, moved_as, rtol=1e-12)
    assert moved_as[1] > 1.9 * moved_as[0] and moved_as[2] == 0.0
    assert np.allclose(packs.terminal_v * packs.current_a, [30e3, 60e3, 0.0], rtol=1e-12)


def test_resistance_has_its_reference_at_25_c_and_half_charge_and_grows_at_the_ends_and_cold():
    packs = packs_of(3, soc=np.array([0.5, 0.0, 1.0]), resistance_ratio=1.5)
    r0, r1 = packs.resistance_ohm
    assert r0 == pytest.approx([0.15, 0.18, 0.18], rel=1e-12)
    assert r1 == pytest.approx(r0 / 2, rel=1e-12)
    cold = packs_of(1, soc=0.5, ambient_c=0.0)
    expected = 0.1 * math.exp(
        ACTIVATION_ENERGY_J_PER_MOL / GAS_CONSTANT_J_PER_MOL_K * (1 / 273.15 - 1 / 298.15)
    )
    assert cold.resistance_ohm[0][0] == pytest.approx(expected, rel=1e-12)


def test_ocv_is_series_cells_times_cell_ocv():
    packs = packs_of(2, soc=np.array([0.0, 0.5]), series_cells=np.array([96, 108]))
    assert packs.ocv_v() == pytest.approx([96 * 3.2, 108 * 3.697], rel=1e-12)


def test_a_drawn_mixed_fleet_has_the_right_ocv_and_delivers_in_limit_commands():
    fleet = draw_fleet(300, seed=3)
    soc = np.random.default_rng(3).uniform(0.1, 0.95, 300)
    packs = PackArray(fleet, soc=soc)
    expected = fleet.series_cells * ocv_cell(table_offsets(fleet.chemistry), soc)
    assert np.allclose(packs.ocv_v(), expected, rtol=1e-12)
    discharge_w, charge_w = packs.power_limits()
    command = np.where(np.arange(300) % 2 == 0, 0.5 * discharge_w, -0.5 * charge_w)
    packs.step(1.0, command)
    assert np.array_equal(packs.power_w, command)
    assert np.allclose(packs.terminal_v * packs.current_a, command, rtol=1e-12)


def test_cell_voltages_bracket_the_pack_and_spread_as_the_weak_cell_empties():
    packs = packs_of(2, soc=np.array([0.9, 0.2]), weakest_cell=0.94, strongest_cell=1.04)
    packs.step(1.0, np.array([40e3, 40e3]))
    assert np.allclose(packs.cell_v_min * 96, packs.terminal_v, rtol=1e-12)
    spread = packs.cell_v_max - packs.cell_v_min
    assert np.all(spread > 0) and spread[1] > spread[0]


# ----------------------------------------------------------------------------- invariants

KINDS = list(InjectedFault)


@st.composite
def scenarios(draw):
    n = draw(st.integers(1, 6))
    chemistry = draw(hnp.arrays(np.intp, n, elements=st.sampled_from([int(c) for c in Chemistry])))
    fleet = {
        "chemistry": chemistry,
        "soh": draw(hnp.arrays(float, n, elements=st.floats(0.55, 0.95))),
        "resistance_ratio": draw(hnp.arrays(float, n, elements=st.floats(1.0, 3.0))),
        "weakest_cell": draw(hnp.arrays(float, n, elements=st.floats(0.9, 1.0))),
        "strongest_cell": draw(hnp.arrays(float, n, elements=st.floats(1.0, 1.1))),
    }
    soc = draw(hnp.arrays(float, n, elements=st.floats(0.0, 1.0)))
    power = st.one_of(st.floats(-3e5, 3e5), st.sampled_from([0.0, 1e9, -1e9]))
    index = st.integers(0, n - 1)
    step = st.tuples(st.just("step"), st.floats(1e-3, 10.0), hnp.arrays(float, n, elements=power))
    action = st.one_of(
        step,
        step,
        st.tuples(st.just("contactors"), hnp.arrays(bool, n)),
        st.tuples(st.just("inject"), st.sampled_from(KINDS), index),
        st.tuples(st.just("clear"), st.sampled_from(KINDS), index),
        st.tuples(st.just("reset"), index),
        st.tuples(st.just("unprotect"), index),
    )
    return {
        "fleet": fleet,
        "soc": soc,
        "ambient_c": draw(st.floats(-20.0, 55.0)),
        "slow_period_s": draw(st.sampled_from([0.0, 1.0])),
        "unprotected": draw(st.one_of(st.just(np.zeros(n, dtype=bool)), hnp.arrays(bool, n))),
        "actions": draw(st.lists(action, min_size=1, max_size=40)),
    }


def apply(packs: PackArray, action: tuple) -> None:
    kind, *args = action
    if kind == "contactors":
        packs.command_contactors(args[0])
    elif kind == "inject":
        packs.inject(args[0], args[1])
    elif kind == "clear":
        packs.clear(args[0], args[1])
    elif kind == "unprotect":  # a welded contactor on a tripped pack
        packs.inject(InjectedFault.WELDED_CONTACTOR, args[0])
        packs.inject(InjectedFault.ISOLATION, args[0])
    else:
        packs.reset_faults(args[0])


@settings(max_examples=200, deadline=None)
@given(scenario=scenarios())
def test_invariants_hold_over_random_step_sequences(scenario):
    packs = PackArray(
        uniform_fleet(len(scenario["soc"]), **scenario["fleet"]),
        soc=scenario["soc"],
        ambient_c=scenario["ambient_c"],
        slow_period_s=scenario["slow_period_s"],
    )
    for index in np.flatnonzero(scenario["unprotected"]):
        apply(packs, ("unprotect", index))
    for action in scenario["actions"]:
        if action[0] != "step":
            apply(packs, action)
            continue
        _, dt, command = action
        discharge_w, charge_w = (limit.copy() for limit in packs.power_limits())
        closed = packs.contactor_closed.copy()
        protected = ~(closed & (packs.fault != 0))
        soc = packs.soc
        energy = np.stack([packs.energy_chemical_j, packs.energy_terminal_j, packs.energy_loss_j])
        packs.step(dt, command)
        event("a pack tripped" if np.any(packs.fault) else "no trip")
        event("unprotected pack" if not protected.all() else "all protected")
        event(
            "command beyond a limit"
            if np.any((command > discharge_w) | (command < -charge_w))
            else "in limits"
        )

        assert np.all((packs.soc >= 0.0) & (packs.soc <= 1.0))
        assert np.all(packs.current_a[~closed] == 0.0), "current through an open contactor"
        p = packs.power_w
        assert np.all(p[protected] <= discharge_w[protected]) and np.all(-p[protected] <= charge_w[protected])
        within = protected & (command <= discharge_w) & (command >= -charge_w)
        assert np.array_equal(p[within], command[within]), "an in-limit command is delivered as given"
        assert np.allclose(packs.terminal_v * packs.current_a, p, rtol=1e-9, atol=1e-6)
        assert np.allclose(
            (soc - packs.soc) * packs.capacity_ah * 3600.0, packs.current_a * dt, rtol=1e-9, atol=1e-9
        )
        step_energy = (
            np.stack([packs.energy_chemical_j, packs.energy_terminal_j, packs.energy_loss_j]) - energy
        )
        assert np.allclose(step_energy[1], p * dt, rtol=1e-9, atol=1e-6)
        scale = np.abs(energy).max() + np.abs(step_energy).max() + 1.0
        assert np.allclose(step_energy[0], step_energy[1] + step_energy[2], rtol=0, atol=1e-12 * scale)
        assert np.all(np.isfinite(packs.temperature_c)) and np.all(np.isfinite(packs.v_rc))
    total = packs.energy_terminal_j + packs.energy_loss_j
    assert np.allclose(packs.energy_chemical_j, total, rtol=1e-12, atol=1e-12 * (np.abs(total).max() + 1))


# ----------------------------------------------------------------------------- BMS limits


def test_limits_are_zero_for_open_and_tripped_packs_and_update_at_once():
    packs = packs_of(3)
    packs.command_contactors(np.array([True, False, True]))
    packs.inject(InjectedFault.ISOLATION, 2)
    packs.step(1e-3, np.zeros(3))
    discharge_w, charge_w = packs.power_limits()
    assert discharge_w[0] > 50e3 and charge_w[0] > 50e3
    assert discharge_w[1:].tolist() == [0.0, 0.0] and charge_w[1:].tolist() == [0.0, 0.0]


def test_published_limits_are_held_between_slow_updates():
    packs = packs_of(1, soc=0.6, slow_period_s=1.0)
    before = packs.power_limits()[0].copy()
    for _ in range(9):
        packs.step(0.1, np.array([80e3]))
        assert packs.power_limits()[0] == before
    packs.step(0.1, np.array([80e3]))
    assert packs.power_limits()[0] != before


@pytest.mark.parametrize(("soc", "fraction"), [(0.15, 1.0), (0.10, 0.5), (0.05, 0.0)])
def test_discharge_current_tapers_from_soc_0_15_to_0_05(soc, fraction):
    packs = packs_of(2, soc=soc, r0_new_ohm=0.01, r1_new_ohm=0.005)
    discharge_a, charge_a = currents_at_limits(packs)
    assert discharge_a[0] == pytest.approx(fraction * RATED_A, abs=1e-6)
    assert charge_a[0] == pytest.approx(RATED_A, abs=1e-6)


@pytest.mark.parametrize(("soc", "fraction"), [(0.85, 1.0), (0.915, 0.5), (0.98, 0.0)])
def test_charge_current_tapers_from_soc_0_85_to_0_98(soc, fraction):
    packs = packs_of(2, soc=soc, r0_new_ohm=0.01, r1_new_ohm=0.005)
    discharge_a, charge_a = currents_at_limits(packs)
    assert charge_a[0] == pytest.approx(fraction * RATED_A, abs=1e-6)
    assert discharge_a[0] == pytest.approx(RATED_A, abs=1e-6)


@pytest.mark.parametrize(
    ("ambient_c", "fraction"),
    [(-30.0, 0.2), (-10.0, 0.2), (0.0, 0.6), (10.0, 1.0), (45.0, 1.0), (52.5, 0.5), (61.0, 0.0)],
)
def test_current_derates_with_temperature(ambient_c, fraction):
    packs = packs_of(2, soc=0.5, ambient_c=ambient_c, r0_new_ohm=0.005, r1_new_ohm=0.002)
    discharge_a, charge_a = currents_at_limits(packs)
    assert discharge_a[0] == pytest.approx(fraction * RATED_A, abs=1e-6)
    assert charge_a[0] == pytest.approx(fraction * RATED_A, abs=1e-6)


def test_a_high_resistance_pack_is_held_to_its_cell_voltage_window():
    packs = packs_of(4, soc=np.array([0.3, 0.3, 0.8, 0.8]), resistance_ratio=4.0)
    discharge_a, charge_a = currents_at_limits(packs)
    assert np.all(discharge_a < RATED_A) and np.all(charge_a < RATED_A)
    assert packs.cell_v_min[0::2] == pytest.approx([CELL_V_MIN[Chemistry.NMC]] * 2, abs=1e-12)
    assert packs.cell_v_max[1::2] == pytest.approx([CELL_V_MAX[Chemistry.NMC]] * 2, abs=1e-12)


def test_a_weaker_pack_has_lower_limits():
    packs = packs_of(2, soc=0.5, soh=np.array([0.9, 0.6]), resistance_ratio=np.array([1.2, 2.5]))
    discharge_w, charge_w = packs.power_limits()
    assert discharge_w[0] > discharge_w[1] > 0 and charge_w[0] > charge_w[1] > 0


# ----------------------------------------------------------------------------- trips and contactors


def test_over_temperature_trips_latches_and_opens_only_that_pack():
    packs = packs_of(3)
    packs.inject(InjectedFault.THERMAL_RUNAWAY, 1, heat_w=50e3)
    for _ in range(600):
        packs.step(1.0, np.full(3, 20e3))
        if packs.fault[1]:
            break
    assert packs.fault.tolist() == [0, FaultCode.OVER_TEMPERATURE, 0]
    assert packs.temperature_c[1] > 65.0
    assert packs.contactor_closed.tolist() == [True, False, True]
    packs.step(1.0, np.full(3, 20e3))
    assert packs.current_a[1] == 0.0 and packs.current_a[0] > 0
    packs.clear(InjectedFault.THERMAL_RUNAWAY, 1)
    run(packs, 20000.0, np.zeros(3), dt=10.0)
    assert packs.fault[1] == FaultCode.OVER_TEMPERATURE, "a trip stays latched after its cause is gone"
    packs.command_contactors(True)
    assert not packs.contactor_closed[1], "a latched fault refuses the close"
    packs.reset_faults(1)
    packs.command_contactors(True)
    assert packs.contactor_closed.all()


def test_isolation_fault_latches_without_opening_and_again_after_a_reset_while_it_persists():
    packs = packs_of(2)
    packs.inject(InjectedFault.ISOLATION, 0)
    packs.step(0.1, np.zeros(2))
    assert packs.fault[0] == FaultCode.ISOLATION and packs.contactor_closed[0], "left to the pack manager"
    assert packs.power_limits()[0][0] == 0.0, "a faulted pack publishes no limits"
    packs.command_contactors(np.array([False, True]))
    packs.reset_faults(0)
    packs.command_contactors(True)
    packs.step(0.1, np.zeros(2))
    assert packs.fault[0] == FaultCode.ISOLATION
    packs.clear(InjectedFault.ISOLATION, 0)
    packs.reset_faults(0)
    packs.command_contactors(True)
    packs.step(0.1, np.zeros(2))
    assert packs.fault.tolist() == [0, 0] and packs.contactor_closed.all()


def test_a_welded_contactor_stays_closed_and_its_tripped_pack_still_carries_current():
    packs = packs_of(2, soc=0.5)
    packs.inject(InjectedFault.WELDED_CONTACTOR, 0)
    packs.command_contactors(False)
    assert packs.contactor_closed.tolist() == [True, False]
    packs.inject(InjectedFault.ISOLATION, 0)
    packs.step(0.1, np.zeros(2))
    assert packs.fault[0] & FaultCode.ISOLATION and packs.contactor_closed[0]
    assert packs.power_limits()[0][0] == 0.0, "the tripped BMS publishes no limits"
    packs.step(0.1, np.array([50e3, 50e3]))
    assert packs.power_w.tolist() == [50e3, 0.0], "the converter still draws what it is told"
    packs.step(0.1, np.array([1e9, 0.0]))
    assert packs.current_a[0] == pytest.approx(CONVERTER_CURRENT_RATIO * 300.0)
    assert packs.fault[0] & FaultCode.OVER_CURRENT


def test_an_unprotected_pack_driven_hard_trips_under_and_over_voltage_but_keeps_soc_in_range():
    packs = packs_of(2, soc=np.array([0.02, 0.97]))
    packs.inject(InjectedFault.WELDED_CONTACTOR, [0, 1])
    packs.inject(InjectedFault.ISOLATION, [0, 1])
    packs.step(0.1, np.zeros(2))
    packs.step(0.1, np.array([1e9, -1e9]))
    assert packs.fault[0] & FaultCode.UNDER_VOLTAGE and packs.fault[1] & FaultCode.OVER_VOLTAGE
    run(packs, 600.0, np.array([1e9, -1e9]), dt=10.0)
    assert packs.soc[0] >= 0.0 and packs.soc[1] <= 1.0
    assert packs.soc[0] < 1e-6 and packs.soc[1] > 1 - 1e-6


def test_a_contactor_that_failed_open_refuses_to_close_until_cleared():
    packs = packs_of(2)
    packs.inject(InjectedFault.CONTACTOR_FAILED_OPEN, 1)
    assert packs.contactor_closed.tolist() == [True, False]
    packs.command_contactors(True)
    assert packs.contactor_closed.tolist() == [True, False]
    packs.step(1.0, np.full(2, 10e3))
    assert packs.current_a[1] == 0.0 and packs.fault[1] == 0
    packs.clear(InjectedFault.CONTACTOR_FAILED_OPEN, 1)
    packs.command_contactors(True)
    assert packs.contactor_closed.all()


def test_injections_reject_unknown_parameters():
    packs = packs_of(1)
    with pytest.raises(TypeError, match="heat_w"):
        packs.inject(InjectedFault.THERMAL_RUNAWAY, 0, heat=1.0)
    with pytest.raises(TypeError):
        packs.inject(InjectedFault.ISOLATION, 0, offset=0.1)


# ----------------------------------------------------------------------------- what the BMS reports


def test_comms_loss_freezes_every_report_and_the_heartbeat_while_the_pack_moves_on():
    packs = packs_of(2, soc=0.7)
    run(packs, 3.0, np.full(2, 40e3))
    assert packs.heartbeat.tolist() == [3, 3]
    packs.inject(InjectedFault.BMS_COMMS_LOSS, 0)
    names = (
        "reported_soc",
        "reported_v",
        "reported_current_a",
        "reported_temperature_c",
        "cell_v_min",
        "cell_v_max",
    )
    frozen = {name: getattr(packs, name)[0] for name in names}
    run(packs, 60.0, np.array([80e3, 80e3]))
    assert packs.heartbeat.tolist() == [3, 63]
    for name in names:
        assert getattr(packs, name)[0] == frozen[name], name
    live = (packs.soc, packs.terminal_v, packs.current_a, packs.temperature_c)
    assert [getattr(packs, name)[1] for name in names[:4]] == [value[1] for value in live]
    assert packs.soc[0] < frozen["reported_soc"] - 0.005 and packs.current_a[0] > frozen["reported_current_a"]
    packs.clear(InjectedFault.BMS_COMMS_LOSS, 0)
    assert packs.heartbeat.tolist() == [3, 63]
    packs.step(1.0, np.zeros(2))
    assert packs.heartbeat.tolist() == [4, 64]
    assert packs.reported_soc[0] == packs.soc[0]


def test_soc_drift_offsets_the_reported_soc_only():
    drifting, steady = packs_of(2, soc=0.5), packs_of(2, soc=0.5)
    drifting.inject(InjectedFault.SOC_DRIFT, 1, offset=0.07)
    for packs in (drifting, steady):
        run(packs, 30.0, np.full(2, 50e3))
    assert np.array_equal(drifting.soc, steady.soc)
    assert drifting.reported_soc == pytest.approx(steady.soc + np.array([0.0, 0.07]), abs=1e-15)
    assert np.array_equal(drifting.reported_v, steady.reported_v)
    drifting.clear(InjectedFault.SOC_DRIFT, 1)
    assert np.array_equal(drifting.reported_soc, drifting.soc)


# ----------------------------------------------------------------------------- heat


def test_temperature_rises_under_current_and_relaxes_to_ambient():
    packs = packs_of(2, soc=0.9, ambient_c=20.0)
    temperatures = []
    for _ in range(30):
        run(packs, 60.0, np.array([70e3, 0.0]), dt=1.0)
        packs.power_limits()
        temperatures.append(packs.temperature_c.copy())
    rise = np.array(temperatures)[:, 0] - 20.0
    assert np.all(np.diff(rise) > 0) and rise[-1] > 1.0
    assert np.array_equal(np.array(temperatures)[:, 1], np.full(30, 20.0)), "an idle pack stays at ambient"
    packs.step(1.0, np.zeros(2))
    peak = packs.temperature_c[0]
    run(packs, 6 * 0.02 * 1.5e5, np.zeros(2), dt=10.0)
    packs.power_limits()
    assert packs.temperature_c[0] - 20.0 < 0.01 * (peak - 20.0)
    assert packs.temperature_c[0] > 20.0


def test_ambient_changes_pull_the_temperature_along():
    packs = packs_of(1, ambient_c=25.0)
    packs.ambient_c = 40.0
    run(packs, 6 * 0.02 * 1.5e5, np.zeros(1), dt=10.0)
    packs.power_limits()
    assert packs.temperature_c[0] == pytest.approx(40.0, abs=0.05)


def test_rejects_bad_inputs():
    with pytest.raises(ValueError):
        packs_of(1, soc=1.2)
    packs = packs_of(1)
    for dt in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError):
            packs.step(dt, np.zeros(1))


def test_a_pack_can_be_reparameterised_without_touching_the_others():
    packs = PackArray(uniform_fleet(3), soc=0.5)
    before_limits = packs.power_limits()[0].copy()
    packs.set_soc(1, 0.9)
    assert packs.soc == pytest.approx([0.5, 0.9, 0.5])
    packs.set_capacity(1, 50.0)
    assert packs.capacity_ah[1] == pytest.approx(50.0)
    assert packs.soc[1] == pytest.approx(0.9), "a new capacity keeps the state of charge"
    packs.set_resistance(2, 2.0 * (packs.fleet.r0_new_ohm[2] + packs.fleet.r1_new_ohm[2]))
    assert packs.fleet.resistance_ratio[2] == pytest.approx(2.0)
    r0 = packs.resistance_ohm[0]
    assert r0[2] > r0[0]
    assert packs.power_limits()[0][0] == pytest.approx(before_limits[0])

    energy_before = packs.energy_capacity_j[1]
    packs.step(10.0, np.array([0.0, 20e3, 0.0]))
    drop = 0.9 - packs.soc[1]
    assert drop == pytest.approx(20e3 * 10.0 / (packs.terminal_v[1] * 50.0 * 3600.0), rel=0.02)
    assert energy_before < PackArray(uniform_fleet(3)).energy_capacity_j[1]


def test_an_uploaded_ocv_curve_sets_that_packs_voltage():
    packs = PackArray(uniform_fleet(2), soc=0.5)
    packs.set_ocv_curve(0, np.array([0.0, 0.5, 1.0]), np.array([300.0, 350.0, 400.0]))
    assert packs.ocv_v()[0] == pytest.approx(350.0)
    assert packs.ocv_v()[1] != pytest.approx(350.0)
    packs.set_soc(0, 0.75)
    assert packs.ocv_v()[0] == pytest.approx(375.0)
    with pytest.raises(ValueError, match="rise strictly"):
        packs.set_ocv_curve(0, np.array([0.0, 0.0, 1.0]), np.array([300.0, 350.0, 400.0]))
    with pytest.raises(ValueError, match="never fall"):
        packs.set_ocv_curve(0, np.array([0.0, 0.5, 1.0]), np.array([300.0, 250.0, 400.0]))


def test_injected_conditions_are_visible():
    packs = PackArray(uniform_fleet(4))
    packs.inject(InjectedFault.BMS_COMMS_LOSS, 2)
    assert packs.injected(InjectedFault.BMS_COMMS_LOSS).tolist() == [False, False, True, False]
    packs.clear(InjectedFault.BMS_COMMS_LOSS, 2)
    assert not packs.injected(InjectedFault.BMS_COMMS_LOSS).any()
