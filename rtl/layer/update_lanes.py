"""``UpdateLanes``: L lanes of the ``int`` h update with the coefficients carried by every beat.

The arithmetic of :meth:`fixedpoint.datapath.Datapath.step` (``int`` update, fixed-point
``H = uqI.Fh``, ``Fu >= Fh``), as :class:`rtl.update.UpdateUnit`, but the per-spike values
``C`` (``Fc + 1`` bits), ``K`` (``coef_bits``) and ``exp_K`` arrive with each beat, so beats of
different IPs follow each other without a pause.  Per lane:

* decode h and w (:class:`rtl.decoder.WeightDecoder`) and the exact product ``P = sig_h*sig_w``,
  ``E = exp_h + exp_w`` (:func:`rtl.layer.dot_lanes.exact_product`: shifted adds for a narrow
  significand; exact products only, ``prod_bits`` None);
* ``T1 = floor(C*sig_h * 2**(-Fh - Fc + Fu))``, ``T2 = floor(K*P * 2**(exp_K + E + Fu))``, both
  clamped at ``2**(I + Fu)`` (:func:`shift_amounts`, :func:`shifted`, :func:`clamp`: the value of
  :func:`rtl.update.align_clamped`; exact: a term at the cap already saturates H);
* ``code = rshift_round(T1 + T2, Fu - Fh, h_rounding)`` saturated at H's largest code.

Identity: ``C = 2**Fc`` and ``K = 0`` give ``T1 = sig_h * 2**(Fu - Fh)`` exactly and ``T2 = 0``,
so the code passes unchanged (used for the first pass of an IP and for ignored spikes).

Ports (plain signals, no back-pressure): ``h``, ``w`` (``ArrayLayout`` of L codes), ``C``, ``K``,
``exp_K`` in; ``o`` (L codes) out.  ``exp_k_early``: ``exp_K`` arrives one cycle before its beat;
``ck_early``: ``C`` and ``K`` too (both as the engine core drives them).  Seven registered stages: the product ``P`` and the T2 shift
``exp_K + E + Fu``; ``C*sig_h``, ``K*P`` and the shift amounts; the same registered again next to
the logic; T2's shift by the multiple of 8
(:func:`coarse_shifted`) and whether its bits that always reach the cap are set
(:func:`coarse_high`); T2's shift by the rest, with whether it reaches the cap (:func:`fine_overflow`),
and T1's clamp; the sum (T2 clamped); the code.  No multiplier output feeds
another multiplier, no shifter feeds a comparison in the same cycle.  :attr:`latency` = 7:
inputs of cycle ``c`` give ``o`` in cycle ``c + 7``.  Per lane one
(Fc+1) x h-significand and one coef_bits x product-width multiplier.
"""
from __future__ import annotations

import numpy as np
from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from fixedpoint.formats import parse_format
from fixedpoint.product import product
from fixedpoint.update import update_int_sums
from rtl.decoder import WeightDecoder, exp_range, signed_bits
from rtl.emit import KEEP_FLOPS
from rtl.layer.dot_lanes import check_exact, exact_product
from rtl.update import check_rtl_datapath, exp_k_range
from rtl.round_code import round_to_code


FANOUT = 8  # ck_early: lanes fed by one first-level copy of C and K (the second level is one copy per lane)
GROUP = 1  # lanes per copy of the per-beat C and K registers: one per lane, next to its multipliers (4 and 2: layer 0 missed 100 MHz on a copy -> a far multiplier, 98.5 and 99.2 MHz, seed 2 84.3)


def reference(dp, w_format, h_codes, w_codes, C, K, exp_K) -> list[int]:
    """Model codes for one beat: ``update_int_sums`` then ``encode_parts`` into H (saturate)."""
    H, W = parse_format(dp.h_format), parse_format(w_format)
    sh, eh = H.decode_parts(np.asarray(h_codes, dtype=np.int64))
    sw, ew = W.decode_parts(np.asarray(w_codes, dtype=np.int64))
    P, E = product(sh, eh, sw, ew, dp.prod_bits, dp.prod_rounding)
    S = update_int_sums(sh, eh, P, E, C, dp.c_bits, int(K), int(exp_K), dp.upd_frac_bits)
    return [int(c) for c in H.encode_parts(S, np.full(S.shape, -dp.upd_frac_bits), dp.h_rounding, "saturate")]


def shift_amounts(m, sh, lo: int, hi: int, log2_cap: int, vw: int, name: str):
    """``(left, right, neg)`` Signals for :func:`shifted`: the left amount ``min(sh, log2_cap)``, the
    right amount ``min(-sh, vw)`` and ``sh < 0``, for a signed shift ``sh`` in ``[lo, hi]``."""
    la = Signal(range(log2_cap + 1), name=f"{name}_lamt")
    ra = Signal(range(vw + 1), name=f"{name}_ramt")
    neg = Signal(name=f"{name}_neg")
    m.d.comb += [la.eq(Mux(sh < 0, 0, Mux(sh >= log2_cap, log2_cap, sh)) if hi >= 0 else 0),
                 ra.eq(Mux(sh >= 0, 0, Mux(-sh >= vw, vw, -sh)) if lo < 0 else 0), neg.eq(sh < 0)]
    return la, ra, neg


def shifted(v, la, ra, neg, log2_cap: int):
    """``floor(v * 2**sh)`` as ``vw + log2_cap`` bits, from the amounts of :func:`shift_amounts`
    (a left shift by ``la`` or a right shift by ``ra``; ``la = log2_cap`` stands for any larger
    shift: the value is then >= the cap or 0, as :func:`clamp` needs)."""
    return Mux(neg, v >> ra, v << la)


def clamp(x, log2_cap: int):
    """``min(x, 2**log2_cap)``: the comparison with the cap as an OR of the bits at and above it."""
    if len(x) <= log2_cap:
        return x
    return Mux(x[log2_cap:].any(), 1 << log2_cap, x[:log2_cap])


def coarse_shifted(v, la, ra, neg, width: int):
    """The first half of :func:`shifted`: ``v`` shifted by the amounts' multiples of 8 (left by
    ``la & ~7`` or right by ``ra & ~7``), as ``width`` bits."""
    left = v << Cat(Const(0, 3), la[3:]) if len(la) > 3 else v
    right = v >> Cat(Const(0, 3), ra[3:]) if len(ra) > 3 else v
    return Mux(neg, right, left)[:width]


def coarse_high(v, la, ra, neg, log2_cap: int):
    """Whether the bits of :func:`coarse_shifted`'s value that always reach the cap after the fine
    shift are non-zero -- bits ``>= log2_cap`` for a left shift, ``>= log2_cap + 7`` for a right
    shift -- computed from ``v`` (an OR of a suffix of ``v`` per multiple of 8) in the same cycle as
    the coarse shift."""
    n, cap = len(v), log2_cap

    def suffix(lo):
        lo = max(lo, 0)
        return v[lo:].any() if lo < n else Const(0, 1)

    left, right = suffix(cap), suffix(cap + 7)
    for c in range(1, (1 << max(len(la) - 3, 0))):
        left = Mux(la[3:] == c, suffix(cap - 8 * c), left)
    for c in range(1, (1 << max(len(ra) - 3, 0))):
        right = Mux(ra[3:] == c, suffix(cap + 7 + 8 * c), right)
    return Mux(neg, right, left)


def fine_overflow(y, f, neg, log2_cap: int, high):
    """Whether ``y << f`` (``neg`` false) or ``y >> f`` (``neg`` true), ``f`` in 0..7, is at least
    ``2**log2_cap``: ``high`` (:func:`coarse_high` of the value that gave ``y``) or one of the seven
    bits of ``y`` below that which the fine shift moves to the cap or above."""
    n, cap = len(y), log2_cap
    left = [y[cap - i] & (f >= i) for i in range(1, 8) if 0 <= cap - i < n]
    right = [y[cap + i] & (f <= i) for i in range(7) if cap + i < n]
    any_left = Cat(*left).any() if left else Const(0, 1)
    any_right = Cat(*right).any() if right else Const(0, 1)
    return high | Mux(neg, any_right, any_left)

class UpdateLanes(wiring.Component):
    """L-lane integer h update, coefficients per beat (see module docstring)."""

    latency = 7

    def __init__(self, dp, w_format, lanes: int, exp_k_early: bool = False, ck_early: bool = False):
        self._MustUse__silence = True
        check_rtl_datapath(dp, "UpdateLanes")
        check_exact(dp, "UpdateLanes")
        self.H, self.W = parse_format(dp.h_format), parse_format(w_format)
        if int(dp.upd_frac_bits) < self.H.frac_bits:
            raise ValueError(f"UpdateLanes: datapath field upd_frac_bits {dp.upd_frac_bits} must be >= the h "
                             f"format's fraction bits {self.H.frac_bits}")
        if not isinstance(lanes, int) or not 1 <= lanes <= 256:
            raise ValueError(f"UpdateLanes: lanes must be an int in 1..256, got {lanes!r}")
        self.dp, self.lanes, self.exp_k_early, self.ck_early = dp, lanes, bool(exp_k_early), bool(ck_early)
        self.exp_k_range = exp_k_range(dp)
        self.exp_k_shape = signed(signed_bits(*self.exp_k_range))
        self._MustUse__silence = False
        # exp_k_early: exp_K arrives a cycle before its beat (port exp_K, the value exp_K will have), and
        # each lane registers its own copy (KEEP_FLOPS): one exp_K register for all lanes fed the lanes'
        # shift adders across the chip (layer 0 at 08d505f, 100.35 MHz: 6.7 ns of routing).
        # ck_early: C and K arrive a cycle before their beat too and go through two levels of copies (one
        # per FANOUT lanes, then one per lane) instead of one: the engine's single C register drove 32
        # lanes' copies across the chip (layer 0 at 32 lanes, aa4130e, seed 2: 12.02 ns of routing)
        super().__init__({
            "h": In(data.ArrayLayout(self.H.width, lanes)), "w": In(data.ArrayLayout(self.W.width, lanes)),
            "C": In(int(dp.c_bits) + 1), "K": In(int(dp.coef_bits)), "exp_K": In(self.exp_k_shape),
            "o": Out(data.ArrayLayout(self.H.width, lanes)),
        })

    def elaborate(self, platform):
        m = Module()
        dp, H = self.dp, self.H
        Fc, Fu, cb = int(dp.c_bits), int(dp.upd_frac_bits), int(dp.coef_bits)
        log2_cap = H.int_bits + Fu
        s_t1 = -H.frac_bits - Fc + Fu
        # the per-beat values, stage 1: one register per group of GROUP lanes (a register shared by all
        # lanes would drive multipliers across the chip); marked rtl.emit.KEEP_FLOPS so that Yosys does not
        # merge the copies back into one (it merges equal flip-flops bit by bit; at c154b96 layer 0's 32
        # K copies were 5, one bit driving 32 multipliers: 83.26 MHz)
        first = [(self.C, self.K)]
        if self.ck_early:  # the first level: one copy per FANOUT lanes
            first = []
            for f in range(-(-self.lanes // FANOUT)):
                C0 = Signal(Fc + 1, name=f"C0_{f}", init=f % (1 << (Fc + 1)), attrs={KEEP_FLOPS: 1})
                K0 = Signal(cb, name=f"K0_{f}", init=f % (1 << cb), attrs={KEEP_FLOPS: 1})
                m.d.sync += [C0.eq(self.C), K0.eq(self.K)]
                first.append((C0, K0))
        copies = []
        for g in range(-(-self.lanes // GROUP)):
            C1 = Signal(Fc + 1, name=f"C1_{g}", init=g % (1 << (Fc + 1)), attrs={KEEP_FLOPS: 1})
            K1 = Signal(cb, name=f"K1_{g}", init=g % (1 << cb), attrs={KEEP_FLOPS: 1})
            C0, K0 = first[(g * GROUP // FANOUT) if self.ck_early else 0]
            m.d.sync += [C1.eq(C0), K1.eq(K0)]
            copies.append((C1, K1))
        hl, hh = exp_range(H)
        wl, wh = exp_range(self.W)
        e_lo, e_hi = min(hl + wl, 0), max(hh + wh, 0)
        for j in range(self.lanes):
            C1, K1 = copies[j // GROUP]
            dh, dw = WeightDecoder(H), WeightDecoder(self.W)
            m.submodules[f"dec_h{j}"], m.submodules[f"dec_w{j}"] = dh, dw
            m.d.comb += [dh.code.eq(self.h[j]), dw.code.eq(self.w[j])]
            prod = exact_product(m, dh.sig, dw.sig, f"prod{j}")
            sh_lo, sh_hi = self.exp_k_range[0] + e_lo + Fu, self.exp_k_range[1] + e_hi + Fu
            # stage 1: the product P = sig_h*sig_w (decode + shifted adds) and the T2 shift
            # exp_K + E + Fu, operands registered
            sh0 = Signal(dh.sig_bits, name=f"sigh{j}")
            p0 = Signal(len(prod), name=f"p{j}")
            sh = Signal(signed(signed_bits(sh_lo, sh_hi)), name=f"sh{j}")
            ek = self.exp_K
            if self.exp_k_early:
                ek = Signal(self.exp_k_shape, name=f"ek{j}", attrs={KEEP_FLOPS: 1})
                m.d.sync += ek.eq(self.exp_K)
            m.d.sync += [sh0.eq(dh.sig), p0.eq(prod), sh.eq(ek + dh.exp + dw.exp + Fu)]
            # stage 2: C*sig_h, K*P (one multiplier each, registered) and the T2 shift amounts
            a1 = Signal(Fc + 1 + dh.sig_bits, name=f"ch{j}")
            b1 = Signal(cb + len(prod), name=f"kp{j}")
            la, ra, neg = shift_amounts(m, sh, sh_lo, sh_hi, log2_cap, len(b1), f"t2_{j}")
            la2, ra2, neg2 = Signal.like(la), Signal.like(ra), Signal()
            m.d.sync += [a1.eq(C1 * sh0), b1.eq(K1 * p0), la2.eq(la), ra2.eq(ra), neg2.eq(neg)]
            # stage 2b: the products registered once more, next to the logic (the multipliers' own
            # output registers sit at the multiplier columns, up to 10 ns of routing away)
            a1r, b1r = Signal.like(a1, name=f"chr{j}"), Signal.like(b1, name=f"kpr{j}")
            la2r, ra2r, neg2r = Signal.like(la2, name=f"t2la{j}"), Signal.like(ra2, name=f"t2ra{j}"), Signal(name=f"t2ng{j}")
            m.d.sync += [a1r.eq(a1), b1r.eq(b1), la2r.eq(la2), ra2r.eq(ra2), neg2r.eq(neg2)]
            a1, b1, la2, ra2, neg2 = a1r, b1r, la2r, ra2r, neg2r
            # stage 3: T1's shift (a constant: wires); T2's coarse shift (multiples of 8)
            x1 = Signal(len(a1) + log2_cap, name=f"t1x{j}")
            y2 = Signal(len(b1) + log2_cap, name=f"t2y{j}")
            f2, neg3, hi2 = Signal(3, name=f"t2f{j}"), Signal(name=f"t2neg{j}"), Signal(name=f"t2hi{j}")
            m.d.sync += [x1.eq(a1 << s_t1 if s_t1 >= 0 else a1 >> -s_t1),
                         y2.eq(coarse_shifted(b1, la2, ra2, neg2, len(y2))),
                         hi2.eq(coarse_high(b1, la2, ra2, neg2, log2_cap)),
                         f2.eq(Mux(neg2, ra2[:3], la2[:3])), neg3.eq(neg2)]
            # stage 4: T1 clamped at 2**(I + Fu); T2's fine shift, its low I + Fu bits and whether
            # the shifted value reaches the cap (from the coarse value and the fine amount)
            r1 = Signal(log2_cap + 1, name=f"t1r{j}")
            z2, o2 = Signal(log2_cap, name=f"t2z{j}"), Signal(name=f"t2o{j}")
            m.d.sync += [r1.eq(clamp(x1, log2_cap)), z2.eq(Mux(neg3, y2 >> f2, y2 << f2)[:log2_cap]),
                         o2.eq(fine_overflow(y2, f2, neg3, log2_cap, hi2))]
            # stage 5: sum (T2 clamped: the cap when it overflows); stage 6: one rounding into H, saturate
            ssum = Signal(log2_cap + 2, name=f"sum{j}")
            m.d.sync += ssum.eq(r1 + Mux(o2, 1 << log2_cap, z2))
            m.d.sync += self.o[j].eq(self._round_into_h(m, ssum, j))
        return m

    def _round_into_h(self, m, s, j):
        return round_to_code(m, s, int(self.dp.upd_frac_bits) - self.H.frac_bits, self.dp.h_rounding,
                             self.H.width, j)


__all__ = ["UpdateLanes", "reference"]
