"""Float reference model: hand-computed spikes, unfold/pooling order, convergence properties."""
import math

import numpy as np
import pytest

from fixedpoint.rng import sample_index_float, spike_random
from sbs_model import float_ref
from sbs_model.network import LayerSpec, NetworkSpec
from sbs_model.unfold import pool, sbspool_weights, unfold, unfold_index


def one_layer(c, h, w, n, kernel, spikes, **kw):
    return NetworkSpec((c, h, w), (LayerSpec("sbs", c, n, kernel, spikes=spikes, **kw),))


# ------------------------------------------------------------------ hand-computed example
W2 = np.array([[0.75, 0.25],   # W[s=0, i]
               [0.25, 0.75]])  # W[s=1, i]; columns sum to 1
U2 = np.array([1.0, 3.0])      # one IP, window u = (1, 3): cum = (1, 4), p = (1/4, 3/4)


def test_three_spikes_by_hand():
    # Spike draws for seed 0, pattern 0, layer 0, ip 0 (Threefry, fixedpoint.rng):
    r = [int(spike_random(0, 0, 0, 0, t)) for t in range(3)]
    assert r == [1797259609, 928981903, 4146024105]
    # target = r/2**32 * 4 = 1.674, 0.865, 3.861 -> first s with cum[s] >= target: 1, 0, 1
    spikes = [int(sample_index_float(np.cumsum(U2), x)) for x in r]
    assert spikes == [1, 0, 1]

    x = U2.reshape(1, 1, 1, 2)
    # t = 0: eps = 1, c = 1/2, s = 1, r = 0.5*0.25 + 0.5*0.75 = 0.5,
    #   h_i = (h_i + 1*h_i*W[1,i]/0.5) / 2 = h_i*(1 + 2*W[1,i])/2 -> (0.5*1.5/2, 0.5*2.5/2) = (0.375, 0.625)
    h1 = float_ref.forward(one_layer(1, 1, 2, 2, (1, 2), 1), {0: W2}, x)[0]
    assert h1.tolist() == [0.375, 0.625]
    # t = 1: eps = 1/sqrt(2), s = 0, r = 0.375*0.75 + 0.625*0.25 = 0.4375 = 7/16,
    #   h_0 = 0.375*(1 + eps*0.75/r)/(1 + eps) = 0.375*(1 + eps*12/7)/(1 + eps)
    #   h_1 = 0.625*(1 + eps*0.25/r)/(1 + eps) = 0.625*(1 + eps*4/7)/(1 + eps)
    e1 = 1 / math.sqrt(2)
    h2 = [0.375 * (1 + e1 * 12 / 7) / (1 + e1), 0.625 * (1 + e1 * 4 / 7) / (1 + e1)]
    assert h2[0] == pytest.approx(0.48595006, abs=1e-8)  # 0.375*(1+1.2122)/1.7071
    # t = 2: eps = 1/sqrt(3), s = 1, r = h_0*0.25 + h_1*0.75,  h_i = h_i*(1 + eps*W[1,i]/r)/(1 + eps)
    e2 = 1 / math.sqrt(3)
    r2 = h2[0] * 0.25 + h2[1] * 0.75
    h3 = [h2[0] * (1 + e2 * 0.25 / r2) / (1 + e2), h2[1] * (1 + e2 * 0.75 / r2) / (1 + e2)]
    for spikes_run, expect in ((2, h2), (3, h3)):
        got = float_ref.forward(one_layer(1, 1, 2, 2, (1, 2), spikes_run), {0: W2}, x)[0]
        np.testing.assert_allclose(got, expect, rtol=1e-15, atol=0)
        assert got.sum() == pytest.approx(1.0, abs=1e-15)


def test_tiny_r_ignores_spike():
    # W[1, :] = 0: a spike on s = 1 gives r = 0 <= 1e-10 and must leave h unchanged.
    w = np.array([[0.5, 0.5], [0.0, 0.0], [0.5, 0.5]])
    x = np.array([0.0, 1.0, 0.0]).reshape(1, 1, 1, 3)  # every spike is s = 1
    h = float_ref.forward(one_layer(1, 1, 3, 2, (1, 3), 50), {0: w}, x)[0]
    assert h.tolist() == [0.5, 0.5]


def test_lane_sum_order():
    p = np.arange(1, 20, dtype=np.float64) * 0.1
    a = [sum(p[k::8][j] for j in range(len(p[k::8]))) if k < 19 else 0.0 for k in range(8)]
    expect = ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]))
    assert float_ref.lane_sum(p) == expect


def test_eps_tables_schedules():
    lay = LayerSpec("sbs", 1, 2, (1, 1), spikes=6, eps0=0.5, cooldown_after=4)
    eps, c = float_ref.eps_tables(lay)
    assert eps.tolist() == [0.5 / math.sqrt(t + 1) / (25 if t >= 4 else 1) for t in range(6)]
    assert c.tolist() == [1 / (1 + e) for e in eps.tolist()]
    lay = LayerSpec("sbs", 1, 2, (1, 1), spikes=3, eps0=0.1, eps_schedule="constant")
    assert float_ref.eps_tables(lay)[0].tolist() == [0.1, 0.1, 0.1]


def test_batch_sampler_matches_sample_index_float():
    g = np.random.default_rng(3)
    u = g.random((50, 9)) * (g.random((50, 9)) > 0.3)
    u[0] = 0.0
    cum = np.cumsum(u, axis=1)
    r = g.integers(0, 2 ** 32, 50, dtype=np.uint64).astype(np.uint32)
    r[1], r[2] = 0, 2 ** 32 - 1
    got = float_ref.sample_spikes(cum, r)
    assert got.tolist() == [int(sample_index_float(cum[j], r[j])) for j in range(50)]


# ------------------------------------------------------------------ unfold and pooling order
def direct_window(x, layer, b, oy, ox):
    c_in, h, w = x.shape[1:]
    (kh, kw), (sy, sx), (dy, dx), (py, px) = layer.kernel, layer.stride, layer.dilation, layer.padding
    out = []
    for c in range(c_in):
        for ky in range(kh):
            for kx in range(kw):
                y, xx = oy * sy - py + ky * dy, ox * sx - px + kx * dx
                out.append(x[b, c, y, xx] if 0 <= y < h and 0 <= xx < w else 0.0)
    return out


@pytest.mark.parametrize("kernel,stride,dilation,padding", [
    ((3, 2), (2, 1), (1, 2), (1, 2)),
    ((5, 5), (1, 1), (1, 1), (0, 0)),
    ((2, 3), (3, 2), (2, 1), (2, 0)),
])
def test_unfold_matches_direct_loop(kernel, stride, dilation, padding):
    x = np.random.default_rng(0).random((2, 3, 7, 6))
    layer = LayerSpec("sbs", 3, 4, kernel, stride, dilation, padding)
    win = unfold(x, layer)
    ho, wo = layer.output_hw(7, 6)
    assert win.shape == (2, ho * wo, 3 * kernel[0] * kernel[1])
    for b in range(2):
        for oy in range(ho):
            for ox in range(wo):
                assert win[b, oy * wo + ox].tolist() == direct_window(x, layer, b, oy, ox)
    idx = unfold_index((3, 7, 6), layer)
    assert idx.shape == win.shape[1:] and idx.min() >= -1


@pytest.mark.parametrize("kind", ["avgpool", "maxpool"])
@pytest.mark.parametrize("kernel,stride,padding", [((2, 2), (2, 2), (0, 0)), ((3, 2), (2, 1), (1, 1))])
def test_pool_matches_direct_loop(kind, kernel, stride, padding):
    x = np.random.default_rng(1).random((2, 3, 6, 5))
    layer = LayerSpec(kind, 3, 3, kernel, stride, padding=padding)
    out = pool(x, layer)
    ho, wo = layer.output_hw(6, 5)
    assert out.shape == (2, 3, ho, wo)
    for b in range(2):
        for c in range(3):
            for oy in range(ho):
                for ox in range(wo):
                    vals, inside = [], []
                    for ky in range(kernel[0]):
                        for kx in range(kernel[1]):
                            y, xx = oy * stride[0] - padding[0] + ky, ox * stride[1] - padding[1] + kx
                            ok = 0 <= y < 6 and 0 <= xx < 5
                            vals.append(x[b, c, y, xx] if ok else 0.0)
                            if ok:
                                inside.append(x[b, c, y, xx])
                    if kind == "avgpool":
                        acc = 0.0
                        for v in vals:
                            acc += v
                        assert out[b, c, oy, ox] == acc / len(vals)
                    else:
                        assert out[b, c, oy, ox] == max(inside)


def test_sbspool_weights():
    w = sbspool_weights(LayerSpec("sbspool", 3, 3, (2, 2), (2, 2)))
    assert w.shape == (12, 3)
    np.testing.assert_array_equal(w.sum(axis=0), [1, 1, 1])
    assert w[4:8, 1].tolist() == [0.25] * 4 and w[4:8, 0].tolist() == [0] * 4


# ------------------------------------------------------------------ convergence properties
def test_identity_weights_recover_input_distribution():
    # W = I (S = N = 4): every spike s moves h towards e_s, so h tracks the spike histogram,
    # i.e. the input distribution p.  200 independent patterns, T = 4000.
    p = np.array([0.1, 0.2, 0.3, 0.4])
    net = one_layer(1, 1, 4, 4, (1, 4), 4000)
    x = np.tile(p, (200, 1)).reshape(200, 1, 1, 4)
    h = float_ref.forward(net, {0: np.eye(4)}, x, seed=7)
    np.testing.assert_allclose(h.sum(axis=1), 1.0, atol=1e-12)
    # Each h is a weighted spike histogram with weights eps_t * prod_{u>t} c_u; its effective
    # number of spikes n_eff = 1/sum(weights^2) gives std(h_i) = sqrt(p_i(1-p_i)/n_eff).
    eps, c = float_ref.eps_tables(net.layers[0])
    wts = eps * np.concatenate([np.cumprod(c[::-1])[::-1][1:], [1.0]])
    n_eff = 1.0 / np.sum(wts ** 2)
    sd = np.sqrt(p * (1 - p) / n_eff)
    assert np.all(np.abs(h.mean(axis=0) - p) < 4 * sd / np.sqrt(200))  # mean: 4 sigma of the mean
    assert np.all(np.abs(h.std(axis=0) / sd - 1) < 0.3)                # spread as predicted


def em_fixed_point(w, p, iters=20000):
    h = np.full(w.shape[1], 1.0 / w.shape[1])
    for _ in range(iters):
        h = h * (p @ (w / (w @ h)[:, None]))
    return h


def test_constant_eps_mean_converges_to_nnmf_em_fixed_point():
    # Small constant eps: h performs stochastic EM for the mixture p(s) = sum_i h_i W[s, i];
    # its mean over independent runs approaches the fixed point of
    # h_i <- h_i * sum_s p_s W[s,i] / sum_j h_j W[s,j] (the maximum-likelihood h).
    # Well-conditioned W (each column mostly on its own two inputs, plus random overlap) so that
    # 3000 spikes at eps = 0.01 are many time constants of the mean dynamics.
    g = np.random.default_rng(5)
    w = 0.3 * g.random((6, 3)) + np.repeat(np.eye(3), 2, axis=0)
    w /= w.sum(axis=0)
    h_true = np.array([0.6, 0.3, 0.1])
    p = w @ h_true  # p inside the model family: the fixed point is h_true (away from the boundary)
    h_star = em_fixed_point(w, p)
    np.testing.assert_allclose(h_star, h_true, atol=1e-6)
    assert np.allclose(h_star * (p @ (w / (w @ h_star)[:, None])), h_star, atol=1e-12)
    eps0, runs = 0.01, 400
    net = one_layer(1, 1, 6, 3, (1, 6), 3000, eps0=eps0, eps_schedule="constant")
    h = float_ref.forward(net, {0: w}, np.tile(p, (runs, 1)).reshape(runs, 1, 1, 6), seed=11)
    # Tolerance: run-to-run std of h (measured: 0.02-0.035) / sqrt(runs) is <= 0.002; 4 sigma of
    # the mean plus eps0/2 for the O(eps) bias of a constant-step stochastic approximation
    # (observed deviation: 0.004 at most).
    tol = 4 * h.std(axis=0) / np.sqrt(runs) + eps0 / 2
    assert np.all(np.abs(h.mean(axis=0) - h_star) < tol), (h.mean(axis=0), h_star, tol)
    # and it is not trivially satisfied: the uniform start is far from h_star
    assert np.max(np.abs(h_star - 1 / 3)) > 5 * tol.max()


def test_forward_trace_shapes_and_distributions():
    from sbs_model.network import reference_mnist

    net = reference_mnist(spikes=3)
    g = np.random.default_rng(0)
    weights = {i: g.random(s) for i, s in net.weight_shapes().items()}
    weights = {i: w / w.sum(axis=0) for i, w in weights.items()}
    outs = float_ref.forward_trace(net, weights, g.random((1, 1, 24, 24)) + 1e-20)
    assert [o.shape[1:] for o in outs] == net.shapes()
    for o in outs:
        np.testing.assert_allclose(o.sum(axis=1), 1.0, atol=1e-12)


def test_bad_dtype_and_weights():
    net = one_layer(1, 1, 2, 2, (1, 2), 1)
    with pytest.raises(ValueError, match="dtype"):
        float_ref.forward(net, {0: W2}, U2.reshape(1, 1, 1, 2), dtype="float16")
    with pytest.raises(ValueError, match="layer 0 has shape"):
        float_ref.forward(net, {0: np.ones((3, 2))}, U2.reshape(1, 1, 1, 2))
    with pytest.raises(ValueError, match="missing layer 0"):
        float_ref.forward(net, {}, U2.reshape(1, 1, 1, 2))
