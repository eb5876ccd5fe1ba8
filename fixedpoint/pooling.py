"""Pooling of h codes and integer spike-sampler windows.

Average pooling of k codes of format H: the exact sum ``S * 2**emin`` of the decoded parts
(``emin`` the smallest exponent among nonzero codes), divided by k and rounded once into H with
H's rounding mode (overflow ``saturate``).  Division: ``q = floor(S * 2**G / k)`` with a sticky
bit for the remainder, encoded as ``(2q + sticky) * 2**(emin - G - 1)``; with
``G = max(1, M + ceil(log2 k) + 2 - bit_length(S))`` (M = mantissa bits of a float H, 0 for fixed)
every bit down to half an ulp of the result is exact, so the rounding equals the rounding of the
exact rational (for k a power of two it is the plain shift).  Limits: ``S * 2**G < 2**61``
(H's exponent span + significand bits + log2 k + 2 <= 60; e5m11z with k = 4: 45 bits).

Max pooling: the largest code (codes of unsigned formats are monotonic in value).

Sampler windows (for ``fixedpoint.rng.sample_index_int``): h codes ->
``floor(h * 2**sampler_frac_bits)`` (``fmt.to_fixed``, trunc); layer-0 pixels -> the raw 8-bit
values 0..255 as int64.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from fixedpoint.formats import decode_parts_nb, encode_parts_nb, parse_format
from fixedpoint.rounding import TRUNC, bit_length_nb, rshift_round_nb

SUM_LIMIT_BITS = 58


def _man_bits(fmt) -> int:
    return int(fmt.man_bits) if fmt.kind == "float" else 0


def pool_avg(codes, fmt, rounding="rne") -> np.ndarray:
    """Average of the codes over the last axis (k = its length), rounded into ``fmt``."""
    fmt = parse_format(fmt)
    codes = np.asarray(codes, dtype=np.int64)
    k = codes.shape[-1]
    if k < 1:
        raise ValueError("pool_avg: need at least one code per window (k >= 1)")
    sig, exp = fmt.decode_parts(codes)
    flat_s = sig.reshape(-1, k)
    flat_e = exp.reshape(-1, k)
    M = _man_bits(fmt)
    lg = (k - 1).bit_length()
    zs, ze = [], []
    for s_row, e_row in zip(flat_s, flat_e):
        nz = s_row != 0
        if not nz.any():
            zs.append(0)
            ze.append(0)
            continue
        emin = int(e_row[nz].min())
        S = sum(int(s) << (int(e) - emin) for s, e in zip(s_row[nz], e_row[nz]))
        G = max(1, M + lg + 2 - S.bit_length())
        if (S << G).bit_length() > SUM_LIMIT_BITS + 3:
            raise ValueError(f"pool_avg: exact sum of {k} codes of {fmt} needs more than 61 bits")
        q, rem = divmod(S << G, k)
        zs.append(2 * q + (rem != 0))
        ze.append(emin - G - 1)
    out = fmt.encode_parts(np.array(zs, dtype=np.int64), np.array(ze, dtype=np.int64), rounding, "saturate")
    return out.reshape(codes.shape[:-1])


@njit(cache=True, inline="always")
def pool_avg_nb(codes, p, man_bits, rounding):
    """Numba twin of :func:`pool_avg` for one 1-D window: ``(code, flag)``."""
    k = codes.shape[0]
    emin = np.int64(1) << 40
    for j in range(k):
        s, e = decode_parts_nb(codes[j], p)
        if s != 0 and e < emin:
            emin = e
    S = np.int64(0)
    for j in range(k):
        s, e = decode_parts_nb(codes[j], p)
        if s != 0:
            S += s << (e - emin)
    if S == 0:
        return encode_parts_nb(np.int64(0), np.int64(0), p, rounding, 0)
    lg = bit_length_nb(np.int64(k - 1))
    G = max(np.int64(1), man_bits + lg + 2 - bit_length_nb(S))
    num = S << G
    q = num // k
    sticky = np.int64(1) if num - q * k != 0 else np.int64(0)
    return encode_parts_nb(2 * q + sticky, emin - G - 1, p, rounding, 0)


def pool_max(codes) -> np.ndarray:
    """Max pooling over the last axis: the largest code."""
    return np.asarray(codes, dtype=np.int64).max(axis=-1)


@njit(cache=True)
def pool_max_nb(codes):
    """Numba twin of :func:`pool_max` for one 1-D window."""
    m = codes[0]
    for j in range(1, codes.shape[0]):
        if codes[j] > m:
            m = codes[j]
    return m


def window_from_h(codes, fmt, sampler_frac_bits: int, fast: bool = False) -> np.ndarray:
    """Integer sampler window ``floor(h * 2**sampler_frac_bits)`` (int64) from h codes
    (``fast``: the numba twin, :meth:`fixedpoint.formats.Format.to_fixed_fast`, same integers)."""
    fmt = parse_format(fmt)
    if fast:
        return fmt.to_fixed_fast(codes, sampler_frac_bits, "trunc")
    return fmt.to_fixed(codes, sampler_frac_bits, "trunc")


@njit(cache=True)
def window_value_nb(code, p, sampler_frac_bits):
    """Numba twin of :func:`window_from_h` for one code."""
    s, e = decode_parts_nb(code, p)
    return rshift_round_nb(s, -(e + sampler_frac_bits), TRUNC)


def window_from_pixels(pixels) -> np.ndarray:
    """Layer-0 sampler window: raw 8-bit pixel values 0..255 as int64."""
    a = np.asarray(pixels)
    if a.dtype.kind not in "iub" or (a.size and (a.min() < 0 or a.max() > 255)):
        raise ValueError("window_from_pixels: pixels must be integers in 0..255")
    return a.astype(np.int64)


__all__ = ["pool_avg", "pool_avg_nb", "pool_max", "pool_max_nb", "window_from_h", "window_value_nb",
           "window_from_pixels"]
