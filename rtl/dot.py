"""``DotProduct``: one row ``A = sum_i floor(P_i * 2**(E_i + F))`` per ``ceil(N/L)`` cycles (RTL).

The approximate dot product of :meth:`fixedpoint.datapath.Datapath.dot` up to the accumulator:
decode (:class:`rtl.decoder.WeightDecoder`, h and w), product (:class:`rtl.multiplier.ApproxMultiplier`,
incl. ``prod_bits``), alignment onto the accumulator grid ``2**-F`` (truncating, as
:func:`fixedpoint.accumulate.aligned_terms`), an L-lane adder tree and the accumulator ``uqI.F``
(``w = I + F`` bits) with ``wrap`` or ``saturate`` (:func:`fixedpoint.accumulate.accumulate`).

Constructor: ``DotProduct(dp, N, lanes=L, w_format=None)``; ``w_format`` is the layer's weight
format (default ``dp.weight_format``; pass ``dp.weight_format_for(W)`` for per-layer scaling).
``N`` in 1..2**24, ``lanes`` in 1..64.

Ports (``lib.stream``):

* ``h``: L h codes per beat, ``ArrayLayout(h width, L)`` (lane j in bits ``[j*hw, (j+1)*hw)``).
* ``w``: L weight codes per beat, ``ArrayLayout(w width, L)``.
  ``h`` and ``w`` are joined: a beat transfers when both are valid and the pipeline advances
  (``ready`` of both is ``advance & h.valid & w.valid``).  Beats ``0 .. B-1``, ``B = ceil(N/L)``,
  form one row (element ``i`` in lane ``i mod L`` of beat ``i // L``); on the last beat lanes
  ``j >= N - (B-1)*L`` are masked (their codes are ignored).  Rows follow back to back.
* ``o``: one result per row, struct :attr:`DotProduct.out_layout` (first field in the LSBs):
  ``acc`` (w bits: ``S mod 2**w`` for wrap, ``min(S, 2**w - 1)`` for saturate) and ``ovf``
  (1 bit: ``S >= 2**w``, i.e. the model's overflow count > 0).

Pipeline (all stages advance together; ``advance = ~o.valid | o.ready``):

1. decode + multiply + lane mask -> registers ``P_j, E_j``;
2. align: ``T_j = floor(P_j * 2**(E_j + F))`` as ``w`` bits plus a ``big`` flag (``T_j >= 2**w``),
   one barrel shifter per lane over the clamped shift range;
3. ``ceil(log2 L)`` registered adder-tree levels of w-bit adders, the carry ORed into a sticky
   overflow flag (order independent: all terms are non-negative);
4. the accumulator (w-bit adder + sticky flag), which on the row's last beat loads the output
   register (saturate: all ones if the flag is set) and restarts from 0.

:attr:`DotProduct.latency` = ``3 + ceil(log2 L)``: when the last beat of a row transfers in cycle
``c``, the row's result shows ``o.valid`` in cycle ``c + latency``.  Throughput: one beat per
cycle, so one row per ``ceil(N/L)`` cycles.

``fault`` is for tests only (``"flip_acc0"``: invert bit 0 of ``acc`` when its bits 1 and 2 are
both 1).
"""
from __future__ import annotations

from types import SimpleNamespace


from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from fixedpoint.accumulate import MAX_TERMS
from fixedpoint.bits import clog2
from fixedpoint.datapath import Datapath
from rtl.checked import CheckedComponent
from rtl.decoder import WeightDecoder, unsigned_format
from rtl.multiplier import ApproxMultiplier
from sbs_model.hw_cycles import dot_latency

FAULTS = (None, "flip_acc0")
LANES_MAX = 64


class DotProduct(CheckedComponent):
    """Pipelined L-lane approximate dot product with accumulator (see module docstring)."""

    @staticmethod
    def plan(dp, N: int, lanes: int = 1, w_format=None, fault: str | None = None) -> dict:
        """Checked arguments -> the attributes of a DotProduct (ValueError for bad ones)."""
        if not isinstance(dp, Datapath):
            raise ValueError(f"DotProduct: dp must be a fixedpoint.datapath.Datapath, got {type(dp).__name__}")
        if not isinstance(N, int) or isinstance(N, bool) or not 1 <= N <= MAX_TERMS:
            raise ValueError(f"DotProduct: N must be an int in 1..{MAX_TERMS}, got {N!r}")
        if not isinstance(lanes, int) or isinstance(lanes, bool) or not 1 <= lanes <= LANES_MAX:
            raise ValueError(f"DotProduct: lanes must be an int in 1..{LANES_MAX}, got {lanes!r}")
        if fault not in FAULTS:
            raise ValueError(f"DotProduct: fault must be one of {FAULTS}, got {fault!r}")
        p = SimpleNamespace()
        p.dp = dp
        p.h_fmt = unsigned_format(dp.h_format, "DotProduct")
        p.w_fmt = unsigned_format(w_format if w_format is not None else dp.weight_format, "DotProduct")
        p.N, p.lanes, p.fault = N, lanes, fault
        I, F = dp.acc
        p.acc_width, p.frac_bits = I + F, F
        p.saturate = dp.acc_overflow == "saturate"
        p.beats = -(-N // lanes)
        p.last_lanes = N - (p.beats - 1) * lanes  # valid lanes of the last beat
        p.tree_levels = clog2(lanes)
        p.latency = dot_latency(lanes)  # 3 + tree_levels
        p.out_layout = data.StructLayout({"acc": p.acc_width, "ovf": 1})
        # the product widths of the lane multipliers (built in elaborate)
        mul = ApproxMultiplier.plan(p.h_fmt, p.w_fmt, dp.prod_bits, dp.prod_rounding)
        p.prod_width, p.prod_exp_range = mul["prod_width"], mul["exp_range"]
        return vars(p)

    def __init__(self, dp, N: int, lanes: int = 1, w_format=None, fault: str | None = None):
        super().__init__({
            "h": In(stream.Signature(data.ArrayLayout(self.h_fmt.width, lanes))),
            "w": In(stream.Signature(data.ArrayLayout(self.w_fmt.width, lanes))),
            "o": Out(stream.Signature(self.out_layout)),
        })

    def _multiplier(self):
        return ApproxMultiplier(self.h_fmt, self.w_fmt, self.dp.prod_bits, self.dp.prod_rounding)

    # ------------------------------------------------------------------ alignment
    def _align(self, m, P, E, j):
        """(term w bits, big 1 bit) expressions for ``floor(P * 2**(E + F))``."""
        w, F, pw = self.acc_width, self.frac_bits, self.prod_width
        elo, ehi = self.prod_exp_range  # E of non-zero products; P == 0 gives a zero term anyway
        s_lo = min(max(elo + F, -pw), w)         # below -pw: P >> pw == 0
        s_hi = max(min(ehi + F, w), s_lo)        # above w: any P >= 1 is big
        span = s_hi - s_lo
        # possible values of d = E + F - s_lo on the E signal (which also holds 0 for P == 0)
        d_min = min(elo, 0) + F - s_lo
        d_max = max(ehi, 0) + F - s_lo
        d = E + (F - s_lo)
        if d_min < 0:
            d = Mux(d < 0, 0, d)
        if d_max > span:
            d = Mux(d > span, span, d)
        X = Signal(pw + span, name=f"x{j}")
        if span:
            dd = Signal(range(span + 1), name=f"shift{j}")
            m.d.comb += [dd.eq(d), X.eq(P << dd)]
        else:  # one possible shift (e.g. fixed-point h and w): wires only
            m.d.comb += X.eq(P)
        if s_lo >= 0:
            full = Cat(Const(0, s_lo), X) if s_lo else X
        elif -s_lo >= len(X):
            full = Const(0, 1)
        else:
            full = X[-s_lo:]
        term = full[:w]
        big = full[w:].any() if len(full) > w else Const(0, 1)
        return term, big

    # ------------------------------------------------------------------ elaborate
    def elaborate(self, platform):
        m = Module()
        L, w = self.lanes, self.acc_width
        advance = Signal()
        fire = Signal()
        m.d.comb += [
            advance.eq(~self.o.valid | self.o.ready),
            fire.eq(advance & self.h.valid & self.w.valid),
            self.h.ready.eq(fire),
            self.w.ready.eq(fire),
        ]

        # beat counter -> last beat of a row
        if self.beats > 1:
            beat = Signal(range(self.beats))
            is_last = beat == self.beats - 1
            with m.If(fire):
                m.d.sync += beat.eq(Mux(is_last, 0, beat + 1))
        else:
            is_last = Const(1, 1)

        # ---- stage 1: decode, multiply, mask
        v1, last1 = Signal(), Signal()
        P1 = [Signal(self.prod_width, name=f"p{j}") for j in range(L)]
        E1 = []
        for j in range(L):
            dh = WeightDecoder(self.h_fmt)
            dw = WeightDecoder(self.w_fmt)
            mul = self._multiplier()
            m.submodules[f"dec_h{j}"] = dh
            m.submodules[f"dec_w{j}"] = dw
            m.submodules[f"mul{j}"] = mul
            m.d.comb += [dh.code.eq(self.h.payload[j]), dw.code.eq(self.w.payload[j]),
                         mul.sig_h.eq(dh.sig), mul.exp_h.eq(dh.exp),
                         mul.sig_w.eq(dw.sig), mul.exp_w.eq(dw.exp)]
            E1.append(Signal(mul.exp_shape, name=f"e{j}"))
            p = mul.P if j < self.last_lanes else Mux(is_last, 0, mul.P)
            with m.If(advance):
                m.d.sync += [P1[j].eq(p), E1[j].eq(mul.E)]
        with m.If(advance):
            m.d.sync += [v1.eq(fire), last1.eq(is_last)]

        # ---- stage 2: align onto the accumulator grid
        v, last = Signal(), Signal()
        level = []
        for j in range(L):
            term, big = self._align(m, P1[j], E1[j], j)
            t = Signal(w, name=f"t{j}")
            b = Signal(name=f"big{j}")
            with m.If(advance):
                m.d.sync += [t.eq(term), b.eq(big)]
            level.append((t, b))
        with m.If(advance):
            m.d.sync += [v.eq(v1), last.eq(last1)]

        # ---- stage 3: adder tree, one register level per halving
        for k in range(self.tree_levels):
            nxt = []
            for j in range(0, len(level), 2):
                t = Signal(w, name=f"l{k}_t{j // 2}")
                b = Signal(name=f"l{k}_big{j // 2}")
                if j + 1 < len(level):
                    (ta, ba), (tb, bb) = level[j], level[j + 1]
                    s = ta + tb
                    with m.If(advance):
                        m.d.sync += [t.eq(s[:w]), b.eq(ba | bb | s[w])]
                else:
                    with m.If(advance):
                        m.d.sync += [t.eq(level[j][0]), b.eq(level[j][1])]
                nxt.append((t, b))
            vk, lk = Signal(name=f"l{k}_valid"), Signal(name=f"l{k}_last")
            with m.If(advance):
                m.d.sync += [vk.eq(v), lk.eq(last)]
            level, v, last = nxt, vk, lk
        (t, b), = level

        # ---- stage 4: accumulator and output register
        acc = Signal(w)
        acc_ovf = Signal()
        s = acc + t
        new = s[:w]
        new_ovf = acc_ovf | b | s[w]
        out_valid = Signal()
        out_acc = Signal(w)
        out_ovf = Signal()
        with m.If(advance):
            m.d.sync += out_valid.eq(v & last)
            with m.If(v):
                with m.If(last):
                    m.d.sync += [acc.eq(0), acc_ovf.eq(0), out_ovf.eq(new_ovf)]
                    if self.saturate:
                        m.d.sync += out_acc.eq(Mux(new_ovf, (1 << w) - 1, new))
                    else:
                        m.d.sync += out_acc.eq(new)
                with m.Else():
                    m.d.sync += [acc.eq(new), acc_ovf.eq(new_ovf)]
        result = out_acc
        if self.fault == "flip_acc0":
            result = Mux(out_acc[1] & out_acc[2], out_acc ^ 1, out_acc) if w >= 3 else out_acc ^ 1
        m.d.comb += [self.o.valid.eq(out_valid), self.o.payload.acc.eq(result),
                     self.o.payload.ovf.eq(out_ovf)]
        return m


def pack_codes(codes, width: int) -> int:
    """L codes -> one ``h__payload`` / ``w__payload`` integer (lane j in bits [j*width, ...))."""
    out = 0
    for j, c in enumerate(codes):
        c = int(c)
        if not 0 <= c < (1 << width):
            raise ValueError(f"pack_codes: code {c} out of range 0..{(1 << width) - 1}")
        out |= c << (j * width)
    return out


def beats_of(codes, lanes: int, fill=0) -> list[list[int]]:
    """One row of N codes -> ``ceil(N/L)`` beats of L codes (the last padded with ``fill``:
    an int or a callable returning the code for each padded lane)."""
    codes = [int(c) for c in codes]
    out = []
    for k in range(0, len(codes), lanes):
        beat = codes[k:k + lanes]
        while len(beat) < lanes:
            beat.append(fill() if callable(fill) else int(fill))
        out.append(beat)
    return out


def reference(dp, h_rows, w_rows, w_format=None) -> list[int]:
    """Packed model outputs ``acc | ovf << w`` per row (``Datapath.dot``: A and overflow count > 0)."""
    I, F = dp.acc
    out = []
    for h, wr in zip(h_rows, w_rows):
        A, ovf, _, _ = dp.dot(h, wr, w_format)
        out.append(int(A) | (int(int(ovf) > 0) << (I + F)))
    return out


__all__ = ["DotProduct", "pack_codes", "beats_of", "reference", "clog2"]
