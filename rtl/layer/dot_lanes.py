"""``DotLanes``: the layer engine's dot product, ``A = sum_i floor(h_i*w_i * 2**F)`` over N elements.

The arithmetic of :meth:`fixedpoint.datapath.Datapath.dot` up to the accumulator (exact products,
:func:`fixedpoint.product.product` with ``prod_bits`` None; alignment of
:func:`fixedpoint.accumulate.aligned_terms`; accumulator ``uqI.F`` with ``wrap`` or ``saturate``),
as :class:`rtl.dot.DotProduct`, but built for timing: inputs are registered, a product with a
narrow operand (at most :data:`NARROW` bits, e.g. the 2-bit significand of e4m1 weights) is a sum
of shifted copies instead of a multiplier, and every stage is registered.

Parameters: datapath ``dp`` (fixed-point or float H, exact products), the layer's weight format,
``N`` elements, ``L`` lanes; ``B = ceil(N/L)`` beats form one row (element ``i`` in lane ``i mod L``
of beat ``i // L``; lanes ``>= N - (B-1)*L`` of the last beat are masked).

Ports (plain signals, no back-pressure): ``i_valid``, ``i_h``, ``i_w`` (L codes each) in;
``o_valid``, ``o_acc`` (I+F bits), ``o_ovf`` out.  Stages: input registers; decode + product +
mask and the alignment shift amount; alignment (``w``-bit term and an overflow flag); ``ceil(log2 L)`` adder-tree levels; the
accumulator, which on the row's last beat loads the output.  :attr:`latency` =
``4 + ceil(log2 L)``: a row's last beat presented in cycle ``c`` shows ``o_valid`` in cycle
``c + latency``.
"""
from __future__ import annotations

import numpy as np
from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from fixedpoint.formats import parse_format
from rtl.decoder import WeightDecoder, exp_field, exp_range, sig_bits, signed_bits

NARROW = 4  # an operand of at most this many bits multiplies by shifted adds
SHIFT_TABLE_BITS = 6  # exponent-field bits (h and w together) up to which the shift amount is one table
                      # lookup on the codes (int-e4m1: 0 + 4 bits) instead of adds and compares: at fdfd4db
                      # w -> decode -> exp adds -> clamp was the whole network's critical path (14 levels)


def clog2(n: int) -> int:
    return (int(n) - 1).bit_length()


def exact_product(m, a, b, name: str):
    """``a * b`` (unsigned) as a Signal: shifted adds when one operand has <= NARROW bits."""
    if len(b) > len(a):
        a, b = b, a
    out = Signal(len(a) + len(b), name=name)
    if len(b) <= NARROW:
        acc = 0
        for i in range(len(b)):
            acc = acc + Mux(b[i], a << i, 0)
        m.d.comb += out.eq(acc)
    else:
        m.d.comb += out.eq(a * b)
    return out


def check_exact(dp, who: str) -> None:
    W, H = dp.formats()
    if dp.prod_bits is not None and dp.prod_bits < sig_bits(H) + sig_bits(W):
        raise ValueError(f"{who}: datapath field prod_bits {dp.prod_bits} rounds products; the layer engine "
                         f"needs exact products (prod_bits None)")


def reference(dp, h_rows, w_rows, w_format) -> list[tuple[int, int]]:
    """Model ``(A, overflow > 0)`` per row (``Datapath.dot``)."""
    out = []
    for h, w in zip(h_rows, w_rows):
        A, ovf, _, _ = dp.dot(np.asarray(h), np.asarray(w), w_format)
        out.append((int(A), int(int(ovf) > 0)))
    return out


class DotLanes(wiring.Component):
    """Registered L-lane dot product with accumulator (see module docstring)."""

    def __init__(self, dp, w_format, N: int, lanes: int):
        self._MustUse__silence = True
        check_exact(dp, "DotLanes")
        self.dp, self.N, self.L = dp, int(N), int(lanes)
        self.H, self.W = parse_format(dp.h_format), parse_format(w_format)
        I, F = dp.acc
        self.acc_width, self.F = I + F, F
        self.saturate = dp.acc_overflow == "saturate"
        self.B = -(-self.N // self.L)
        self.last_lanes = self.N - (self.B - 1) * self.L
        self.latency = 4 + clog2(self.L)
        self._MustUse__silence = False
        super().__init__({
            "i_valid": In(1), "i_h": In(data.ArrayLayout(self.H.width, self.L)),
            "i_w": In(data.ArrayLayout(self.W.width, self.L)),
            "o_valid": Out(1), "o_acc": Out(self.acc_width), "o_ovf": Out(1),
        })

    def _limits(self, e_lo: int, e_hi: int, pw: int) -> tuple[int, int]:
        """Clamp range ``[s_lo, s_hi]`` of the alignment shift ``s = E + F``: below ``-pw`` every
        term is 0, above ``w`` every non-zero term overflows (same term and flag as unclamped)."""
        w, F = self.acc_width, self.F
        s_lo = max(e_lo + F, -pw)
        return s_lo, max(min(e_hi + F, w), s_lo)

    def _shift_amount(self, m, dh, dw, e_shape, e_lo, e_hi, pw, j):
        """``d = clamp(E + F) - s_lo`` (0..span), computed in the product stage.  With at most
        :data:`SHIFT_TABLE_BITS` exponent-field bits in the two codes, ``d`` is a table over those
        bits (each entry from ``decode_parts`` of a code with that field), else the decoders' exponent
        sum ``E`` (``e_shape``) and compares."""
        s_lo, s_hi = self._limits(e_lo, e_hi, pw)
        d = Signal(range(s_hi - s_lo + 1), name=f"d{j}")
        (h_lo, h_n), (w_lo, w_n) = exp_field(self.H), exp_field(self.W)
        if h_n + w_n > SHIFT_TABLE_BITS:
            E = Signal(e_shape, name=f"e{j}")
            m.d.comb += E.eq(dh.exp + dw.exp)
            s = E + self.F
            m.d.comb += d.eq(Mux(s < s_lo, 0, Mux(s > s_hi, s_hi - s_lo, s - s_lo)))
            return d
        exps_h = self.H.decode_parts(np.arange(1 << h_n) << h_lo)[1]
        exps_w = self.W.decode_parts(np.arange(1 << w_n) << w_lo)[1]
        table = [min(max(int(exps_h[k & ((1 << h_n) - 1)]) + int(exps_w[k >> h_n]) + self.F, s_lo), s_hi) - s_lo
                 for k in range(1 << (h_n + w_n))]
        if h_n + w_n == 0:
            m.d.comb += d.eq(table[0])
            return d
        key = Cat(dh.code[h_lo:h_lo + h_n], dw.code[w_lo:w_lo + w_n])
        with m.Switch(key):
            for k, v in enumerate(table[:-1]):
                with m.Case(k):
                    m.d.comb += d.eq(v)
            with m.Default():
                m.d.comb += d.eq(table[-1])
        return d

    def _align(self, m, P, d, e_lo, e_hi, j):
        """``(term, big)``: ``floor(P * 2**(E + F))`` as w bits and ``>= 2**w``, from ``d``."""
        w, pw = self.acc_width, len(P)
        s_lo, s_hi = self._limits(e_lo, e_hi, pw)
        span = s_hi - s_lo
        X = Signal(pw + span, name=f"x{j}")
        m.d.comb += X.eq(P << d if span else P)
        if s_lo >= 0:
            full = Cat(Const(0, s_lo), X) if s_lo else X
        else:
            full = X[-s_lo:] if -s_lo < len(X) else Const(0, 1)
        return full[:w], (full[w:].any() if len(full) > w else Const(0, 1))

    def elaborate(self, platform):
        m = Module()
        L, B, w = self.L, self.B, self.acc_width
        # ---- stage 0: inputs, beat position
        v0, last0 = Signal(), Signal()
        h0, w0 = Signal.like(self.i_h.as_value()), Signal.like(self.i_w.as_value())
        if B > 1:
            beat = Signal(range(B))
            with m.If(self.i_valid):
                m.d.sync += beat.eq(Mux(beat == B - 1, 0, beat + 1))
            is_last = beat == B - 1
        else:
            is_last = Const(1, 1)
        m.d.sync += [v0.eq(self.i_valid), last0.eq(is_last), h0.eq(self.i_h.as_value()),
                     w0.eq(self.i_w.as_value())]
        hv = data.View(data.ArrayLayout(self.H.width, L), h0)
        wv = data.View(data.ArrayLayout(self.W.width, L), w0)
        # ---- stage 1: decode, product, mask
        hl, hh = exp_range(self.H)
        wl, wh = exp_range(self.W)
        e_shape = signed(signed_bits(min(hl + wl, 0), max(hh + wh, 0)))
        v1, last1 = Signal(), Signal()
        m.d.sync += [v1.eq(v0), last1.eq(last0)]
        level = []
        P1s, E1s = [], []
        for j in range(L):
            dh, dw = WeightDecoder(self.H), WeightDecoder(self.W)
            m.submodules[f"dec_h{j}"], m.submodules[f"dec_w{j}"] = dh, dw
            m.d.comb += [dh.code.eq(hv[j]), dw.code.eq(wv[j])]
            p = exact_product(m, dh.sig, dw.sig, f"prod{j}")
            d = self._shift_amount(m, dh, dw, e_shape, hl + wl, hh + wh, len(p), j)
            P1, E1 = Signal(len(p), name=f"p{j}"), Signal.like(d, name=f"d1_{j}")
            m.d.sync += [P1.eq(p if j < self.last_lanes else Mux(last0, 0, p)), E1.eq(d)]
            P1s.append(P1)
            E1s.append(E1)
        # ---- stage 2: alignment
        v, last = Signal(), Signal()
        m.d.sync += [v.eq(v1), last.eq(last1)]
        for j in range(L):
            term, big = self._align(m, P1s[j], E1s[j], hl + wl, hh + wh, j)
            t, b = Signal(w, name=f"t{j}"), Signal(name=f"big{j}")
            m.d.sync += [t.eq(term), b.eq(big)]
            level.append((t, b))
        # ---- adder tree
        for k in range(clog2(L)):
            nxt = []
            for j in range(0, len(level), 2):
                t, b = Signal(w, name=f"l{k}_t{j // 2}"), Signal(name=f"l{k}_big{j // 2}")
                if j + 1 < len(level):
                    (ta, ba), (tb, bb) = level[j], level[j + 1]
                    s = ta + tb
                    m.d.sync += [t.eq(s[:w]), b.eq(ba | bb | s[w])]
                else:
                    m.d.sync += [t.eq(level[j][0]), b.eq(level[j][1])]
                nxt.append((t, b))
            vk, lk = Signal(name=f"l{k}_v"), Signal(name=f"l{k}_last")
            m.d.sync += [vk.eq(v), lk.eq(last)]
            level, v, last = nxt, vk, lk
        (t, b), = level
        # ---- accumulator and output
        acc, acc_ovf = Signal(w), Signal()
        s = acc + t
        new, new_ovf = s[:w], acc_ovf | b | s[w]
        o_v, o_acc, o_ovf = Signal(), Signal(w), Signal()
        m.d.sync += o_v.eq(v & last)
        with m.If(v):
            with m.If(last):
                m.d.sync += [acc.eq(0), acc_ovf.eq(0), o_ovf.eq(new_ovf),
                             o_acc.eq(Mux(new_ovf, (1 << w) - 1, new) if self.saturate else new)]
            with m.Else():
                m.d.sync += [acc.eq(new), acc_ovf.eq(new_ovf)]
        m.d.comb += [self.o_valid.eq(o_v), self.o_acc.eq(o_acc), self.o_ovf.eq(o_ovf)]
        return m


__all__ = ["DotLanes", "exact_product", "check_exact", "reference", "NARROW"]
