"""Numba golden kernels of SbS float inference (CPU).

They compute exactly the operations of :mod:`sbs_model.float_ref` in exactly its order (see that
module's docstring), so float64 and float32 results equal the numpy reference bit for bit
(``np.array_equal``).  No ``fastmath``: nothing is reassociated or contracted.

Work split: ``prange`` over chunks of (pattern x IP) jobs; each job is independent and writes
only its own output column, so results do not depend on the thread count.  Per IP:

1. gather the window and its cumulative sum (working dtype);
2. all T Threefry draws at once (:func:`fixedpoint.rng.spike_random_batch_nb`, vectorised across spikes);
3. all T spike indices at once: each window entry ``j`` gets the exact integer draw threshold
   ``R_j`` at which the float sampler passes it (:func:`draw_thresholds`), then the spike is
   ``#{j : r >= R_j}`` -- counted (vectorised) for short windows, via a bucket table for long ones;
4. the h dynamics: per spike the 8-lane dot product (``<8 x float/double>``) and the in-place
   element-wise update (64-byte vectors) as explicit LLVM vector code (:func:`_dot8_simd`,
   :func:`_update_simd`), with
   ``GROUP`` IPs interleaved spike by spike so their dependency chains overlap.

Buffers are allocated once per chunk, never inside the spike loop.  N is zero-padded to a
multiple of 16 (padded h entries stay exactly 0 and add +0.0 to every lane).
"""
from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange
from numba.core import cgutils, types
from numba.extending import intrinsic

from fixedpoint.rng import spike_random_batch_nb as spike_draws  # noqa: F401  (re-exported)
from sbs_model.float_ref import R_MIN, eps_tables, layer_weights, offset_table, resolve_dtype
from sbs_model.simd import load_vector, reduce_halves, row_ptr, splat, vector_ptr
from sbs_model.unfold import pool, unfold_index

GROUP = 4  # IPs whose spike loops are interleaved
LINEAR_SEARCH_MAX = 64  # windows up to this length: count thresholds passed (vectorised)
PAD = 16  # N is zero-padded to a multiple of this (one 64-byte vector of float32)
BUCKET_BITS = 10  # longer windows: 2**10-entry bucket table over the draw's top bits


@njit(cache=True, inline="always")
def _dot8(h, k, w, s, nb):
    """sum_i h[k, i]*w[s, i] in the reference's 8-lane order; row length 8*nb (zero padded).
    Readable scalar twin of :func:`_dot8_simd` (tested equal)."""
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


# ----------------------------------------------------------------------------- explicit SIMD
# numba leaves LLVM's SLP vectoriser off, so the 8-lane dot product and the h update are written
# as LLVM vector instructions (llvmlite IR through ``numba.extending.intrinsic``, building blocks
# from :mod:`sbs_model.simd`).  They are plain
# IEEE fmul/fadd on <8 x T> (no fast-math flags, no FMA): lane l of the vector holds exactly the
# reference's partial sum a[l], and the final tree is ((a0+a4)+(a2+a6)) + ((a1+a5)+(a3+a7)).

@intrinsic
def _dot8_simd(typingctx, h, k, w, s, nb):
    """LLVM <8 x float/double> version of :func:`_dot8` (same operations, same order)."""
    dt = h.dtype
    sig = dt(h, k, w, s, nb)
    def codegen(context, builder, signature, args):
        h_v, k_v, w_v, s_v, nb_v = args
        fty = context.get_value_type(dt)
        vty = ir.VectorType(fty, 8)
        size = context.get_abi_sizeof(fty)
        k_i = context.cast(builder, k_v, signature.args[1], types.intp)
        s_i = context.cast(builder, s_v, signature.args[3], types.intp)
        nb_i = context.cast(builder, nb_v, signature.args[4], types.intp)
        hp = row_ptr(context, builder, signature.args[0], h_v, k_i)
        wp = row_ptr(context, builder, signature.args[2], w_v, s_i)
        acc = cgutils.alloca_once_value(builder, ir.Constant(vty, [ir.Constant(fty, 0.0)] * 8))
        with cgutils.for_range(builder, nb_i) as loop:
            j = builder.mul(loop.index, context.get_constant(types.intp, 8))
            hv = load_vector(builder, hp, j, vty, size)
            wv = load_vector(builder, wp, j, vty, size)
            builder.store(builder.fadd(builder.load(acc, typ=vty), builder.fmul(hv, wv)), acc)
        # ((a0+a4)+(a2+a6)) + ((a1+a5)+(a3+a7)), as _dot8
        return reduce_halves(builder, builder.load(acc, typ=vty), 8, builder.fadd)
    return sig, codegen


@intrinsic
def _update_simd(typingctx, h, k, w, s, n_pad, ct, g):
    """``h[k, i] = ct*h[k, i] + g*(h[k, i]*w[s, i])`` for ``i < n_pad``, one 64-byte vector
    (16 float32 or 8 float64 lanes) at a time; ``n_pad`` must be a multiple of 16."""
    dt = h.dtype
    sig = types.void(h, k, w, s, n_pad, ct, g)

    def codegen(context, builder, signature, args):
        h_v, k_v, w_v, s_v, n_v, ct_v, g_v = args
        fty = context.get_value_type(dt)
        size = context.get_abi_sizeof(fty)
        lanes = 64 // size
        vty = ir.VectorType(fty, lanes)
        k_i = context.cast(builder, k_v, signature.args[1], types.intp)
        s_i = context.cast(builder, s_v, signature.args[3], types.intp)
        n_i = context.cast(builder, n_v, signature.args[4], types.intp)
        nv = builder.udiv(n_i, context.get_constant(types.intp, lanes))
        ct_s = context.cast(builder, ct_v, signature.args[5], dt)
        g_s = context.cast(builder, g_v, signature.args[6], dt)
        hp = row_ptr(context, builder, signature.args[0], h_v, k_i)
        wp = row_ptr(context, builder, signature.args[2], w_v, s_i)
        ctv = splat(builder, ct_s, vty)
        gv = splat(builder, g_s, vty)
        with cgutils.for_range(builder, nv) as loop:
            j = builder.mul(loop.index, context.get_constant(types.intp, lanes))
            hptr = vector_ptr(builder, hp, j, vty)
            hv = builder.load(hptr, align=size, typ=vty)
            wv = load_vector(builder, wp, j, vty, size)
            new = builder.fadd(builder.fmul(ctv, hv), builder.fmul(gv, builder.fmul(hv, wv)))
            builder.store(new, hptr, align=size)
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, inline="always")
def _draw_ok(r, total, cj):
    """True iff cum value ``cj`` < (r/2**32)*total (float64), i.e. draw r goes past entry j."""
    return cj < (np.float64(r) * (1.0 / 4294967296.0)) * total


@njit(cache=True)
def draw_thresholds(cum, n, out):
    """``out[j]`` (j < n-1) = the smallest draw ``r`` in [0, 2**32] with
    ``cum[j] < (r/2**32)*cum[n-1]`` (float64), ``2**32`` if none.

    The float target is non-decreasing in ``r`` (``r/2**32`` is exact, rounding is monotone), so
    the sampler's spike ``s(r) = #{j < n-1 : cum[j] < target(r)} = #{j : r >= out[j]}``: the same
    index as :func:`_sample`, found by integer compares.  A float64 estimate is corrected by exact
    steps (one or two) until it is the boundary."""
    total = np.float64(cum[n - 1])
    top = np.int64(4294967296)
    for j in range(n - 1):
        cj = np.float64(cum[j])
        if not total > 0.0:
            out[j] = top  # target is 0: never > cum[j] >= 0
            continue
        est = cj / total * 4294967296.0
        g = top if est >= 4294967296.0 else np.int64(est)
        if g < 0:
            g = 0
        while g > 0 and _draw_ok(g - 1, total, cj):
            g -= 1
        while g < top and not _draw_ok(g, total, cj):
            g += 1
        out[j] = g


@njit(cache=True, inline="always")
def spikes_from_thresholds(rth, s_len, r32, bucket, spk):
    """``spk[t] = #{j < s_len-1 : r32[t] >= rth[j]}``: the spike index of draw ``r32[t]`` given a
    sampler's draw thresholds ``rth`` (non-decreasing int64 in ``[0, 2**32]``, ``2**32`` = never
    passed; :func:`draw_thresholds` for the float sampler,
    :func:`fixedpoint.rng.sample_thresholds_int_nb` for the integer one).  ``bucket``
    (2**BUCKET_BITS int64) is a work buffer."""
    n_t = r32.shape[0]
    if s_len <= LINEAR_SEARCH_MAX:
        for t in range(n_t):
            spk[t] = 0
        for j in range(s_len - 1):
            if rth[j] < 4294967296:  # else no draw passes entry j
                rj = np.uint32(rth[j])
                for t in range(n_t):
                    spk[t] += r32[t] >= rj
    else:
        # long windows: bucket table over the top BUCKET_BITS of r -> first candidate index,
        # then step over the (on average < 1) thresholds inside the bucket.
        shift = 32 - BUCKET_BITS
        j = 0
        for bk in range(1 << BUCKET_BITS):
            lo = np.int64(bk) << shift
            while j < s_len - 1 and rth[j] <= lo:
                j += 1
            bucket[bk] = j
        for t in range(n_t):
            r = np.int64(r32[t])
            k = bucket[r >> shift]
            while k < s_len - 1 and rth[k] <= r:
                k += 1
            spk[t] = k


@njit(cache=True, inline="always")
def spikes_from_draws(cum, s_len, r32, rth, bucket, spk):
    """``spk[t]`` = the float sampler's spike for draw ``r32[t]`` on window ``cum[:s_len]`` (equal to
    :func:`fixedpoint.rng.sample_index_float`).  ``rth`` (>= s_len int64) and ``bucket``
    (2**BUCKET_BITS int64) are work buffers."""
    draw_thresholds(cum, s_len, rth)
    spikes_from_thresholds(rth, s_len, r32, bucket, spk)


@njit(cache=True, inline="always")
def _prepare_ip(x, idx, b, ip, cum, seed, pattern, layer_index, r32, rth, bucket, spk):
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
    spikes_from_draws(cum, s_len, r32, rth, bucket, spk)


@njit(cache=True, parallel=True)
def sbs_layer(x, idx, w, eps, c, off, h0, thr, seed, first_pattern, layer_index, out, chunk):
    """One SbS layer for all patterns and IPs.

    x      (n, C*H*W) input, working dtype (float32 or float64)
    idx    (n_ip, S) int64 flat input index per window position, -1 = zero padding
    w      (S, N_pad) weights, working dtype, C-contiguous, N zero-padded to a multiple of PAD
           (zero columns keep h_i = 0 and add +0.0 to the dot product: results unchanged)
    eps, c (T,) eps_t and c_t = 1/(1+eps_t*(1+fo)) tables, working dtype
    off    (T,) forgetting-offset term o_t added to every h after an accepted spike (zeros: none)
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
        rth = np.empty(s_len, dtype=np.int64)
        bucket = np.empty(1 << BUCKET_BITS, dtype=np.int64)
        spk = np.empty((GROUP, n_t), dtype=np.int32)
        start = ck * chunk
        stop = min(jobs, start + chunk)
        for g0 in range(start, stop, GROUP):
            m = min(GROUP, stop - g0)
            for k in range(m):
                b = (g0 + k) // n_ip
                ip = (g0 + k) - b * n_ip
                _prepare_ip(x, idx, b, ip, cum, seed, first_pattern + b, layer_index, r32, rth, bucket, spk[k])
                for i in range(n_pad):
                    h[k, i] = h0 if i < n_out else h0 - h0
            for t in range(n_t):
                ct = c[t]
                et = eps[t]
                ot = off[t]
                for k in range(m):
                    s = spk[k, t]
                    r = _dot8_simd(h, k, w, s, nb)
                    if r > thr:
                        _update_simd(h, k, w, s, n_pad, ct, ct * (et / r))
                        if ot != 0:
                            for i in range(n_out):
                                h[k, i] = h[k, i] + ot
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
    dt = x.dtype.type
    n = x.shape[0]
    idx = unfold_index(x.shape[1:], layer)
    eps, c = eps_tables(layer, dt)
    ho, wo = layer.output_hw(x.shape[2], x.shape[3])
    out = np.empty((n, w.shape[1], ho * wo), dtype=dt)
    xf = np.ascontiguousarray(x.reshape(n, -1))
    jobs = n * idx.shape[0]
    n_pad = -(-w.shape[1] // PAD) * PAD
    wp = np.zeros((w.shape[0], n_pad), dtype=dt)
    wp[:, :w.shape[1]] = w
    sbs_layer(xf, idx, wp, eps, c, offset_table(layer, dt), dt(1.0 / w.shape[1]), dt(R_MIN),
              np.uint64(seed), np.uint64(first_pattern), np.uint64(layer_index), out, _chunk_size(jobs))
    return out.reshape(n, w.shape[1], ho, wo)


def forward_trace(net, weights: dict, x: np.ndarray, seed: int = 0, first_pattern: int = 0,
                  dtype="float32") -> list[np.ndarray]:
    """Numba twin of :func:`sbs_model.float_ref.forward_trace` (identical results)."""
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
