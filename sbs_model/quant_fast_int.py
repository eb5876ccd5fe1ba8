"""Vectorised bit-exact kernel for quantized layers with the integer updates (the ``int-*`` and
``scaled-*`` presets).

Same definition and same integers as :func:`fixedpoint.datapath.step_nb` (tested ``==`` on h codes
and counters), rewritten so that both element loops of a spike run as straight-line SIMD code:

* **Dot.**  ``step_nb`` aligns each exact product ``sig_h*sig_w*2**(exp_h+exp_w)`` to the
  accumulator grid ``2**-F`` with its own shift, ``floor(h*sig*2**e_i)`` with
  ``e_i = exp_w,i - Fh + F``.  With one layer shift ``sd = max(0, max_i -e_i)`` and the
  pre-shifted multiplier ``Md_i = sig_i << (e_i + sd)`` this is ``(h*Md_i) >> sd`` exactly (the
  low ``sd`` bits of ``Md_i`` are zero, so the floor is the same real number's floor): one
  multiply and one constant shift per element.  Weights whose term is zero for every h in the
  format (``(h_max*sig) >> -e == 0``) get ``Md = 0`` and do not widen ``sd``.
* **Update.**  ``T2_i = align(K*P_i, eK + exp_w,i - Fh, Fu) = floor(K*h_i*M2_i * 2**u)`` with
  ``M2_i = sig_i << (exp_w,i - e_min)`` and one shift per spike ``u = eK - Fh + Fu + e_min``;
  ``T1_i = align(C*h_i, -Fh - cb, Fu)`` has one shift per layer (``scaled`` update:
  ``T1_i = h_i << (Fu - Fh)``, written as ``C' * h_i`` with ``C' = 2**(Fu - Fh)``).  ``align``'s
  cap at ``2**60`` becomes a compare (``v > (2**60 - 1) >> ls``).  ``S = T1 + T2`` is rounded to
  H's grid with the datapath's rounding (:func:`fixedpoint.rounding.rshift_round_pos_nb`'s rule,
  written branch-free for ``S >= 0``) and saturated at H's largest code.  In the ``scaled``
  update the per-spike factor ``C_t`` is a power of two except at the last spike
  (:mod:`fixedpoint.scaled`): a power of two only changes the rounding shift, the last spike
  multiplies (64-bit lanes).
* **32-bit lanes.**  Where the widths allow it (``IntFastLayer.w32``; all ``int-*`` presets on
  the reference network) h and the weight multipliers are ``uint32`` and every element operation
  but one runs in 32-bit lanes (16 per AVX-512 vector instead of 8): with ``hb`` the bits of H's
  largest code, ``h*Md < 2**(hb + bits(Md)) <= 2**32``; every weight row's dot sum
  ``sum_i (h_max*Md_i) >> sd < 2**32`` (so the uint32 sum cannot wrap); ``C*h < 2**(cb + hb) <=
  2**32`` (``C < 2**cb``; scaled: ``Fu - Fh + hb <= 32``); ``h*M2 < 2**(hb + bits(M2)) <= 2**32``.
  The one wide product ``K*(h*M2)`` (two values below ``2**32``) stays in the 32-bit vector: seen
  as 8 64-bit lanes, the even elements and (shifted down) the odd ones are 32x32->64 multiplies,
  the even products shifted right by ``rs2``, the odd ones moved so that their high half is their
  T2, and the two merged by a lane mask (no widening to 16 64-bit lanes and back).  Per
  spike, the scalar check ``(C*h_max >> rs1) + (K*h_max*max(M2) >> rs2) + bias < 2**32`` (bias
  ``2**(sr-1)`` or 0) proves that ``T1``, ``T2``, ``S`` and the rounding bias fit 32 bits; where it
  fails (or a term needs a left shift, or the last scaled spike multiplies) that spike runs the
  64-bit loop.  The 32-bit loops are LLVM vector code on ``<16 x i32>`` (numba types integer
  arithmetic as 64-bit and LLVM does not narrow shifts by a variable amount, so a plain loop would
  run in 64-bit lanes); variants drop the T1 multiply where ``C`` is a power of two (the
  ``scaled`` update) and the dot's shift where ``sd == 0``, and move the odd T2 by one shift where
  ``rs2 <= 32``.  The saturation test is a lane mask (``OR of the new codes & ~kpos``), not a
  reduction.
* **Per spike, scalar.**  ``finish_nb``, ``normalise_nb``, ``reciprocal_nb``, ``coefficient_nb``:
  the fixedpoint primitives themselves; the common case (no accumulator overflow, not ignored,
  the 32-bit bound met) takes :func:`_spike_fast`, which writes no step record and reads the
  per-spike constants and ``G_t`` from one row of ``IntFastLayer.tab``; every other spike calls
  :func:`_spike_counted` (a call, not inlined, so that the spike loop stays small).  GROUP IPs are
  interleaved (spike t of each, then t+1) so their dependency chains (the divider) overlap, as in
  :mod:`sbs_model.kernels_cpu`.  The spike indices are int32 (:func:`sbs_model.quant_jobs.count_spikes`).
  Where the rounding constants are the same for every spike (the ``int`` update), the kernel's
  spike loop reads the layer's constants once and the spike's row of ``tab`` once for the four
  IPs and passes them as values (:func:`_spike_hoisted`), so that LLVM hoists their broadcasts.
* **Word-pair products.**  Where ``sd == 0``, H's codes are below ``2**16`` and every multiplier
  below ``MADD_MAX`` (``IntFastLayer.madd``), the spike loop computes ``h*m2`` and ``q*md`` with
  ``vpmaddwd`` against :func:`madd_pairs` of the multipliers (exact, see there); plain IR where
  the host lacks AVX-512 BW.
* **Element loops.**  Straight-line code for 1 and 2 blocks of PAD lanes (a switch on the block
  count, :func:`_blocks`), a loop otherwise; the update's element code in three copies by tie test
  (round half to even: low bits against a constant 0; no tie possible; general), one branch per
  call.

Applies when :func:`int_fast_ok` holds (unsigned fixed-point H of at most 31 bits with
``Fh <= Fu``, exact products, non-negative weights, and the bounds that keep every int64
intermediate below ``2**62``); otherwise :mod:`sbs_model.quant_nb` runs ``step_nb``.  N is padded
to a multiple of 16 with zero weights (their h stays 0 and adds 0 to the dot).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from llvmlite import binding as llvm_binding
from llvmlite import ir
from numba import njit, prange
from numba.core import cgutils, types
from numba.extending import intrinsic

from fixedpoint.accumulate import MASK32, finish_nb
from fixedpoint.datapath import (R_ACC_OVF, R_EXP_K, R_H_OVF, R_K, R_SIG_R, R_Y, REC_LEN, UPDATE_MODES,
                                 record_dot_nb, D_ACC_FRAC, D_ACC_OVF, D_ACC_WIDTH, D_C_BITS, D_COEF_BITS,
                                 D_G_BITS, D_H_ROUND, D_NORM_BITS, D_PROD_BITS, D_RECIP_BITS, D_UPD_FRAC, D_UPDATE)
from fixedpoint.formats import KIND_FIXED, P_FRAC_BITS, P_KIND, P_SIGNED, P_WIDTH
from fixedpoint.normalise import normalise_nb
from fixedpoint.reciprocal import TABLE_MAX_NORM_BITS, reciprocal_table
from fixedpoint.rounding import RNA, RNE, bit_length_nb, rshift_round_pos_nb
from fixedpoint.update import align_shifted_nb, align_shifts, coefficient_nb
from sbs_model.quant_jobs import ip_buffers, prepare_ip_fast, run_layer_kernel
from sbs_model.quant_ref import C_ACC_OVF, C_ACC_OVF_SPIKES, C_H_OVF, C_IGNORED, C_SPIKES, QLayer
from sbs_model.simd import load_vector, reduce_halves, row_ptr, splat, vector_ptr

GROUP = 4  # IPs whose spike loops are interleaved
PAD = 16  # N is padded to a multiple of this (one AVX-512 vector of 32-bit lanes)
BOUND = 62  # every int64 intermediate stays below 2**BOUND
LANE = 1 << 32  # the 32-bit lanes' bound
SCALED = UPDATE_MODES["scaled"]
BIG = np.int64(0x7FFFFFFFFFFFFFFF)
TAB_CM, TAB_RS1, TAB_SR, TAB_BIAS, TAB_LM, TAB_TV, TAB_CSH, TAB_LIM, TAB_G = range(9)


def spike_constants(ql: QLayer) -> np.ndarray:
    """(8, T) int64: per spike t the constants of the 32-bit update (rows ``TAB_*``; see
    :func:`_spike` for the same numbers computed per spike, :func:`_round_params` for the
    rounding's bias / tie mask / tie value, ``TAB_CSH`` = log2 of a power-of-two T1 multiplier
    that needs no right shift, else -1)."""
    d = ql.dp
    Fh, Fu, cb = int(ql.H.frac_bits), int(d.upd_frac_bits), int(d.c_bits)
    kpos = (1 << int(ql.H.width)) - 1
    C = np.asarray(ql.tables.C, dtype=np.int64)
    T = C.shape[0]
    if d.update == "scaled":  # C_t = 2**lc: a shift; any other C_t (the last spike) multiplies: 64-bit lanes
        lc = np.floor(np.log2(np.maximum(C, 1))).astype(np.int64)
        ok = (C > 0) & (C == np.left_shift(np.int64(1), lc)) & (lc <= cb)
        cm, rs1, sr = np.full(T, 1 << (Fu - Fh)), np.zeros(T, np.int64), Fu - Fh + cb - lc
    else:
        sh = -Fh - cb + Fu
        ok = np.full(T, sh <= 0)
        cm, rs1, sr = C, np.full(T, max(0, -sh)), np.full(T, Fu - Fh)
    ok &= (rs1 <= 31) & (sr <= 31)
    sr = np.where(ok, sr, 0)
    mode = int(d.nb[D_H_ROUND])
    half = np.where(sr > 0, np.left_shift(np.int64(1), np.maximum(sr, 1) - 1), 0)
    rne = (sr > 0) & (mode == RNE)
    bias = half if mode in (RNE, RNA) else np.zeros(T, np.int64)
    lm = np.where(rne, np.left_shift(np.int64(1), sr) - 1, 0)
    tv = np.where(rne, 0, 1)
    lcm = np.floor(np.log2(np.maximum(cm, 1))).astype(np.int64)
    csh = np.where((cm > 0) & (cm == np.left_shift(np.int64(1), lcm)) & (rs1 == 0), lcm, -1)
    lim = np.maximum(0, LANE - ((cm * kpos) >> rs1) - bias)
    return np.stack([cm, rs1, sr, bias, lm, tv, csh, np.where(ok, lim, 0)]).astype(np.int64)


def spike_table(ql: QLayer) -> np.ndarray:
    """(T, 9) int64: :func:`spike_constants` and the schedule's G_t, one row per spike (the fast
    path reads one cache line per spike)."""
    G = np.asarray(ql.tables.G, dtype=np.int64)
    return np.ascontiguousarray(np.vstack([spike_constants(ql), G[None, :]]).T)


@dataclass(frozen=True)
class IntFastLayer:
    """Pre-computed arrays of one layer for :func:`qsbs_layer_int`.

    md    (S, Np) dot multipliers ``sig << (e + sd)`` (0 where the term is always 0)
    m2    (S, Np) update multipliers ``sig << (exp_w - e_min)``
          (both uint32 when ``w32``, else int64)
    h0    (Np,)   uint32 initial h codes, 0 in the padding
    sd, e_min            the dot's layer shift and the smallest weight exponent
    recip (2**(R-1),) int64  :func:`fixedpoint.reciprocal.reciprocal_table` of the datapath
    w32   the 32-bit lanes apply (module docstring); hm_max = h_max * max(m2)
    tab   (T, 9) int64, row t: the constants of spike t for :func:`_spike_fast` (columns
          ``TAB_*``, :func:`spike_table`: the T1 multiplier and shift, the rounding shift, bias,
          tie mask and value, the T1 multiplier's log2 where it is a power of two, the limit
          that ``(K*hm_max) >> rs2`` must stay below for the 32-bit lanes (0: never), and G_t)
    madd  ``w32``, ``sd == 0``, H's codes below ``2**16`` and every multiplier below ``MADD_MAX``:
          the spike loop's update multiplies by ``vpmaddwd`` with
    mdw, m2w  :func:`madd_pairs` of md and m2 (md and m2 themselves where not ``madd``)
    """

    md: np.ndarray
    m2: np.ndarray
    h0: np.ndarray
    sd: int
    e_min: int
    recip: np.ndarray
    w32: bool
    hm_max: int
    tab: np.ndarray
    madd: bool = False
    mdw: np.ndarray | None = None
    m2w: np.ndarray | None = None


def _bits(x: int) -> int:
    return int(x).bit_length()


def prepare_int(ql: QLayer) -> IntFastLayer | None:
    """The arrays of :class:`IntFastLayer`, or None when the kernel does not apply (see the module
    docstring for the conditions)."""
    dp = ql.dp.nb
    hp = ql.H.nb
    mode = int(dp[D_UPDATE])
    if not (mode in (0, SCALED) and hp[P_KIND] == KIND_FIXED and hp[P_SIGNED] == 0 and dp[D_PROD_BITS] == 0):
        return None
    Fh = int(hp[P_FRAC_BITS])
    Fu = int(dp[D_UPD_FRAC])
    if Fh > Fu or int(hp[P_WIDTH]) > 31:
        return None
    F = int(ql.dp.acc[1])
    sig, exp = ql.W.decode_parts(ql.wcodes)
    sig = np.asarray(sig, dtype=np.int64)
    exp = np.asarray(exp, dtype=np.int64)
    if np.any(sig < 0):
        return None
    S, N = sig.shape
    Np = -(-N // PAD) * PAD
    h_max = (1 << int(hp[P_WIDTH])) - 1
    nz = sig > 0
    if not nz.any():
        return None
    # dot: e_i = exp_w - Fh + F; terms that are 0 for every h <= h_max are dropped
    e = exp - Fh + F
    live = nz & ~((e < 0) & ((h_max * sig) >> np.clip(-e, 0, 63) == 0))
    sd = int(max(0, int((-e[live]).max()))) if live.any() else 0
    if live.any() and int((e[live] + sd).max()) + _bits(int(sig.max())) + _bits(h_max) > BOUND - _bits(N):
        return None
    md = np.zeros((S, Np), dtype=np.int64)
    md[:, :N] = np.where(live, sig << np.where(live, e + sd, 0), 0)
    # update: M2 = sig << (exp - e_min); K < 2**coef_bits
    e_min = int(exp[nz].min())
    m2 = np.zeros((S, Np), dtype=np.int64)
    m2[:, :N] = np.where(nz, sig << np.where(nz, exp - e_min, 0), 0)
    if int(dp[D_COEF_BITS]) + _bits(h_max) + _bits(int(m2.max())) > 60:
        return None
    if int(dp[D_C_BITS]) + _bits(h_max) > 60 or int(dp[D_NORM_BITS]) > TABLE_MAX_NORM_BITS:
        return None
    if max(int(hp[P_WIDTH]), int(dp[D_C_BITS]), int(dp[D_COEF_BITS])) > 32:  # the update's 32x32 multiplies
        return None
    hb = _bits(h_max)
    c_h_bits = (Fu - Fh if mode == SCALED else int(dp[D_C_BITS])) + hb  # bits of T1's product C*h
    w32 = (hb + _bits(int(md.max())) <= 32 and sd <= 31 and c_h_bits <= 32 and hb + _bits(int(m2.max())) <= 32
           and int(((h_max * md) >> sd).sum(axis=1).max()) < LANE)
    d = ql.dp
    recip = reciprocal_table(d.norm_bits, d.recip_bits, d.recip_method, d.recip_rounding, d.lut_bits, d.nr_iters)
    if int(recip.max()) < 1 << 31:  # half the cache footprint
        recip = recip.astype(np.int32)
    h0 = np.zeros(Np, dtype=np.uint32)
    h0[:N] = ql.h0
    dt = np.uint32 if w32 else np.int64
    hm_max = int(h_max * int(m2.max()))
    md_, m2_ = np.ascontiguousarray(md, dtype=dt), np.ascontiguousarray(m2, dtype=dt)
    madd = bool(w32 and sd == 0 and h_max < 1 << 16 and int(md.max()) < MADD_MAX and int(m2.max()) < MADD_MAX)
    return IntFastLayer(md_, m2_, h0, sd, e_min, recip, bool(w32), hm_max, spike_table(ql), madd,
                        madd_pairs(md) if madd else md_, madd_pairs(m2) if madd else m2_)


def int_fast_ok(ql: QLayer) -> bool:
    """True when :func:`qsbs_layer_int` applies to ``ql``."""
    return _prepared(ql) is not None


@njit(cache=True, inline="always")
def _dot64(h, k, md, s, sd, npad, narrow):
    """Accumulator sum of IP ``k``'s terms ``(h*Md) >> sd`` in 64-bit lanes; ``narrow``: every h
    and Md is below ``2**32``, so the multiply is the 32x32->64 one (masking tells LLVM so)."""
    tot = np.int64(0)
    if narrow:
        for i in range(npad):
            tot += ((np.int64(h[k, i]) & MASK32) * (np.int64(md[s, i]) & MASK32)) >> sd
    else:
        for i in range(npad):
            tot += (np.int64(h[k, i]) * np.int64(md[s, i])) >> sd
    return tot


# ------------------------------------------------------------------------------ explicit SIMD, 32-bit lanes
# LLVM vector instructions on <PAD x i32> blocks (sbs_model.simd): numba types every integer
# operation as 64-bit, and LLVM does not narrow shifts by a variable amount, so a plain loop runs
# in 64-bit lanes.  Every 32-bit shift amount here is below 32 (checked before the call).

def _i32_args(context, builder, sig_args, args, first):
    """The scalar arguments ``args[first:]`` as i32 values."""
    return [context.cast(builder, a, t, types.uint32) for a, t in zip(args[first:], sig_args[first:])]


UNROLLED = (1, 2)  # block counts whose element loops are emitted as straight-line code


def _blocks(context, builder, nb_i, body):
    """``body(j)`` for the element offsets ``j = 0, PAD, ..., (nb - 1)*PAD``: straight-line code
    (no loop control) where ``nb`` is one of ``UNROLLED`` (reference layer 0: N = 32, two blocks),
    else a loop; one switch on ``nb`` per call."""
    end = builder.append_basic_block("blocks.end")
    loop_bb = builder.append_basic_block("blocks.loop")
    sw = builder.switch(nb_i, loop_bb)
    for n in UNROLLED:
        bb = builder.append_basic_block(f"blocks.{n}")
        sw.add_case(ir.Constant(nb_i.type, n), bb)
        builder.position_at_end(bb)
        for b in range(n):
            body(context.get_constant(types.intp, b * PAD))
        builder.branch(end)
    builder.position_at_end(loop_bb)
    with cgutils.for_range(builder, nb_i) as loop:
        body(builder.mul(loop.index, context.get_constant(types.intp, PAD)))
    builder.branch(end)
    builder.position_at_end(end)


def _dot32_ir(context, builder, sa, h_v, k_v, md_v, s_v, nb_v, sd_v):
    i32 = ir.IntType(32)
    vty = ir.VectorType(i32, PAD)
    k_i = context.cast(builder, k_v, sa[1], types.intp)
    s_i = context.cast(builder, s_v, sa[3], types.intp)
    nb_i = context.cast(builder, nb_v, sa[4], types.intp)
    sdv = splat(builder, context.cast(builder, sd_v, sa[5], types.uint32), vty)
    hp = row_ptr(context, builder, sa[0], h_v, k_i)
    mp = row_ptr(context, builder, sa[2], md_v, s_i)
    acc = cgutils.alloca_once_value(builder, ir.Constant(vty, [ir.Constant(i32, 0)] * PAD))

    def body(j):
        t = builder.lshr(builder.mul(load_vector(builder, hp, j, vty, 4), load_vector(builder, mp, j, vty, 4)), sdv)
        builder.store(builder.add(builder.load(acc, typ=vty), t), acc)

    _blocks(context, builder, nb_i, body)
    return builder.zext(reduce_halves(builder, builder.load(acc, typ=vty), PAD, builder.add), ir.IntType(64))


@intrinsic
def _dot32_simd(typingctx, h, k, md, s, nblk, sd):
    """``sum_i (h[k, i]*md[s, i]) >> sd`` over ``nblk`` blocks of PAD uint32 lanes, the sum mod
    2**32 (the exact sum where ``w32`` holds)."""
    sig = types.int64(h, k, md, s, nblk, sd)

    def codegen(context, builder, signature, args):
        return _dot32_ir(context, builder, signature.args, *args)

    return sig, codegen


MADD_MAX = 1 << 14  # multipliers below this (and codes below 2**16): products by vpmaddwd (madd_pairs)
MADD_XOR = 0x40008000  # h ^ MADD_XOR: the low word h - 2**15 as a signed word, the high word 2**14


def madd_pairs(m: np.ndarray) -> np.ndarray:
    """uint32 ``m | (2*m) << 16`` for multipliers ``m < MADD_MAX``: with a code ``c < 2**16`` in a
    32-bit lane, ``c ^ MADD_XOR`` has the signed words ``(c - 2**15, 2**14)`` and ``m | 2m << 16``
    the signed words ``(m, 2m)``, so the word-pair multiply-add (``vpmaddwd``) of the two is
    ``(c - 2**15)*m + 2**14*2m = c*m`` exactly (one port-0 micro-op instead of ``vpmulld``'s two)."""
    m = np.asarray(m, dtype=np.int64)
    if m.size and (int(m.min()) < 0 or int(m.max()) >= MADD_MAX):
        raise ValueError("madd_pairs: multipliers must lie in [0, 2**14)")
    return np.ascontiguousarray((m | (m << 17)).astype(np.uint32))


HOST_PMADDWD = "avx512bw" in llvm_binding.get_host_cpu_features().flatten()  # the 512-bit vpmaddwd exists


def _madd(builder, a, b, native=None):
    """``vpmaddwd`` on two ``<16 x i32>`` vectors seen as 32 signed words: per lane
    ``a.lo*b.lo + a.hi*b.hi`` (see :func:`madd_pairs`).  The x86 intrinsic where the host has
    AVX-512 BW (``native``: None = :data:`HOST_PMADDWD`), else the same sum in plain IR (sign-extended
    words, 32-bit multiplies), so the kernel compiles on any CPU."""
    i32 = ir.IntType(32)
    wv = ir.VectorType(ir.IntType(16), 2 * PAD)
    vty = ir.VectorType(i32, PAD)
    if HOST_PMADDWD if native is None else native:
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vty, [wv, wv]),
                                            "llvm.x86.avx512.pmaddw.d.512")
        return builder.call(fn, [builder.bitcast(a, wv), builder.bitcast(b, wv)])
    c16 = ir.Constant(vty, [ir.Constant(i32, 16)] * PAD)

    def words(v):
        return builder.ashr(builder.shl(v, c16), c16), builder.ashr(v, c16)

    (alo, ahi), (blo, bhi) = words(a), words(b)
    return builder.add(builder.mul(alo, blo), builder.mul(ahi, bhi))


def _make_madd_probe(native: bool):
    @intrinsic
    def madd_probe(typingctx, a, b, out):
        """``out[i*PAD:(i+1)*PAD] = _madd(a, b)`` block by block (tests of both code paths)."""
        def codegen(context, builder, signature, args):
            sa = signature.args
            vty = ir.VectorType(ir.IntType(32), PAD)
            ap, bp, op = (context.make_array(t)(context, builder, v).data for t, v in zip(sa, args))
            n = cgutils.unpack_tuple(builder, context.make_array(sa[0])(context, builder, args[0]).shape)[0]
            with cgutils.for_range(builder, builder.udiv(n, context.get_constant(types.intp, PAD))) as loop:
                j = builder.mul(loop.index, context.get_constant(types.intp, PAD))
                r = _madd(builder, load_vector(builder, ap, j, vty, 4), load_vector(builder, bp, j, vty, 4), native)
                builder.store(r, vector_ptr(builder, op, j, vty), align=4)
            return context.get_dummy_value()

        return types.void(a, b, out), codegen

    return madd_probe


_madd_probe_generic = _make_madd_probe(False)
_madd_probe_native = _make_madd_probe(True)


@njit(cache=True)
def madd_generic_nb(a, b, out):
    """The plain-IR word-pair multiply-add on uint32 arrays (length a multiple of PAD; tests)."""
    _madd_probe_generic(a, b, out)


@njit(cache=True)
def madd_native_nb(a, b, out):
    """The ``vpmaddwd`` intrinsic on uint32 arrays (only where :data:`HOST_PMADDWD`; tests)."""
    _madd_probe_native(a, b, out)


def _update32_codegen(t1_shift: bool, dot_shift: bool, odd_left: bool, madd: bool = False):
    """Code generator of the 32-bit update intrinsics.  Per lane: ``T1 = (C*h) >> rs1`` (``t1_shift``:
    ``h << C``, C then the multiplier's log2), ``T2 = trunc32((K * (h*m2[s])) >> rs2)``, ``S = T1 + T2``,
    ``u = S + bias``, ``q = u >> sr`` with the lowest bit cleared where ``(u & lm) == tv`` (round half
    to even: an exact tie), stored into h; and the next dot product's term ``(q*md[s2]) >> sd``
    (``dot_shift`` False: sd is 0, no shift).  Returns ``(1 if some q > kpos else 0, sum of the terms
    mod 2**32)`` (``kpos = 2**w - 1``, H's codes have w bits: the test is ``OR of every q & ~kpos``).

    ``T2`` without widening the vector: ``hm = h*m2`` (below ``2**32``) seen as 8 64-bit lanes, the
    even elements ``hm & (2**32-1)`` and the odd ones ``hm >> 32`` each times K (32x32->64
    multiplies), the even products shifted right by ``rs2`` (their low 32 bits are the even T2),
    the odd ones moved so that their high 32 bits are the odd T2 (``odd_left``: ``<< (32 - rs2)``,
    for ``rs2 <= 32``; else ``>> rs2`` then ``<< 32``), and the halves merged."""

    def codegen(context, builder, signature, args):
        sa = signature.args
        h_v, k_v, m2_v, s_v, md_v, s2_v, nb_v = args[:7]
        i32 = ir.IntType(32)
        i64 = ir.IntType(64)
        vty = ir.VectorType(i32, PAD)
        wty = ir.VectorType(i64, PAD // 2)
        c32, _k, r1, _r2, s32, b32, lm32, tv32, d32 = _i32_args(context, builder, sa, args[:16], 7)
        cv, r1v, srv, bv, lmv, tvv, sdv = (splat(builder, x, vty) for x in (c32, r1, s32, b32, lm32, tv32, d32))
        kv = splat(builder, builder.and_(context.cast(builder, args[8], sa[8], types.int64),
                                         ir.Constant(i64, MASK32)), wty)
        rs2 = context.cast(builder, args[10], sa[10], types.int64)
        r2v = splat(builder, rs2, wty)
        if odd_left:  # rs2 <= 32
            olv = splat(builder, builder.sub(ir.Constant(i64, 32), rs2), wty)
        lo_mask = ir.Constant(wty, [ir.Constant(i64, MASK32)] * (PAD // 2))
        c32v = ir.Constant(wty, [ir.Constant(i64, 32)] * (PAD // 2))
        hi_bits = context.cast(builder, args[16], sa[16], types.uint32)
        hiv = splat(builder, builder.not_(hi_bits), vty)  # ~kpos: the bits no code may have
        notone = ir.Constant(vty, [ir.Constant(i32, 0xFFFFFFFE)] * PAD)
        xkv = ir.Constant(vty, [ir.Constant(i32, MADD_XOR)] * PAD)
        k_i = context.cast(builder, k_v, sa[1], types.intp)
        s_i = context.cast(builder, s_v, sa[3], types.intp)
        s2_i = context.cast(builder, s2_v, sa[5], types.intp)
        nb_i = context.cast(builder, nb_v, sa[6], types.intp)
        hp = row_ptr(context, builder, sa[0], h_v, k_i)
        mp = row_ptr(context, builder, sa[2], m2_v, s_i)
        dp_ = row_ptr(context, builder, sa[4], md_v, s2_i)
        zero = ir.Constant(vty, [ir.Constant(i32, 0)] * PAD)
        acc = cgutils.alloca_once_value(builder, zero)
        qmx = cgutils.alloca_once_value(builder, zero)

        def body(j, tie_kind):
            hptr = vector_ptr(builder, hp, j, vty)
            hv = builder.load(hptr, align=4, typ=vty)
            t1 = builder.shl(hv, cv) if t1_shift else builder.lshr(builder.mul(cv, hv), r1v)
            if madd:  # m2 and md hold madd_pairs(): h*m2 and q*md by vpmaddwd
                hm = builder.bitcast(_madd(builder, builder.xor(hv, xkv), load_vector(builder, mp, j, vty, 4)), wty)
            else:
                hm = builder.bitcast(builder.mul(hv, load_vector(builder, mp, j, vty, 4)), wty)
            pe = builder.mul(builder.and_(hm, lo_mask), kv)
            po = builder.mul(builder.lshr(hm, c32v), kv)
            te = builder.lshr(pe, r2v)
            to = builder.shl(po, olv) if odd_left else builder.shl(builder.lshr(po, r2v), c32v)
            t2 = builder.bitcast(builder.or_(builder.and_(te, lo_mask), builder.and_(to, builder.not_(lo_mask))), vty)
            u = builder.add(builder.add(t1, t2), bv)
            q = builder.lshr(u, srv)
            if tie_kind != "none":  # "rne": tv == 0, a test of the low bits against a constant
                tie = builder.icmp_unsigned("==", builder.and_(u, lmv), zero if tie_kind == "rne" else tvv)
                q = builder.select(tie, builder.and_(q, notone), q)
            builder.store(q, hptr, align=4)
            builder.store(builder.or_(builder.load(qmx, typ=vty), q), qmx)
            if madd:
                t = _madd(builder, builder.xor(q, xkv), load_vector(builder, dp_, j, vty, 4))
            else:
                t = builder.mul(q, load_vector(builder, dp_, j, vty, 4))
            if dot_shift:
                t = builder.lshr(t, sdv)
            builder.store(builder.add(builder.load(acc, typ=vty), t), acc)

        # the element loop three times, one branch per call: tv == 0 (round half to even: the tie
        # test against a constant), lm == 0 and tv != 0 (no tie possible: no test), else the general test
        with builder.if_else(builder.icmp_unsigned("==", tv32, ir.Constant(i32, 0))) as (rne, other):
            with rne:
                _blocks(context, builder, nb_i, lambda j: body(j, "rne"))
            with other:
                with builder.if_else(builder.icmp_unsigned("==", lm32, ir.Constant(i32, 0))) as (none, gen):
                    with none:
                        _blocks(context, builder, nb_i, lambda j: body(j, "none"))
                    with gen:
                        _blocks(context, builder, nb_i, lambda j: body(j, "any"))
        over = builder.icmp_unsigned("!=", builder.and_(builder.load(qmx, typ=vty), hiv), zero)
        over = builder.zext(builder.icmp_unsigned("!=", builder.bitcast(over, ir.IntType(PAD)),
                                                  ir.Constant(ir.IntType(PAD), 0)), i64)
        tot = builder.zext(reduce_halves(builder, builder.load(acc, typ=vty), PAD, builder.add), i64)
        return context.make_tuple(builder, signature.return_type, [over, tot])

    return codegen


def _make_update32(t1_shift: bool, dot_shift: bool, odd_left: bool, madd: bool = False):
    @intrinsic
    def update32(typingctx, h, k, m2, s, md, s2, nblk, C, K, rs1, rs2, sr, bias, lm, tv, sd, kpos):
        """One spike's update of ``h[k]`` in place in 32-bit lanes fused with the next dot product
        (see :func:`_update32_codegen`)."""
        return (types.UniTuple(types.int64, 2)(h, k, m2, s, md, s2, nblk, C, K, rs1, rs2, sr, bias, lm, tv, sd, kpos),
                _update32_codegen(t1_shift, dot_shift, odd_left, madd))

    return update32


# variants: T1 multiply / shift, dot shift / none, rs2 <= 32 / > 32
_upd32_mul_sd = _make_update32(False, True, True)
_upd32_mul = _make_update32(False, False, True)
_upd32_shl_sd = _make_update32(True, True, True)
_upd32_shl = _make_update32(True, False, True)
_upd32_mul_sd_w = _make_update32(False, True, False)
_upd32_mul_w = _make_update32(False, False, False)
_upd32_shl_sd_w = _make_update32(True, True, False)
_upd32_shl_w = _make_update32(True, False, False)
# m2 and md as madd_pairs(), sd == 0, codes below 2**16: the products by vpmaddwd
_upd32_mul_mw = _make_update32(False, False, True, True)
_upd32_shl_mw = _make_update32(True, False, True, True)
_upd32_mul_mw_w = _make_update32(False, False, False, True)
_upd32_shl_mw_w = _make_update32(True, False, False, True)


@njit(cache=True, inline="always")
def _dot32(h, k, md, s, sd, npad):
    """:func:`_dot64` in 32-bit lanes (``w32``: every term and every row's sum is below ``2**32``,
    so the uint32 sum is the exact one)."""
    return _dot32_simd(h, k, md, s, npad // PAD, sd)


@njit(cache=True, inline="always")
def _dot(h, k, md, s, sd, npad, narrow, w32):
    if w32:
        return _dot32(h, k, md, s, sd, npad)
    return _dot64(h, k, md, s, sd, npad, narrow)


@njit(cache=True, inline="always")
def _update64(h, k, m2, s, npad, C, K, t1, t2, Mf, cap, sr, mode, kpos, narrow):
    """New h codes of IP ``k`` in place, 64-bit lanes: ``q = round(min(T1 + T2, cap) * Mf, sr)``
    (``Mf = 1``, ``cap`` unused but in the scaled update's last spike); stores ``min(q, kpos+1)``
    and returns the largest ``q``."""
    qmax = np.int64(0)
    top = kpos + 1
    if t1[1] == 0 and t2[1] == 0 and narrow and Mf == 1:  # C, K, h, M2 below 2**32: 32x32->64 multiplies
        for i in range(npad):
            hv = np.int64(h[k, i]) & MASK32
            S = (((C & MASK32) * hv) >> t1[0]) + ((((K & MASK32) * hv) * np.int64(m2[s, i])) >> t2[0])
            q = rshift_round_pos_nb(S, sr, mode)
            qmax = max(qmax, q)
            h[k, i] = min(q, top)
    else:
        for i in range(npad):
            hv = np.int64(h[k, i])
            S = align_shifted_nb(C * hv, t1[0], t1[1], t1[2]) + align_shifted_nb(K * hv * np.int64(m2[s, i]), t2[0],
                                                                                 t2[1], t2[2])
            q = rshift_round_pos_nb(min(S, cap) * Mf, sr, mode)
            qmax = max(qmax, q)
            h[k, i] = min(q, top)
    return qmax


@njit(cache=True, inline="always")
def _update32(h, k, m2, s, npad, C, K, rs1, rs2, sr, bias, lm, tv, csh, md, s_next, sd, kpos):
    """New h codes of IP ``k`` in place in 32-bit lanes (the spike's bound check passed: every
    ``T1``, ``T2``, ``S + bias`` below ``2**32``; ``0 <= rs2 <= 63``), fused with the next spike's dot
    product on the new codes (row ``s_next``): ``(1 if some new code > kpos else 0, next dot)``.
    The rounding of :func:`fixedpoint.rounding.rshift_round_pos_nb` as ``(bias, lm, tv)`` of
    :func:`_round_params`; ``csh >= 0``: ``C == 2**csh`` and ``rs1 == 0``, so T1 is a shift."""
    nb = npad // PAD
    if rs2 <= 32:
        if csh >= 0:
            if sd > 0:
                return _upd32_shl_sd(h, k, m2, s, md, s_next, nb, csh, K, rs1, rs2, sr, bias, lm, tv, sd, kpos)
            return _upd32_shl(h, k, m2, s, md, s_next, nb, csh, K, rs1, rs2, sr, bias, lm, tv, sd, kpos)
        if sd > 0:
            return _upd32_mul_sd(h, k, m2, s, md, s_next, nb, C, K, rs1, rs2, sr, bias, lm, tv, sd, kpos)
        return _upd32_mul(h, k, m2, s, md, s_next, nb, C, K, rs1, rs2, sr, bias, lm, tv, sd, kpos)
    if csh >= 0:
        if sd > 0:
            return _upd32_shl_sd_w(h, k, m2, s, md, s_next, nb, csh, K, rs1, rs2, sr, bias, lm, tv, sd, kpos)
        return _upd32_shl_w(h, k, m2, s, md, s_next, nb, csh, K, rs1, rs2, sr, bias, lm, tv, sd, kpos)
    if sd > 0:
        return _upd32_mul_sd_w(h, k, m2, s, md, s_next, nb, C, K, rs1, rs2, sr, bias, lm, tv, sd, kpos)
    return _upd32_mul_w(h, k, m2, s, md, s_next, nb, C, K, rs1, rs2, sr, bias, lm, tv, sd, kpos)


@njit(cache=True, inline="always")
def _update32_madd(h, k, m2w, s, npad, C, K, rs1, rs2, sr, bias, lm, tv, csh, mdw, s_next, kpos):
    """:func:`_update32` with ``m2w``, ``mdw`` = :func:`madd_pairs` of the multipliers, ``sd == 0``
    and every code below ``2**16`` (``kpos < 2**16``): the same results."""
    nb = npad // PAD
    sd = np.int64(0)
    if rs2 <= 32:
        if csh >= 0:
            return _upd32_shl_mw(h, k, m2w, s, mdw, s_next, nb, csh, K, rs1, rs2, sr, bias, lm, tv, sd, kpos)
        return _upd32_mul_mw(h, k, m2w, s, mdw, s_next, nb, C, K, rs1, rs2, sr, bias, lm, tv, sd, kpos)
    if csh >= 0:
        return _upd32_shl_mw_w(h, k, m2w, s, mdw, s_next, nb, csh, K, rs1, rs2, sr, bias, lm, tv, sd, kpos)
    return _upd32_mul_mw_w(h, k, m2w, s, mdw, s_next, nb, C, K, rs1, rs2, sr, bias, lm, tv, sd, kpos)


@njit(cache=True)
def update32_madd_nb(h, k, m2w, s, npad, C, K, rs1, rs2, sr, bias, lm, tv, csh, mdw, s_next, kpos):
    """:func:`_update32_madd` for callers outside the kernel (tests)."""
    return _update32_madd(h, k, m2w, s, npad, C, K, rs1, rs2, sr, bias, lm, tv, csh, mdw, s_next, kpos)


@njit(cache=True, inline="always")
def _round_params(sr, mode):
    """``(bias, lm, tv)``: ``q = (S + bias) >> sr``, its lowest bit cleared where
    ``((S + bias) & lm) == tv`` equals :func:`fixedpoint.rounding.rshift_round_pos_nb` (trunc:
    0, no tie; rna: ``2**(sr-1)``, no tie; rne: ``2**(sr-1)``, a tie where the low ``sr`` bits of
    ``S + bias`` are 0, i.e. ``S`` was exactly halfway: then the even neighbour)."""
    if sr == 0 or (mode != RNE and mode != RNA):
        return np.int64(0), np.int64(0), np.int64(1)
    half = np.int64(1) << (sr - 1)
    if mode == RNA:
        return half, np.int64(0), np.int64(1)
    return half, (np.int64(1) << sr) - 1, np.int64(0)


@njit(cache=True, inline="always")
def _spike(h, k, s, t, tot, s_next, md, m2, sd, e_min, recip, narrow, w32, hm_max, dp, h_p, C_tab, G_tab, rec):
    """One spike of IP ``k`` (row of ``h`` (GROUP, Np) codes) at input position ``s``, step ``t``,
    given ``tot`` = :func:`_dot` of h and row ``s``: h updated in place, the step record (layout
    ``R_*``, as :func:`fixedpoint.datapath.step_nb` writes it) into ``rec``; returns the dot of
    the new h and row ``s_next`` (the next spike's)."""
    npad = md.shape[1]
    F = dp[D_ACC_FRAC]
    R = dp[D_NORM_BITS]
    Qb = dp[D_RECIP_BITS]
    a_hi, a_lo, ovf = finish_nb(np.int64(0), tot >> 32, tot & MASK32, dp[D_ACC_WIDTH], dp[D_ACC_OVF])
    sig_r, exp_r = normalise_nb(a_hi, a_lo, F, R)
    record_dot_nb(rec, a_hi, a_lo, ovf, sig_r, exp_r)
    scaled = dp[D_UPDATE] == SCALED
    if sig_r == 0 and not scaled:
        return _dot(h, k, md, s_next, sd, npad, narrow, w32)
    Fh = h_p[P_FRAC_BITS]
    Fu = dp[D_UPD_FRAC]
    cb = dp[D_C_BITS]
    K = np.int64(0)
    t2 = (np.int64(0), np.int64(0), BIG)  # K = 0 (a scaled update's ignored spike): T2 = 0
    if sig_r != 0:
        Y = np.int64(recip[sig_r - (np.int64(1) << (R - 1))])  # = reciprocal_nb(sig_r, ...): the primitive's table
        K, eK = coefficient_nb(G_tab[t], Y, exp_r, dp[D_G_BITS], Qb, R, dp[D_COEF_BITS])
        rec[R_Y] = Y
        rec[R_K] = K
        rec[R_EXP_K] = eK
        t2 = align_shifts(eK - Fh + e_min, Fu)
    kpos = (np.int64(1) << h_p[P_WIDTH]) - 1
    C = C_tab[t]
    Mf = np.int64(1)
    cap = BIG
    if scaled:  # T1 = h << (Fu - Fh); times C_t / 2**cb (a power of two: a shift) before the rounding
        Cm = np.int64(1) << (Fu - Fh)
        t1 = (np.int64(0), np.int64(0), BIG)
        lc = bit_length_nb(C) - 1
        if C > 0 and C == (np.int64(1) << lc) and lc <= cb:
            sr = Fu - Fh + cb - lc
        else:
            sr = Fu - Fh + cb
            Mf = C
            cap = np.int64(1) << (Fu + h_p[P_WIDTH] - Fh + cb)
    else:
        Cm = C
        t1 = align_shifts(-Fh - cb, Fu)
        sr = Fu - Fh
    mode = dp[D_H_ROUND]
    if w32 and Mf == 1 and t1[1] == 0 and t2[1] == 0 and t1[0] <= 31 and sr <= 31:
        bias, lm, tv = _round_params(sr, mode)
        if ((Cm * kpos) >> t1[0]) + ((K * hm_max) >> t2[0]) + bias < LANE:
            over, nxt = _update32(h, k, m2, s, npad, Cm, K, t1[0], t2[0], sr, bias, lm, tv, np.int64(-1), md, s_next,
                                  sd, kpos)
            if over:  # rare: saturate and count outside the vector loop
                rec[R_H_OVF] = _saturate(h, k, npad, kpos)
                nxt = _dot(h, k, md, s_next, sd, npad, narrow, w32)
            return nxt
    qmax = _update64(h, k, m2, s, npad, Cm, K, t1, t2, Mf, cap, sr, mode, kpos, narrow)
    if qmax > kpos:
        rec[R_H_OVF] = _saturate(h, k, npad, kpos)
    return _dot(h, k, md, s_next, sd, npad, narrow, w32)


@njit(cache=True, inline="always")
def _spike_fast(h, k, s, t, tot, s_next, md, m2, sd, e_min, recip, hm_max, tab, dp, h_p):
    """:func:`_spike` for the common case of a ``w32`` layer, without a step record: an
    accumulator sum ``0 < tot < min(2**width, 2**32)`` (no overflow, not ignored), T2 shifted
    right, the spike's 32-bit bound met.  ``tab``: :attr:`IntFastLayer.tab` (row t: the spike's
    constants and ``G_t``).  Returns ``(next dot, saturated elements)``, or ``(0, -1)`` before
    touching h where the case does not hold (then :func:`_spike` runs)."""
    top = np.uint64(1) << np.uint64(min(dp[D_ACC_WIDTH], np.int64(32)))
    if np.uint64(tot - 1) >= top - np.uint64(1):  # tot <= 0 or tot >= top
        return np.int64(0), np.int64(-1)
    R = dp[D_NORM_BITS]
    L = bit_length_nb(tot)
    sh = L - R  # normalise_nb on A = tot (a_hi = 0): truncating, i.e. the top R bits of tot
    sig_r = np.int64((np.uint64(tot) << np.uint64(64 - L)) >> np.uint64(64 - R))
    exp_r = sh - dp[D_ACC_FRAC]
    Y = np.int64(recip[np.uint64(sig_r - (np.int64(1) << (R - 1)))])  # unsigned index: no wraparound code
    K, eK = coefficient_nb(tab[t, TAB_G], Y, exp_r, dp[D_G_BITS], dp[D_RECIP_BITS], R, dp[D_COEF_BITS])
    sh2 = eK - h_p[P_FRAC_BITS] + e_min + dp[D_UPD_FRAC]  # align_shifts of T2
    if sh2 > 0:
        return np.int64(0), np.int64(-1)
    rs2 = min(-sh2, np.int64(63))
    if (K * hm_max) >> rs2 >= tab[t, TAB_LIM]:
        return np.int64(0), np.int64(-1)
    npad = md.shape[1]
    kpos = (np.int64(1) << h_p[P_WIDTH]) - 1
    over, nxt = _update32(h, k, m2, s, npad, tab[t, TAB_CM], K, tab[t, TAB_RS1], rs2, tab[t, TAB_SR],
                          tab[t, TAB_BIAS], tab[t, TAB_LM], tab[t, TAB_TV], tab[t, TAB_CSH], md, s_next, sd, kpos)
    if over:  # rare: saturate and count outside the vector loop
        return _saturated_dot(h, k, md, s_next, sd, npad, kpos)
    return nxt, np.int64(0)


@njit(cache=True, inline="always")
def _spike_hoisted(h, k, s, tot, s_next, md, m2, sd, recip, hm_max, G, cm, lim, rc, top1, R, F, gb, Qb, cob, sh2c, kpos,
                   npad, use_madd, mdw, m2w):
    """:func:`_spike_fast` with every constant an argument: the layer's (``top1 = top - 1``, ``R``,
    ``F``, the G / reciprocal / coefficient bits, ``sh2c = e_min - Fh + Fu``, ``kpos``) and the
    spike's (``G``, the T1 multiplier ``cm``, ``lim`` and ``rc = (rs1, sr, bias, lm, tv, csh)``
    of row t of :attr:`IntFastLayer.tab`; ``use_madd``: the update of :func:`_update32_madd` on
    ``mdw``, ``m2w``).  The caller reads them once per layer / per spike, so that they
    are values rather than loads from arrays that the h stores might alias: LLVM then hoists
    their vector broadcasts out of the spike loop.  Same result as :func:`_spike_fast`."""
    if np.uint64(tot - 1) >= top1:  # tot <= 0 or tot >= top
        return np.int64(0), np.int64(-1)
    L = bit_length_nb(tot)
    sig_r = np.int64((np.uint64(tot) << np.uint64(64 - L)) >> np.uint64(64 - R))
    Y = np.int64(recip[np.uint64(sig_r - (np.int64(1) << (R - 1)))])
    K, eK = coefficient_nb(G, Y, L - R - F, gb, Qb, R, cob)
    sh2 = eK + sh2c
    if sh2 > 0:
        return np.int64(0), np.int64(-1)
    rs2 = min(-sh2, np.int64(63))
    if (K * hm_max) >> rs2 >= lim:
        return np.int64(0), np.int64(-1)
    rs1, sr, bias, lm, tv, csh = rc
    if use_madd:
        over, nxt = _update32_madd(h, k, m2w, s, npad, cm, K, rs1, rs2, sr, bias, lm, tv, csh, mdw, s_next, kpos)
    else:
        over, nxt = _update32(h, k, m2, s, npad, cm, K, rs1, rs2, sr, bias, lm, tv, csh, md, s_next, sd, kpos)
    if over:
        return _saturated_dot(h, k, md, s_next, sd, npad, kpos)
    return nxt, np.int64(0)


@njit(cache=True)
def _spike_hoisted_at(h, k, s, t, tot, s_next, md, m2, sd, e_min, recip, hm_max, tab, dp, h_p, madd, mdx, m2x):
    """:func:`_spike_hoisted` with the constants of the layer and of row t of ``tab``; ``madd``: the
    vpmaddwd update on the pair matrices ``mdx``, ``m2x`` (else ``md``, ``m2`` again)."""
    top1 = (np.uint64(1) << np.uint64(min(dp[D_ACC_WIDTH], np.int64(32)))) - np.uint64(1)
    return _spike_hoisted(h, k, s, tot, s_next, md, m2, sd, recip, hm_max, tab[t, TAB_G], tab[t, TAB_CM],
                          tab[t, TAB_LIM], (tab[t, TAB_RS1], tab[t, TAB_SR], tab[t, TAB_BIAS], tab[t, TAB_LM],
                                            tab[t, TAB_TV], tab[t, TAB_CSH]), top1, dp[D_NORM_BITS], dp[D_ACC_FRAC], dp[D_G_BITS],
                          dp[D_RECIP_BITS], dp[D_COEF_BITS], e_min - h_p[P_FRAC_BITS] + dp[D_UPD_FRAC],
                          (np.int64(1) << h_p[P_WIDTH]) - 1, md.shape[1], madd, mdx, m2x)


@njit(cache=True)
def spike_hoisted_nb(h, k, s, t, tot, s_next, md, m2, sd, e_min, recip, hm_max, tab, dp, h_p):
    """:func:`_spike_hoisted` with the constants of the layer and of row t of ``tab`` (tests)."""
    return _spike_hoisted_at(h, k, s, t, tot, s_next, md, m2, sd, e_min, recip, hm_max, tab, dp, h_p, False, md, m2)


@njit(cache=True)
def spike_hoisted_madd_nb(h, k, s, t, tot, s_next, md, m2, sd, e_min, recip, hm_max, tab, dp, h_p, mdw, m2w):
    """:func:`spike_hoisted_nb` on the vpmaddwd update (:func:`_update32_madd`; its conditions hold)."""
    return _spike_hoisted_at(h, k, s, t, tot, s_next, md, m2, sd, e_min, recip, hm_max, tab, dp, h_p, True, mdw, m2w)


@njit(cache=True)
def _saturated_dot(h, k, md, s_next, sd, npad, kpos):
    """The rare end of :func:`_spike_fast` (a call, so that the spike loop stays small): codes above
    ``kpos`` saturated -> ``(dot with row s_next, how many)``."""
    n_ovf = _saturate(h, k, npad, kpos)
    return _dot32(h, k, md, s_next, sd, npad), n_ovf


@njit(cache=True, inline="always")
def _saturate(h, k, npad, kpos):
    """Codes above ``kpos`` -> ``kpos``; returns how many there were."""
    n_ovf = np.int64(0)
    for i in range(npad):
        if np.int64(h[k, i]) > kpos:
            h[k, i] = kpos
            n_ovf += 1
    return n_ovf


@njit(cache=True)
def spike_int_nb(h, k, s, t, tot, s_next, md, m2, sd, e_min, recip, narrow, dp, h_p, C_tab, G_tab, rec):
    """One spike in 64-bit lanes (:func:`_spike` without ``w32``; ``h`` int64 or uint32 codes)."""
    return _spike(h, k, s, t, tot, s_next, md, m2, sd, e_min, recip, narrow, False, np.int64(0), dp, h_p, C_tab,
                  G_tab, rec)


@njit(cache=True)
def spike_int_any_nb(h, k, s, t, tot, s_next, md, m2, sd, e_min, recip, narrow, w32, hm_max, dp, h_p, C_tab, G_tab,
                     rec):
    """:func:`_spike` for callers outside the kernel (tests): the layer's ``w32`` and ``hm_max``."""
    return _spike(h, k, s, t, tot, s_next, md, m2, sd, e_min, recip, narrow, w32, hm_max, dp, h_p, C_tab, G_tab, rec)


@njit(cache=True)
def spike_fast_nb(h, k, s, t, tot, s_next, md, m2, sd, e_min, recip, hm_max, tab, dp, h_p):
    """:func:`_spike_fast` for callers outside the kernel (tests)."""
    return _spike_fast(h, k, s, t, tot, s_next, md, m2, sd, e_min, recip, hm_max, tab, dp, h_p)


@njit(cache=True)
def dot_int_nb(h, k, md, s, sd, narrow):
    """:func:`_dot64` (the accumulator sum before ``finish_nb``) for callers outside the kernel."""
    return _dot64(h, k, md, s, sd, md.shape[1], narrow)


@njit(cache=True)
def dot_int_any_nb(h, k, md, s, sd, narrow, w32):
    """:func:`_dot` for callers outside the kernel."""
    return _dot(h, k, md, s, sd, md.shape[1], narrow, w32)


@njit(cache=True)
def _spike_counted(h, k, s, t, tot, s_next, md, m2, sd, e_min, recip, narrow, w32, hm_max, dp, h_p, C_tab, G_tab, rec,
                   cnt):
    """:func:`_spike` with its step record added to the job's counters ``cnt``: the general path, a
    call (not inlined) so that the spike loop around :func:`_spike_fast` stays small."""
    nxt = _spike(h, k, s, t, tot, s_next, md, m2, sd, e_min, recip, narrow, w32, hm_max, dp, h_p, C_tab, G_tab, rec)
    if rec[R_ACC_OVF] > 0:
        cnt[C_ACC_OVF_SPIKES] += 1
        cnt[C_ACC_OVF] += rec[R_ACC_OVF]
    if rec[R_SIG_R] == 0:
        cnt[C_IGNORED] += 1
    cnt[C_H_OVF] += rec[R_H_OVF]
    return nxt


@njit(cache=True, parallel=True)
def qsbs_layer_int(xw, idx, md, m2, h0, sd, e_min, recip, w32, hm_max, tab, use_madd, mdw, m2w, n_out, dp, h_p, C_tab,
                   G_tab, seed, first_pattern, layer_index, n_t, out, counters, bad, chunk):
    """One quantized SbS layer (integer update) for all patterns and IPs; the contract of
    :func:`sbs_model.quant_nb.qsbs_layer` (``out`` (n, N, n_ip) codes, per-job ``counters``,
    ``bad``) with the arrays of :func:`prepare_int` (``use_madd``: the spike loop's update uses
    ``mdw``, ``m2w``, see :attr:`IntFastLayer.madd`)."""
    n_pat = xw.shape[0]
    n_ip, s_len = idx.shape
    npad = md.shape[1]
    jobs = n_pat * n_ip
    n_chunks = (jobs + chunk - 1) // chunk
    narrow = np.int64(md.max()) < (np.int64(1) << 32)
    uniform = True  # rounding constants and the T1 shift the same for every spike
    for t in range(n_t):
        for c in (TAB_RS1, TAB_SR, TAB_BIAS, TAB_LM, TAB_TV, TAB_CSH):
            if tab[t, c] != tab[0, c]:
                uniform = False
    rc = (tab[0, TAB_RS1], tab[0, TAB_SR], tab[0, TAB_BIAS], tab[0, TAB_LM], tab[0, TAB_TV], tab[0, TAB_CSH])
    top1 = (np.uint64(1) << np.uint64(min(dp[D_ACC_WIDTH], np.int64(32)))) - np.uint64(1)
    c_R, c_F, c_gb, c_Qb, c_cob = dp[D_NORM_BITS], dp[D_ACC_FRAC], dp[D_G_BITS], dp[D_RECIP_BITS], dp[D_COEF_BITS]
    sh2c = e_min - h_p[P_FRAC_BITS] + dp[D_UPD_FRAC]
    kpos = (np.int64(1) << h_p[P_WIDTH]) - 1
    for ck in prange(n_chunks):
        cum, r32, rth, bucket = ip_buffers(s_len, n_t)
        spk = np.empty((GROUP, n_t), dtype=np.int32)  # int32: the threshold count runs in 16 lanes
        h = np.empty((GROUP, npad), dtype=np.uint32)
        ok = np.empty(GROUP, dtype=np.bool_)
        tot = np.zeros(GROUP, dtype=np.int64)
        rec = np.zeros(REC_LEN, dtype=np.int64)
        start = ck * chunk
        stop = min(jobs, start + chunk)
        for g0 in range(start, stop, GROUP):
            m = min(GROUP, stop - g0)
            for k in range(m):
                job = g0 + k
                b = job // n_ip
                ip = job - b * n_ip
                ok[k] = prepare_ip_fast(xw, b, idx, ip, cum, seed, first_pattern + b, layer_index, r32, rth, bucket,
                                        spk[k])
                if not ok[k]:  # the layer call fails (bad); the spike loop runs it on row 0, harmlessly
                    bad[job] = 1
                    spk[k, :] = 0
                for i in range(npad):
                    h[k, i] = h0[i]
                tot[k] = _dot(h, k, md, spk[k, 0], sd, npad, narrow, w32)
            if w32 and uniform and m == 4:  # GROUP = 4 IPs: the loop over them written out, so that the four dot
                x0, x1, x2, x3 = tot[0], tot[1], tot[2], tot[3]  # sums stay in registers (layer 0: ~4 % less time)
                for t in range(n_t):
                    tn = t + 1 if t + 1 < n_t else t
                    g_t = tab[t, TAB_G]
                    cm_t = tab[t, TAB_CM]
                    lim_t = tab[t, TAB_LIM]
                    s = spk[0, t]
                    s2 = spk[0, tn]
                    nxt, n_ovf = _spike_hoisted(h, 0, s, x0, s2, md, m2, sd, recip, hm_max, g_t, cm_t, lim_t, rc, top1,
                                                c_R, c_F, c_gb, c_Qb, c_cob, sh2c, kpos, npad, use_madd, mdw, m2w)
                    if n_ovf == 0:
                        x0 = nxt
                    elif n_ovf > 0:
                        x0 = nxt
                        counters[g0 + 0, C_H_OVF] += n_ovf
                    else:
                        x0 = _spike_counted(h, 0, s, t, x0, s2, md, m2, sd, e_min, recip, narrow, w32, hm_max,
                                              dp, h_p, C_tab, G_tab, rec, counters[g0 + 0])
                    s = spk[1, t]
                    s2 = spk[1, tn]
                    nxt, n_ovf = _spike_hoisted(h, 1, s, x1, s2, md, m2, sd, recip, hm_max, g_t, cm_t, lim_t, rc, top1,
                                                c_R, c_F, c_gb, c_Qb, c_cob, sh2c, kpos, npad, use_madd, mdw, m2w)
                    if n_ovf == 0:
                        x1 = nxt
                    elif n_ovf > 0:
                        x1 = nxt
                        counters[g0 + 1, C_H_OVF] += n_ovf
                    else:
                        x1 = _spike_counted(h, 1, s, t, x1, s2, md, m2, sd, e_min, recip, narrow, w32, hm_max,
                                              dp, h_p, C_tab, G_tab, rec, counters[g0 + 1])
                    s = spk[2, t]
                    s2 = spk[2, tn]
                    nxt, n_ovf = _spike_hoisted(h, 2, s, x2, s2, md, m2, sd, recip, hm_max, g_t, cm_t, lim_t, rc, top1,
                                                c_R, c_F, c_gb, c_Qb, c_cob, sh2c, kpos, npad, use_madd, mdw, m2w)
                    if n_ovf == 0:
                        x2 = nxt
                    elif n_ovf > 0:
                        x2 = nxt
                        counters[g0 + 2, C_H_OVF] += n_ovf
                    else:
                        x2 = _spike_counted(h, 2, s, t, x2, s2, md, m2, sd, e_min, recip, narrow, w32, hm_max,
                                              dp, h_p, C_tab, G_tab, rec, counters[g0 + 2])
                    s = spk[3, t]
                    s2 = spk[3, tn]
                    nxt, n_ovf = _spike_hoisted(h, 3, s, x3, s2, md, m2, sd, recip, hm_max, g_t, cm_t, lim_t, rc, top1,
                                                c_R, c_F, c_gb, c_Qb, c_cob, sh2c, kpos, npad, use_madd, mdw, m2w)
                    if n_ovf == 0:
                        x3 = nxt
                    elif n_ovf > 0:
                        x3 = nxt
                        counters[g0 + 3, C_H_OVF] += n_ovf
                    else:
                        x3 = _spike_counted(h, 3, s, t, x3, s2, md, m2, sd, e_min, recip, narrow, w32, hm_max,
                                              dp, h_p, C_tab, G_tab, rec, counters[g0 + 3])
            elif w32 and uniform:  # the spike's rounding constants are the layer's: values, not loads
                for t in range(n_t):
                    tn = t + 1 if t + 1 < n_t else t
                    g_t = tab[t, TAB_G]
                    cm_t = tab[t, TAB_CM]
                    lim_t = tab[t, TAB_LIM]
                    for k in range(m):
                        x = tot[k]
                        s = spk[k, t]
                        s2 = spk[k, tn]
                        nxt, n_ovf = _spike_hoisted(h, k, s, x, s2, md, m2, sd, recip, hm_max, g_t, cm_t, lim_t, rc,
                                                    top1, c_R, c_F, c_gb, c_Qb, c_cob, sh2c, kpos, npad, use_madd,
                                                    mdw, m2w)
                        if n_ovf == 0:
                            tot[k] = nxt
                        elif n_ovf > 0:
                            tot[k] = nxt
                            counters[g0 + k, C_H_OVF] += n_ovf
                        else:
                            tot[k] = _spike_counted(h, k, s, t, x, s2, md, m2, sd, e_min, recip, narrow, w32, hm_max,
                                                    dp, h_p, C_tab, G_tab, rec, counters[g0 + k])
            elif w32:  # the fast path first (the loop is written twice so that it tests neither w32 nor ok)
                for t in range(n_t):
                    tn = t + 1 if t + 1 < n_t else t
                    for k in range(m):
                        x = tot[k]
                        s = spk[k, t]
                        s2 = spk[k, tn]
                        nxt, n_ovf = _spike_fast(h, k, s, t, x, s2, md, m2, sd, e_min, recip, hm_max, tab, dp, h_p)
                        if n_ovf == 0:
                            tot[k] = nxt
                        elif n_ovf > 0:
                            tot[k] = nxt
                            counters[g0 + k, C_H_OVF] += n_ovf
                        else:
                            tot[k] = _spike_counted(h, k, s, t, x, s2, md, m2, sd, e_min, recip, narrow, w32, hm_max,
                                                    dp, h_p, C_tab, G_tab, rec, counters[g0 + k])
            else:
                for t in range(n_t):
                    tn = t + 1 if t + 1 < n_t else t
                    for k in range(m):
                        if ok[k]:
                            tot[k] = _spike_counted(h, k, spk[k, t], t, tot[k], spk[k, tn], md, m2, sd, e_min, recip,
                                                    narrow, w32, hm_max, dp, h_p, C_tab, G_tab, rec, counters[g0 + k])
            for k in range(m):
                job = g0 + k
                if not ok[k]:
                    continue
                counters[job, C_SPIKES] += n_t
                b = job // n_ip
                ip = job - b * n_ip
                for i in range(n_out):
                    out[b, i, ip] = h[k, i]


_CACHE: dict = {}


def _prepared(ql: QLayer) -> IntFastLayer | None:
    key = id(ql)
    if key not in _CACHE or _CACHE[key][0] is not ql:
        _CACHE[key] = (ql, prepare_int(ql))
    return _CACHE[key][1]


def run_quant_layer_int(ql: QLayer, xw: np.ndarray, seed: int, first_pattern: int):
    """:func:`sbs_model.quant_nb.run_quant_layer` on this kernel (ValueError if it does not apply)."""
    p = _prepared(ql)
    if p is None:
        raise ValueError(f"layer {ql.index}: the vectorised integer kernel does not apply to datapath {ql.dp}")
    return run_layer_kernel(ql, xw, first_pattern, lambda x, idx, out, cnt, bad, chunk: qsbs_layer_int(
        x, idx, p.md, p.m2, p.h0, np.int64(p.sd), np.int64(p.e_min), p.recip, p.w32, np.int64(p.hm_max), p.tab,
        p.madd, p.mdw, p.m2w, np.int64(ql.layer.out_channels), ql.dp.nb, ql.H.nb, ql.tables.C, ql.tables.G, np.uint64(seed),
        np.uint64(first_pattern), np.uint64(ql.index), np.int64(ql.layer.spikes), out, cnt, bad, chunk))
