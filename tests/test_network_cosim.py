"""Whole-network accelerator under Verilator + cocotb (sim/tb_network.py via sim.cosim): small networks
with random weights and small T -- padding, stride, dilation, average pooling (k = 4 and k = 3, a
real division with rounding) and max pooling (with padding), a two-layer fully connected net, a first
layer over the whole uncropped image --
build (sbs build's code path) and cosimulate with every layer's codes and the class == the
quantized model and the measured cycles == sbs_model.network_cycles, with the int update lanes and
with the scaled update's (cheap-e4m1: no multiplier per lane, FinalScale per engine; scaled-e4m1).
One Verilator build per design (cached by design hash); three builds in the regular run (the int
designs of three networks), the others (the cheap/scaled designs included) under ``slow``."""
import json

import pytest

from rtl.network.build import build_network
from sbs_model.small_networks import SMALL_NETWORKS
from sbs_model.weights import init_weights
from sim.runner import simulator_available

pytestmark = pytest.mark.verilator
ok, why = simulator_available("verilator")
if not ok:
    pytest.skip(why, allow_module_level=True)

from sim.cosim import cosim  # noqa: E402

NETS = SMALL_NETWORKS


@pytest.mark.parametrize("name,datapath", [
    pytest.param("pad-max-avg", "int-e4m1", marks=pytest.mark.slow),  # a third build: slow
    ("stride-dil-avg3-maxpad", "int-e4m1"), ("fc2", "int-e4m1"),
    ("full-image", "int-e4m1"),  # no crop: pixel 0 reaches the first engine in its first loading cycle
    # the scaled update's lanes (cheap: no multiplier per lane; FinalScale on every engine's output)
    pytest.param("fc2", "cheap-e4m1", marks=pytest.mark.slow),  # a Verilator build of its own: CI time
    pytest.param("pad-max-avg", "cheap-e4m1", marks=pytest.mark.slow),
    pytest.param("stride-dil-avg3-maxpad", "cheap-e4m1", marks=pytest.mark.slow),
    pytest.param("stride-dil-avg3-maxpad", "scaled-e4m1", marks=pytest.mark.slow)])
def test_small_network_cosim_equal(name, datapath, tmp_path):
    net, plan = NETS[name]
    weights = init_weights(net, 3)
    man = build_network(net, weights, datapath, tmp_path / "d", plan=plan, progress=lambda m: None)
    rep = cosim(tmp_path / "d", n=3, first=5, seed=11, waves=False, progress=print)
    assert rep["equal"] is True and rep["mismatched"] == 0, rep
    assert rep["images"] == 3
    assert rep["cycles_measured"] == [man["cycles_per_image"]] == [rep["cycles_per_image"]]
    assert json.loads((tmp_path / "d" / "manifest.json").read_text())["input_hash"] == man["input_hash"]


def test_cosim_reports_a_divergence(tmp_path):
    """The same design, but the model expects another spike seed in its reference than the job
    carries: the first layer's codes diverge, and the report names image, layer, IP and bits."""
    net, plan = NETS["fc2"]
    build_network(net, init_weights(net, 3), "int-e4m1", tmp_path / "d", plan=plan, progress=lambda m: None)
    import sim.cosim as sc
    real = sc.vectors

    def wrong(model, images, first, cycles):
        vec, cls = real(model, images, first, cycles)
        vec["images"][0]["codes"][0][1] ^= 1  # one bit of layer 0, element 1 of the first image
        return vec, cls

    sc.vectors = wrong
    try:
        rep = cosim(tmp_path / "d", n=2, first=0, seed=0, waves=False, progress=print)
    finally:
        sc.vectors = real
    assert rep["equal"] is False and rep["mismatched"] == 1
    d = rep["first_divergence"]
    assert (d["image"], d["layer"], d["element"], d["channel"], d["ip"]) == (0, 0, 1, 1, 0)
    assert d["got_bits"] != d["want_bits"] and len(d["got_bits"]) == 16
    assert rep["reproduce"].startswith("sbs cosim ") and "--first 0 -n 1" in rep["reproduce"]


@pytest.mark.slow
def test_reference_network_T1600_100_images(tmp_path):
    """The shipped model (int-e4m1, T = 1600, the planner's plan) on MNIST test images 0..99: every
    layer's codes and the class ==, cycles == model.  Hours of simulation on a small machine; the
    committed bench/results/network_cosim*.json record the images run so far."""
    from sbs_model import loader
    net, weights, _ = loader.load_net_and_weights("reference-mnist", loader.shipped_model_path())
    man = build_network(net, weights, "int-e4m1", tmp_path / "ref", progress=print)
    rep = cosim(tmp_path / "ref", n=100, first=0, seed=0, jobs=2, waves=False, progress=print)
    assert rep["equal"] is True and rep["images"] == 100, rep
    assert rep["cycles_measured"] == [man["cycles_per_image"]]
