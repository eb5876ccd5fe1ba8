"""The ``scaled`` h update (fixedpoint.scaled): its tables, its real-number identity with the SbS
update, and numpy == numba (``Datapath.step`` == ``step_nb``) bit for bit."""
import numpy as np
import pytest

from fixedpoint.datapath import PRESETS, Datapath, step_nb_call
from fixedpoint.scaled import scale_schedule, scaled_tables
from fixedpoint.schedule import Schedule


@pytest.mark.parametrize("sched", [Schedule(), Schedule(0.5, "constant"), Schedule(1.0, "inv_sqrt", 4),
                                   Schedule(3.0, "constant")])
def test_scaled_tables(sched):
    T, cb, gb = 40, 16, 16
    s, j, a, last = scale_schedule(sched.eps(T))
    M = 17 / 16
    assert s[0] == 1.0 and np.all((s[1:] >= M) & (s[1:] < 2 * M))
    c = 1.0 / (1.0 + sched.eps(T))
    assert np.allclose(s[1:], c[:-1] * s[:-1] * 2.0 ** j[:-1], rtol=1e-15, atol=0)
    tab = scaled_tables(T, sched, cb, gb)
    assert np.array_equal(tab.C[:-1], 2 ** (cb - j[:-1]))
    assert tab.C[-1] == round(c[-1] * s[-1] * 2 ** cb)
    assert np.all(np.abs(tab.G / 2.0 ** gb - a) <= 2.0 ** -(gb + 1))
    assert np.array_equal(tab.eps32, sched.eps(T).astype(np.float32))  # the other tables are unchanged


def test_scaled_recursion_is_the_sbs_update():
    """In real numbers, u_{t+1} = (u + a_t*u*w/r') * 2**-j_t with the last factor c*s gives exactly
    the normalised SbS update h_{t+1} = c_t*(h + eps_t*h*w/r) after T spikes."""
    rng = np.random.default_rng(3)
    N, S, T = 9, 5, 60
    W = rng.random((S, N)) ** 2
    sched = Schedule()
    eps = sched.eps(T)
    _, j, a, last = scale_schedule(eps)
    h = np.full(N, 1.0 / N)
    u = h.copy()
    for t in range(T):
        w = W[rng.integers(S)]
        h = (h + eps[t] * h * w / (h @ w)) / (1.0 + eps[t])
        u = u + a[t] * u * w / (u @ w)
        u = u * (last if t == T - 1 else 2.0 ** -j[t])
    assert np.allclose(u, h, rtol=1e-12, atol=0) and abs(h.sum() - 1) < 1e-12


def test_scaled_tables_refuse_large_shifts():
    with pytest.raises(ValueError, match="c_bits"):
        scaled_tables(5, Schedule(1e6, "constant"), 4, 16)


def test_scaled_validation():
    with pytest.raises(ValueError, match="scaled"):
        Datapath(update="scaled", upd_frac_bits=29, c_bits=16)
    assert Datapath(update="scaled", upd_frac_bits=28, c_bits=16).update == "scaled"


@pytest.mark.parametrize("kw", [
    dict(),
    dict(coef_bits=4),
    dict(coef_bits=2, h_rounding="trunc", weight_format="e3m1"),
    dict(h_rounding="rna", weight_format="uq0.8", acc_format="uq1.10", acc_overflow="wrap", c_bits=12),
    dict(h_format="e4m8z", h_rounding="rne", upd_frac_bits=20),
    dict(h_format="uq0.6", c_bits=10, g_bits=10, recip_method="nr", coef_bits=6),
])
def test_scaled_step_numpy_equals_numba(kw):
    dp = Datapath(**dict(PRESETS["scaled-e4m1"].to_dict(), **kw))
    rng = np.random.default_rng(len(str(kw)))
    N, T = 11, 30
    tables = dp.tables(T, Schedule(2.0, "constant") if "c_bits" in kw else Schedule())
    W, H = dp.formats()
    seen_last = seen_ign = seen_ovf = 0
    for trial in range(250):
        w = W.encode(rng.random(N) ** 3 * (8 if "acc_format" in kw else 1), "rne", "saturate")
        h = rng.integers(0, H.n_codes, N) >> rng.integers(0, H.width, N)
        if trial % 5 == 0:
            h[:] = 0  # A == 0: the factor still applies (K = 0)
        if trial % 5 == 1:
            h[rng.integers(N)] = H.n_codes - 1  # near the top of H: the update can saturate
        t = T - 1 if trial % 3 == 0 else int(rng.integers(T))
        a, ra = dp.step(h, w, t, tables)
        b, rb = step_nb_call(dp, h, w, t, tables)
        assert np.array_equal(a, b) and ra == rb, (trial, h, w, t)
        seen_last += t == T - 1
        seen_ign += ra.ignored
        seen_ovf += ra.h_overflow > 0
    assert seen_last and seen_ign and seen_ovf


def test_scaled_ignored_spike_applies_the_factor():
    dp = Datapath(**dict(PRESETS["scaled-e4m1"].to_dict(), weight_format="uq0.8"))  # a format with 0
    tables = dp.tables(10)
    H = dp.formats()[1]
    h = np.array([0, 0, 1 << 15, 1 << 14])  # no overlap with w: A = 0
    w = dp.formats()[0].encode(np.array([0.5, 0.25, 0.0, 0.0]), "rne", "saturate")
    for t in range(10):
        out, rec = dp.step(h, w, t, tables)
        assert rec.ignored
        want = H.encode(H.decode(h) * tables.C[t] / 2.0 ** dp.c_bits, "rne", "saturate")
        assert np.array_equal(out, want)
