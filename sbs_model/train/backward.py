"""Backward pass through the converged h of an SbS layer: numpy float64 reference.

Per IP (Rotermund & Pawelzik 2019; docs/training.md), with the window ``u`` (length S), ``U = sum_s u_s``
(sequential), ``p_s = u_s / U``, ``R_s = sum_i W[s,i] h_i``, ``z_si = W[s,i] h_i / R_s`` and the
error ``g_i = dL/dh_i`` from above::

    e_s      = dL/dp_s = sum_i z_si g_i = (sum_i W[s,i] h_i g_i) / R_s
    dW[s,i] += (p_s / R_s) * h_i * (g_i - e_s)                 (backprop rule)
    dW[s,i] += -(p_s - R_s) * h_i                              (local reconstruction rule)
    dL/du_k  = (e_k - sum_s p_s e_s) / U                       (Jacobian of p = u / U)

These are the exact derivatives of the deterministic one-step EM (NNMF) map
``F(u, W)_i = h_i * sum_s p_s(u) W[s,i] / R_s`` with the converged h held fixed (the map whose
fixed point the spike dynamics approaches); ``tests/test_train_backward.py`` checks them by
finite differences.  The spec writes the error sent down as ``dL/du_s = sum_i z_si g_i``, which is
the derivative w.r.t. ``p``; we add the normalisation's Jacobian (subtract the p-weighted mean,
divide by U).  Adding a constant to ``g`` over one IP changes neither dW nor dL/du, so the
difference to the spec's form is a per-layer scale (U is 25 for layer 2 and 9 for layer 4 of the
reference network, where the inputs are pooled h) that Adam largely removes.

Exact operation order (shared with :mod:`backward_nb` and :mod:`cuda`): ``U``, ``R_s`` and
``q_s = sum_i W[s,i]*(h_i*g_i)`` sequential over their index; ``R_s <= 0`` gives ``e_s = 0`` and
no dW contribution; per pattern ``dWb`` accumulates over IPs in IP order, the batch sum is
``sum_b dWb`` in pattern order; ``m = sum_s p_s*e_s`` sequential; the error of overlapping
windows is added in (IP, s) order.

Units: dW is a sum over IPs (divide by the returned count for the average), dx has the units of
the loss per unit input intensity.
"""
from __future__ import annotations

import numpy as np

from sbs_model.network import LayerSpec
from sbs_model.train.forward import window_index

RULE_BACKPROP = 0
RULE_LOCAL = 1


def sbs_layer_backward_ref(x, h, W, g, layer: LayerSpec, rule: int = RULE_BACKPROP, need_dx: bool = True):
    """``x`` (B, C, H, W) layer input, ``h`` (B, N, Ho, Wo) converged output, ``W`` (S, N),
    ``g`` (B, N, Ho, Wo) = dL/dh.  Returns ``(dW_sum (S, N), count, dx (B, C, H, W) or None)``
    with ``count = B * Ho * Wo`` the number of contributing IPs."""
    x = np.asarray(x, dtype=np.float64)
    W = np.asarray(W, dtype=np.float64)
    B = x.shape[0]
    S, N = W.shape
    idx, valid = window_index(layer, x.shape[2:])
    nip = idx.shape[0]
    xf = x.reshape(B, -1)
    hh = np.asarray(h, dtype=np.float64).reshape(B, N, nip)
    gg = np.asarray(g, dtype=np.float64).reshape(B, N, nip)
    dW = np.zeros((S, N))
    dx = np.zeros_like(xf) if need_dx else None
    for b in range(B):
        dWb = np.zeros((S, N))
        for ip in range(nip):
            u = np.where(valid[ip], xf[b, idx[ip]], 0.0)
            U = np.cumsum(u)[-1]
            p = u / U if U > 0 else np.zeros(S)
            hv = hh[b, :, ip]
            gv = gg[b, :, ip]
            hg = hv * gv
            R = np.zeros(S)
            q = np.zeros(S)
            for i in range(N):
                R = R + W[:, i] * hv[i]
                q = q + W[:, i] * hg[i]
            ok = R > 0
            Rs = np.where(ok, R, 1.0)
            e = np.where(ok, q / Rs, 0.0)
            if rule == RULE_BACKPROP:
                coef = np.where(ok, p / Rs, 0.0)
                dWb = dWb + (coef[:, None] * hv[None, :]) * (gv[None, :] - e[:, None])
            else:
                dWb = dWb + (-(p - R))[:, None] * hv[None, :]
            if need_dx and U > 0:
                m = np.cumsum(p * e)[-1]
                du = (e - m) / U
                for s in range(S):
                    if valid[ip, s]:
                        dx[b, idx[ip, s]] += du[s]
        dW = dW + dWb
    return dW, B * nip, (dx.reshape(x.shape) if need_dx else None)


def em_map(u, W, h):
    """The deterministic one-step EM map ``F_i = h_i * sum_s p_s W[s,i] / R_s`` for one IP
    (``u`` (S,), ``W`` (S, N), ``h`` (N,)), float64; used by the finite-difference tests."""
    p = u / u.sum()
    R = W @ h
    return h * ((p / R) @ W)
