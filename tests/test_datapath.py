"""The Datapath object: the paper's worked vector bit for bit, numpy step == numba step, the
integer update against its exact definition and against float64, validation, serialisation."""
import json
from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest

from fixedpoint.datapath import PRESETS, Datapath, dot_nb, step_nb_call
from fixedpoint.formats import parse_format
from fixedpoint.reciprocal import reciprocal
from fixedpoint.schedule import Schedule

RNG = np.random.default_rng(99)
H_VEC = [0.25, 0.125, 0.0, 0.5, 0.125]
W_VEC = np.array([0.1, 0.03, 0.2, 0.004, 0.0625], dtype=np.float32)
PAPER = {  # preset: (weight codes, float32 bits of the normalised sum)
    "paper-e4m4": ([0xB9, 0x9E, 0xC9, 0x70, 0xB0], 0x3D1B0000),
    "paper-e4m1": ([0x17, 0x13, 0x19, 0x0E, 0x16], 0x3D140000),
    "paper-e4m0": ([0xB, 0x9, 0xC, 0x7, 0xB], 0x3CE00000),
}


@pytest.mark.parametrize("name", sorted(PAPER))
def test_paper_worked_vector_bit_exact(name):
    dp = Datapath.preset(name)
    W, H = dp.formats()
    wcodes, wfmt = dp.encode_weights(W_VEC.astype(np.float64))
    assert wcodes.tolist() == PAPER[name][0] and wfmt == W
    h = H.encode(H_VEC)
    A, ovf, sig_r, exp_r = dp.dot(h, wcodes)
    r32 = np.float32(np.ldexp(float(sig_r), int(exp_r)))
    assert int(r32.view(np.uint32)) == PAPER[name][1] and int(ovf) == 0
    a_hi, a_lo, ovf_nb, s_nb, e_nb = dot_nb(h, wcodes, dp.nb, H.nb, W.nb)
    assert (a_hi << 32 | a_lo, s_nb, e_nb) == (int(A), int(sig_r), int(exp_r))


def test_paper_alias_and_preset_names():
    assert Datapath.preset("paper") == Datapath.preset("paper-e4m1")
    assert set(PRESETS) >= {"paper", "paper-e4m0", "paper-e4m1", "paper-e4m4", "int-e4m1", "int-e4m0", "int-uq0.8"}
    with pytest.raises(ValueError, match="preset 'paper-e4m9'"):
        Datapath.preset("paper-e4m9")
    assert len(set(PRESETS.values())) == 10  # hashable; 'paper' is an alias


def _random_case(dp, N, wfmt=None, zeros=0.2):
    """A distribution h (encoded into H) and a weight row (encoded into the weight format)."""
    W, H = dp.formats()
    wfmt = wfmt or W
    h = RNG.random(N) * (RNG.random(N) > zeros)
    h = h / h.sum() if h.sum() > 0 else np.full(N, 1.0 / N)
    w = RNG.random(N) ** 3
    w = w / w.max() * float(wfmt.max_value) * RNG.uniform(0.3, 1.0)
    return (H.encode(h, dp.h_rounding, "saturate"),
            wfmt.encode(w, dp.weight_rounding, "saturate"))


VARIANTS = {
    **{k: v for k, v in PRESETS.items() if k != "paper"},
    "int-nr": replace(PRESETS["int-e4m1"], recip_method="nr", lut_bits=6, nr_iters=1, h_rounding="trunc"),
    "int-e5m11z-h": replace(PRESETS["int-e4m1"], h_format="e5m11z", upd_frac_bits=40, sampler_frac_bits=20,
                            prod_bits=10, prod_rounding="rne", coef_bits=24),
    "int-tiny-acc-wrap": replace(PRESETS["int-e4m1"], acc_format="uq0.12", acc_overflow="wrap", norm_bits=8,
                                 recip_rounding="trunc"),
    "int-tiny-acc-sat": replace(PRESETS["int-e4m1"], acc_format="uq0.12", acc_overflow="saturate"),
    "paper-e4m1-acc-sat": replace(PRESETS["paper-e4m1"], acc_format="uq0.20", acc_overflow="saturate"),
    # value bits + F > 62: the numba dot takes its general (three-piece) loop
    "paper-e4m4-acc-uq2.62": replace(PRESETS["paper-e4m4"], acc_format="uq2.62", acc_overflow="saturate"),
    "int-e4m1-acc-uq0.64": replace(PRESETS["int-e4m1"], acc_format="uq0.64", acc_overflow="wrap", norm_bits=30,
                                   recip_bits=24),
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_step_numpy_equals_numba(name):
    dp = VARIANTS[name]
    tables = dp.tables(200, Schedule(1.0, "inv_sqrt", cooldown_after=150))
    seen_ovf = 0
    for N in (1, 5, 32, 96):
        for trial in range(6):
            h, w = _random_case(dp, N)
            if trial == 0:
                h[:] = 0  # ignored spike
            if trial == 1:
                w[:] = dp.formats()[0].n_codes - 1  # every weight the largest code: r ~ max weight
            t = int(RNG.integers(0, 200))
            h_np, rec_np = dp.step(h, w, t, tables)
            h_nb, rec_nb = step_nb_call(dp, h, w, t, tables)
            assert np.array_equal(h_np, h_nb), (N, trial)
            assert rec_np == rec_nb
            seen_ovf += rec_np.acc_overflow > 0
            if trial == 0:
                assert rec_np.ignored and np.array_equal(h_np, h)
    if "tiny" in name or "sat" in name:
        assert seen_ovf > 0, "variant meant to exercise accumulator overflow"


@pytest.mark.parametrize("name", ["paper-e4m1", "int-e4m1", "int-nr"])
def test_trajectory_numpy_equals_numba(name):
    dp = VARIANTS[name]
    tables = dp.tables(60)
    W, H = dp.formats()
    N = 20
    h_np = dp.initial_h(N)
    h_nb = h_np.copy()
    wrows = [_random_case(dp, N)[1] for _ in range(60)]
    for t in range(60):
        h_np, _ = dp.step(h_np, wrows[t], t, tables)
        h_nb, _ = step_nb_call(dp, h_nb, wrows[t], t, tables)
        assert np.array_equal(h_np, h_nb), t


def _fr(sig, exp):
    return Fraction(int(sig)) * Fraction(2) ** int(exp)


@pytest.mark.parametrize("name", ["int-e4m1", "int-uq0.8", "int-nr", "int-e5m11z-h"])
def test_int_update_matches_exact_definition(name):
    """Recompute every step of the integer update with Fractions from its written definition."""
    dp = VARIANTS[name]
    W, H = dp.formats()
    tables = dp.tables(50)
    I, F = dp.acc
    R, Qb = dp.norm_bits, dp.recip_bits
    for _ in range(15):
        h, w = _random_case(dp, 24)
        t = int(RNG.integers(0, 50))
        h_new, rec = dp.step(h, w, t, tables)
        hs, he = H.decode_parts(h)
        ws, we = W.decode_parts(w)
        p = [_fr(a, b) * _fr(c, d) for a, b, c, d in zip(hs, he, ws, we)]
        if dp.prod_bits:  # products as the hardware keeps them: checked separately in the ops tests
            from fixedpoint.product import product
            P, E = product(hs, he, ws, we, dp.prod_bits, dp.prod_rounding)
            p = [_fr(a, b) for a, b in zip(P, E)]
        A = sum((x * 2 ** F).__floor__() for x in p)
        assert rec.A == min(A, 2 ** (I + F) - 1)
        # r: top R bits of A, truncated
        b = rec.A.bit_length()
        assert rec.sig_r == rec.A >> (b - R) if b >= R else rec.A << (R - b)
        assert rec.exp_r == b - R - F
        assert rec.Y == int(reciprocal(rec.sig_r, R, Qb, dp.recip_method, dp.recip_rounding, dp.lut_bits,
                                       dp.nr_iters))
        KY = int(tables.G[t]) * rec.Y
        drop = max(KY.bit_length() - dp.coef_bits, 0)
        assert rec.K == KY >> drop
        assert rec.exp_K == -dp.g_bits - Qb - rec.exp_r - (R - 1) + drop
        Fu = dp.upd_frac_bits
        S = [(int(tables.C[t]) * _fr(a, b - dp.c_bits) * 2 ** Fu).__floor__()
             + (rec.K * x * Fraction(2) ** rec.exp_K * 2 ** Fu).__floor__() for a, b, x in zip(hs, he, p)]
        want = H.encode_parts(np.array(S, dtype=np.int64), -Fu, dp.h_rounding, "saturate")
        assert np.array_equal(h_new, want)


def _one_step_sum_bound(dp, N, r_true, c, g, C, G):
    """|sum h_new - (c*sum h + g)| bound for one step (integer mode, div reciprocal, exact products)."""
    I, F = dp.acc
    H = parse_format(dp.h_format)
    ulp = 2.0 ** -H.frac_bits
    rel_r = N * 2.0 ** -F / r_true + 2.0 ** (1 - dp.norm_bits)
    rel_y = 2.0 ** -dp.recip_bits if dp.recip_rounding == "rne" else 2.0 ** (1 - dp.recip_bits)
    rel_k = 2.0 ** (1 - dp.coef_bits)
    coef_err = abs(C - c) + abs(G - g) * (1 + rel_r) + g * (rel_r + rel_y + rel_k) * 1.001
    final = N * (0.5 if dp.h_rounding == "rne" else 1.0) * ulp
    return coef_err + final + 2 * N * 2.0 ** -dp.upd_frac_bits


@pytest.mark.parametrize("name", ["int-e4m1", "int-e4m0", "int-uq0.8"])
def test_sum_of_h_stays_one_within_bound_and_float64(name):
    dp = VARIANTS[name]
    W, H = dp.formats()
    tables = dp.tables(1600)
    worst_ulps = 0.0
    for trial in range(40):
        N = int(RNG.choice([10, 32, 64]))
        h, w = _random_case(dp, N, zeros=0.0)
        t = int(RNG.choice([0, 1, 10, 1599]))
        h_new, rec = dp.step(h, w, t, tables)
        hv = H.decode(h)
        p = hv * W.decode(w)
        r_true = p.sum()
        c, g = tables.c[t], tables.g[t]
        C, G = tables.C[t] / 2.0 ** dp.c_bits, tables.G[t] / 2.0 ** dp.g_bits
        s_new = H.decode(h_new).sum()
        bound = _one_step_sum_bound(dp, N, r_true, c, g, C, G)
        assert abs(s_new - (c * hv.sum() + g)) <= bound
        assert bound < N * 2.0 ** -H.frac_bits + 2e-4  # a useful bound: ~ N/2 ulps + 1e-4
        ideal = c * hv + g * p / r_true  # float64 evaluation of the definition
        worst_ulps = max(worst_ulps, np.abs(H.decode(h_new) - ideal).max() / 2.0 ** -H.frac_bits)
    assert worst_ulps <= 1.0, worst_ulps  # per element: 1/2 ulp rounding + table/coefficient errors (~0.6 seen)


def test_float32_update_close_to_float64():
    dp = Datapath.preset("paper-e4m4")
    W, H = dp.formats()
    tables = dp.tables(100)
    for _ in range(30):
        h, w = _random_case(dp, 32)
        t = int(RNG.integers(0, 100))
        h_new, rec = dp.step(h, w, t, tables)
        hv = H.decode(h)
        p = hv * W.decode(w)
        ideal = tables.c[t] * hv + tables.g[t] * p / p.sum()
        got = H.decode(h_new)
        nz = ideal > 2.0 ** -30
        ulp = 2.0 ** (np.floor(np.log2(ideal[nz])) - 11)
        # trunc into E5M11 (< 1 ulp below) plus float32 rounding (a few 2**-24 relative)
        assert np.all(got[nz] <= ideal[nz] * (1 + 2.0 ** -20))
        assert np.all(got[nz] > ideal[nz] - ulp * (1 + 2.0 ** -8))


BAD = [
    (dict(weight_format="e9m1"), "weight_format"),
    (dict(weight_format="se4m1"), "weight_format"),
    (dict(h_format="sq0.15"), "h_format"),
    (dict(weight_rounding="up"), "weight_rounding"),
    (dict(weight_overflow="clip"), "weight_overflow"),
    (dict(weight_scaling="mean"), "weight_scaling"),
    (dict(acc_format="uq40.30"), "acc_format"),
    (dict(acc_format="sq2.30"), "acc_format"),
    (dict(acc_overflow="raise"), "acc_overflow"),
    (dict(norm_bits=1), "norm_bits"),
    (dict(norm_bits=50), "recip_bits"),  # div needs Qb + R <= 61... 66 here
    (dict(update="float64"), "update"),
    (dict(recip_method="table"), "recip_method"),
    (dict(recip_method="nr", lut_bits=16), "lut_bits"),
    (dict(nr_iters=9), "nr_iters"),
    (dict(prod_bits=70), "prod_bits"),
    (dict(coef_bits=41), "coef_bits"),
    (dict(coef_bits=40, weight_format="uq0.30"), "coef_bits"),
    (dict(c_bits=32), "c_bits"),
    (dict(upd_frac_bits=59), "upd_frac_bits"),
    (dict(sampler_frac_bits=31), "sampler_frac_bits"),
    (dict(h_format="uq4.12", sampler_frac_bits=28), "sampler_frac_bits"),
    (dict(weight_format="uq0.40", h_format="uq0.30"), "weight_format"),
    (dict(update="float32", norm_bits=30), "norm_bits"),
    (dict(update="float32", h_format="e5m23z", sampler_frac_bits=20), "prod_bits"),
    (dict(update="float32", h_format="uq0.30"), "h_format"),
]


@pytest.mark.parametrize("kwargs,field", BAD)
def test_validation_names_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        Datapath(**kwargs)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_serialisation_round_trip(name):
    dp = VARIANTS[name]
    assert Datapath.from_dict(json.loads(json.dumps(dp.to_dict()))) == dp
    assert Datapath.from_text(dp.text) == dp
    assert hash(Datapath.from_text(dp.text)) == hash(dp)
    assert len(dp.nb) == 18 and all(isinstance(v, np.int64) for v in dp.nb)
    with pytest.raises(ValueError, match="unknown field"):
        Datapath.from_dict({**dp.to_dict(), "bogus": 1})


def test_canonical_spelling():
    a = Datapath(weight_format="E4M1b15", weight_rounding="RNE", acc_format="UQ2.30", prod_bits=0)
    b = Datapath(weight_format="e4m1", acc_format="uq2.30")
    assert a == b and a.text == b.text and a.prod_bits is None


def test_step_input_checks():
    dp = Datapath.preset("int-e4m1")
    with pytest.raises(ValueError, match="equal length"):
        dp.step([1, 2], [1], 0)
    with pytest.raises(ValueError, match="t 5 out of range"):
        dp.step([1], [1], 5, dp.tables(3))
    with pytest.raises(ValueError, match="c_bits"):
        dp.step([1], [1], 0, replace(dp, c_bits=12).tables(3))


def test_int_weights_with_scaling():
    pytest.importorskip("fixedpoint.scaling")
    dp = Datapath.preset("int-e4m1")
    Wf = RNG.random((25, 32)) ** 2
    Wf = Wf / Wf.sum(axis=0)
    codes, fmt = dp.encode_weights(Wf)
    vals = fmt.decode(codes)
    assert fmt != parse_format(dp.weight_format)  # range moved (bias changed) ...
    assert fmt.max_value / 2 <= vals.max() <= fmt.max_value  # ... so the largest weight is in the top octave
    big = Wf >= 4 * fmt.min_positive
    assert np.all(np.abs(vals[big] - Wf[big]) <= Wf[big] * 0.25)  # rne, 1 mantissa bit: half a step
    h = dp.initial_h(32)
    tables = dp.tables(10)
    h_np, rec = dp.step(h, codes[3], 0, tables, w_format=fmt)
    h_nb, rec_nb = step_nb_call(dp, h, codes[3], 0, tables, w_format=fmt)
    assert np.array_equal(h_np, h_nb) and rec == rec_nb and not rec.ignored


def test_step_nb_on_narrow_code_arrays_in_place():
    """Kernels may keep codes in uint8/uint16 arrays and update h in place."""
    from fixedpoint.datapath import REC_LEN, StepRecord, step_nb
    for name in ("paper-e4m1", "int-e4m1"):
        dp = Datapath.preset(name)
        W, H = dp.formats()
        tables = dp.tables(30)
        h, w = _random_case(dp, 40)
        want, rec_want = dp.step(h, w, 7, tables)
        h16 = h.astype(np.uint16)
        rec = np.zeros(REC_LEN, dtype=np.int64)
        step_nb(h16, w.astype(np.uint8), 7, dp.nb, H.nb, W.nb, tables.C, tables.G, tables.eps32, tables.c32,
                dp.lut(), h16, rec)
        assert np.array_equal(h16.astype(np.int64), want) and StepRecord.from_array(rec) == rec_want


def test_weight_range_counts_flags_paper_wrap():
    # the paper presets encode without a range check: 2**-16 is below E4Mx bias 15 and wraps
    W = np.array([[0.5, 2.0 ** -16], [0.25, 2.0 ** -15]])
    c = Datapath.preset("paper-e4m1").weight_range_counts(W)
    assert c == {"format": "e4m1", "n": 4, "overflow": 0, "underflow": 1}
    codes, fmt = Datapath.preset("paper-e4m1").encode_weights(W)
    assert fmt.decode(codes)[0, 1] > 0.4  # the wrapped weight became large: why such a model fails
    assert Datapath.preset("int-e4m1").weight_range_counts(W)["underflow"] == 0
