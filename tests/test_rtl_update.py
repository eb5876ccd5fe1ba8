"""UpdateUnit (rtl/update.py) in Amaranth's simulator against fixedpoint.update / Datapath.step (==)."""
import dataclasses
import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from fixedpoint.datapath import Datapath
from fixedpoint.formats import parse_format
from rtl.update import UpdateUnit, exp_r_range, reference
from sim.scoreboard import ScoreboardMismatch, check
from sim.stream import amaranth_get, amaranth_put

INT = Datapath.preset("int-e4m1")


def run(dut, spikes, seed, idle=0.0, bp=0.0):
    """spikes: [(coef payload, [beat payloads])] -> ([(K, exp_K)], [[codes per beat]])."""
    rng = random.Random(seed)
    ks, beats_out = [], []

    async def producer(ctx):
        for coef, beats in spikes:
            await amaranth_put(ctx, dut.coef, coef)
            await ctx.tick()
            ks.append((ctx.get(dut.K), ctx.get(dut.exp_K)))
            for b in beats:
                while rng.random() < idle:
                    await ctx.tick()
                await amaranth_put(ctx, dut.i, b)

    async def consumer(ctx):
        n = sum(len(b) for _, b in spikes)
        crng = random.Random(seed + 1)
        for _ in range(n):
            while crng.random() < bp:
                await ctx.tick()
            beats_out.append(dut.unpack_out(await amaranth_get(ctx, dut.o)))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run()
    return ks, beats_out


def random_spikes(dp, w_fmt, N, L, n_spikes, seed, T=64):
    """Random h (incl. 0 and max codes), weight rows, t, sig_r and exp_r over the whole range."""
    rng = random.Random(seed)
    H, W = parse_format(dp.h_format), parse_format(w_fmt)
    tab = dp.tables(T)
    R = dp.norm_bits
    elo, ehi = exp_r_range(dp)
    cases = []
    for k in range(n_spikes):
        h = [rng.choice([0, H.n_codes - 1, rng.randrange(H.n_codes), rng.randrange(64)]) for _ in range(N)]
        w = [rng.randrange(W.n_codes) for _ in range(N)]
        t = rng.randrange(T)
        sig_r = rng.choice([1 << (R - 1), (1 << R) - 1, rng.randrange(1 << (R - 1), 1 << R)])
        exp_r = rng.choice([elo, ehi, rng.randrange(elo, ehi + 1), -R - rng.randrange(12)])
        from fixedpoint.reciprocal import reciprocal
        Y = int(reciprocal(sig_r, R, dp.recip_bits, dp.recip_method, dp.recip_rounding, dp.lut_bits,
                           dp.nr_iters))
        cases.append((h, w, int(tab.C[t]), int(tab.G[t]), Y, exp_r))
    return cases


def check_cases(dp, w_fmt, L, cases, seed, idle=0.0, bp=0.0, fault=None):
    dut = UpdateUnit(dp, w_fmt, L, fault=fault)
    spikes, exp_k, exp_codes = [], [], []
    for h, w, C, G, Y, er in cases:
        beats = [dut.pack_beat(h[i:i + L], w[i:i + L]) for i in range(0, len(h), L)]
        spikes.append((dut.pack_coef(C, G, Y, er), beats))
        K, eK, codes = reference(dp, w_fmt, h, w, C, G, Y, er)
        exp_k.append((K, eK))
        exp_codes += codes
    ks, outs = run(dut, spikes, seed, idle, bp)
    assert ks == exp_k
    got = []
    for (h, *_), n_beats in zip(cases, [len(s[1]) for s in spikes]):
        flat = [c for beat in outs[:n_beats] for c in beat][:len(h)]
        outs = outs[n_beats:]
        got += flat
    return check(got, exp_codes, parse_format(dp.h_format).width, "UpdateUnit codes")


@pytest.mark.parametrize("preset,L", [("int-e4m1", 1), ("int-e4m1", 4), ("int-e4m0", 3), ("int-uq0.8", 2)])
def test_random_spikes_vs_model(preset, L):
    dp = Datapath.preset(preset)
    W = np.random.default_rng(1).uniform(0.001, 0.2, size=(12, 10))
    w_fmt = dp.weight_format_for(W)
    cases = random_spikes(dp, w_fmt, 10, L, 25, seed=L)
    assert check_cases(dp, w_fmt, L, cases, seed=L, idle=0.2, bp=0.2) == 250


@pytest.mark.parametrize("kw", [dict(h_rounding="trunc", coef_bits=12, upd_frac_bits=18),
                                dict(h_rounding="rna", h_format="uq1.10", g_bits=20, c_bits=10),
                                dict(upd_frac_bits=12, recip_method="nr")])
def test_other_widths_and_roundings(kw):
    dp = dataclasses.replace(INT, **kw)
    w_fmt = "e4m1b16"
    cases = random_spikes(dp, w_fmt, 9, 4, 20, seed=5)
    check_cases(dp, w_fmt, 4, cases, seed=5)


def test_equals_datapath_step():
    """Feed the unit the Y and exp_r of real dp.step records: the new h equals dp.step's."""
    dp = INT
    rng = np.random.default_rng(3)
    W = rng.uniform(0.0, 1.0, size=(8, 10))
    W /= W.sum(axis=0)
    w_codes, w_fmt = dp.encode_weights(W)
    tab = dp.tables(30)
    h = dp.initial_h(10)
    cases, expected = [], []
    for t in range(30):
        s = int(rng.integers(8))
        new, rec = dp.step(h, w_codes[s], t, tab, w_format=w_fmt)
        assert not rec.ignored
        cases.append(([int(x) for x in h], [int(x) for x in w_codes[s]], int(tab.C[t]), int(tab.G[t]), rec.Y,
                      rec.exp_r))
        expected += [int(x) for x in new]
        h = new
    dut = UpdateUnit(dp, w_fmt, 4)
    spikes = [(dut.pack_coef(C, G, Y, er), [dut.pack_beat(hh[i:i + 4], ww[i:i + 4]) for i in range(0, 10, 4)])
              for hh, ww, C, G, Y, er in cases]
    _, outs = run(dut, spikes, 0)
    got = []
    for k in range(30):
        got += [c for beat in outs[3 * k:3 * k + 3] for c in beat][:10]
    check(got, expected, 16, "UpdateUnit vs dp.step")


def test_latency():
    dut = UpdateUnit(INT, "e4m1", 2)
    out = {}

    async def tb(ctx):
        ctx.set(dut.o.ready, 1)
        await amaranth_put(ctx, dut.coef, dut.pack_coef(40000, 30000, 50000, -20))
        await amaranth_put(ctx, dut.i, dut.pack_beat([1000, 2000], [20, 21]))
        cycles = 1
        while not ctx.get(dut.o.valid):
            await ctx.tick()
            cycles += 1
        out["latency"] = cycles

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert out["latency"] == UpdateUnit.latency == 3


def test_fault_flag_is_caught():
    dp = INT
    cases = random_spikes(dp, "e4m1", 8, 1, 10, seed=9)
    with pytest.raises(ScoreboardMismatch, match="first at index"):
        check_cases(dp, "e4m1", 1, cases, seed=9, fault="flip_bit0")


def test_bad_parameters():
    with pytest.raises(ValueError, match="model-only"):
        UpdateUnit(Datapath.preset("paper"))
    with pytest.raises(ValueError, match="float format"):
        UpdateUnit(dataclasses.replace(INT, h_format="e5m11z"))
    with pytest.raises(ValueError, match="lanes"):
        UpdateUnit(INT, lanes=0)
