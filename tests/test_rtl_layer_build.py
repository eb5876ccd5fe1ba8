"""``sbs build --layer K``: the layer engine's design directory (Verilog + manifest.json), deterministic,
cycles_per_image from sbs_model.layer_cycles, bad arguments exit 2 before writing anything."""
import json
import subprocess
import sys

import pytest

from rtl.commands import build
from sbs_model.layer_cycles import layer_cycles


def run_build(*argv):
    import argparse
    p = argparse.ArgumentParser()
    build.add_arguments(p)
    return build.run(p.parse_args(list(argv)))


def test_build_layer5_manifest_and_determinism(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert run_build("--layer", "5", "--spikes", "8", "-o", str(a)) == 0
    assert run_build("--layer", "5", "--spikes", "8", "-o", str(b)) == 0
    man = json.loads((a / "manifest.json").read_text())
    assert (a / man["verilog"]).read_bytes() == (b / man["verilog"]).read_bytes()
    assert (a / "manifest.json").read_bytes() == (b / "manifest.json").read_bytes()
    assert man["top"] == "layer_engine_l5" and man["S"] == 96 and man["N"] == 10 and man["T"] == 8
    assert man["lanes"] == 10 and man["engines"] == 1 and man["beats"] == 1
    assert man["cycles_per_image"] == layer_cycles(10, 96, 8, 1, 96, 10, 1, 16)
    names = {p["name"] for p in man["ports"]}
    assert {"clk", "rst", "job__payload", "x_in__payload", "h_out__payload", "h_out__ready", "starved"} <= names
    assert man["memories"]["weights"]["bits"] == 96 * 10 * 5
    assert len(man["input_hash"]) == 64 and str(tmp_path) not in (a / "manifest.json").read_text()


@pytest.mark.parametrize("argv,msg", [
    (["--layer", "1"], "--layer 1: not an SbS layer"),
    (["--layer", "5", "--lanes", "65"], "--lanes must be in 1..64"),
    (["--layer", "5", "--engines", "0"], "--engines must be in 1..64"),
    (["--layer", "5", "--spikes", "0"], "--spikes must be in"),
    (["--layer", "5", "--datapath", "paper"], "--datapath paper: the layer engine needs"),
])
def test_bad_arguments_exit_2_and_write_nothing(tmp_path, argv, msg):
    out = tmp_path / "o"
    r = subprocess.run([sys.executable, "-m", "sbs_model.cli", "build", *argv, "-o", str(out)], capture_output=True,
                       text=True)
    assert r.returncode == 2, r.stderr
    assert msg in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.verilator
def test_build_is_lint_clean(tmp_path):
    assert run_build("--layer", "5", "--spikes", "8", "--engines", "2", "--lanes", "4", "--lint",
                     "-o", str(tmp_path)) == 0
