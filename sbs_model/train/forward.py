"""Training forward pass: float64, keeping every layer's input and converged h for the backward.

The definitions are the inference model's (:mod:`sbs_model.float_ref`, :mod:`sbs_model.unfold`):
the eps / c_t schedule (:func:`sbs_model.float_ref.eps_tables`; an unknown schedule is an error
here too), the receptive fields (:func:`sbs_model.unfold.unfold_index`: PyTorch unfold order, zero
padding), pooling (:func:`sbs_model.unfold.pool`), the layer weights and fixed ``sbspool`` weights
(:func:`sbs_model.float_ref.layer_weights`) and ``R_MIN``.  This module adds only what backprop
needs: the per-IP gather table with a validity mask (:func:`window_index`, used by the backward
kernels), the backward of pooling, and the forward that keeps every layer's input and output.

Deliberate differences from the inference model (tested in ``tests/test_train_forward.py``):

* **Operation order of one spike.**  Training's SbS kernels (this numpy reference,
  :mod:`sbs_model.train.forward_nb`, :mod:`sbs_model.train.cuda`, equal bit for bit among
  themselves) use a 4-lane dot product, ``r = (r0 + r1) + (r2 + r3)`` where lane ``k``
  accumulates ``h[i]*W[s,i]`` for ``i = k, k+4, ...`` sequentially, and the update
  ``h[i] <- (h[i] * (1 + a*W[s,i])) * c_t`` with ``a = eps_t / r``; inference uses 8 lanes and the
  hardware form ``c_t*h + (c_t*eps_t/r)*p`` (:mod:`sbs_model.float_ref`).  Both are the spec's
  ``(h + eps*h*W/r)/(1+eps)``; the spikes are the same (the sampler reads the input window, not
  h), the h values agree to rounding.
* **float64 between layers.**  Training keeps every activation in float64, so the ``cpu-golden32``
  device (:func:`make_golden_forward`: the inference kernels as the SbS layer) pools in float64
  and rounds to float32 at the next SbS layer, where inference pools in float32 (a pooled value
  can differ by one unit in the last place of float32).
* The forgetting offset is not trained (:func:`eps_table` refuses a layer with one).

Spikes: ``r = spike_random(seed, pattern, layer, ip, t)`` and the float sampler (first ``s`` with
``cum[s] >= (r/2**32)*cum[-1]``), as in inference.  Units: ``h`` are probabilities (each IP sums to
1); inputs are non-negative intensities (pixels/255 + 1e-20).  ``patterns`` are the uint32 pattern
keys of the spike RNG, one per image of the batch (training uses ``epoch * len(train) + index``).
"""
from __future__ import annotations

import functools

import numpy as np

from fixedpoint.rng import sample_index_float, spike_random
from sbs_model import kernels_cpu
from sbs_model.float_ref import R_MIN, eps_tables
from sbs_model.float_ref import layer_weights as float_layer_weights
from sbs_model.network import LayerSpec, NetworkSpec, require_no_forgetting_offset
from sbs_model.unfold import pool, unfold, unfold_index

LANES = 4      # independent partial sums of the training forward dot product

__all__ = ["R_MIN", "LANES", "eps_table", "window_index", "unfold", "sbs_layer_ref", "pool_forward",
           "pool_backward", "layer_weights", "network_forward", "make_golden_forward"]


def eps_table(layer: LayerSpec) -> tuple[np.ndarray, np.ndarray]:
    """``(eps_t, c_t)`` float64 arrays of length T for one SbS layer: the inference tables
    (:func:`sbs_model.float_ref.eps_tables`) of a layer without a forgetting offset."""
    require_no_forgetting_offset(layer, "of the network", "the training forward pass")
    return eps_tables(layer, np.float64)


def window_index(layer: LayerSpec, in_hw) -> tuple[np.ndarray, np.ndarray]:
    """Gather table of the receptive fields (:func:`sbs_model.unfold.unfold_index`): ``idx`` int64
    (IPs, S) into the flattened input ``(C*H*W)`` (0 in the padding, so it can always be read) and
    ``valid`` bool (IPs, S), False for zero padding (cached, read-only)."""
    return _window_index(layer, int(in_hw[0]), int(in_hw[1]))


@functools.lru_cache(maxsize=64)
def _window_index(layer: LayerSpec, H: int, Wd: int):
    flat = unfold_index((layer.in_channels, H, Wd), layer)
    valid = flat >= 0
    idx = np.where(valid, flat, 0)
    idx.flags.writeable = False
    valid.flags.writeable = False
    return idx, valid


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
    """Average or max pooling of h (B, C, H, W) -> (B, C, Ho, Wo): :func:`sbs_model.unfold.pool` in
    float64."""
    return pool(np.asarray(x, dtype=np.float64), layer)


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
    """float64 (S, N) weights of SbS layer ``i`` (fixed pooling weights for ``sbspool``):
    :func:`sbs_model.float_ref.layer_weights`."""
    return float_layer_weights(net, weights, i, np.float64)


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


def make_golden_forward(dtype: str = "float32"):
    """The inference kernels (:func:`sbs_model.kernels_cpu.run_sbs_layer`, the ``sbs eval``
    forward) as the training forward of one SbS layer (device ``cpu-golden32``): the network is
    trained with exactly the spike dynamics ``sbs eval`` uses.  Their kernel keys spike trains by
    ``first_pattern + b``, so the batch's pattern keys must be consecutive (checked); h comes back
    as float64 for the backward."""
    dt = {"float32": np.float32, "float64": np.float64}[dtype]

    def sbs_layer_golden(x, W, layer: LayerSpec, layer_index: int, seed: int, patterns) -> np.ndarray:
        patterns = np.asarray(patterns, dtype=np.int64)
        if patterns.size and not np.array_equal(patterns, patterns[0] + np.arange(patterns.size)):
            raise ValueError("patterns: the golden kernels need consecutive pattern keys")
        out = kernels_cpu.run_sbs_layer(np.ascontiguousarray(x, dtype=dt), layer, np.ascontiguousarray(W, dtype=dt),
                                        layer_index, seed, int(patterns[0]) if patterns.size else 0)
        return out.astype(np.float64)

    return sbs_layer_golden
