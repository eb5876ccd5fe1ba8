"""Per-layer scaling: move a format's range (same width, same code layout) to fit the data.

``fit_format(fmt, values, policy='max')`` returns the format of the same kind and width whose
range is shifted by a power of two (float: the exponent ``bias``; fixed: ``int_bits`` and
``frac_bits`` shifted together) so that ``A = max(|values|)`` is representable without overflow
under every rounding mode and the range is as tight as possible: the largest bias (fixed: the
largest ``frac_bits``) with ``max_value >= A``.  That puts ``A`` in the top octave of the format
(``[2**(emax-bias), 2**(emax-bias+1))`` for floats, ``[2**(width-signed-1-F), 2**(width-signed-F))``
for fixed) unless ``A`` is above ``max_value`` within that octave, in which case it lies one octave
lower.  ``policy='none'`` returns ``fmt`` unchanged; all-zero values leave ``fmt`` unchanged too
(nothing to scale to).

``describe_scaling(fmt)`` is the JSON-ready record stored with a layer's weights; its
``format`` text alone rebuilds the format with :func:`fixedpoint.formats.parse_format`.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from fixedpoint.formats import FixedFormat, FloatFormat, Format, parse_format

SCALING_POLICIES = ("max", "none")


def fit_format(fmt, values, policy: str = "max") -> Format:
    """Format with the range moved so ``max(|values|)`` sits at the top; see the module docstring."""
    fmt = parse_format(fmt)
    if policy not in SCALING_POLICIES:
        raise ValueError(f"policy: unknown scaling policy {policy!r}; allowed: {', '.join(SCALING_POLICIES)}")
    if policy == "none":
        return fmt
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        raise ValueError("values: empty; need at least one finite value to fit a format")
    if not np.all(np.isfinite(v)):
        raise ValueError("values: contain NaN or inf; need finite values to fit a format")
    a = float(np.max(np.abs(v)))
    if a == 0.0:
        return fmt
    lead = math.frexp(a)[1] - 1                        # a in [2**lead, 2**(lead+1))
    if isinstance(fmt, FloatFormat):
        emax = (1 << fmt.exp_bits) - 1
        bias = emax - lead                             # top exponent code's octave holds a
        top = math.ldexp(2.0 - math.ldexp(1.0, -fmt.man_bits), emax - bias)
        if a > top:
            bias -= 1
        try:
            return dataclasses.replace(fmt, bias=bias)
        except ValueError as err:
            raise ValueError(f"values: max |value| {a!r} needs a bias out of range for {fmt.text!r} ({err})") from None
    mag_bits = fmt.width - int(fmt.signed)
    frac = mag_bits - 1 - lead                         # top bit of the integer code weighs 2**lead
    if a > math.ldexp(float((1 << mag_bits) - 1), -frac):
        frac -= 1
    try:
        return FixedFormat(fmt.signed, mag_bits - frac, frac)
    except ValueError as err:
        raise ValueError(f"values: max |value| {a!r} needs frac bits out of range for {fmt.text!r} ({err})") from None


def describe_scaling(fmt) -> dict:
    """JSON-ready description of a (scaled) format: text, kind, width, range and the scale fields.

    ``scale_log2``: float formats ``default_bias - bias`` (the range is the default one times
    ``2**scale_log2``); fixed formats ``int_bits`` (the range is ``uq0.W``'s times ``2**int_bits``).
    """
    fmt = parse_format(fmt)
    d = {
        "format": fmt.text,
        "kind": fmt.kind,
        "width": fmt.width,
        "signed": fmt.signed,
        "max_value": fmt.max_value,
        "min_positive": fmt.min_positive,
    }
    if isinstance(fmt, FloatFormat):
        d.update(exp_bits=fmt.exp_bits, man_bits=fmt.man_bits, bias=fmt.bias, default_bias=fmt.default_bias,
                 zero=fmt.zero, subnormal=fmt.subnormal, scale_log2=fmt.default_bias - fmt.bias)
    else:
        d.update(int_bits=fmt.int_bits, frac_bits=fmt.frac_bits, scale_log2=fmt.int_bits)
    return d
