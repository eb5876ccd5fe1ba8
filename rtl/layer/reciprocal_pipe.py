"""``ReciprocalPipe``: the ``div`` reciprocal of :func:`fixedpoint.reciprocal.reciprocal`, pipelined.

``Y = rshift_round(2*q2 + sticky, 2, recip_rounding)`` with ``q2 = floor(2**(Qb+R) / sig_r)`` and
``sticky = (remainder != 0)`` (R = ``norm_bits``, Qb = ``recip_bits``), computed by a restoring
divider unrolled into ``Qb + 2`` registered stages, one quotient bit each (one (R+1)-bit
subtract-and-select per stage), then one registered rounding stage
(:func:`rtl.reciprocal.round_q2`).  The numerator ``2**(Qb+R)`` has no bits below its top one, so
every stage shifts in a zero.

Ports (plain signals, no back-pressure): ``i_sig`` (R bits, in ``[2**(R-1), 2**R)``; other values
give a don't-care result, e.g. the ignored spike's 0), ``o_y`` (Qb + 1 bits).  One input per cycle;
:attr:`latency` = ``Qb + 3``: ``i_sig`` of cycle ``c`` shows on ``o_y`` in cycle ``c + latency``.
Resources: ``Qb + 2`` subtractors of R + 1 bits and about ``(Qb + 2) * (2R + Qb)`` flip-flops.
"""
from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from fixedpoint.reciprocal import reciprocal
from fixedpoint.rounding import rounding_code
from rtl.reciprocal import round_q2


def reference(dp, sig_r) -> list[int]:
    """Model Y for each ``sig_r`` (``fixedpoint.reciprocal.reciprocal``)."""
    y = reciprocal(sig_r, dp.norm_bits, dp.recip_bits, dp.recip_method, dp.recip_rounding, dp.lut_bits,
                   dp.nr_iters)
    return [int(v) for v in y]


class ReciprocalPipe(wiring.Component):
    """Pipelined restoring divider for ``recip_method = "div"`` (see module docstring)."""

    def __init__(self, dp):
        self._MustUse__silence = True
        if dp.recip_method != "div":
            raise ValueError(f"ReciprocalPipe: datapath field recip_method must be 'div', got {dp.recip_method!r}")
        self.dp = dp
        self.R, self.Qb = int(dp.norm_bits), int(dp.recip_bits)
        self.y_width = self.Qb + 1
        self.latency = self.Qb + 3
        self._MustUse__silence = False
        super().__init__({"i_sig": In(self.R), "o_y": Out(self.y_width)})

    def elaborate(self, platform):
        m = Module()
        R, Qb = self.R, self.Qb
        d = self.i_sig
        rem = 1 << (R - 2) if R >= 2 else 0   # 2**(Qb+R) >> (Qb+2): the part above the quotient
        q = 0
        for i in range(Qb + 2):
            r2 = Signal(R + 2, name=f"r2_{i}")
            m.d.comb += r2.eq(rem << 1)
            ge = r2 >= d
            nrem, nq, nd = Signal(R + 1, name=f"rem{i}"), Signal(i + 1, name=f"q{i}"), Signal(R, name=f"d{i}")
            m.d.sync += [nrem.eq(Mux(ge, r2 - d, r2)), nq.eq((q << 1) | ge), nd.eq(d)]
            rem, q, d = nrem, nq, nd
        y = round_q2(m, q, rem != 0, rounding_code(self.dp.recip_rounding), Qb + 1)
        out = Signal(Qb + 1)
        m.d.sync += out.eq(y)
        m.d.comb += self.o_y.eq(out)
        return m


__all__ = ["ReciprocalPipe", "reference"]
