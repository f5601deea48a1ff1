"""docs/register-map.md is generated from the stand-ins' maps and prints both numberings of every point."""

from __future__ import annotations

import threading

import pytest

from harness.sim.modbus import RegisterMap
from harness.sim.plant import Plant, PlantConfig
from harness.sim.standins.pcc_meter import PccMeter
from harness.sim.standins.pcs_face import PcsFace, pack_array_map, pack_block_map
from harness.sim.standins.register_doc import DOC_PATH, REGENERATE, main, render

COLUMNS = ("point", "PDU address", "register (1-based)", "reference (4x)")


@pytest.fixture(scope="module")
def rendered():
    return render()


@pytest.fixture(scope="module")
def maps():
    """The maps the page documents, built here from the reference plant as a user would."""
    plant = Plant.build(PlantConfig())
    lock = threading.RLock()
    return [PccMeter(plant, lock).maps[1], PcsFace(plant, lock).maps[1], pack_block_map(), pack_array_map()]


def sections(text: str) -> dict[str, list[list[str]]]:
    """Heading -> the rows of the table under it, as cells."""
    tables: dict[str, list[list[str]]] = {}
    heading = ""
    for line in text.splitlines():
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
            tables[heading] = []
        elif line.startswith("| `"):
            tables[heading].append([cell.strip() for cell in line.strip("|").split(" | ")])
    return tables


def modicon_reference(address: int) -> int:
    return 40001 + address if address <= 9998 else 400001 + address


def test_committed_page_is_what_the_maps_generate(rendered):
    assert DOC_PATH.read_text(encoding="utf-8") == rendered, f"docs/register-map.md is stale: {REGENERATE}"


def test_every_point_is_listed_with_its_pdu_address_and_4x_reference(rendered, maps: list[RegisterMap]):
    tables = sections(rendered)
    for regmap in maps:
        rows = tables[regmap.title]
        assert len(rows) == len(regmap.points)
        for row, point in zip(rows, regmap.points, strict=True):
            name, pdu, register, reference = row[:4]
            assert name == f"`{point.name}`"
            assert int(pdu) == point.pdu_address
            assert int(register) == point.pdu_address + 1
            assert int(reference) == modicon_reference(point.pdu_address)
    meter_rows = {row[0]: row for row in tables[maps[0].title]}
    assert meter_rows["`SunS`"][1:4] == ["40000", "40001", "440001"]
    pack_rows = {row[0]: row for row in tables[maps[2].title]}
    assert pack_rows["`SoC`"][1:4] == ["0", "1", "40001"]


def test_page_documents_the_codes_of_the_enumerated_registers(rendered):
    tables = sections(rendered)
    assert "`microgrid.PccCmd`" in tables and "`battery.ChaSt`" in tables
    assert "| 3 | CLOSE_NO_SYNC |" in rendered
    assert "| 16 | ISOLATION |" in rendered  # pack fault bits


def test_main_writes_the_page_and_check_mode_spots_a_stale_one(tmp_path, rendered, capsys):
    page = tmp_path / "register-map.md"
    page.write_text("an old page\n", encoding="utf-8")
    assert main(["--check", "--output", str(page)]) == 1
    assert "stale" in capsys.readouterr().err
    assert main(["--output", str(page)]) == 0
    assert page.read_text(encoding="utf-8") == rendered
    assert main(["--check", "--output", str(page)]) == 0
