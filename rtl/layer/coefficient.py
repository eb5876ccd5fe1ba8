"""``CoefficientPipe``: ``(K, exp_K)`` of :func:`fixedpoint.update.coefficient`, pipelined.

``K = G*Y`` truncated to ``coef_bits`` significant bits, ``exp_K = -Fg - Qb - exp_r - (R-1) + shift``
(``shift`` = the number of dropped bits).  Four registered stages: the operands, the product (one
Fg x (Qb+1) multiplier), the number of bits to drop (the bit length of the product's bits above
``coef_bits``: :func:`rtl.normaliser.bit_length_expr`, a balanced priority tree, no subtraction),
the truncating shift and exponent.

Ports (plain signals, no back-pressure): ``G`` (Fg bits), ``Y`` (Qb + 1 bits), ``exp_r`` (signed,
the normaliser's exponent) in; ``K`` (coef_bits), ``exp_K`` (signed, :attr:`exp_k_shape`) out.
:attr:`latency` = 4.
"""
from __future__ import annotations

from amaranth import Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from fixedpoint.update import coefficient
from rtl.decoder import signed_bits
from rtl.normaliser import bit_length_expr, exp_bits
from rtl.update import coef_shift_max, exp_k_range


def reference(dp, G, Y, exp_r) -> tuple[int, int]:
    """Model ``(K, exp_K)`` (``fixedpoint.update.coefficient``)."""
    K, e = coefficient(G, Y, exp_r, dp.g_bits, dp.recip_bits, dp.norm_bits, dp.coef_bits)
    return int(K), int(e)


class CoefficientPipe(wiring.Component):
    """Pipelined coefficient ``K = G*Y`` (see module docstring)."""

    latency = 4

    def __init__(self, dp):
        self._MustUse__silence = True
        self.dp = dp
        I, F = dp.acc
        self.Fg, self.Qb, self.R, self.cb = int(dp.g_bits), int(dp.recip_bits), int(dp.norm_bits), int(dp.coef_bits)
        self.exp_r_shape = signed(exp_bits(I + F, F, self.R))
        self.exp_k_shape = signed(signed_bits(*exp_k_range(dp)))
        self._MustUse__silence = False
        super().__init__({"G": In(self.Fg), "Y": In(self.Qb + 1), "exp_r": In(self.exp_r_shape),
                          "K": Out(self.cb), "exp_K": Out(self.exp_k_shape)})

    def elaborate(self, platform):
        m = Module()
        Fg, Qb, R, cb = self.Fg, self.Qb, self.R, self.cb
        G0, Y0, e0 = Signal(Fg), Signal(Qb + 1), Signal(self.exp_r_shape)
        m.d.sync += [G0.eq(self.G), Y0.eq(self.Y), e0.eq(self.exp_r)]
        kf1, e1 = Signal(Fg + Qb + 1), Signal(self.exp_r_shape)
        m.d.sync += [kf1.eq(G0 * Y0), e1.eq(e0)]
        # the number of dropped bits max(bit_length(kf1) - cb, 0) is the bit length of kf1's bits above
        # cb: a priority tree over Fg + Qb + 1 - cb bits, no subtraction
        kf2, e2 = Signal(Fg + Qb + 1), Signal(self.exp_r_shape)
        shk = Signal(range(max(coef_shift_max(self.dp), len(kf1) - cb, 0) + 1))
        m.d.sync += [kf2.eq(kf1), e2.eq(e1), shk.eq(bit_length_expr(kf1[cb:]) if len(kf1) > cb else 0)]
        K, eK = Signal(cb), Signal(self.exp_k_shape)
        m.d.sync += [K.eq(kf2 >> shk), eK.eq(-Fg - Qb - (R - 1) - e2 + shk)]
        m.d.comb += [self.K.eq(K), self.exp_K.eq(eK)]
        return m


__all__ = ["CoefficientPipe", "reference"]
