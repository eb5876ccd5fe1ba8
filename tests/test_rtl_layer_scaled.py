"""The ``scaled`` update's RTL units (rtl.layer.scaled_lanes / scaled_coefficient / scaled_schedule /
final_scale) in Amaranth's simulator against their fixedpoint references (==), random and edge
stimuli, one input per cycle at the documented latency (seeds in the parameters / messages)."""
import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from fixedpoint.datapath import PRESETS
from fixedpoint.formats import parse_format
from rtl.layer import final_scale, scaled_coefficient, scaled_lanes, scaled_schedule
from rtl.update import exp_r_range

NAMES = ["scaled-e4m1", "scaled-e3m1", "cheap-e4m1", "cheap-e3m1"]


def flat(sig):
    return sig.as_value() if hasattr(sig, "as_value") else sig


def stream(dut, inputs, outputs, latency):
    """Drive one input list per cycle; return the output tuples ``latency`` cycles later."""
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


def pack(codes, width):
    return sum(int(c) << (j * width) for j, c in enumerate(codes))


def unpack(word, width, n):
    return [(int(word) >> (j * width)) & ((1 << width) - 1) for j in range(n)]


@pytest.mark.parametrize("name,lanes,T,seed", [("scaled-e4m1", 4, 1600, 11), ("cheap-e4m1", 5, 1600, 12),
                                               ("scaled-e3m1", 3, 3, 13), ("cheap-e3m1", 4, 2, 14)])
def test_scaled_lanes(name, lanes, T, seed):
    """Every output code == Datapath.step's arithmetic (update_scaled_sums, scale_sums, encode) for
    C = 2**(Fc - j) (j = 0..j_max), and for the last spike the lanes' sums through FinalScale ==
    the model with C_{T-1}; the sums themselves == the model's U where U < 2**X."""
    dp = PRESETS[name]
    tab = scaled_schedule.ScaledScheduleTable.plan(dp, T)
    j_max, c_last, a_bits = max(tab["j"]), tab["c_last"], tab["a_bits"]
    rng = np.random.default_rng(seed)
    W = rng.uniform(0, 1, size=(20, lanes)) ** 3
    wc, wfmt = dp.encode_weights(W / W.sum(axis=0))
    H = parse_format(dp.h_format)
    dut = scaled_lanes.ScaledUpdateLanes(dp, wfmt, lanes, j_max, c_last, a_bits)
    assert dut.coef == ("shift_add" if name.startswith("cheap") else "mult")
    X, Fc, cb = dut.clamp_bits, int(dp.c_bits), int(dp.coef_bits)
    klo, khi = dut.exp_k_range
    rlo, rhi = exp_r_range(dp)
    ins, want = [], []
    for k in range(240):
        h = [int(v) for v in rng.integers(0, H.n_codes, lanes)]
        if k % 11 == 3:
            h = [0, H.n_codes - 1] * lanes
            h = h[:lanes]
        w = [int(v) for v in wc[k % 20]]
        j = int(rng.integers(0, j_max + 1))
        last = int(k % 4 == 1)
        kind = k % 6
        if kind == 0:  # identity (first pass): K = 0, j = 0
            K, e, j, last = 0, int(rng.integers(klo, khi + 1)), 0, 0
        elif kind == 1:  # the full exp_K range (clamps, underflows)
            K, e = int(rng.integers(0, 1 << cb)), int(rng.integers(klo, khi + 1))
        elif kind == 2:  # edges
            K, e = (1 << cb) - 1, [klo, khi][k % 2]
        else:  # a coefficient as the engine forms it: A_t * Y, realistic dot-product exponents
            A = int(tab["tables"].G[int(rng.integers(0, T))])
            Y = int(rng.integers(1 << (dp.recip_bits - 1), (1 << dp.recip_bits) + 1))
            er = int(rng.integers(max(rlo, -40), min(rhi, -10) + 1))
            K, e = scaled_coefficient.reference(dp, A, Y, er)
        C = c_last if last else 1 << (Fc - j)
        codes = scaled_lanes.reference(dp, wfmt, h, w, K, e, C)
        sums = scaled_lanes.reference_sums(dp, wfmt, h, w, K, e)
        want.append((last, codes, sums))
        ins.append([(dut.h, pack(h, H.width)), (dut.w, pack(w, wfmt.width)), (dut.K, K), (dut.exp_K, e),
                    (dut.j, j), (dut.last, last)])
    got = stream(dut, ins, [dut.o], dut.latency)
    n_last = n_sat = 0
    for k, ((last, codes, sums), g) in enumerate(zip(want, got)):
        o = unpack(g[0], dut.out_width, lanes)
        if last:
            n_last += 1
            assert final_scale.reference(dp, o, c_last) == codes, f"{name} seed {seed} beat {k} (last)"
            assert [u for u, s in zip(o, sums) if s < (1 << X)] == [s for s in sums if s < (1 << X)]
        else:
            n_sat += sum(c == H.n_codes - 1 for c in codes)
            assert o == codes, f"{name} seed {seed} beat {k}"
    assert n_last > 40 and n_sat > 0


@pytest.mark.parametrize("name,T", [("scaled-e4m1", 1600), ("cheap-e3m1", 3), ("cheap-e4m1", 1)])
def test_final_scale(name, T):
    """FinalScale == scale_sums(U, C_{T-1}) encoded into H, with random back-pressure (seed 21)."""
    dp = PRESETS[name]
    tab = scaled_schedule.ScaledScheduleTable.plan(dp, T)
    X = scaled_lanes.clamp_bits(dp, max(tab["j"]), tab["c_last"])
    dut = final_scale.FinalScale(dp, X + 1, tab["c_last"])
    rng = random.Random(21)
    U = [0, 1, (1 << (X + 1)) - 1, 1 << X, (1 << 24) - 1, 1 << 23] + [rng.randrange(0, 1 << 25) for _ in range(150)]
    U += [rng.randrange(0, 1 << (X + 1)) for _ in range(50)]
    want = final_scale.reference(dp, U, tab["c_last"])
    got = []

    async def tb(ctx):
        i = 0
        for _ in range(4 * len(U) + 20):
            ctx.set(dut.i.valid, int(i < len(U) and rng.random() < 0.8))
            ctx.set(dut.i.payload, U[i] if i < len(U) else 0)
            rdy = int(rng.random() < 0.7)
            ctx.set(dut.o.ready, rdy)
            _, _, iv, ir, ov, op = await ctx.tick().sample(dut.i.valid, dut.i.ready, dut.o.valid, dut.o.payload)
            if iv and ir:
                i += 1
            if ov and rdy:
                got.append(int(op))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert got == want, f"{name} T {T} seed 21"
    assert any(c == parse_format(dp.h_format).n_codes - 1 for c in want)


def test_final_scale_latency():
    """Output always ready: a code leaves FinalScale exactly ``latency`` cycles after its input."""
    dp = PRESETS["cheap-e4m1"]
    tab = scaled_schedule.ScaledScheduleTable.plan(dp, 16)
    dut = final_scale.FinalScale(dp, 27, tab["c_last"])
    seen = []

    async def tb(ctx):
        ctx.set(dut.o.ready, 1)
        for c in range(12):
            ctx.set(dut.i.valid, int(c == 2))
            ctx.set(dut.i.payload, 12345)
            _, _, ov = await ctx.tick().sample(dut.o.valid)
            if ov:
                seen.append(c)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert seen == [2 + dut.latency]


@pytest.mark.parametrize("name,T", [("scaled-e4m1", 1600), ("cheap-e3m1", 5)])
def test_scaled_coefficient_pipe(name, T):
    """K = A_t*Y truncated to coef_bits == fixedpoint.update.coefficient (A_0 = 2**Fg included), seed 31."""
    dp = PRESETS[name]
    tab = scaled_schedule.ScaledScheduleTable.plan(dp, T)
    dut = scaled_coefficient.ScaledCoefficientPipe(dp, tab["a_bits"])
    rng = random.Random(31)
    lo, hi = exp_r_range(dp)
    A = [int(a) for a in tab["tables"].G]
    Qb = dp.recip_bits
    cases = [(rng.choice(A), rng.randrange(1 << (Qb - 1), (1 << Qb) + 1), rng.randrange(lo, hi + 1))
             for _ in range(200)]
    cases += [(max(A), 1 << Qb, lo), (max(A), 1 << Qb, hi), ((1 << tab["a_bits"]) - 1, (1 << (Qb + 1)) - 1, lo),
              (1, 1 << (Qb - 1), hi)]
    got = stream(dut, [[(dut.G, a), (dut.Y, y), (dut.exp_r, e)] for a, y, e in cases], [dut.K, dut.exp_K],
                 dut.latency)
    want = [scaled_coefficient.reference(dp, a, y, e) for a, y, e in cases]
    assert [(k, e if k else 0) for k, e in got] == [(k, e if k else 0) for k, e in want]
    assert max(A) == 1 << dp.g_bits  # A_0 = eps_0/s_0 = 1 needs a_bits = Fg + 1


@pytest.mark.parametrize("name,T", [("scaled-e4m1", 1600), ("cheap-e4m1", 7), ("cheap-e3m1", 1)])
def test_scaled_schedule_table(name, T):
    """The ROM's (j_t, A_t) == the model's tables: C_t == 2**(Fc - j_t) for t < T-1, A_t == G_t."""
    dp = PRESETS[name]
    dut = scaled_schedule.ScaledScheduleTable(dp, T)
    tables = dp.tables(T)
    addrs = list(range(min(T, 40))) + [T - 1]
    got = stream(dut, [[(dut.addr, a)] for a in addrs], [dut.C, dut.G], 1)
    for a, (j, A) in zip(addrs, got):
        assert A == int(tables.G[a])
        if a < T - 1:
            assert int(tables.C[a]) == 1 << (dp.c_bits - j)
    assert dut.c_last == int(tables.C[-1])
    assert set(dut.j[:-1]) <= {0, 1, 2}


def test_scaled_units_reject():
    dp = PRESETS["int-e4m1"]
    with pytest.raises(ValueError, match="update must be 'scaled'"):
        scaled_lanes.ScaledUpdateLanes.plan(dp, "e4m1", 4, 2, 60000)
    with pytest.raises(ValueError, match="coef 'shift_add' needs"):
        scaled_lanes.ScaledUpdateLanes.plan(PRESETS["scaled-e4m1"], "e4m1", 4, 2, 60000, coef="shift_add")
    with pytest.raises(ValueError, match="c_last"):
        final_scale.FinalScale.plan(PRESETS["cheap-e4m1"], 27, 0)


def test_cycle_model_final_latency():
    from sbs_model.layer_cycles import FINAL, final_latency
    assert final_latency("int") == 0 and final_latency("scaled") == FINAL == final_scale.FinalScale.latency
    with pytest.raises(ValueError, match="update must be one of"):
        final_latency("float32")
