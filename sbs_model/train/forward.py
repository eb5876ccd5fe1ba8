"""Training forward pass: numpy float64 reference that keeps every layer's input and converged h.

Semantics are those of sbs-algorithm.md sections 2-4 (layer-by-layer schedule).  The exact
floating-point operation order, shared by :mod:`sbs_model.train.forward_nb` and
:mod:`sbs_model.train.cuda` (so that they agree bit for bit, float64):

* window ``u`` of an IP in PyTorch ``unfold`` order (zero padding), ``cum = cumsum(u)``
  (sequential), spike ``t`` uses ``r = spike_random(seed, pattern, layer, ip, t)`` and the float
  sampler (first ``s`` with ``cum[s] >= (r/2**32)*cum[-1]``);
* ``eps_t`` from :func:`eps_table` (``eps0/sqrt(t+1)`` or constant, divided by 25 from
  ``cooldown_after`` on) and ``c_t = 1/(1+eps_t)``;
* dot product ``r = (r0 + r1) + (r2 + r3)`` where lane ``k`` accumulates ``h[i]*W[s,i]`` for
  ``i = k, k+4, ...`` sequentially (four independent chains: the CPU can pipeline them);
* if ``r > 1e-10``: ``a = eps_t / r`` and ``h[i] <- (h[i] * (1 + a*W[s,i])) * c_t`` for all i
  (algebraically the spec's ``(h + eps*h*W/r)/(1+eps)``).

Pooling (``avgpool``: sum over the window in (ky, kx) order, then divided by kh*kw, zero padding
counted; ``maxpool``: first maximum) is plain numpy shared by every backend.

Units: ``h`` are probabilities (dimensionless, each IP sums to 1); inputs are non-negative
intensities (pixels/255 + 1e-20).  ``patterns`` are the uint32 pattern keys of the spike RNG, one
per image of the batch (training uses ``epoch * len(train) + index``).
"""
from __future__ import annotations

import functools

import numpy as np

from fixedpoint.rng import sample_index_float, spike_random
from sbs_model.network import LayerSpec, NetworkSpec, require_no_forgetting_offset

R_MIN = 1e-10  # spikes with r <= R_MIN are ignored (spec section 3)
LANES = 4      # independent partial sums of the forward dot product


def eps_table(layer: LayerSpec) -> tuple[np.ndarray, np.ndarray]:
    """``(eps_t, c_t)`` float64 arrays of length T for one SbS layer (without a forgetting offset)."""
    require_no_forgetting_offset(layer, "of the network", "the training forward pass")
    t = np.arange(layer.spikes, dtype=np.float64)
    if layer.eps_schedule == "inv_sqrt":
        eps = layer.eps0 / np.sqrt(t + 1.0)
    else:
        eps = np.full(layer.spikes, float(layer.eps0))
    if layer.cooldown_after is not None:
        eps = np.where(np.arange(layer.spikes) >= layer.cooldown_after, eps / 25.0, eps)
    return eps, 1.0 / (1.0 + eps)


def sbspool_weights(layer: LayerSpec) -> np.ndarray:
    """Fixed weights of an ``sbspool`` layer: ``W[(c,ky,kx), i] = 1/(kh*kw)`` if c == i (float64)."""
    kk = layer.kernel[0] * layer.kernel[1]
    W = np.zeros((layer.window, layer.out_channels))
    for c in range(layer.in_channels):
        W[c * kk:(c + 1) * kk, c] = 1.0 / kk
    return W


def window_index(layer: LayerSpec, in_hw) -> tuple[np.ndarray, np.ndarray]:
    """Gather table of the receptive fields: ``idx`` int64 (IPs, S) into the flattened input
    ``(C*H*W)``, and ``valid`` bool (IPs, S), False for zero padding (cached, read-only)."""
    return _window_index(layer, int(in_hw[0]), int(in_hw[1]))


@functools.lru_cache(maxsize=64)
def _window_index(layer: LayerSpec, H: int, Wd: int):
    Ho, Wo = layer.output_hw(H, Wd)
    kh, kw = layer.kernel
    c = np.arange(layer.in_channels)[:, None, None]
    ky = np.arange(kh)[None, :, None]
    kx = np.arange(kw)[None, None, :]
    idx = np.zeros((Ho * Wo, layer.window), dtype=np.int64)
    valid = np.zeros((Ho * Wo, layer.window), dtype=bool)
    for oy in range(Ho):
        for ox in range(Wo):
            y = oy * layer.stride[0] - layer.padding[0] + ky * layer.dilation[0]
            x = ox * layer.stride[1] - layer.padding[1] + kx * layer.dilation[1]
            ok = (y >= 0) & (y < H) & (x >= 0) & (x < Wd)
            flat = c * H * Wd + np.clip(y, 0, H - 1) * Wd + np.clip(x, 0, Wd - 1)
            ok = np.broadcast_to(ok, flat.shape)
            idx[oy * Wo + ox] = flat.reshape(-1)
            valid[oy * Wo + ox] = ok.reshape(-1)
    idx.flags.writeable = False
    valid.flags.writeable = False
    return idx, valid


def unfold(x: np.ndarray, layer: LayerSpec) -> np.ndarray:
    """``x`` (B, C, H, W) -> windows (B, IPs, S) in PyTorch unfold order, zero padding."""
    B = x.shape[0]
    idx, valid = window_index(layer, x.shape[2:])
    flat = x.reshape(B, -1)
    return np.where(valid[None], flat[:, idx], 0.0)


def sbs_layer_ref(x, W, layer: LayerSpec, layer_index: int, seed: int, patterns) -> np.ndarray:
    """Converged h (B, N, Ho, Wo) float64 of one SbS layer: plain numpy, one IP at a time."""
    x = np.asarray(x, dtype=np.float64)
    W = np.asarray(W, dtype=np.float64)
    B = x.shape[0]
    Ho, Wo = layer.output_hw(*x.shape[2:])
    S, N = W.shape
    T = layer.spikes
    eps, coef = eps_table(layer)
    win = unfold(x, layer)
    out = np.zeros((B, N, Ho * Wo))
    lanes = np.arange(N) % LANES
    for b in range(B):
        for ip in range(Ho * Wo):
            cum = np.cumsum(win[b, ip])
            r = spike_random(seed, int(patterns[b]), layer_index, ip, np.arange(T, dtype=np.uint64))
            sidx = sample_index_float(cum, r)
            h = np.full(N, 1.0 / N)
            for t in range(T):
                s = sidx[t]
                prod = h * W[s]
                part = [np.cumsum(prod[lanes == k])[-1] if np.any(lanes == k) else 0.0 for k in range(LANES)]
                rdot = (part[0] + part[1]) + (part[2] + part[3])
                if rdot > R_MIN:
                    a = eps[t] / rdot
                    h = (h * (1.0 + a * W[s])) * coef[t]
            out[b, :, ip] = h
    return out.reshape(B, N, Ho, Wo)


def pool_forward(x: np.ndarray, layer: LayerSpec) -> np.ndarray:
    """Average or max pooling of h (B, C, H, W) -> (B, C, Ho, Wo), float64."""
    B, C, H, Wd = x.shape
    Ho, Wo = layer.output_hw(H, Wd)
    kh, kw = layer.kernel
    idx, valid = window_index(LayerSpec("sbs", 1, 1, layer.kernel, layer.stride, layer.dilation,
                                        layer.padding), (H, Wd))
    planes = x.reshape(B * C, H * Wd)
    win = np.where(valid[None], planes[:, idx], 0.0)  # (B*C, IPs, kh*kw)
    if layer.kind == "avgpool":
        acc = win[..., 0].copy()
        for k in range(1, kh * kw):
            acc = acc + win[..., k]
        out = acc / float(kh * kw)
    elif layer.kind == "maxpool":
        out = win.max(axis=-1)
    else:
        raise ValueError(f"pool_forward: layer kind must be avgpool or maxpool, got {layer.kind!r}")
    return out.reshape(B, C, Ho, Wo)


def pool_backward(x: np.ndarray, g: np.ndarray, layer: LayerSpec) -> np.ndarray:
    """Error w.r.t. the pooling input (B, C, H, W) from the error ``g`` (B, C, Ho, Wo) on its
    output: average pooling spreads ``g/(kh*kw)`` over the window (overlaps add, in window
    position then IP order), max pooling routes ``g`` to the first maximum."""
    B, C, H, Wd = x.shape
    kh, kw = layer.kernel
    idx, valid = window_index(LayerSpec("sbs", 1, 1, layer.kernel, layer.stride, layer.dilation,
                                        layer.padding), (H, Wd))
    nip = idx.shape[0]
    gp = g.reshape(B * C, nip)
    dx = np.zeros((B * C, H * Wd))
    if layer.kind == "avgpool":
        share = gp / float(kh * kw)
        for k in range(kh * kw):  # for a fixed window position the targets of all IPs differ
            ok = valid[:, k]
            dx[:, idx[ok, k]] += share[:, ok]
    elif layer.kind == "maxpool":
        planes = x.reshape(B * C, H * Wd)
        win = np.where(valid[None], planes[:, idx], -np.inf)
        arg = win.argmax(axis=-1)  # (B*C, IPs): first maximum
        rows = np.arange(B * C)
        for ip in range(nip):
            np.add.at(dx, (rows, idx[ip, arg[:, ip]]), gp[:, ip])
    else:
        raise ValueError(f"pool_backward: layer kind must be avgpool or maxpool, got {layer.kind!r}")
    return dx.reshape(B, C, H, Wd)


def layer_weights(net: NetworkSpec, weights: dict, i: int) -> np.ndarray:
    """float64 (S, N) weights of SbS layer ``i`` (fixed pooling weights for ``sbspool``)."""
    layer = net.layers[i]
    if layer.kind == "sbspool":
        return sbspool_weights(layer)
    return np.asarray(weights[i], dtype=np.float64)


def network_forward(net: NetworkSpec, weights: dict, x, seed: int, patterns, sbs_layer=None):
    """Run the whole network; returns ``(inputs, outputs)``: per layer its input tensor and its
    output h (float64, (B, C, H, W)).  ``sbs_layer(x, W, layer, index, seed, patterns)`` computes
    one SbS layer (default: the numpy reference)."""
    fn = sbs_layer or sbs_layer_ref
    x = np.asarray(x, dtype=np.float64)
    patterns = np.asarray(patterns, dtype=np.int64)
    if patterns.shape != (x.shape[0],):
        raise ValueError(f"patterns: expected shape ({x.shape[0]},), got {patterns.shape}")
    inputs, outputs = [], []
    for i, layer in enumerate(net.layers):
        inputs.append(x)
        if layer.is_sbs:
            x = fn(x, layer_weights(net, weights, i), layer, i, seed, patterns)
        else:
            x = pool_forward(x, layer)
        outputs.append(x)
    return inputs, outputs
