"""Numba kernels of bit-exact quantized SbS inference: the twin of :mod:`sbs_model.quant_ref`.

Same definition (see that module's docstring), same integers: every h code equals the numpy
reference's (``==``).  Work split as in :mod:`sbs_model.kernels_cpu`: ``prange`` over chunks of
(pattern x IP) jobs, ``job = b*n_ip + ip``; each job writes only its own output column and its
own counter row, so results do not depend on the thread count.  Per job: gather the integer
window, exact int64 cumulative sum, all T Threefry draws (:func:`sbs_model.kernels_cpu.spike_draws`,
vectorised over t; :func:`sbs_model.quant_jobs.prepare_ip_fast`) and T spike indices up front (counting the integer sampler's draw thresholds,
:func:`fixedpoint.rng.sample_thresholds_int_nb`; they do not depend on h), then T calls of
:func:`fixedpoint.datapath.step_nb` in place.  Buffers are allocated once per chunk, never inside
the spike loop.  Where a vectorised kernel applies (:func:`fast_kernel`: the integer update,
:mod:`sbs_model.quant_fast_int`; the float32 update, :mod:`sbs_model.quant_fast_f32`)
``run_quant_layer`` runs that instead: the same integers, tested ``==`` against this generic loop.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from fixedpoint.datapath import R_ACC_OVF, R_H_OVF, R_H_UNF, R_SIG_R, REC_LEN, step_nb
from fixedpoint.pooling import pool_avg_nb, pool_max_nb, window_from_h
from fixedpoint.rounding import rounding_code
from sbs_model.quant_jobs import N_COUNTERS, bad_window, ip_buffers, prepare_ip_fast, run_layer_kernel
from sbs_model import quant_fast_f32, quant_fast_int
from sbs_model.kernels_cpu import run_sbs_layer
from sbs_model.quant_ref import (C_ACC_OVF, C_ACC_OVF_SPIKES, C_H_OVF, C_H_UNF, C_IGNORED, C_SPIKES, NumpyKernels,
                                 QLayer, pool_index)
from sbs_model.unfold import unfold_index

@njit(cache=True)
def _spikes_ip(h, spk, wcodes, dp, h_p, w_p, C, G, e32, c32, lut, rec, cnt, hist, recs, record):
    """All T spikes of one IP in place on ``h`` (:func:`fixedpoint.datapath.step_nb`); counters
    added into ``cnt``; with ``record`` ``hist[t+1]``/``recs[t]`` get h and the step record after
    spike t."""
    n = h.shape[0]
    for t in range(spk.shape[0]):
        step_nb(h, wcodes[spk[t]], np.int64(t), dp, h_p, w_p, C, G, e32, c32, lut, h, rec)
        cnt[C_SPIKES] += 1
        if rec[R_SIG_R] == 0:
            cnt[C_IGNORED] += 1
        if rec[R_ACC_OVF] > 0:
            cnt[C_ACC_OVF_SPIKES] += 1
        cnt[C_ACC_OVF] += rec[R_ACC_OVF]
        cnt[C_H_OVF] += rec[R_H_OVF]
        cnt[C_H_UNF] += rec[R_H_UNF]
        if record:
            for i in range(n):
                hist[t + 1, i] = h[i]
            for j in range(REC_LEN):
                recs[t, j] = rec[j]


@njit(cache=True, parallel=True)
def qsbs_layer(xw, idx, wcodes, h0, dp, h_p, w_p, C, G, e32, c32, lut, seed, first_pattern, layer_index, n_t, out,
               counters, bad, chunk):
    """One quantized SbS layer for all patterns and IPs.

    xw        (n, C*H*W) int64 integer window source (pixels 0..255 or floor(h*2**sampler_frac_bits))
    idx       (n_ip, S) int64 flat index per window position, -1 = zero padding
    wcodes    (S, N) int64 weight codes of the layer's scaled weight format (``w_p`` its ``nb``)
    h0        (N,) int64 initial h codes; dp = Datapath.nb, h_p = H.nb; C/G/e32/c32 the tables
    out       (n, N, n_ip) int64 final h codes
    counters  (n*n_ip, len(COUNTERS)) int64 per-job counters (zeroed by the caller)
    bad       (n*n_ip,) int64: 1 where the window total is >= 2**31 (job not run)
    """
    n_pat = xw.shape[0]
    n_ip, s_len = idx.shape
    n = wcodes.shape[1]
    jobs = n_pat * n_ip
    n_chunks = (jobs + chunk - 1) // chunk
    for ck in prange(n_chunks):
        cum, r32, rth, bucket = ip_buffers(s_len, n_t)
        spk = np.empty(n_t, dtype=np.int64)
        h = np.empty(n, dtype=np.int64)
        rec = np.zeros(REC_LEN, dtype=np.int64)
        hist = np.empty((1, 1), dtype=np.int64)
        recs = np.empty((1, 1), dtype=np.int64)
        start = ck * chunk
        stop = min(jobs, start + chunk)
        for job in range(start, stop):
            b = job // n_ip
            ip = job - b * n_ip
            if not prepare_ip_fast(xw, b, idx, ip, cum, seed, first_pattern + b, layer_index, r32, rth, bucket,
                                   spk):
                bad[job] = 1
                continue
            for i in range(n):
                h[i] = h0[i]
            _spikes_ip(h, spk, wcodes, dp, h_p, w_p, C, G, e32, c32, lut, rec, counters[job], hist, recs, False)
            for i in range(n):
                out[b, i, ip] = h[i]


@njit(cache=True)
def qsbs_trace_ip(xw, idx, b, ip, wcodes, h0, dp, h_p, w_p, C, G, e32, c32, lut, seed, pattern, layer_index, n_t,
                  hist, recs, spk, cnt):
    """One IP with every spike recorded: ``hist`` (T+1, N), ``recs`` (T, REC_LEN), ``spk`` (T,)."""
    s_len = idx.shape[1]
    cum, r32, rth, bucket = ip_buffers(s_len, n_t)
    rec = np.zeros(REC_LEN, dtype=np.int64)
    if not prepare_ip_fast(xw, b, idx, ip, cum, seed, pattern, layer_index, r32, rth, bucket, spk):
        return False
    h = h0.copy()
    for i in range(h.shape[0]):
        hist[0, i] = h[i]
    _spikes_ip(h, spk, wcodes, dp, h_p, w_p, C, G, e32, c32, lut, rec, cnt, hist, recs, True)
    return True


@njit(cache=True, parallel=True)
def pool_codes_kernel(codes, pidx, h_p, man_bits, rounding, is_max, out):
    """Pool ``codes`` (rows, H*W) over the windows ``pidx`` (n_out, k) into ``out`` (rows, n_out)."""
    rows = codes.shape[0]
    n_out, k = pidx.shape
    for r in prange(rows):
        buf = np.empty(k, dtype=np.int64)
        for o in range(n_out):
            m = 0
            for j in range(k):
                q = pidx[o, j]
                if q >= 0:
                    buf[m] = codes[r, q]
                    m += 1
            if is_max:
                out[r, o] = pool_max_nb(buf[:m])
            elif m == k:  # no padding: the whole buffer, no slice (a slice costs a reference count)
                c, _ = pool_avg_nb(buf, h_p, man_bits, rounding)
                out[r, o] = c
            else:
                c, _ = pool_avg_nb(buf[:m], h_p, man_bits, rounding)
                out[r, o] = c


def _layer_args(ql: QLayer):
    """Arguments of :func:`qsbs_layer` / :func:`qsbs_trace_ip` for a layer."""
    t = ql.tables
    return (ql.wcodes, ql.h0, ql.dp.nb, ql.H.nb, ql.W.nb, t.C, t.G, t.eps32, t.c32, ql.lut)


def fast_kernel(ql: QLayer):
    """The vectorised kernel that applies to ``ql`` (a ``run_quant_layer``-like function), or None
    when only the generic :func:`qsbs_layer` (``step_nb`` per spike) does."""
    if quant_fast_int.int_fast_ok(ql):
        return quant_fast_int.run_quant_layer_int
    if quant_fast_f32.f32_fast_ok(ql):
        return quant_fast_f32.run_quant_layer_f32
    return None


def run_quant_layer(ql: QLayer, xw: np.ndarray, seed: int, first_pattern: int, fast: bool = True):
    """``xw`` ``(n, C, H, W)`` int64 -> ``(codes (n, N, Ho, Wo) int64, counters (len(COUNTERS),))``.
    ``fast``: the vectorised kernel where one applies (:func:`fast_kernel`); False = always the
    generic ``step_nb`` loop (same integers, tested)."""
    kernel = fast_kernel(ql) if fast else None
    if kernel is not None:
        return kernel(ql, xw, seed, first_pattern)
    args = _layer_args(ql)
    return run_layer_kernel(ql, xw, first_pattern, lambda x, idx, out, cnt, bad, chunk: qsbs_layer(
        x, idx, *args, np.uint64(seed), np.uint64(first_pattern), np.uint64(ql.index), np.int64(ql.layer.spikes), out,
        cnt, bad, chunk))


def trace_ip(ql: QLayer, xw: np.ndarray, b: int, ip: int, seed: int, first_pattern: int = 0):
    """Numba twin of ``quant_ref.run_ip(..., record=True)`` for IP ``ip`` of pattern ``b`` of the
    window source ``xw`` ``(n, C, H, W)``: ``(h, counters, hist (T+1, N), records (T, REC_LEN),
    spikes (T,))``."""
    T = ql.layer.spikes
    N = ql.layer.out_channels
    idx = unfold_index(xw.shape[1:], ql.layer)
    hist = np.empty((T + 1, N), dtype=np.int64)
    recs = np.empty((T, REC_LEN), dtype=np.int64)
    spk = np.empty(T, dtype=np.int64)
    cnt = np.zeros(N_COUNTERS, dtype=np.int64)
    ok = qsbs_trace_ip(np.ascontiguousarray(xw.reshape(xw.shape[0], -1), dtype=np.int64), idx, int(b), int(ip),
                       *_layer_args(ql), np.uint64(seed), np.uint64(first_pattern + b), np.uint64(ql.index),
                       np.int64(T), hist, recs, spk, cnt)
    if not ok:
        bad = np.zeros(idx.shape[0], dtype=np.int64)
        bad[ip] = 1
        bad_window(ql, bad, idx.shape[0], first_pattern + b)
    return hist[-1].copy(), cnt, hist, recs, spk


def pool_codes(codes: np.ndarray, fmt, rounding: str, layer) -> np.ndarray:
    """Numba twin of :func:`sbs_model.quant_ref.pool_codes`."""
    n, c, hh, ww = codes.shape
    ho, wo = layer.output_hw(hh, ww)
    pidx = pool_index(layer, hh, ww)
    out = np.empty((n * c, pidx.shape[0]), dtype=np.int64)
    man = int(fmt.man_bits) if fmt.kind == "float" else 0
    pool_codes_kernel(np.ascontiguousarray(codes.reshape(n * c, hh * ww), dtype=np.int64), pidx, fmt.nb,
                      np.int64(man), np.int64(rounding_code(rounding)), layer.kind == "maxpool", out)
    return out.reshape(n, c, ho, wo)


class NumbaKernels(NumpyKernels):
    """The fast backend (numba ``parallel=True``; float layers on the golden kernels)."""

    name = "numba"

    @staticmethod
    def window_from_h(codes, fmt, sampler_frac_bits):
        return window_from_h(codes, fmt, sampler_frac_bits, fast=True)

    @staticmethod
    def quant_layer(ql, xw, seed, first_pattern):
        return run_quant_layer(ql, xw, seed, first_pattern)

    @staticmethod
    def float_layer(x, layer, w, index, seed, first_pattern):
        return run_sbs_layer(np.ascontiguousarray(x), layer, w, index, seed, first_pattern)

    @staticmethod
    def pool_codes(codes, fmt, rounding, layer):
        return pool_codes(codes, fmt, rounding, layer)


class GenericNumbaKernels(NumbaKernels):
    """Numba without the vectorised kernels: every quantized layer on :func:`qsbs_layer`
    (``step_nb`` per spike).  The same integers, slower; the benchmark's yardstick."""

    name = "numba-generic"

    @staticmethod
    def quant_layer(ql, xw, seed, first_pattern):
        return run_quant_layer(ql, xw, seed, first_pattern, fast=False)
