"""Approximate product ``p_i = h_i * w_i`` of the SbS dot product, exact on integers.

Operands arrive as (significand, exponent) pairs (``fmt.decode_parts``): value = sig * 2**exp,
sig a non-negative int64.  The product is the exact integer multiply of the significands,
``P = sig_h * sig_w`` with exponent ``E = exp_h + exp_w`` (for an ``m = 0`` weight the
significand is 1 and the multiply is a shift in hardware).

Option ``prod_bits`` (None/0 = exact): if P has more than ``prod_bits`` significant bits it is
rounded to ``prod_bits`` bits with ``rounding`` (``trunc`` default, ``rne``, ``rna``; through
``fixedpoint.rounding.rshift_round``) and E grows by the number of dropped bits; a rounding carry
to ``2**prod_bits`` is renormalised (exactly: the value is then a power of two).  The paper keeps
the product as a float32: ``prod_bits = 24``, ``trunc``.

Limits: ``P < 2**62`` (significand widths summing to at most 62 bits); zero products return
``(0, 0)``.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from fixedpoint.rounding import bit_length, bit_length_nb, rounding_code, rshift_round, rshift_round_nb

PROD_LIMIT_BITS = 62


def product(sig_h, exp_h, sig_w, exp_w, prod_bits: int | None = None, rounding="trunc"):
    """Exact product of (sig, exp) pairs, optionally rounded to ``prod_bits`` significant bits.

    All inputs int64 (broadcasting).  Returns ``(P, E)`` int64 arrays with value ``P * 2**E``.
    """
    mode = rounding_code(rounding)
    sig_h = np.asarray(sig_h, dtype=np.int64)
    sig_w = np.asarray(sig_w, dtype=np.int64)
    if np.any(sig_h < 0) or np.any(sig_w < 0):
        raise ValueError("product: significands must be non-negative (unsigned formats)")
    if np.any(bit_length(sig_h) + bit_length(sig_w) > PROD_LIMIT_BITS):
        raise ValueError(f"product: significand widths must sum to at most {PROD_LIMIT_BITS} bits")
    P = sig_h * sig_w
    E = np.asarray(exp_h, dtype=np.int64) + np.asarray(exp_w, dtype=np.int64)
    P, E = np.broadcast_arrays(P, E)
    P = P.copy()
    E = E.copy()
    if prod_bits:
        if not 1 <= prod_bits <= PROD_LIMIT_BITS:
            raise ValueError(f"product: prod_bits must be in 1..{PROD_LIMIT_BITS} or None, got {prod_bits}")
        sh = np.maximum(bit_length(P) - prod_bits, 0)
        P = rshift_round(P, sh, mode)
        E = E + sh
        carry = P >> prod_bits  # 1 only when rounding carried to 2**prod_bits (a power of two)
        P = P >> carry
        E = E + carry
    E = np.where(P == 0, 0, E)
    return P, E


@njit(cache=True)
def product_nb(sig_h, exp_h, sig_w, exp_w, prod_bits, mode):
    """Numba scalar twin of :func:`product`; ``prod_bits`` 0 means exact.  Returns ``(P, E)``."""
    P = np.int64(sig_h) * np.int64(sig_w)
    if P == 0:
        return np.int64(0), np.int64(0)
    E = np.int64(exp_h) + np.int64(exp_w)
    if prod_bits > 0:
        sh = bit_length_nb(P) - prod_bits
        if sh > 0:
            P = rshift_round_nb(P, sh, mode)
            E += sh
            if (P >> prod_bits) != 0:
                P >>= 1
                E += 1
    return P, E


__all__ = ["product", "product_nb", "PROD_LIMIT_BITS"]
