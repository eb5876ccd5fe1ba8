"""``Normaliser``: accumulator ``A`` -> ``(sig_r, exp_r)`` as :func:`fixedpoint.normalise.normalise`.

Generated from a :class:`fixedpoint.datapath.Datapath`: accumulator ``uqI.F`` (``w = I + F`` bits,
1..64), ``R = dp.norm_bits``.  With ``b = bit_length(A)``: ``sig_r = floor(A * 2**(R - b))``
(the top R bits, truncating; a left shift when ``b < R``), ``exp_r = b - R - F``; ``A == 0``
gives ``(0, 0)`` and the ``zero`` flag (the spike is ignored).

Hardware, fixed latency: a leading-one detector built as a balanced tree of 2:1 priority
merges (:func:`bit_length_expr`, ``ceil(log2 w)`` mux levels, not a ripple chain), then one
barrel shifter ``(A << R) >> b``.

Ports (``lib.stream``):

* ``i``: A, ``w`` bits (``i__payload[w-1:0]``).
* ``o``: struct :attr:`Normaliser.out_layout`, first field in the LSBs: ``sig`` (R bits, unsigned),
  ``exp`` (signed, :attr:`Normaliser.exp_shape`), ``zero`` (1 bit: ``A == 0``).

Pipeline: stage 1 registers A and ``b``, stage 2 the shifted significand and exponent.
:attr:`Normaliser.latency` = 2: an A transferred in cycle ``c`` shows ``o.valid`` in cycle
``c + 2``; one A per cycle; back-pressure stalls both stages (``i.ready = ~o.valid | o.ready``).

``fault`` is for tests only (``"flip_sig0"``: invert bit 0 of ``sig`` when bits 1 and 2 of A
are both 1).
"""
from __future__ import annotations

from types import SimpleNamespace

from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from fixedpoint.datapath import Datapath
from fixedpoint.normalise import NORM_BITS_MAX, NORM_BITS_MIN, normalise
from rtl.checked import CheckedComponent
from rtl.decoder import signed_bits
from sbs_model.hw_cycles import NORMALISER_LATENCY

FAULTS = (None, "flip_sig0")


def leading_one(bits: list):
    """Balanced leading-one tree over ``bits`` (LSB first, length a power of two):
    ``(any, pos)``, ``pos`` the index of the highest 1 (``None`` for one bit: position 0)."""
    if len(bits) == 1:
        return bits[0], None
    h = len(bits) // 2
    a_lo, p_lo = leading_one(bits[:h])
    a_hi, p_hi = leading_one(bits[h:])
    low = a_hi if p_lo is None else Cat(Mux(a_hi, p_hi, p_lo), a_hi)
    return a_lo | a_hi, low


def bit_length_expr(value):
    """Amaranth expression for ``bit_length(value)`` (0 for 0) of an unsigned value of n bits:
    a balanced priority tree of ``ceil(log2 n)`` 2:1 mux levels; result ``range(n + 1)``."""
    n = len(value)
    size = 1
    while size < n:
        size *= 2
    bits = [value[i] for i in range(n)] + [Const(0, 1)] * (size - n)
    any_, pos = leading_one(bits)
    if pos is None:
        return any_
    return Mux(any_, pos + 1, 0)


def exp_bits(acc_width: int, frac_bits: int, norm_bits: int) -> int:
    """Width of the signed ``exp`` field: holds ``b - R - F`` for b in 1..w, and 0."""
    R, F = norm_bits, frac_bits
    return signed_bits(min(1 - R - F, 0), max(acc_width - R - F, 0))


class Normaliser(CheckedComponent):
    """Leading-one normalisation of the accumulator (see module docstring)."""

    latency = NORMALISER_LATENCY

    @staticmethod
    def plan(dp, fault: str | None = None) -> dict:
        """Checked arguments -> the attributes of a Normaliser (ValueError for bad ones)."""
        p = SimpleNamespace()
        if not isinstance(dp, Datapath):
            raise ValueError(f"Normaliser: dp must be a fixedpoint.datapath.Datapath, got {type(dp).__name__}")
        if fault not in FAULTS:
            raise ValueError(f"Normaliser: fault must be one of {FAULTS}, got {fault!r}")
        I, F = dp.acc
        R = int(dp.norm_bits)
        if not NORM_BITS_MIN <= R <= NORM_BITS_MAX:
            raise ValueError(f"Normaliser: norm_bits {R} out of range {NORM_BITS_MIN}..{NORM_BITS_MAX}")
        p.dp = dp
        p.fault = fault
        p.acc_width = I + F
        p.frac_bits = F
        p.norm_bits = R
        p.exp_shape = signed(exp_bits(p.acc_width, F, R))
        p.out_layout = data.StructLayout({"sig": R, "exp": p.exp_shape, "zero": 1})
        return vars(p)

    def __init__(self, dp, fault: str | None = None):
        super().__init__({
            "i": In(stream.Signature(self.acc_width)),
            "o": Out(stream.Signature(self.out_layout)),
        })

    def elaborate(self, platform):
        m = Module()
        w, R, F = self.acc_width, self.norm_bits, self.frac_bits
        advance = Signal()
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready), self.i.ready.eq(advance)]

        v1 = Signal()
        a1 = Signal(w)
        b1 = Signal(range(w + 1))
        with m.If(advance):
            m.d.sync += [v1.eq(self.i.valid), a1.eq(self.i.payload),
                         b1.eq(bit_length_expr(self.i.payload))]

        sig = ((a1 << R) >> b1)[:R]
        if self.fault == "flip_sig0":
            sig = Mux(a1[1] & a1[2] if w >= 3 else 0, sig ^ 1, sig)
        zero = b1 == 0
        exp = Mux(zero, 0, b1 - (R + F))
        v2 = Signal()
        with m.If(advance):
            m.d.sync += [v2.eq(v1), self.o.payload.sig.eq(sig), self.o.payload.exp.eq(exp),
                         self.o.payload.zero.eq(zero)]
        m.d.comb += self.o.valid.eq(v2)
        return m


def pack_output(sig: int, exp: int, zero: int, exp_bits: int, norm_bits: int) -> int:
    """The ``o__payload`` integer for one result (fields: sig, exp (two's complement), zero)."""
    return (int(sig) | ((int(exp) & ((1 << exp_bits) - 1)) << norm_bits)
            | (int(zero) << (norm_bits + exp_bits)))


def reference(dp, A) -> list[int]:
    """Packed model outputs (``fixedpoint.normalise.normalise``) for accumulator values A."""
    import numpy as np
    I, F = dp.acc
    a = np.asarray([int(x) for x in A], dtype=np.uint64)
    sig, exp = normalise(a, F, dp.norm_bits)
    R = int(dp.norm_bits)
    eb = exp_bits(I + F, F, R)
    return [pack_output(s, e, int(x == 0), eb, R) for s, e, x in zip(sig, exp, a)]


__all__ = ["Normaliser", "bit_length_expr", "pack_output", "reference", "exp_bits"]
