"""``UpdateUnit``: the ``int`` h update of :mod:`fixedpoint.update` / :meth:`Datapath.step` as RTL.

Generated from a :class:`fixedpoint.datapath.Datapath` with ``update = "int"`` and a fixed-point h
format ``uqI.F`` (the int presets: ``uq0.16``), the layer's weight format (scaled, from
``dp.weight_format_for``) and a lane count L.  The paper's float32 update is model-only (ValueError).

Per spike (stream ``coef``, payload :attr:`coef_layout`: ``C`` Fc bits, ``G`` Fg bits, ``Y``
Qb+1 bits, ``exp_r`` signed): the coefficient ``K = G*Y`` truncated to ``coef_bits`` significant
bits (leading-one tree + shifter) with ``exp_K = -Fg - Qb - exp_r - (R-1) + shift``, exactly
:func:`fixedpoint.update.coefficient`; ``K``/``exp_K``/``C`` are held in registers (also visible on
the ``K``/``exp_K`` output signals) until the next ``coef`` transfer.

Per beat (stream ``i``, payload ``h`` and ``w``: L codes each, lane j in bits ``[j*width, (j+1)*width)``)
and per lane: decode (:class:`rtl.decoder.WeightDecoder`) and multiply
(:class:`rtl.multiplier.ApproxMultiplier`) exactly as the dot product did (``P``, ``E``), then

* ``T1 = floor(C*sig_h * 2**(exp_h - Fc + Fu))`` (a constant shift: h is fixed point),
* ``T2 = floor(K*P * 2**(exp_K + E + Fu))`` (a barrel shifter, left or right, amount range from the
  formats' exponent ranges),
* each term clamped at ``M = 2**(I + Fu)`` (exact: a term >= M already saturates H; the model's cap
  at ``2**60`` is never reached below M because the datapath validation keeps ``I + Fu <= 59``),
* ``code = rshift_round(T1 + T2, Fu - F, h_rounding)`` saturated at ``2**(I+F) - 1`` (the model's
  ``encode_parts(T1 + T2, -Fu)``, overflow ``saturate``).

Output stream ``o``: L new h codes per beat (lanes past N carry don't-care codes for the caller to
drop).  Pipeline: 3 register stages (products, aligned sum, code), one beat per cycle,
back-pressure stalls all stages; :attr:`latency` = 3 (a beat transferred in cycle ``c`` shows
``o.valid`` in cycle ``c + 3``).  ``coef`` is accepted only when the pipeline is empty and has
priority over ``i`` (``i.ready`` is low while ``coef.valid``).

Widths (int-e4m1, L lanes): per lane one 16 x 16 (C*h) and one 18 x 18 (K*P) multiplier, two
25-bit clamped terms (M = 2**24) and a 26-bit adder; per unit one 16 x 17 multiplier (G*Y).

``fault`` is for tests only (``"flip_bit0"``: invert bit 0 of lane 0's code when bits 1 and 2 of
its h input are both 1).
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from amaranth import Module, Mux, Signal, signed
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from fixedpoint.formats import FixedFormat, parse_format
from fixedpoint.product import product
from fixedpoint.update import coefficient, update_int_sums
from rtl.checked import CheckedComponent
from rtl.decoder import WeightDecoder, signed_bits
from rtl.multiplier import ApproxMultiplier
from rtl.normaliser import bit_length_expr, exp_bits
from rtl.round_code import round_to_code
from sbs_model.hw_cycles import UPDATE_LATENCY

FAULTS = (None, "flip_bit0")


def check_rtl_datapath(dp, who: str) -> None:
    """ValueError unless ``dp`` is supported by the RTL update (``int`` update, fixed-point h)."""
    if dp.update != "int":
        raise ValueError(f"{who}: datapath update {dp.update!r} is model-only; the RTL supports update 'int' "
                         f"(e.g. preset int-e4m1)")
    H = parse_format(dp.h_format)
    if not isinstance(H, FixedFormat):
        raise ValueError(f"{who}: h_format {H} is a float format; the RTL update supports fixed-point h "
                         f"(uqI.F, e.g. uq0.16)")
    if H.int_bits + dp.upd_frac_bits < 1:
        raise ValueError(f"{who}: h_format {H} with upd_frac_bits {dp.upd_frac_bits}: need I + Fu >= 1")


def exp_r_range(dp) -> tuple[int, int]:
    """(smallest, largest) ``exp_r`` of a non-zero accumulator."""
    I, F = dp.acc
    R = int(dp.norm_bits)
    return 1 - R - F, I + F - R - F


def coef_shift_max(dp) -> int:
    """Largest number of bits dropped when truncating ``K = G*Y`` to ``coef_bits``."""
    return max(0, int(dp.g_bits) + int(dp.recip_bits) + 1 - int(dp.coef_bits))


def exp_k_range(dp) -> tuple[int, int]:
    base = -int(dp.g_bits) - int(dp.recip_bits) - (int(dp.norm_bits) - 1)
    lo, hi = exp_r_range(dp)
    return base - hi, base - lo + coef_shift_max(dp)


def reference(dp, w_format, h_codes, w_codes, C, G, Y, exp_r):
    """Model ``(K, exp_K, new h codes)`` for one spike (``coefficient``, ``product``,
    ``update_int_sums``, ``encode_parts`` into H with ``saturate``)."""
    H, W = parse_format(dp.h_format), parse_format(w_format)
    K, eK = coefficient(G, Y, exp_r, dp.g_bits, dp.recip_bits, dp.norm_bits, dp.coef_bits)
    sh, eh = H.decode_parts(np.asarray(h_codes, dtype=np.int64))
    sw, ew = W.decode_parts(np.asarray(w_codes, dtype=np.int64))
    P, E = product(sh, eh, sw, ew, dp.prod_bits, dp.prod_rounding)
    S = update_int_sums(sh, eh, P, E, C, dp.c_bits, int(K), int(eK), dp.upd_frac_bits)
    codes = H.encode_parts(S, np.full(S.shape, -dp.upd_frac_bits), dp.h_rounding, "saturate")
    return int(K), int(eK), [int(c) for c in codes]


def align_clamped(m, v, sh, lo: int, hi: int, log2_cap: int, name: str):
    """``min(floor(v * 2**sh), 2**log2_cap)`` for unsigned ``v`` and signed ``sh`` in [lo, hi]."""
    cap = 1 << log2_cap
    out = Signal(log2_cap + 1, name=name)
    vw = len(v)
    parts = []
    if hi >= 0:  # left shifts (any amount >= log2_cap saturates a non-zero v)
        amt = Signal(range(log2_cap + 1), name=f"{name}_lamt")
        m.d.comb += amt.eq(Mux(sh >= log2_cap, log2_cap, sh))
        left = Signal(vw + log2_cap, name=f"{name}_left")
        m.d.comb += left.eq(v << amt)
        parts.append(Mux(left >= cap, cap, left))
    if lo < 0:  # right shifts (truncating; amounts >= vw give 0)
        amt = Signal(range(vw + 1), name=f"{name}_ramt")
        m.d.comb += amt.eq(Mux(-sh >= vw, vw, -sh))
        right = Signal(vw, name=f"{name}_right")
        m.d.comb += right.eq(v >> amt)
        parts.append(Mux(right >= cap, cap, right))
    if len(parts) == 2:
        m.d.comb += out.eq(Mux(sh < 0, parts[1], parts[0]))
    else:
        m.d.comb += out.eq(parts[0])
    return out


class UpdateUnit(CheckedComponent):
    """L-lane integer h update (see module docstring)."""

    latency = UPDATE_LATENCY

    @staticmethod
    def plan(dp, w_format=None, lanes: int = 1, fault: str | None = None) -> dict:
        """Checked arguments -> the attributes of a UpdateUnit (ValueError for bad ones)."""
        p = SimpleNamespace()
        check_rtl_datapath(dp, "UpdateUnit")
        if not isinstance(lanes, int) or isinstance(lanes, bool) or not 1 <= lanes <= 64:
            raise ValueError(f"UpdateUnit: lanes must be an int in 1..64, got {lanes!r}")
        if fault not in FAULTS:
            raise ValueError(f"UpdateUnit: fault must be one of {FAULTS}, got {fault!r}")
        p.dp = dp
        p.lanes = lanes
        p.fault = fault
        p.H = parse_format(dp.h_format)
        p.W = parse_format(w_format if w_format is not None else dp.weight_format)
        p.h_width = p.H.width
        p.w_width = p.W.width
        p.y_width = int(dp.recip_bits) + 1
        I, F = dp.acc
        p.exp_r_shape = signed(exp_bits(I + F, F, int(dp.norm_bits)))
        ek_lo, ek_hi = exp_k_range(dp)
        p.exp_k_shape = signed(signed_bits(ek_lo, ek_hi))
        p.exp_k_range = (ek_lo, ek_hi)
        p.coef_layout = data.StructLayout({"C": int(dp.c_bits), "G": int(dp.g_bits), "Y": p.y_width,
                                              "exp_r": p.exp_r_shape})
        p.in_layout = data.StructLayout({"h": data.ArrayLayout(p.h_width, lanes),
                                            "w": data.ArrayLayout(p.w_width, lanes)})
        return vars(p)

    def __init__(self, dp, w_format=None, lanes: int = 1, fault: str | None = None):
        super().__init__({
            "coef": In(stream.Signature(self.coef_layout)),
            "i": In(stream.Signature(self.in_layout)),
            "o": Out(stream.Signature(data.ArrayLayout(self.h_width, lanes))),
            "K": Out(int(dp.coef_bits)),
            "exp_K": Out(self.exp_k_shape),
        })

    # ------------------------------------------------------------------ helpers for callers
    def pack_coef(self, C: int, G: int, Y: int, exp_r: int) -> int:
        """The ``coef`` payload integer."""
        ew = self.exp_r_shape.width
        return (int(C) | (int(G) << self.dp.c_bits) | (int(Y) << (self.dp.c_bits + self.dp.g_bits))
                | ((int(exp_r) & ((1 << ew) - 1)) << (self.dp.c_bits + self.dp.g_bits + self.y_width)))

    def pack_beat(self, h_codes, w_codes) -> int:
        """The ``i`` payload integer for L h codes and L weight codes (pad with 0)."""
        v = 0
        for j, c in enumerate(h_codes):
            v |= int(c) << (j * self.h_width)
        off = self.lanes * self.h_width
        for j, c in enumerate(w_codes):
            v |= int(c) << (off + j * self.w_width)
        return v

    def unpack_out(self, payload: int) -> list[int]:
        mask = (1 << self.h_width) - 1
        return [(int(payload) >> (j * self.h_width)) & mask for j in range(self.lanes)]

    # ------------------------------------------------------------------ hardware
    def elaborate(self, platform):
        m = Module()
        dp, L = self.dp, self.lanes
        H = self.H
        Fc, Fg, Qb, R = int(dp.c_bits), int(dp.g_bits), int(dp.recip_bits), int(dp.norm_bits)
        Fu, cb = int(dp.upd_frac_bits), int(dp.coef_bits)
        log2_cap = H.int_bits + Fu  # M = 2**(I + Fu)

        # ---- per-spike coefficient
        C = Signal(Fc)
        K = Signal(cb)
        eK = Signal(self.exp_k_shape)
        cp = self.coef.payload
        kfull = Signal(Fg + Qb + 1)
        m.d.comb += kfull.eq(cp.G * cp.Y)
        bl = Signal(range(Fg + Qb + 2))
        m.d.comb += bl.eq(bit_length_expr(kfull))
        shk = Signal(range(coef_shift_max(dp) + 1))
        m.d.comb += shk.eq(Mux(bl > cb, bl - cb, 0))
        base = -Fg - Qb - (R - 1)

        # ---- pipeline control
        v1, v2, v3 = Signal(), Signal(), Signal()
        advance = Signal()
        m.d.comb += advance.eq(~self.o.valid | self.o.ready)
        empty = ~v1 & ~v2 & ~v3
        m.d.comb += [self.coef.ready.eq(empty), self.i.ready.eq(advance & ~self.coef.valid)]
        with m.If(self.coef.valid & self.coef.ready):
            m.d.sync += [C.eq(cp.C), K.eq(kfull >> shk), eK.eq(base - cp.exp_r + shk)]
        m.d.comb += [self.K.eq(K), self.exp_K.eq(eK)]
        take = self.i.valid & self.i.ready
        with m.If(advance):
            m.d.sync += [v1.eq(take), v2.eq(v1), v3.eq(v2)]

        # ---- lanes
        hc = Signal(4)  # fault condition of lane 0, delayed with the data
        hc1, hc2 = Signal(2), Signal(2)
        outs = []
        for j in range(L):
            dh = WeightDecoder(H)
            dw = WeightDecoder(self.W)
            mul = ApproxMultiplier.from_datapath(dp, self.W)
            m.submodules[f"dec_h{j}"] = dh
            m.submodules[f"dec_w{j}"] = dw
            m.submodules[f"mul{j}"] = mul
            h_in = self.i.payload.h[j]
            m.d.comb += [dh.code.eq(h_in), dw.code.eq(self.i.payload.w[j]),
                         mul.sig_h.eq(dh.sig), mul.exp_h.eq(dh.exp), mul.sig_w.eq(dw.sig),
                         mul.exp_w.eq(dw.exp)]
            if j == 0:
                with m.If(advance):
                    m.d.sync += [hc1.eq(h_in[1:3] if self.h_width >= 3 else 0), hc2.eq(hc1), hc.eq(hc2)]
            # stage 1: products and the T2 shift amount
            e_lo, e_hi = mul.exp_range
            e_lo, e_hi = min(e_lo, 0), max(e_hi, 0)
            sh_lo = self.exp_k_range[0] + e_lo + Fu
            sh_hi = self.exp_k_range[1] + e_hi + Fu
            a1 = Signal(Fc + dh.sig_bits, name=f"ch{j}")
            b1 = Signal(cb + mul.prod_width, name=f"kp{j}")
            s1 = Signal(signed(signed_bits(sh_lo, sh_hi)), name=f"sh{j}")
            with m.If(advance):
                m.d.sync += [a1.eq(C * dh.sig), b1.eq(K * mul.P), s1.eq(eK + mul.E + Fu)]
            # stage 2: aligned, clamped terms and their sum
            s_t1 = -H.frac_bits - Fc + Fu  # exp_h - Fc + Fu, a constant for fixed-point h
            t1 = align_clamped(m, a1, s_t1, s_t1, s_t1, log2_cap, f"t1_{j}")
            t2 = align_clamped(m, b1, s1, sh_lo, sh_hi, log2_cap, f"t2_{j}")
            ssum = Signal(log2_cap + 2, name=f"sum{j}")
            with m.If(advance):
                m.d.sync += ssum.eq(t1 + t2)
            # stage 3: one rounding into H, saturate
            code = self._round_into_h(m, ssum, j)
            outs.append(code)
        for j, code in enumerate(outs):
            if j == 0 and self.fault == "flip_bit0":
                code = Mux(hc == 3, code ^ 1, code)
            with m.If(advance):
                m.d.sync += self.o.payload[j].eq(code)
        m.d.comb += self.o.valid.eq(v3)
        return m

    def _round_into_h(self, m, s, j):
        return round_to_code(m, s, int(self.dp.upd_frac_bits) - self.H.frac_bits, self.dp.h_rounding,
                             self.H.width, j)
