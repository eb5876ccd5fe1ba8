"""``ScaledCoefficientPipe``: the ``scaled`` update's per-spike coefficient ``K = A_t*Y``, pipelined.

The arithmetic of :func:`fixedpoint.update.coefficient` with ``G`` replaced by the ``scaled``
schedule's ``A_t = eps_t/s_t`` (:func:`fixedpoint.scaled.scaled_tables`, uqI.Fg): ``A_t`` can
reach 1 (``eps_0 = 1``, ``s_0 = 1``), so it has :attr:`a_bits` = ``Fg + I`` bits where the ``int``
update's ``G_t < 1`` has ``Fg``.  ``K = A*Y`` truncated to ``coef_bits`` significant bits,
``exp_K = -Fg - Qb - exp_r - (R-1) + shift``.  Four registered stages, as
:class:`rtl.layer.coefficient.CoefficientPipe`: the operands, the product (one
a_bits x (Qb+1) multiplier, 17 x 17 bits for the presets), its bit length
(:func:`rtl.normaliser.bit_length_expr`), the truncating shift and the exponent.

Ports (plain signals): ``G`` (``A_t``, a_bits), ``Y`` (Qb + 1 bits), ``exp_r`` in; ``K``
(coef_bits), ``exp_K`` (:attr:`exp_k_shape`, :func:`exp_k_range`) out.  :attr:`latency` = 4.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from amaranth import Module, Signal, signed
from amaranth.lib.wiring import In, Out

from fixedpoint.update import coefficient
from rtl.checked import CheckedComponent
from rtl.decoder import signed_bits
from rtl.normaliser import bit_length_expr, exp_bits
from rtl.update import exp_r_range


def a_bits_of(dp, tables) -> int:
    """Bits of the largest ``A_t`` of the ``scaled`` tables (at least ``g_bits``)."""
    return max(int(dp.g_bits), int(np.max(np.asarray(tables.G))).bit_length())


def shift_max(dp, a_bits: int) -> int:
    """Largest number of bits dropped when truncating ``K = A*Y`` to ``coef_bits``."""
    return max(0, int(a_bits) + int(dp.recip_bits) + 1 - int(dp.coef_bits))


def exp_k_range(dp, a_bits: int) -> tuple[int, int]:
    """(smallest, largest) ``exp_K`` of a non-zero dot product."""
    base = -int(dp.g_bits) - int(dp.recip_bits) - (int(dp.norm_bits) - 1)
    lo, hi = exp_r_range(dp)
    return base - hi, base - lo + shift_max(dp, a_bits)


def reference(dp, A, Y, exp_r) -> tuple[int, int]:
    """Model ``(K, exp_K)`` (``fixedpoint.update.coefficient`` with ``A_t`` in the ``G`` slot)."""
    K, e = coefficient(A, Y, exp_r, dp.g_bits, dp.recip_bits, dp.norm_bits, dp.coef_bits)
    return int(K), int(e)


class ScaledCoefficientPipe(CheckedComponent):
    """Pipelined coefficient ``K = A*Y`` (see module docstring)."""

    latency = 4

    @staticmethod
    def plan(dp, a_bits: int) -> dict:
        p = SimpleNamespace()
        if not isinstance(a_bits, int) or not int(dp.g_bits) <= a_bits <= int(dp.g_bits) + 8:
            raise ValueError(f"ScaledCoefficientPipe: a_bits must be an int in {dp.g_bits}..{int(dp.g_bits) + 8}, "
                             f"got {a_bits!r}")
        I, F = dp.acc
        p.dp, p.a_bits = dp, a_bits
        p.Fg, p.Qb, p.R, p.cb = int(dp.g_bits), int(dp.recip_bits), int(dp.norm_bits), int(dp.coef_bits)
        p.exp_r_shape = signed(exp_bits(I + F, F, p.R))
        p.exp_k_shape = signed(signed_bits(*exp_k_range(dp, a_bits)))
        return vars(p)

    def __init__(self, dp, a_bits: int):
        super().__init__({"G": In(self.a_bits), "Y": In(self.Qb + 1), "exp_r": In(self.exp_r_shape),
                          "K": Out(self.cb), "exp_K": Out(self.exp_k_shape)})

    def elaborate(self, platform):
        m = Module()
        ab, Fg, Qb, R, cb = self.a_bits, self.Fg, self.Qb, self.R, self.cb
        pw = ab + Qb + 1
        A0, Y0, e0 = Signal(ab), Signal(Qb + 1), Signal(self.exp_r_shape)
        m.d.sync += [A0.eq(self.G), Y0.eq(self.Y), e0.eq(self.exp_r)]
        kf1, e1 = Signal(pw), Signal(self.exp_r_shape)
        m.d.sync += [kf1.eq(A0 * Y0), e1.eq(e0)]
        # bit_length(K >> cb) = max(bit_length(K) - cb, 0): the dropped bits, no subtraction
        kf2, e2 = Signal(pw), Signal(self.exp_r_shape)
        shk = Signal(range(shift_max(self.dp, ab) + 1))
        m.d.sync += [kf2.eq(kf1), e2.eq(e1), shk.eq(bit_length_expr(kf1 >> cb))]
        K, eK = Signal(cb), Signal(self.exp_k_shape)
        m.d.sync += [K.eq(kf2 >> shk), eK.eq(-Fg - Qb - (R - 1) - e2 + shk)]
        m.d.comb += [self.K.eq(K), self.exp_K.eq(eK)]
        return m


__all__ = ["ScaledCoefficientPipe", "a_bits_of", "exp_k_range", "reference", "shift_max"]
