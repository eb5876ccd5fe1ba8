"""The ``sbs`` dispatcher: verbs come from the ``sbs.commands`` entry-point group, and every help
page renders (argparse %-formats help strings, so a literal ``%`` in a verb's HELP used to crash
``sbs --help``)."""
import subprocess
import sys
import types

import pytest

from sbs_model import cli

VERBS = {"data", "demo", "diff", "eval", "explore", "info", "regress", "synth", "train", "verilog"}


def test_every_existing_verb_is_registered_in_its_package():
    eps = cli.verb_entry_points()
    assert VERBS <= set(eps)
    home = {"verilog": "rtl", "synth": "rtl", "regress": "sim", "demo": "sim"}
    for name in VERBS:
        assert eps[name].value == f"{home.get(name, 'sbs_model')}.commands.{name}"


@pytest.mark.parametrize("argv", [["--help"], ["-h"]])
def test_top_level_help_lists_every_verb(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "95 % interval" in out  # eval's HELP, printed with its literal percent sign
    for name in VERBS:
        assert f"\n    {name} " in out, name


def test_no_verb_prints_help_and_exits_2(capsys):
    assert cli.main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_sbs_help_in_a_subprocess():
    res = subprocess.run([sys.executable, "-m", "sbs_model.cli", "--help"], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert "95 % interval" in res.stdout and "Traceback" not in res.stderr


def test_every_verb_help_renders(capsys):
    for name in sorted(cli.verb_entry_points()):
        with pytest.raises(SystemExit) as exc:
            cli.main([name, "--help"])
        assert exc.value.code == 0, name
        assert f"usage: sbs {name}" in capsys.readouterr().out


def test_a_verb_whose_import_fails_is_listed_and_fails_cleanly(monkeypatch, capsys):
    class Broken:
        name, value = "broken", "nowhere.commands.broken"

        def load(self):
            raise ModuleNotFoundError("No module named 'nowhere'")

    real = cli.verb_entry_points
    monkeypatch.setattr(cli, "verb_entry_points", lambda: {**real(), "broken": Broken()})
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "broken" in capsys.readouterr().out
    assert cli.main(["broken", "x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sbs broken: error:") and "nowhere" in err[0]


def test_a_tool_failure_is_one_line_and_exit_1(monkeypatch, capsys):
    """A verb whose tool run fails after its checks (e.g. a Verilator build of `sbs cosim`) prints one
    line, no traceback, and exits 1."""
    failing = types.SimpleNamespace(NAME="failing", HELP="fails", add_arguments=lambda p: None,
                                    run=lambda args: (_ for _ in ()).throw(RuntimeError("verilator build failed")))

    class EP:
        name, value = "failing", "tests.failing"

        def load(self):
            return failing

    real = cli.verb_entry_points
    monkeypatch.setattr(cli, "verb_entry_points", lambda: {**real(), "failing": EP()})
    assert cli.main(["failing"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["sbs failing: failed: verilator build failed"]
