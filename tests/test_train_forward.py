"""Training forward: numba kernel == numpy reference bit for bit; per-layer inputs kept."""
import numba
import numpy as np

from sbs_model.network import LayerSpec as L, NetworkSpec
from sbs_model.train.forward import layer_weights, network_forward, pool_forward, sbs_layer_ref
from sbs_model.train.forward_nb import sbs_layer_nb


def _net():
    return NetworkSpec((1, 8, 8), (
        L("sbs", 1, 6, (3, 3), spikes=40),
        L("avgpool", 6, 6, (2, 2), (2, 2)),
        L("sbs", 6, 5, (3, 3), spikes=30, padding=(1, 1), eps_schedule="constant", eps0=0.1),
        L("sbspool", 5, 5, (1, 1), spikes=5),
        L("sbs", 5, 3, (3, 3), spikes=25, cooldown_after=10),
    ))


def _weights(net, seed=0):
    rng = np.random.default_rng(seed)
    out = {}
    for i, s in net.weight_shapes().items():
        w = rng.uniform(1.0, 1.1, s)
        out[i] = w / w.sum(0)
    return out


def test_numba_forward_equals_reference_and_keeps_layer_inputs():
    net = _net()
    W = _weights(net)
    x = np.random.default_rng(1).random((3, 1, 8, 8)) + 1e-20
    x[0, 0, :4] = 1e-20
    pats = np.array([7, 8, 100])
    ins_a, outs_a = network_forward(net, W, x, 3, pats)
    ins_b, outs_b = network_forward(net, W, x, 3, pats, sbs_layer=sbs_layer_nb)
    for a, b in zip(outs_a, outs_b):
        assert np.array_equal(a, b)
    assert np.array_equal(ins_b[0], x)
    assert np.array_equal(ins_b[2], pool_forward(outs_b[0], net.layers[1]))
    for i in (0, 2, 3, 4):
        np.testing.assert_allclose(outs_b[i].sum(axis=1), 1.0, atol=1e-12)
    assert outs_b[-1].shape == (3, 3, 1, 1)


def test_numba_forward_independent_of_threads_and_fresh_per_pattern_key():
    net = _net()
    W = _weights(net)
    layer = net.layers[0]
    x = np.random.default_rng(2).random((4, 1, 8, 8)) + 1e-20
    n0 = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        a = sbs_layer_nb(x, W[0], layer, 0, 5, np.arange(4))
    finally:
        numba.set_num_threads(n0)
    b = sbs_layer_nb(x, W[0], layer, 0, 5, np.arange(4))
    assert np.array_equal(a, b)
    same_img = np.repeat(x[:1], 2, axis=0)
    c = sbs_layer_nb(same_img, W[0], layer, 0, 5, np.array([0, 60000]))
    assert not np.array_equal(c[0], c[1])  # new epoch key -> new spike trains
    assert np.array_equal(c[0], sbs_layer_ref(same_img[:1], W[0], layer, 0, 5, [0])[0])


def test_golden_adapter_uses_the_inference_kernels_with_consecutive_keys():
    import pytest

    kernels_cpu = pytest.importorskip("sbs_model.kernels_cpu")
    from sbs_model.train.forward import make_golden_forward

    net = _net()
    W = _weights(net)
    x = np.random.default_rng(4).random((3, 1, 8, 8)) + 1e-20
    f = make_golden_forward("float32")
    _, outs = network_forward(net, W, x, 2, np.array([10, 11, 12]), sbs_layer=f)
    ref = kernels_cpu.forward_trace(net, {k: v.astype(np.float32) for k, v in W.items()}, x, seed=2,
                                    first_pattern=10, dtype="float32")
    assert np.array_equal(outs[0], ref[0].astype(np.float64))
    for i in (2, 3, 4):  # each SbS layer, given the same input, is exactly the inference kernel
        h = f(ref[i - 1].astype(np.float64), W.get(i, None) if i != 3 else layer_weights(net, W, 3),
              net.layers[i], i, 2, np.array([10, 11, 12]))
        assert np.array_equal(h, ref[i].astype(np.float64))
    for a, b in zip(outs, ref):  # pooling runs in float64 here, float32 there: 1-ulp inputs
        np.testing.assert_allclose(a, b, atol=1e-6)
    # same spike semantics as the float64 training kernel: h agree to float32 precision on most IPs
    _, own = network_forward(net, W, x, 2, np.array([10, 11, 12]), sbs_layer=sbs_layer_nb)
    assert np.mean(np.abs(outs[0] - own[0]) < 1e-4) > 0.9
    with pytest.raises(ValueError, match="consecutive pattern keys"):
        f(x, W[0], net.layers[0], 0, 2, np.array([1, 5, 6]))


def test_training_and_inference_differ_only_in_the_stated_operation_order():
    """One definition: the same schedule, windows, pooling and spikes as the inference model
    (sbs_model.float_ref); training's 4-lane dot product and ``(h*(1 + a*W))*c`` update round
    differently from inference's 8-lane ``c*h + g*p``, so h agree to rounding, not bit for bit."""
    import pytest

    from sbs_model import float_ref
    from sbs_model.train.forward import R_MIN, eps_table, unfold

    net = _net()
    W = _weights(net)
    x = np.random.default_rng(5).random((2, 1, 8, 8)) + 1e-20
    pats = np.array([3, 4])
    _, outs = network_forward(net, W, x, 9, pats)
    ref = float_ref.forward_trace(net, W, x, seed=9, first_pattern=3, dtype="float64")
    for li, (a, b) in enumerate(zip(outs, ref)):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-15, err_msg=f"layer {li}")
    assert any(not np.array_equal(a, b) for a, b in zip(outs, ref))  # the orders really differ
    for layer in (net.layers[0], net.layers[2], net.layers[4]):
        assert all(np.array_equal(u, v) for u, v in zip(eps_table(layer), float_ref.eps_tables(layer, np.float64)))
    assert R_MIN == float_ref.R_MIN and unfold is float_ref.unfold
    assert np.array_equal(pool_forward(outs[0], net.layers[1]), float_ref.pool(outs[0], net.layers[1]))
    bad = L("sbs", 1, 6, (3, 3), spikes=4, eps_schedule="linear")
    with pytest.raises(ValueError, match="eps_schedule"):  # an unknown schedule is an error here too
        eps_table(bad)
