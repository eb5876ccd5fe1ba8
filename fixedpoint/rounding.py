"""The one place where a right shift loses bits: every rounding in the project goes through here.

All functions work on signed 64-bit integers.  A value ``v`` shifted right by ``s`` bits with
rounding mode ``mode`` is the integer nearest to ``v / 2**s`` under that mode:

* ``TRUNC`` (0): toward zero (for non-negative values this is floor, i.e. dropping bits);
* ``RNE``   (1): to nearest, ties to even;
* ``RNA``   (2): to nearest, ties away from zero ("round half away").

``s <= 0`` shifts left (exact).  Operands must satisfy ``|v| < 2**62`` and the result of a left
shift must fit in 62 bits; shifts of 63 or more bits to the right give 0 (every mode, because
``|v| < 2**62 <= 2**(s-1)``).

``rshift_round`` is the numpy version (any broadcastable shapes), ``rshift_round_nb`` the numba
scalar version used inside kernels; tests check that they agree on every input class.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit
from numba.core import types
from numba.extending import intrinsic

TRUNC = 0
RNE = 1
RNA = 2

ROUNDING_MODES = {"trunc": TRUNC, "rne": RNE, "rna": RNA}
ROUNDING_NAMES = {v: k for k, v in ROUNDING_MODES.items()}


def rounding_code(mode: str | int) -> int:
    """Rounding mode name (``trunc``, ``rne``, ``rna``) or code -> code; ValueError otherwise."""
    if isinstance(mode, (int, np.integer)) and int(mode) in ROUNDING_NAMES:
        return int(mode)
    if isinstance(mode, str) and mode.lower() in ROUNDING_MODES:
        return ROUNDING_MODES[mode.lower()]
    raise ValueError(f"rounding: unknown mode {mode!r}; allowed: {', '.join(ROUNDING_MODES)}")


def rshift_round(v, s, mode: int | str = TRUNC) -> np.ndarray:
    """``round(v / 2**s)`` under ``mode`` for int64 arrays ``v`` and shift amounts ``s``."""
    mode = rounding_code(mode)
    v = np.asarray(v, dtype=np.int64)
    s = np.asarray(s, dtype=np.int64)
    v, s = np.broadcast_arrays(v, s)
    neg = v < 0
    a = np.where(neg, -v, v)
    left = s <= 0
    big = s >= 63
    sr = np.clip(s, 1, 62)
    q = a >> sr
    rem = a - (q << sr)
    half = np.int64(1) << (sr - 1)
    if mode == TRUNC:
        up = np.zeros(q.shape, dtype=bool)
    elif mode == RNE:
        up = (rem > half) | ((rem == half) & ((q & 1) == 1))
    else:
        up = rem >= half
    r = q + up.astype(np.int64)
    r = np.where(big, 0, r)
    r = np.where(left, a << np.clip(-s, 0, 62), r)
    return np.where(neg, -r, r)


@njit(cache=True)
def rshift_round_nb(v, s, mode):
    """Numba scalar twin of :func:`rshift_round` (int64 in, int64 out)."""
    v = np.int64(v)
    s = np.int64(s)
    neg = v < 0
    a = -v if neg else v
    if s <= 0:
        r = a << (-s)
    elif s >= 63:
        r = np.int64(0)
    else:
        q = a >> s
        rem = a - (q << s)
        half = np.int64(1) << (s - 1)
        r = q
        if mode == RNE:
            if rem > half or (rem == half and (q & 1) == 1):
                r = q + 1
        elif mode == RNA:
            if rem >= half:
                r = q + 1
    return -r if neg else r


def bit_length(v) -> np.ndarray:
    """Number of bits of non-negative int64 values (0 for 0): position of the leading one + 1."""
    v = np.asarray(v, dtype=np.int64)
    if np.any(v < 0):
        raise ValueError("bit_length: values must be non-negative")
    out = np.zeros(v.shape, dtype=np.int64)
    x = v.copy()
    for step in (32, 16, 8, 4, 2, 1):
        m = x >= (np.int64(1) << step)
        out = out + np.where(m, step, 0)
        x = np.where(m, x >> step, x)
    return out + (x > 0)


@intrinsic
def _ctlz64(typingctx, x):
    """LLVM ``ctlz`` on an int64 (64 for 0): one LZCNT instruction, no loop, no branch."""
    sig = types.int64(types.int64)

    def codegen(context, builder, signature, args):
        v = context.cast(builder, args[0], signature.args[0], types.int64)
        return builder.ctlz(v, ir.Constant(ir.IntType(1), 0))

    return sig, codegen


@njit(cache=True, inline="always")
def bit_length_nb(v):
    """Numba scalar twin of :func:`bit_length` for a non-negative int64 (``64 - ctlz(v)``)."""
    return np.int64(64) - _ctlz64(np.int64(v))


@njit(cache=True, inline="always")
def rshift_round_pos_nb(v, s, mode):
    """:func:`rshift_round_nb` for ``0 <= v < 2**62`` and ``0 <= s <= 62``, branch-free so that a
    loop of it vectorises: ``(v + bias) >> s`` with ``bias`` 0 (trunc), ``2**(s-1)`` (rna) or
    ``2**(s-1) - 1 + bit s of v`` (rne: a tie carries only into an odd quotient).  Tested equal to
    :func:`rshift_round_nb` on every mode, shift and tie class."""
    half = (np.int64(1) << s) >> 1
    if mode == RNE:
        b = half - 1 + ((v >> s) & 1) if s > 0 else np.int64(0)
    elif mode == RNA:
        b = half
    else:
        b = np.int64(0)
    return (v + b) >> s
