"""``WeightDecoder``: a format's code -> ``(sig, exp)`` exactly as ``fmt.decode_parts`` (RTL).

Generated from a :mod:`fixedpoint.formats` object (``FloatFormat`` or ``FixedFormat``, unsigned
only: the datapath refuses signed formats).  The same unit decodes weight codes and h codes
(e.g. the paper's ``e5m11z`` h).

Ports (plain signals, purely combinational, :attr:`WeightDecoder.latency` = 0):

* ``code``: In, ``fmt.width`` bits.
* ``sig``: Out, unsigned, :func:`sig_bits` bits: float ``(hidden << M) | m`` with the hidden bit 1,
  except 0 for the zero code of ``z`` formats and for ``e = 0`` codes of ``d`` formats
  (subnormals); fixed: the code itself.
* ``exp``: Out, signed, :func:`exp_shape` bits: float ``e - bias - M`` (``d`` formats: ``1 - bias
  - M`` for ``e = 0``); fixed: the constant ``-F``.  The zero code of a ``z`` format keeps
  ``-bias - M`` (as ``decode_parts`` does).

Value ``= sig * 2**exp``.  Hardware: wires, one ``e == 0`` / ``code == 0`` compare and one
constant subtraction.  ``fault`` is for tests only (``"flip_sig0"``: invert bit 0 of ``sig``
when the two lowest code bits are both 1, or the only code bit for 1-bit formats).
"""
from __future__ import annotations

from types import SimpleNamespace

from amaranth import Cat, Const, Module, Mux, Shape, signed
from amaranth.lib.wiring import In, Out

from fixedpoint.formats import FloatFormat, parse_format
from rtl.checked import CheckedComponent

FAULTS = (None, "flip_sig0")


def unsigned_format(fmt, who: str = "WeightDecoder"):
    """``parse_format(fmt)``; ValueError for signed formats (the datapath is unsigned)."""
    try:
        f = parse_format(fmt)
    except ValueError as e:
        raise ValueError(f"{who}: fmt: {e}") from None
    if f.signed:
        raise ValueError(f"{who}: fmt {f} is signed; allowed: unsigned formats (uqI.F, eEmM...)")
    return f


def sig_bits(fmt) -> int:
    """Bits of the significand port: ``M + 1`` (float) or the code width (fixed)."""
    f = parse_format(fmt)
    return f.man_bits + 1 if isinstance(f, FloatFormat) else f.width


def exp_range(fmt) -> tuple[int, int]:
    """(smallest, largest) exponent that ``decode_parts`` returns for any code of ``fmt``."""
    f = parse_format(fmt)
    if not isinstance(f, FloatFormat):
        return -f.frac_bits, -f.frac_bits
    lo = (1 if f.subnormal else 0) - f.bias - f.man_bits
    hi = (1 << f.exp_bits) - 1 - f.bias - f.man_bits
    return lo, hi


def signed_bits(lo: int, hi: int) -> int:
    """Width of the narrowest two's complement signal holding every integer in [lo, hi]."""
    n = 1
    while not (-(1 << (n - 1)) <= lo and hi < (1 << (n - 1))):
        n += 1
    return n


def exp_field(fmt) -> tuple[int, int]:
    """``(lowest bit, width)`` of the code bits that alone decide the ``exp`` of a code of ``fmt``:
    the exponent field ``e`` of a float format (``bits M .. M+E-1``; the zero code of a ``z`` format and
    every ``e = 0`` code of a ``d`` format share the exponent of their field), none ``(0, 0)`` for a
    fixed-point format (its ``exp`` is the constant ``-F``)."""
    f = parse_format(fmt)
    return (f.man_bits, f.exp_bits) if isinstance(f, FloatFormat) else (0, 0)


def exp_shape(fmt) -> Shape:
    """Signed shape of the ``exp`` port (holds :func:`exp_range`)."""
    return signed(signed_bits(*exp_range(fmt)))


class WeightDecoder(CheckedComponent):
    """Combinational decoder of one code of an unsigned format (see module docstring)."""

    latency = 0

    @staticmethod
    def plan(fmt, fault: str | None = None) -> dict:
        """Checked arguments -> the attributes of a WeightDecoder (ValueError for bad ones)."""
        p = SimpleNamespace()
        p.fmt = unsigned_format(fmt)
        if fault not in FAULTS:
            raise ValueError(f"WeightDecoder: fault must be one of {FAULTS}, got {fault!r}")
        p.fault = fault
        p.sig_bits = sig_bits(p.fmt)
        p.exp_shape = exp_shape(p.fmt)
        return vars(p)

    def __init__(self, fmt, fault: str | None = None):
        super().__init__({
            "code": In(self.fmt.width),
            "sig": Out(self.sig_bits),
            "exp": Out(self.exp_shape),
        })

    def elaborate(self, platform):
        m = Module()
        f = self.fmt
        code = self.code
        if isinstance(f, FloatFormat):
            M, bias = f.man_bits, f.bias
            e = code[M:]
            mant = code[:M]
            if f.subnormal:
                hidden = e != 0
                exp = Mux(hidden, e, 1) - (bias + M)
            elif f.zero:
                hidden = code != 0
                exp = e - (bias + M)
            else:
                hidden = Const(1, 1)
                exp = e - (bias + M)
            sig = Cat(mant, hidden) if M else hidden
        else:
            sig = code
            exp = Const(-f.frac_bits, self.exp_shape)
        if self.fault == "flip_sig0":
            cond = code[0] & code[1] if f.width >= 2 else code[0]
            sig = Mux(cond, sig ^ 1, sig)
        m.d.comb += [self.sig.eq(sig), self.exp.eq(exp)]
        return m


def reference(fmt, codes):
    """The model's ``(sig, exp)`` lists (``fmt.decode_parts``) for integer codes."""
    s, e = parse_format(fmt).decode_parts(codes)
    return [int(v) for v in s], [int(v) for v in e]


__all__ = ["WeightDecoder", "sig_bits", "exp_range", "exp_field", "exp_shape", "signed_bits", "reference",
           "unsigned_format"]
