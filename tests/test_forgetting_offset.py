"""pytorch-sbs's forgetting offset in the float model, against h computed by hand from the spikes,
and its refusal in the backends that do not implement it."""
import dataclasses

import numpy as np
import pytest

from fixedpoint.rng import sample_index_float, spike_random
from fixedpoint.schedule import Schedule
from sbs_model import float_ref, kernels_cpu
from sbs_model.network import LayerSpec, NetworkSpec, reference_mnist

W = np.array([[0.2, 0.5, 0.1],
              [0.8, 0.5, 0.9]])        # (S = 2, N = 3), columns sum to 1


def one_layer_net(fo, spikes=5, eps0=1.0):
    layer = LayerSpec("sbs", 1, 3, (1, 2), spikes=spikes, eps0=eps0, forgetting_offset=fo)
    return NetworkSpec((1, 1, 2), (layer,), name="tiny")


def pytorch_sbs_ip(window, w, fo, T, eps0, seed, pattern, layer_index, ip):
    """One IP the way pytorch-sbs's C++ kernel computes it (un-normalised h and a running scale),
    with the spikes drawn by the project's generator; plain Python floats."""
    n = w.shape[1]
    total = sum(window)
    cum = np.cumsum(window)
    h = [1.0 / n] * n
    scale = 1.0
    spikes = []
    for t in range(T):
        r32 = int(spike_random(seed, pattern, layer_index, ip, t))
        s = int(sample_index_float(cum, r32)) if total > 0 else 0
        spikes.append(s)
        eps = eps0 / (t + 1) ** 0.5
        p = [h[i] * w[s, i] for i in range(n)]
        r = sum(p)
        if r > 1e-10:
            h = [h[i] + scale * eps * p[i] / r for i in range(n)]
            if fo > 0:
                h = [v + scale * eps * fo / n for v in h]
                scale *= 1.0 + eps * (1.0 + fo)
            else:
                scale *= 1.0 + eps
    return np.array([v / scale for v in h]), spikes


@pytest.mark.parametrize("fo", [0.0, 0.3, 2.0])
@pytest.mark.parametrize("window", [(0.0, 1.0), (0.35, 0.65)])
def test_float_model_matches_hand_computed_spikes(fo, window):
    T, seed = 6, 11
    net = one_layer_net(fo, spikes=T)
    x = np.array(window, dtype=np.float64).reshape(1, 1, 1, 2)
    got = float_ref.forward(net, {0: W}, x, seed=seed, dtype="float64")[0]
    want, spikes = pytorch_sbs_ip(window, W, fo, T, 1.0, seed, 0, 0, 0)
    if window[0] == 0.0:
        assert set(spikes) == {1}                       # all mass on s = 1
    else:
        assert set(spikes) == {0, 1}                    # both entries drawn
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=0)
    assert got.sum() == pytest.approx(1.0, abs=1e-14)   # still a distribution


def test_forgetting_offset_by_hand_one_spike():
    """T = 1, spike s = 1, eps_0 = 1, fo = 0.5: h_i = (1/3 + W[1,i]/(3 r) + 0.5/3) / 2.5."""
    net = one_layer_net(0.5, spikes=1)
    x = np.array([0.0, 1.0]).reshape(1, 1, 1, 2)
    r = (0.8 + 0.5 + 0.9) / 3
    want = np.array([(1 / 3 + 1.0 * (0.8 / 3) / r + 0.5 / 3) / 2.5,
                     (1 / 3 + 1.0 * (0.5 / 3) / r + 0.5 / 3) / 2.5,
                     (1 / 3 + 1.0 * (0.9 / 3) / r + 0.5 / 3) / 2.5])
    got = float_ref.forward(net, {0: W}, x, dtype="float64")[0]
    np.testing.assert_allclose(got, want, rtol=1e-14)
    plain = float_ref.forward(one_layer_net(0.0, spikes=1), {0: W}, x, dtype="float64")[0]
    assert not np.allclose(got, plain)                  # the offset changes h


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_numba_kernels_equal_reference_with_offset(dtype):
    rng = np.random.default_rng(3)
    base = reference_mnist(spikes=40)
    net = NetworkSpec(base.input_shape, tuple(dataclasses.replace(l, forgetting_offset=0.2) if l.is_sbs else l
                                              for l in base.layers), name="fo")
    weights = {}
    for i, (s, n) in net.weight_shapes().items():
        w = rng.uniform(0.01, 1.0, (s, n))
        weights[i] = (w / w.sum(axis=0)).astype(np.float32)
    x = rng.uniform(0, 1, (2, 1, 24, 24)) + 1e-20
    ref = float_ref.forward_trace(net, weights, x, seed=5, dtype=dtype)
    fast = kernels_cpu.forward_trace(net, weights, x, seed=5, dtype=dtype)
    for a, b in zip(ref, fast):
        assert np.array_equal(a, b)
    plain = kernels_cpu.forward_trace(base, weights, x, seed=5, dtype=dtype)
    assert not np.array_equal(plain[0], fast[0])


def test_hash_unchanged_without_offset_and_validation():
    assert "forgetting_offset" not in reference_mnist().to_dict()["layers"][0]
    assert "forgetting_offset" in one_layer_net(0.1).to_dict()["layers"][0]
    with pytest.raises(ValueError, match="forgetting_offset"):
        one_layer_net(-0.1)


def test_backends_without_it_refuse():
    net = one_layer_net(0.25)
    with pytest.raises(ValueError, match="forgetting_offset 0.25 is implemented only by the float model"):
        Schedule.from_layer(net.layers[0])           # integer datapath: quantized model and RTL
    from sbs_model.quant import QuantizedModel
    with pytest.raises(ValueError, match="forgetting_offset"):
        QuantizedModel(net, {0: W.astype(np.float32)}, "int-e4m1").predict(np.zeros((1, 28, 28), np.uint8))
    from sbs_model.train.forward import eps_table
    with pytest.raises(ValueError, match="forgetting_offset"):
        eps_table(net.layers[0])
