"""cocotb + Verilator regression of IPEngine against the model of one IP (rtl.engine.reference_ip)."""
import random

import numpy as np
import pytest

from fixedpoint.datapath import PRESETS
from rtl.engine import IPEngine
from sim.regress_units.engine import stimulus
from sim.runner import build_and_test, simulator_available

pytestmark = pytest.mark.verilator
ok, why = simulator_available("verilator")
if not ok:
    pytest.skip(why, allow_module_level=True)

SEED = 4242
DP = PRESETS["int-e4m1"]


def small_layer(S=12, N=10, seed=3):
    rng = np.random.default_rng(seed)
    W = rng.uniform(0.0, 1.0, size=(S, N)) ** 3
    return DP.encode_weights(W / W.sum(axis=0))


def small_jobs(S, seed):
    rng = random.Random(seed)
    windows = [[0] * S, [rng.randrange(1 << 16) for _ in range(S)],
               [rng.randrange(1 << 16) if i in (2, 7) else 0 for i in range(S)],
               [rng.randrange(1 << 16) for _ in range(S)]]
    return [((rng.getrandbits(32), rng.randrange(10000), rng.randrange(8), rng.randrange(1 << 24)), w)
            for w in windows]


@pytest.mark.parametrize("lanes", [4, pytest.param(1, marks=pytest.mark.slow)])
def test_small_layer_with_stalls_and_cycle_count(lanes):
    w_codes, w_fmt = small_layer()
    dut = IPEngine(DP, w_codes, 40, lanes=lanes, w_format=w_fmt)
    jobs = small_jobs(12, lanes)
    res = build_and_test(dut, f"ip_engine_small_l{lanes}", "sim.tb_engine",
                         data=stimulus(dut, jobs, 0.25, 0.25, False), seed=SEED)
    assert res.tests == 1 and res.failures == 0, res.summary()
    assert res.out["h_codes"] == 40
    # same (cached) build, no stalls: the cycles between IPs are the model's
    dut2 = IPEngine(DP, w_codes, 40, lanes=lanes, w_format=w_fmt)
    res = build_and_test(dut2, f"ip_engine_small_l{lanes}", "sim.tb_engine",
                         data=stimulus(dut2, jobs, 0.0, 0.0, True), seed=SEED)
    assert res.tests == 1 and res.failures == 0, res.summary()
    assert res.cached


def test_fault_injection_fails_regression():
    w_codes, w_fmt = small_layer()
    dut = IPEngine(DP, w_codes, 40, lanes=4, w_format=w_fmt, fault="update")
    jobs = small_jobs(12, 4)
    res = build_and_test(dut, "ip_engine_small_fault", "sim.tb_engine",
                         data=stimulus(dut, jobs, 0.0, 0.0, False), seed=SEED)
    assert res.tests == 1 and res.failures == 1, res.summary()
    assert "first at index" in res.failed_cases[0][1]


def layer5_real_windows(n_images: int, T: int):
    """pytorch-sbs weights; layer 5 windows from the quantized model's layer-4 codes on MNIST test
    images (seed 0, patterns 0..n-1), and the model's layer-5 output for them."""
    from conftest import PYTORCH_SBS_DIR
    from fixedpoint.pooling import window_from_h
    from sbs_model.configs import load_network
    from sbs_model.data import load_dataset
    from sbs_model.quant import QuantizedModel
    from sbs_model.weights import load_any
    if not PYTORCH_SBS_DIR.is_dir():
        pytest.skip("pytorch-sbs weights not available")
    net = load_network("reference-mnist", spikes=T)
    weights, _ = load_any(PYTORCH_SBS_DIR, net)
    images, _ = load_dataset("mnist", n=n_images)
    model = QuantizedModel(net, weights, DP, seed=0)
    tr = model.trace(images)
    windows = window_from_h(tr.outputs[4], tr.formats[4], DP.sampler_frac_bits).reshape(n_images, -1)
    w_codes, w_fmt = DP.encode_weights(np.asarray(weights[5], dtype=np.float64))
    return net, w_codes, w_fmt, windows, tr.outputs[5].reshape(n_images, -1)


@pytest.mark.slow
def test_layer5_pytorch_sbs_T1600_real_windows():
    from fixedpoint.schedule import Schedule
    net, w_codes, w_fmt, windows, model_out = layer5_real_windows(3, 1600)
    sched = Schedule.from_layer(net.layers[5])
    dut = IPEngine(DP, w_codes, 1600, lanes=4, w_format=w_fmt, schedule=sched, layer_index=5)
    jobs = [((0, b, 5, 0), windows[b]) for b in range(3)]
    data = stimulus(dut, jobs, 0.1, 0.1, False)
    for j, out in zip(data["jobs"], model_out):  # our reference == the quantized model
        assert j["expected"] == [int(v) for v in out]
    res = build_and_test(dut, "ip_engine_l5_t1600", "sim.tb_engine", data=data, seed=SEED)
    assert res.tests == 1 and res.failures == 0, res.summary()
    assert res.out["h_codes"] == 30


@pytest.mark.slow
def test_layer5_fault_variant_fails():
    from fixedpoint.schedule import Schedule
    net, w_codes, w_fmt, windows, _ = layer5_real_windows(1, 1600)
    sched = Schedule.from_layer(net.layers[5])
    dut = IPEngine(DP, w_codes, 1600, lanes=4, w_format=w_fmt, schedule=sched, layer_index=5, fault="sampler")
    data = stimulus(dut, [((0, 0, 5, 0), windows[0])], 0.0, 0.0, False)
    res = build_and_test(dut, "ip_engine_l5_t1600_fault", "sim.tb_engine", data=data, seed=SEED)
    assert res.tests == 1 and res.failures == 1, res.summary()
