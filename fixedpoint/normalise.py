"""Normalise the accumulator: leading-one detection, ``A -> (sig_r, exp_r)``.

One fixed-latency operation (a priority encoder and a barrel shifter in hardware): with
``b = bit_length(A)`` and R = ``norm_bits``, ``sig_r = floor(A / 2**(b - R))`` (the top R bits,
truncating; a left shift when ``b < R``) and ``exp_r = (b - R) - F`` so that
``r = sig_r * 2**exp_r`` and ``sig_r`` lies in ``[2**(R-1), 2**R)``.  R in 2..61.

``A == 0`` gives ``(0, 0)``: r = 0 and the spike is ignored.  This is the datapath form of the
float model's ``r > 1e-10`` test: r is a multiple of ``2**-F``, so for ``F <= 33``
(``2**-33 > 1e-10``) ``A == 0`` holds exactly when ``r <= 1e-10``; for larger F (the paper's
UQ9.55) sums in ``(0, 1e-10]`` are kept rather than ignored (they never occur with weights
``>= 2**-15`` and ``sum h ~ 1``).

A up to 64 bits: values with 63 or 64 bits are first shifted right by 2 (an exact floor; floors
compose: ``floor(floor(A/4)/2**k) = floor(A/2**(k+2))``) so that ``rshift_round`` sees < 2**62.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from fixedpoint.accumulate import split_limbs
from fixedpoint.rounding import TRUNC, bit_length, bit_length_nb, rshift_round, rshift_round_nb

NORM_BITS_MIN, NORM_BITS_MAX = 2, 61


def _check_r(norm_bits: int) -> None:
    if not NORM_BITS_MIN <= int(norm_bits) <= NORM_BITS_MAX:
        raise ValueError(f"norm_bits {norm_bits} out of range {NORM_BITS_MIN}..{NORM_BITS_MAX}")


def normalise(A, frac_bits: int, norm_bits: int):
    """uint64 accumulator values (grid ``2**-frac_bits``) -> ``(sig_r, exp_r)`` int64 arrays."""
    _check_r(norm_bits)
    hi, lo = split_limbs(A)
    bl = np.where(hi > 0, bit_length(hi) + 32, bit_length(lo))
    big = bl > 62
    a = np.where(big, (hi << 30) | (lo >> 2), (hi << 32) | lo)  # hi < 2**30 when not big
    sh = bl - norm_bits
    sig = rshift_round(a, np.where(big, sh - 2, sh), TRUNC)
    exp = np.where(bl == 0, 0, sh - int(frac_bits))
    return sig, exp.astype(np.int64)


@njit(cache=True)
def normalise_nb(a_hi, a_lo, frac_bits, norm_bits):
    """Numba twin of :func:`normalise` on limbs ``A = a_hi*2**32 + a_lo``: ``(sig_r, exp_r)``."""
    if a_hi == 0 and a_lo == 0:
        return np.int64(0), np.int64(0)
    if a_hi > 0:
        bl = bit_length_nb(a_hi) + 32
    else:
        bl = bit_length_nb(a_lo)
    sh = bl - norm_bits
    if bl > 62:
        sig = rshift_round_nb((a_hi << 30) | (a_lo >> 2), sh - 2, TRUNC)
    else:
        sig = rshift_round_nb((a_hi << 32) | a_lo, sh, TRUNC)
    return sig, sh - frac_bits


__all__ = ["normalise", "normalise_nb"]
