"""Numba golden kernels of SbS float inference (CPU).

They compute exactly the operations of :mod:`sbs_model.float_ref` in exactly its order (see that
module's docstring), so float64 and float32 results equal the numpy reference bit for bit
(``np.array_equal``).  No ``fastmath``: LLVM may not reassociate or contract, so the 8-lane dot
product is vectorised only because the reference defines it with 8 independent lanes.

Work split: ``prange`` over chunks of (pattern x IP) jobs; each job is independent and writes
only its own output column, so results do not depend on the thread count.  Per job: gather the
window, cumulative sum, then per spike the Threefry draw, the sample (linear count for short
windows, binary search otherwise), the 8-lane dot product and the in-place h update.
Buffers are allocated once per chunk, never inside the spike loop.
"""
from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from fixedpoint.rng import spike_random_nb

GROUP = 4  # IPs whose spike loops are interleaved
LINEAR_SEARCH_MAX = 64  # windows up to this length are searched by counting



@njit(cache=True, inline="always")
def _sample(cum, n, r32):
    """First s with cum[s] >= (r32/2**32)*cum[n-1] (float64 compare), n-1 if none.

    Counts the entries of the non-decreasing ``cum[0:n-1]`` below the target: by a vectorisable
    linear count for short windows, else by a binary search whose branch pattern depends only
    on ``n``."""
    target = (np.float64(r32) * (1.0 / 4294967296.0)) * np.float64(cum[n - 1])
    if n <= LINEAR_SEARCH_MAX:
        cnt = 0
        for j in range(n - 1):
            cnt += np.float64(cum[j]) < target
        return cnt
    base = 0
    m = n - 1
    while m > 1:
        half = m >> 1
        base = base + half if np.float64(cum[base + half]) < target else base
        m -= half
    return base + (1 if np.float64(cum[base]) < target else 0)


@njit(cache=True, inline="always")
def _dot8(h, k, w, s, nb):
    """sum_i h[k, i]*w[s, i] in the reference's 8-lane order; row length 8*nb (zero padded)."""
    z = h[k, 0] - h[k, 0]
    a0 = z; a1 = z; a2 = z; a3 = z; a4 = z; a5 = z; a6 = z; a7 = z  # noqa: E702
    for jb in range(nb):
        j = jb * 8
        a0 += h[k, j] * w[s, j]
        a1 += h[k, j + 1] * w[s, j + 1]
        a2 += h[k, j + 2] * w[s, j + 2]
        a3 += h[k, j + 3] * w[s, j + 3]
        a4 += h[k, j + 4] * w[s, j + 4]
        a5 += h[k, j + 5] * w[s, j + 5]
        a6 += h[k, j + 6] * w[s, j + 6]
        a7 += h[k, j + 7] * w[s, j + 7]
    return ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7))


@njit(cache=True, inline="always")
def _rotl32(x, r):
    return (x << np.uint32(r)) | (x >> np.uint32(32 - r))


@njit(cache=True)
def spike_draws(seed, pattern, layer_index, ip, n_t, out):
    """``out[t] = spike_random(seed, pattern, layer_index, ip, t)`` for ``t < n_t`` (uint32).

    Threefry-2x32-20 unrolled on uint32 so that LLVM vectorises it across ``t``; equal to
    :func:`fixedpoint.rng.spike_random_nb` (tested)."""
    k0 = np.uint32(seed)
    k1 = np.uint32(pattern)
    k2 = np.uint32(0x1BD11BDA) ^ k0 ^ k1
    x0i = np.uint32(np.uint32((np.uint64(layer_index) << np.uint64(24)) | np.uint64(ip)) + k0)
    one = np.uint32(1)
    two = np.uint32(2)
    three = np.uint32(3)
    four = np.uint32(4)
    for t in range(n_t):
        x0 = x0i
        x1 = np.uint32(np.uint32(t) + k1)
        x0 = np.uint32(x0 + x1); x1 = np.uint32(_rotl32(x1, 13) ^ x0)  # noqa: E702
        x0 = np.uint32(x0 + x1); x1 = np.uint32(_rotl32(x1, 15) ^ x0)  # noqa: E702
        x0 = np.uint32(x0 + x1); x1 = np.uint32(_rotl32(x1, 26) ^ x0)  # noqa: E702
        x0 = np.uint32(x0 + x1); x1 = np.uint32(_rotl32(x1, 6) ^ x0)  # noqa: E702
        x0 = np.uint32(x0 + k1); x1 = np.uint32(x1 + k2 + one)  # noqa: E702
        x0 = np.uint32(x0 + x1); x1 = np.uint32(_rotl32(x1, 17) ^ x0)  # noqa: E702
        x0 = np.uint32(x0 + x1); x1 = np.uint32(_rotl32(x1, 29) ^ x0)  # noqa: E702
        x0 = np.uint32(x0 + x1); x1 = np.uint32(_rotl32(x1, 16) ^ x0)  # noqa: E702
        x0 = np.uint32(x0 + x1); x1 = np.uint32(_rotl32(x1, 24) ^ x0)  # noqa: E702
        x0 = np.uint32(x0 + k2); x1 = np.uint32(x1 + k0 + two)  # noqa: E702
        x0 = np.uint32(x0 + x1); x1 = np.uint32(_rotl32(x1, 13) ^ x0)  # noqa: E702
        x0 = np.uint32(x0 + x1); x1 = np.uint32(_rotl32(x1, 15) ^ x0)  # noqa: E702
        x0 = np.uint32(x0 + x1); x1 = np.uint32(_rotl32(x1, 26) ^ x0)  # noqa: E702
        x0 = np.uint32(x0 + x1); x1 = np.uint32(_rotl32(x1, 6) ^ x0)  # noqa: E702
        x0 = np.uint32(x0 + k0); x1 = np.uint32(x1 + k1 + three)  # noqa: E702
        x0 = np.uint32(x0 + x1); x1 = np.uint32(_rotl32(x1, 17) ^ x0)  # noqa: E702
        x0 = np.uint32(x0 + x1); x1 = np.uint32(_rotl32(x1, 29) ^ x0)  # noqa: E702
        x0 = np.uint32(x0 + x1); x1 = np.uint32(_rotl32(x1, 16) ^ x0)  # noqa: E702
        x0 = np.uint32(x0 + x1); x1 = np.uint32(_rotl32(x1, 24) ^ x0)  # noqa: E702
        x0 = np.uint32(x0 + k1); x1 = np.uint32(x1 + k2 + four)  # noqa: E702
        x0 = np.uint32(x0 + x1); x1 = np.uint32(_rotl32(x1, 13) ^ x0)  # noqa: E702
        x0 = np.uint32(x0 + x1); x1 = np.uint32(_rotl32(x1, 15) ^ x0)  # noqa: E702
        x0 = np.uint32(x0 + x1); x1 = np.uint32(_rotl32(x1, 26) ^ x0)  # noqa: E702
        x0 = np.uint32(x0 + x1); x1 = np.uint32(_rotl32(x1, 6) ^ x0)  # noqa: E702
        out[t] = np.uint32(x0 + k2)


@njit(cache=True, inline="always")
def _prepare_ip(x, idx, b, ip, cum, seed, pattern, layer_index, r32, spk):
    """Window cumulative sum, all T draws and all T spike indices of one IP."""
    s_len = idx.shape[1]
    z = x[b, 0] - x[b, 0]
    acc = z
    for s in range(s_len):
        k = idx[ip, s]
        if k >= 0:
            acc += x[b, k]
        else:
            acc += z
        cum[s] = acc
    n_t = r32.shape[0]
    spike_draws(seed, pattern, layer_index, ip, n_t, r32)
    for t in range(n_t):
        spk[t] = _sample(cum, s_len, r32[t])


@njit(cache=True, parallel=True)
def sbs_layer(x, idx, w, eps, c, h0, thr, seed, first_pattern, layer_index, out, chunk):
    """One SbS layer for all patterns and IPs.

    x      (n, C*H*W) input, working dtype (float32 or float64)
    idx    (n_ip, S) int64 flat input index per window position, -1 = zero padding
    w      (S, N_pad) weights, working dtype, C-contiguous, N zero-padded to a multiple of 8
           (zero columns keep h_i = 0 and add +0.0 to the dot product: results unchanged)
    eps, c (T,) eps_t and c_t = 1/(1+eps_t) tables, working dtype
    h0     1/N in the working dtype; thr = 1e-10 in the working dtype
    out    (n, N, n_ip) result, working dtype
    chunk  jobs per prange item (jobs = n * n_ip, job = b*n_ip + ip)

    Jobs are processed GROUP at a time: their spike loops are interleaved (spike t of every
    IP of the group, then spike t+1) so that the CPU overlaps their dependency chains.
    """
    n_pat = x.shape[0]
    n_ip, s_len = idx.shape
    n_pad = w.shape[1]
    nb = n_pad // 8
    n_out = out.shape[1]
    n_t = eps.shape[0]
    jobs = n_pat * n_ip
    n_chunks = (jobs + chunk - 1) // chunk
    for ck in prange(n_chunks):
        cum = np.empty(s_len, dtype=w.dtype)
        h = np.empty((GROUP, n_pad), dtype=w.dtype)
        r32 = np.empty(n_t, dtype=np.uint32)
        spk = np.empty((GROUP, n_t), dtype=np.int32)
        start = ck * chunk
        stop = min(jobs, start + chunk)
        for g0 in range(start, stop, GROUP):
            m = min(GROUP, stop - g0)
            for k in range(m):
                b = (g0 + k) // n_ip
                ip = (g0 + k) - b * n_ip
                _prepare_ip(x, idx, b, ip, cum, seed, first_pattern + b, layer_index, r32, spk[k])
                for i in range(n_pad):
                    h[k, i] = h0 if i < n_out else h0 - h0
            for t in range(n_t):
                ct = c[t]
                et = eps[t]
                for k in range(m):
                    s = spk[k, t]
                    r = _dot8(h, k, w, s, nb)
                    if r > thr:
                        g = ct * (et / r)
                        for i in range(n_pad):
                            hi = h[k, i]
                            h[k, i] = ct * hi + g * (hi * w[s, i])
            for k in range(m):
                b = (g0 + k) // n_ip
                ip = (g0 + k) - b * n_ip
                for i in range(n_out):
                    out[b, i, ip] = h[k, i]

def _chunk_size(jobs: int) -> int:
    """Jobs per prange item: about 8 items per thread for load balance."""
    threads = numba.get_num_threads()
    return max(1, -(-jobs // (8 * threads)))


def run_sbs_layer(x: np.ndarray, layer, w: np.ndarray, layer_index: int, seed: int, first_pattern: int):
    """One SbS layer: ``x`` ``(n, C, H, W)`` working dtype -> final h ``(n, N, H_out, W_out)``."""
    from sbs_model.float_ref import R_MIN, eps_tables
    from sbs_model.unfold import unfold_index

    dt = x.dtype.type
    n = x.shape[0]
    idx = unfold_index(x.shape[1:], layer)
    eps, c = eps_tables(layer, dt)
    ho, wo = layer.output_hw(x.shape[2], x.shape[3])
    out = np.empty((n, w.shape[1], ho * wo), dtype=dt)
    xf = np.ascontiguousarray(x.reshape(n, -1))
    jobs = n * idx.shape[0]
    n_pad = -(-w.shape[1] // 8) * 8
    wp = np.zeros((w.shape[0], n_pad), dtype=dt)
    wp[:, :w.shape[1]] = w
    sbs_layer(xf, idx, wp, eps, c, dt(1.0 / w.shape[1]), dt(R_MIN),
              np.uint64(seed), np.uint64(first_pattern), np.uint64(layer_index), out, _chunk_size(jobs))
    return out.reshape(n, w.shape[1], ho, wo)


def forward_trace(net, weights: dict, x: np.ndarray, seed: int = 0, first_pattern: int = 0,
                  dtype="float32") -> list[np.ndarray]:
    """Numba twin of :func:`sbs_model.float_ref.forward_trace` (identical results)."""
    from sbs_model.float_ref import layer_weights, resolve_dtype
    from sbs_model.unfold import pool

    dt = resolve_dtype(dtype)
    x = np.ascontiguousarray(np.asarray(x).astype(dt))
    outs = []
    for li, layer in enumerate(net.layers):
        if layer.is_sbs:
            x = run_sbs_layer(x, layer, layer_weights(net, weights, li, dt), li, seed, first_pattern)
        else:
            x = pool(x, layer)
        outs.append(x)
    return outs


def forward(net, weights: dict, x: np.ndarray, seed: int = 0, first_pattern: int = 0, dtype="float32"):
    """Final h ``(n, N_out)``."""
    out = forward_trace(net, weights, x, seed, first_pattern, dtype)[-1]
    return out.reshape(out.shape[0], -1)
