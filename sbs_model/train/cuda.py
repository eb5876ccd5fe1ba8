"""The training forward and backward of one SbS layer on CUDA (``numba.cuda``), float64.

Same operation order as the CPU kernels (:mod:`forward_nb`, :mod:`backward_nb`; documented in
:mod:`forward` and :mod:`backward`), so results are equal bit for bit: every multiplication goes
through ``__dmul_rn`` (``libdevice.dmul_rn``), which NVVM never contracts into a fused
multiply-add, divisions are IEEE (no fastmath), integer Threefry is exact.  Without a GPU the
kernels run under numba's simulator (``NUMBA_ENABLE_CUDASIM=1``, set by ``tests/conftest.py``),
where the tests check equality with the CPU kernels; there is no GPU on the development machine,
so the equality on real hardware is by construction, not measured.

Parallel layout: forward, one thread per (pattern, IP) job with its scratch rows in global
memory; backward, one thread per pattern (IPs in order, like the CPU kernel, so the float sums
happen in the same order), then one thread per weight summing the patterns in order.
Host arrays are copied in and out per call (simple, not tuned for speed).
"""
from __future__ import annotations

import numpy as np
from numba import cuda

from fixedpoint.rng import KS_PARITY, MASK32, ROTATIONS, ROUNDS
from sbs_model.network import LayerSpec
from sbs_model.train.backward import RULE_BACKPROP
from sbs_model.train.forward import R_MIN, eps_table, window_index

from numba.core import config as _config  # noqa: E402

SIMULATOR = bool(_config.ENABLE_CUDASIM)
THREADS = 64


def require():
    """ValueError unless a CUDA GPU is usable or the simulator is enabled."""
    if SIMULATOR:
        return
    if not cuda.is_available():
        raise ValueError("device: 'cuda' needs an NVIDIA GPU with a working driver and numba.cuda "
                         "(cuda.is_available() is False here); use --device cpu, or set "
                         "NUMBA_ENABLE_CUDASIM=1 to run the (very slow) CUDA simulator")


if SIMULATOR:
    @cuda.jit(device=True)
    def _mul(a, b):
        return a * b
else:  # pragma: no cover - needs a GPU
    from numba.cuda import libdevice

    @cuda.jit(device=True)
    def _mul(a, b):
        return libdevice.dmul_rn(a, b)


@cuda.jit(device=True)
def _threefry_word0(c0, c1, key0, key1):
    """First output word of Threefry-2x32-20 (same as fixedpoint.rng.threefry2x32_nb)."""
    m = np.uint64(MASK32)
    k0 = np.uint64(key0) & m
    k1 = np.uint64(key1) & m
    k2 = np.uint64(KS_PARITY) ^ k0 ^ k1
    x0 = (np.uint64(c0) + k0) & m
    x1 = (np.uint64(c1) + k1) & m
    for r in range(ROUNDS):
        x0 = (x0 + x1) & m
        rot = np.uint64(ROTATIONS[r % 8])
        x1 = (((x1 << rot) | (x1 >> (np.uint64(32) - rot))) & m) ^ x0
        if r % 4 == 3:
            s = (r + 1) // 4
            a = s % 3
            b = (s + 1) % 3
            ka = k0 if a == 0 else (k1 if a == 1 else k2)
            kb = k0 if b == 0 else (k1 if b == 1 else k2)
            x0 = (x0 + ka) & m
            x1 = (x1 + kb + np.uint64(s)) & m
    return x0


@cuda.jit
def _fwd_kernel(xf, idx, valid, W, seed, patterns, layer_index, eps, coef, out, cum, h):
    j = cuda.grid(1)
    nip = idx.shape[0]
    S = idx.shape[1]
    N = W.shape[1]
    T = eps.shape[0]
    if j >= xf.shape[0] * nip:
        return
    b = j // nip
    ip = j - b * nip
    acc = 0.0
    for s in range(S):
        v = 0.0
        if valid[ip, s]:
            v = xf[b, idx[ip, s]]
        acc += v
        cum[j, s] = acc
    c0 = (np.uint64(layer_index) << np.uint64(24)) | np.uint64(ip)
    for i in range(N):
        h[j, i] = 1.0 / N
    for t in range(T):
        r = _threefry_word0(c0, np.uint64(t), np.uint64(seed), np.uint64(patterns[b]))
        target = _mul(_mul(np.float64(r), 1.0 / 4294967296.0), cum[j, S - 1])
        lo = 0
        hi = S - 1
        while lo < hi:
            mid = (lo + hi) >> 1
            if cum[j, mid] >= target:
                hi = mid
            else:
                lo = mid + 1
        s = lo
        r0 = 0.0
        r1 = 0.0
        r2 = 0.0
        r3 = 0.0
        i = 0
        while i + 3 < N:
            r0 += _mul(h[j, i], W[s, i])
            r1 += _mul(h[j, i + 1], W[s, i + 1])
            r2 += _mul(h[j, i + 2], W[s, i + 2])
            r3 += _mul(h[j, i + 3], W[s, i + 3])
            i += 4
        if i < N:
            r0 += _mul(h[j, i], W[s, i])
        if i + 1 < N:
            r1 += _mul(h[j, i + 1], W[s, i + 1])
        if i + 2 < N:
            r2 += _mul(h[j, i + 2], W[s, i + 2])
        rdot = (r0 + r1) + (r2 + r3)
        if rdot > R_MIN:
            a = eps[t] / rdot
            c = coef[t]
            for k in range(N):
                h[j, k] = _mul(_mul(h[j, k], 1.0 + _mul(a, W[s, k])), c)
    for i in range(N):
        out[b, i, ip] = h[j, i]


def _launch(n):
    return (max(1, (n + THREADS - 1) // THREADS), THREADS)


def sbs_layer_cuda(x, W, layer: LayerSpec, layer_index: int, seed: int, patterns) -> np.ndarray:
    """CUDA twin of :func:`sbs_model.train.forward_nb.sbs_layer_nb` (same results)."""
    require()
    x = np.ascontiguousarray(x, dtype=np.float64)
    W = np.ascontiguousarray(W, dtype=np.float64)
    B = x.shape[0]
    S, N = W.shape
    Ho, Wo = layer.output_hw(*x.shape[2:])
    idx, valid = window_index(layer, x.shape[2:])
    eps, coef = eps_table(layer)
    nip = Ho * Wo
    out = cuda.device_array((B, N, nip), dtype=np.float64)
    cum = cuda.device_array((B * nip, S), dtype=np.float64)
    h = cuda.device_array((B * nip, N), dtype=np.float64)
    grid, block = _launch(B * nip)
    _fwd_kernel[grid, block](cuda.to_device(x.reshape(B, -1)), cuda.to_device(np.ascontiguousarray(idx)),
                             cuda.to_device(np.ascontiguousarray(valid)), cuda.to_device(W), np.uint64(seed),
                             cuda.to_device(np.ascontiguousarray(patterns, dtype=np.int64)),
                             np.uint64(layer_index), cuda.to_device(eps), cuda.to_device(coef), out, cum, h)
    return out.copy_to_host().reshape(B, N, Ho, Wo)


@cuda.jit
def _bwd_kernel(xf, idx, valid, W, hh, gg, rule, need_dx, dWb, dx, u, p, R, q, e):
    b = cuda.grid(1)
    if b >= xf.shape[0]:
        return
    nip = idx.shape[0]
    S = idx.shape[1]
    N = W.shape[1]
    for ip in range(nip):
        U = 0.0
        for s in range(S):
            v = 0.0
            if valid[ip, s]:
                v = xf[b, idx[ip, s]]
            u[b, s] = v
            U += v
        for s in range(S):
            p[b, s] = u[b, s] / U if U > 0 else 0.0
            R[b, s] = 0.0
            q[b, s] = 0.0
        for i in range(N):
            hi = hh[b, i, ip]
            hgi = _mul(hi, gg[b, i, ip])
            for s in range(S):
                R[b, s] += _mul(W[s, i], hi)
                q[b, s] += _mul(W[s, i], hgi)
        for s in range(S):
            e[b, s] = q[b, s] / R[b, s] if R[b, s] > 0 else 0.0
        if rule == RULE_BACKPROP:
            for s in range(S):
                if R[b, s] > 0:
                    coef = p[b, s] / R[b, s]
                    es = e[b, s]
                    for i in range(N):
                        dWb[b, s, i] = dWb[b, s, i] + _mul(_mul(coef, hh[b, i, ip]), gg[b, i, ip] - es)
        else:
            for s in range(S):
                d = -(p[b, s] - R[b, s])
                for i in range(N):
                    dWb[b, s, i] = dWb[b, s, i] + _mul(d, hh[b, i, ip])
        if need_dx and U > 0:
            m = 0.0
            for s in range(S):
                m += _mul(p[b, s], e[b, s])
            for s in range(S):
                if valid[ip, s]:
                    dx[b, idx[ip, s]] += (e[b, s] - m) / U


@cuda.jit
def _reduce_kernel(dWb, out):
    k = cuda.grid(1)
    B = dWb.shape[0]
    S = dWb.shape[1]
    N = dWb.shape[2]
    if k >= S * N:
        return
    s = k // N
    i = k - s * N
    acc = 0.0
    for b in range(B):
        acc = acc + dWb[b, s, i]
    out[s, i] = acc


def sbs_layer_backward_cuda(x, h, W, g, layer: LayerSpec, rule: int = RULE_BACKPROP, need_dx: bool = True):
    """CUDA twin of :func:`sbs_model.train.backward_nb.sbs_layer_backward_nb` (same results)."""
    require()
    x = np.ascontiguousarray(x, dtype=np.float64)
    W = np.ascontiguousarray(W, dtype=np.float64)
    B = x.shape[0]
    S, N = W.shape
    idx, valid = window_index(layer, x.shape[2:])
    nip = idx.shape[0]
    hh = np.ascontiguousarray(h, dtype=np.float64).reshape(B, N, nip)
    gg = np.ascontiguousarray(g, dtype=np.float64).reshape(B, N, nip)
    dWb = cuda.to_device(np.zeros((B, S, N)))
    dx = cuda.to_device(np.zeros((B, x[0].size)))
    scratch = [cuda.device_array((B, S), dtype=np.float64) for _ in range(5)]
    grid, block = _launch(B)
    _bwd_kernel[grid, block](cuda.to_device(x.reshape(B, -1)), cuda.to_device(np.ascontiguousarray(idx)),
                             cuda.to_device(np.ascontiguousarray(valid)), cuda.to_device(W), cuda.to_device(hh),
                             cuda.to_device(gg), np.int64(rule), bool(need_dx), dWb, dx, *scratch)
    dW = cuda.device_array((S, N), dtype=np.float64)
    grid, block = _launch(S * N)
    _reduce_kernel[grid, block](dWb, dW)
    return dW.copy_to_host(), B * nip, (dx.copy_to_host().reshape(x.shape) if need_dx else None)
