"""``ApproxMultiplier``: ``P = sig_h * sig_w``, ``E = exp_h + exp_w`` as :func:`fixedpoint.product.product`.

Generated from the h and weight formats (``fixedpoint.formats`` objects or text) and the
``prod_bits`` / ``prod_rounding`` of a :class:`fixedpoint.datapath.Datapath`
(:meth:`ApproxMultiplier.from_datapath`).

Ports (plain signals, purely combinational, :attr:`ApproxMultiplier.latency` = 0):

* In: ``sig_h``, ``exp_h``, ``sig_w``, ``exp_w``: the outputs of a :class:`rtl.decoder.WeightDecoder`
  of each format (same widths: ``sig`` unsigned ``M + 1`` / width bits, ``exp`` signed).
* Out: ``P``: unsigned, :attr:`prod_width` bits (``sig_bits(h) + sig_bits(w)``, or ``prod_bits``
  when that is smaller); ``E``: signed, :attr:`exp_shape`.  Value ``P * 2**E``; ``E = 0`` when
  ``P = 0`` (as the model).

Multiply: a weight significand of one bit (``m = 0`` formats: the value is a power of two) is
special-cased as an AND gate (``P = sig_w ? sig_h : 0``), so the multiply is a shift of the
exponent only; wider significands use one Amaranth ``*`` (a ``sig_h x sig_w`` integer multiplier).

``prod_bits`` rounding (only generated when ``prod_bits`` is smaller than the exact product width;
the presets never need it): ``b = bit_length(P)`` (balanced leading-one tree), ``sh = max(b -
prod_bits, 0)``, ``P >> sh`` rounded by ``prod_rounding`` (``trunc``; ``rne``: guard & (sticky |
lsb); ``rna``: guard), a carry to ``2**prod_bits`` renormalised, ``E += sh + carry``.

``fault`` is for tests only (``"flip_p0"``: invert bit 0 of P when bits 1 and 2 of P are 1).
"""
from __future__ import annotations

from types import SimpleNamespace

from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib.wiring import In, Out

from fixedpoint.formats import parse_format
from fixedpoint.product import PROD_LIMIT_BITS, product
from fixedpoint.rounding import ROUNDING_MODES
from rtl.checked import CheckedComponent
from rtl.decoder import exp_range, exp_shape, sig_bits, signed_bits, unsigned_format
from rtl.normaliser import bit_length_expr

FAULTS = (None, "flip_p0")


class ApproxMultiplier(CheckedComponent):
    """Combinational approximate product of two decoded operands (see module docstring)."""

    latency = 0

    @staticmethod
    def plan(h_fmt, w_fmt, prod_bits: int | None = None, prod_rounding: str = "trunc",
                 fault: str | None = None) -> dict:
        """Checked arguments -> the attributes of a ApproxMultiplier (ValueError for bad ones)."""
        p = SimpleNamespace()
        p.h_fmt = unsigned_format(h_fmt, "ApproxMultiplier")
        p.w_fmt = unsigned_format(w_fmt, "ApproxMultiplier")
        if fault not in FAULTS:
            raise ValueError(f"ApproxMultiplier: fault must be one of {FAULTS}, got {fault!r}")
        if not isinstance(prod_rounding, str) or prod_rounding.lower() not in ROUNDING_MODES:
            raise ValueError(f"ApproxMultiplier: prod_rounding {prod_rounding!r}; allowed: "
                             f"{', '.join(ROUNDING_MODES)}")
        p.sig_h_bits, p.sig_w_bits = sig_bits(p.h_fmt), sig_bits(p.w_fmt)
        exact = p.sig_h_bits + p.sig_w_bits
        if exact > PROD_LIMIT_BITS:
            raise ValueError(f"ApproxMultiplier: significand widths {p.sig_h_bits} + {p.sig_w_bits} "
                             f"exceed {PROD_LIMIT_BITS} bits")
        if prod_bits == 0:
            prod_bits = None
        if prod_bits is not None and (not isinstance(prod_bits, int) or isinstance(prod_bits, bool)
                                      or not 1 <= prod_bits <= PROD_LIMIT_BITS):
            raise ValueError(f"ApproxMultiplier: prod_bits {prod_bits!r} out of range 1..{PROD_LIMIT_BITS} "
                             f"(or None = exact)")
        p.prod_bits = prod_bits
        p.prod_rounding = prod_rounding.lower()
        p.exact_width = exact
        p.rounds = prod_bits is not None and prod_bits < exact
        p.prod_width = prod_bits if p.rounds else exact
        hl, hh = exp_range(p.h_fmt)
        wl, wh = exp_range(p.w_fmt)
        grow = (exact - prod_bits + 1) if p.rounds else 0  # sh + carry
        #: (smallest, largest) E of a non-zero product
        p.exp_range = (hl + wl, hh + wh + grow)
        p.exp_shape = signed(signed_bits(min(p.exp_range[0], 0), max(p.exp_range[1], 0)))
        p.fault = fault
        return vars(p)

    def __init__(self, h_fmt, w_fmt, prod_bits: int | None = None, prod_rounding: str = "trunc",
                 fault: str | None = None):
        super().__init__({
            "sig_h": In(self.sig_h_bits),
            "exp_h": In(exp_shape(self.h_fmt)),
            "sig_w": In(self.sig_w_bits),
            "exp_w": In(exp_shape(self.w_fmt)),
            "P": Out(self.prod_width),
            "E": Out(self.exp_shape),
        })

    @classmethod
    def from_datapath(cls, dp, w_format=None, fault: str | None = None) -> "ApproxMultiplier":
        """The multiplier of ``dp`` for weight format ``w_format`` (default ``dp.weight_format``;
        pass the layer's scaled format from ``dp.weight_format_for``)."""
        return cls(dp.h_format, w_format if w_format is not None else dp.weight_format, dp.prod_bits,
                   dp.prod_rounding, fault=fault)

    def elaborate(self, platform):
        m = Module()
        if self.sig_w_bits == 1:
            raw = Mux(self.sig_w[0], self.sig_h, 0)
        elif self.sig_h_bits == 1:
            raw = Mux(self.sig_h[0], self.sig_w, 0)
        else:
            raw = self.sig_h * self.sig_w
        Pe = Signal(self.exact_width)
        m.d.comb += Pe.eq(raw)
        E = self.exp_h + self.exp_w
        if self.rounds:
            P, E = self._round(m, Pe, E)
        else:
            P = Pe
        if self.fault == "flip_p0":
            P = Mux(P[1] & P[2], P ^ 1, P) if len(P) >= 3 else P ^ 1
        m.d.comb += [self.P.eq(P), self.E.eq(Mux(P == 0, 0, E))]
        return m

    def _round(self, m, Pe, E):
        pb, n = self.prod_bits, self.exact_width
        bl = Signal(range(n + 1))
        m.d.comb += bl.eq(bit_length_expr(Pe))
        sh = Signal(range(n - pb + 1))
        m.d.comb += sh.eq(Mux(bl > pb, bl - pb, 0))
        Pe2 = Cat(Const(0, 1), Pe)               # 2*P: bit 0 of (Pe2 >> sh) is the guard bit
        shifted = Signal(n + 1)
        m.d.comb += shifted.eq(Pe2 >> sh)
        q = shifted[1:]
        guard = shifted[0]
        sticky = (shifted << sh)[:n + 1] != Pe2  # bits below the guard were dropped
        mode = self.prod_rounding
        if mode == "trunc":
            up = Const(0, 1)
        elif mode == "rne":
            up = guard & (sticky | q[0])
        else:  # rna: ties away from zero (P >= 0: up)
            up = guard
        qr = Signal(pb + 1)
        m.d.comb += qr.eq(q + up)
        carry = qr[pb]
        P = Mux(carry, qr[1:], qr[:pb])
        return P, E + sh + carry


def reference(h_fmt, w_fmt, h_codes, w_codes, prod_bits=None, prod_rounding="trunc"):
    """Model ``(P, E)`` lists (decode_parts of both formats, then ``fixedpoint.product.product``)."""
    sh, eh = parse_format(h_fmt).decode_parts(h_codes)
    sw, ew = parse_format(w_fmt).decode_parts(w_codes)
    P, E = product(sh, eh, sw, ew, prod_bits, prod_rounding)
    return [int(v) for v in P], [int(v) for v in E]


__all__ = ["ApproxMultiplier", "reference"]
