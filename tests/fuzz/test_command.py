"""``gridhil fuzz``: bad input exits 2 and names the problem before anything runs."""

from __future__ import annotations

import pytest

from harness import cli


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--variant", "no-such-variant"], "unknown variant 'no-such-variant'; known: "),
        (["--examples", "0"], "examples must be at least 1, not 0"),
        (["--packs", "0"], "packs must be at least 1, not 0"),
        (["--shrink-s", "-1"], "shrink_s must be at least 0, not -1"),
        (["--bench", "no-such-bench.toml"], "no-such-bench.toml"),
        (["--bench", "BENCH", "--variant", "never-island"], "a lab bench has its own"),
        (["--bench", "BENCH", "--packs", "24"], "a lab bench has its own"),
    ],
)
def test_bad_input_exits_2_naming_the_problem(argv, message, capsys, tmp_path):
    argv = [str(tmp_path / "bench.toml") if arg == "BENCH" else arg for arg in argv]
    code = cli.main(["fuzz", *argv, "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert code == 2
    assert message in out
    assert not (tmp_path / "out").exists(), "nothing ran"


def test_an_out_that_is_a_file_is_refused(capsys, tmp_path):
    (tmp_path / "taken").write_text("")
    assert cli.main(["fuzz", "--out", str(tmp_path / "taken")]) == 2
    assert "is not a directory" in capsys.readouterr().out


def test_out_is_required(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["fuzz", "--variant", "never-island"])
    assert exit_.value.code == 2
    assert "--out" in capsys.readouterr().err
