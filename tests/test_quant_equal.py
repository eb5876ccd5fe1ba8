"""Quantized inference: numba kernels (quant_nb) == numpy reference (quant_ref), bit for bit."""
import numba
import numpy as np
import pytest

from fixedpoint.datapath import PRESETS, Datapath
from sbs_model import quant_ref as qr
from sbs_model.network import LayerSpec, NetworkSpec, reference_mnist
from sbs_model.quant import QuantizedModel

L = LayerSpec
# accumulator of 7 bits (uq1.6, values < 2) that wraps; the test scales the weights by 8 (r up to 8)
TINY_WRAP = Datapath(acc_format="uq1.6", acc_overflow="wrap", norm_bits=6)
DATAPATHS = {"paper": PRESETS["paper"], "int-e4m1": PRESETS["int-e4m1"], "int-uq0.8": PRESETS["int-uq0.8"],
             "tiny-wrap": TINY_WRAP}


def small_net(pool="avgpool", T=10):
    return NetworkSpec((1, 8, 8), (
        L("sbs", 1, 6, (3, 3), spikes=T),
        L(pool, 6, 6, (2, 2), (2, 2)),
        L("sbs", 6, 5, (2, 2), padding=(1, 1), spikes=T, eps0=0.5, eps_schedule="constant"),
        L("sbs", 5, 3, (4, 4), spikes=T, cooldown_after=4),
    ))


def rand_weights(net, seed=0):
    rng = np.random.default_rng(seed)
    out = {}
    for li, shape in net.weight_shapes().items():
        w = rng.random(shape) ** 3 + 1e-3
        out[li] = (w / w.sum(axis=0)).astype(np.float32)
    return out


def rand_images(n, seed=1):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (n, 28, 28)).astype(np.uint8)
    img[0, :, :14] = 0  # a black region: all-zero windows take the uniform sampler
    return img


def assert_traces_equal(a, b):
    assert a.kinds == b.kinds
    for li, (x, y) in enumerate(zip(a.outputs, b.outputs)):
        assert x.dtype == y.dtype and x.shape == y.shape, li
        assert np.array_equal(x, y), f"layer {li} differs"
    assert a.counters == b.counters


@pytest.mark.parametrize("name", sorted(DATAPATHS))
def test_whole_network_numba_equals_numpy(name):
    net = small_net()
    w = rand_weights(net)
    if name == "tiny-wrap":
        w = {k: v * 8 for k, v in w.items()}
    m = QuantizedModel(net, w, DATAPATHS[name], seed=7)
    img = rand_images(2)
    ref = m.trace(img, first_pattern=3, backend="numpy")
    fast = m.trace(img, first_pattern=3, backend="numba")
    assert_traces_equal(ref, fast)
    assert_traces_equal(ref, m.trace(img, first_pattern=3, backend="numba-generic"))
    assert all(k == "codes" for k in fast.kinds)
    assert fast.counters[0]["spikes"] == 2 * 36 * 10
    if name == "tiny-wrap":
        assert fast.counters[0]["acc_overflow_spikes"] > 0  # the wrap case really wraps


def test_maxpool_and_per_spike_trace_equal():
    net = small_net("maxpool", T=16)
    m = QuantizedModel(net, rand_weights(net, 3), PRESETS["int-e4m1"], seed=2)
    img = rand_images(2, seed=5)
    fast = m.trace(img, backend="numba")
    assert_traces_equal(m.trace(img, backend="numpy"), fast)
    for layer, pattern, ip in ((0, 0, 0), (0, 1, 29), (2, 1, 5), (3, 0, 0)):
        a = m.trace_ip(img, layer, pattern, ip, backend="numpy")
        b = m.trace_ip(img, layer, pattern, ip, backend="numba")
        assert np.array_equal(a["spikes"], b["spikes"])
        assert np.array_equal(a["hist"], b["hist"]), (layer, pattern, ip)  # h after every spike
        assert np.array_equal(a["records"], b["records"])
        assert a["counters"] == b["counters"]
        # the recorded final h is the layer's output for that IP
        out = fast.outputs[layer]
        assert np.array_equal(b["hist"][-1], out[pattern].reshape(out.shape[1], -1)[:, ip])


def test_thread_count_does_not_change_results():
    net = small_net(T=16)
    m = QuantizedModel(net, rand_weights(net, 4), PRESETS["paper"], seed=1)
    img = rand_images(3, seed=9)
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = m.trace(img)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = m.trace(img)
    finally:
        numba.set_num_threads(old)
    assert_traces_equal(one, two)


@pytest.mark.parametrize("dp", [{0: None, 2: PRESETS["int-e4m1"]}, {0: PRESETS["paper"], 3: None},
                                {2: PRESETS["int-uq0.8"]}])
def test_float_quantized_boundaries_equal(dp):
    net = small_net()
    m = QuantizedModel(net, rand_weights(net, 5), dp, seed=4)
    img = rand_images(2, seed=2)
    a = m.trace(img, backend="numpy")
    b = m.trace(img, backend="numba")
    assert_traces_equal(a, b)
    for li in (0, 2, 3):
        quant = (dp.get(li) if isinstance(dp, dict) else dp) is not None
        assert a.kinds[li] == ("codes" if quant else "float")


def test_all_float_equals_float_golden_model():
    from sbs_model.data import preprocess
    from sbs_model.model import Model

    net = small_net()
    w = rand_weights(net, 6)
    img = rand_images(2, seed=3)
    q = QuantizedModel(net, w, {}, seed=5).trace(img)
    f = Model(net, w, seed=5).trace(preprocess(img, size=8))
    for x, y in zip(q.outputs, f):
        assert np.array_equal(x, y)


def test_layer0_window_is_raw_pixels_of_the_centre_crop():
    net = small_net()
    img = rand_images(1)
    xw = qr.window_values(qr.Act("pixels", qr.crop_pixels(img, net)), None)
    assert xw.dtype == np.int64 and np.array_equal(xw[0, 0], img[0, 10:18, 10:18])
    win = qr.ip_window(xw, net.layers[0], 0, 6 * 2 + 3)  # oy = 2, ox = 3
    assert np.array_equal(win, img[0, 12:15, 13:16].ravel())


def test_ignored_spikes_are_counted():
    # 2x2 kernel, N = 2; weight row 3 is ~1e-9 -> code 0 in uq0.8: spikes on it give A == 0
    net = NetworkSpec((1, 2, 2), (L("sbs", 1, 2, (2, 2), spikes=30),))
    w = np.array([[0.3, 0.2], [0.3, 0.4], [0.4, 0.4], [1e-9, 1e-9]], dtype=np.float64)
    m = QuantizedModel(net, {0: w}, PRESETS["int-uq0.8"])
    img = np.zeros((1, 28, 28), np.uint8)
    img[0, 14, 14] = 200  # crop rows/cols 13..14: only window position s = 3 is nonzero
    for backend in ("numpy", "numba"):
        tr = m.trace(img, backend=backend)
        assert tr.counters[0]["ignored"] == 30 == tr.counters[0]["spikes"]
        assert np.array_equal(tr.outputs[0][0, :, 0, 0], PRESETS["int-uq0.8"].initial_h(2))


@pytest.mark.parametrize("name", ["int-e4m1", "paper"])
def test_reference_network_small_T(name):
    net = reference_mnist(spikes=3)
    w = rand_weights(net, 8)
    m = QuantizedModel(net, w, PRESETS[name])
    img = rand_images(1, seed=4)
    assert_traces_equal(m.trace(img, first_pattern=11, backend="numpy"), m.trace(img, first_pattern=11))


def test_fast_path_equals_step_nb_path():
    from sbs_model import quant_fast_int as qfi
    from sbs_model import quant_nb as qn

    net = small_net(T=24)
    img = rand_images(2, seed=8)
    for name in ("int-e4m1", "int-uq0.8", "tiny-wrap"):
        w = rand_weights(net, 9)
        if name == "tiny-wrap":
            w = {k: v * 8 for k, v in w.items()}
        m = QuantizedModel(net, w, DATAPATHS[name])
        ql = m.qlayers[0]
        assert qn.fast_kernel(ql) is qfi.run_quant_layer_int
        xw = qr.window_values(qr.Act("pixels", qr.crop_pixels(img, net)), ql)
        a = qn.run_quant_layer(ql, xw, 5, 0, fast=False)
        b = qn.run_quant_layer(ql, xw, 5, 0, fast=True)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    from sbs_model import quant_fast_f32 as qff

    paper = QuantizedModel(net, rand_weights(net), PRESETS["paper"]).qlayers[0]
    assert not qfi.int_fast_ok(paper) and qn.fast_kernel(paper) is qff.run_quant_layer_f32


def test_fast_path_h_saturation_equals_step_nb_path():
    from sbs_model import quant_fast_int as qfi
    from sbs_model import quant_nb as qn

    # N = 2, W[0] = (1, 0): h -> (1, 0), and 1 does not fit a 6-bit H (max 63/64): saturation
    net = NetworkSpec((1, 2, 2), (L("sbs", 1, 2, (2, 2), spikes=40, eps0=10.0, eps_schedule="constant"),))
    w = np.array([[1.0, 0.0], [0.0, 0.5], [0.0, 0.25], [0.0, 0.25]])
    dp = Datapath(weight_format="uq0.8", h_format="uq0.6", sampler_frac_bits=16)
    ql = QuantizedModel(net, {0: w}, dp).qlayers[0]
    assert qfi.int_fast_ok(ql)
    img = np.zeros((1, 28, 28), np.uint8)
    img[0, 13, 13] = 255  # only s = 0 spikes
    xw = qr.window_values(qr.Act("pixels", qr.crop_pixels(img, net)), ql)
    a = qn.run_quant_layer(ql, xw, 0, 0, fast=False)
    b = qn.run_quant_layer(ql, xw, 0, 0, fast=True)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert b[1][qr.C_H_OVF] > 0 and b[0][0, 0, 0, 0] == 63


@pytest.mark.parametrize("kw", [
    dict(h_ovf=True),
    dict(h_rounding="trunc", weight_format="e3m2", upd_frac_bits=16),
    dict(h_rounding="rna", weight_format="uq0.8", acc_format="uq1.10", acc_overflow="wrap", c_bits=12, scale=6,
         h_ovf=True),
    dict(acc_format="uq1.12", scale=6, h_ovf=True),
    dict(weight_format="e2m0", h_format="uq0.12", upd_frac_bits=30, recip_method="nr", coef_bits=12),
    dict(h_format="uq1.8", acc_format="uq3.20", norm_bits=10, recip_bits=12, g_bits=10),
])
def test_fast_step_equals_step_nb_on_random_states(kw):
    from fixedpoint.datapath import R_ACC_OVF, R_H_OVF, R_SIG_R, REC_LEN, step_nb
    from sbs_model import quant_fast_int as qfi

    kw = dict(kw)
    scale = kw.pop("scale", 1)  # weights > 1 make small accumulators overflow
    h_ovf = kw.pop("h_ovf", False)  # this datapath can round an update up to 1.0 (H saturates)
    dp = Datapath(**kw)
    rng = np.random.default_rng(len(str(kw)))
    S, N, T = 7, 13, 50
    w = rng.random((S, N)) ** 4 * scale
    net = NetworkSpec((1, 1, S), (L("sbs", 1, N, (1, S), spikes=T),))
    ql = QuantizedModel(net, {0: w}, dp).qlayers[0]
    p = qfi.prepare_int(ql)
    assert p is not None
    narrow = bool(p.md.max() < 2**32)
    t_ = ql.tables
    seen = [0, 0, 0]
    for trial in range(300):
        h = rng.integers(0, ql.H.n_codes, N) >> rng.integers(0, ql.H.width, N)  # wide spread, zeros too
        if trial % 2:  # one dominant element near the top of H: its update can overflow H
            h = h >> (ql.H.width - 1 if trial % 4 == 1 else ql.H.width // 2)
            h[rng.integers(N)] = ql.H.n_codes - 1 - rng.integers(4)
        if trial % 7 == 0:
            h[:] = 0  # A == 0: ignored spike
        s, t = int(rng.integers(S)), int(rng.integers(T))
        a, b = h.copy(), h.copy()
        ra, rb = np.zeros(REC_LEN, np.int64), np.zeros(REC_LEN, np.int64)
        step_nb(a, ql.wcodes[s], np.int64(t), dp.nb, ql.H.nb, ql.W.nb, t_.C, t_.G, t_.eps32, t_.c32, ql.lut, a, ra)
        hb = np.zeros((qfi.GROUP, p.md.shape[1]), np.int64)  # padded rows, IP 1 of a group
        hb[1, :N] = b
        sd, s_next = np.int64(p.sd), int(rng.integers(S))
        tot = qfi.dot_int_nb(hb, 1, p.md, s, sd, narrow)
        nxt = qfi.spike_int_nb(hb, 1, s, t, tot, s_next, p.md, p.m2, sd, np.int64(p.e_min), p.recip, narrow, dp.nb,
                               ql.H.nb, t_.C, t_.G, rb)
        assert np.array_equal(a, hb[1, :N]) and not hb[1, N:].any() and np.array_equal(ra, rb), (trial, h, s, t)
        assert nxt == qfi.dot_int_nb(hb, 1, p.md, s_next, sd, narrow)  # the fused next-spike dot
        seen[0] += ra[R_H_OVF] > 0
        seen[1] += ra[R_SIG_R] == 0
        seen[2] += ra[R_ACC_OVF] > 0
    assert seen[1] > 0 and (seen[0] > 0) == h_ovf  # ignored spikes and (where possible) h saturation
    assert seen[2] > 0 or scale == 1  # accumulator overflow where the weights allow it


@pytest.mark.parametrize("s_len,zero", [(25, False), (25, True), (800, False), (800, True)])
def test_threshold_spikes_equal_binary_search_spikes(s_len, zero):
    """The kernels' spike indices (threshold counting, incl. the bucket path of long windows)
    equal the integer sampler's per-draw binary search on the same draws."""
    from fixedpoint.rng import sample_index_int_nb, spike_random_nb
    from sbs_model import quant_nb
    from sbs_model.kernels_cpu import BUCKET_BITS

    rng = np.random.default_rng(s_len)
    xw = np.zeros((1, s_len), dtype=np.int64) if zero else rng.integers(0, 2**16, (1, s_len)) * (rng.random((1, s_len)) < 0.3)
    idx = np.arange(s_len, dtype=np.int64)[None, :]
    T = 1600
    spk = np.empty(T, dtype=np.int64)
    cum = np.empty(s_len, dtype=np.int64)
    r32 = np.empty(T, dtype=np.uint32)
    assert quant_nb.prepare_ip_fast(xw, 0, idx, 0, cum, np.uint64(3), np.uint64(7), np.uint64(2), r32,
                                    np.empty(s_len, dtype=np.int64), np.empty(1 << BUCKET_BITS, dtype=np.int64), spk)
    assert np.array_equal(cum, np.cumsum(xw[0]))
    for t in range(0, T, 7):
        assert r32[t] == spike_random_nb(3, 7, 2, 0, t)
        assert spk[t] == sample_index_int_nb(cum, s_len, r32[t]), t
    assert len(set(spk.tolist())) > 1
