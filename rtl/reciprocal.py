"""``Reciprocal``: ``Y ~ 2**Qb / x`` of :func:`fixedpoint.reciprocal.reciprocal` as RTL.

Generated from a :class:`fixedpoint.datapath.Datapath` (``norm_bits`` R, ``recip_bits`` Qb,
``recip_method``, ``recip_rounding``, ``lut_bits``, ``nr_iters``).

Ports (``lib.stream``):

* ``i``: ``sig_r``, R bits (0, or in ``[2**(R-1), 2**R)``: the normaliser's output).
* ``o``: ``Y``, Qb + 1 bits (``Y`` lies in ``[2**(Qb-1), 2**Qb]``; 0 for ``sig_r = 0``).

Methods:

* ``div``: a sequential restoring divider computing ``q2 = floor(2**(Qb+R) / sig_r)`` one quotient
  bit per cycle (Qb + 2 bits: the top bit while accepting, then Qb + 1 cycles), an (R+1)-bit
  remainder register, then ``Y = rshift_round(2*q2 + sticky, 2, recip_rounding)`` with
  ``sticky = (remainder != 0)`` exactly as the model.  One R+1-bit subtractor, no multiplier.
  Latency ``Qb + 2``.
* ``nr``: a ``2**lut_bits``-entry ROM (``lib.memory.Memory``, Qb+1 bits) of
  :func:`fixedpoint.reciprocal.nr_table`, then one Newton-Raphson step per cycle
  (``D = 2**(R+Qb) - sig_r*y``; ``D' = D >> (R-1)``; ``y = (y*D') >> Qb``: two multipliers,
  R x (Qb+1) and (Qb+1) x (Qb+2) bits).  Latency ``nr_iters + 1``.

Latency convention (as :mod:`rtl.sampler`): an input transferred in cycle ``c`` shows ``o.valid``
in cycle ``c + latency``.  One input in flight; ``i.ready`` is low while busy or while the result
waits for ``o.ready``.

``fault`` is for tests only (``"flip_bit0"``: invert bit 0 of Y when the low four bits of
``sig_r`` are all ones).
"""
from __future__ import annotations

from types import SimpleNamespace

from amaranth import Module, Mux, Signal
from amaranth.lib import memory, stream
from amaranth.lib.wiring import In, Out

from fixedpoint.reciprocal import nr_table, reciprocal
from fixedpoint.rounding import RNA, RNE, rounding_code
from rtl.checked import CheckedComponent
from sbs_model.hw_cycles import reciprocal_latency

FAULTS = (None, "flip_bit0")


def reference(dp, sig_r) -> list[int]:
    """The model's Y for each ``sig_r`` (``fixedpoint.reciprocal.reciprocal``)."""
    y = reciprocal(sig_r, dp.norm_bits, dp.recip_bits, dp.recip_method, dp.recip_rounding, dp.lut_bits,
                   dp.nr_iters)
    return [int(v) for v in y]


def round_q2(m, q2, sticky, mode: int, width: int):
    """``rshift_round(2*q2 + sticky, 2, mode)`` for non-negative q2 (a ``width``-bit result)."""
    q = q2[1:]
    half_bit = q2[0]          # bit 1 of 2*q2 + sticky
    if mode == RNE:
        up = half_bit & (sticky | q[0])
    elif mode == RNA:
        up = half_bit
    else:
        up = 0
    y = Signal(width)
    m.d.comb += y.eq(q + up)
    return y


class Reciprocal(CheckedComponent):
    """Reciprocal unit (``div`` or ``nr``; see module docstring for ports and latency)."""

    @staticmethod
    def plan(dp, fault: str | None = None) -> dict:
        """Checked arguments -> the attributes of a Reciprocal (ValueError for bad ones)."""
        p = SimpleNamespace()
        if dp.update != "int":
            raise ValueError(f"Reciprocal: datapath update must be 'int' (the float32 update is model-only), "
                             f"got {dp.update!r}")
        if fault not in FAULTS:
            raise ValueError(f"Reciprocal: fault must be one of {FAULTS}, got {fault!r}")
        p.dp = dp
        p.fault = fault
        p.R = int(dp.norm_bits)
        p.Qb = int(dp.recip_bits)
        p.method = dp.recip_method
        p.y_width = p.Qb + 1
        p.latency = reciprocal_latency(dp)  # Qb + 2 (div) or nr_iters + 1 (nr)
        return vars(p)

    def __init__(self, dp, fault: str | None = None):
        super().__init__({
            "i": In(stream.Signature(self.R)),
            "o": Out(stream.Signature(self.y_width)),
        })

    def elaborate(self, platform):
        m = Module()
        R, Qb = self.R, self.Qb
        busy = Signal()
        out_valid = Signal()
        zero = Signal()
        low4 = Signal(4)
        d = Signal(R)
        m.d.comb += self.i.ready.eq(~busy & ~out_valid)
        accept = self.i.valid & self.i.ready
        sig = self.i.payload
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += out_valid.eq(0)
        with m.If(accept):
            m.d.sync += [d.eq(sig), zero.eq(sig == 0), low4.eq(sig[:4] if R >= 4 else sig)]

        if self.method == "div":
            y = self._div(m, busy, out_valid, accept, d)
        else:
            y = self._nr(m, busy, out_valid, accept, d)
        result = Mux(zero, 0, y)
        if self.fault == "flip_bit0":
            result = Mux(low4 == 0xF, result ^ 1, result)
        m.d.comb += [self.o.valid.eq(out_valid), self.o.payload.eq(result)]
        return m

    def _div(self, m, busy, out_valid, accept, d):
        R, Qb = self.R, self.Qb
        rem = Signal(R + 1)             # remainder < d < 2**R
        q2 = Signal(Qb + 2)             # quotient bits so far
        count = Signal(range(Qb + 3))   # quotient bits still to produce
        sig = self.i.payload
        top = 1 << (R - 1)              # 2**(Qb+R) >> (Qb+1): the numerator prefix
        with m.If(accept):
            # quotient bit Qb+1: 2**(R-1) >= sig only for sig == 2**(R-1) (or the ignored sig 0)
            is_top = sig == top
            m.d.sync += [rem.eq(Mux(is_top, 0, top)), q2.eq(is_top), count.eq(Qb + 1), busy.eq(1)]
        with m.Elif(busy):
            r2 = Signal(R + 2)
            m.d.comb += r2.eq(rem << 1)
            ge = Signal()
            m.d.comb += ge.eq((r2 >= d) & (d != 0))
            m.d.sync += [rem.eq(Mux(ge, r2 - d, r2)), q2.eq((q2 << 1) | ge), count.eq(count - 1)]
            with m.If(count == 1):
                m.d.sync += [busy.eq(0), out_valid.eq(1)]
        return round_q2(m, q2, rem != 0, rounding_code(self.dp.recip_rounding), Qb + 1)

    def _nr(self, m, busy, out_valid, accept, d):
        R, Qb = self.R, self.Qb
        L, iters = int(self.dp.lut_bits), int(self.dp.nr_iters)
        table = [int(v) for v in nr_table(L, Qb)]
        m.submodules.lut = lut = memory.Memory(shape=Qb + 1, depth=len(table), init=table)
        rd = lut.read_port(domain="comb")
        m.d.comb += rd.addr.eq(self.i.payload[R - 1 - L:R - 1])
        y = Signal(Qb + 1)
        count = Signal(range(iters + 2))
        # one Newton step: D = 2**(R+Qb) - d*y (> 0), D' = D >> (R-1), y' = (y*D') >> Qb
        D = Signal(R + Qb + 1)
        m.d.comb += D.eq((1 << (R + Qb)) - d * y)
        Dp = D[R - 1:]
        y_next = Signal(Qb + 1)
        m.d.comb += y_next.eq((y * Dp) >> Qb)
        with m.If(accept):
            m.d.sync += y.eq(rd.data)
            if iters == 0:
                m.d.sync += out_valid.eq(1)
            else:
                m.d.sync += [count.eq(iters), busy.eq(1)]
        with m.Elif(busy):
            m.d.sync += [y.eq(y_next), count.eq(count - 1)]
            with m.If(count == 1):
                m.d.sync += [busy.eq(0), out_valid.eq(1)]
        return y
