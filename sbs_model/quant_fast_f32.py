"""Fast bit-exact kernel for quantized SbS layers with the ``float32`` update (the ``paper*`` presets).

Same definition and the same integers as :func:`sbs_model.quant_nb.qsbs_layer` with
:func:`fixedpoint.datapath.step_nb` (tested ``==`` on every output code and counter), but h is
kept during the T spikes of an IP as float32 *values* instead of H codes: every value of a
floating-point H without sign and without subnormals is exactly a float32 (the datapath validates
this for the float32 update), so decode/encode per element become float32 arithmetic and integer
masks on the float32 bits, which LLVM vectorises.  Codes are produced once, at the end of an IP.

Per spike, for the drawn weight row ``w`` (float32 values of the layer's weight codes):

1. products ``p_i = h_i * w_i`` in float32: exact, because H and W significands have at most 24
   bits together (exact products, ``prod_bits`` 0) and every nonzero product is a normal float32;
2. aligned terms ``floor(p_i * 2**F)`` (F = accumulator fraction bits) as ``int64(h_i * wf_i)``
   with ``wf = w * 2**F``: the scaling by a power of two is exact and float -> int conversion
   truncates, which is the floor for ``p_i >= 0``.  When ``N * 2**(value_bits(H) + value_bits(W)
   + F) <= 2**width`` (``F_PLAIN``; the paper presets on every reference layer: N <= 128) the sum
   can neither wrap nor saturate, so ``A`` is one 64-bit word and the normaliser is a leading-zero
   count; otherwise the terms are summed as two 32-bit pieces (``mid``, ``lo``) like ``dot_nb``'s
   fast loop, then :func:`fixedpoint.accumulate.finish_nb` and
   :func:`fixedpoint.normalise.normalise_nb`;
3. ``A == 0`` ignores the spike; else ``r32 = sig_r * 2**exp_r`` (exact, R <= 24),
   ``q = eps32_t / r32``, ``coef = c32_t * q``, ``h_new = c32_t*h + coef*p`` -- one IEEE float32
   operation each, as :func:`fixedpoint.update.update_float32_nb` (no fastmath, no FMA);
4. encoding into H with truncation: clear the low ``23 - M`` mantissa bits of ``h_new``'s float32
   bits (trunc toward zero = toward the next lower H value), then on the bits (ordered like the
   values for non-negative floats): above H's largest value -> the largest value, flag overflow;
   below H's smallest positive value -> 0 for an H with a zero code (``encode_parts_nb``'s gap
   rule, no flag), else the smallest value (code 0) with flag underflow.

Units: h, w, p are real values (float32); F, M, bias, R are bit counts / exponent offsets of the
datapath (``uq9.55`` accumulator, e5m11z H (M = 11, bias 31), e4mX weights (bias 15), R = 24 for
the paper presets).  The spikes of an IP come from :func:`sbs_model.quant_jobs.prepare_ip_fast`.

Speed: the per-element work is explicit LLVM vector code on ``<16 x float>`` blocks (N zero-padded
to a multiple of PAD = 16; intrinsics like :mod:`sbs_model.kernels_cpu`), and in the one-word case
the update of spike t is fused with the dot product of spike t+1 (its row is known in advance):
one pass over h per spike.  ``GROUP`` IPs are interleaved spike by spike so that their per-spike
dependency chains (sum -> r -> division -> update) overlap.

:func:`step_f32_ref` is the plain numpy reference of one spike in this representation (tested
``==`` against :meth:`fixedpoint.datapath.Datapath.step`).
"""
from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, prange
from numba.core import cgutils, types
from numba.extending import intrinsic

from fixedpoint.accumulate import MASK32, finish_nb
from fixedpoint.datapath import D_ACC_FRAC, D_ACC_OVF, D_H_ROUND, D_PROD_BITS, D_UPDATE, value_bits_nb
from fixedpoint.formats import KIND_FLOAT, P_BIAS, P_KIND, P_SIGNED, P_SUBNORMAL, P_ZERO
from fixedpoint.normalise import normalise_nb
from fixedpoint.rounding import TRUNC, bit_length_nb
from sbs_model.kernels_cpu import PAD
from sbs_model.simd import load_vector, reduce_halves, row_ptr, splat, vector_ptr
from sbs_model.quant_jobs import N_COUNTERS, ip_buffers, prepare_ip_fast, run_layer_kernel
from sbs_model.quant_ref import C_ACC_OVF, C_ACC_OVF_SPIKES, C_H_OVF, C_H_UNF, C_IGNORED, C_SPIKES, QLayer

GROUP = 4  # IPs whose spike loops are interleaved

# ---- layout of the int64 parameter array ``prm`` of prepare_f32 ----
F_FRAC = 0      # accumulator fraction bits F
F_WIDTH = 1     # accumulator width I + F (bits)
F_OVF = 2       # accumulator overflow: 0 saturate / 1 wrap
F_NORM = 3      # normaliser bits R
F_TMASK = 4     # float32 bit mask keeping sign, exponent and the top M mantissa bits (as int32 value)
F_MAXB = 5      # float32 bits of H's largest value
F_MINB = 6      # float32 bits of H's smallest positive value
F_ZERO = 7      # 1: H has a zero code (below MINB -> 0, no flag); 0: below MINB -> MINB, flag underflow
F_BIAS = 8      # H exponent bias
F_MAN = 9       # H mantissa bits M
F_POW_OFF = 10  # index offset of 2**exp_r in the pow2 table
F_N = 11        # N (h elements; arrays are zero-padded to a multiple of PAD)
F_PLAIN = 12    # 1: N * 2**(value_bits(H) + value_bits(W) + F) <= 2**width (the sum never overflows)
PRM_LEN = 13


# ------------------------------------------------------------------------------ float32 bit casts
@intrinsic
def _f32_bits(typingctx, x):
    """float32 -> its IEEE bits as int32 (one bitcast, no conversion)."""
    if x != types.float32:
        return None
    sig = types.int32(types.float32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return sig, codegen


@intrinsic
def _bits_f32(typingctx, u):
    """int32 IEEE bits -> float32 (one bitcast)."""
    if u != types.int32:
        return None
    sig = types.float32(types.int32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return sig, codegen


# ------------------------------------------------------------------------------ explicit SIMD
# The fast accumulator path as LLVM vector instructions on <16 x float> blocks (N zero-padded to
# a multiple of PAD), built from sbs_model.simd like sbs_model.kernels_cpu: no loop-vectoriser prologues, alias checks or
# scalar epilogues per spike.  Plain IEEE fmul/fadd (no fast-math flags, no FMA).

@intrinsic
def _dot_simd(typingctx, h, k, wf, s, nblk):
    """``sum_i int64(h[k, i] * wf[s, i])`` over ``nblk`` blocks of PAD float32 (wraps mod 2**64).
    With ``wf = w * 2**F`` every product is ``p_i * 2**F`` exactly and the conversion truncates:
    each term is ``floor(p_i * 2**F)``."""
    sig = types.int64(h, k, wf, s, nblk)

    def codegen(context, builder, signature, args):
        h_v, k_v, w_v, s_v, nb_v = args
        f32 = ir.FloatType()
        i64 = ir.IntType(64)
        vty = ir.VectorType(f32, PAD)
        ity = ir.VectorType(i64, PAD)
        k_i = context.cast(builder, k_v, signature.args[1], types.intp)
        s_i = context.cast(builder, s_v, signature.args[3], types.intp)
        nb_i = context.cast(builder, nb_v, signature.args[4], types.intp)
        hp = row_ptr(context, builder, signature.args[0], h_v, k_i)
        wp = row_ptr(context, builder, signature.args[2], w_v, s_i)
        acc = cgutils.alloca_once_value(builder, ir.Constant(ity, [ir.Constant(i64, 0)] * PAD))
        with cgutils.for_range(builder, nb_i) as loop:
            j = builder.mul(loop.index, context.get_constant(types.intp, PAD))
            hv = load_vector(builder, hp, j, vty, 4)
            wv = load_vector(builder, wp, j, vty, 4)
            t = builder.fptosi(builder.fmul(hv, wv), ity)
            builder.store(builder.add(builder.load(acc, typ=ity), t), acc)
        return reduce_halves(builder, builder.load(acc, typ=ity), PAD, builder.add)

    return sig, codegen


def _update_codegen(fused: bool, count_low: bool):
    """Code generator of the update intrinsics.  Per block of PAD lanes: ``p = h*w``,
    ``hn = ct*h + coef*p`` (float32), bits masked with ``tmask``, above ``maxb`` -> ``maxb``
    (overflow), below ``minb`` -> ``low_val`` (counted as underflow when ``count_low``, only in
    lanes ``i < n_valid``), stored back into h.  ``fused``: also the next spike's dot product
    ``sum int64(h_new * wf[s2])`` (:func:`_dot_simd` on the new h) in the same pass."""

    def codegen(context, builder, signature, args):
        if fused:
            h_v, k_v, w_v, s_v, wf_v, s2_v, nb_v, ct_v, cf_v, tm_v, mx_v, mn_v, lv_v, nv_v = args
            a_nb = 6
        else:
            h_v, k_v, w_v, s_v, nb_v, ct_v, cf_v, tm_v, mx_v, mn_v, lv_v, nv_v = args
            a_nb = 4
        sa = signature.args
        f32 = ir.FloatType()
        i32 = ir.IntType(32)
        i64 = ir.IntType(64)
        i16 = ir.IntType(PAD)
        vty = ir.VectorType(f32, PAD)
        uty = ir.VectorType(i32, PAD)
        ity = ir.VectorType(i64, PAD)
        k_i = context.cast(builder, k_v, sa[1], types.intp)
        s_i = context.cast(builder, s_v, sa[3], types.intp)
        nb_i = context.cast(builder, nb_v, sa[a_nb], types.intp)
        ctv = splat(builder, context.cast(builder, ct_v, sa[a_nb + 1], types.float32), vty)
        cfv = splat(builder, context.cast(builder, cf_v, sa[a_nb + 2], types.float32), vty)
        tmv = splat(builder, context.cast(builder, tm_v, sa[a_nb + 3], types.int32), uty)
        mxv = splat(builder, context.cast(builder, mx_v, sa[a_nb + 4], types.int32), uty)
        mnv = splat(builder, context.cast(builder, mn_v, sa[a_nb + 5], types.int32), uty)
        lvv = splat(builder, context.cast(builder, lv_v, sa[a_nb + 6], types.int32), uty)
        nvv = splat(builder, context.cast(builder, nv_v, sa[a_nb + 7], types.int32), uty)
        iota = ir.Constant(uty, [ir.Constant(i32, x) for x in range(PAD)])
        hp = row_ptr(context, builder, sa[0], h_v, k_i)
        wp = row_ptr(context, builder, sa[2], w_v, s_i)
        if fused:
            s2_i = context.cast(builder, s2_v, sa[5], types.intp)
            fp = row_ptr(context, builder, sa[4], wf_v, s2_i)
            acc = cgutils.alloca_once_value(builder, ir.Constant(ity, [ir.Constant(i64, 0)] * PAD))
        n_o = cgutils.alloca_once_value(builder, ir.Constant(i64, 0))
        n_l = cgutils.alloca_once_value(builder, ir.Constant(i64, 0))
        with cgutils.for_range(builder, nb_i) as loop:
            j = builder.mul(loop.index, context.get_constant(types.intp, PAD))
            hptr = vector_ptr(builder, hp, j, vty)
            hv = builder.load(hptr, align=4, typ=vty)
            wv = load_vector(builder, wp, j, vty, 4)
            p = builder.fmul(hv, wv)
            hn = builder.fadd(builder.fmul(ctv, hv), builder.fmul(cfv, p))
            u = builder.and_(builder.bitcast(hn, uty), tmv)
            ov = builder.icmp_signed(">", u, mxv)
            lw = builder.icmp_signed("<", u, mnv)
            u = builder.select(ov, mxv, u)
            u = builder.select(lw, lvv, u)
            new = builder.bitcast(u, vty)
            builder.store(new, hptr, align=4)
            # padding lanes (w = 0) never overflow: h stays 0 (zero code) or <= minb (no zero code)
            co = builder.ctpop(builder.bitcast(ov, i16))
            builder.store(builder.add(builder.load(n_o, typ=i64), builder.zext(co, i64)), n_o)
            if count_low:
                base = splat(builder, builder.trunc(j, i32), uty)
                valid = builder.icmp_signed("<", builder.add(iota, base), nvv)
                cl = builder.ctpop(builder.bitcast(builder.and_(lw, valid), i16))
                builder.store(builder.add(builder.load(n_l, typ=i64), builder.zext(cl, i64)), n_l)
            if fused:
                fv = load_vector(builder, fp, j, vty, 4)
                t = builder.fptosi(builder.fmul(new, fv), ity)
                builder.store(builder.add(builder.load(acc, typ=ity), t), acc)
        flags = builder.or_(builder.shl(builder.load(n_l, typ=i64), ir.Constant(i64, 32)), builder.load(n_o, typ=i64))
        if not fused:
            return flags
        total = reduce_halves(builder, builder.load(acc, typ=ity), PAD, builder.add)
        return context.make_tuple(builder, signature.return_type, [flags, total])

    return codegen


def _make_update(count_low: bool):
    @intrinsic
    def update(typingctx, h, k, w, s, nblk, ct, coef, tmask, maxb, minb, low_val, n_valid):
        """In place update/encode of ``h[k]`` (see :func:`_update_codegen`); returns
        ``n_overflow + 2**32 * n_underflow``."""
        return (types.int64(h, k, w, s, nblk, ct, coef, tmask, maxb, minb, low_val, n_valid),
                _update_codegen(False, count_low))

    @intrinsic
    def update_dot(typingctx, h, k, w, s, wf, s2, nblk, ct, coef, tmask, maxb, minb, low_val, n_valid):
        """:func:`update` fused with the next spike's dot product on row ``s2`` of ``wf``:
        ``(n_overflow + 2**32 * n_underflow, sum)``."""
        return (types.UniTuple(types.int64, 2)(h, k, w, s, wf, s2, nblk, ct, coef, tmask, maxb, minb, low_val,
                                                n_valid), _update_codegen(True, count_low))

    return update, update_dot


_update_z, _update_dot_z = _make_update(False)    # H with a zero code: nothing counts as underflow
_update_nz, _update_dot_nz = _make_update(True)   # H without a zero code: values below minb underflow

def _bits(x: float) -> int:
    """float32 bits of a Python float (exact float32 value expected)."""
    return int(np.array([x], dtype=np.float32).view(np.int32)[0])


# ------------------------------------------------------------------------------ applicability
def f32_fast_ok(ql: QLayer) -> bool:
    """True when :func:`qsbs_layer_f32` computes exactly what ``step_nb`` computes for ``ql``:

    * ``update == 'float32'`` and ``h_rounding == 'trunc'``;
    * H a float format without sign and without subnormals (zero code optional);
    * exact products (``dp.nb[D_PROD_BITS] == 0``) with significands of H and W summing to <= 24
      bits, and ``value_bits(H) + value_bits(W) + F <= 62`` (``dot_nb``'s fast loop: every aligned
      term below 2**62);
    * every decoded weight is 0 or a float32 value whose product with H's smallest positive value
      is a normal float32 (>= 2**-126), so every product ``h*w`` is exact in float32;
    * the schedule tables keep every new h finite and normal: ``0 < c32_t <= 1``,
      ``c32_t * H.min_positive >= 2**-126`` and ``eps32_t * 2**(F + value_bits(H) + value_bits(W)
      + 2) < 2**127`` (with r >= 2**-F the term ``coef*p`` stays below 2**127).

    The paper presets (``paper``, ``paper-e4m0/1/4``) satisfy all of these on every layer."""
    dp = ql.dp.nb
    hp = ql.H.nb
    wp = ql.W.nb
    if dp[D_UPDATE] != 1 or dp[D_H_ROUND] != TRUNC or dp[D_PROD_BITS] != 0:
        return False
    if hp[P_KIND] != KIND_FLOAT or hp[P_SIGNED] != 0 or hp[P_SUBNORMAL] != 0:
        return False
    F = int(dp[D_ACC_FRAC])
    vb = int(value_bits_nb(hp)) + int(value_bits_nb(wp))
    if vb + F > 62:
        return False
    sig_w = ql.W.man_bits + 1 if ql.W.kind == "float" else ql.W.width
    if ql.H.man_bits + 1 + sig_w > 24:
        return False
    wv = _weight_values(ql)
    nz = wv[wv != 0]
    if not np.array_equal(wv.astype(np.float32).astype(np.float64), wv):
        return False
    if nz.size and float(nz.min()) * ql.H.min_positive < 2.0 ** -126:
        return False
    e32 = np.asarray(ql.tables.eps32, dtype=np.float64)
    c32 = np.asarray(ql.tables.c32, dtype=np.float64)
    if not (np.all(np.isfinite(e32)) and np.all(e32 >= 0) and np.all(c32 > 0) and np.all(c32 <= 1)):
        return False
    if float(c32.min()) * ql.H.min_positive < 2.0 ** -126:
        return False
    return bool(float(e32.max()) * 2.0 ** (F + vb + 2) < 2.0 ** 127)


def _weight_values(ql: QLayer) -> np.ndarray:
    """Decoded weight values ``(S, N)`` float64 (exact)."""
    sig, exp = ql.W.decode_parts(ql.wcodes)
    return np.ldexp(sig.astype(np.float64), exp.astype(np.int32))


# ------------------------------------------------------------------------------ prepared arrays
_PREP_CACHE: dict = {}


def prepare_f32(ql: QLayer):
    """Per-layer arrays ``(w32, wf, h0f, prm, pow2)``, cached per ``ql`` object:

    * ``w32`` ``(S, N_pad)`` float32: the weight codes' values (exact), zero columns up to
      ``N_pad`` = N rounded up to a multiple of PAD (16);
    * ``wf`` ``(S, N_pad)`` float32: ``w32 * 2**F`` (exact), so ``h * wf = p * 2**F``;
    * ``h0f`` ``(N_pad,)`` float32: the initial h codes' values (exact), zero padded;
    * ``prm`` int64 ``(PRM_LEN,)``: accumulator, normaliser and H encoding constants (``F_*``);
    * ``pow2`` float64: ``2**k`` for every exponent ``exp_r`` the normaliser can return
      (``pow2[exp_r + prm[F_POW_OFF]]``), so ``r32 = float32(sig_r * 2**exp_r)`` needs no libm call.

    ValueError if :func:`f32_fast_ok` is False."""
    key = id(ql)
    hit = _PREP_CACHE.get(key)
    if hit is not None and hit[0] is ql:
        return hit[1]
    if not f32_fast_ok(ql):
        raise ValueError(f"layer {ql.index}: datapath {ql.dp.text!r} is not supported by the float32 fast kernel "
                         f"(see f32_fast_ok)")
    I, F = ql.dp.acc
    wv = _weight_values(ql)
    S, N = wv.shape
    n_pad = -(-N // PAD) * PAD
    w32 = np.zeros((S, n_pad), dtype=np.float32)
    w32[:, :N] = wv
    wf = np.zeros((S, n_pad), dtype=np.float32)
    wf[:, :N] = wv * 2.0 ** F  # exact: a power-of-two scaling of float32 values, still below 2**127
    sig, exp = ql.H.decode_parts(ql.h0)
    h0f = np.zeros(n_pad, dtype=np.float32)
    h0f[:N] = np.ldexp(sig.astype(np.float64), exp.astype(np.int32))
    R = int(ql.dp.norm_bits)
    M = int(ql.H.man_bits)
    prm = np.zeros(PRM_LEN, dtype=np.int64)
    prm[F_FRAC] = F
    prm[F_WIDTH] = I + F
    prm[F_OVF] = int(ql.dp.nb[D_ACC_OVF])
    prm[F_NORM] = R
    prm[F_TMASK] = np.int64(np.int32(np.uint32((0xFFFFFFFF << (23 - M)) & 0xFFFFFFFF).view(np.int32)))
    prm[F_MAXB] = _bits(ql.H.max_value)
    prm[F_MINB] = _bits(ql.H.min_positive)
    prm[F_ZERO] = int(ql.H.nb[P_ZERO])
    prm[F_BIAS] = int(ql.H.nb[P_BIAS])
    prm[F_MAN] = M
    # exp_r = bit_length(A) - R - F with bit_length in 1..I+F
    lo_e = 1 - R - F
    prm[F_POW_OFF] = -lo_e
    prm[F_N] = N
    vb = int(value_bits_nb(ql.H.nb)) + int(value_bits_nb(ql.W.nb))
    prm[F_PLAIN] = int(N * 2 ** (vb + F) <= 2 ** (I + F))
    pow2 = np.ldexp(1.0, np.arange(lo_e, I + F - R - F + 1)).astype(np.float64)
    out = (w32, wf, h0f, prm, pow2)
    _PREP_CACHE[key] = (ql, out)
    return out


# ------------------------------------------------------------------------------ numpy reference
def encode_f32_ref(hn: np.ndarray, prm: np.ndarray):
    """float32 values ``hn`` (finite, >= 0) -> ``(values of H after truncation, float32;
    overflow flags, underflow flags)``: the numpy reference of the kernel's encoding step."""
    u = np.asarray(hn, dtype=np.float32).view(np.int32) & np.int32(prm[F_TMASK])
    ovf = u > prm[F_MAXB]
    u = np.where(ovf, prm[F_MAXB], u)
    low = u < prm[F_MINB]
    if prm[F_ZERO]:
        u = np.where(low, 0, u)
        unf = np.zeros(u.shape, dtype=bool)
    else:
        u = np.where(low, prm[F_MINB], u)
        unf = low
    return u.astype(np.int32).view(np.float32), ovf, unf


def values_to_codes_ref(hf: np.ndarray, prm: np.ndarray) -> np.ndarray:
    """float32 values of H (as kept by the kernel) -> int64 H codes."""
    u = np.asarray(hf, dtype=np.float32).view(np.int32).astype(np.int64)
    M = int(prm[F_MAN])
    code = (((u >> 23) - 127 + prm[F_BIAS]) << M) | ((u >> (23 - M)) & ((1 << M) - 1))
    return np.where(u == 0, 0, code).astype(np.int64)


def step_f32_ref(hf: np.ndarray, wrow: np.ndarray, t: int, prm: np.ndarray, pow2: np.ndarray, eps32, c32):
    """One spike on float32 h values ``hf`` (N,) with weight values ``wrow`` (N,) float32 (plain numpy).

    Returns ``(h_new float32 (N,), (a_hi, a_lo, acc_overflow, sig_r, exp_r, h_overflow, h_underflow))``;
    h_new is ``hf`` unchanged for an ignored spike (A == 0)."""
    F = int(prm[F_FRAC])
    p = (np.asarray(hf, dtype=np.float32) * np.asarray(wrow, dtype=np.float32)).astype(np.float32)
    terms = (p * np.float32(2.0 ** F)).astype(np.int64)          # floor(p * 2**F), p >= 0
    S = int(sum(int(x) for x in terms))                           # exact (Python ints)
    width = int(prm[F_WIDTH])
    ovf = min(S >> width, (1 << 31) - 1)
    A = S % (1 << width) if prm[F_OVF] == 1 else min(S, (1 << width) - 1)
    a_hi, a_lo = A >> 32, A & MASK32
    if A == 0:
        return np.array(hf, dtype=np.float32), (a_hi, a_lo, ovf, 0, 0, 0, 0)
    R = int(prm[F_NORM])
    bl = A.bit_length()
    sig_r = A >> (bl - R) if bl >= R else A << (R - bl)
    exp_r = bl - R - F
    r32 = np.float32(math.ldexp(float(sig_r), exp_r))
    e, c = np.float32(eps32[t]), np.float32(c32[t])
    q = np.float32(e / r32)
    coef = np.float32(c * q)
    hn = ((c * hf).astype(np.float32) + (coef * p).astype(np.float32)).astype(np.float32)
    new, o, un = encode_f32_ref(hn, prm)
    return new, (a_hi, a_lo, ovf, sig_r, exp_r, int(o.sum()), int(un.sum()))


# ------------------------------------------------------------------------------ numba kernel
@njit(cache=True, inline="always")
def _dot_terms(h, k, w, s, n, scale):
    """``(mid, lo)``: sum over i < n of ``floor(h[k,i]*w[s,i] * 2**F)`` split as 32-bit pieces
    (``scale = 2**F`` float32).  Vectorised by LLVM (integer reductions)."""
    mid = np.int64(0)
    lo = np.int64(0)
    for i in range(n):
        v = np.int64(np.float32(h[k, i] * w[s, i]) * scale)
        mid += v >> 32
        lo += v & MASK32
    return mid, lo


@njit(cache=True, inline="always")
def _spike_scalar(mid, lo, prm, pow2):
    """finish + normalise of one spike: ``(ovf, sig_r, r32)`` (r32 = sig_r * 2**exp_r, float32)."""
    a_hi, a_lo, ovf = finish_nb(np.int64(0), mid, lo, prm[F_WIDTH], prm[F_OVF])
    sig_r, exp_r = normalise_nb(a_hi, a_lo, prm[F_FRAC], prm[F_NORM])
    r32 = np.float32(np.float64(sig_r) * pow2[exp_r + prm[F_POW_OFF]]) if sig_r != 0 else np.float32(0)
    return ovf, sig_r, r32


@njit(cache=True, error_model="numpy")
def _group_spikes(h, m, spk, w32, wf, e32, c32, prm, pow2, cnt, acc):
    """All T spikes of the ``m <= GROUP`` IPs in ``h[:m]`` (float32 values, N padded to a multiple
    of PAD, in place), interleaved spike by spike; ``cnt[k]`` (zeroed here) gets IP k's counters;
    ``acc`` (GROUP,) int64 work buffer (the next spike's accumulator sum per IP)."""
    n_pad = w32.shape[1]
    nblk = n_pad // PAD
    n_valid = prm[F_N]
    n_t = e32.shape[0]
    F = prm[F_FRAC]
    R = prm[F_NORM]
    mmask = np.int64(0x7FFFFF) & ~((np.int64(1) << (24 - R)) - 1)  # mantissa bits of the top R bits
    scale = np.float32(2.0 ** F)
    tmask = np.int32(prm[F_TMASK])
    maxb = np.int32(prm[F_MAXB])
    minb = np.int32(prm[F_MINB])
    zero = prm[F_ZERO] == 1
    low_val = np.int32(0) if zero else minb
    plain = prm[F_PLAIN] == 1
    for k in range(m):
        for j in range(N_COUNTERS):
            cnt[k, j] = 0
        cnt[k, C_SPIKES] = n_t
        if plain:
            acc[k] = _dot_simd(h, k, wf, spk[k, 0], nblk)
    for t in range(n_t):
        et = e32[t]
        ct = c32[t]
        t2 = t + 1 if t + 1 < n_t else t
        for k in range(m):
            s = spk[k, t]
            if plain:
                # the sum is below 2**width: A = S, no overflow; normalise_nb on one 64-bit word
                A = acc[k]
                s2 = spk[k, t2]
                if A == 0:
                    cnt[k, C_IGNORED] += 1
                    acc[k] = _dot_simd(h, k, wf, s2, nblk)
                    continue
                # r32 = sig_r * 2**exp_r built from its IEEE bits: the top 24 bits of A (leading
                # one dropped, the bits below the top R cleared), exponent bit_length(A) - 1 - F
                lz = 64 - bit_length_nb(A)
                mant = ((A << lz) >> 40) & mmask
                rr = _bits_f32(np.int32((((63 - lz) - F + 127) << 23) | mant))
                q = np.float32(et / rr)
                coef = np.float32(ct * q)
                if zero:
                    fl, acc[k] = _update_dot_z(h, k, w32, s, wf, s2, nblk, ct, coef, tmask, maxb, minb, low_val,
                                               n_valid)
                else:
                    fl, acc[k] = _update_dot_nz(h, k, w32, s, wf, s2, nblk, ct, coef, tmask, maxb, minb, low_val,
                                                n_valid)
            else:
                mid, lo = _dot_terms(h, k, w32, s, n_pad, scale)
                ovf, sig_r, rr = _spike_scalar(mid, lo, prm, pow2)
                if ovf > 0:
                    cnt[k, C_ACC_OVF_SPIKES] += 1
                    cnt[k, C_ACC_OVF] += ovf
                if sig_r == 0:
                    cnt[k, C_IGNORED] += 1
                    continue
                q = np.float32(et / rr)
                coef = np.float32(ct * q)
                if zero:
                    fl = _update_z(h, k, w32, s, nblk, ct, coef, tmask, maxb, minb, low_val, n_valid)
                else:
                    fl = _update_nz(h, k, w32, s, nblk, ct, coef, tmask, maxb, minb, low_val, n_valid)
            if fl != 0:
                cnt[k, C_H_OVF] += fl & MASK32
                cnt[k, C_H_UNF] += fl >> 32


@njit(cache=True, parallel=True)
def qsbs_layer_f32(xw, idx, w32, wf, h0f, prm, pow2, e32, c32, seed, first_pattern, layer_index, n_t, out, counters,
                   bad, chunk):
    """One quantized SbS layer (float32 update) for all patterns and IPs; same contract as
    :func:`sbs_model.quant_nb.qsbs_layer`.

    xw        (n, C*H*W) int64 integer window source
    idx       (n_ip, S) int64 flat index per window position, -1 = zero padding
    w32, wf, h0f, prm, pow2   :func:`prepare_f32`
    e32, c32  (T,) float32 schedule tables (``ql.tables.eps32``, ``.c32``)
    out       (n, N, n_ip) int64 final h codes
    counters  (n*n_ip, len(COUNTERS)) int64 per-job counters (zeroed by the caller)
    bad       (n*n_ip,) int64: 1 where the window total is >= 2**31 (job not run)
    """
    n_pat = xw.shape[0]
    n_ip, s_len = idx.shape
    n_pad = w32.shape[1]
    n = prm[F_N]
    jobs = n_pat * n_ip
    n_chunks = (jobs + chunk - 1) // chunk
    M = prm[F_MAN]
    bias = prm[F_BIAS]
    for ck in prange(n_chunks):
        cum, r32, rth, bucket = ip_buffers(s_len, n_t)
        spk = np.empty((GROUP, n_t), dtype=np.int64)
        h = np.empty((GROUP, n_pad), dtype=np.float32)
        jb = np.empty(GROUP, dtype=np.int64)
        cnt = np.empty((GROUP, N_COUNTERS), dtype=np.int64)
        acc = np.empty(GROUP, dtype=np.int64)
        start = ck * chunk
        stop = min(jobs, start + chunk)
        g0 = start
        while g0 < stop:
            # the next GROUP runnable jobs (a bad window is flagged and skipped)
            m = 0
            while g0 < stop and m < GROUP:
                b = g0 // n_ip
                ip = g0 - b * n_ip
                if prepare_ip_fast(xw, b, idx, ip, cum, seed, first_pattern + b, layer_index, r32, rth, bucket,
                                   spk[m]):
                    jb[m] = g0
                    for i in range(n_pad):
                        h[m, i] = h0f[i]
                    m += 1
                else:
                    bad[g0] = 1
                g0 += 1
            _group_spikes(h, m, spk, w32, wf, e32, c32, prm, pow2, cnt, acc)
            for k in range(m):
                for j in range(N_COUNTERS):
                    counters[jb[k], j] += cnt[k, j]
            for k in range(m):
                job = jb[k]
                b = job // n_ip
                ip = job - b * n_ip
                for i in range(n):
                    u = np.int64(_f32_bits(h[k, i]))
                    if u == 0:
                        out[b, i, ip] = 0
                    else:
                        out[b, i, ip] = (((u >> 23) - 127 + bias) << M) | ((u >> (23 - M)) & ((np.int64(1) << M) - 1))


def run_quant_layer_f32(ql: QLayer, xw: np.ndarray, seed: int, first_pattern: int):
    """``xw`` ``(n, C, H, W)`` int64 -> ``(codes (n, N, Ho, Wo) int64, counters (len(COUNTERS),))``,
    equal to ``quant_nb.run_quant_layer(ql, xw, seed, first_pattern)``; ValueError when
    :func:`f32_fast_ok` is False or a window total exceeds 2**31 - 1."""
    w32, wf, h0f, prm, pow2 = prepare_f32(ql)
    t = ql.tables
    e32 = np.ascontiguousarray(t.eps32, dtype=np.float32)
    c32 = np.ascontiguousarray(t.c32, dtype=np.float32)
    return run_layer_kernel(ql, xw, first_pattern, lambda x, idx, out, cnt, bad, chunk: qsbs_layer_f32(
        x, idx, w32, wf, h0f, prm, pow2, e32, c32, np.uint64(seed), np.uint64(first_pattern), np.uint64(ql.index),
        np.int64(ql.layer.spikes), out, cnt, bad, chunk))
