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
from numba import njit

from fixedpoint.rng import sample_thresholds_int_nb
from sbs_model.kernels_cpu import BUCKET_BITS, spike_draws, spikes_from_thresholds
from sbs_model.quant_ref import COUNTERS, WINDOW_TOTAL_LIMIT, QLayer
from sbs_model.unfold import unfold_index

N_COUNTERS = len(COUNTERS)


@njit(cache=True, inline="always")
def ip_buffers(s_len, n_t):
    """Per-thread work buffers of :func:`prepare_ip_fast`: ``(cum, r32, rth, bucket)``."""
    return (np.empty(s_len, dtype=np.int64), np.empty(n_t, dtype=np.uint32), np.empty(s_len, dtype=np.int64),
            np.empty(1 << BUCKET_BITS, dtype=np.int64))


@njit(cache=True, inline="always")
def prepare_ip_fast(xw, b, idx, ip, cum, seed, pattern, layer_index, r32, rth, bucket, spk):
    """Window cumsum, all T draws and T spike indices of one IP; False if the window total is
    >= 2**31.  The spike indices come from counting the integer sampler's draw thresholds
    (:func:`fixedpoint.rng.sample_thresholds_int_nb`,
    :func:`sbs_model.kernels_cpu.spikes_from_thresholds`) instead of T binary searches
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
    spikes_from_thresholds(rth, s_len, r32, bucket, spk)
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
