"""``FinalScale``: the ``scaled`` update's last-spike factor ``C_{T-1}``, one code per cycle.

At the last spike of an IP the ``scaled`` update (:mod:`fixedpoint.scaled`) multiplies the sums
``U`` by the per-layer constant ``C_{T-1}`` (uq2.Fc) instead of a power of two:
``code = encode_parts(min(U, 2**cap) * C_{T-1}, -(Fu + Fc))`` into H (H's rounding, saturate).
The lanes (:class:`rtl.layer.scaled_lanes.ScaledUpdateLanes`) write ``U`` (``in_width`` bits,
below the model's cap, so the ``min`` is inactive) into the h memory in the last round; the
engine's output serialiser sends the sums through this unit, so the layer's N products per IP run
on one scalar multiplier per engine, and the lanes need no multiplier for the factor.

Pipeline (a ``lib.stream`` in and out, the whole pipeline advances when its output is taken or
empty): 1 the operand registered; 2 the two partial products ``U_lo*C``, ``U_hi*C`` (at most
18 x 18 bits each: one MULT18X18D each, registered); 3 their sum; 4 the rounding at ``Fu + Fc - Fh``
and the saturation.  :attr:`latency` = 4: an input transferred in cycle c is valid at the output
in cycle c + 4 when the output is always ready.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from amaranth import Module, Signal
from amaranth.lib import stream
from amaranth.lib.wiring import In, Out

from fixedpoint.datapath import value_bits_nb
from fixedpoint.formats import parse_format
from fixedpoint.update import scale_sums
from rtl.checked import CheckedComponent
from rtl.round_code import round_to_code

SPLIT = 18  # bits of the low operand part (one MULT18X18D input)


def reference(dp, sums, c_last: int) -> list[int]:
    """Model codes: ``scale_sums(U, C_{T-1})`` encoded into H (H's rounding, saturate)."""
    H = parse_format(dp.h_format)
    V = scale_sums(np.asarray(sums, dtype=np.int64), int(c_last),
                   dp.upd_frac_bits + int(value_bits_nb(H.nb)) + dp.c_bits)
    codes = H.encode_parts(V, np.full(V.shape, -(dp.upd_frac_bits + dp.c_bits)), dp.h_rounding, "saturate")
    return [int(c) for c in codes]


class FinalScale(CheckedComponent):
    """``sat(round(U * C_{T-1}))`` into H, pipelined, stream in/out (see module docstring)."""

    latency = 4

    @staticmethod
    def plan(dp, in_width: int, c_last: int) -> dict:
        p = SimpleNamespace()
        p.dp, p.H = dp, parse_format(dp.h_format)
        if not isinstance(in_width, int) or not 1 <= in_width <= 2 * SPLIT:
            raise ValueError(f"FinalScale: in_width must be an int in 1..{2 * SPLIT}, got {in_width!r}")
        if not isinstance(c_last, int) or not 1 <= c_last < (1 << (int(dp.c_bits) + 2)):
            raise ValueError(f"FinalScale: c_last must be an int in 1..{(1 << (int(dp.c_bits) + 2)) - 1}, "
                             f"got {c_last!r}")
        p.in_width, p.c_last = in_width, c_last
        p.c_width = int(dp.c_bits) + 2
        p.shift = int(dp.upd_frac_bits) + int(dp.c_bits) - p.H.frac_bits
        return vars(p)

    def __init__(self, dp, in_width: int, c_last: int):
        super().__init__({"i": In(stream.Signature(self.in_width)), "o": Out(stream.Signature(self.H.width))})

    def elaborate(self, platform):
        m = Module()
        lo_w = min(SPLIT, self.in_width)
        hi_w = self.in_width - lo_w
        cw = self.c_width
        en = Signal()
        m.d.comb += [en.eq(~self.o.valid | self.o.ready), self.i.ready.eq(en)]
        v1, v2, v3 = Signal(), Signal(), Signal()
        u1 = Signal(self.in_width)
        c = Signal(cw, init=self.c_last)  # the constant as a register operand (one multiplier block)
        pl, ph = Signal(lo_w + cw), Signal(max(hi_w, 1) + cw)
        s3 = Signal(self.in_width + cw)
        with m.If(en):
            m.d.sync += [v1.eq(self.i.valid), u1.eq(self.i.payload),
                         v2.eq(v1), pl.eq(u1[:lo_w] * c), ph.eq((u1[lo_w:] if hi_w else 0) * c),
                         v3.eq(v2), s3.eq(pl + (ph << lo_w)),
                         self.o.valid.eq(v3), self.o.payload.eq(self._round(m, s3))]
        return m

    def _round(self, m, s):
        return round_to_code(m, s, self.shift, self.dp.h_rounding, self.H.width, "")


__all__ = ["FinalScale", "reference"]
