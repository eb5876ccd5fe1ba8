"""`sbs verilog`: deterministic files, manifest contents, memory images, errors, lint of every layer."""
import json
import subprocess
import sys

import numpy as np
import pytest

from fixedpoint.datapath import PRESETS
from rtl.engine import engine_latency
from sbs_model.cli import main
from rtl.verilator_env import verilator_available
from conftest import PYTORCH_SBS_DIR

WEIGHTS = str(PYTORCH_SBS_DIR)
pytestmark = pytest.mark.skipif(not PYTORCH_SBS_DIR.is_dir(), reason="pytorch-sbs weights not available")


def files(d):
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def sbs(*argv):
    return main(["verilog", "--weights", WEIGHTS, *argv])


def test_engine_layer5_files_manifest_and_determinism(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert sbs("--layer", "5", "--lanes", "4", "--spikes", "200", "-o", str(a)) == 0
    assert sbs("--layer", "5", "--lanes", "4", "--spikes", "200", "-o", str(b)) == 0
    fa = files(a)
    assert sorted(fa) == ["h_init.hex", "manifest.json", "sbs_engine_l5.v", "schedule.hex", "weights.hex"]
    assert fa == files(b)  # identical bytes for identical inputs
    man = json.loads(fa["manifest.json"])
    assert (man["S"], man["N"], man["T"], man["lanes"], man["layer"]) == (96, 10, 200, 4, 5)
    ports = {p["name"]: (p["direction"], p["width"]) for p in man["ports"]}
    assert ports["job__payload"] == ("in", 96)
    assert ports["window__payload"] == ("in", 16)
    assert ports["h_out__payload"] == ("out", 16)
    assert ports["h_out__ready"] == ("in", 1) and ports["clk"] == ("in", 1)
    for name in ports:
        assert f"{name}" in fa["sbs_engine_l5.v"].decode()
    dp = PRESETS["int-e4m1"]
    assert man["latency"]["cycles"] == engine_latency(dp, 10, 96, 200, 4)
    assert man["formats"]["weights"].startswith("e4m1b") and man["formats"]["h"] == "uq0.16"
    # the weight image holds the encoded pytorch-sbs weights, 4 codes of 5 bits per word
    from sbs_model.configs import load_network
    from sbs_model.weights import load_any
    net = load_network("reference-mnist")
    w, _ = load_any(WEIGHTS, net)
    codes, fmt = dp.encode_weights(np.asarray(w[5], dtype=np.float64))
    assert man["formats"]["weights"] == str(fmt)
    words = [int(x, 16) for x in fa["weights.hex"].decode().split()]
    assert len(words) == 96 * 3 == man["memories"]["weights"]["depth"]
    got = np.array([[(words[s * 3 + j // 4] >> (5 * (j % 4))) & 31 for j in range(10)] for s in range(96)])
    assert np.array_equal(got, codes)
    sched = [int(x, 16) for x in fa["schedule.hex"].decode().split()]
    tab = dp.tables(200)
    assert [v & 0xFFFF for v in sched] == [int(c) for c in tab.C]
    assert [v >> 16 for v in sched] == [int(g) for g in tab.G]


def test_inputs_change_the_hash(tmp_path):
    assert sbs("--layer", "5", "--lanes", "2", "--spikes", "100", "-o", str(tmp_path / "a")) == 0
    dp_file = tmp_path / "dp.json"  # a datapath FILE.json (the int-e4m0 preset's fields)
    dp_file.write_text(json.dumps(PRESETS["int-e4m0"].to_dict()))
    assert sbs("--layer", "5", "--lanes", "2", "--spikes", "100", "--datapath", str(dp_file),
               "-o", str(tmp_path / "b")) == 0
    ma = json.loads((tmp_path / "a" / "manifest.json").read_text())
    mb = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert ma["input_hash"] != mb["input_hash"] and ma["verilog_sha256"] != mb["verilog_sha256"]
    assert mb["datapath"]["weight_format"] == "e4m0" and mb["formats"]["weights"].startswith("e4m0")


def test_dot_unit_paper_in_another_process(tmp_path):
    """The paper datapath works for the dot unit; a second process writes the same bytes."""
    a, b = tmp_path / "a", tmp_path / "b"
    assert sbs("--layer", "0", "--unit", "dot", "--datapath", "paper", "--lanes", "4", "-o", str(a)) == 0
    subprocess.run([sys.executable, "-m", "sbs_model.cli", "verilog", "--weights", WEIGHTS, "--layer", "0",
                    "--unit", "dot", "--datapath", "paper", "--lanes", "4", "-o", str(b)], check=True,
                   capture_output=True)
    assert files(a) == files(b)
    man = json.loads((a / "manifest.json").read_text())
    assert man["unit"] == "dot" and man["latency"]["cycles"] == 5 and man["formats"]["weights"] == "e4m1"
    assert {p["name"] for p in man["ports"]} >= {"h__payload", "w__payload", "o__payload"}


@pytest.mark.parametrize("argv,msg", [
    (["--layer", "5", "--datapath", "paper"], "model-only"),
    (["--layer", "1"], "not an SbS layer"),
    (["--layer", "5", "--lanes", "0"], "lanes"),
    (["--layer", "5", "--datapath", "nonsense"], "datapath"),
])
def test_errors_exit_2(tmp_path, capsys, argv, msg):
    assert sbs(*argv, "-o", str(tmp_path / "x")) == 2
    assert msg in capsys.readouterr().err


needs_verilator = pytest.mark.skipif(not verilator_available()[0], reason=verilator_available()[1])
LINT_CASES = [("5", "engine", "int-e4m1", "4"), ("0", "dot", "paper", "4")] + [
    pytest.param(k, u, d, l, marks=pytest.mark.slow)
    for k, u, d, l in [("0", "engine", "int-e4m1", "1"), ("2", "engine", "int-e4m1", "4"),
                       ("4", "engine", "int-e4m1", "16"), ("5", "engine", "int-e4m0", "1"),
                       ("2", "dot", "paper", "16"), ("4", "dot", "int-e4m1", "1"), ("5", "dot", "paper-e4m4", "4")]]


@pytest.mark.verilator
@needs_verilator
@pytest.mark.parametrize("layer,unit,datapath,lanes", LINT_CASES)
def test_generated_designs_lint_clean(tmp_path, layer, unit, datapath, lanes):
    assert sbs("--layer", layer, "--unit", unit, "--datapath", datapath, "--lanes", lanes, "--lint",
               "-o", str(tmp_path)) == 0
