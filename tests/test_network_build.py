"""sbs build without --layer (rtl.network.build): a small network's design directory is a pure function
of its inputs (byte-identical Verilog and manifest), the manifest holds ports, plan, memories,
formats, stages and cycles_per_image == sbs_model.network_cycles, and the model refuses what the
RTL does not implement."""
import json

import pytest

from rtl.network.build import build_network, load_design
from rtl.network.design import check_model
from sbs_model.network import LayerSpec as L
from sbs_model.network import NetworkSpec
from sbs_model.network_cycles import CROP_REGISTER, FEED_DELAY, crop_last_index, network_cycles
from sbs_model.plan import stages
from sbs_model.quant import QuantizedModel
from sbs_model.weights import init_weights, save_weights
from sbs_model.cli import main

NET = NetworkSpec((1, 6, 6), (L("sbs", 1, 8, (6, 6), spikes=6), L("sbs", 8, 3, (1, 1), spikes=5)), name="small-fc")
PLAN = {0: {"lanes": 8, "engines": 1}, 1: {"lanes": 2, "engines": 1}}


def test_build_is_deterministic_and_manifest_complete(tmp_path):
    w = init_weights(NET, 3)
    a = build_network(NET, w, "int-e4m1", tmp_path / "a", plan=PLAN, progress=lambda m: None)
    b = build_network(NET, w, "int-e4m1", tmp_path / "b", plan=PLAN, progress=lambda m: None)
    for f in ("sbs_network.v", "manifest.json"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()
    assert a["verilog_sha256"] == b["verilog_sha256"]
    names = {p["name"] for p in a["ports"]}
    assert {"job__payload", "image__payload", "cls__payload", "dbg_layer", "dbg_addr", "dbg_data"} <= names
    assert a["plan"]["layers"] == {"0": {"lanes": 8, "engines": 1}, "1": {"lanes": 2, "engines": 1}}
    model = QuantizedModel(NET, w, "int-e4m1")
    want = network_cycles(stages(NET, model.datapaths, PLAN), (6, 6))["cycles_per_image"]
    assert a["cycles_per_image"] == want
    assert a["memories"]["fmap0"] == {"words": 8, "bits": 128}
    man, net, weights, dps = load_design(tmp_path / "a")
    assert net == NET and man["input_hash"] == a["input_hash"]
    # a changed weight file no longer matches the manifest
    w2 = dict(w)
    w2[1] = w2[1][::-1].copy()
    save_weights(tmp_path / "a" / "weights.npz", w2, NET)
    with pytest.raises(ValueError, match="input_hash"):
        load_design(tmp_path / "a")


def test_sbs_build_whole_network_cli(tmp_path, capsys):
    cfg, wts, plan = tmp_path / "net.json", tmp_path / "w.npz", tmp_path / "plan.json"
    cfg.write_text(json.dumps(NET.to_dict()))
    save_weights(wts, init_weights(NET, 3), NET)
    plan.write_text(json.dumps({"layers": {"0": {"lanes": 8, "engines": 1}, "1": {"lanes": 2, "engines": 1}}}))
    rc = main(["build", "--config", str(cfg), "--weights", str(wts), "--plan", str(plan), "-o", str(tmp_path / "o")])
    out = capsys.readouterr().out
    assert rc == 0 and "cycles per image (cycle model)" in out
    man = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert man["unit"] == "network" and man["plan"]["source"] == "plan.json"


@pytest.mark.parametrize("preset,coef,mults", [("cheap-e4m1", "shift_add", 0), ("scaled-e4m1", "mult", 1)])
def test_build_with_scaled_update_lanes(tmp_path, preset, coef, mults):
    """The whole network with the scaled/cheap update lanes: the manifest names them per layer, every
    SbS stage's cycles are its engine's own count (FinalScale included; a fed stage: and the feeder's
    output register) and the total is the cycle
    model's."""
    w = init_weights(NET, 3)
    man = build_network(NET, w, preset, tmp_path / "d", plan=PLAN, progress=lambda m: None)
    assert set(man["update_lanes"]) == {"0", "1"}
    for ul in man["update_lanes"].values():
        assert ul["update"] == "scaled" and ul["coef"] == coef and ul["multipliers_per_lane"] == mults
    model = QuantizedModel(NET, w, preset)
    from rtl.network.design import accelerator
    acc = accelerator(model, PLAN)
    st = [s for s in man["stages"] if s["kind"] == "sbs"]
    assert [s["cycles"] for s in st][1:] == [acc.units[1].cycles() + FEED_DELAY]  # + the feeder's output register
    assert st[0]["cycles"] == acc.units[0].cycles() + crop_last_index(6, 6) - 35 + CROP_REGISTER  # + pixels outside the crop
    assert man["cycles_per_image"] == network_cycles(stages(NET, model.datapaths, PLAN), (6, 6))["cycles_per_image"]
    assert man["datapaths"]["0"]["update"] == "scaled"


def test_sbs_build_whole_network_cheap_cli(tmp_path, capsys):
    cfg, wts, plan = tmp_path / "net.json", tmp_path / "w.npz", tmp_path / "plan.json"
    cfg.write_text(json.dumps(NET.to_dict()))
    save_weights(wts, init_weights(NET, 3), NET)
    plan.write_text(json.dumps({"layers": {"0": {"lanes": 8, "engines": 1}, "1": {"lanes": 2, "engines": 1}}}))
    rc = main(["build", "--config", str(cfg), "--weights", str(wts), "--plan", str(plan), "--datapath", "cheap-e4m1",
               "-o", str(tmp_path / "o")])
    assert rc == 0 and "cycles per image (cycle model)" in capsys.readouterr().out
    man = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert man["update_lanes"]["1"]["multipliers_per_lane"] == 0


@pytest.mark.parametrize("layers,msg", [
    ((L("sbs", 1, 4, (3, 3), spikes=2), L("sbspool", 4, 4, (2, 2), (2, 2), spikes=2),
      L("sbs", 4, 3, (2, 2), spikes=2)), "sbspool"),
])
def test_refused_networks(layers, msg):
    net = NetworkSpec((1, 8, 8), layers)
    model = QuantizedModel(net, init_weights(net, 1), "int-e4m1")
    with pytest.raises(ValueError, match=msg):
        check_model(model)


def test_float_layer_refused():
    model = QuantizedModel(NET, init_weights(NET, 1), {0: "int-e4m1", 1: None})
    with pytest.raises(ValueError, match="layer 1: runs in float"):
        check_model(model)
