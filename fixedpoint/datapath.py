"""``Datapath``: one complete, validated description of the SbS arithmetic of one accelerator.

A frozen, hashable dataclass of plain strings and ints (JSON round trip ``to_dict``/``from_dict``,
canonical ``text``).  It names the formats (weights, h, accumulator), every rounding and overflow
choice and every width of the operations in :mod:`fixedpoint.product`,
:mod:`fixedpoint.accumulate`, :mod:`fixedpoint.normalise`, :mod:`fixedpoint.reciprocal`,
:mod:`fixedpoint.update` and :mod:`fixedpoint.schedule`.

``dp.step(h_codes, w_codes, t, tables)`` is the numpy reference of one spike at one IP (the
obviously-correct composition of the numpy operations); :func:`step_nb` is its numba twin for
kernels (no allocation; ``h_out`` may be ``h_codes`` itself).  Both must agree bit for bit.

Per spike: ``p_i = h_i*w_i`` (product, optional ``prod_bits``) -> ``A = sum floor(p_i*2**F)``
(accumulator ``uqI.F``, wrap/saturate) -> ``r = sig_r*2**exp_r`` (leading-one detection, R bits,
truncating) -> if ``A == 0`` the spike is ignored, else the update in ``int`` mode (reciprocal Y,
coefficient ``K = G_t*Y``, aligned terms, one rounding into H) or ``float32`` mode (the paper's).
``scaled`` mode (:mod:`fixedpoint.scaled`) is ``int`` mode with h kept divided by a per-layer
scale: no ``C*h`` product per element, the common factor a power of two except at the last spike,
and a spike with ``A == 0`` still applies that factor (``K = 0``).
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, fields

import numpy as np
from numba import njit

from fixedpoint.accumulate import MASK32, MAX_TERMS, accumulate, finish_nb, overflow_code, term_pieces_nb
from fixedpoint.formats import (KIND_FIXED, P_BIAS, P_EXP_BITS, P_FRAC_BITS, P_KIND, P_WIDTH, decode_parts_nb,
                                encode_parts_nb, parse_format)
from fixedpoint.normalise import normalise, normalise_nb
from fixedpoint.product import product, product_nb
from fixedpoint.reciprocal import METHODS, check_params, nr_table, reciprocal, reciprocal_nb
from fixedpoint.rounding import ROUNDING_MODES, rounding_code
from fixedpoint.scaled import scaled_tables
from fixedpoint.scaling import fit_format
from fixedpoint.schedule import Schedule, ScheduleTables, make_tables
from fixedpoint.update import (coefficient, coefficient_nb, float32_to_parts, float32_to_parts_nb, parts_to_float32,
                               scale_sum_nb, scale_sums, update_float32, update_float32_nb, update_int_sum_nb,
                               update_int_sums, update_scaled_sum_nb, update_scaled_sums)

UPDATE_MODES = {"int": 0, "float32": 1, "scaled": 2}
WEIGHT_SCALING = ("none", "max")
WEIGHT_OVERFLOW = ("raise", "saturate", "wrap")
_ACC_RE = re.compile(r"^uq(\d+)\.(\d+)$")

# ---- layout of Datapath.nb (tuple of int64) ----
D_PROD_BITS = 0      # 0 = exact
D_PROD_ROUND = 1
D_ACC_FRAC = 2
D_ACC_WIDTH = 3
D_ACC_OVF = 4        # 0 saturate / 1 wrap
D_NORM_BITS = 5
D_UPDATE = 6         # 0 int / 1 float32
D_RECIP_METHOD = 7   # 0 div / 1 nr
D_RECIP_BITS = 8
D_RECIP_ROUND = 9
D_LUT_BITS = 10
D_ITERS = 11
D_COEF_BITS = 12
D_C_BITS = 13
D_G_BITS = 14
D_UPD_FRAC = 15
D_H_ROUND = 16
D_SAMPLER_FRAC = 17
NB_LEN = 18

# ---- layout of the numba step record (int64 array of REC_LEN) ----
R_A_HI, R_A_LO, R_ACC_OVF, R_SIG_R, R_EXP_R, R_Y, R_K, R_EXP_K, R_H_OVF, R_H_UNF = range(10)
REC_LEN = 10


def _sig_bits(fmt) -> int:
    """Bits of the largest significand of a format's decode_parts."""
    return fmt.man_bits + 1 if fmt.kind == "float" else fmt.width


def parse_acc_format(text: str) -> tuple[int, int]:
    """``uqI.F`` (unsigned, width I+F in 1..64) -> (I, F)."""
    m = _ACC_RE.match(str(text).strip().lower())
    if not m:
        raise ValueError(f"acc_format {text!r}: expected uqI.F (unsigned fixed point, I, F >= 0)")
    i, f = int(m.group(1)), int(m.group(2))
    if not 1 <= i + f <= 64:
        raise ValueError(f"acc_format {text!r}: width {i + f} out of range 1..64")
    return i, f


@dataclass(frozen=True)
class StepRecord:
    """What one spike did: accumulator A (uint value) and its overflow count, the normalised sum
    ``sig_r * 2**exp_r`` (0 = ignored spike), reciprocal Y, coefficient ``K * 2**exp_K``, and the
    number of h elements that overflowed / underflowed when encoded into H."""

    A: int
    acc_overflow: int
    sig_r: int
    exp_r: int
    Y: int
    K: int
    exp_K: int
    h_overflow: int
    h_underflow: int

    @property
    def ignored(self) -> bool:
        return self.sig_r == 0

    def to_array(self) -> np.ndarray:
        """The numba record layout (A as two 32-bit limbs)."""
        return np.array([self.A >> 32, self.A & 0xFFFFFFFF, self.acc_overflow, self.sig_r, self.exp_r, self.Y,
                         self.K, self.exp_K, self.h_overflow, self.h_underflow], dtype=np.int64)

    @staticmethod
    def from_array(rec) -> "StepRecord":
        r = [int(v) for v in rec]
        return StepRecord((r[R_A_HI] << 32) | r[R_A_LO], *r[R_ACC_OVF:REC_LEN])


@dataclass(frozen=True)
class Datapath:
    """Number formats and operation widths of the SbS datapath (all fields validated).

    Units: every ``*_bits`` field is a bit count; ``c_bits``/``g_bits`` are the fraction bits Fc/Fg of
    the schedule tables (uq0.Fc, uq0.Fg), ``recip_bits`` Qb the fraction bits of 1/x,
    ``upd_frac_bits`` Fu the fraction bits of the update grid, ``sampler_frac_bits`` the fraction
    bits of the integer sampler window.  Fields unused by the chosen mode (the reciprocal and
    coefficient fields in ``float32`` mode) are still validated and kept.
    """

    weight_format: str = "e4m1"
    weight_rounding: str = "rne"
    weight_overflow: str = "saturate"
    weight_scaling: str = "max"
    h_format: str = "uq0.16"
    h_rounding: str = "rne"
    prod_bits: int | None = None
    prod_rounding: str = "trunc"
    acc_format: str = "uq2.30"
    acc_overflow: str = "saturate"
    norm_bits: int = 16
    update: str = "int"
    recip_method: str = "div"
    recip_bits: int = 16
    recip_rounding: str = "rne"
    lut_bits: int = 6
    nr_iters: int = 2
    coef_bits: int = 18
    c_bits: int = 16
    g_bits: int = 16
    upd_frac_bits: int = 24
    sampler_frac_bits: int = 16

    def __post_init__(self):
        # canonical spellings (so equal datapaths compare and hash equal)
        for name in ("weight_format", "h_format"):
            try:
                f = parse_format(getattr(self, name))
            except ValueError as e:
                raise ValueError(f"{name}: {e}") from None
            if f.signed:
                raise ValueError(f"{name}: {f} is signed; allowed: unsigned formats (uqI.F, eEmM...)")
            object.__setattr__(self, name, f.text)
        i, f = parse_acc_format(self.acc_format)
        object.__setattr__(self, "acc_format", f"uq{i}.{f}")
        for name in ("weight_rounding", "h_rounding", "prod_rounding", "recip_rounding"):
            v = getattr(self, name)
            if not isinstance(v, str) or v.lower() not in ROUNDING_MODES:
                raise ValueError(f"{name} {v!r}; allowed: {', '.join(ROUNDING_MODES)}")
            object.__setattr__(self, name, v.lower())
        if self.prod_bits == 0:
            object.__setattr__(self, "prod_bits", None)
        self._validate()

    # ------------------------------------------------------------------ validation
    def _validate(self) -> None:
        W, H = self.formats()
        I, F = parse_acc_format(self.acc_format)
        if self.weight_overflow not in WEIGHT_OVERFLOW:
            raise ValueError(f"weight_overflow {self.weight_overflow!r}; allowed: {', '.join(WEIGHT_OVERFLOW)}")
        if self.weight_scaling not in WEIGHT_SCALING:
            raise ValueError(f"weight_scaling {self.weight_scaling!r}; allowed: {', '.join(WEIGHT_SCALING)}")
        if self.acc_overflow not in ("saturate", "wrap"):
            raise ValueError(f"acc_overflow {self.acc_overflow!r}; allowed: saturate, wrap")
        if self.update not in UPDATE_MODES:
            raise ValueError(f"update {self.update!r}; allowed: {', '.join(UPDATE_MODES)}")
        if self.recip_method not in METHODS:
            raise ValueError(f"recip_method {self.recip_method!r}; allowed: {', '.join(METHODS)}")
        ints = {"norm_bits": (2, 61), "recip_bits": (2, 40), "lut_bits": (1, 16), "nr_iters": (0, 8),
                "coef_bits": (2, 40), "c_bits": (1, 31), "g_bits": (1, 31), "upd_frac_bits": (0, 58),
                "sampler_frac_bits": (0, 30)}
        for name, (lo, hi) in ints.items():
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or not lo <= v <= hi:
                raise ValueError(f"{name} {v!r} out of range {lo}..{hi}")
        pw = _sig_bits(H) + _sig_bits(W)
        if pw > 62:
            raise ValueError(f"weight_format {W} x h_format {H}: exact product needs {pw} bits; allowed <= 62")
        if self.prod_bits is not None:
            if not isinstance(self.prod_bits, (int, np.integer)) or not 1 <= self.prod_bits <= 62:
                raise ValueError(f"prod_bits {self.prod_bits!r} out of range 1..62 (or None = exact)")
            pw = min(pw, int(self.prod_bits))
        R = int(self.norm_bits)
        max_exp_h = math.frexp(H.max_value)[1]  # H.max_value < 2**max_exp_h
        if self.update == "float32":
            if _sig_bits(H) > 24 or H.min_positive < 2.0 ** -126 or max_exp_h > 127:
                raise ValueError(f"h_format {H}: not exactly representable in float32 (update 'float32')")
            if pw > 24:
                raise ValueError(f"prod_bits: float32 update needs products of <= 24 bits, got {pw}")
            if R > 24:
                raise ValueError(f"norm_bits {R} out of range 2..24 for update 'float32'")
            if H.min_positive * W.min_positive < 2.0 ** -126:
                raise ValueError(f"weight_format {W} x h_format {H}: products below float32 normal range")
        else:
            check_params(R, self.recip_bits, self.recip_method, self.lut_bits, self.nr_iters)
            if self.coef_bits + pw > 62:
                raise ValueError(f"coef_bits {self.coef_bits} + product bits {pw} must be <= 62")
            if self.c_bits + _sig_bits(H) > 62:
                raise ValueError(f"c_bits {self.c_bits} + h significand bits {_sig_bits(H)} must be <= 62")
            if self.upd_frac_bits + max_exp_h > 59:
                raise ValueError(f"upd_frac_bits {self.upd_frac_bits}: h_format {H} needs upd_frac_bits <= "
                                 f"{59 - max_exp_h} (aligned terms below 2**60 must cover H's range)")
            vb = int(value_bits_nb(H.nb))
            if self.update == "scaled" and self.upd_frac_bits + vb + 2 * self.c_bits + 2 > 62:
                raise ValueError(f"upd_frac_bits {self.upd_frac_bits} + 2*c_bits {2 * self.c_bits} + 2 + h_format "
                                 f"{H} value bits {vb} must be <= 62 (update 'scaled': capped sum times C_t)")
        if max_exp_h + self.sampler_frac_bits > 31:
            raise ValueError(f"sampler_frac_bits {self.sampler_frac_bits}: h_format {H} values would exceed "
                             f"2**31; allowed 0..{31 - max_exp_h}")

    # ------------------------------------------------------------------ parsed views
    def formats(self):
        """(weight format, h format) objects (the unscaled weight format)."""
        return parse_format(self.weight_format), parse_format(self.h_format)

    @property
    def acc(self) -> tuple[int, int]:
        """Accumulator (int_bits, frac_bits)."""
        return parse_acc_format(self.acc_format)

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "Datapath":
        names = {f.name for f in fields(Datapath)}
        extra = set(d) - names
        if extra:
            raise ValueError(f"datapath: unknown field(s) {', '.join(sorted(extra))}")
        return Datapath(**d)

    @property
    def text(self) -> str:
        """Canonical one-line text: ``field=value`` pairs in field order (``prod_bits=exact`` for None)."""
        parts = []
        for f in fields(self):
            v = getattr(self, f.name)
            parts.append(f"{f.name}={'exact' if v is None else v}")
        return ",".join(parts)

    @staticmethod
    def from_text(text: str) -> "Datapath":
        d = {}
        types = {f.name: f.type for f in fields(Datapath)}
        for item in str(text).split(","):
            if "=" not in item:
                raise ValueError(f"datapath text: item {item!r} is not field=value")
            k, v = item.split("=", 1)
            k = k.strip()
            if k not in types:
                raise ValueError(f"datapath text: unknown field {k!r}")
            if k == "prod_bits":
                d[k] = None if v == "exact" else int(v)
            elif "int" in str(types[k]):
                d[k] = int(v)
            else:
                d[k] = v
        return Datapath(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @staticmethod
    def preset(name: str) -> "Datapath":
        """A named preset (see ``PRESETS``)."""
        if name not in PRESETS:
            raise ValueError(f"datapath preset {name!r}; allowed: {', '.join(PRESETS)}")
        return PRESETS[name]

    # ------------------------------------------------------------------ helpers for users
    def weight_format_for(self, W) -> object:
        """The layer's weight format: the base format, or moved by ``fit_format(.., 'max')``."""
        base = parse_format(self.weight_format)
        if self.weight_scaling == "none":
            return base
        return fit_format(base, np.asarray(W, dtype=np.float64), "max")

    def encode_weights(self, W):
        """float weights (any shape) -> (int64 codes, the layer's weight format)."""
        fmt = self.weight_format_for(W)
        return fmt.encode(np.asarray(W, dtype=np.float64), self.weight_rounding, self.weight_overflow), fmt

    def weight_range_counts(self, W) -> dict:
        """How many of the float weights ``W`` fall outside the layer's weight format:
        ``{"format", "n", "overflow", "underflow"}``.  Under the ``wrap`` policy (the paper presets: no
        range check, as published) each such weight is encoded as a wrong value, e.g. a weight below
        2**-15 becomes a large one in E4Mx with bias 15; under ``saturate`` it is clamped."""
        fmt = self.weight_format_for(W)
        policy = "saturate" if self.weight_overflow == "raise" else self.weight_overflow
        _, flags = fmt.encode_flags(np.asarray(W, dtype=np.float64), self.weight_rounding, policy)
        return {"format": fmt.text, "n": int(np.size(W)), "overflow": int(np.count_nonzero(flags == 1)),
                "underflow": int(np.count_nonzero(flags == 2))}

    def initial_h(self, N: int) -> np.ndarray:
        """h codes of the uniform start ``1/N`` (rounded with ``h_rounding``)."""
        H = parse_format(self.h_format)
        return H.encode(np.full(int(N), 1.0 / int(N)), self.h_rounding, "saturate")

    def tables(self, T: int, schedule: Schedule | None = None) -> ScheduleTables:
        """eps/c/g tables for T spikes with this datapath's Fc, Fg (update ``scaled``: C and G are
        :func:`fixedpoint.scaled.scaled_tables`' C_t and A_t)."""
        if self.update == "scaled":
            return scaled_tables(T, schedule, self.c_bits, self.g_bits)
        return make_tables(T, schedule, self.c_bits, self.g_bits)

    def lut(self) -> np.ndarray:
        """Newton-Raphson start table (a 1-entry dummy for method ``div``)."""
        if self.recip_method == "nr":
            return nr_table(self.lut_bits, self.recip_bits)
        return np.zeros(1, dtype=np.int64)

    def nb_params(self) -> tuple:
        """The int64 tuple used by :func:`step_nb` (layout ``D_*``)."""
        I, F = self.acc
        v = [0] * NB_LEN
        W, H = self.formats()
        # prod_bits >= the exact product width never rounds: 0 (exact) selects the fast loop
        exact = self.prod_bits is None or self.prod_bits >= _sig_bits(W) + _sig_bits(H)
        v[D_PROD_BITS] = 0 if exact else self.prod_bits
        v[D_PROD_ROUND] = rounding_code(self.prod_rounding)
        v[D_ACC_FRAC] = F
        v[D_ACC_WIDTH] = I + F
        v[D_ACC_OVF] = overflow_code(self.acc_overflow)
        v[D_NORM_BITS] = self.norm_bits
        v[D_UPDATE] = UPDATE_MODES[self.update]
        v[D_RECIP_METHOD] = METHODS[self.recip_method]
        v[D_RECIP_BITS] = self.recip_bits
        v[D_RECIP_ROUND] = rounding_code(self.recip_rounding)
        v[D_LUT_BITS] = self.lut_bits
        v[D_ITERS] = self.nr_iters
        v[D_COEF_BITS] = self.coef_bits
        v[D_C_BITS] = self.c_bits
        v[D_G_BITS] = self.g_bits
        v[D_UPD_FRAC] = self.upd_frac_bits
        v[D_H_ROUND] = rounding_code(self.h_rounding)
        v[D_SAMPLER_FRAC] = self.sampler_frac_bits
        return tuple(np.int64(x) for x in v)

    @property
    def nb(self) -> tuple:
        return self.nb_params()

    # ------------------------------------------------------------------ the reference step
    def dot(self, h_codes, w_codes, w_format=None):
        """Approximate dot product: ``(A, acc_overflow, sig_r, exp_r)`` (numpy reference)."""
        return self._dot_parts(h_codes, w_codes, w_format)[4:]

    def _dot_parts(self, h_codes, w_codes, w_format):
        """Decode, product, accumulate, normalise: ``(sig_h, exp_h, P, E, A, acc_overflow, sig_r,
        exp_r)``; the products are kept for the update."""
        W = parse_format(w_format) if w_format is not None else parse_format(self.weight_format)
        sig_h, exp_h = parse_format(self.h_format).decode_parts(h_codes)
        sig_w, exp_w = W.decode_parts(w_codes)
        P, E = product(sig_h, exp_h, sig_w, exp_w, self.prod_bits, self.prod_rounding)
        I, F = self.acc
        A, ovf = accumulate(P, E, I, F, self.acc_overflow)
        sig_r, exp_r = normalise(A, F, self.norm_bits)
        return sig_h, exp_h, P, E, A, ovf, sig_r, exp_r

    def step(self, h_codes, w_codes, t: int, tables: ScheduleTables | None = None, w_format=None):
        """One spike at one IP (numpy reference): new h codes and a :class:`StepRecord`.

        ``h_codes``: N codes of H; ``w_codes``: the weight row ``W[s, :]`` (N codes of the layer's
        weight format ``w_format``, default the unscaled ``weight_format``); ``t``: spike index
        into ``tables`` (default: ``self.tables(t + 1)``, eps0 = 1, 1/sqrt(t+1)).
        """
        h_codes = np.asarray(h_codes, dtype=np.int64)
        w_codes = np.asarray(w_codes, dtype=np.int64)
        if h_codes.ndim != 1 or h_codes.shape != w_codes.shape:
            raise ValueError(f"step: h_codes and w_codes must be 1-D of equal length, got {h_codes.shape} "
                             f"and {w_codes.shape}")
        if not 1 <= h_codes.shape[0] <= MAX_TERMS:
            raise ValueError(f"step: N {h_codes.shape[0]} out of range 1..{MAX_TERMS}")
        tables = tables if tables is not None else self.tables(int(t) + 1)
        if not 0 <= int(t) < tables.C.shape[0]:
            raise ValueError(f"step: t {t} out of range 0..{tables.C.shape[0] - 1}")
        if tables.c_bits != self.c_bits or tables.g_bits != self.g_bits:
            raise ValueError("step: tables were built with other c_bits/g_bits than this datapath")
        H = parse_format(self.h_format)
        sig_h, exp_h, P, E, A, ovf, sig_r, exp_r = self._dot_parts(h_codes, w_codes, w_format)
        sig_r, exp_r, A, ovf = int(sig_r), int(exp_r), int(A), int(ovf)
        if sig_r == 0 and self.update != "scaled":
            return h_codes.copy(), StepRecord(A, ovf, 0, 0, 0, 0, 0, 0, 0)
        Y = K = eK = 0
        if self.update == "scaled":
            if sig_r != 0:
                Y = int(reciprocal(sig_r, self.norm_bits, self.recip_bits, self.recip_method, self.recip_rounding,
                                   self.lut_bits, self.nr_iters))
                K, eK = coefficient(tables.G[t], Y, exp_r, self.g_bits, self.recip_bits, self.norm_bits,
                                    self.coef_bits)
                K, eK = int(K), int(eK)
            U = update_scaled_sums(sig_h, exp_h, P, E, K, eK, self.upd_frac_bits)
            V = scale_sums(U, tables.C[t], self.upd_frac_bits + int(value_bits_nb(H.nb)) + self.c_bits)
            codes, flags = H.encode_parts_flags(V, np.full(V.shape, -(self.upd_frac_bits + self.c_bits)),
                                                self.h_rounding, "saturate")
        elif self.update == "int":
            Y = int(reciprocal(sig_r, self.norm_bits, self.recip_bits, self.recip_method, self.recip_rounding,
                               self.lut_bits, self.nr_iters))
            K, eK = coefficient(tables.G[t], Y, exp_r, self.g_bits, self.recip_bits, self.norm_bits, self.coef_bits)
            K, eK = int(K), int(eK)
            S = update_int_sums(sig_h, exp_h, P, E, tables.C[t], self.c_bits, K, eK, self.upd_frac_bits)
            codes, flags = H.encode_parts_flags(S, np.full(S.shape, -self.upd_frac_bits), self.h_rounding,
                                                "saturate")
        else:
            hn = update_float32(parts_to_float32(sig_h, exp_h), parts_to_float32(P, E),
                                parts_to_float32(sig_r, exp_r), tables.eps32[t], tables.c32[t])
            s, e = float32_to_parts(hn)
            codes, flags = H.encode_parts_flags(s, e, self.h_rounding, "saturate")
        rec = StepRecord(A, ovf, sig_r, exp_r, Y, K, eK, int(np.sum(flags == 1)), int(np.sum(flags == 2)))
        return np.asarray(codes, dtype=np.int64), rec


# ---------------------------------------------------------------------- numba twins
@njit(cache=True)
def value_bits_nb(p):
    """Every value of the unsigned format ``p`` (a ``fmt.nb`` tuple) is below ``2**value_bits``."""
    if p[P_KIND] == KIND_FIXED:
        return p[P_WIDTH] - p[P_FRAC_BITS]
    return (np.int64(1) << p[P_EXP_BITS]) - p[P_BIAS]


@njit(cache=True)
def dot_nb(h_codes, w_codes, dp, h_p, w_p):
    """Numba approximate dot product: ``(a_hi, a_lo, acc_overflow, sig_r, exp_r)``."""
    F = dp[D_ACC_FRAC]
    width = dp[D_ACC_WIDTH]
    pb = dp[D_PROD_BITS]
    pr = dp[D_PROD_ROUND]
    top = np.int64(0)
    mid = np.int64(0)
    lo = np.int64(0)
    if pb == 0 and value_bits_nb(h_p) + value_bits_nb(w_p) + F <= 62:
        # every aligned term is < 2**62: one truncating right shift, one left shift (no top piece)
        for i in range(h_codes.shape[0]):
            sh, eh = decode_parts_nb(h_codes[i], h_p)
            sw, ew = decode_parts_nb(w_codes[i], w_p)
            s = eh + ew + F
            t = ((sh * sw) >> min(max(-s, 0), 63)) << max(s, 0)
            mid += t >> 32
            lo += t & MASK32
    elif pb == 0:  # exact products: the multiply inline
        for i in range(h_codes.shape[0]):
            sh, eh = decode_parts_nb(h_codes[i], h_p)
            sw, ew = decode_parts_nb(w_codes[i], w_p)
            t, m, l = term_pieces_nb(sh * sw, eh + ew, F)
            top += t
            mid += m
            lo += l
    else:
        for i in range(h_codes.shape[0]):
            sh, eh = decode_parts_nb(h_codes[i], h_p)
            sw, ew = decode_parts_nb(w_codes[i], w_p)
            P, E = product_nb(sh, eh, sw, ew, pb, pr)
            t, m, l = term_pieces_nb(P, E, F)
            top += t
            mid += m
            lo += l
    a_hi, a_lo, ovf = finish_nb(top, mid, lo, width, dp[D_ACC_OVF])
    sig_r, exp_r = normalise_nb(a_hi, a_lo, F, dp[D_NORM_BITS])
    return a_hi, a_lo, ovf, sig_r, exp_r


@njit(cache=True, inline="always")
def record_dot_nb(rec, a_hi, a_lo, ovf, sig_r, exp_r):
    """Start a step record (layout ``R_*``): the dot product's fields, the rest zero."""
    rec[R_A_HI] = a_hi
    rec[R_A_LO] = a_lo
    rec[R_ACC_OVF] = ovf
    rec[R_SIG_R] = sig_r
    rec[R_EXP_R] = exp_r
    for j in range(R_Y, REC_LEN):
        rec[j] = 0


@njit(cache=True)
def coefficient_record_nb(sig_r, exp_r, G, dp, lut, rec):
    """The spike's reciprocal Y of ``sig_r`` and coefficient ``(K, exp_K)`` from the schedule's G, also
    written to the step record ``rec``; ``sig_r != 0``."""
    R = dp[D_NORM_BITS]
    Qb = dp[D_RECIP_BITS]
    Y = reciprocal_nb(sig_r, R, Qb, dp[D_RECIP_METHOD], dp[D_RECIP_ROUND], dp[D_LUT_BITS], dp[D_ITERS], lut)
    K, eK = coefficient_nb(G, Y, exp_r, dp[D_G_BITS], Qb, R, dp[D_COEF_BITS])
    rec[R_Y] = Y
    rec[R_K] = K
    rec[R_EXP_K] = eK
    return K, eK


@njit(cache=True)
def step_nb(h_codes, w_codes, t, dp, h_p, w_p, C_tab, G_tab, eps32_tab, c32_tab, lut, h_out, rec):
    """Numba twin of :meth:`Datapath.step`: writes the new h codes into ``h_out`` (may be
    ``h_codes``) and the record (layout ``R_*``, :meth:`StepRecord.from_array`) into ``rec``.
    ``dp = datapath.nb``, ``h_p``/``w_p`` the formats' ``nb`` tuples, tables from
    :meth:`Datapath.tables`, ``lut = datapath.lut()``.  No allocation."""
    n = h_codes.shape[0]
    a_hi, a_lo, ovf, sig_r, exp_r = dot_nb(h_codes, w_codes, dp, h_p, w_p)
    record_dot_nb(rec, a_hi, a_lo, ovf, sig_r, exp_r)
    if sig_r == 0 and dp[D_UPDATE] != 2:
        for i in range(n):
            h_out[i] = h_codes[i]
        return
    pb = dp[D_PROD_BITS]
    pr = dp[D_PROD_ROUND]
    hr = dp[D_H_ROUND]
    n_ovf = np.int64(0)
    n_unf = np.int64(0)
    if dp[D_UPDATE] == 2:  # scaled (fixedpoint.scaled): T1 = h, times C_t, K = 0 when A == 0
        K = np.int64(0)
        eK = np.int64(0)
        if sig_r != 0:
            K, eK = coefficient_record_nb(sig_r, exp_r, G_tab[t], dp, lut, rec)
        C = C_tab[t]
        cb = dp[D_C_BITS]
        Fu = dp[D_UPD_FRAC]
        cap_bits = Fu + value_bits_nb(h_p) + cb
        for i in range(n):
            sh, eh = decode_parts_nb(h_codes[i], h_p)
            sw, ew = decode_parts_nb(w_codes[i], w_p)
            P, E = product_nb(sh, eh, sw, ew, pb, pr)
            V = scale_sum_nb(update_scaled_sum_nb(sh, eh, P, E, K, eK, Fu), C, cap_bits)
            code, flag = encode_parts_nb(V, -(Fu + cb), h_p, hr, 0)
            h_out[i] = code
            if flag == 1:
                n_ovf += 1
            elif flag == 2:
                n_unf += 1
    elif dp[D_UPDATE] == 0:
        K, eK = coefficient_record_nb(sig_r, exp_r, G_tab[t], dp, lut, rec)
        C = C_tab[t]
        cb = dp[D_C_BITS]
        Fu = dp[D_UPD_FRAC]
        for i in range(n):
            sh, eh = decode_parts_nb(h_codes[i], h_p)
            sw, ew = decode_parts_nb(w_codes[i], w_p)
            P, E = product_nb(sh, eh, sw, ew, pb, pr)
            S = update_int_sum_nb(sh, eh, P, E, C, cb, K, eK, Fu)
            code, flag = encode_parts_nb(S, -Fu, h_p, hr, 0)
            h_out[i] = code
            if flag == 1:
                n_ovf += 1
            elif flag == 2:
                n_unf += 1
    else:
        r32 = np.float32(math.ldexp(np.float64(sig_r), exp_r))
        e32 = eps32_tab[t]
        c32 = c32_tab[t]
        for i in range(n):
            sh, eh = decode_parts_nb(h_codes[i], h_p)
            sw, ew = decode_parts_nb(w_codes[i], w_p)
            P, E = product_nb(sh, eh, sw, ew, pb, pr)
            h32 = np.float32(math.ldexp(np.float64(sh), eh))
            p32 = np.float32(math.ldexp(np.float64(P), E))
            hn = update_float32_nb(h32, p32, r32, e32, c32)
            s, e = float32_to_parts_nb(hn)
            code, flag = encode_parts_nb(s, e, h_p, hr, 0)
            h_out[i] = code
            if flag == 1:
                n_ovf += 1
            elif flag == 2:
                n_unf += 1
    rec[R_H_OVF] = n_ovf
    rec[R_H_UNF] = n_unf


def step_nb_call(dp: Datapath, h_codes, w_codes, t: int, tables: ScheduleTables, w_format=None):
    """Convenience wrapper around :func:`step_nb` (allocates; for tests): (h_new, StepRecord)."""
    W = parse_format(w_format) if w_format is not None else parse_format(dp.weight_format)
    H = parse_format(dp.h_format)
    h = np.ascontiguousarray(h_codes, dtype=np.int64)
    out = np.empty_like(h)
    rec = np.zeros(REC_LEN, dtype=np.int64)
    step_nb(h, np.ascontiguousarray(w_codes, dtype=np.int64), np.int64(t), dp.nb, H.nb, W.nb, tables.C, tables.G,
            tables.eps32, tables.c32, dp.lut(), out, rec)
    return out, StepRecord.from_array(rec)


def _paper(x: int) -> Datapath:
    return Datapath(weight_format=f"e4m{x}", weight_rounding="trunc", weight_overflow="wrap", weight_scaling="none",
                    h_format="e5m11z", h_rounding="trunc", prod_bits=24, prod_rounding="trunc",
                    acc_format="uq9.55", acc_overflow="wrap", norm_bits=24, update="float32",
                    sampler_frac_bits=20)


def _int(wfmt: str) -> Datapath:
    return Datapath(weight_format=wfmt, weight_rounding="rne", weight_overflow="saturate", weight_scaling="max",
                    h_format="uq0.16", h_rounding="rne", prod_bits=None, acc_format="uq2.30",
                    acc_overflow="saturate", norm_bits=16, update="int", recip_method="div", recip_bits=16,
                    recip_rounding="rne", coef_bits=18, c_bits=16, g_bits=16, upd_frac_bits=24,
                    sampler_frac_bits=16)


def _scaled(wfmt: str, coef_bits: int = 18) -> Datapath:
    """The ``int`` preset's widths with the ``scaled`` update (:mod:`fixedpoint.scaled`)."""
    return Datapath(**dict(_int(wfmt).to_dict(), update="scaled", coef_bits=coef_bits))


PRESETS: dict[str, Datapath] = {
    "paper": _paper(1),
    "paper-e4m1": _paper(1),
    "paper-e4m0": _paper(0),
    "paper-e4m4": _paper(4),
    "int-e4m1": _int("e4m1"),
    "int-e4m0": _int("e4m0"),
    "int-uq0.8": _int("uq0.8"),
    "scaled-e4m1": _scaled("e4m1"),
    "scaled-e3m1": _scaled("e3m1"),
    "cheap-e4m1": _scaled("e4m1", coef_bits=4),
    "cheap-e3m1": _scaled("e3m1", coef_bits=4),
}
