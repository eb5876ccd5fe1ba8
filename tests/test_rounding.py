"""The shared rounding primitive against an exact rational oracle."""
from fractions import Fraction

import numpy as np
import pytest

from fixedpoint.rounding import RNA, RNE, TRUNC, bit_length, bit_length_nb, rounding_code, rshift_round, rshift_round_nb


def oracle(v, s, mode):
    x = Fraction(v, 1) / Fraction(2) ** s if s >= 0 else Fraction(v * 2 ** (-s))
    sign = -1 if x < 0 else 1
    a = abs(x)
    q = a.numerator // a.denominator
    rem = a - q
    if mode == TRUNC:
        r = q
    elif mode == RNE:
        r = q + (1 if rem > Fraction(1, 2) or (rem == Fraction(1, 2) and q % 2 == 1) else 0)
    else:
        r = q + (1 if rem >= Fraction(1, 2) else 0)
    return sign * r


@pytest.mark.parametrize("mode", [TRUNC, RNE, RNA])
def test_all_small_values_and_shifts(mode):
    vals = np.arange(-300, 301, dtype=np.int64)
    for s in range(-3, 12):
        got = rshift_round(vals, s, mode)
        want = np.array([oracle(int(v), s, mode) for v in vals])
        assert np.array_equal(got, want), s
        for v in vals[::7]:
            assert rshift_round_nb(int(v), s, mode) == oracle(int(v), s, mode)


@pytest.mark.parametrize("mode", [TRUNC, RNE, RNA])
def test_large_values_and_shifts(mode):
    g = np.random.default_rng(5)
    vals = g.integers(-(2**61), 2**61, 2000, dtype=np.int64)
    shifts = g.integers(0, 70, 2000)
    got = rshift_round(vals, shifts, mode)
    for v, s, r in zip(vals[:400], shifts[:400], got[:400]):
        assert r == oracle(int(v), int(s), mode)
        assert rshift_round_nb(int(v), int(s), mode) == r


def test_bit_length():
    vals = np.array([0, 1, 2, 3, 4, 255, 256, 2**40, 2**62 - 1, 2**62], dtype=np.int64)
    want = [int(v).bit_length() for v in vals]
    assert list(bit_length(vals)) == want
    assert [bit_length_nb(int(v)) for v in vals] == want


def test_unknown_mode_names_allowed():
    with pytest.raises(ValueError, match="trunc, rne, rna"):
        rounding_code("nearest")
