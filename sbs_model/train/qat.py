"""Quantization-aware fine-tuning: the forward pass sees every SbS layer's weights passed
through a ``fixedpoint`` number format; the gradient is applied to the float64 master weights
unchanged (straight-through estimator).

Per layer the format's range is moved to the weights with ``fit_format(fmt, W, 'max')`` (the
largest weight sets the scale), then ``W_q = fmt.decode(fmt.encode(W, rounding, 'saturate'))``;
all rounding happens inside :mod:`fixedpoint.formats`.  Quantised columns no longer sum to
exactly 1, as in the hardware.
"""
from __future__ import annotations

import numpy as np

from fixedpoint.formats import parse_format
from fixedpoint.scaling import fit_format


def quantizer(fmt_text: str, rounding: str = "rne"):
    """-> function ``weights dict -> (quantised weights dict, {layer: fitted format text})``."""
    base = parse_format(fmt_text)

    def apply(weights: dict):
        out, fmts = {}, {}
        for k, w in weights.items():
            w = np.asarray(w, dtype=np.float64)
            f = fit_format(base, w, "max")
            out[k] = np.asarray(f.decode(f.encode(w, rounding, "saturate")), dtype=np.float64)
            fmts[k] = str(f)
        return out, fmts

    return apply
