"""The float32-update fast kernel (quant_fast_f32) == the generic step_nb kernel, bit for bit.

Every comparison is ``==`` on int64 H codes and on the counters, against
``quant_nb.run_quant_layer(ql, xw, seed, first_pattern, fast=False)`` (``step_nb`` per spike) or,
for single spikes, against ``Datapath.step`` (the numpy reference).
"""
import numba
import numpy as np
import pytest

from conftest import PYTORCH_SBS_DIR
from fixedpoint.datapath import PRESETS, Datapath
from fixedpoint.schedule import Schedule
from sbs_model import quant_fast_f32 as qf
from sbs_model import quant_nb
from sbs_model import quant_ref as qr
from sbs_model.float_ref import layer_weights
from sbs_model.network import LayerSpec, NetworkSpec, reference_mnist
from sbs_model.quant import QuantizedModel
from sbs_model.quant_ref import COUNTERS

L = LayerSpec
P = PRESETS["paper"].to_dict()


def paper_variant(**kw) -> Datapath:
    return Datapath(**{**P, **kw})


# datapaths the fast kernel must reproduce, and the counter each one is built to exercise
NO_ZERO = paper_variant(h_format="e5m11")                     # no zero code: h underflows (flag 2)
LOW_MAX = paper_variant(h_format="e5m11b32z", acc_format="uq9.10")  # h < 1, r floored coarsely: h saturates
WRAP_ACC = paper_variant(acc_format="uq0.30")                  # sums >= 1 wrap: acc overflow, h saturates
ZERO_W = paper_variant(weight_format="e4m1z")                  # zero weights: zero rows are ignored spikes
DATAPATHS = {"paper": PRESETS["paper"], "paper-e4m0": PRESETS["paper-e4m0"], "paper-e4m4": PRESETS["paper-e4m4"],
             "no-zero-h": NO_ZERO, "low-max-h": LOW_MAX, "wrap-acc": WRAP_ACC, "zero-w": ZERO_W}


def small_net(T=40):
    """N = 20 (two SIMD blocks, 12 padding lanes), 130 (> 128: the sum may exceed 2**64 in uq9.55,
    the split-accumulator path) and 10; a constant eps = 1 layer halves h each spike."""
    return NetworkSpec((1, 8, 8), (
        L("sbs", 1, 20, (3, 3), spikes=T),
        L("sbs", 20, 130, (2, 2), padding=(1, 1), spikes=T, eps0=1.0, eps_schedule="constant"),
        L("sbs", 130, 10, (3, 3), spikes=T, cooldown_after=5),
    ))


def rand_weights(net, seed=0, tiny=0.1, zero_rows=0, scale=1.0):
    """Random weights normalised to ``scale`` per output column; a fraction ``tiny`` below 2**-15
    (they wrap in E4Mx, bias 15) and ``zero_rows`` all-zero rows per layer."""
    rng = np.random.default_rng(seed)
    out = {}
    for li, shape in net.weight_shapes().items():
        w = rng.random(shape) ** 3 + 1e-3
        w = scale * w / w.sum(axis=0)
        w[rng.random(shape) < tiny] = 2.0 ** -17
        w[:zero_rows] = 0.0
        out[li] = w.astype(np.float32)
    return out


def window_source(ql, n, seed):
    """Random integer window sources ``(n, C, 8, 8)``: pixels 0..255 for layer 0 (pattern 0 half black:
    all-zero windows), floor(h * 2**20)-like values later."""
    rng = np.random.default_rng(seed)
    c = ql.layer.in_channels
    hi = 256 if ql.index == 0 else 1 << 20
    xw = rng.integers(0, hi, (n, c, 8, 8)).astype(np.int64)
    xw[0, :, :, :5] = 0
    return xw


def assert_equal_generic(ql, xw, seed=5, first_pattern=3):
    """Fast == generic (codes and counters); returns the counters as a dict."""
    got, cnt = qf.run_quant_layer_f32(ql, xw, seed, first_pattern)
    want, wcnt = quant_nb.run_quant_layer(ql, xw, seed, first_pattern, fast=False)
    assert got.dtype == want.dtype == np.int64 and got.shape == want.shape
    bad = np.argwhere(got != want)
    assert bad.size == 0, f"{len(bad)} codes differ, first at {bad[0].tolist()}"
    assert cnt.tolist() == wcnt.tolist()
    return dict(zip(COUNTERS, cnt.tolist()))


# ---------------------------------------------------------------------------------- applicability
def test_applies_to_every_paper_preset_on_reference_layers():
    net = reference_mnist(spikes=16)
    w = rand_weights(net)
    for name in ("paper", "paper-e4m0", "paper-e4m1", "paper-e4m4"):
        m = QuantizedModel(net, w, name)
        assert sorted(m.qlayers) == [0, 2, 4, 5]
        assert all(qf.f32_fast_ok(ql) for ql in m.qlayers.values()), name


@pytest.mark.parametrize("dp", [PRESETS["int-e4m1"], paper_variant(h_rounding="rne"),
                                paper_variant(acc_format="uq2.62"), paper_variant(prod_bits=12)],
                         ids=["int-update", "h-rne", "terms-over-2**62", "rounded-products"])
def test_refuses_what_it_does_not_compute(dp):
    net = small_net(T=4)
    ql = QuantizedModel(net, rand_weights(net), dp).qlayers[0]
    assert not qf.f32_fast_ok(ql)
    with pytest.raises(ValueError, match="not supported by the float32 fast kernel"):
        qf.run_quant_layer_f32(ql, window_source(ql, 1, 0), 0, 0)


def test_refuses_schedules_that_could_overflow_float32():
    net = NetworkSpec((1, 8, 8), (L("sbs", 1, 20, (3, 3), spikes=4, eps0=1e30, eps_schedule="constant"),))
    ql = QuantizedModel(net, rand_weights(net), PRESETS["paper"]).qlayers[0]
    assert not qf.f32_fast_ok(ql)


# ---------------------------------------------------------------------------------- one spike (numpy)
@pytest.mark.parametrize("name", sorted(DATAPATHS))
def test_step_reference_equals_datapath_step(name):
    """step_f32_ref on float32 values == Datapath.step on codes: new codes and every record field,
    for random h codes including 0, the largest code, tiny codes and all-zero h."""
    dp = DATAPATHS[name]
    W, H = dp.formats()
    rng = np.random.default_rng(1)
    n = 40
    tables = dp.tables(64, Schedule(eps0=3.0, kind="constant"))
    ql_like = qr.QLayer(0, L("sbs", 1, n, (1, 1), spikes=64), dp, H, W, np.zeros((1, n), np.int64), tables,
                        dp.initial_h(n), dp.lut())
    _, _, _, prm, pow2 = qf.prepare_f32(ql_like)
    checked = {"ovf": 0, "unf": 0, "acc": 0, "ign": 0}
    for trial in range(300):
        h = rng.integers(0, H.n_codes, n)
        if trial % 5 == 0:
            h[rng.random(n) < 0.5] = 0
        if trial % 7 == 0:
            h[:3] = H.n_codes - 1
        if trial % 11 == 0:
            h[:] = rng.integers(0, 4, n)
        if trial % 9 == 0:  # one dominant element: p_0 / r ~ 1, h_0 -> c*(h_0 + eps) (above 1)
            h[:] = 0
            h[0] = H.n_codes - 1
        if trial == 13:
            h[:] = 0
        w = rng.integers(0, W.n_codes, n)
        t = int(rng.integers(0, 64))
        want, rec = dp.step(h, w, t, tables, W)
        hf = H.decode(h).astype(np.float32)
        wf = W.decode(w).astype(np.float32)
        new, (a_hi, a_lo, ovf, sig_r, exp_r, n_ovf, n_unf) = qf.step_f32_ref(hf, wf, t, prm, pow2, tables.eps32,
                                                                            tables.c32)
        assert ((a_hi << 32) | a_lo, ovf, sig_r, exp_r) == (rec.A, rec.acc_overflow, rec.sig_r, rec.exp_r)
        assert (n_ovf, n_unf) == (rec.h_overflow, rec.h_underflow)
        assert np.array_equal(qf.values_to_codes_ref(new, prm), want)
        assert np.array_equal(new.astype(np.float64), H.decode(want))  # kept values are exactly H's
        checked["ovf"] += rec.h_overflow > 0
        checked["unf"] += rec.h_underflow > 0
        checked["acc"] += rec.acc_overflow > 0
        checked["ign"] += rec.ignored
    if name == "low-max-h":
        assert checked["ovf"] > 0
    if name == "no-zero-h":
        assert checked["unf"] > 0
    if name == "wrap-acc":
        assert checked["acc"] > 0
    assert checked["ign"] > 0 or H.zero == 0  # the all-zero h of trial 13 is ignored


# ---------------------------------------------------------------------------------- whole layers
@pytest.mark.parametrize("name", sorted(DATAPATHS))
def test_small_network_layers_equal_generic(name):
    net = small_net()
    zero_rows = 2 if name == "zero-w" else 0
    w = rand_weights(net, seed=2, zero_rows=zero_rows, scale=12.0 if name == "wrap-acc" else 1.0)
    m = QuantizedModel(net, w, DATAPATHS[name], seed=7)
    total = dict.fromkeys(COUNTERS, 0)
    for li, ql in m.qlayers.items():
        assert qf.f32_fast_ok(ql)
        if name.startswith("paper"):  # weights below 2**-15 wrap to large values (no range check)
            assert ql.dp.weight_range_counts(layer_weights(net, w, li, np.float64))["underflow"] > 0
        c = assert_equal_generic(ql, window_source(ql, 2, seed=li))
        assert c["spikes"] == 2 * int(np.prod(ql.layer.output_hw(8, 8))) * ql.layer.spikes
        total = {k: total[k] + c[k] for k in COUNTERS}
    # the datapath really reaches the case it was built for
    want = {"no-zero-h": "h_underflow", "low-max-h": "h_overflow", "wrap-acc": "acc_overflow_spikes",
            "zero-w": "ignored"}
    if name in want:
        assert total[want[name]] > 0, total
    if name == "wrap-acc":
        assert total["h_overflow"] > 0, total


def test_paths_cover_split_accumulator_and_one_word():
    m = QuantizedModel(small_net(T=4), rand_weights(small_net(T=4)), PRESETS["paper"])
    plain = [int(qf.prepare_f32(ql)[3][qf.F_PLAIN]) for ql in m.qlayers.values()]
    assert plain == [1, 0, 1]  # N = 130 > 128 terms of < 2**57 may exceed 2**64: the split path


def test_results_do_not_depend_on_threads_or_batch():
    net = small_net(T=30)
    ql = QuantizedModel(net, rand_weights(net, 4), PRESETS["paper-e4m4"]).qlayers[0]
    xw = window_source(ql, 3, 9)
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        a, ca = qf.run_quant_layer_f32(ql, xw, 1, 0)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        b, cb = qf.run_quant_layer_f32(ql, xw, 1, 0)
    finally:
        numba.set_num_threads(old)
    c, cc = qf.run_quant_layer_f32(ql, xw[1:], 1, 1)  # patterns 1, 2 on their own
    assert np.array_equal(a, b) and np.array_equal(ca, cb)
    assert np.array_equal(a[1:], c)


def test_window_total_over_limit_is_a_value_error():
    net = small_net(T=4)
    ql = QuantizedModel(net, rand_weights(net), PRESETS["paper"]).qlayers[1]
    xw = window_source(ql, 1, 0)
    xw[0, :, 2, 2] = 1 << 30
    with pytest.raises(ValueError, match="exceeds 2\\*\\*31 - 1"):
        qf.run_quant_layer_f32(ql, xw, 0, 0)


@pytest.mark.skipif(not any(PYTORCH_SBS_DIR.glob("Weight_L0_*.npy")), reason="pytorch-sbs weights not available")
@pytest.mark.parametrize("name", ["paper", "paper-e4m0", "paper-e4m4"])
def test_reference_layer0_real_weights_and_images(name):
    """Reference MNIST layer 0 (24x24 input, 5x5 kernel, N = 32, 400 IPs) with the pytorch-sbs
    weights on 2 embedded test images, T = 60; layers 2 (N = 64, S = 800) and 4 (N = 96, S = 576)
    on random window sources of their real input shapes."""
    from sbs_model.data import load_embedded
    from sbs_model.weights import load_any

    net = reference_mnist(spikes=60)
    w, _ = load_any(str(PYTORCH_SBS_DIR), net)
    m = QuantizedModel(net, w, name)
    ql = m.qlayers[0]
    images, _ = load_embedded(2)
    c = assert_equal_generic(ql, qr.crop_pixels(images, net).astype(np.int64), seed=0, first_pattern=0)
    assert c["spikes"] == 2 * 400 * 60
    rng = np.random.default_rng(3)
    for li, shape in ((2, (1, 32, 10, 10)), (4, (1, 64, 3, 3))):
        xw = rng.integers(0, 1 << 16, shape).astype(np.int64)
        c = assert_equal_generic(m.qlayers[li], xw, seed=1, first_pattern=5)
        assert c["spikes"] == int(np.prod(m.qlayers[li].layer.output_hw(*shape[2:]))) * 60
