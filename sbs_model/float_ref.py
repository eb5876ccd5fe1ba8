"""Float reference model of SbS inference (plain numpy; clear and slow; the definition the fast
kernels in :mod:`sbs_model.kernels_cpu` reproduce bit for bit).

Semantics: ``docs/algorithm.md`` (layer-by-layer schedule).
Every arithmetic operation below is done in ``dtype`` (float64, or float32 for the fast mode);
the **exact operation order** is part of the definition:

Per SbS layer ``L`` (its position in ``net.layers``), per pattern ``b`` (global index
``pattern = first_pattern + b``) and IP ``ip = oy*W_out + ox`` (independently):

1. ``u[s]`` = the receptive field (PyTorch unfold order, zero padding), ``S`` values.
2. ``cum[0] = u[0]``, ``cum[s] = cum[s-1] + u[s]`` (sequential, in ``dtype``).
3. ``h[i] = dtype(1/N)`` (1/N rounded once from float64).
4. Tables (computed in float64, then rounded to ``dtype``): ``eps_t = eps0/sqrt(t+1)``
   (``inv_sqrt``) or ``eps0`` (``constant``), divided by 25 for ``t >= cooldown_after``;
   ``c_t = 1/(1+eps_t*(1+fo))`` and ``o_t = c_t*eps_t*fo/N`` with ``fo`` the layer's
   ``forgetting_offset`` (0: ``c_t = 1/(1+eps_t)``, no offset).
5. For ``t = 0 .. T-1``:

   * ``r32 = spike_random(seed, pattern, L, ip, t)``; spike ``s`` = first ``s`` with
     ``cum[s] >= (float64(r32) * 2**-32) * float64(cum[S-1])`` (compared in float64; ``S-1`` if
     none), i.e. :func:`fixedpoint.rng.sample_index_float`.
   * ``p[i] = h[i] * W[s, i]``.
   * ``r``: eight partial sums ``a[k] = (((0 + p[k]) + p[k+8]) + p[k+16]) + ...`` (lane ``k = i mod 8``,
     in increasing ``i``), then ``r = ((a0+a4) + (a2+a6)) + ((a1+a5) + (a3+a7))``.  (An
     8-lane layout so that the kernels can use SIMD without reassociating anything.)
   * if ``r > dtype(1e-10)``: ``g = c_t * (eps_t / r)`` and ``h[i] = c_t*h[i] + g*p[i]`` for all
     ``i`` (the hardware form of spec section 3; no fused multiply-add), then ``h[i] = h[i] + o_t``
     when ``fo > 0`` (pytorch-sbs's forgetting offset); else nothing.

6. The IP's final ``h`` is ``out[b, :, oy, ox]``.

Pooling layers: :func:`sbs_model.unfold.pool`.  ``sbspool`` layers: SbS layers with the fixed
weights of :func:`sbs_model.unfold.sbspool_weights`.  The class is ``argmax`` of the last ``h``.

This module vectorises over (pattern, IP) with numpy (element-wise operations are exact IEEE
operations, so vectorising does not change any value) and loops over the spikes.
"""
from __future__ import annotations

import numpy as np

from fixedpoint.rng import spike_random
from sbs_model.network import LayerSpec, NetworkSpec
from sbs_model.unfold import pool, sbspool_weights, unfold

LANES = 8
R_MIN = 1e-10
DTYPES = {"float32": np.float32, "float64": np.float64}


def resolve_dtype(dtype) -> type:
    """``'float32'``/``'float64'`` (or the numpy types) -> numpy scalar type."""
    key = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    if key not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return DTYPES[key]


def eps_tables(layer: LayerSpec, dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    """``(eps_t, c_t)`` for ``t = 0..T-1`` as ``dtype`` arrays (computed in float64, rounded once);
    ``c_t = 1/(1 + eps_t*(1 + fo))`` (fo = the layer's forgetting offset, usually 0)."""
    t = np.arange(layer.spikes, dtype=np.float64)
    if layer.eps_schedule == "inv_sqrt":
        eps = layer.eps0 / np.sqrt(t + 1.0)
    elif layer.eps_schedule == "constant":
        eps = np.full(layer.spikes, float(layer.eps0))
    else:
        raise ValueError(f"eps_schedule must be 'inv_sqrt' or 'constant', got {layer.eps_schedule!r}")
    if layer.cooldown_after is not None:
        eps[layer.cooldown_after:] = eps[layer.cooldown_after:] / 25.0
    c = 1.0 / (1.0 + eps * (1.0 + float(layer.forgetting_offset)))
    return eps.astype(dtype), c.astype(dtype)


def offset_table(layer: LayerSpec, dtype=np.float64) -> np.ndarray:
    """``o_t = c_t*eps_t*fo/N`` (float64, rounded once to ``dtype``): what the forgetting offset adds
    to every h element after an accepted spike; all zeros when the layer has none."""
    fo = float(layer.forgetting_offset)
    eps, c = eps_tables(layer, np.float64)
    return (c * eps * fo / layer.out_channels).astype(dtype)


def lane_sum(p: np.ndarray) -> np.ndarray:
    """Sum over the last axis in the 8-lane order of the module docstring (same dtype)."""
    n = p.shape[-1]
    acc = np.zeros(p.shape[:-1] + (LANES,), dtype=p.dtype)
    for j in range(0, n, LANES):
        seg = p[..., j:j + LANES]
        acc[..., :seg.shape[-1]] = acc[..., :seg.shape[-1]] + seg
    b = acc[..., 0:4] + acc[..., 4:8]
    c = b[..., 0:2] + b[..., 2:4]
    return c[..., 0] + c[..., 1]


def sample_spikes(cum: np.ndarray, r32: np.ndarray) -> np.ndarray:
    """Float sampler for many windows at once: ``cum`` ``(J, S)`` non-decreasing, ``r32`` ``(J,)``
    -> first ``s`` with ``cum[j, s] >= (r32/2**32) * cum[j, -1]`` (float64 compare), else ``S-1``."""
    target = (r32.astype(np.float64) * (1.0 / 4294967296.0)) * cum[:, -1].astype(np.float64)
    return np.sum(cum[:, :-1].astype(np.float64) < target[:, None], axis=1)


def sbs_ips(windows: np.ndarray, w: np.ndarray, layer: LayerSpec, layer_index: int, seed: int,
            patterns: np.ndarray, ips: np.ndarray) -> np.ndarray:
    """Run the h dynamics of independent IPs.

    ``windows`` ``(J, S)`` receptive fields, ``w`` ``(S, N)`` weights, both in the working dtype;
    ``patterns``/``ips`` ``(J,)`` the RNG keys of each job.  Returns the final ``h`` ``(J, N)``."""
    dt = windows.dtype.type
    n_jobs, s_len = windows.shape
    n = w.shape[1]
    eps, c = eps_tables(layer, dt)
    off = offset_table(layer, dt)
    thr = dt(R_MIN)
    cum = np.cumsum(windows, axis=1, dtype=dt)  # np.add.accumulate: sequential
    h = np.full((n_jobs, n), dt(1.0 / n), dtype=dt)
    for t in range(layer.spikes):
        r32 = spike_random(seed, patterns, layer_index, ips, t)
        s = sample_spikes(cum, r32)
        p = h * w[s]
        r = lane_sum(p)
        ok = r > thr
        rs = np.where(ok, r, dt(1))
        g = c[t] * (eps[t] / rs)
        new = c[t] * h + g[:, None] * p
        if layer.forgetting_offset:
            new = new + off[t]
        h = np.where(ok[:, None], new, h)
    return h


def layer_weights(net: NetworkSpec, weights: dict, index: int, dtype) -> np.ndarray:
    """Weights of SbS layer ``index`` as ``dtype`` ``(S, N)`` (fixed pooling weights for sbspool)."""
    layer = net.layers[index]
    if layer.kind == "sbspool":
        return sbspool_weights(layer, dtype)
    if index not in weights:
        raise ValueError(f"weights: missing layer {index}")
    w = np.asarray(weights[index])
    exp = (layer.window, layer.out_channels)
    if w.shape != exp:
        raise ValueError(f"weights: layer {index} has shape {w.shape}, expected {exp}")
    return np.ascontiguousarray(w.astype(dtype))


def forward_trace(net: NetworkSpec, weights: dict, x: np.ndarray, seed: int = 0, first_pattern: int = 0,
                  dtype="float64") -> list[np.ndarray]:
    """All layers' outputs for images ``x`` ``(n, C, H, W)``: list of ``(n, N, H_out, W_out)``."""
    dt = resolve_dtype(dtype)
    x = np.asarray(x).astype(dt)
    n = x.shape[0]
    outs = []
    for li, layer in enumerate(net.layers):
        if layer.is_sbs:
            w = layer_weights(net, weights, li, dt)
            win = unfold(x, layer)  # (n, n_ip, S)
            n_ip = win.shape[1]
            pats = np.repeat(np.arange(n, dtype=np.int64) + first_pattern, n_ip)
            ips = np.tile(np.arange(n_ip, dtype=np.int64), n)
            h = sbs_ips(win.reshape(n * n_ip, -1), w, layer, li, seed, pats, ips)
            ho, wo = layer.output_hw(x.shape[2], x.shape[3])
            x = np.ascontiguousarray(h.reshape(n, ho, wo, -1).transpose(0, 3, 1, 2))
        else:
            x = pool(x, layer)
        outs.append(x)
    return outs


def forward(net: NetworkSpec, weights: dict, x: np.ndarray, seed: int = 0, first_pattern: int = 0,
            dtype="float64") -> np.ndarray:
    """Final ``h`` ``(n, N_out)`` of the reference model."""
    out = forward_trace(net, weights, x, seed, first_pattern, dtype)[-1]
    return out.reshape(out.shape[0], -1)


def predict(net, weights, x, seed=0, first_pattern=0, dtype="float64") -> np.ndarray:
    """Classes (argmax of the final h, first maximum on ties), int64 ``(n,)``."""
    return np.argmax(forward(net, weights, x, seed, first_pattern, dtype), axis=1)
