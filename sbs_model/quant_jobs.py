"""What every quantized layer kernel shares (:mod:`sbs_model.quant_nb`, :mod:`sbs_model.quant_fast_int`,
:mod:`sbs_model.quant_fast_f32`): the per-IP preparation (window cumsum, T Threefry draws, T spike
indices: :func:`prepare_ip_fast` with its work buffers :func:`ip_buffers`) and the Python wrapper
around a layer kernel (:func:`run_layer_kernel`: unfold index, output / counter / bad-window buffers,
chunking, the bad-window error).  It sits below all three, so none of them imports another's
helpers.
"""
from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import njit
from numba.core import cgutils, types
from numba.extending import intrinsic

from fixedpoint.rng import sample_thresholds_int_nb
from sbs_model.kernels_cpu import BUCKET_BITS, LINEAR_SEARCH_MAX, spike_draws, spikes_from_thresholds
from sbs_model.simd import load_vector, splat, vector_ptr
from sbs_model.quant_ref import COUNTERS, WINDOW_TOTAL_LIMIT, QLayer
from sbs_model.unfold import unfold_index

N_COUNTERS = len(COUNTERS)


@njit(cache=True, inline="always")
def ip_buffers(s_len, n_t):
    """Per-thread work buffers of :func:`prepare_ip_fast`: ``(cum, r32, rth, bucket)``."""
    return (np.empty(s_len, dtype=np.int64), np.empty(n_t, dtype=np.uint32), np.empty(s_len, dtype=np.int64),
            np.empty(1 << BUCKET_BITS, dtype=np.int64))


LANES = 16  # uint32 draws per vector
BLOCK = 4  # vectors of draws held in registers while every threshold is compared


@intrinsic
def _count_block(typingctx, r32, t0, rth, jn, spk):
    """``spk[t] = #{j < jn : r32[t] >= rth[j]}`` for the ``BLOCK*LANES`` draws from ``t0`` (every
    ``rth[j] < 2**32``, j < jn): the draws stay in vector registers while the thresholds stream
    past (one compare and one subtract of the compare's -1 per draw and threshold)."""
    if not all(isinstance(a, types.Array) and a.ndim == 1 and a.layout == "C" for a in (r32, rth, spk)):
        return None
    sig = types.void(r32, t0, rth, jn, spk)

    def codegen(context, builder, signature, args):
        r_v, t0_v, rth_v, jn_v, spk_v = args
        sa = signature.args
        i32 = ir.IntType(32)
        vty = ir.VectorType(i32, LANES)
        t0_i = context.cast(builder, t0_v, sa[1], types.intp)
        jn_i = context.cast(builder, jn_v, sa[3], types.intp)
        rp = builder.gep(context.make_array(sa[0])(context, builder, r_v).data, [t0_i])
        tp = context.make_array(sa[2])(context, builder, rth_v).data
        sp = builder.gep(context.make_array(sa[4])(context, builder, spk_v).data, [t0_i])
        draws = [load_vector(builder, rp, context.get_constant(types.intp, LANES * b), vty, 4) for b in range(BLOCK)]
        zero = ir.Constant(vty, [ir.Constant(i32, 0)] * LANES)
        accs = [cgutils.alloca_once_value(builder, zero) for _ in range(BLOCK)]
        with cgutils.for_range(builder, jn_i) as loop:
            rj = splat(builder, builder.trunc(builder.load(builder.gep(tp, [loop.index])), i32), vty)
            for b in range(BLOCK):
                passed = builder.sext(builder.icmp_unsigned(">=", draws[b], rj), vty)
                builder.store(builder.sub(builder.load(accs[b], typ=vty), passed), accs[b])
        out_t = context.get_value_type(sa[4].dtype)
        wide = ir.VectorType(out_t, LANES)
        for b in range(BLOCK):
            v = builder.load(accs[b], typ=vty)
            if out_t.width != 32:
                v = builder.sext(v, wide)
            builder.store(v, vector_ptr(builder, sp, context.get_constant(types.intp, LANES * b), wide), align=4)
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, inline="always")
def count_spikes(rth, s_len, r32, bucket, spk):
    """:func:`sbs_model.kernels_cpu.spikes_from_thresholds` (the same indices, tested ``==``); short
    windows count in blocks of draws held in registers (:func:`_count_block`) instead of one pass
    over all draws per threshold."""
    if s_len > LINEAR_SEARCH_MAX:
        spikes_from_thresholds(rth, s_len, r32, bucket, spk)
        return
    jn = 0
    while jn < s_len - 1 and rth[jn] < 4294967296:  # non-decreasing: the rest are never passed
        jn += 1
    n_t = r32.shape[0]
    full = n_t - n_t % (BLOCK * LANES)
    for t0 in range(0, full, BLOCK * LANES):
        _count_block(r32, t0, rth, jn, spk)
    for t in range(full, n_t):
        c = 0
        for j in range(jn):
            c += np.int64(r32[t]) >= rth[j]
        spk[t] = c


@njit(cache=True, inline="always")
def prepare_ip_fast(xw, b, idx, ip, cum, seed, pattern, layer_index, r32, rth, bucket, spk):
    """Window cumsum, all T draws and T spike indices of one IP; False if the window total is
    >= 2**31.  The spike indices come from counting the integer sampler's draw thresholds
    (:func:`fixedpoint.rng.sample_thresholds_int_nb`, :func:`count_spikes`) instead of T binary searches
    (:func:`fixedpoint.rng.sample_index_int_nb`): the same indices (tested).  ``rth`` (>= S int64)
    and ``bucket`` (2**BUCKET_BITS int64) are work buffers."""
    s_len = idx.shape[1]
    acc = np.int64(0)
    for s in range(s_len):
        k = idx[ip, s]
        if k >= 0:
            acc += xw[b, k]
        cum[s] = acc
    if acc >= WINDOW_TOTAL_LIMIT:
        return False
    spike_draws(seed, pattern, layer_index, ip, r32.shape[0], r32)
    sample_thresholds_int_nb(cum, s_len, rth)
    count_spikes(rth, s_len, r32, bucket, spk)
    return True


def chunk_size(jobs: int) -> int:
    """Jobs per prange item: about 8 items per thread for load balance."""
    return max(1, -(-jobs // (8 * numba.get_num_threads())))


def bad_window(ql: QLayer, bad: np.ndarray, n_ip: int, first_pattern: int):
    job = int(np.argmax(bad))
    raise ValueError(f"layer {ql.index}: integer window total of IP {job % n_ip} (pattern "
                     f"{first_pattern + job // n_ip}) exceeds 2**31 - 1; lower sampler_frac_bits")


def run_layer_kernel(ql: QLayer, xw: np.ndarray, first_pattern: int, call):
    """What every layer kernel's wrapper does: the unfold index, the output / counter / bad-window
    buffers, ``call(xw2d, idx, out, counters, bad, chunk)`` (the kernel), the bad-window error and
    the reshapes -> ``(codes (n, N, Ho, Wo) int64, counters (len(COUNTERS),))``."""
    n = xw.shape[0]
    idx = unfold_index(xw.shape[1:], ql.layer)
    ho, wo = ql.layer.output_hw(xw.shape[2], xw.shape[3])
    N = ql.layer.out_channels
    jobs = n * idx.shape[0]
    out = np.empty((n, N, idx.shape[0]), dtype=np.int64)
    counters = np.zeros((jobs, N_COUNTERS), dtype=np.int64)
    bad = np.zeros(jobs, dtype=np.int64)
    call(np.ascontiguousarray(xw.reshape(n, -1), dtype=np.int64), idx, out, counters, bad, chunk_size(jobs))
    if bad.any():
        bad_window(ql, bad, idx.shape[0], first_pattern)
    return out.reshape(n, N, ho, wo), counters.sum(axis=0)
