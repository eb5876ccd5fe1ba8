"""Numba CPU kernels of the SbS backward pass (float64), equal bit for bit to
:func:`sbs_model.train.backward.sbs_layer_backward_ref` (same operation order, documented there).

``prange`` over the patterns of the batch: each pattern owns its gradient buffer ``dWb[b]`` and
its rows of ``dx`` (no races, no atomics), scratch vectors are allocated once per pattern, and the
per-pattern buffers are reduced in pattern order at the end, so the result does not depend on the
number of threads.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from sbs_model.network import LayerSpec
from sbs_model.train.backward import RULE_BACKPROP
from sbs_model.train.forward import window_index


@njit(cache=True, parallel=True)
def _sbs_backward_kernel(xf, idx, valid, W, WT, hh, gg, rule, need_dx, dWb, dx):
    """xf (B, C*H*W); idx/valid (IPs, S); W (S, N); WT = W.T contiguous (N, S); hh/gg (B, N, IPs);
    dWb (B, S, N) zeroed (written: per-pattern sums over IPs); dx (B, C*H*W) zeroed (written)."""
    B = xf.shape[0]
    nip, S = idx.shape
    N = W.shape[1]
    for b in prange(B):
        u = np.empty(S)
        p = np.empty(S)
        R = np.empty(S)
        q = np.empty(S)
        e = np.empty(S)
        hv = np.empty(N)
        gv = np.empty(N)
        hg = np.empty(N)
        for ip in range(nip):
            U = 0.0
            for s in range(S):
                v = xf[b, idx[ip, s]] if valid[ip, s] else 0.0
                u[s] = v
                U += v
            for s in range(S):
                p[s] = u[s] / U if U > 0 else 0.0
                R[s] = 0.0
                q[s] = 0.0
            for i in range(N):
                hv[i] = hh[b, i, ip]
                gv[i] = gg[b, i, ip]
                hg[i] = hv[i] * gv[i]
            for i in range(N):
                hi = hv[i]
                hgi = hg[i]
                for s in range(S):
                    R[s] += WT[i, s] * hi
                    q[s] += WT[i, s] * hgi
            for s in range(S):
                e[s] = q[s] / R[s] if R[s] > 0 else 0.0
            if rule == RULE_BACKPROP:
                for s in range(S):
                    if R[s] > 0:
                        coef = p[s] / R[s]
                        es = e[s]
                        for i in range(N):
                            dWb[b, s, i] = dWb[b, s, i] + (coef * hv[i]) * (gv[i] - es)
            else:
                for s in range(S):
                    d = -(p[s] - R[s])
                    for i in range(N):
                        dWb[b, s, i] = dWb[b, s, i] + d * hv[i]
            if need_dx and U > 0:
                m = 0.0
                for s in range(S):
                    m += p[s] * e[s]
                for s in range(S):
                    if valid[ip, s]:
                        dx[b, idx[ip, s]] += (e[s] - m) / U


@njit(cache=True, parallel=True)
def _reduce_patterns(dWb, out):
    """out[s, i] = sum_b dWb[b, s, i] in pattern order (starting from 0.0)."""
    B, S, N = dWb.shape
    for s in prange(S):
        for i in range(N):
            acc = 0.0
            for b in range(B):
                acc = acc + dWb[b, s, i]
            out[s, i] = acc


def sbs_layer_backward_nb(x, h, W, g, layer: LayerSpec, rule: int = RULE_BACKPROP, need_dx: bool = True):
    """Numba twin of :func:`sbs_model.train.backward.sbs_layer_backward_ref` (same signature and
    results)."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    W = np.ascontiguousarray(W, dtype=np.float64)
    B = x.shape[0]
    S, N = W.shape
    idx, valid = window_index(layer, x.shape[2:])
    nip = idx.shape[0]
    hh = np.ascontiguousarray(h, dtype=np.float64).reshape(B, N, nip)
    gg = np.ascontiguousarray(g, dtype=np.float64).reshape(B, N, nip)
    dWb = np.zeros((B, S, N))
    dx = np.zeros((B, x[0].size))
    _sbs_backward_kernel(x.reshape(B, -1), idx, valid, W, np.ascontiguousarray(W.T), hh, gg, np.int64(rule),
                         bool(need_dx), dWb, dx)
    dW = np.empty((S, N))
    _reduce_patterns(dWb, dW)
    return dW, B * nip, (dx.reshape(x.shape) if need_dx else None)
