"""Reciprocal of the normalised sum's significand, exact on integers.

Input ``sig_r`` in ``[2**(R-1), 2**R)`` (from :mod:`fixedpoint.normalise`), i.e.
``x = sig_r / 2**(R-1)`` in [1, 2).  Output ``Y ~ 2**Qb / x``, an integer in
``[2**(Qb-1), 2**Qb]`` (units ``2**-Qb``; the value 1/x has Qb fraction bits).  ``sig_r = 0``
(ignored spike) gives 0.

Methods:

* ``div``: ``Y = round(2**(Qb+R-1) / sig_r)`` exactly: ``q2 = floor(2**(Qb+R) / sig_r)`` (one guard
  bit), ``sticky = (remainder != 0)``, then ``rshift_round(2*q2 + sticky, 2, rounding)`` (the guard
  bit is the half bit, the sticky bit tells ties from above-half).  ``trunc`` gives
  ``floor``, ``rne`` the nearest (ties to even).  Needs ``Qb + R <= 61``.
* ``nr``: a table of ``2**L`` initial values (L = ``lut_bits``, ``1 <= L <= R-1``) indexed by the L
  bits below sig_r's leading one: entry j is ``rne(2**Qb / m_j)`` with ``m_j = 1 + (j + 1/2)/2**L``
  the midpoint of the interval; then ``iters`` Newton-Raphson steps ``y <- y*(2 - x*y)``::

      D  = 2**(R+Qb) - sig_r*y          # 2 - x*y exactly, units 2**-(R-1+Qb), D > 0
      D' = trunc(D / 2**(R-1))          # units 2**-Qb
      y  = trunc(y*D' / 2**Qb)          # units 2**-Qb

  Widths: ``R + Qb + 2 <= 62`` and ``2*Qb + 2 <= 62``.

Error bound for ``nr`` in units of the last place of Y (:func:`nr_error_bound_ulps`):
``|Y - 2**Qb/x| <= 2**Qb * d_k`` with ``d_0 = 2**-(L+1) + 2**-Qb`` (table: half an interval
relative, plus half an ulp rounding of the entry) and ``d_{k+1} = d_k**2 + (4 + 2*d_k) * 2**-Qb``
(exact Newton squares the relative error; the two truncations lose less than
``y*2**-Qb + 2**-Qb`` absolute, i.e. ``(4 + 2 d) 2**-Qb`` relative since x < 2).  After at least
one step Y never exceeds ``2**Qb/x`` (exact Newton from either side lands below, truncations only
lower it).  Example: L = 6, Qb = 16, 2 steps -> <= 4.3 ulp; measured max error is in the tests.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from fixedpoint.rounding import RNE, TRUNC, rounding_code, rshift_round, rshift_round_nb

METHODS = {"div": 0, "nr": 1}


def method_code(name) -> int:
    if name not in METHODS:
        raise ValueError(f"reciprocal method {name!r}; allowed: {', '.join(METHODS)}")
    return METHODS[name]


def check_params(norm_bits: int, recip_bits: int, method: str = "div", lut_bits: int = 6, iters: int = 2) -> None:
    """ValueError naming the field when the widths do not fit int64."""
    R, Qb = int(norm_bits), int(recip_bits)
    method_code(method)
    if not 2 <= Qb <= 40:
        raise ValueError(f"recip_bits {Qb} out of range 2..40")
    if method == "div" and Qb + R > 61:
        raise ValueError(f"recip_bits + norm_bits = {Qb + R} must be <= 61 for method 'div'")
    if method == "nr":
        if not 1 <= lut_bits <= min(R - 1, 16):
            raise ValueError(f"lut_bits {lut_bits} out of range 1..{min(R - 1, 16)}")
        if not 0 <= iters <= 8:
            raise ValueError(f"iters {iters} out of range 0..8")
        if R + Qb + 2 > 62 or 2 * Qb + 2 > 62:
            raise ValueError(f"recip_bits {Qb} with norm_bits {R}: need R + Qb + 2 <= 62 and 2*Qb + 2 <= 62")


def div_round(num, den, mode) -> np.ndarray:
    """``round(num / den)`` for non-negative int64 ``num < 2**61`` and ``den > 0`` (numpy)."""
    num = np.asarray(num, dtype=np.int64)
    den = np.asarray(den, dtype=np.int64)
    q2 = (2 * num) // den
    sticky = ((2 * num) % den != 0).astype(np.int64)
    return rshift_round(2 * q2 + sticky, 2, mode)


@njit(cache=True)
def div_round_nb(num, den, mode):
    """Numba scalar twin of :func:`div_round`."""
    q2 = (2 * num) // den
    sticky = np.int64(1) if (2 * num) % den != 0 else np.int64(0)
    return rshift_round_nb(2 * q2 + sticky, 2, mode)


def nr_table(lut_bits: int, recip_bits: int) -> np.ndarray:
    """Initial values ``rne(2**Qb / (1 + (j + 1/2) / 2**L))`` for j in 0..2**L-1 (int64)."""
    L, Qb = int(lut_bits), int(recip_bits)
    j = np.arange(1 << L, dtype=np.int64)
    return div_round(np.full(j.shape, 1 << (Qb + L + 1), dtype=np.int64), (1 << (L + 1)) + 2 * j + 1, RNE)


def nr_error_bound_ulps(lut_bits: int, iters: int, recip_bits: int) -> float:
    """Bound on ``|Y - 2**Qb/x|`` in ulps of Y for method ``nr`` (see the module docstring)."""
    u = 2.0 ** -recip_bits
    d = 2.0 ** -(lut_bits + 1) + u
    for _ in range(iters):
        d = d * d + (4 + 2 * d) * u
    return d / u


def reciprocal(sig_r, norm_bits: int, recip_bits: int, method: str = "div", rounding="rne",
               lut_bits: int = 6, iters: int = 2) -> np.ndarray:
    """Y ~ 2**Qb * 2**(R-1) / sig_r (int64 array); 0 where sig_r == 0."""
    check_params(norm_bits, recip_bits, method, lut_bits, iters)
    R, Qb = int(norm_bits), int(recip_bits)
    sig = np.asarray(sig_r, dtype=np.int64)
    nz = sig != 0
    if np.any(nz & ((sig < (1 << (R - 1))) | (sig >= (1 << R)))):
        raise ValueError(f"reciprocal: sig_r must be 0 or in [2**{R - 1}, 2**{R})")
    s = np.where(nz, sig, 1 << (R - 1))
    if method == "div":
        y = div_round(np.int64(1) << (Qb + R - 1), s, rounding_code(rounding))
    else:
        tab = nr_table(lut_bits, Qb)
        y = tab[(s >> (R - 1 - lut_bits)) & ((1 << lut_bits) - 1)]
        for _ in range(iters):
            D = (np.int64(1) << (R + Qb)) - s * y
            Dp = rshift_round(D, R - 1, TRUNC)
            y = rshift_round(y * Dp, Qb, TRUNC)
    return np.where(nz, y, 0).astype(np.int64)



TABLE_MAX_NORM_BITS = 20


def reciprocal_table(norm_bits: int, recip_bits: int, method: str = "div", rounding="rne", lut_bits: int = 6,
                     iters: int = 2) -> np.ndarray:
    """Every output of :func:`reciprocal`: ``table[sig_r - 2**(R-1)]`` for ``sig_r`` in
    ``[2**(R-1), 2**R)`` (int64, ``2**(R-1)`` entries), so a kernel looks Y up instead of
    dividing.  Only for ``norm_bits <= TABLE_MAX_NORM_BITS`` (8 MB at 20)."""
    R = int(norm_bits)
    if not 1 <= R <= TABLE_MAX_NORM_BITS:
        raise ValueError(f"norm_bits {R} out of range 1..{TABLE_MAX_NORM_BITS} for a reciprocal table")
    sig = np.arange(1 << (R - 1), 1 << R, dtype=np.int64)
    return np.ascontiguousarray(reciprocal(sig, R, recip_bits, method, rounding, lut_bits, iters), dtype=np.int64)

@njit(cache=True)
def reciprocal_nb(sig_r, norm_bits, recip_bits, method, rounding, lut_bits, iters, table):
    """Numba scalar twin of :func:`reciprocal` (method 0 div / 1 nr; ``table`` = :func:`nr_table`)."""
    if sig_r == 0:
        return np.int64(0)
    R = norm_bits
    Qb = recip_bits
    if method == 0:
        return div_round_nb(np.int64(1) << (Qb + R - 1), sig_r, rounding)
    y = table[(sig_r >> (R - 1 - lut_bits)) & ((np.int64(1) << lut_bits) - 1)]
    for _ in range(iters):
        D = (np.int64(1) << (R + Qb)) - sig_r * y
        Dp = rshift_round_nb(D, R - 1, TRUNC)
        y = rshift_round_nb(y * Dp, Qb, TRUNC)
    return y
