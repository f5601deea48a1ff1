"""Writes ``docs/register-map.md`` from the register maps the PCC meter and the PCS/BMS face serve.

The page is generated, never edited by hand: ``python -m harness.sim.standins.register_doc`` rewrites it,
``--check`` only says whether it is current (a test runs the same comparison). The maps are built for the
reference plant (``PlantConfig()``), whose ratings set the valid ranges the tables show.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from enum import IntEnum, IntFlag
from pathlib import Path

from harness.generated_doc import generated_page_main
from harness.sim.packs import FaultCode
from harness.sim.plant import Plant, PlantConfig
from harness.sim.standins import sunspec_models as codes
from harness.sim.standins.pcc_meter import METER_UNIT, PccMeter
from harness.sim.standins.pcs_face import (
    COUNTER_MODULUS,
    FACE_UNIT,
    PACK_ARRAYS_TEXT,
    PACK_REGISTERS,
    PACKS_PER_UNIT,
    PcsFace,
    pack_array_map,
    pack_block_map,
)

DOC_PATH = Path(__file__).resolve().parents[3] / "docs" / "register-map.md"
REGENERATE = "python -m harness.sim.standins.register_doc"

INTRO = f"""\
# Register maps of the Modbus stand-ins

Generated from the register maps by `{REGENERATE}`; do not edit by hand (a test
compares this page with the maps). Ranges are those of the reference plant: 12 MW PCS of 4 units,
480 V / 60 Hz, 805 packs.

## Conventions

- **Numbering.** Every point carries three numbers. *PDU address*: 0-based, what travels on the wire
  and what pymodbus takes. *Register*: address + 1, the 1-based number SunSpec and most manuals print.
  *Reference*: the Modicon holding-register number, 40001 + address below address 9999, 400001 +
  address from there on. `SunS` sits at PDU address 40000 = register 40001 = reference 440001.
- **Function codes.** Holding registers only: 3 (read), 6 and 16 (write), 23 (read/write). Coils,
  discrete inputs and input registers answer exception 01; unmapped addresses answer 02. A unit id the
  stand-in does not serve answers exception 0B (gateway target failed to respond).
- **Values.** Multi-register values are big-endian in bytes and words. Value = raw x 10^sf, where sf is
  the point's scale factor: the name of a `sunssf` point of the same model (SunSpec; its fixed value is
  in its description) or a fixed exponent written as a number. Every type has a "not implemented"
  pattern (int16 0x8000, uint16/enum16/bitfield16 0xFFFF, acc32 0, strings all NUL) for points the
  simulation has nothing for.
- **Writes.** A write must cover whole writable points, else exception 02 (read-only points, including
  the standard's writable points the simulation does not implement). A value outside the valid values,
  an unknown enum code or a "not implemented" pattern is exception 03. Either way nothing changes: a
  multi-register write is all-or-nothing. Command registers act when written, do nothing when 0 is
  written, and read back 0. Every accepted write reaches the plant before the response; breaker
  requests are carried out at the plant's next step.
- **Signs.** PCC meter: W > 0 is power imported from the grid, W < 0 exported. PCS, bank and packs:
  W and A > 0 discharge the batteries (the PCS injects into the bus), < 0 charge them.
- **Heartbeats and counters** count up to {COUNTER_MODULUS - 1} and wrap to 0.
"""

METER_TEXT = f"""\
## PCC meter (unit {METER_UNIT})

SunSpec models 1 and 203 at 40000. Voltage and frequency are measured on the grid side of the PCC
breaker (they stay live while the plant is islanded), power through the breaker. The plant runs at unity
power factor with balanced phases: VA = |W|, VAR = 0, each phase a third of the total; `A` is the sum of
the phase currents. Read-only apart from `common.DA`.
"""

FACE_TEXT = f"""\
## PCS/BMS face (unit {FACE_UNIT}, more units for fleets over {PACKS_PER_UNIT} packs)

The controller under test reads and commands the plant only here. Unit {FACE_UNIT} serves, at 40000,
SunSpec models 1 (common), 701 (DER AC measurement, at the PCS terminals), 704 (DER AC controls), 802
(the fleet as one battery bank) and the vendor model 64900 (microgrid: PCS mode, PCC breaker, sync
check, black start, PCS units, pack sharing); and, from address 0, one {PACK_REGISTERS}-register block
per pack. Pack i lives on unit {FACE_UNIT} + i // {PACKS_PER_UNIT} at PDU address {PACK_REGISTERS} x
(i mod {PACKS_PER_UNIT}): the {PACKS_PER_UNIT} whole blocks that fit below 40000 (addresses
0-{PACKS_PER_UNIT * PACK_REGISTERS - 1}). Units 2 and up carry the blocks of their packs and, at 40000, a
SunSpec image with model 1 only (serial number suffixed `-U<unit>`).

Model 704's active power setpoint (`WSetEna`, `WSetMod`, `WSet` / `WSetPct`, capped by `WMaxLimPct`
when `WMaxLimPctEna` is 1) is the PCS dispatch it follows while grid-following; with `WSetEna` 0 the
dispatch is 0 W. `AntiIslEna` 1 means the PCS ceases when the PCC breaker opens (the vendor model's
`IslEna` 0; both registers show the same setting).
"""

PACK_TEXT = """\
### Per-pack blocks

Values are what each pack's BMS reports: when a pack's BMS link is lost its block keeps the last values
and its heartbeat stops while the true pack moves on. `ContSt` and `Flt` are live. Values beyond a
point's range read as the nearest end of the range. A block's three command registers are
contiguous but the next pack's block starts with read-only registers, so commanding many packs goes
faster through the per-pack arrays below, which act exactly like the blocks' registers. While
`microgrid.PackShrEna` is 1 the `WCmd` values of all packs are the plant's pack shares (the PCS draws
what the bus needs and the commands split it; charging splits by the negated commands); while it is 0
the plant shares by available energy.
"""

CODE_TABLES: tuple[tuple[str, type[IntEnum]], ...] = (
    ("`ac_meter.Evt` (bit positions)", codes.MeterEventBit),
    ("`DERMeasureAC.St`", codes.OperatingState),
    ("`DERMeasureAC.InvSt`", codes.InverterState),
    ("`DERMeasureAC.ConnSt`", codes.ConnectionState),
    ("`DERMeasureAC.Alrm` (bit positions)", codes.DerAlarmBit),
    ("`DERMeasureAC.DERMode` (bit positions)", codes.DerModeBit),
    ("every `...Ena` point", codes.Enable),
    ("`DERCtlAC.WSetMod`", codes.PowerSetMode),
    ("`battery.ChaSt`", codes.ChargeStatus),
    ("`battery.State`", codes.BankState),
    ("`battery.Evt1` (bit positions)", codes.BatteryEventBit),
    ("`battery.SetOp`", codes.BankOperation),
    ("`microgrid.ModeReq`", codes.ModeRequest),
    ("`microgrid.PcsMode`", codes.PcsModeCode),
    ("`microgrid.Ctl`", codes.PcsControlCode),
    ("`microgrid.PccSt`", codes.BreakerState),
    ("`microgrid.PccPend`", codes.BreakerPending),
    ("`microgrid.PccCmd`", codes.BreakerCommand),
    ("`microgrid.PccOpenRsn`", codes.OpenReason),
    ("`microgrid.BlkStrt`, `microgrid.PcsRst`, `battery.AlmRst`, pack `FltRst`", codes.Act),
    ("pack `ContSt`, `ContCmd`", codes.Contactor),
    ("pack `Flt` (bit values)", FaultCode),
)


def code_table(title: str, enum: type[IntEnum]) -> str:
    rows = [f"#### {title}", "", "| code | meaning |", "|---:|---|"]
    members: list[IntEnum] = list(enum)
    if issubclass(enum, IntFlag):
        members = [member for member in members if member.value]
    rows += [f"| {int(member)} | {member.name} |" for member in members]
    return "\n".join(rows) + "\n"


def render() -> str:
    """The whole page, from freshly built maps."""
    plant = Plant.build(PlantConfig())
    lock = threading.RLock()
    meter = PccMeter(plant, lock)
    face = PcsFace(plant, lock)
    sections = [
        INTRO,
        METER_TEXT,
        meter.maps[METER_UNIT].markdown_table(),
        FACE_TEXT,
        face.maps[FACE_UNIT].markdown_table(),
        PACK_TEXT,
        pack_block_map().markdown_table(),
        PACK_ARRAYS_TEXT,
        pack_array_map().markdown_table(),
        "### Codes\n",
        *(code_table(title, enum) for title, enum in CODE_TABLES),
    ]
    return "\n".join(sections)


def main(argv: Sequence[str] | None = None) -> int:
    return generated_page_main(
        argv, render=render, default_path=DOC_PATH, regenerate=REGENERATE, what="the stand-ins' maps"
    )


if __name__ == "__main__":
    raise SystemExit(main())
