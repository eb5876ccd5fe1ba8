"""Numba CPU kernel of the training forward pass of one SbS layer (float64).

Same operation order as :func:`sbs_model.train.forward.sbs_layer_ref` (documented in
:mod:`sbs_model.train.forward`), so results are equal bit for bit.  ``prange`` over blocks of
(pattern, IP) jobs; per block scratch buffers (window, cumulative sum, spike indices, h) are
allocated once, never inside the spike loop.  The spike indices of an IP do not depend on h, so
they are drawn first (Threefry + binary search, a loop without a carried dependency), then the
h dynamics run over them.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from fixedpoint.rng import sample_index_float_nb, spike_random_nb
from sbs_model.network import LayerSpec
from sbs_model.train.forward import R_MIN, eps_table, window_index


@njit(cache=True, parallel=True)
def _sbs_forward_kernel(xf, idx, valid, W, seed, patterns, layer_index, eps, coef, out):
    """xf (B, C*H*W) float64; idx/valid (IPs, S); W (S, N); patterns (B,) int64;
    eps/coef (T,); out (B, N, IPs) float64 (written)."""
    B = xf.shape[0]
    nip, S = idx.shape
    N = W.shape[1]
    T = eps.shape[0]
    njobs = B * nip
    nblk = min(njobs, 256)
    for blk in prange(nblk):
        j0 = (blk * njobs) // nblk
        j1 = ((blk + 1) * njobs) // nblk
        cum = np.empty(S)
        sidx = np.empty(T, dtype=np.int64)
        h = np.empty(N)
        for j in range(j0, j1):
            b = j // nip
            ip = j - b * nip
            acc = 0.0
            for s in range(S):
                v = xf[b, idx[ip, s]] if valid[ip, s] else 0.0
                acc += v
                cum[s] = acc
            pat = patterns[b]
            for t in range(T):
                r = spike_random_nb(seed, pat, layer_index, ip, t)
                sidx[t] = sample_index_float_nb(cum, S, r)
            for i in range(N):
                h[i] = 1.0 / N
            for t in range(T):
                s = sidx[t]
                r0 = 0.0
                r1 = 0.0
                r2 = 0.0
                r3 = 0.0
                i = 0
                while i + 3 < N:
                    r0 += h[i] * W[s, i]
                    r1 += h[i + 1] * W[s, i + 1]
                    r2 += h[i + 2] * W[s, i + 2]
                    r3 += h[i + 3] * W[s, i + 3]
                    i += 4
                if i < N:
                    r0 += h[i] * W[s, i]
                if i + 1 < N:
                    r1 += h[i + 1] * W[s, i + 1]
                if i + 2 < N:
                    r2 += h[i + 2] * W[s, i + 2]
                rdot = (r0 + r1) + (r2 + r3)
                if rdot > R_MIN:
                    a = eps[t] / rdot
                    c = coef[t]
                    for k in range(N):
                        h[k] = (h[k] * (1.0 + a * W[s, k])) * c
            for i in range(N):
                out[b, i, ip] = h[i]


def sbs_layer_nb(x, W, layer: LayerSpec, layer_index: int, seed: int, patterns) -> np.ndarray:
    """Converged h (B, N, Ho, Wo) float64 of one SbS layer (numba, parallel); drop-in for
    :func:`sbs_model.train.forward.sbs_layer_ref`."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    W = np.ascontiguousarray(W, dtype=np.float64)
    B = x.shape[0]
    Ho, Wo = layer.output_hw(*x.shape[2:])
    idx, valid = window_index(layer, x.shape[2:])
    eps, coef = eps_table(layer)
    out = np.empty((B, W.shape[1], Ho * Wo))
    _sbs_forward_kernel(x.reshape(B, -1), idx, valid, W, np.int64(seed),
                        np.ascontiguousarray(patterns, dtype=np.int64), np.int64(layer_index), eps, coef, out)
    return out.reshape(B, W.shape[1], Ho, Wo)
