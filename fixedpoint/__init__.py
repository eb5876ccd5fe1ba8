"""Exact number formats and datapath arithmetic on integers (numpy reference + numba kernels).

Formats (``fixedpoint.formats``): ``parse_format("e4m1")``, ``FixedFormat``, ``FloatFormat``;
per-layer scaling (``fixedpoint.scaling``): ``fit_format``, ``describe_scaling``.
"""
from fixedpoint.formats import (
    FLAG_NAN, FLAG_OK, FLAG_OVERFLOW, FLAG_UNDERFLOW, OVERFLOW_POLICIES, RAISE, SATURATE, WRAP, FixedFormat,
    FloatFormat, Format, decode_array_nb, decode_nb, decode_parts_array_nb, decode_parts_nb, encode_array_nb,
    encode_nb, encode_parts_array_nb, encode_parts_nb, float_to_parts, overflow_code, parse_format, to_fixed_nb,
)
from fixedpoint.rounding import RNA, RNE, TRUNC, rounding_code, rshift_round, rshift_round_nb
from fixedpoint.scaling import describe_scaling, fit_format

__all__ = [
    "FLAG_NAN", "FLAG_OK", "FLAG_OVERFLOW", "FLAG_UNDERFLOW", "OVERFLOW_POLICIES", "RAISE", "SATURATE", "WRAP",
    "FixedFormat", "FloatFormat", "Format", "decode_array_nb", "decode_nb", "decode_parts_array_nb",
    "decode_parts_nb", "encode_array_nb", "encode_nb", "encode_parts_array_nb", "encode_parts_nb",
    "float_to_parts", "overflow_code", "parse_format", "to_fixed_nb",
    "RNA", "RNE", "TRUNC", "rounding_code", "rshift_round", "rshift_round_nb",
    "describe_scaling", "fit_format",
]
