"""The h update of one accepted spike, exact on integers (``int``) or in float32 (``float32``).

Definition (docs/algorithm.md, "Spikes and the h update"): ``h_new_i = c_t*h_i + (g_t/r)*p_i`` with
``p_i = h_i*w_i`` (the products of :mod:`fixedpoint.product`), ``r = sig_r*2**exp_r`` the
normalised sum, ``c_t = 1/(1+eps_t)``, ``g_t = c_t*eps_t``.

Integer mode (all integers, rounding through ``rshift_round``):

1. Coefficient ``K = G_t * Y`` (``G_t`` in uq0.Fg from the schedule table, ``Y ~ 2**Qb/x`` from
   :mod:`fixedpoint.reciprocal`, ``x = sig_r/2**(R-1)``) with exponent
   ``exp_K = -Fg - Qb - exp_r - (R-1)`` so ``K*2**exp_K ~ g_t/r``; truncated to ``coef_bits``
   significant bits (exponent adjusted).
2. Per element, on the grid ``2**-Fu`` (Fu = ``upd_frac_bits``), each term truncated (floor):
   ``T1 = floor(C_t*sig_h * 2**(exp_h - Fc + Fu))``, ``T2 = floor(K*P_i * 2**(exp_K + E_i + Fu))``.
   An aligned term that would need more than 60 bits is capped at ``2**60``; the datapath
   validation guarantees that such a term already saturates H, so the cap never changes a result.
3. ``h_new_i = encode_parts(T1 + T2, -Fu)`` into H with H's rounding mode, overflow ``saturate``.

Error per step, in ulps of H at the result (for ``sum h = 1``): the two floors lose < ``2**-Fu``
each; the rounding into H loses <= 1/2 ulp (rne) or < 1 ulp (trunc); the relative errors of
G_t (<= 2**-(Fg+1)/g_t), Y (div: <= 2**-Qb relative rne, 2**(1-Qb) trunc), K (< 2**(1-coef_bits)),
r (accumulator floors < N*2**-F_acc absolute, normaliser < 2**(1-R) relative) scale the second
term ``g_t*p_i/r <= g_t``.  ``tests/test_datapath.py`` checks the resulting bound on ``sum h``.

Scaled mode (:mod:`fixedpoint.scaled`): h is kept divided by a per-layer scale known in advance, so
``T1`` is h itself on the grid (``align(sig_h, exp_h, Fu)``, no multiply), ``T2`` is as above with
``G_t`` replaced by ``A_t`` (the scaled schedule's table), and the sum is multiplied by
``C_t`` (uq2.Fc; a power of two except at the last spike) before the one rounding into H:
``encode_parts(min(T1 + T2, 2**(Fu+vb+Fc)) * C_t, -(Fu + Fc))``.

float32 mode (the paper's): h decoded to float32 exactly, ``p32 = float32(P*2**E)`` (exact when P
has <= 24 bits: prod_bits 24), ``r32 = float32(sig_r*2**exp_r)`` (exact, R <= 24),
``q = eps32_t / r32``, ``coef = c32_t * q``, ``h_new = c32_t*h32 + coef*p32`` - every operation one
IEEE float32 operation, round to nearest even (numpy float32 scalars; numba float32, no fastmath
so no fused multiply-add) - then the float32 value is split exactly into (sig, exp) and encoded
into H with H's rounding (paper: E5M11 with zero code, trunc; below range -> 0) and ``saturate``.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from fixedpoint.rounding import TRUNC, bit_length, bit_length_nb, rshift_round, rshift_round_nb, rshift_round_pos_nb

ALIGN_CAP = np.int64(1) << 60


def coefficient(G, Y, exp_r, g_bits: int, recip_bits: int, norm_bits: int, coef_bits: int):
    """``(K, exp_K)``: ``G*Y`` truncated to ``coef_bits`` bits, value ``K*2**exp_K ~ g/r``."""
    K = np.asarray(G, dtype=np.int64) * np.asarray(Y, dtype=np.int64)
    e = -int(g_bits) - int(recip_bits) - np.asarray(exp_r, dtype=np.int64) - (int(norm_bits) - 1)
    sh = np.maximum(bit_length(K) - int(coef_bits), 0)
    return rshift_round(K, sh, TRUNC), (e + sh).astype(np.int64)


@njit(cache=True, inline="always")
def coefficient_nb(G, Y, exp_r, g_bits, recip_bits, norm_bits, coef_bits):
    """Numba scalar twin of :func:`coefficient` (``G, Y >= 0``, as there: ``K >= 0`` has at most 63
    bits, so ``0 < sh <= 62`` and the truncation is :func:`rshift_round_pos_nb`'s plain shift)."""
    K = np.int64(G) * np.int64(Y)
    e = -g_bits - recip_bits - exp_r - (norm_bits - 1)
    sh = bit_length_nb(K) - coef_bits
    if sh > 0:
        return rshift_round_pos_nb(K, sh, TRUNC), e + sh
    return K, e


def align(v, e, upd_frac_bits: int) -> np.ndarray:
    """``floor(v * 2**(e + Fu))`` for non-negative int64 v, capped at ``2**60``."""
    v = np.asarray(v, dtype=np.int64)
    sh = np.asarray(e, dtype=np.int64) + int(upd_frac_bits)
    over = (sh > 0) & (v > 0) & (bit_length(v) + sh > 60)
    out = rshift_round(np.where(over, 0, v), np.where(over, 0, -sh), TRUNC)
    return np.where(over, ALIGN_CAP, out)


@njit(cache=True)
def align_nb(v, e, upd_frac_bits):
    """Numba scalar twin of :func:`align`."""
    sh = e + upd_frac_bits
    if sh > 0 and v > 0 and bit_length_nb(v) + sh > 60:
        return ALIGN_CAP
    return rshift_round_nb(v, -sh, TRUNC)



@njit(cache=True, inline="always")
def align_shifts(e, upd_frac_bits):
    """:func:`align` with a fixed exponent ``e`` as int64 ``(rs, ls, lim)`` for
    :func:`align_shifted_nb`: right shift ``rs``, left shift ``ls`` and the largest ``v`` that is
    not capped (numba and Python)."""
    sh = np.int64(e) + np.int64(upd_frac_bits)
    if sh <= 0:
        return min(-sh, np.int64(63)), np.int64(0), np.int64(0x7FFFFFFFFFFFFFFF)
    ls = min(sh, np.int64(63))
    return np.int64(0), ls, np.int64((1 << 60) - 1) >> ls


@njit(cache=True, inline="always")
def align_shifted_nb(v, rs, ls, lim):
    """:func:`align_nb` for non-negative ``v`` with the shifts of :func:`align_shifts` (branch-free
    in a loop: one compare, two shifts).  ``v << ls >= 2**60  <=>  v > (2**60 - 1) >> ls``."""
    return ALIGN_CAP if v > lim else (v >> rs) << ls

def update_int_sums(sig_h, exp_h, P, E, C, c_bits: int, K, exp_K, upd_frac_bits: int) -> np.ndarray:
    """``T1 + T2`` per element (int64, grid ``2**-Fu``); encode with ``encode_parts(S, -Fu)``."""
    T1 = align(np.asarray(C, dtype=np.int64) * np.asarray(sig_h, dtype=np.int64),
               np.asarray(exp_h, dtype=np.int64) - int(c_bits), upd_frac_bits)
    T2 = align(np.asarray(K, dtype=np.int64) * np.asarray(P, dtype=np.int64),
               np.asarray(exp_K, dtype=np.int64) + np.asarray(E, dtype=np.int64), upd_frac_bits)
    return T1 + T2


@njit(cache=True)
def update_int_sum_nb(sig_h, exp_h, P, E, C, c_bits, K, exp_K, upd_frac_bits):
    """Numba scalar twin of :func:`update_int_sums` for one element."""
    return align_nb(C * sig_h, exp_h - c_bits, upd_frac_bits) + align_nb(K * P, exp_K + E, upd_frac_bits)


def update_scaled_sums(sig_h, exp_h, P, E, K, exp_K, upd_frac_bits: int) -> np.ndarray:
    """``scaled`` update (:mod:`fixedpoint.scaled`): ``U = align(sig_h, exp_h) + align(K*P, exp_K + E)``
    per element (int64, grid ``2**-Fu``): h itself plus the update term, no ``C*h`` product."""
    U1 = align(np.asarray(sig_h, dtype=np.int64), np.asarray(exp_h, dtype=np.int64), upd_frac_bits)
    U2 = align(np.asarray(K, dtype=np.int64) * np.asarray(P, dtype=np.int64),
               np.asarray(exp_K, dtype=np.int64) + np.asarray(E, dtype=np.int64), upd_frac_bits)
    return U1 + U2


@njit(cache=True)
def update_scaled_sum_nb(sig_h, exp_h, P, E, K, exp_K, upd_frac_bits):
    """Numba scalar twin of :func:`update_scaled_sums` for one element."""
    return align_nb(sig_h, exp_h, upd_frac_bits) + align_nb(K * P, exp_K + E, upd_frac_bits)


def scale_sums(U, C, cap_bits: int) -> np.ndarray:
    """``min(U, 2**cap_bits) * C``: the ``scaled`` update's common factor ``C_t`` (uq2.Fc) applied
    to the sums; encode with ``encode_parts(V, -(Fu + Fc))``.  ``cap_bits = Fu + vb + Fc`` (every
    value of H is below ``2**vb``): a capped sum saturates H either way (``C >= 1``)."""
    return np.minimum(np.asarray(U, dtype=np.int64), np.int64(1) << int(cap_bits)) * np.int64(C)


@njit(cache=True, inline="always")
def scale_sum_nb(U, C, cap_bits):
    """Numba scalar twin of :func:`scale_sums`."""
    return min(U, np.int64(1) << cap_bits) * C


def parts_to_float32(sig, exp) -> np.ndarray:
    """``sig * 2**exp`` as float32 (exact when sig has <= 24 bits and the value is in range)."""
    return np.ldexp(np.asarray(sig, dtype=np.float64), np.asarray(exp, dtype=np.int64)).astype(np.float32)


def float32_to_parts(x):
    """Exact ``(sig, exp)`` int64 of finite float32 values: ``x = sig * 2**exp``, sig < 2**24."""
    x = np.asarray(x, dtype=np.float32).astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError("float32_to_parts: values must be finite")
    m, e = np.frexp(x)
    sig = np.ldexp(m, 24).astype(np.int64)
    return sig, np.where(sig == 0, 0, e.astype(np.int64) - 24)


@njit(cache=True)
def float32_to_parts_nb(x):
    """Numba scalar twin of :func:`float32_to_parts` (finite input)."""
    m, e = math.frexp(np.float64(x))
    sig = np.int64(math.ldexp(m, 24))
    if sig == 0:
        return np.int64(0), np.int64(0)
    return sig, np.int64(e) - 24


def update_float32(h32, p32, r32, eps32, c32) -> np.ndarray:
    """Paper update in numpy float32: ``c*h + (c*(eps/r))*p`` with every operation in float32."""
    h32 = np.asarray(h32, dtype=np.float32)
    p32 = np.asarray(p32, dtype=np.float32)
    r32, eps32, c32 = np.float32(r32), np.float32(eps32), np.float32(c32)
    q = np.float32(eps32 / r32)
    coef = np.float32(c32 * q)
    a = (c32 * h32).astype(np.float32)
    b = (coef * p32).astype(np.float32)
    return (a + b).astype(np.float32)


@njit(cache=True)
def update_float32_nb(h32, p32, r32, eps32, c32):
    """Numba scalar twin of :func:`update_float32` (float32 operands, float32 operations)."""
    q = np.float32(eps32 / r32)
    coef = np.float32(c32 * q)
    a = np.float32(c32 * h32)
    b = np.float32(coef * p32)
    return np.float32(a + b)
