"""``ReciprocalPipe``: the ``div`` reciprocal of :func:`fixedpoint.reciprocal.reciprocal`, pipelined.

``Y = rshift_round(2*q2 + sticky, 2, recip_rounding)`` with ``q2 = floor(2**(Qb+R) / sig_r)`` and
``sticky = (remainder != 0)`` (R = ``norm_bits``, Qb = ``recip_bits``), computed by a restoring
divider unrolled into ``Qb + 2`` quotient steps (one (R+1)-bit subtract-and-select each), grouped
``bits_per_stage`` to a registered stage (default :data:`sbs_model.layer_cycles.RECIP_BITS_PER_STAGE`),
then one registered rounding stage (:func:`rtl.reciprocal.round_q2`).  The numerator ``2**(Qb+R)``
has no bits below its top one, so every step shifts in a zero.

Ports (plain signals, no back-pressure): ``i_sig`` (R bits, in ``[2**(R-1), 2**R)``; other values
give a don't-care result, e.g. the ignored spike's 0), ``o_y`` (Qb + 1 bits).  One input per cycle;
:attr:`latency` = ``ceil((Qb + 2) / bits_per_stage) + 1`` (:func:`sbs_model.layer_cycles.recip_latency`;
Qb + 3 with one bit per stage, 10 for Qb = 16 with two): ``i_sig`` of cycle ``c`` shows on ``o_y``
in cycle ``c + latency``.  Resources: ``Qb + 2`` subtractors of R + 1 bits and about
``(2R + Qb)`` flip-flops per stage.
"""
from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from fixedpoint.reciprocal import reciprocal
from fixedpoint.rounding import rounding_code
from rtl.reciprocal import round_q2
from sbs_model import layer_cycles as lc


def reference(dp, sig_r) -> list[int]:
    """Model Y for each ``sig_r`` (``fixedpoint.reciprocal.reciprocal``)."""
    y = reciprocal(sig_r, dp.norm_bits, dp.recip_bits, dp.recip_method, dp.recip_rounding, dp.lut_bits,
                   dp.nr_iters)
    return [int(v) for v in y]


class ReciprocalPipe(wiring.Component):
    """Pipelined restoring divider for ``recip_method = "div"`` (see module docstring)."""

    def __init__(self, dp, bits_per_stage: int = lc.RECIP_BITS_PER_STAGE):
        self._MustUse__silence = True
        if dp.recip_method != "div":
            raise ValueError(f"ReciprocalPipe: datapath field recip_method must be 'div', got {dp.recip_method!r}")
        if bits_per_stage not in (1, 2):
            raise ValueError(f"ReciprocalPipe: bits_per_stage must be 1 or 2, got {bits_per_stage!r}")
        self.dp, self.bits_per_stage = dp, int(bits_per_stage)
        self.R, self.Qb = int(dp.norm_bits), int(dp.recip_bits)
        self.y_width = self.Qb + 1
        self.latency = lc.recip_latency(self.Qb, self.bits_per_stage)
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
            last = (i + 1) % self.bits_per_stage == 0 or i == Qb + 1  # a register stage ends here
            dom = m.d.sync if last else m.d.comb
            nrem, nq = Signal(R + 1, name=f"rem{i}"), Signal(i + 1, name=f"q{i}")
            dom += [nrem.eq(Mux(ge, r2 - d, r2)), nq.eq((q << 1) | ge)]
            rem, q = nrem, nq
            if last:
                nd = Signal(R, name=f"d{i}")
                m.d.sync += nd.eq(d)
                d = nd
        y = round_q2(m, q, rem != 0, rounding_code(self.dp.recip_rounding), Qb + 1)
        out = Signal(Qb + 1)
        m.d.sync += out.eq(y)
        m.d.comb += self.o_y.eq(out)
        return m


__all__ = ["ReciprocalPipe", "reference"]
