"""``ReciprocalPipe``: the ``div`` reciprocal of :func:`fixedpoint.reciprocal.reciprocal`, pipelined.

``Y = rshift_round(2*q2 + sticky, 2, recip_rounding)`` with ``q2 = floor(2**(Qb+R) / sig_r)`` and
``sticky = (remainder != 0)`` (R = ``norm_bits``, Qb = ``recip_bits``), computed by a restoring
divider unrolled into registered stages, then one registered rounding stage
(:func:`rtl.reciprocal.round_q2`).  The numerator ``2**(Qb+R)`` has no bits below its top one, so
every step shifts in zeros.  Two stage kinds (``bits_per_stage``, default
:data:`sbs_model.layer_cycles.RECIP_BITS_PER_STAGE`):

* 1 (radix 2): ``Qb + 2`` stages, one quotient bit each: one (R+2)-bit subtract-and-select.
* 2 (radix 4): the first stage takes the first two quotient bits in closed form (the partial
  remainder is the constant ``2**(R-2)``: ``q = 0b10, rem = 0`` when ``sig_r = 2**(R-1)``, else
  ``q = 0b01, rem = 2**R - sig_r``; one subtraction) and registers ``3*sig_r`` beside it; each
  later stage takes two bits from ``4*rem - k*sig_r`` for k = 1, 2, 3, three (R+4)-bit subtractions
  side by side and a select on their signs, so a stage holds one carry chain, not two in a row
  (an odd ``Qb`` ends with one radix-2 stage).

Ports (plain signals, no back-pressure): ``i_sig`` (R bits, in ``[2**(R-1), 2**R)``; other values
give a don't-care result, e.g. the ignored spike's 0), ``o_y`` (Qb + 1 bits).  One input per cycle;
:attr:`latency` = ``ceil((Qb + 2) / bits_per_stage) + 1`` (:func:`sbs_model.layer_cycles.recip_latency`;
19 for Qb = 16 at radix 2, 10 at radix 4): ``i_sig`` of cycle ``c`` shows on ``o_y`` in cycle
``c + latency``.  Resources at radix 4: ``3 * Qb/2 + 1`` subtractors of about R + 4 bits and about
``3R + Qb`` flip-flops per stage.
"""
from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal
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

    def _radix2(self, m, i, rem, q, q_width, d):
        """One quotient bit: ``2*rem`` minus ``d`` if that is not negative (``rem``, ``q`` may be ints)."""
        R = self.R
        r2 = Signal(R + 2, name=f"r2_{i}")
        m.d.comb += r2.eq(rem << 1)
        ge = r2 >= d
        nrem, nq = Signal(R + 1, name=f"rem{i}"), Signal(q_width + 1, name=f"q{i}")
        m.d.sync += [nrem.eq(Mux(ge, r2 - d, r2)), nq.eq((q << 1) | ge)]
        return nrem, nq

    def _radix4(self, m, i, rem, q, d, d3):
        """Two quotient bits: ``4*rem - k*d`` for the largest k in 0..3 that keeps it not negative;
        the three differences side by side, each one (R+4)-bit carry chain, then a select."""
        R = self.R
        r4 = Signal(R + 3, name=f"r4_{i}")
        m.d.comb += r4.eq(rem << 2)
        diffs = []
        for k, sub in ((1, d), (2, d << 1), (3, d3)):
            t = Signal(R + 4, name=f"t{k}_{i}")   # two's complement: bit R+3 is the borrow
            m.d.comb += t.eq(r4 - sub)
            diffs.append(t)
        ge1, ge2, ge3 = (~t[R + 3] for t in diffs)
        t1, t2, t3 = diffs
        nrem, nq = Signal(R + 1, name=f"rem{i}"), Signal(len(q) + 2, name=f"q{i}")
        m.d.sync += [nrem.eq(Mux(ge3, t3, Mux(ge2, t2, Mux(ge1, t1, r4)))),
                     nq.eq(Cat(ge3 | (ge1 & ~ge2), ge2, q))]   # digit ge1 + ge2 + ge3 (they nest)
        return nrem, nq

    def _carry(self, m, i, *values):
        """Register the divisor (and 3x divisor) beside stage ``i``."""
        out = []
        for j, v in enumerate(values):
            r = Signal(len(v), name=f"d{'3' if j else ''}_{i}")
            m.d.sync += r.eq(v)
            out.append(r)
        return out

    def elaborate(self, platform):
        m = Module()
        R, Qb = self.R, self.Qb
        d = self.i_sig
        if self.bits_per_stage == 1:
            rem, q = (1 << (R - 2) if R >= 2 else 0), 0   # 2**(Qb+R) >> (Qb+2): the part above the quotient
            for i in range(Qb + 2):
                rem, q = self._radix2(m, i, rem, q, i, d)
                (d,) = self._carry(m, i, d)
        else:
            top = d == (1 << (R - 1))
            rem, q = Signal(R + 1, name="rem_first"), Signal(2, name="q_first")
            m.d.sync += [rem.eq(Mux(top, 0, (1 << R) - d)), q.eq(Mux(top, 0b10, 0b01))]
            d, d3 = self._carry(m, 0, d, d + (d << 1))
            for i in range(1, Qb // 2 + 1):
                rem, q = self._radix4(m, i, rem, q, d, d3)
                d, d3 = self._carry(m, i, d, d3)
            if Qb % 2:
                rem, q = self._radix2(m, Qb // 2 + 1, rem, q, len(q), d)
        y = round_q2(m, q, rem != 0, rounding_code(self.dp.recip_rounding), Qb + 1)
        out = Signal(Qb + 1)
        m.d.sync += out.eq(y)
        m.d.comb += self.o_y.eq(out)
        return m


__all__ = ["ReciprocalPipe", "reference"]
