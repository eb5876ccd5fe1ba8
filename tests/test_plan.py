"""sbs_model.plan (plans of the whole-network accelerator) and sbs_model.network_cycles (its exact
cycle model, checked against simulation in tests/test_network_cosim.py)."""
import json

import pytest

from fixedpoint.datapath import PRESETS
from sbs_model import plan as P
from sbs_model.layer_cycles import layer_cycles
from sbs_model.network import reference_mnist
from sbs_model.network_cycles import IMAGE_H, IMAGE_W, POOL_LATENCY, crop_last_index, network_cycles

NET = reference_mnist(1600)
DPS = {i: PRESETS["int-e4m1"] for i in NET.sbs_layers()}


def test_cycle_model_sums_the_stages():
    plan = {0: {"lanes": 32, "engines": 2}, 2: {"lanes": 64, "engines": 1}, 4: {"lanes": 32, "engines": 1},
            5: {"lanes": 16, "engines": 1}}
    st = P.stages(NET, DPS, plan)
    cm = network_cycles(st, (24, 24))
    l0 = layer_cycles(32, 25, 1600, 400, 576, 32, 2, 16)
    assert cm["stages"][0]["end"] == l0 + crop_last_index(24, 24) - 575
    assert crop_last_index(24, 24) == 25 * 28 + 25
    assert cm["stages"][1]["cycles"] == 32 * 100 * 4 + POOL_LATENCY - 1
    for a, b in zip(cm["stages"], cm["stages"][1:]):
        assert b["start"] == a["end"] + 1
    assert cm["cycles_per_image"] == cm["stages"][-1]["end"] + 1
    assert P.cycles(NET, DPS, plan) == cm["cycles_per_image"]


def test_tiny_network_waits_for_the_whole_image():
    st = [{"kind": "sbs", "N": 2, "S": 1, "T": 1, "n_ip": 1, "n_in": 1, "lanes": 2, "engines": 1, "recip_bits": 16}]
    assert network_cycles(st, (1, 1))["cycles_per_image"] == IMAGE_H * IMAGE_W + 1


def test_auto_plan_fits_and_beats_the_smallest():
    plan = P.auto_plan(NET, DPS, "lfe5u-85f")
    small = {i: {"lanes": 1, "engines": 1} for i in NET.sbs_layers()}
    assert P.cycles(NET, DPS, plan) < P.cycles(NET, DPS, small) / 10
    cost = P.plan_cost(NET, DPS, plan)
    dev = P.DEVICES["lfe5u-85f"]
    assert cost["lut4"] <= dev.lut4 and cost["mult18"] <= dev.mult18 and cost["dp16kd"] <= dev.dp16kd
    # a cycle target stops the search early: fewer resources
    loose = P.auto_plan(NET, DPS, "lfe5u-85f", target_cycles=P.cycles(NET, DPS, small) // 2)
    assert P.plan_cost(NET, DPS, loose)["lut4"] < cost["lut4"]
    assert P.cycles(NET, DPS, loose) <= P.cycles(NET, DPS, small) // 2


def test_smaller_device_gives_a_slower_plan():
    big = P.auto_plan(NET, DPS, "lfe5u-85f")
    small = P.auto_plan(NET, DPS, "lfe5u-45f")
    assert P.cycles(NET, DPS, small) > P.cycles(NET, DPS, big)


@pytest.mark.parametrize("plan,msg", [
    ({"layers": {"0": {"lanes": 0, "engines": 1}}}, "'lanes' must be an integer in 1..64"),
    ({"layers": {"1": {"lanes": 4, "engines": 1}}}, "layer 1 is not an SbS layer"),
    ({"layers": {"0": {"lanes": 4, "engines": 65}}}, "'engines' must be an integer in 1..64"),
    ({"layers": {"0": {"lanes": 4, "engines": 1}}}, r"no entry for SbS layer\(s\) \[2, 4, 5\]"),
    ({"lanes": 4}, "expected"),
])
def test_bad_plans(plan, msg):
    with pytest.raises(ValueError, match=msg):
        P.check_plan(plan, NET.sbs_layers())


def test_load_plan_file(tmp_path):
    p = tmp_path / "plan.json"
    p.write_text(json.dumps({"layers": {str(i): {"lanes": 8, "engines": 1} for i in NET.sbs_layers()}}))
    assert P.load_plan(p, NET.sbs_layers())[2] == {"lanes": 8, "engines": 1}
    p.write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        P.load_plan(p, NET.sbs_layers())
    with pytest.raises(ValueError, match="not a file"):
        P.load_plan(tmp_path / "missing.json", NET.sbs_layers())
