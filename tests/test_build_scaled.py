"""``sbs build --layer K`` with the scaled/cheap presets: the manifest describes the scaled lanes and
the cycle model with FinalScale; an unsupported update exits 2 before writing anything."""
import json
import subprocess
import sys

import numpy as np
import pytest


def sbs(*args):
    return subprocess.run([sys.executable, "-m", "sbs_model.cli", *args], capture_output=True, text=True)


@pytest.mark.parametrize("preset,coef,mults", [("cheap-e4m1", "shift_add", 0), ("scaled-e3m1", "mult", 1)])
def test_build_layer5_scaled(tmp_path, preset, coef, mults):
    r = sbs("build", "--layer", "5", "--datapath", preset, "--spikes", "20", "-o", str(tmp_path / "d"))
    assert r.returncode == 0, r.stderr
    man = json.loads((tmp_path / "d" / "manifest.json").read_text())
    ul = man["update_lanes"]
    assert ul["update"] == "scaled" and ul["coef"] == coef and ul["multipliers_per_lane"] == mults
    assert man["datapath"]["update"] == "scaled"
    from sbs_model.layer_cycles import FINAL, layer_cycles
    assert man["cycles_per_image"] == FINAL + layer_cycles(man["N"], man["S"], man["T"], man["ips"], int(np.prod(man["input_shape"])), man["lanes"],
                                                           man["engines"], man["datapath"]["recip_bits"])


def test_build_rejects_float32_update(tmp_path):
    r = sbs("build", "--layer", "5", "--datapath", "paper", "-o", str(tmp_path / "d"))
    assert r.returncode == 2
    assert "--datapath paper" in r.stderr and "'int' or 'scaled'" in r.stderr
    assert not (tmp_path / "d").exists()
    r = sbs("build", "--datapath", "paper", "-o", str(tmp_path / "n"))  # whole network: int or scaled
    assert r.returncode == 2 and "'int' or 'scaled'" in r.stderr and not (tmp_path / "n").exists()
