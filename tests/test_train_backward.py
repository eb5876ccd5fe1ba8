"""Backward pass of SbS training: numba == numpy reference bit for bit, and the formulas are the
exact derivatives of the deterministic one-step EM map (finite differences)."""
import numpy as np
import pytest

from sbs_model.network import LayerSpec as L, NetworkSpec
from sbs_model.train.backward import RULE_BACKPROP, RULE_LOCAL, em_map, sbs_layer_backward_ref
from sbs_model.train.backward_nb import sbs_layer_backward_nb
from sbs_model.train.forward import layer_weights, pool_backward, pool_forward, unfold
from sbs_model.train.gradients import network_backward


def _dist(rng, *shape, axis=-1):
    a = rng.uniform(0.05, 1.0, shape)
    return a / a.sum(axis=axis, keepdims=True)


def _net():
    return NetworkSpec((2, 7, 7), (
        L("sbs", 2, 5, (3, 3), stride=(1, 1), padding=(1, 1), spikes=8),
        L("avgpool", 5, 5, (2, 2), (2, 2)),
        L("sbs", 5, 6, (2, 2), dilation=(2, 1), spikes=8),
        L("sbs", 6, 3, (1, 2), spikes=8),
    ))


@pytest.mark.parametrize("rule", [RULE_BACKPROP, RULE_LOCAL])
@pytest.mark.parametrize("layer", [L("sbs", 3, 5, (3, 3), padding=(1, 1)),
                                   L("sbs", 3, 7, (2, 3), stride=(2, 1), dilation=(1, 2))])
def test_numba_backward_equals_reference_bit_for_bit(rule, layer):
    rng = np.random.default_rng(1)
    x = rng.random((3, 3, 6, 7))
    x[0, :, :2] = 0.0  # some all-zero windows
    ho, wo = layer.output_hw(6, 7)
    h = _dist(rng, 3, ho, wo, layer.out_channels).transpose(0, 3, 1, 2)
    g = rng.normal(size=h.shape)
    W = _dist(rng, layer.window, layer.out_channels, axis=0)
    a = sbs_layer_backward_ref(x, h, W, g, layer, rule)
    b = sbs_layer_backward_nb(x, h, W, g, layer, rule)
    assert a[1] == b[1] == 3 * ho * wo
    assert np.array_equal(a[0], b[0])
    assert np.array_equal(a[2], b[2])
    assert np.abs(a[0]).max() > 0 and np.abs(a[2]).max() > 0


def _fd(f, x, step=1e-6):
    out = np.zeros_like(x)
    for k in np.ndindex(x.shape):
        xp = x.copy(); xp[k] += step
        xm = x.copy(); xm[k] -= step
        out[k] = (f(xp) - f(xm)) / (2 * step)
    return out


def test_single_ip_gradients_match_finite_differences_of_em_map():
    rng = np.random.default_rng(2)
    layer = L("sbs", 2, 4, (2, 3))  # kernel covers the whole 2x2x3 input: one IP, S = 12
    u = rng.uniform(0.1, 2.0, layer.window)
    W = _dist(rng, layer.window, 4, axis=0)
    h = _dist(rng, 4)
    c = rng.normal(size=4)  # L = c . F
    dW, count, dx = sbs_layer_backward_ref(u.reshape(1, 2, 2, 3), h.reshape(1, 4, 1, 1), W,
                                           c.reshape(1, 4, 1, 1), layer)
    assert count == 1
    fd_w = _fd(lambda w: c @ em_map(u, w, h), W)
    fd_u = _fd(lambda v: c @ em_map(v, W, h), u)
    np.testing.assert_allclose(dW, fd_w, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(dx.reshape(-1), fd_u, rtol=1e-6, atol=1e-9)
    # without the Jacobian of p = u/U the error would be wrong (the spec's p-form differs)
    R = W @ h
    e = (W * (h * c)).sum(1) / R
    assert not np.allclose(e, fd_u, rtol=1e-3)


def test_local_rule_is_the_gradient_of_the_reconstruction_error():
    rng = np.random.default_rng(3)
    layer = L("sbs", 1, 3, (2, 2))
    u = rng.uniform(0.1, 1.0, 4)
    W = _dist(rng, 4, 3, axis=0)
    h = _dist(rng, 3)
    dW, _, _ = sbs_layer_backward_ref(u.reshape(1, 1, 2, 2), h.reshape(1, 3, 1, 1), W, np.zeros((1, 3, 1, 1)),
                                      layer, RULE_LOCAL, need_dx=False)
    p = u / u.sum()
    np.testing.assert_allclose(dW, _fd(lambda w: 0.5 * np.sum((p - w @ h) ** 2), W), rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("kind", ["avgpool", "maxpool"])
def test_pool_backward_matches_finite_differences(kind):
    rng = np.random.default_rng(4)
    layer = L(kind, 2, 2, (3, 2), stride=(2, 1), padding=(1, 0))
    x = rng.random((2, 2, 5, 4))
    y = pool_forward(x, layer)
    c = rng.normal(size=y.shape)
    np.testing.assert_allclose(pool_backward(x, c, layer), _fd(lambda v: np.sum(c * pool_forward(v, layer)), x),
                               rtol=1e-6, atol=1e-9)


def test_network_backward_is_the_chain_rule_of_the_deterministic_network():
    """Forward where every SbS layer is the EM map at fixed h (the converged h of a stochastic
    run): network_backward's gradients equal finite differences for the weights of every layer."""
    net = _net()
    rng = np.random.default_rng(5)
    B = 2
    x = rng.uniform(0.05, 1.0, (B,) + net.input_shape)
    W = {i: _dist(rng, *s, axis=0) for i, s in net.weight_shapes().items()}
    hfix = {i: _dist(rng, B, *net.shapes()[i][1:], net.shapes()[i][0]).transpose(0, 3, 1, 2)
            for i in net.sbs_layers()}
    c = rng.normal(size=(B, 3))

    def det_forward(weights):
        ins, outs = [], []
        a = x
        for i, layer in enumerate(net.layers):
            ins.append(a)
            if layer.is_sbs:
                win = unfold(a, layer)  # (B, IPs, S)
                hh = hfix[i].reshape(B, layer.out_channels, -1)
                out = np.zeros_like(hh)
                for b in range(B):
                    for ip in range(win.shape[1]):
                        out[b, :, ip] = em_map(win[b, ip], layer_weights(net, weights, i), hh[b, :, ip])
                a = out.reshape(hfix[i].shape)
            else:
                a = pool_forward(a, layer)
            outs.append(a)
        return ins, outs

    ins, _ = det_forward(W)
    outs_h = [hfix.get(i, None) for i in range(len(net.layers))]
    outs_h[1] = pool_forward(hfix[0], net.layers[1])  # unused by the backward of pooling
    grads = network_backward(net, W, ins, outs_h, c, {0: RULE_BACKPROP, 2: RULE_BACKPROP, 3: RULE_BACKPROP},
                             sbs_layer_backward_nb)
    for i in (0, 2, 3):
        def loss(wi, i=i):
            w2 = dict(W); w2[i] = wi
            return np.sum(c * det_forward(w2)[1][-1].reshape(B, 3))
        np.testing.assert_allclose(grads[i][0], _fd(loss, W[i]), rtol=1e-5, atol=1e-9)
