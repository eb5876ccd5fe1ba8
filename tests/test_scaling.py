"""Per-layer scaling: the fitted format holds max|values| without overflow and is the tightest one."""
import dataclasses
import json

import numpy as np
import pytest

from fixedpoint.formats import FixedFormat, FloatFormat, parse_format
from fixedpoint.scaling import describe_scaling, fit_format

FORMATS = ["e4m1", "e4m0", "e4m4", "e2m2z", "e3m2d", "se3m3z", "e5m11z", "uq0.8", "uq2.6", "sq1.6", "uq-3.8",
           "uq0.16"]


def tighter(f):
    """The same format with its range one octave lower."""
    if isinstance(f, FloatFormat):
        return dataclasses.replace(f, bias=f.bias + 1)
    return FixedFormat(f.signed, f.int_bits - 1, f.frac_bits + 1)


def samples(f):
    g = np.random.default_rng(7)
    top = f.max_value
    mags = list(np.exp2(g.uniform(-30, 30, 40))) + [top, np.nextafter(top, np.inf), np.nextafter(top, 0), 1.0,
                                                    0.75, 2.0 ** -20, 1e-9, 3e7]
    return mags


@pytest.mark.parametrize("text", FORMATS)
def test_fit_holds_max_without_overflow_and_is_tightest(text):
    f = parse_format(text)
    g = np.random.default_rng(1)
    for a in samples(f):
        vals = np.array([a, a * 0.3, a * 0.01]) * (np.where(g.random(3) < 0.5, -1, 1) if f.signed else 1)
        h = fit_format(f, vals)
        assert (h.kind, h.width, h.signed) == (f.kind, f.width, f.signed)
        if isinstance(f, FloatFormat):
            assert (h.exp_bits, h.man_bits, h.zero, h.subnormal) == (f.exp_bits, f.man_bits, f.zero, f.subnormal)
        assert h.max_value >= a
        assert tighter(h).max_value < a                 # as large as possible
        lead = np.frexp(a)[1] - 1                          # a in [2**lead, 2**(lead+1))
        top_lead = (1 << h.exp_bits) - 1 - h.bias if h.kind == "float" else h.width - h.signed - 1 - h.frac_bits
        assert top_lead in (lead, lead + 1)             # top octave, or one up when a > its octave's max
        for mode in ("trunc", "rne", "rna"):
            h.encode(vals, mode)                         # raises on overflow


def test_fit_examples():
    assert str(fit_format("e4m1", [0.5, 0.1])) == "e4m1b16"        # 0.5 in the top octave [0.5, 1)
    assert str(fit_format("e4m1", [1.7])) == "e4m1b14"             # 1.7 > 1.5 = max of [1,2): top octave [2,4)
    assert str(fit_format("e4m1", [1.5])) == "e4m1"
    assert str(fit_format("uq0.8", [3.0])) == "uq2.6"
    assert str(fit_format("uq0.8", [0.999])) == "uq1.7"
    assert str(fit_format("uq0.8", [0.01])) == "uq-6.14"
    assert str(fit_format("sq1.6", [-1.2, 0.4])) == "sq1.6"
    assert fit_format("e4m1", [3.0], policy="none") == parse_format("e4m1")
    assert fit_format("e4m1", [0.0, 0.0]) == parse_format("e4m1")


def test_fit_bad_input():
    with pytest.raises(ValueError, match="values: empty"):
        fit_format("e4m1", [])
    with pytest.raises(ValueError, match="values: contain NaN or inf"):
        fit_format("e4m1", [1.0, np.nan])
    with pytest.raises(ValueError, match="values: contain NaN or inf"):
        fit_format("uq0.8", [np.inf])
    with pytest.raises(ValueError, match="policy"):
        fit_format("e4m1", [1.0], policy="mean")
    with pytest.raises(ValueError, match="bias"):
        fit_format("e8m1", [1e-300])


@pytest.mark.parametrize("text", ["e4m1b13", "uq2.6", "se5m10b15d", "e5m11z"])
def test_describe_scaling_round_trip(text):
    f = parse_format(text)
    d = json.loads(json.dumps(describe_scaling(f)))
    assert parse_format(d["format"]) == f
    assert d["max_value"] == f.max_value and d["min_positive"] == f.min_positive
    if f.kind == "float":
        assert d["scale_log2"] == f.default_bias - f.bias
    else:
        assert d["scale_log2"] == f.int_bits
