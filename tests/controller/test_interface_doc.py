"""docs/controller-interface.md is generated from the controller's face and documents every register."""

from __future__ import annotations

import threading

from harness.controller.face import ControllerFace, EnableCommand
from harness.controller.interface_doc import DOC_PATH, REGENERATE, main, render
from harness.controller.model import Alarm, ControllerCommands, ControllerMode, ControllerStatus


def rows(text: str) -> dict[str, list[str]]:
    """Point name -> its table row's cells, for the register table rows."""
    table: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.startswith("| `"):
            cells = [cell.strip() for cell in line.strip("|").split(" | ")]
            table[cells[0].strip("`")] = cells
    return table


def test_committed_page_is_what_the_face_generates():
    assert DOC_PATH.read_text(encoding="utf-8") == render(), (
        f"docs/controller-interface.md is stale: {REGENERATE}"
    )


def test_every_point_of_the_served_map_is_listed_with_both_numberings():
    face = ControllerFace(ControllerStatus, ControllerCommands(), threading.RLock())  # never started
    table = rows(render())
    for point in face.register_map.points:
        cells = table[point.name]
        assert int(cells[1]) == point.pdu_address
        assert int(cells[2]) == point.pdu_address + 1
        assert int(cells[3]) == 400001 + point.pdu_address
        assert cells[8] == point.access.value
    assert table["SunS"][1:4] == ["40000", "40001", "440001"]


def test_page_documents_the_codes_and_the_timing_contract():
    text = render()
    for enum in (ControllerMode, EnableCommand):
        for member in enum:
            assert f"| {int(member)} | {member.name} |" in text
    for bit in Alarm:
        if bit:
            assert f"| {int(bit)} | {bit.name} |" in text
    assert "10 Hz" in text and "more than 1 s as a dead controller" in text
    assert "gridhil sim --write-bench" in text and "roles.controller" in text


def test_main_writes_the_page_and_check_mode_spots_a_stale_one(tmp_path, capsys):
    page = tmp_path / "controller-interface.md"
    page.write_text("an old page\n", encoding="utf-8")
    assert main(["--check", "--output", str(page)]) == 1
    assert "stale" in capsys.readouterr().err
    assert main(["--output", str(page)]) == 0
    assert page.read_text(encoding="utf-8") == render()
    assert main(["--check", "--output", str(page)]) == 0
