"""``ScaledUpdateLanes``: L lanes of the ``scaled`` h update (one multiplier per lane, or none).

The arithmetic of :meth:`fixedpoint.datapath.Datapath.step` with ``update = "scaled"``
(:mod:`fixedpoint.scaled`; fixed-point ``H = uqI.Fh``, ``Fu >= Fh``, exact products).  Per lane and
beat, with the per-spike values ``K`` (``coef_bits``), ``exp_K``, ``j`` (the rounding position,
:func:`scaled_constants`) and ``last`` carried by the beat:

* decode h and w, ``P = sig_h*sig_w`` (:func:`rtl.layer.dot_lanes.exact_product`: shifted adds),
  ``E = exp_h + exp_w``;
* ``T1 = sig_h << (Fu - Fh)`` (h itself on the update grid: wiring, no multiplier);
* ``T2 = floor(K*P * 2**(exp_K + E + Fu))`` clamped at ``2**X`` (:attr:`clamp_bits`): ``K*P`` is one
  multiplier (``coef="mult"``, the ``scaled-*`` presets: 18 x 18 bits, one MULT18X18D) or, for a
  coefficient of at most :data:`SHIFT_ADD_MAX` bits (``coef="shift_add"``, the ``cheap-*`` presets),
  ``coef_bits`` gated copies of ``P`` summed by a balanced tree of adders (no multiplier);
* ``U = T1 + T2``; not ``last``: the code ``sat(rshift_round(U, Fu - Fh + j))`` in H's rounding
  mode -- the model's ``encode_parts(min(U, 2**cap) * 2**(Fc - j), -(Fu + Fc))``.  The rounding
  position is a mux: ``U`` is shifted left by ``j_max - j`` (3-way mux for ``j_max = 2``) and then
  rounded at the fixed position ``Fu - Fh + j_max``;
* ``last``: ``U`` itself (``out_width`` bits), for the final factor ``C_{T-1}``
  (:class:`rtl.layer.final_scale.FinalScale`).

Exactness of the clamp: ``X`` is the smallest exponent with ``2**X`` saturating H under every
factor of the layer (``2**-j`` for ``j <= j_max`` and ``C_{T-1}``) and ``X <= Fu + vb + Fc`` (the
model's cap), so a clamped ``T2`` saturates exactly when the model's unclamped one does, and an
unclamped ``U < 2**(X+1)`` is below the model's cap (``min`` inactive).

Ports (plain signals): ``h``, ``w`` (``ArrayLayout`` of L codes), ``K``, ``exp_K``, ``j``
(:attr:`j_width` bits), ``last`` in; ``o`` (L words of :attr:`out_width` bits: the code,
zero-extended, or ``U``) out.  Six registered stages (the product P and the shift
``exp_K + E + Fu``; ``K*P`` and the shift amounts; T2's shift by the multiple of 8; its shift by
the rest with whether it reaches ``2**X`` (from the coarse value, no comparison after a shifter);
the clamp, the rounding-position shift and the sum; the rounding and saturation),
:attr:`latency` = 7 like :class:`rtl.layer.update_lanes.UpdateLanes` (the code registered once more).

Identity: ``K = 0, j = 0, last = 0`` pass a code unchanged (first pass of an IP).
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data
from amaranth.lib.wiring import In, Out

from fixedpoint.datapath import value_bits_nb
from fixedpoint.formats import FixedFormat, parse_format
from fixedpoint.product import product
from fixedpoint.update import coefficient, scale_sums, update_scaled_sums
from rtl.checked import CheckedComponent
from rtl.decoder import WeightDecoder, exp_range, signed_bits
from rtl.layer.dot_lanes import check_exact, exact_product
from rtl.layer.scaled_coefficient import exp_k_range
from rtl.layer.update_lanes import coarse_shifted, shift_amounts
from rtl.round_code import round_to_code

COEFS = ("mult", "shift_add")
SHIFT_ADD_MAX = 6  # a coefficient of at most this many bits multiplies by gated shifted adds


def check_layer_datapath(dp, who: str) -> None:
    """ValueError unless the layer engine supports ``dp``: update ``int`` or ``scaled``, fixed-point h."""
    if dp.update not in ("int", "scaled"):
        raise ValueError(f"{who}: datapath update {dp.update!r} is model-only; the layer engine supports the "
                         "updates 'int' and 'scaled' (e.g. presets int-e4m1, scaled-e4m1, cheap-e4m1)")
    H = parse_format(dp.h_format)
    if not isinstance(H, FixedFormat):
        raise ValueError(f"{who}: h_format {H} is a float format; the layer engine supports fixed-point h "
                         "(uqI.F, e.g. uq0.16)")
    if H.int_bits + dp.upd_frac_bits < 1:
        raise ValueError(f"{who}: h_format {H} with upd_frac_bits {dp.upd_frac_bits}: need I + Fu >= 1")


def coef_kind(dp) -> str:
    """``"shift_add"`` for a coefficient of at most :data:`SHIFT_ADD_MAX` bits, else ``"mult"``."""
    return "shift_add" if int(dp.coef_bits) <= SHIFT_ADD_MAX else "mult"


def scaled_constants(dp, tables) -> tuple[list[int], int]:
    """``(j, C_last)`` of the ``scaled`` tables (:meth:`Datapath.tables`): the rounding position
    ``j_t = Fc - log2(C_t)`` of every spike but the last (0 for the last) and ``C_{T-1}``
    (uq2.Fc).  ValueError if a ``C_t`` (t < T-1) is not a power of two."""
    Fc = int(dp.c_bits)
    C = [int(c) for c in np.asarray(tables.C)]
    j = []
    for t, c in enumerate(C[:-1]):
        if c < 1 or c & (c - 1) or c > (1 << Fc):
            raise ValueError(f"scaled tables: C_{t} = {c} is not a power of two <= 2**{Fc}")
        j.append(Fc - (c.bit_length() - 1))
    return j + [0], C[-1]


def clamp_bits(dp, j_max: int, c_last: int) -> int:
    """X: the smallest exponent such that ``U >= 2**X`` saturates H under ``2**-j`` (``j <= j_max``)
    and under ``C_last``; ValueError if above the model's cap ``Fu + vb + Fc``."""
    H = parse_format(dp.h_format)
    Fu, Fc, Fh, hw = int(dp.upd_frac_bits), int(dp.c_bits), H.frac_bits, H.width
    d = Fu - Fh
    x = d + hw + int(j_max)  # 2**X >> (d + j) >= 2**hw
    # last: rshift_round(2**X * C, d + Fc) >= 2**hw - 1/2 (rounds up to 2**hw in every mode: >= 2**hw)
    while (c_last << (x + 1)) < ((1 << (hw + 1)) << (d + Fc)):
        x += 1
    cap = Fu + int(value_bits_nb(H.nb)) + Fc
    if x > cap - 1:
        raise ValueError(f"scaled lanes: clamp 2**{x} needs to be below the model's cap 2**{cap} "
                         f"(C_last {c_last} too small)")
    return x


def reference(dp, w_format, h_codes, w_codes, K, exp_K, C) -> list[int]:
    """Model codes for one beat: ``update_scaled_sums``, ``scale_sums`` by ``C`` and ``encode_parts``."""
    H, W = parse_format(dp.h_format), parse_format(w_format)
    sh, eh = H.decode_parts(np.asarray(h_codes, dtype=np.int64))
    sw, ew = W.decode_parts(np.asarray(w_codes, dtype=np.int64))
    P, E = product(sh, eh, sw, ew, dp.prod_bits, dp.prod_rounding)
    U = update_scaled_sums(sh, eh, P, E, int(K), int(exp_K), dp.upd_frac_bits)
    V = scale_sums(U, int(C), dp.upd_frac_bits + int(value_bits_nb(H.nb)) + dp.c_bits)
    codes = H.encode_parts(V, np.full(V.shape, -(dp.upd_frac_bits + dp.c_bits)), dp.h_rounding, "saturate")
    return [int(c) for c in codes]


def reference_sums(dp, w_format, h_codes, w_codes, K, exp_K) -> list[int]:
    """Model sums ``U`` of one beat (the lanes' output when ``last``), before the final factor."""
    H, W = parse_format(dp.h_format), parse_format(w_format)
    sh, eh = H.decode_parts(np.asarray(h_codes, dtype=np.int64))
    sw, ew = W.decode_parts(np.asarray(w_codes, dtype=np.int64))
    P, E = product(sh, eh, sw, ew, dp.prod_bits, dp.prod_rounding)
    return [int(u) for u in update_scaled_sums(sh, eh, P, E, int(K), int(exp_K), dp.upd_frac_bits)]


def coefficient_of(dp, A, Y, exp_r) -> tuple[int, int]:
    """``(K, exp_K)`` of :func:`fixedpoint.update.coefficient` for ``A_t``, as the engine forms it."""
    K, e = coefficient(A, Y, exp_r, dp.g_bits, dp.recip_bits, dp.norm_bits, dp.coef_bits)
    return int(K), int(e)


def reaches_cap(y, f, neg, cap: int):
    """Whether ``y << f`` (``neg`` false) or ``y >> f`` (``neg`` true), ``f`` in 0..7, is at least
    ``2**cap``: ``y >= 2**(cap -+ f)``, from the bits of ``y`` near the cap, not the shifted value."""
    n = len(y)
    left = [y[cap:].any()] if n > cap else []
    left += [y[cap - i] & (f >= i) for i in range(1, 8) if 0 <= cap - i < n]
    right = [y[cap + 7:].any()] if n > cap + 7 else []
    right += [y[cap + i] & (f <= i) for i in range(7) if cap + i < n]
    return Mux(neg, Cat(*right).any() if right else Const(0, 1), Cat(*left).any() if left else Const(0, 1))


def gated_sum(m, k, p, name: str):
    """``k * p`` for a narrow ``k``: ``len(k)`` copies ``p << i`` gated by ``k[i]``, summed by a
    balanced adder tree (no ``*`` operator, so synthesis infers no multiplier block)."""
    terms = [Mux(k[i], p << i, 0) for i in range(len(k))]
    while len(terms) > 1:
        terms = [terms[i] + terms[i + 1] if i + 1 < len(terms) else terms[i] for i in range(0, len(terms), 2)]
    out = Signal(len(k) + len(p), name=name)
    m.d.comb += out.eq(terms[0])
    return out


class ScaledUpdateLanes(CheckedComponent):
    """L-lane ``scaled`` h update (see module docstring)."""

    latency = 7
    exp_k_early = False  # exp_K arrives with its beat (only UpdateLanes has the one-cycle-early mode)
    ck_early = False  # so do C (j) and K

    @staticmethod
    def plan(dp, w_format, lanes: int, j_max: int, c_last: int, a_bits: int | None = None,
             coef: str | None = None) -> dict:
        p = SimpleNamespace()
        check_layer_datapath(dp, "ScaledUpdateLanes")
        if dp.update != "scaled":
            raise ValueError(f"ScaledUpdateLanes: datapath update must be 'scaled', got {dp.update!r}")
        check_exact(dp, "ScaledUpdateLanes")
        p.H, p.W = parse_format(dp.h_format), parse_format(w_format)
        if int(dp.upd_frac_bits) < p.H.frac_bits:
            raise ValueError(f"ScaledUpdateLanes: datapath field upd_frac_bits {dp.upd_frac_bits} must be >= "
                             f"the h format's fraction bits {p.H.frac_bits}")
        if not isinstance(lanes, int) or not 1 <= lanes <= 256:
            raise ValueError(f"ScaledUpdateLanes: lanes must be an int in 1..256, got {lanes!r}")
        if not isinstance(j_max, int) or not 0 <= j_max <= int(dp.c_bits):
            raise ValueError(f"ScaledUpdateLanes: j_max must be an int in 0..{dp.c_bits}, got {j_max!r}")
        if not isinstance(c_last, int) or not 1 <= c_last < (1 << (int(dp.c_bits) + 2)):
            raise ValueError(f"ScaledUpdateLanes: c_last must be an int in 1..{(1 << (int(dp.c_bits) + 2)) - 1}, "
                             f"got {c_last!r}")
        p.coef = coef_kind(dp) if coef is None else coef
        if p.coef not in COEFS:
            raise ValueError(f"ScaledUpdateLanes: coef must be one of {COEFS}, got {coef!r}")
        if p.coef == "shift_add" and int(dp.coef_bits) > SHIFT_ADD_MAX:
            raise ValueError(f"ScaledUpdateLanes: coef 'shift_add' needs coef_bits <= {SHIFT_ADD_MAX}, "
                             f"got {dp.coef_bits}")
        p.dp, p.lanes, p.j_max, p.c_last = dp, lanes, j_max, c_last
        p.clamp_bits = clamp_bits(dp, j_max, c_last)
        p.out_width = max(p.clamp_bits + 1, p.H.width)
        p.j_width = max(1, int(j_max).bit_length())
        p.a_bits = int(dp.g_bits) if a_bits is None else a_bits
        p.exp_k_range = exp_k_range(dp, p.a_bits)
        p.exp_k_shape = signed(signed_bits(*p.exp_k_range))
        return vars(p)

    def __init__(self, dp, w_format, lanes: int, j_max: int, c_last: int, a_bits: int | None = None,
                 coef: str | None = None):
        super().__init__({
            "h": In(data.ArrayLayout(self.H.width, self.lanes)), "w": In(data.ArrayLayout(self.W.width, self.lanes)),
            "K": In(int(self.dp.coef_bits)), "exp_K": In(self.exp_k_shape), "j": In(self.j_width), "last": In(1),
            "o": Out(data.ArrayLayout(self.out_width, self.lanes)),
        })

    def elaborate(self, platform):
        m = Module()
        dp, H = self.dp, self.H
        Fu, cb, X, jm = int(dp.upd_frac_bits), int(dp.coef_bits), self.clamp_bits, self.j_max
        d = Fu - H.frac_bits
        # stage 1: the per-beat values registered (beside the product)
        K1, j1, l1 = Signal(cb), Signal(self.j_width), Signal()
        m.d.sync += [K1.eq(self.K), j1.eq(self.j), l1.eq(self.last)]
        # stage 2: the left shift of the rounding position (0 for the last spike's sums)
        ls2 = Signal(range(jm + 1))
        m.d.sync += ls2.eq(Mux(l1 | (j1 > jm), 0, jm - j1))
        ls3, ls4, l2 = Signal.like(ls2), Signal.like(ls2), Signal()
        m.d.sync += [ls3.eq(ls2), ls4.eq(ls3), l2.eq(l1)]
        l3, l4, l5 = Signal(), Signal(), Signal()
        m.d.sync += [l3.eq(l2), l4.eq(l3), l5.eq(l4)]
        hl, hh = exp_range(H)
        wl, wh = exp_range(self.W)
        e_lo, e_hi = min(hl + wl, 0), max(hh + wh, 0)
        sh_lo, sh_hi = self.exp_k_range[0] + e_lo + Fu, self.exp_k_range[1] + e_hi + Fu
        for i in range(self.lanes):
            dh, dw = WeightDecoder(H), WeightDecoder(self.W)
            m.submodules[f"dec_h{i}"], m.submodules[f"dec_w{i}"] = dh, dw
            m.d.comb += [dh.code.eq(self.h[i]), dw.code.eq(self.w[i])]
            prod = exact_product(m, dh.sig, dw.sig, f"prod{i}")
            # stage 1: P = sig_h*sig_w and the T2 shift exp_K + E + Fu; h kept for T1
            sh0 = Signal(dh.sig_bits, name=f"sigh{i}")
            p0 = Signal(len(prod), name=f"p{i}")
            sh = Signal(signed(signed_bits(sh_lo, sh_hi)), name=f"sh{i}")
            m.d.sync += [sh0.eq(dh.sig), p0.eq(prod), sh.eq(self.exp_K + dh.exp + dw.exp + Fu)]
            # stage 2: K*P (one multiplier, or gated shifted adds) and the T2 shift amounts
            kp = gated_sum(m, K1, p0, f"kpc{i}") if self.coef == "shift_add" else K1 * p0
            b1 = Signal(cb + len(p0), name=f"kp{i}")
            la, ra, neg = shift_amounts(m, sh, sh_lo, sh_hi, X, cb + len(p0), f"t2_{i}")
            la2, ra2, neg2 = Signal.like(la), Signal.like(ra), Signal(name=f"neg{i}")
            h1 = Signal(dh.sig_bits, name=f"h1_{i}")
            m.d.sync += [b1.eq(kp), la2.eq(la), ra2.eq(ra), neg2.eq(neg), h1.eq(sh0)]
            # stage 3: T2's shift by the multiple of 8
            y2 = Signal(len(b1) + X, name=f"t2y{i}")
            f3, neg3 = Signal(3, name=f"t2f{i}"), Signal(name=f"t2neg{i}")
            h2 = Signal(dh.sig_bits, name=f"h2_{i}")
            m.d.sync += [y2.eq(coarse_shifted(b1, la2, ra2, neg2, len(y2))), f3.eq(Mux(neg2, ra2[:3], la2[:3])),
                         neg3.eq(neg2), h2.eq(h1)]
            # stage 4: T2's shift by the rest (0..7), its low X bits and whether it reaches 2**X
            z2, o2 = Signal(X, name=f"t2z{i}"), Signal(name=f"t2o{i}")
            h3 = Signal(dh.sig_bits, name=f"h3_{i}")
            m.d.sync += [z2.eq(Mux(neg3, y2 >> f3, y2 << f3)[:X]), o2.eq(reaches_cap(y2, f3, neg3, X)), h3.eq(h2)]
            # stage 5: T2 clamped at 2**X; both terms shifted left by j_max - j (a (j_max+1)-way
            # mux) and summed
            r2 = Mux(o2, 1 << X, z2) << ls4
            r1 = (h3 << d) << ls4
            u = Signal(max(X + 1, len(h3) + d) + jm + 1, name=f"u{i}")
            m.d.sync += u.eq(r1 + r2)
            # stage 6: last: U; else one rounding at Fu - Fh + j_max, saturated
            code = self._round_into_h(m, u, d + jm, i)
            o6 = Signal(self.out_width, name=f"o6_{i}")
            m.d.sync += o6.eq(Mux(l5, u[:self.out_width], code))
            # stage 7: registered once more (the same latency as UpdateLanes, whose products take a
            # second register stage)
            m.d.sync += self.o[i].eq(o6)
        return m

    def _round_into_h(self, m, s, sh: int, i):
        return round_to_code(m, s, sh, self.dp.h_rounding, self.H.width, i)


__all__ = ["ScaledUpdateLanes", "check_layer_datapath", "clamp_bits", "coef_kind", "reference",
           "reference_sums", "scaled_constants", "gated_sum", "COEFS", "SHIFT_ADD_MAX"]
