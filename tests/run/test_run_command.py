"""``gridhil run``: resolving sequences, printing verdicts, exit status."""

from __future__ import annotations

import json

import pytest

from harness import cli
from harness.run_command import resolve
from tests.run import SMALL_PACKS, outage_sequence_text


def gridhil(capsys, *argv: str) -> tuple[int, str]:
    code = cli.main(["run", *argv])
    return code, capsys.readouterr().out


@pytest.fixture
def sequence_file(tmp_path):
    def write(criteria: str) -> str:
        path = tmp_path / "short.toml"
        path.write_text(outage_sequence_text(criteria))
        return str(path)

    return write


def test_a_passing_sequence_file_prints_its_verdicts_and_exits_0(capsys, tmp_path, sequence_file):
    path = sequence_file('name = "itic"\n\n[[criteria]]\nname = "soc_bounds"')
    out_dir = tmp_path / "out"
    code, out = gridhil(capsys, path, "--out", str(out_dir), "--packs", str(SMALL_PACKS), "--seed", "5")
    assert code == 0, out
    assert "PASS itic[itic]: measured" in out and "PASS soc_bounds" in out
    assert "margin" in out and "limit" in out
    record = json.loads((out_dir / "short-outage" / "record.json").read_text())
    assert record["seed"] == 5 and record["status"] == "completed"


def test_a_failing_criterion_prints_fail_and_exits_1(capsys, tmp_path, sequence_file):
    impossible = 'name = "frequency_band"\nlimits = { low_hz = 60.2, high_hz = 60.5 }'
    code, out = gridhil(
        capsys, sequence_file(impossible), "--out", str(tmp_path), "--packs", str(SMALL_PACKS)
    )
    assert code == 1
    assert "FAIL frequency_band" in out and "FAILED" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["no-such-sequence"], "no library sequence of that id; ids: "),
        (["unplanned-island-full-load", "--variant", "no-such-variant"], "unknown variant 'no-such-variant'"),
        (["unplanned-island-full-load", "--packs", "0"], "--packs must be at least 1"),
    ],
)
def test_bad_input_exits_2_with_the_reason(capsys, argv, message):
    code, out = gridhil(capsys, *argv)
    assert code == 2
    assert message in out
    assert "PASS" not in out and "FAIL" not in out, "nothing ran"


def test_an_invalid_sequence_file_exits_2_naming_the_file_and_key(capsys, tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text(outage_sequence_text().replace('call = "grid.outage"', 'call = "grid.explode"'))
    code, out = gridhil(capsys, str(path))
    assert code == 2
    assert str(path) in out and "call" in out


def test_a_library_id_resolves_to_the_library_sequence():
    (sequence,) = resolve(["unplanned-island-full-load"])
    assert sequence.id == "unplanned-island-full-load" and sequence.source.endswith(".toml")
