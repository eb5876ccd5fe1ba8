"""Number formats: exact encode/decode of fixed-point and custom floating-point codes.

Two immutable, hashable format classes, both parsed from and printed as short text:

* :class:`FixedFormat` ``uqI.F`` / ``sqI.F``: ``width = (1 if signed) + I + F`` bits (1..62);
  code ``k`` means ``k * 2**-F`` (signed: ``k`` is the two's complement of ``width`` bits).
  ``I`` may be negative and ``F`` may exceed the width or be negative (scaled formats:
  ``uq-4.8`` is 4 bits holding ``k * 2**-8``, k in 0..15).
* :class:`FloatFormat` ``[s]e<E>m<M>[b<BIAS>][z][d]``: code ``[sign][exponent e: E bits]
  [mantissa m: M bits]``, magnitude ``2**(e-bias) * (1 + m/2**M)``; ``z``: magnitude code 0 is 0.0;
  ``d``: e = 0 codes are subnormal ``2**(1-bias) * m/2**M`` (implies a zero code).  Default
  bias ``2**E - 1`` puts the top exponent code in the octave [1, 2).

Every value of every format is exactly a float64 (checked at construction; fixed formats of
more than 53 value bits hold codes that are not, and :meth:`decode` refuses those).

Exact arithmetic is done on integer *parts*: a value is ``sig * 2**exp`` with int64 ``sig``
(``|sig| < 2**62``).  :meth:`encode_parts` is the single encoder; :meth:`encode` decomposes
float64 exactly (53-bit significand) and calls it.  Every rounding step goes through
:func:`fixedpoint.rounding.rshift_round` (numpy) / ``rshift_round_nb`` (numba).

Rounding (codes are monotonic in magnitude; lo = largest representable magnitude <= |x|,
hi = the next one): ``trunc`` -> lo, ``rne`` -> nearer, ties to the even code, ``rna`` ->
nearer, ties to hi.  A magnitude overflows when its rounding on the grid with an unbounded
exponent (fixed: unbounded integer) exceeds ``max_value``; a nonzero magnitude below
``min_positive`` of a float format without a zero code underflows; a negative value (or -inf)
for an unsigned format and +-inf count as overflow.  Overflow policies: ``raise`` (ValueError),
``saturate`` (max code of the value's sign; code 0 for negatives in unsigned formats; the
smallest magnitude code for underflow), ``wrap`` (fixed: rounded integer modulo 2**width;
float: exponent field modulo 2**E, mantissa as rounded; an unsigned float drops the sign of a
negative value; +-inf saturates).  NaN always raises.

Numba: ``fmt.nb`` is an 8-tuple of int64 (see ``P_*`` below); ``decode_parts_nb``,
``encode_parts_nb``, ``encode_nb``, ``to_fixed_nb`` are scalar ``@njit`` functions for kernels,
``*_array_nb`` their parallel array versions.  Numba cannot raise, so encoders return a flag:
``FLAG_OK`` 0, ``FLAG_OVERFLOW`` 1, ``FLAG_UNDERFLOW`` 2 (``FLAG_NAN`` 3 from ``encode_nb``), and
take ``overflow_code`` 0 saturate / 1 wrap.
"""
from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass
from typing import Union

import numpy as np
from numba import njit, prange

from fixedpoint.rounding import RNA, RNE, TRUNC, bit_length, bit_length_nb, rounding_code, rshift_round, rshift_round_nb

# ---- overflow policies and flags -------------------------------------------------------------
SATURATE = 0
WRAP = 1
RAISE = 2
OVERFLOW_POLICIES = {"saturate": SATURATE, "wrap": WRAP, "raise": RAISE}

FLAG_OK = 0
FLAG_OVERFLOW = 1
FLAG_UNDERFLOW = 2
FLAG_NAN = 3

# ---- layout of fmt.nb (tuple of 8 int64) ----------------------------------------------------
P_KIND = 0       # KIND_FIXED or KIND_FLOAT
P_SIGNED = 1     # 0 / 1
P_WIDTH = 2      # total bits of a code
P_INT_BITS = 3   # fixed: I            float: E (exponent bits)
P_EXP_BITS = 3
P_FRAC_BITS = 4  # fixed: F            float: M (mantissa bits)
P_MAN_BITS = 4
P_BIAS = 5       # fixed: 0            float: exponent bias
P_ZERO = 6       # fixed: 1            float: 1 if a zero code exists (z or d)
P_SUBNORMAL = 7  # fixed: 0            float: 1 if e = 0 codes are subnormal (d)
KIND_FIXED = 0
KIND_FLOAT = 1

MAX_WIDTH = 62
EXP_CLIP = 1 << 20   # |exp| beyond this is out of range of every format: clipped, classification unchanged
_SIG_LIMIT = 1 << 62
_F64_MAX_EXP = 1023  # largest float64 binade
_F64_MIN_LSB = -1074  # exponent of the smallest float64 subnormal

_GRAMMAR = "uqI.F, sqI.F or [s]e<E>m<M>[b<BIAS>][z][d]"


def overflow_code(policy: str | int) -> int:
    """Overflow policy name (``raise``, ``saturate``, ``wrap``) or code -> code; ValueError otherwise."""
    if isinstance(policy, (int, np.integer)) and int(policy) in OVERFLOW_POLICIES.values():
        return int(policy)
    if isinstance(policy, str) and policy.lower() in OVERFLOW_POLICIES:
        return OVERFLOW_POLICIES[policy.lower()]
    raise ValueError(f"overflow: unknown policy {policy!r}; allowed: {', '.join(OVERFLOW_POLICIES)}")


def _int_field(fmt_text: str, name: str, v) -> int:
    try:
        return operator.index(v)
    except TypeError:
        raise ValueError(f"format {fmt_text!r}: {name} must be an integer, got {v!r}") from None


def _float_of_parts(sig: int, exp: int) -> str:
    try:
        return repr(math.ldexp(float(sig), int(exp))) if abs(exp) < 4000 else f"{sig}*2^{exp}"
    except OverflowError:
        return f"{sig}*2^{exp}"


class _FormatBase:
    """Methods shared by both format kinds; subclasses provide the fields and ``nb``."""

    kind: str

    # -- text ----------------------------------------------------------------------------------
    def __str__(self) -> str:
        return self.text

    @property
    def n_codes(self) -> int:
        """Number of codes, ``2**width``."""
        return 1 << self.width

    def all_codes(self) -> np.ndarray:
        """Every code 0..2**width-1 as int64."""
        return np.arange(self.n_codes, dtype=np.int64)

    def bits(self, code) -> str:
        """Binary string of ``width`` bits for one code (for divergence reports)."""
        c = self._check_codes(np.asarray(code, dtype=np.int64))
        return format(int(c), f"0{self.width}b")

    @property
    def max_value(self) -> float:
        """Largest representable value (float64, exact)."""
        s, e = self.decode_parts(self._max_code())
        return math.ldexp(float(s), int(e))

    @property
    def min_positive(self) -> float:
        """Smallest representable positive value (float64, exact)."""
        s, e = self.decode_parts(self._min_positive_code())
        return math.ldexp(float(s), int(e))

    @property
    def min_value(self) -> float:
        """Most negative representable value (0.0 or min_positive for unsigned formats)."""
        s, e = self.decode_parts(self._min_code())
        return math.ldexp(float(s), int(e))

    # -- decode --------------------------------------------------------------------------------
    def _integer_codes(self, codes) -> np.ndarray:
        """``codes`` as an array; ValueError unless its dtype is an integer (or bool) one."""
        codes = np.asarray(codes)
        if codes.dtype.kind not in "iub":
            raise ValueError(f"format {self.text!r}: codes must be integers, got dtype {codes.dtype}")
        return codes

    def _code_out_of_range(self, code: int) -> ValueError:
        return ValueError(f"format {self.text!r}: code {int(code)} out of range 0..{self.n_codes - 1}")

    def _check_codes(self, codes: np.ndarray) -> np.ndarray:
        codes = self._integer_codes(codes).astype(np.int64)
        bad = (codes < 0) | (codes >= self.n_codes)
        if np.any(bad):
            raise self._code_out_of_range(codes[bad].flat[0])
        return codes

    def decode(self, codes) -> np.ndarray:
        """Codes -> float64 values, exact.  ValueError for codes whose value needs more than 53
        significant bits (only fixed formats wider than 53 value bits have them; use
        :meth:`decode_parts`)."""
        sig, exp = self.decode_parts(codes)
        if self.kind == "fixed" and self.width - self.signed > 53:
            a = np.abs(sig)
            tz = bit_length((a & -a) >> 1)  # trailing zeros of nonzero a
            span = bit_length(a) - np.where(a > 0, tz, 0)
            if np.any(span > 53):
                bad = int(np.asarray(codes).flat[int(np.argmax(span.ravel() > 53))])
                raise ValueError(f"format {self.text!r}: code {bad} has more than 53 significant bits, "
                                 f"not exact in float64; use decode_parts")
        return np.ldexp(sig.astype(np.float64), exp.astype(np.int32))

    def decode_parts(self, codes):
        """Codes -> ``(sig, exp)`` int64 arrays with value ``== sig * 2**exp`` exactly."""
        return self._decode_parts_np(self._check_codes(codes))

    def to_fixed(self, codes, frac_bits: int, rounding="trunc") -> np.ndarray:
        """``value * 2**frac_bits`` rounded to int64 (e.g. integer window values); ValueError if a
        result needs more than 62 bits."""
        mode = rounding_code(rounding)
        frac_bits = _int_field(self.text, "frac_bits", frac_bits)
        sig, exp = self.decode_parts(codes)
        t = exp + frac_bits
        too_big = (sig != 0) & (t > 0) & (bit_length(np.abs(sig)) + np.clip(t, 0, 63) > 62)
        if np.any(too_big):
            raise self._to_fixed_too_big(frac_bits)
        return rshift_round(sig, -t, mode)

    def _to_fixed_too_big(self, frac_bits: int) -> ValueError:
        return ValueError(f"to_fixed: frac_bits {frac_bits} makes values of format {self.text!r} exceed 62 bits")

    def to_fixed_fast(self, codes, frac_bits: int, rounding="trunc") -> np.ndarray:
        """:meth:`to_fixed` on :func:`to_fixed_array_nb` (numba, parallel): the same integers and
        the same errors (tested), without numpy's temporaries (the quantized model's window
        source between layers)."""
        mode = rounding_code(rounding)
        frac_bits = _int_field(self.text, "frac_bits", frac_bits)
        codes = self._integer_codes(codes)
        flat = np.ascontiguousarray(codes, dtype=np.int64).reshape(-1)
        out = np.empty(flat.shape[0], dtype=np.int64)
        first, why = to_fixed_array_nb(flat, self.nb, np.int64(frac_bits), np.int64(mode), np.int64(self.n_codes), out)
        if why == TO_FIXED_BAD_CODE:
            raise self._code_out_of_range(flat[first])
        if why == TO_FIXED_TOO_BIG:
            raise self._to_fixed_too_big(frac_bits)
        return out.reshape(codes.shape)

    # -- encode --------------------------------------------------------------------------------
    def encode_parts(self, sig, exp, rounding="rne", overflow="raise") -> np.ndarray:
        """The exact value ``sig * 2**exp`` (int64, ``|sig| < 2**62``, any int64 exp) -> codes."""
        ovf = overflow_code(overflow)
        sig, exp = self._parts_in(sig, exp)
        codes, flags = self._encode_parts_np(sig, exp, rounding_code(rounding), SATURATE if ovf == RAISE else ovf)
        if ovf == RAISE and np.any(flags):
            i = int(np.argmax(flags.ravel() != 0))
            self._raise_range(_float_of_parts(int(sig.ravel()[i]), int(exp.ravel()[i])), int(flags.ravel()[i]))
        return codes

    def encode_parts_flags(self, sig, exp, rounding="rne", overflow="saturate"):
        """Like :meth:`encode_parts` with policy ``saturate``/``wrap``; returns ``(codes, flags)``
        (flags 0 ok / 1 overflow / 2 underflow), the numpy twin of ``encode_parts_array_nb``."""
        ovf = overflow_code(overflow)
        if ovf == RAISE:
            raise ValueError("overflow: encode_parts_flags needs 'saturate' or 'wrap'")
        sig, exp = self._parts_in(sig, exp)
        return self._encode_parts_np(sig, exp, rounding_code(rounding), ovf)

    def encode(self, x, rounding="rne", overflow="raise") -> np.ndarray:
        """float64 values -> codes (exact decomposition, then :meth:`encode_parts`)."""
        codes, flags = self._encode_float(x, rounding, overflow)
        return codes

    def encode_flags(self, x, rounding="rne", overflow="saturate"):
        """float64 values -> ``(codes, flags)`` for policies ``saturate``/``wrap`` (NaN raises)."""
        if overflow_code(overflow) == RAISE:
            raise ValueError("overflow: encode_flags needs 'saturate' or 'wrap'")
        return self._encode_float(x, rounding, overflow)

    def _encode_float(self, x, rounding, overflow):
        ovf = overflow_code(overflow)
        mode = rounding_code(rounding)
        x = np.asarray(x, dtype=np.float64)
        if np.any(np.isnan(x)):
            raise ValueError(f"format {self.text!r}: cannot encode NaN")
        sig, exp, inf = float_to_parts(x)
        codes, flags = self._encode_parts_np(sig, exp, mode, SATURATE if ovf == RAISE else ovf)
        if np.any(inf):                             # +-inf: saturate even under wrap
            sat, _ = self._encode_parts_np(sig, exp, mode, SATURATE)
            codes = np.where(inf, sat, codes)
        if ovf == RAISE and np.any(flags):
            i = int(np.argmax(flags.ravel() != 0))
            self._raise_range(repr(float(x.ravel()[i])), int(flags.ravel()[i]))
        return codes, flags

    def _parts_in(self, sig, exp):
        sig = np.asarray(sig)
        exp = np.asarray(exp)
        for name, v in (("sig", sig), ("exp", exp)):
            if v.dtype.kind not in "iub":
                raise ValueError(f"encode_parts: {name} must be integers, got dtype {v.dtype}")
        sig, exp = np.broadcast_arrays(sig.astype(np.int64), exp.astype(np.int64))
        if np.any(np.abs(sig) >= _SIG_LIMIT) or np.any(sig == np.iinfo(np.int64).min):
            raise ValueError("encode_parts: sig out of range -(2**62-1)..2**62-1")
        return sig, exp

    def _range_text(self) -> str:
        lo = self.min_value
        if self.kind == "float" and not self.zero:
            mag = f"{self.min_positive!r}..{self.max_value!r}"
            return f"+-({mag})" if self.signed else mag
        if self.kind == "float" and self.signed:
            return f"0 or +-({self.min_positive!r}..{self.max_value!r})"
        if self.kind == "float":
            return f"0 or {self.min_positive!r}..{self.max_value!r}"
        return f"{lo!r}..{self.max_value!r}"

    def _raise_range(self, value_text: str, flag: int):
        what = "underflow" if flag == FLAG_UNDERFLOW else "overflow"
        raise ValueError(f"format {self.text!r}: value {value_text} out of range {self._range_text()} ({what}); "
                         f"use overflow='saturate' or 'wrap' to allow it")

    def _decode_parts_np(self, codes):
        sig, exp = decode_parts_array_np(codes, self.nb)
        return sig, exp

    def _encode_parts_np(self, sig, exp, mode, ovf):
        return encode_parts_array_np(sig, exp, self.nb, mode, ovf)


# ================================================================================================
# Format classes
# ================================================================================================
@dataclass(frozen=True)
class FixedFormat(_FormatBase):
    """Fixed point ``uqI.F``/``sqI.F``: ``width = signed + int_bits + frac_bits`` (1..62) bits;
    code k -> ``k * 2**-frac_bits`` (signed: two's complement)."""

    signed: bool
    int_bits: int
    frac_bits: int

    kind = "fixed"

    def __post_init__(self):
        text = f"{'s' if self.signed else 'u'}q{self.int_bits}.{self.frac_bits}"
        if not isinstance(self.signed, (bool, np.bool_)) and self.signed not in (0, 1):
            raise ValueError(f"format {text!r}: signed must be a bool, got {self.signed!r}")
        object.__setattr__(self, "signed", bool(self.signed))
        object.__setattr__(self, "int_bits", _int_field(text, "int_bits", self.int_bits))
        object.__setattr__(self, "frac_bits", _int_field(text, "frac_bits", self.frac_bits))
        w = self.width
        if not 1 <= w <= MAX_WIDTH:
            raise ValueError(f"format {text!r}: width {w} out of range 1..{MAX_WIDTH}")
        lo, hi = (w - self.signed) - _F64_MAX_EXP - 1, -_F64_MIN_LSB
        if not lo <= self.frac_bits <= hi:
            raise ValueError(f"format {text!r}: frac bits {self.frac_bits} out of range {lo}..{hi} "
                             f"(values must be float64)")

    @property
    def text(self) -> str:
        """Canonical text, e.g. ``uq0.16``, ``sq1.14``, ``uq-4.8``."""
        return f"{'s' if self.signed else 'u'}q{self.int_bits}.{self.frac_bits}"

    @property
    def width(self) -> int:
        return int(self.signed) + self.int_bits + self.frac_bits

    @property
    def nb(self) -> tuple:
        """``(KIND_FIXED, signed, width, int_bits, frac_bits, 0, 1, 0)`` as int64 (see ``P_*``)."""
        return tuple(np.int64(v) for v in (KIND_FIXED, int(self.signed), self.width, self.int_bits,
                                           self.frac_bits, 0, 1, 0))

    def _max_code(self):
        return (1 << (self.width - self.signed)) - 1

    def _min_positive_code(self):
        return 1

    def _min_code(self):
        return (1 << (self.width - 1)) if self.signed else 0


@dataclass(frozen=True)
class FloatFormat(_FormatBase):
    """Custom float ``[s]e<E>m<M>[b<BIAS>][z][d]``; see the module docstring for values."""

    exp_bits: int
    man_bits: int
    bias: Union[int, None] = None
    signed: bool = False
    zero: bool = False
    subnormal: bool = False

    kind = "float"

    def __post_init__(self):
        raw = f"{'s' if self.signed else ''}e{self.exp_bits}m{self.man_bits}" + (
            "" if self.bias is None else f"b{self.bias}")
        E = _int_field(raw, "exponent bits", self.exp_bits)
        M = _int_field(raw, "mantissa bits", self.man_bits)
        if not 1 <= E <= 8:
            raise ValueError(f"format {raw!r}: exponent bits {E} out of range 1..8")
        if not 0 <= M <= 23:
            raise ValueError(f"format {raw!r}: mantissa bits {M} out of range 0..23")
        bias = (1 << E) - 1 if self.bias is None else _int_field(raw, "bias", self.bias)
        for name in ("signed", "zero", "subnormal"):
            v = getattr(self, name)
            if not isinstance(v, (bool, np.bool_)) and v not in (0, 1):
                raise ValueError(f"format {raw!r}: {name} must be a bool, got {v!r}")
            object.__setattr__(self, name, bool(v))
        object.__setattr__(self, "exp_bits", E)
        object.__setattr__(self, "man_bits", M)
        object.__setattr__(self, "bias", bias)
        if self.subnormal:
            object.__setattr__(self, "zero", True)
        lo = (1 << E) - 1 - _F64_MAX_EXP
        hi = -_F64_MIN_LSB - M + (1 if self.subnormal else 0)
        if not lo <= bias <= hi:
            raise ValueError(f"format {raw!r}: bias {bias} out of range {lo}..{hi} (values must be float64)")

    @property
    def text(self) -> str:
        """Canonical text: bias omitted when default, ``d`` alone when subnormal."""
        t = f"{'s' if self.signed else ''}e{self.exp_bits}m{self.man_bits}"
        if self.bias != (1 << self.exp_bits) - 1:
            t += f"b{self.bias}"
        return t + ("d" if self.subnormal else "z" if self.zero else "")

    @property
    def width(self) -> int:
        return int(self.signed) + self.exp_bits + self.man_bits

    @property
    def default_bias(self) -> int:
        return (1 << self.exp_bits) - 1

    @property
    def nb(self) -> tuple:
        """``(KIND_FLOAT, signed, width, E, M, bias, zero, subnormal)`` as int64 (see ``P_*``)."""
        return tuple(np.int64(v) for v in (KIND_FLOAT, int(self.signed), self.width, self.exp_bits,
                                           self.man_bits, self.bias, int(self.zero), int(self.subnormal)))

    def _max_code(self):
        return (1 << (self.exp_bits + self.man_bits)) - 1

    def _min_positive_code(self):
        return 1 if self.zero else 0

    def _min_code(self):
        if self.signed:
            return (1 << (self.width)) - 1
        return 0


Format = Union[FixedFormat, FloatFormat]

_FIXED_RE = re.compile(r"^([us])q(-?\d+)\.(-?\d+)$")
_FLOAT_RE = re.compile(r"^(s?)e(\d+)m(\d+)(?:b(-?\d+))?(z?)(d?)$")


def parse_format(spec) -> Format:
    """Text (``uq0.16``, ``sq1.14``, ``e4m1``, ``e5m11b31z``, ``se3m2d`` ...) or a format -> format."""
    if isinstance(spec, (FixedFormat, FloatFormat)):
        return spec
    if not isinstance(spec, str):
        raise ValueError(f"format: expected text ({_GRAMMAR}) or a format object, got {type(spec).__name__}")
    t = spec.strip().lower()
    m = _FIXED_RE.match(t)
    if m:
        return FixedFormat(m.group(1) == "s", int(m.group(2)), int(m.group(3)))
    m = _FLOAT_RE.match(t)
    if m:
        return FloatFormat(int(m.group(2)), int(m.group(3)), None if m.group(4) is None else int(m.group(4)),
                           signed=m.group(1) == "s", zero=m.group(5) == "z", subnormal=m.group(6) == "d")
    raise ValueError(f"format {spec!r}: not a format; expected {_GRAMMAR}")


# ================================================================================================
# float64 -> parts
# ================================================================================================
def float_to_parts(x):
    """float64 array -> ``(sig, exp, is_inf)``: x == sig * 2**exp exactly (53-bit sig); +-inf
    become ``(+-1, EXP_CLIP)`` (an overflow for every format) with ``is_inf`` set."""
    x = np.asarray(x, dtype=np.float64)
    inf = np.isinf(x)
    m, e = np.frexp(np.where(inf, 0.0, x))
    sig = np.ldexp(m, 53).astype(np.int64)
    exp = e.astype(np.int64) - 53
    sig = np.where(inf, np.sign(x).astype(np.int64), sig)
    exp = np.where(inf, EXP_CLIP, exp)
    return sig, exp, inf


# ================================================================================================
# numpy reference: decode / encode on parts
# ================================================================================================
def decode_parts_array_np(codes, p):
    """numpy twin of :func:`decode_parts_nb` on an int64 array of valid codes."""
    codes = np.asarray(codes, dtype=np.int64)
    signed, w, B3, B4 = int(p[P_SIGNED]), int(p[P_WIDTH]), int(p[P_INT_BITS]), int(p[P_FRAC_BITS])
    if int(p[P_KIND]) == KIND_FIXED:
        k = codes
        if signed:
            k = np.where(codes >= (1 << (w - 1)), codes - (1 << w), codes)
        return k.astype(np.int64), np.full(codes.shape, -B4, dtype=np.int64)
    E, M, bias, zero, sub = B3, B4, int(p[P_BIAS]), int(p[P_ZERO]), int(p[P_SUBNORMAL])
    mag = codes & ((1 << (E + M)) - 1)
    neg = (codes >> (E + M)) & 1 if signed else np.zeros_like(codes)
    e = mag >> M
    m = mag & ((1 << M) - 1)
    sig = (1 << M) + m
    exp = e - bias - M
    if sub:
        s0 = e == 0
        sig = np.where(s0, m, sig)
        exp = np.where(s0, 1 - bias - M, exp)
    elif zero:
        sig = np.where(mag == 0, 0, sig)
    sig = np.where(neg == 1, -sig, sig)
    return sig.astype(np.int64), exp.astype(np.int64)


def encode_parts_array_np(sig, exp, p, mode, ovf):
    """numpy twin of :func:`encode_parts_nb`: int64 arrays -> ``(codes, flags)``; ``ovf`` 0 saturate / 1 wrap."""
    sig = np.asarray(sig, dtype=np.int64)
    exp = np.clip(np.asarray(exp, dtype=np.int64), -EXP_CLIP, EXP_CLIP)
    sig, exp = np.broadcast_arrays(sig, exp)
    neg = sig < 0
    a = np.abs(sig)
    if int(p[P_KIND]) == KIND_FIXED:
        return _encode_fixed_np(a, neg, exp, p, mode, ovf)
    return _encode_float_np(a, neg, exp, p, mode, ovf)


def _encode_fixed_np(a, neg, exp, p, mode, ovf):
    signed, w, F = int(p[P_SIGNED]), int(p[P_WIDTH]), int(p[P_FRAC_BITS])
    mask = (1 << w) - 1
    kpos = (1 << (w - signed)) - 1
    kneg = (1 << (w - 1)) if signed else 0
    t = exp + F                                   # k = round(a * 2**t)
    big = (a > 0) & (t > 0) & (bit_length(a) + np.clip(t, 0, 63) > 62)
    k = rshift_round(np.where(big, 0, a), np.where(big, 0, -t), mode)
    over = big | np.where(neg, k > kneg, k > kpos)
    if not signed:
        over |= neg
    code = np.where(neg, (-k) & mask, k)
    if ovf == SATURATE:
        sat = np.where(neg, (-kneg) & mask, kpos)
    else:
        tc = np.clip(t, 0, w)
        km_big = np.where(tc >= w, 0, (a & ((np.int64(1) << (w - tc)) - 1)) << tc)
        km = np.where(big, km_big, k & mask)
        sat = np.where(neg, (-km) & mask, km)
    code = np.where(over, sat, code)
    return code.astype(np.int64), np.where(over, FLAG_OVERFLOW, FLAG_OK).astype(np.int64)


def _encode_float_np(a, neg, exp, p, mode, ovf):
    signed, E, M, bias = int(p[P_SIGNED]), int(p[P_EXP_BITS]), int(p[P_MAN_BITS]), int(p[P_BIAS])
    zero, sub = int(p[P_ZERO]), int(p[P_SUBNORMAL])
    emax = (1 << E) - 1
    maxmag = (1 << (E + M)) - 1
    nz = a > 0
    n = bit_length(a)
    e0 = n - 1 + exp + bias                       # exponent field of the leading bit
    # normal rounding on the unbounded-exponent grid: q in [2**M, 2**(M+1)]
    s = n - 1 - M
    q = rshift_round(a, s, mode)
    if M == 0 and mode == RNE:                   # ties between 2**L and 2**(L+1): to the even exponent code
        down = rshift_round(np.maximum(a - 1, 0), s, RNA)      # round half down
        up = rshift_round(a, s, RNA)
        q = np.where(s > 0, np.where((e0 & 1) == 0, down, up), q)
    carry = q >> (M + 1)
    e = e0 + carry
    mant = np.where(carry == 1, 0, q - (1 << M))
    flag = np.where(e > emax, FLAG_OVERFLOW, np.where(e0 < 0, FLAG_UNDERFLOW, FLAG_OK))  # below 2**-bias
    if ovf == SATURATE:
        mag = np.where(flag == FLAG_OVERFLOW, maxmag, np.where(flag == FLAG_UNDERFLOW, 0, (e << M) | mant))
    else:
        mag = ((e & emax) << M) | mant
    if sub:                                      # subnormal region: uniform grid 2**(1-bias-M)
        insub = e0 < 1
        msub = rshift_round(a, np.clip(1 - bias - M - exp, -64, 64), mode)
        mag = np.where(insub, msub, mag)
        flag = np.where(insub, FLAG_OK, flag)
    elif zero:                                   # gap (0, min_positive): 0 or code 1
        mp_sig, mp_exp = ((1 << M) + 1, -bias - M) if M > 0 else (1, 1 - bias)
        # v < min_positive; min_positive <= 2**(1-bias), so only e0 < 1 can be below (shift then fits)
        below = (e0 < 1) & (rshift_round(a, np.clip(mp_exp - exp, -64, 64), TRUNC) < mp_sig)
        s2 = mp_exp - 1 - exp                    # grid of min_positive / 2 (= mp_sig units)
        c2 = rshift_round(a, np.clip(s2, -64, 64), TRUNC)
        exact = np.where(s2 > 0, (c2 << np.clip(s2, 0, 62)) == a, True)
        above = (c2 > mp_sig) | ((c2 == mp_sig) & ~exact)
        tie = (c2 == mp_sig) & exact
        if mode == TRUNC:
            gap = np.zeros(a.shape, dtype=np.int64)
        elif mode == RNE:
            gap = above.astype(np.int64)
        else:
            gap = (above | tie).astype(np.int64)
        mag = np.where(below, gap, mag)
        flag = np.where(below, FLAG_OK, flag)
    if zero:
        mag = np.where(nz, mag, 0)
        flag = np.where(nz, flag, FLAG_OK)
    else:
        mag = np.where(nz, mag, 0)
        flag = np.where(nz, flag, FLAG_UNDERFLOW)
    if signed:
        code = np.where(neg & ((mag != 0) | (zero == 0)), mag | (1 << (E + M)), mag)
    else:
        code = np.where(neg & (ovf == SATURATE), 0, mag)
        flag = np.where(neg, FLAG_OVERFLOW, flag)
    return code.astype(np.int64), flag.astype(np.int64)


# ================================================================================================
# numba scalar kernels (same rules, branch by branch)
# ================================================================================================
@njit(cache=True)
def decode_parts_nb(code, p):
    """One valid code -> ``(sig, exp)`` int64 with value ``sig * 2**exp``; ``p = fmt.nb``."""
    code = np.int64(code)
    w = p[P_WIDTH]
    if p[P_KIND] == KIND_FIXED:
        k = code
        if p[P_SIGNED] == 1 and code >= (np.int64(1) << (w - 1)):
            k = code - (np.int64(1) << w)
        return k, -p[P_FRAC_BITS]
    E = p[P_EXP_BITS]
    M = p[P_MAN_BITS]
    bias = p[P_BIAS]
    mag = code & ((np.int64(1) << (E + M)) - 1)
    neg = p[P_SIGNED] == 1 and ((code >> (E + M)) & 1) == 1
    e = mag >> M
    m = mag & ((np.int64(1) << M) - 1)
    sig = (np.int64(1) << M) + m
    ex = e - bias - M
    if p[P_SUBNORMAL] == 1 and e == 0:
        sig = m
        ex = 1 - bias - M
    elif p[P_ZERO] == 1 and mag == 0:
        sig = np.int64(0)
    if neg:
        sig = -sig
    return sig, ex


@njit(cache=True)
def _encode_fixed_nb(a, neg, exp, p, mode, ovf):
    signed = p[P_SIGNED]
    w = p[P_WIDTH]
    one = np.int64(1)
    mask = (one << w) - 1
    kpos = (one << (w - signed)) - 1
    kneg = (one << (w - 1)) if signed == 1 else np.int64(0)
    t = exp + p[P_FRAC_BITS]
    big = False
    k = np.int64(0)
    if a > 0:
        if t > 0 and bit_length_nb(a) + t > 62:
            big = True
        else:
            k = rshift_round_nb(a, -t, mode)
    over = big or (k > kneg if neg else k > kpos) or (neg and signed == 0)
    if not over:
        return ((-k) & mask if neg else k), np.int64(FLAG_OK)
    if ovf == SATURATE:
        return ((-kneg) & mask if neg else kpos), np.int64(FLAG_OVERFLOW)
    if big:
        km = np.int64(0) if t >= w else (a & ((one << (w - t)) - 1)) << t
    else:
        km = k & mask
    return ((-km) & mask if neg else km), np.int64(FLAG_OVERFLOW)


@njit(cache=True)
def _encode_float_mag_nb(a, exp, p, mode, ovf):
    """Magnitude code and flag of a > 0."""
    E = p[P_EXP_BITS]
    M = p[P_MAN_BITS]
    bias = p[P_BIAS]
    one = np.int64(1)
    emax = (one << E) - 1
    n = bit_length_nb(a)
    e0 = n - 1 + exp + bias
    if p[P_SUBNORMAL] == 1 and e0 < 1:
        return rshift_round_nb(a, 1 - bias - M - exp, mode), np.int64(FLAG_OK)
    if p[P_ZERO] == 1 and p[P_SUBNORMAL] == 0:
        if M > 0:
            mp_sig = (one << M) + 1
            mp_exp = -bias - M
        else:
            mp_sig = one
            mp_exp = 1 - bias
        if e0 < 1 and rshift_round_nb(a, mp_exp - exp, TRUNC) < mp_sig:
            s2 = mp_exp - 1 - exp
            c2 = rshift_round_nb(a, s2, TRUNC)
            exact = True
            if s2 > 0 and c2 == mp_sig:
                exact = (c2 << s2) == a
            above = c2 > mp_sig or (c2 == mp_sig and not exact)
            tie = c2 == mp_sig and exact
            up = False
            if mode == RNE:
                up = above
            elif mode == RNA:
                up = above or tie
            return (one if up else np.int64(0)), np.int64(FLAG_OK)
    s = n - 1 - M
    if M == 0 and mode == RNE and s > 0:
        if (e0 & 1) == 0:
            q = rshift_round_nb(a - 1, s, RNA)
        else:
            q = rshift_round_nb(a, s, RNA)
    else:
        q = rshift_round_nb(a, s, mode)
    e = e0
    mant = q - (one << M)
    if q >> (M + 1) == 1:
        e += 1
        mant = np.int64(0)
    flag = FLAG_OK
    if e > emax:
        flag = FLAG_OVERFLOW
    elif e0 < 0:                     # below min_positive = 2**-bias, even if it rounds up to it
        flag = FLAG_UNDERFLOW
    if flag != FLAG_OK and ovf == SATURATE:
        if flag == FLAG_OVERFLOW:
            return (one << (E + M)) - 1, np.int64(flag)
        return np.int64(0), np.int64(flag)
    return ((e & emax) << M) | mant, np.int64(flag)


@njit(cache=True)
def _encode_float_nb(a, neg, exp, p, mode, ovf):
    E = p[P_EXP_BITS]
    M = p[P_MAN_BITS]
    if a == 0:
        mag = np.int64(0)
        flag = np.int64(FLAG_OK) if p[P_ZERO] == 1 else np.int64(FLAG_UNDERFLOW)
    else:
        mag, flag = _encode_float_mag_nb(a, exp, p, mode, ovf)
    if p[P_SIGNED] == 1:
        if neg and (mag != 0 or p[P_ZERO] == 0):
            mag = mag | (np.int64(1) << (E + M))
        return mag, flag
    if neg:
        return (np.int64(0) if ovf == SATURATE else mag), np.int64(FLAG_OVERFLOW)
    return mag, flag


@njit(cache=True)
def encode_parts_nb(sig, exp, p, rounding_code, overflow_code):
    """Exact value ``sig * 2**exp`` -> ``(code, flag)``; rounding 0 trunc / 1 rne / 2 rna,
    overflow 0 saturate / 1 wrap; flag 0 ok / 1 overflow / 2 underflow.  ``|sig| < 2**62``."""
    sig = np.int64(sig)
    exp = min(max(np.int64(exp), -EXP_CLIP), EXP_CLIP)
    neg = sig < 0
    a = -sig if neg else sig
    if p[P_KIND] == KIND_FIXED:
        return _encode_fixed_nb(a, neg, exp, p, rounding_code, overflow_code)
    return _encode_float_nb(a, neg, exp, p, rounding_code, overflow_code)


@njit(cache=True)
def float_to_parts_nb(x):
    """Finite float64 -> ``(sig, exp)`` with x == sig * 2**exp (53-bit sig)."""
    m, e = math.frexp(x)
    return np.int64(math.ldexp(m, 53)), np.int64(e - 53)


@njit(cache=True)
def encode_nb(x, p, rounding_code, overflow_code):
    """float64 -> ``(code, flag)``; +-inf saturates with flag 1 (also under wrap); NaN -> (0, 3)."""
    if math.isnan(x):
        return np.int64(0), np.int64(FLAG_NAN)
    if math.isinf(x):
        sig = np.int64(1) if x > 0 else np.int64(-1)
        c, f = encode_parts_nb(sig, EXP_CLIP, p, rounding_code, SATURATE)
        return c, f
    sig, exp = float_to_parts_nb(x)
    return encode_parts_nb(sig, exp, p, rounding_code, overflow_code)


@njit(cache=True)
def to_fixed_nb(code, p, frac_bits, rounding_code):
    """``value * 2**frac_bits`` rounded (caller guarantees it fits in 62 bits)."""
    sig, exp = decode_parts_nb(code, p)
    return rshift_round_nb(sig, -(exp + frac_bits), rounding_code)


TO_FIXED_OK, TO_FIXED_BAD_CODE, TO_FIXED_TOO_BIG = 0, 1, 2


@njit(cache=True, parallel=True)
def to_fixed_array_nb(codes, p, frac_bits, rounding_code, n_codes, out):
    """Parallel :func:`to_fixed_nb` over 1-D int64 ``codes`` into ``out`` with the checks of
    :meth:`Format.to_fixed`: returns ``(index, why)``, ``why`` one of ``TO_FIXED_OK`` (index -1),
    ``TO_FIXED_BAD_CODE`` (the first code outside ``0..n_codes - 1``) or ``TO_FIXED_TOO_BIG`` (no
    bad code, and the first result that would need more than 62 bits); ``out`` is complete only
    for ``TO_FIXED_OK``."""
    n = codes.shape[0]
    why = np.zeros(n, dtype=np.int8)
    for i in prange(n):
        c = codes[i]
        if c < 0 or c >= n_codes:
            why[i] = TO_FIXED_BAD_CODE
            continue
        sig, exp = decode_parts_nb(c, p)
        t = exp + frac_bits
        if sig != 0 and t > 0 and bit_length_nb(abs(sig)) + min(t, np.int64(63)) > 62:
            why[i] = TO_FIXED_TOO_BIG
            continue
        out[i] = rshift_round_nb(sig, -t, rounding_code)
    for kind in (TO_FIXED_BAD_CODE, TO_FIXED_TOO_BIG):
        for i in range(n):
            if why[i] == kind:
                return np.int64(i), np.int64(kind)
    return np.int64(-1), np.int64(TO_FIXED_OK)


@njit(cache=True)
def decode_nb(code, p):
    """One code -> float64 (exact for formats of at most 53 value bits)."""
    sig, exp = decode_parts_nb(code, p)
    return math.ldexp(np.float64(sig), exp)


@njit(cache=True, parallel=True)
def decode_parts_array_nb(codes, p):
    """Parallel :func:`decode_parts_nb` over a 1-D int64 array -> (sig, exp)."""
    n = codes.shape[0]
    sig = np.empty(n, dtype=np.int64)
    exp = np.empty(n, dtype=np.int64)
    for i in prange(n):
        sig[i], exp[i] = decode_parts_nb(codes[i], p)
    return sig, exp


@njit(cache=True, parallel=True)
def decode_array_nb(codes, p):
    """Parallel :func:`decode_nb` over a 1-D int64 array -> float64."""
    n = codes.shape[0]
    out = np.empty(n, dtype=np.float64)
    for i in prange(n):
        out[i] = decode_nb(codes[i], p)
    return out


@njit(cache=True, parallel=True)
def encode_parts_array_nb(sig, exp, p, rounding_code, overflow_code):
    """Parallel :func:`encode_parts_nb` over 1-D int64 arrays -> (codes, flags)."""
    n = sig.shape[0]
    codes = np.empty(n, dtype=np.int64)
    flags = np.empty(n, dtype=np.int64)
    for i in prange(n):
        codes[i], flags[i] = encode_parts_nb(sig[i], exp[i], p, rounding_code, overflow_code)
    return codes, flags


@njit(cache=True, parallel=True)
def encode_array_nb(x, p, rounding_code, overflow_code):
    """Parallel :func:`encode_nb` over a 1-D float64 array -> (codes, flags)."""
    n = x.shape[0]
    codes = np.empty(n, dtype=np.int64)
    flags = np.empty(n, dtype=np.int64)
    for i in prange(n):
        codes[i], flags[i] = encode_nb(x[i], p, rounding_code, overflow_code)
    return codes, flags
