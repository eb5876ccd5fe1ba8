"""rtl.layer.reciprocal_pipe / coefficient / update_lanes in Amaranth's simulator against their
fixedpoint references (==), one input per cycle at the documented latency."""
import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from fixedpoint.datapath import PRESETS
from fixedpoint.formats import parse_format
from rtl.layer import coefficient, reciprocal_pipe, threefry, update_lanes
from rtl.update import exp_r_range

DP = PRESETS["int-e4m1"]


def flat(sig):
    return sig.as_value() if hasattr(sig, "as_value") else sig


def stream(dut, inputs, outputs, latency):
    """Drive one input dict per cycle; return the output tuples ``latency`` cycles later."""
    got = []

    async def tb(ctx):
        for k in range(len(inputs) + latency):
            if k < len(inputs):
                for sig, v in inputs[k]:
                    ctx.set(flat(sig), v)
            await ctx.tick()
            if k + 1 >= latency:
                got.append(tuple(int(ctx.get(flat(o))) for o in outputs))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return got[:len(inputs)]


@pytest.mark.parametrize("name", ["int-e4m1", "int-uq0.8"])
def test_reciprocal_pipe(name):
    dp = PRESETS[name]
    R = dp.norm_bits
    rng = random.Random(5)
    sigs = [1 << (R - 1), (1 << R) - 1] + [rng.randrange(1 << (R - 1), 1 << R) for _ in range(200)]
    dut = reciprocal_pipe.ReciprocalPipe(dp)
    got = stream(dut, [[(dut.i_sig, s)] for s in sigs], [dut.o_y], dut.latency)
    assert [g[0] for g in got] == reciprocal_pipe.reference(dp, sigs)


def test_coefficient_pipe():
    rng = random.Random(6)
    lo, hi = exp_r_range(DP)
    cases = [(rng.randrange(1, 1 << DP.g_bits), rng.randrange(1 << (DP.recip_bits - 1), (1 << DP.recip_bits) + 1),
              rng.randrange(lo, hi + 1)) for _ in range(200)] + [((1 << DP.g_bits) - 1, 1 << DP.recip_bits, lo)]
    dut = coefficient.CoefficientPipe(DP)
    got = stream(dut, [[(dut.G, g), (dut.Y, y), (dut.exp_r, e)] for g, y, e in cases], [dut.K, dut.exp_K],
                 dut.latency)
    assert got == [coefficient.reference(DP, g, y, e) for g, y, e in cases]


@pytest.mark.parametrize("name,lanes,early,ck", [("int-e4m1", 4, False, False), ("int-uq0.8", 3, False, False),
                                               ("int-e4m1", 4, True, False), ("int-e4m1", 20, True, True)])
def test_update_lanes(name, lanes, early, ck):
    """early: exp_K one cycle before its beat, copied per lane; ck: C and K too, copied in two levels (three
    first-level copies for 20 lanes); both: the engine's way."""
    dp = PRESETS[name]
    rng = np.random.default_rng(7)
    W = rng.uniform(0, 1, size=(20, lanes)) ** 3
    wc, wfmt = dp.encode_weights(W / W.sum(axis=0))
    H = parse_format(dp.h_format)
    dut = update_lanes.UpdateLanes(dp, wfmt, lanes, exp_k_early=early, ck_early=ck)
    from rtl.update import exp_k_range
    klo, khi = exp_k_range(dp)
    ins, want = [], []
    for k in range(120):
        h = [int(v) for v in rng.integers(0, H.n_codes, lanes)]
        w = [int(v) for v in wc[k % 20]]
        if k % 5 == 0:  # the identity (first pass / ignored spike)
            C, K, e = 1 << dp.c_bits, 0, int(rng.integers(klo, khi + 1))
            want.append(h)
        else:
            C = int(rng.integers(1, 1 << dp.c_bits))
            K = int(rng.integers(1 << (dp.coef_bits - 1), 1 << dp.coef_bits))
            e = int(rng.integers(-40, -20)) if k % 2 else int(rng.integers(klo, khi + 1))
            want.append(update_lanes.reference(dp, wfmt, h, w, C, K, e))
        ins.append([(dut.h, sum(c << (j * H.width) for j, c in enumerate(h))),
                    (dut.w, sum(c << (j * wfmt.width) for j, c in enumerate(w))), (dut.C, C), (dut.K, K),
                    (dut.exp_K, e)])
    if early:  # each beat carries the next beat's exp_K (and C, K); a leading cycle carries the first
        n = 3 if ck else 1
        ek = [row[-n:] for row in ins]
        ins = [ek[0]] + [row[:-n] + (ek[i + 1] if i + 1 < len(ek) else []) for i, row in enumerate(ins)]
    got = stream(dut, ins, [dut.o], dut.latency)
    if early:
        got = got[1:]
    mask = (1 << H.width) - 1
    assert [[(int(g[0]) >> (j * H.width)) & mask for j in range(lanes)] for g in got] == want


def test_threefry_pipe():
    """One draw per cycle == fixedpoint.rng.spike_random; the key (seed, pattern) is held while its draws are in
    flight (as the spike generator holds it for a wave) and changes, group by group, as soon as the pipe is empty."""
    rng = random.Random(8)
    edge = [(0, 0, [(0, 0, 0)]), (0xFFFFFFFF, 0xFFFFFFFF, [(255, (1 << 24) - 1, 0xFFFFFFFF), (0, 0, 0)])]
    groups = edge + [(rng.getrandbits(32), rng.getrandbits(32),
                      [(rng.randrange(256), rng.getrandbits(24), rng.getrandbits(32)) for _ in range(rng.randint(1, 12))])
                     for _ in range(8)]
    dut = threefry.ThreefryPipe()
    rows, want = [], []
    for a, b, counters in groups:
        key = [(dut.seed, a), (dut.pattern, b)]
        rows += [[(dut.i_valid, 1), *key, (dut.layer, c), (dut.ip, d), (dut.spike, e)] for c, d, e in counters]
        rows += [[(dut.i_valid, 0), *key]] * dut.latency  # the key held until the group's last draw is out
        want += [threefry.reference(a, b, c, d, e) for c, d, e in counters]
    got = stream(dut, rows, [dut.o_valid, dut.o_r], dut.latency)
    assert [r for v, r in got if v] == want


def test_two_step_shift_and_overflow_equal_floor_and_clamp():
    """update_lanes.coarse_shifted + the fine shift + coarse_high/fine_overflow
    == min(floor(v * 2**sh), 2**cap)
    for every shift in range, both directions, values near the cap (the T2 path of UpdateLanes)."""
    from amaranth import Module, Mux, Signal, signed
    vw, cap = 40, 13  # vw > cap + 8 (the engine: 36 > 32): right shifts by 8, 16 can still overflow
    m = Module()
    v, sh = Signal(vw), Signal(signed(7))
    la, ra, neg = update_lanes.shift_amounts(m, sh, -44, 30, cap, vw, "t")
    y = Signal(vw + cap)
    m.d.comb += y.eq(update_lanes.coarse_shifted(v, la, ra, neg, len(y)))
    f = Mux(neg, ra[:3], la[:3])
    z = Mux(neg, y >> f, y << f)[:cap]
    out = Signal(cap + 1)
    high = update_lanes.coarse_high(v, la, ra, neg, cap)
    m.d.comb += out.eq(Mux(update_lanes.fine_overflow(y, f, neg, cap, high), 1 << cap, z))
    rng = random.Random(3)
    edges = sorted({x for p in range(vw + 1) for x in ((1 << p) - 1, 1 << p, (1 << p) + 1) if 0 <= x < 1 << vw})
    cases = [(a, s) for s in range(-44, 31) for a in edges + [rng.getrandbits(vw) for _ in range(4)]]
    got = []

    async def tb(ctx):
        for a, s in cases:
            ctx.set(v, a)
            ctx.set(sh, s)
            await ctx.delay(1e-9)
            got.append(ctx.get(out))
    sim = Simulator(m)
    sim.add_testbench(tb)
    sim.run()
    want = [min((a << s) if s >= 0 else (a >> -s), 1 << cap) for a, s in cases]
    assert got == want
