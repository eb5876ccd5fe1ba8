"""Vectorised bit-exact kernel for quantized layers with the integer update (the ``int-*`` presets).

Same definition and same integers as :func:`fixedpoint.datapath.step_nb` (tested ``==`` on h codes
and counters), rewritten so that both element loops of a spike run as straight-line SIMD code:

* **Dot.**  ``step_nb`` aligns each exact product ``sig_h*sig_w*2**(exp_h+exp_w)`` to the
  accumulator grid ``2**-F`` with its own shift, ``floor(h*sig*2**e_i)`` with
  ``e_i = exp_w,i - Fh + F``.  With one layer shift ``sd = max(0, max_i -e_i)`` and the
  pre-shifted multiplier ``Md_i = sig_i << (e_i + sd)`` this is ``(h*Md_i) >> sd`` exactly (the
  low ``sd`` bits of ``Md_i`` are zero, so the floor is the same real number's floor): one
  multiply and one constant shift per element.  Weights whose term is zero for every h in the
  format (``(h_max*sig) >> -e == 0``) get ``Md = 0`` and do not widen ``sd``.
* **Update.**  ``T2_i = align(K*P_i, eK + exp_w,i - Fh, Fu) = floor(K*h_i*M2_i * 2**u)`` with
  ``M2_i = sig_i << (exp_w,i - e_min)`` and one shift per spike ``u = eK - Fh + Fu + e_min``;
  ``T1_i = align(C*h_i, -Fh - cb, Fu)`` has one shift per layer.  ``align``'s cap at ``2**60``
  becomes a compare (``v > (2**60 - 1) >> ls``).  ``S = T1 + T2`` is rounded to H's grid with the
  datapath's rounding (:func:`fixedpoint.rounding.rshift_round_nb`'s rule, written branch-free for
  ``S >= 0``) and saturated at H's largest code.
* **Per spike, scalar.**  ``finish_nb``, ``normalise_nb``, ``reciprocal_nb``, ``coefficient_nb``:
  the fixedpoint primitives themselves.  GROUP IPs are interleaved (spike t of each, then t+1) so
  their dependency chains (the divider) overlap, as in :mod:`sbs_model.kernels_cpu`.

Applies when :func:`int_fast_ok` holds (unsigned fixed-point H with ``Fh <= Fu``, exact
products, non-negative weights, and the bounds that keep every int64 intermediate below
``2**62``); otherwise :mod:`sbs_model.quant_nb` runs ``step_nb``.  N is padded to a multiple of 8
with zero weights (their h stays 0 and adds 0 to the dot).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from fixedpoint.accumulate import MASK32, finish_nb
from fixedpoint.datapath import (R_ACC_OVF, R_EXP_K, R_H_OVF, R_K, R_SIG_R, R_Y, REC_LEN, record_dot_nb,
                                 D_ACC_FRAC, D_ACC_OVF, D_ACC_WIDTH, D_C_BITS, D_COEF_BITS, D_G_BITS, D_H_ROUND,
                                 D_NORM_BITS, D_PROD_BITS, D_RECIP_BITS,
                                 D_UPD_FRAC, D_UPDATE)
from fixedpoint.formats import KIND_FIXED, P_FRAC_BITS, P_KIND, P_SIGNED, P_WIDTH
from fixedpoint.normalise import normalise_nb
from fixedpoint.reciprocal import TABLE_MAX_NORM_BITS, reciprocal_table
from fixedpoint.rounding import rshift_round_pos_nb
from fixedpoint.update import align_shifted_nb, align_shifts, coefficient_nb
from sbs_model.quant_nb import ip_buffers, prepare_ip_fast, run_layer_kernel
from sbs_model.quant_ref import C_ACC_OVF, C_ACC_OVF_SPIKES, C_H_OVF, C_IGNORED, C_SPIKES, QLayer

GROUP = 4  # IPs whose spike loops are interleaved
PAD = 8  # N is padded to a multiple of this (one AVX-512 int64 vector)
BOUND = 62  # every int64 intermediate stays below 2**BOUND


@dataclass(frozen=True)
class IntFastLayer:
    """Pre-computed arrays of one layer for :func:`qsbs_layer_int`.

    md    (S, Np) int64  dot multipliers ``sig << (e + sd)`` (0 where the term is always 0)
    m2    (S, Np) int64  update multipliers ``sig << (exp_w - e_min)``
    h0    (Np,)   int64  initial h codes, 0 in the padding
    sd, e_min            the dot's layer shift and the smallest weight exponent
    recip (2**(R-1),) int64  :func:`fixedpoint.reciprocal.reciprocal_table` of the datapath
    """

    md: np.ndarray
    m2: np.ndarray
    h0: np.ndarray
    sd: int
    e_min: int
    recip: np.ndarray


def _bits(x: int) -> int:
    return int(x).bit_length()


def prepare_int(ql: QLayer) -> IntFastLayer | None:
    """The arrays of :class:`IntFastLayer`, or None when the kernel does not apply (see the module
    docstring for the conditions)."""
    dp = ql.dp.nb
    hp = ql.H.nb
    if not (dp[D_UPDATE] == 0 and hp[P_KIND] == KIND_FIXED and hp[P_SIGNED] == 0 and dp[D_PROD_BITS] == 0):
        return None
    Fh = int(hp[P_FRAC_BITS])
    Fu = int(dp[D_UPD_FRAC])
    if Fh > Fu:
        return None
    F = int(ql.dp.acc[1])
    sig, exp = ql.W.decode_parts(ql.wcodes)
    sig = np.asarray(sig, dtype=np.int64)
    exp = np.asarray(exp, dtype=np.int64)
    if np.any(sig < 0):
        return None
    S, N = sig.shape
    Np = -(-N // PAD) * PAD
    h_max = (1 << int(hp[P_WIDTH])) - 1
    nz = sig > 0
    if not nz.any():
        return None
    # dot: e_i = exp_w - Fh + F; terms that are 0 for every h <= h_max are dropped
    e = exp - Fh + F
    live = nz & ~((e < 0) & ((h_max * sig) >> np.clip(-e, 0, 63) == 0))
    sd = int(max(0, int((-e[live]).max()))) if live.any() else 0
    if live.any() and int((e[live] + sd).max()) + _bits(int(sig.max())) + _bits(h_max) > BOUND - _bits(N):
        return None
    md = np.zeros((S, Np), dtype=np.int64)
    md[:, :N] = np.where(live, sig << np.where(live, e + sd, 0), 0)
    # update: M2 = sig << (exp - e_min); K < 2**coef_bits
    e_min = int(exp[nz].min())
    m2 = np.zeros((S, Np), dtype=np.int64)
    m2[:, :N] = np.where(nz, sig << np.where(nz, exp - e_min, 0), 0)
    if int(dp[D_COEF_BITS]) + _bits(h_max) + _bits(int(m2.max())) > 60:
        return None
    if int(dp[D_C_BITS]) + _bits(h_max) > 60 or int(dp[D_NORM_BITS]) > TABLE_MAX_NORM_BITS:
        return None
    if max(int(hp[P_WIDTH]), int(dp[D_C_BITS]), int(dp[D_COEF_BITS])) > 32:  # the update's 32x32 multiplies
        return None
    d = ql.dp
    recip = reciprocal_table(d.norm_bits, d.recip_bits, d.recip_method, d.recip_rounding, d.lut_bits, d.nr_iters)
    h0 = np.zeros(Np, dtype=np.int64)
    h0[:N] = ql.h0
    return IntFastLayer(np.ascontiguousarray(md), np.ascontiguousarray(m2), h0, sd, e_min, recip)


def int_fast_ok(ql: QLayer) -> bool:
    """True when :func:`qsbs_layer_int` applies to ``ql``."""
    return prepare_int(ql) is not None


@njit(cache=True, inline="always")
def _dot(h, k, md, s, sd, npad, narrow):
    """Accumulator sum of IP ``k``'s terms ``(h*Md) >> sd``; ``narrow``: every h and Md is below
    ``2**32``, so the multiply is the 32x32->64 one (masking tells LLVM so)."""
    tot = np.int64(0)
    if narrow:
        for i in range(npad):
            tot += ((h[k, i] & MASK32) * (md[s, i] & MASK32)) >> sd
    else:
        for i in range(npad):
            tot += (h[k, i] * md[s, i]) >> sd
    return tot


@njit(cache=True, inline="always")
def _update(h, k, m2, s, npad, C, K, t1, t2, sr, mode, kpos, md, s_next, sd, narrow):
    """New h codes of IP ``k`` in place (``t1``/``t2`` the :func:`fixedpoint.update.align_shifts`
    of T1 and T2) fused with the next spike's dot product (row ``s_next`` of ``md``) on the new
    codes: returns ``(saturated elements, next dot)``.  The common case (both terms only shift
    right, narrow products) runs one loop without cap compares; saturation (rare) is found from
    the largest code and applied afterwards (then the next dot is recomputed), so the element loop
    has no data-dependent branch."""
    n_ovf = np.int64(0)
    qmax = np.int64(0)
    tot = np.int64(0)
    if t1[1] == 0 and t2[1] == 0 and narrow:  # C, K, h, Md below 2**32 (prepare_int): 32x32->64 multiplies
        for i in range(npad):
            hv = h[k, i] & MASK32
            S = (((C & MASK32) * hv) >> t1[0]) + ((((K & MASK32) * hv) * m2[s, i]) >> t2[0])
            q = rshift_round_pos_nb(S, sr, mode)
            qmax = max(qmax, q)
            h[k, i] = q
            tot += ((q & MASK32) * (md[s_next, i] & MASK32)) >> sd
    else:
        for i in range(npad):
            hv = h[k, i]
            S = align_shifted_nb(C * hv, t1[0], t1[1], t1[2]) + align_shifted_nb(K * hv * m2[s, i], t2[0], t2[1], t2[2])
            q = rshift_round_pos_nb(S, sr, mode)
            qmax = max(qmax, q)
            h[k, i] = q
        tot = _dot(h, k, md, s_next, sd, npad, narrow)
    if qmax > kpos:  # rare: saturate and count outside the vector loop
        for i in range(npad):
            if h[k, i] > kpos:
                h[k, i] = kpos
                n_ovf += 1
        tot = _dot(h, k, md, s_next, sd, npad, narrow)
    return n_ovf, tot


@njit(cache=True, inline="always")
def spike_int_nb(h, k, s, t, tot, s_next, md, m2, sd, e_min, recip, narrow, dp, h_p, C_tab, G_tab, rec):
    """One spike of IP ``k`` (row of ``h`` (GROUP, Np) int64 codes) at input position ``s``, step
    ``t``, given ``tot`` = :func:`_dot` of h and row ``s``: h updated in place, the step record
    (layout ``R_*``, as :func:`fixedpoint.datapath.step_nb` writes it) into ``rec``; returns the
    dot of the new h and row ``s_next`` (the next spike's)."""
    npad = md.shape[1]
    F = dp[D_ACC_FRAC]
    R = dp[D_NORM_BITS]
    Qb = dp[D_RECIP_BITS]
    a_hi, a_lo, ovf = finish_nb(np.int64(0), tot >> 32, tot & MASK32, dp[D_ACC_WIDTH], dp[D_ACC_OVF])
    sig_r, exp_r = normalise_nb(a_hi, a_lo, F, R)
    record_dot_nb(rec, a_hi, a_lo, ovf, sig_r, exp_r)
    if sig_r == 0:
        return _dot(h, k, md, s_next, sd, npad, narrow)
    Y = recip[sig_r - (np.int64(1) << (R - 1))]  # = reciprocal_nb(sig_r, ...): the primitive's own table
    K, eK = coefficient_nb(G_tab[t], Y, exp_r, dp[D_G_BITS], Qb, R, dp[D_COEF_BITS])
    rec[R_Y] = Y
    rec[R_K] = K
    rec[R_EXP_K] = eK
    Fh = h_p[P_FRAC_BITS]
    Fu = dp[D_UPD_FRAC]
    t1 = align_shifts(-Fh - dp[D_C_BITS], Fu)
    t2 = align_shifts(eK - Fh + e_min, Fu)
    kpos = (np.int64(1) << h_p[P_WIDTH]) - 1
    n_ovf, nxt = _update(h, k, m2, s, npad, C_tab[t], K, t1, t2, Fu - Fh, dp[D_H_ROUND], kpos, md, s_next, sd, narrow)
    rec[R_H_OVF] = n_ovf
    return nxt


@njit(cache=True)
def dot_int_nb(h, k, md, s, sd, narrow):
    """:func:`_dot` (the accumulator sum before ``finish_nb``) for callers outside the kernel."""
    return _dot(h, k, md, s, sd, md.shape[1], narrow)


@njit(cache=True, parallel=True)
def qsbs_layer_int(xw, idx, md, m2, h0, sd, e_min, recip, n_out, dp, h_p, C_tab, G_tab, seed, first_pattern,
                   layer_index, n_t, out, counters, bad, chunk):
    """One quantized SbS layer (integer update) for all patterns and IPs; the contract of
    :func:`sbs_model.quant_nb.qsbs_layer` (``out`` (n, N, n_ip) codes, per-job ``counters``,
    ``bad``) with the arrays of :func:`prepare_int`."""
    n_pat = xw.shape[0]
    n_ip, s_len = idx.shape
    npad = md.shape[1]
    jobs = n_pat * n_ip
    n_chunks = (jobs + chunk - 1) // chunk
    narrow = md.max() < (np.int64(1) << 32)
    for ck in prange(n_chunks):
        cum, r32, rth, bucket = ip_buffers(s_len, n_t)
        spk = np.empty((GROUP, n_t), dtype=np.int64)
        h = np.empty((GROUP, npad), dtype=np.int64)
        ok = np.empty(GROUP, dtype=np.bool_)
        tot = np.zeros(GROUP, dtype=np.int64)
        rec = np.zeros(REC_LEN, dtype=np.int64)
        start = ck * chunk
        stop = min(jobs, start + chunk)
        for g0 in range(start, stop, GROUP):
            m = min(GROUP, stop - g0)
            for k in range(m):
                job = g0 + k
                b = job // n_ip
                ip = job - b * n_ip
                ok[k] = prepare_ip_fast(xw, b, idx, ip, cum, seed, first_pattern + b, layer_index, r32, rth, bucket,
                                        spk[k])
                if not ok[k]:
                    bad[job] = 1
                for i in range(npad):
                    h[k, i] = h0[i]
                tot[k] = _dot(h, k, md, spk[k, 0], sd, npad, narrow)
            for t in range(n_t):
                tn = t + 1 if t + 1 < n_t else t
                for k in range(m):
                    if ok[k]:
                        tot[k] = spike_int_nb(h, k, spk[k, t], t, tot[k], spk[k, tn], md, m2, sd, e_min, recip, narrow,
                                              dp, h_p, C_tab, G_tab, rec)
                        cnt = counters[g0 + k]
                        if rec[R_ACC_OVF] > 0:
                            cnt[C_ACC_OVF_SPIKES] += 1
                            cnt[C_ACC_OVF] += rec[R_ACC_OVF]
                        if rec[R_SIG_R] == 0:
                            cnt[C_IGNORED] += 1
                        cnt[C_H_OVF] += rec[R_H_OVF]
            for k in range(m):
                job = g0 + k
                if not ok[k]:
                    continue
                counters[job, C_SPIKES] += n_t
                b = job // n_ip
                ip = job - b * n_ip
                for i in range(n_out):
                    out[b, i, ip] = h[k, i]


_CACHE: dict = {}


def _prepared(ql: QLayer) -> IntFastLayer | None:
    key = id(ql)
    if key not in _CACHE or _CACHE[key][0] is not ql:
        _CACHE[key] = (ql, prepare_int(ql))
    return _CACHE[key][1]


def run_quant_layer_int(ql: QLayer, xw: np.ndarray, seed: int, first_pattern: int):
    """:func:`sbs_model.quant_nb.run_quant_layer` on this kernel (ValueError if it does not apply)."""
    p = _prepared(ql)
    if p is None:
        raise ValueError(f"layer {ql.index}: the vectorised integer kernel does not apply to datapath {ql.dp}")
    return run_layer_kernel(ql, xw, first_pattern, lambda x, idx, out, cnt, bad, chunk: qsbs_layer_int(
        x, idx, p.md, p.m2, p.h0, np.int64(p.sd), np.int64(p.e_min), p.recip, np.int64(ql.layer.out_channels),
        ql.dp.nb, ql.H.nb, ql.tables.C, ql.tables.G, np.uint64(seed), np.uint64(first_pattern), np.uint64(ql.index),
        np.int64(ql.layer.spikes), out, cnt, bad, chunk))
