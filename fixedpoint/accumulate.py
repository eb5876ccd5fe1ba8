"""Align-and-accumulate: ``A = sum_i floor(P_i * 2**(E_i + F))`` in an unsigned ``uqI.F`` register.

Each product ``P_i * 2**E_i`` (from :mod:`fixedpoint.product`) is shifted onto the accumulator
grid ``2**-F`` and truncated (floor: bits below ``2**-F`` are dropped, through
``rshift_round``), then the terms are added.  Register width ``w = I + F``, 1..64 bits.

Overflow (``overflow``): ``wrap`` -> ``A = S mod 2**w``; ``saturate`` -> ``A = min(S, 2**w - 1)``
where S is the exact sum of the aligned terms.  All terms are non-negative, so both results
(and the overflow count) are independent of the order of summation: an L-lane adder tree of
w-bit wrapping adders, or of saturating adders, gives the same A as a sequential loop.

Overflow count ``ovf = min(floor(S / 2**w), 2**31 - 1)``: 0 means no overflow; for ``wrap`` it is
the number of times the register wrapped.

Limits: ``P_i < 2**62``; at most 2**24 terms per sum (the numba kernel keeps the exact sum as
three int64 pieces ``top*2**64 + mid*2**32 + lo``, each term split branch-free).

A is returned as uint64 by the numpy version; the numba version returns two int64 limbs
``(a_hi, a_lo)`` with ``A = a_hi * 2**32 + a_lo`` (``a_lo < 2**32``) so that numba never mixes
uint64 with int64; :func:`join_limbs` converts.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from fixedpoint.rounding import TRUNC, rshift_round

OVF_CAP = (1 << 31) - 1
MAX_TERMS = 1 << 24
MASK32 = (1 << 32) - 1
OVERFLOW_CODES = {"saturate": 0, "wrap": 1}


def overflow_code(name) -> int:
    """'saturate' -> 0, 'wrap' -> 1 (ValueError otherwise)."""
    if isinstance(name, (int, np.integer)) and int(name) in (0, 1):
        return int(name)
    if name not in OVERFLOW_CODES:
        raise ValueError(f"accumulator overflow {name!r}; allowed: saturate, wrap")
    return OVERFLOW_CODES[name]


def _check_width(int_bits: int, frac_bits: int) -> int:
    w = int(int_bits) + int(frac_bits)
    if not 1 <= w <= 64:
        raise ValueError(f"accumulator width int_bits + frac_bits = {w} out of range 1..64")
    return w


def aligned_terms(P, E, frac_bits: int) -> np.ndarray:
    """Exact aligned terms ``floor(P * 2**(E + F))`` as a Python-int object array (the reference)."""
    P = np.asarray(P, dtype=np.int64)
    E = np.asarray(E, dtype=np.int64)
    P, E = np.broadcast_arrays(P, E)
    if np.any(P < 0):
        raise ValueError("accumulate: products must be non-negative")
    sh = E + np.int64(frac_bits)  # > 0: left shift (exact); <= 0: truncating right shift
    right = rshift_round(P, np.maximum(-sh, 1), TRUNC).astype(object)
    left = P.astype(object) * (2 ** np.maximum(sh, 0).astype(object))
    return np.where(sh > 0, left, np.where(sh == 0, P.astype(object), right))


def accumulate(P, E, int_bits: int, frac_bits: int, overflow="wrap"):
    """Sum over the last axis of the aligned products into ``uq{int_bits}.{frac_bits}``.

    Returns ``(A, ovf)``: A uint64 (array over the leading axes), ovf int64 overflow count.
    """
    w = _check_width(int_bits, frac_bits)
    ovc = overflow_code(overflow)
    terms = aligned_terms(P, E, frac_bits)
    if terms.ndim == 0:
        terms = terms.reshape(1)
    if terms.shape[-1] > MAX_TERMS:
        raise ValueError(f"accumulate: at most {MAX_TERMS} terms per sum")
    S = terms.sum(axis=-1) if terms.shape[-1] else np.zeros(terms.shape[:-1], dtype=object)
    S = np.asarray(S, dtype=object)
    mod = 1 << w
    ovf = np.vectorize(lambda s: min(int(s) >> w, OVF_CAP), otypes=[np.int64])(S)
    if ovc == 1:
        A = np.vectorize(lambda s: int(s) % mod, otypes=[object])(S)
    else:
        A = np.vectorize(lambda s: min(int(s), mod - 1), otypes=[object])(S)
    return np.asarray(A, dtype=object).astype(np.uint64), ovf


def join_limbs(a_hi, a_lo) -> np.ndarray:
    """``a_hi * 2**32 + a_lo`` as uint64 (numba limbs -> numpy accumulator value)."""
    return (np.asarray(a_hi, dtype=np.int64).astype(np.uint64) << np.uint64(32)) | np.asarray(
        a_lo, dtype=np.int64).astype(np.uint64)


def split_limbs(A):
    """uint64 accumulator values -> int64 limbs ``(a_hi, a_lo)``."""
    A = np.asarray(A, dtype=np.uint64)
    return (A >> np.uint64(32)).astype(np.int64), (A & np.uint64(MASK32)).astype(np.int64)


@njit(cache=True, inline="always")
def term_pieces_nb(P, E, frac_bits):
    """Aligned term ``T = floor(P*2**(E+F))`` split as ``T = top*2**64 + mid*2**32 + lo``.

    ``lo, mid < 2**32``; ``top`` capped at OVF_CAP.  ``0 <= P < 2**62``.  Branch-free (selects
    only) and inlined, so LLVM vectorises the accumulate loop (sums of the pieces: no saturation
    inside the loop; ``finish_nb`` caps).
    """
    s = E + frac_bits
    Pp = P >> min(max(-s, 0), 63)  # the truncating right shift (floor); P >= 0
    b = max(s, 0)                  # left shift of Pp
    bb = min(b, 32)
    lo = (Pp & (MASK32 >> bb)) << bb
    c = min(max(b - 32, 0), 32)
    x = Pp >> max(32 - b, 0)
    mid = (x & (MASK32 >> c)) << c
    d = b - 64
    dd = min(max(d, 0), 31)
    t_right = Pp >> min(max(-d, 0), 63)
    big = (d > 31) | (Pp > (OVF_CAP >> dd))
    t_left = OVF_CAP if big else (Pp << dd)
    top = t_left if ((d > 0) & (Pp > 0)) else t_right
    return top, mid, lo


@njit(cache=True)
def finish_nb(top, mid, lo, width, overflow):
    """Exact sum ``top*2**64 + mid*2**32 + lo`` (top capped) -> ``(a_hi, a_lo, ovf)`` after wrap
    (overflow=1) or saturate (0) into a ``width``-bit register."""
    mid += lo >> 32
    lo &= MASK32
    top += mid >> 32
    mid &= MASK32
    if top > OVF_CAP:
        top = np.int64(OVF_CAP)
    if width >= 32:
        k = width - 32  # 0..32 bits of mid belong to the register
        a_hi = mid & ((np.int64(1) << k) - 1)
        a_lo = lo
        sh = 64 - width
        if top > (OVF_CAP >> sh):
            ovf = np.int64(OVF_CAP)
        else:
            ovf = (top << sh) + (mid >> k)
    else:
        a_hi = np.int64(0)
        a_lo = lo & ((np.int64(1) << width) - 1)
        if top > 0 or mid > (OVF_CAP >> (32 - width)):
            ovf = np.int64(OVF_CAP)
        else:
            ovf = (mid << (32 - width)) + (lo >> width)
    if ovf > OVF_CAP:
        ovf = np.int64(OVF_CAP)
    if overflow == 0 and ovf > 0:
        if width >= 32:
            a_hi = (np.int64(1) << (width - 32)) - 1
            a_lo = np.int64(MASK32)
        else:
            a_lo = (np.int64(1) << width) - 1
    return a_hi, a_lo, ovf


@njit(cache=True)
def accumulate_nb(P, E, frac_bits, width, overflow):
    """Numba twin of :func:`accumulate` for one 1-D row: returns ``(a_hi, a_lo, ovf)`` int64."""
    top = np.int64(0)
    mid = np.int64(0)
    lo = np.int64(0)
    for i in range(P.shape[0]):
        t, m, l = term_pieces_nb(P[i], E[i], frac_bits)
        top += t  # each t <= OVF_CAP < 2**31 and at most 2**24 terms: no int64 overflow
        mid += m
        lo += l
    return finish_nb(top, mid, lo, width, overflow)
