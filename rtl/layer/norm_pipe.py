"""``NormalisePipe``: :func:`fixedpoint.normalise.normalise` of the layer engine's dot products in
three short registered stages (:class:`rtl.normaliser.Normaliser` does it in two, with a full
leading-one tree and a full barrel shifter in one cycle each).

With ``b = bit_length(A)``: ``sig = floor(A * 2**(R - b))`` (the top R bits, truncating; a left
shift when ``b < R``), ``exp = b - R - F``, and ``A = 0`` gives ``(0, 0)`` and ``zero``.  The
hardware left-justifies A in a ``W = 8*G`` bit word (``G`` byte groups, ``W >= max(w, R)``):
``J = A << (W - b)``; then ``sig = J >> (W - R)``, both cases at once.

* stage 1: A registered; per byte group: any bit set, and the position of its highest set bit
  (a 3-bit priority tree); the highest non-empty group ``g`` (a priority tree over G flags);
* stage 2: the coarse shift ``A << 8*(G-1-g)`` (a G:1 mux per bit), the position ``p`` of the
  highest bit in group g, ``zero``;
* stage 3: the fine shift by ``7 - p`` (an 8:1 mux per bit) -> ``sig``; ``exp = 8*g + p + 1 - R - F``
  (an adder with a constant) or 0.

Ports: ``i`` and ``o`` as :class:`rtl.normaliser.Normaliser` (``o.payload``: ``sig``, ``exp``,
``zero``), but without back-pressure: ``i.ready`` is 1 and ``o.ready`` is ignored (the engine's
chain never stalls).  :attr:`latency` = 3: an A in cycle ``c`` shows ``o.valid`` in cycle ``c + 3``.
"""
from __future__ import annotations

from types import SimpleNamespace

from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from fixedpoint.datapath import Datapath
from fixedpoint.normalise import NORM_BITS_MAX, NORM_BITS_MIN
from rtl.checked import CheckedComponent
from rtl.normaliser import exp_bits, leading_one

GROUP = 8  # bits per group of the two-step shift


def _priority(flags: list):
    """Index of the highest set flag (0 when none) as an Amaranth value: a balanced tree."""
    n = 1
    while n < len(flags):
        n *= 2
    flags = list(flags) + [Const(0, 1)] * (n - len(flags))

    _, pos = leading_one(flags)
    return Const(0, 1) if pos is None else pos


class NormalisePipe(CheckedComponent):
    """Three-stage normaliser of the layer engine (see module docstring)."""

    latency = 3

    @staticmethod
    def plan(dp) -> dict:
        """Checked arguments -> the attributes (ValueError for bad ones)."""
        if not isinstance(dp, Datapath):
            raise ValueError(f"NormalisePipe: dp must be a fixedpoint.datapath.Datapath, got {type(dp).__name__}")
        I, F = dp.acc
        R = int(dp.norm_bits)
        if not NORM_BITS_MIN <= R <= NORM_BITS_MAX:
            raise ValueError(f"NormalisePipe: norm_bits {R} out of range {NORM_BITS_MIN}..{NORM_BITS_MAX}")
        p = SimpleNamespace(dp=dp, acc_width=I + F, frac_bits=F, norm_bits=R)
        p.groups = -(-max(I + F, R) // GROUP)
        p.exp_shape = signed(exp_bits(I + F, F, R))
        p.out_layout = data.StructLayout({"sig": R, "exp": p.exp_shape, "zero": 1})
        return vars(p)

    def __init__(self, dp):
        super().__init__({
            "i": In(stream.Signature(self.acc_width)),
            "o": Out(stream.Signature(self.out_layout)),
        })

    def elaborate(self, platform):
        m = Module()
        w, R, F, G = self.acc_width, self.norm_bits, self.frac_bits, self.groups
        W = G * GROUP
        m.d.comb += self.i.ready.eq(1)
        # ---- stage 1: A, per group: any bit, highest bit position; the highest non-empty group
        a = Cat(self.i.payload, Const(0, W - w)) if W > w else self.i.payload
        v1, a1 = Signal(), Signal(W)
        anys = [a[g * GROUP:(g + 1) * GROUP].any() for g in range(G)]
        pos1 = [Signal(3, name=f"pos1_{g}") for g in range(G)]
        g1, any1 = Signal(range(max(G, 2))), Signal()
        m.d.sync += [v1.eq(self.i.valid), a1.eq(a), g1.eq(_priority(anys)), any1.eq(Cat(*anys).any())]
        for g in range(G):
            m.d.sync += pos1[g].eq(_priority([a[g * GROUP + i] for i in range(GROUP)]))
        # ---- stage 2: coarse shift (group g to the top), the position in group g
        v2, c2, p2, g2, zero2 = Signal(), Signal(W), Signal(3), Signal(range(max(G, 2))), Signal()
        coarse = a1
        pos = pos1[0]
        for g in range(1, G):
            coarse = Mux(g1 == g, a1 << (GROUP * (G - 1 - g)), coarse)
            pos = Mux(g1 == g, pos1[g], pos)
        if G > 1:
            coarse = Mux(g1 == 0, a1 << (GROUP * (G - 1)), coarse)
        m.d.sync += [v2.eq(v1), c2.eq(coarse[:W]), p2.eq(pos), g2.eq(g1), zero2.eq(~any1)]
        # ---- stage 3: fine shift by 7 - p, exponent
        fine = (c2 << ~p2)[:W]  # 7 - p
        sig = fine[W - R:W]
        b = Cat(p2, g2) + 1  # bit_length(A) = 8*g + p + 1
        m.d.sync += [self.o.valid.eq(v2), self.o.payload.sig.eq(Mux(zero2, 0, sig)),
                     self.o.payload.exp.eq(Mux(zero2, 0, b - (R + F))), self.o.payload.zero.eq(zero2)]
        return m


__all__ = ["NormalisePipe", "GROUP"]
