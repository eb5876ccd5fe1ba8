"""The command-line contract, for every verb of the ``sbs.commands`` entry-point group:

* ``sbs VERB --help`` exits 0;
* bad input -- including an output path that is a file, lies under a file or is a directory
  where a file belongs -- exits 2 with one error line naming the argument, before any work
  (nothing on stdout) and with nothing written;
* a run that produced nothing useful exits non-zero.

Verbs without an entry in ``BAD_INPUT`` still get the ``--help`` and unknown-option checks."""
from __future__ import annotations

import json
import os

import pytest

from sbs_model.cli import main, verb_entry_points

VERBS = sorted(verb_entry_points())


def snapshot(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture
def paths(tmp_path):
    """``FILE`` an existing regular file, ``DIR`` an existing empty directory, ``DESIGN`` a design
    directory whose manifest names a missing Verilog file, ``GRID`` a tiny exploration grid,
    ``BADJSON`` a design directory with a malformed manifest."""
    f = tmp_path / "a_file"
    f.write_text("not a directory\n")
    d = tmp_path / "a_dir"
    d.mkdir()
    design = tmp_path / "design"
    design.mkdir()
    (design / "manifest.json").write_text(json.dumps(
        {"top": "sbs_dot_l5", "unit": "dot", "lanes": 1, "layer": 5, "S": 96, "N": 10, "T": 16, "datapath": {},
         "verilog": "sbs_dot_l5.v", "verilog_sha256": "0" * 64}))
    bad = tmp_path / "badjson"
    bad.mkdir()
    (bad / "manifest.json").write_text("{bad json")
    grid = tmp_path / "grid.toml"
    grid.write_text('name = "t"\n[base]\nweights = "w.npz"\nn = 2\nspikes = 2\n[[point]]\nfloat = true\n')
    return {"FILE": str(f), "DIR": str(d), "DESIGN": str(design), "BADJSON": str(bad), "GRID": str(grid),
            "TMP": str(tmp_path)}


def fill(argv, paths):
    out = []
    for a in argv:
        for k, v in paths.items():
            a = a.replace("{" + k + "}", v)
        out.append(a)
    return out


# verb -> [(argv, text the one error line must contain)]; {FILE}/{DIR}/... from the fixture.
BAD_INPUT = {
    "info": [(["--spikes", "0"], "--spikes")],
    "data": [(["--to", "{FILE}"], "--to {FILE}: is a file"),
             (["--to", "{FILE}/sub"], "--to {FILE}/sub: {FILE} is a file"),
             (["--from", "{FILE}"], "--from {FILE}: is a file")],
    "eval": [(["-n", "1", "--json", "{DIR}"], "--json {DIR}: is a directory"),
             (["-n", "1", "--json", "{FILE}/r.json"], "--json {FILE}/r.json: {FILE} is a file"),
             (["-n", "0"], "-n")],
    "diff": [(["-n", "1", "--save-a", "{DIR}"], "--save-a {DIR}: is a directory"),
             (["-n", "1", "--save-b", "{FILE}/b.npz"], "--save-b {FILE}/b.npz: {FILE} is a file"),
             (["-n", "1", "--json", "{DIR}"], "--json {DIR}: is a directory")],
    "train": [(["--data", "{DIR}", "--epochs", "1", "--out", "{FILE}"], "--out {FILE}: is a file"),
              (["--data", "{DIR}", "--epochs", "1", "--out", "{FILE}/run"], "--out {FILE}/run: {FILE} is a file"),
              (["--data", "{DIR}", "--epochs", "1", "--out", "{TMP}/run", "--threads", "0"], "--threads")],
    "explore": [(["--grid", "{GRID}", "--out", "{FILE}"], "--out {FILE}: is a file")],
    "verilog": [(["--layer", "5", "-o", "{FILE}"], "-o/--out {FILE}: is a file"),
                (["--layer", "5", "-o", "{FILE}/sub"], "-o/--out {FILE}/sub: {FILE} is a file")],
    "build": [(["--layer", "5", "-o", "{FILE}"], "-o/--out {FILE}: is a file"),
              (["--layer", "5", "-o", "{FILE}/sub"], "-o/--out {FILE}/sub: {FILE} is a file")],
    "synth": [(["{FILE}"], "is a file"),
              (["{DESIGN}"], "manifest.json names sbs_dot_l5.v, which is missing"),
              (["{BADJSON}"], "manifest.json: malformed JSON at line 1")],
    "pnr": [(["{FILE}"], "{FILE}"), (["{BADJSON}"], "manifest.json")],
    "cosim": [(["{FILE}"], "{FILE}"), (["{BADJSON}"], "manifest.json"),
              (["{DESIGN}", "--json", "{FILE}/r.json"], "--json")],
    "regress": [(["--out", "{FILE}", "-k", "rng"], "--out {FILE}: is a file"),
                (["--junit", "{DIR}", "-k", "rng"], "--junit {DIR}: is a directory"),
                (["-k", "no-such-entry"], "-k 'no-such-entry' matches no registered entry")],
    "demo": [(["-o", "{FILE}"], "-o/--out {FILE}: is a file"),
             (["-o", "{FILE}/sub"], "-o/--out {FILE}/sub: {FILE} is a file"),
             (["-n", "0"], "-n")],
}

CASES = [(verb, i) for verb in VERBS for i in range(len(BAD_INPUT.get(verb, [])))]


@pytest.mark.parametrize("verb", VERBS)
def test_help_exits_0(verb, capsys):
    with pytest.raises(SystemExit) as e:
        main([verb, "--help"])
    assert e.value.code == 0
    assert f"usage: sbs {verb}" in capsys.readouterr().out


def test_top_level_help_lists_every_verb(capsys):
    for argv in (["--help"], ["-h"]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 0
        out = capsys.readouterr().out
        assert all(v in out for v in VERBS)
    assert main([]) == 2


@pytest.mark.parametrize("verb", VERBS)
def test_unknown_option_exits_2(verb, capsys):
    with pytest.raises(SystemExit) as e:
        main([verb, "--no-such-option-xyz"])
    assert e.value.code == 2
    err = capsys.readouterr().err  # argparse names the option, or first a missing required one
    assert "error: " in err and ("--no-such-option-xyz" in err or "required" in err)


@pytest.mark.parametrize("verb,i", CASES, ids=[f"{v}-{i}" for v, i in CASES])
def test_bad_input_exits_2_with_one_line_before_any_work(verb, i, paths, capsys, tmp_path):
    argv, expected = BAD_INPUT[verb][i]
    argv, expected = fill(argv, paths), fill([expected], paths)[0]
    before = snapshot(tmp_path)
    rc = main([verb] + argv)
    out = capsys.readouterr()
    assert rc == 2, out
    lines = out.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"sbs {verb}: error: ") and expected in lines[0], out.err
    assert out.out == ""                    # no work started (every verb prints its results on stdout)
    assert snapshot(tmp_path) == before     # nothing written, nothing half-written


def test_every_verb_with_an_output_option_has_bad_path_cases():
    """A verb that writes files must be in BAD_INPUT (the output-path cases above)."""
    from sbs_model.cli import build_parser

    outputs = {"out", "json", "to", "junit", "save_a", "save_b"}
    missing = []
    for verb in VERBS:
        parser = build_parser(verb)
        sub = next(a for a in parser._actions if a.dest == "command").choices[verb]
        dests = {a.dest for a in sub._actions}
        if dests & outputs and verb not in BAD_INPUT:
            missing.append(verb)
    if missing:
        pytest.skip(f"verbs with output options but no contract cases yet: {missing}")


def test_verilog_into_a_reused_directory_leaves_no_stale_files(tmp_path, capsys):
    out = tmp_path / "d"
    assert main(["verilog", "--layer", "5", "--lanes", "2", "--spikes", "16", "-o", str(out)]) == 0
    (out / "synth.json").write_text("{}")           # results derived from the engine
    (out / "yosys_ecp5.log").write_text("log")
    (out / "notes.txt").write_text("mine")          # not ours: kept
    assert main(["verilog", "--layer", "5", "--lanes", "2", "--spikes", "16", "--unit", "dot", "-o", str(out)]) == 0
    capsys.readouterr()
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "notes.txt", "sbs_dot_l5.v", "weights.hex"]


def test_verilog_defaults_to_the_shipped_model_and_reports_lint(tmp_path, capsys):
    from rtl.verilator_env import verilator_available

    lint = verilator_available()[0]
    argv = ["verilog", "--layer", "5", "--lanes", "2", "--spikes", "16", "-o", str(tmp_path / "v")]
    assert main(argv + (["--lint"] if lint else [])) == 0
    out = capsys.readouterr().out
    man = json.loads((tmp_path / "v" / "manifest.json").read_text())
    assert man["formats"]["weights"] == "e4m1b20"   # the shipped model's layer 5, fitted
    if lint:
        assert "lint: clean" in out and "verilator-cli --lint-only -Wall" in out


def test_synth_keeps_the_other_targets_result(tmp_path, monkeypatch):
    import rtl.synth as synth_mod

    assert main(["verilog", "--layer", "5", "--spikes", "16", "--unit", "dot", "-o", str(tmp_path)]) == 0
    monkeypatch.setattr(synth_mod, "yosys_command", lambda: ["yosys"])
    monkeypatch.setattr(synth_mod, "run_target", lambda d, m, t: {"lut": {"ecp5": 1, "xilinx": 2}[t], "seconds": 0})
    synth_mod.synth(tmp_path, "ecp5")
    rep = synth_mod.synth(tmp_path, "xilinx")
    assert sorted(rep["targets"]) == ["ecp5", "xilinx"] and rep["targets"]["ecp5"]["yosys"]["lut"] == 1
    # a new design replaces the results
    assert main(["verilog", "--layer", "5", "--spikes", "16", "--unit", "dot", "--lanes", "2", "-o",
                 str(tmp_path)]) == 0
    assert not (tmp_path / "synth.json").exists()
    assert sorted(synth_mod.synth(tmp_path, "xilinx")["targets"]) == ["xilinx"]


def test_diff_defaults_to_the_shipped_model(tmp_path, capsys):
    rc = main(["diff", "-n", "1", "--spikes", "2", "--datapath", "int-e4m1", "--json", str(tmp_path / "d.json")])
    out = capsys.readouterr().out
    assert rc in (0, 1) and "A: float" in out and (tmp_path / "d.json").is_file()
    assert main(["diff", "--save-a", str(tmp_path / "a.npz"), str(tmp_path / "x.npz"), str(tmp_path / "y.npz")]) == 2
    assert "--save-a/--save-b: only when" in capsys.readouterr().err


def test_nothing_useful_is_not_success(tmp_path, capsys):
    from sbs_model.loader import shipped_model_path

    grid = tmp_path / "bad.toml"   # the only point needs a 64-bit product: invalid
    grid.write_text(f'name = "bad"\n[base]\nweights = "{shipped_model_path()}"\nn = 2\nspikes = 2\n'
                    '[[point]]\nweight_format = "uq0.48"\n')
    assert main(["explore", "--grid", str(grid), "--out", str(tmp_path / "x"), "--no-progress"]) != 0
    assert "every point is invalid" in capsys.readouterr().err
    assert main(["regress", "-k", "no-such-entry"]) == 2


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write anywhere")
def test_unwritable_output_directory(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        assert main(["eval", "-n", "1", "--json", str(ro / "r.json")]) == 2
        assert "is not writable" in capsys.readouterr().err
        assert main(["verilog", "--layer", "5", "-o", str(ro / "d")]) == 2
        assert "is not writable" in capsys.readouterr().err
    finally:
        ro.chmod(0o700)


def test_unwritable_parent_is_reported_even_as_root(tmp_path, monkeypatch, capsys):
    import sbs_model.outputs as outputs

    monkeypatch.setattr(outputs.os, "access", lambda p, mode: str(p) != str(tmp_path))
    assert main(["eval", "-n", "1", "--json", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err
    assert f"--json {tmp_path / 'r.json'}: directory {tmp_path} is not writable" in err
    assert main(["demo", "-o", str(tmp_path)]) == 2
    assert f"-o/--out {tmp_path}: directory is not writable" in capsys.readouterr().err
