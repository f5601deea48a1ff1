"""``gridhil plant-demo``: the reference plant through a grid outage, told in plain words.

The racks run at full load; the grid is lost at 10 s and comes back at 40 s. No controller is in
the loop: the plant's own static switch islands it, and a scripted operator asks for a
sync-checked reclose once the grid is back, nudging the island's frequency so the phase slips into
the sync-check window.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np

from harness.sim.itic import ItiRegion, itic_region
from harness.sim.load import Constant
from harness.sim.pcs import PcsControl
from harness.sim.plant import Plant, PlantConfig

RESYNC_SLIP_HZ = 0.05
STEP_S = 0.01


@dataclass(frozen=True)
class DemoScenario:
    duration_s: float = 60.0
    outage_at_s: float = 10.0
    restore_at_s: float = 40.0
    reclose_after_s: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.outage_at_s < self.restore_at_s < self.duration_s:
            raise ValueError(
                "plant-demo needs 0 < outage-at < restore-at < duration, got "
                f"{self.outage_at_s}, {self.restore_at_s}, {self.duration_s}"
            )


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plant-demo",
        help="run the simulated reference plant through a grid outage and explain what happened",
        description=__doc__,
    )
    parser.add_argument("--packs", type=int, default=805, help="number of packs in the fleet (default 805)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fleet draw (default 0)")
    parser.add_argument("--duration", type=float, default=60.0, help="simulated seconds (default 60)")
    parser.add_argument("--outage-at", type=float, default=10.0, help="grid lost at (s, default 10)")
    parser.add_argument("--restore-at", type=float, default=40.0, help="grid back at (s, default 40)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        scenario = DemoScenario(args.duration, args.outage_at, args.restore_at)
        plant = Plant.build(PlantConfig(packs=args.packs, seed=args.seed))
    except ValueError as error:
        print(f"gridhil plant-demo: {error}")
        return 2
    for line in demo(plant, scenario):
        print(line)
    return 0


def demo(plant: Plant, scenario: DemoScenario) -> list[str]:
    """Run the scenario on ``plant`` and return the summary lines."""
    fleet_wh = float(plant.packs.fleet.nameplate_wh.sum())
    lines = [
        "gridhil plant demo: the simulated reference plant through a grid outage",
        f"  fleet  {plant.packs.n} second-life packs, {fleet_wh / 1e6:.1f} MWh nameplate, "
        f"mean state of health {plant.packs.fleet.soh.mean():.2f}",
        f"  PCS    {plant.pcs.rated_w / 1e6:.0f} MW in {len(plant.pcs.units)} units; "
        f"PV {plant.pv.rated_ac_w / 1e6:.0f} MW; racks {plant.load.rated_w / 1e6:.0f} MW at full load",
        f"  script grid lost at {scenario.outage_at_s:g} s, back at {scenario.restore_at_s:g} s; "
        f"reclose asked {scenario.reclose_after_s:g} s later",
        "",
    ]
    plant.load.set_profile(Constant(1.0), at=0.0)
    plant.pcs.control = PcsControl.PCC_SMOOTHING
    plant.grid.outage(at=scenario.outage_at_s)
    plant.grid.restore(at=scenario.restore_at_s)
    soc_before = float(plant.packs.soc.mean())
    islanded_frequency: list[float] = []
    reclose_at = scenario.restore_at_s + scenario.reclose_after_s
    started = time.perf_counter()
    while plant.t < scenario.duration_s - 1e-9:
        if plant.t >= reclose_at and not plant.pcc.closed and not plant.pcc.close_requested:
            plant.pcs.frequency_setpoint_hz = plant.grid.nominal_frequency_hz + RESYNC_SLIP_HZ
            plant.pcc.request_close(sync_check=True)
        if plant.pcc.closed:
            plant.pcs.frequency_setpoint_hz = plant.grid.nominal_frequency_hz
        bus = plant.step(min(STEP_S, scenario.duration_s - plant.t))
        if not plant.pcc.closed and bus.voltage_pu > 0.5:
            islanded_frequency.append(bus.frequency_hz)
    wall_s = time.perf_counter() - started

    lines.append("What happened")
    lines.extend(f"  t={entry.t:9.3f} s  {entry.text}" for entry in plant.journal)
    lines.append("")
    lines.append("Rack bus (power-quality log, 1 ms resolution)")
    events = plant.voltage_events.events
    if not events:
        lines.append("  no dips, swells or interruptions")
    for event in events:
        region = itic_region(event.residual_pu, event.duration_s)
        verdict = "inside ITIC" if region is ItiRegion.NO_INTERRUPTION else f"outside ITIC ({region.value})"
        lines.append(
            f"  {event.kind.value:<12} at {event.start_s:8.3f} s lasting {event.duration_s * 1e3:7.1f} ms, "
            f"residual {event.residual_pu:.2f} pu: {verdict}"
        )
    ledger = plant.energy
    demanded = ledger.load_served_j + ledger.load_unserved_j
    lines.append("")
    lines.append("Racks")
    lines.append(
        f"  served {100 * ledger.load_served_j / demanded:.3f} % of the energy they asked for; "
        f"dropped {plant.load.drop_count} time(s)"
    )
    if islanded_frequency:
        lines.append(
            f"  island frequency {min(islanded_frequency):.2f} to {max(islanded_frequency):.2f} Hz"
        )
    for close in plant.pcc.closes:
        lines.append(
            f"  breaker closed at {close.t:.3f} s with dV {close.sync.dv_pu * 100:+.1f} %, "
            f"df {close.sync.df_hz:+.3f} Hz, dtheta {close.sync.dtheta_deg:+.1f} deg"
        )
    lines.append("")
    lines.append("Energy")
    lines.append(
        f"  battery {ledger.battery_dc_j / 3.6e6:8.1f} kWh  grid {ledger.grid_j / 3.6e6:8.1f} kWh  "
        f"PV {ledger.pv_j / 3.6e6:8.1f} kWh  PCS losses {ledger.pcs_loss_j / 3.6e6:6.1f} kWh"
    )
    lines.append(
        f"  fleet SOC {100 * soc_before:.2f} % -> {100 * float(np.mean(plant.packs.soc)):.2f} %; "
        f"energy balance error {ledger.balance_error_j:.3g} J"
    )
    lines.append(f"  {scenario.duration_s:g} simulated seconds took {wall_s:.2f} s of wall time")
    return lines
