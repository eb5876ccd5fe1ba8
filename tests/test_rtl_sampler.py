"""SpikeSampler (rtl/sampler.py) in Amaranth's simulator against fixedpoint.rng.sample_index_int."""
import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from rtl.sampler import SpikeSampler, reference
from sim.scoreboard import ScoreboardMismatch, check
from sim.stream import amaranth_get, amaranth_put

M32 = (1 << 32) - 1


def boundary_draws(values):
    """Every draw where the model's answer changes (r and r - 1 at each step of the cumulative
    sum), plus 0 and 2**32 - 1: covers every outcome class of the window."""
    cum = np.cumsum(np.asarray(values, dtype=np.int64))
    total = int(cum[-1])
    S = len(values)
    edges = [int(c) for c in cum] if total else list(range(S))
    div = total if total else S
    out = {0, M32}
    for c in edges:
        r = -((-c << 32) // div)  # ceil(c * 2**32 / div)
        for v in (r - 1, r, r + 1):
            if 0 <= v <= M32:
                out.add(v)
    return sorted(out)


def windows_for(S, vw, rng):
    vmax = (1 << vw) - 1
    ws = [[0] * S, [vmax] * S]
    ws += [[vmax if i == j else 0 for i in range(S)] for j in range(S)]  # single non-zero
    ws += [[1 if i == j else 0 for i in range(S)] for j in (0, S - 1)]
    ws.append([rng.choice([0, 0, rng.randrange(vmax + 1)]) for _ in range(S)])  # sparse
    ws.append([rng.randrange(vmax + 1) for _ in range(S)])
    return ws


def run(dut, jobs, seed, idle=0.0, bp=0.0):
    """jobs: [(values, draws)]; loads each window, sends its draws, collects the indices
    (random idle cycles on both inputs, random back-pressure on the output)."""
    rng = random.Random(seed)
    got = []

    async def tb(ctx):
        for values, draws in jobs:
            for v in values:
                while rng.random() < idle:
                    await ctx.tick()
                await amaranth_put(ctx, dut.load, v)
            for r in draws:
                while rng.random() < idle:
                    await ctx.tick()
                await amaranth_put(ctx, dut.draw, r)
                while rng.random() < bp:
                    await ctx.tick()
                got.append(await amaranth_get(ctx, dut.index))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return got


def expected_of(jobs):
    return [i for values, draws in jobs for i in reference(values, draws)]


@pytest.mark.parametrize("S,vw", [(1, 8), (2, 3), (3, 5), (5, 8), (8, 4), (13, 16)])
def test_small_windows_every_outcome(S, vw):
    rng = random.Random(S * 100 + vw)
    jobs = [(w, boundary_draws(w) + [rng.getrandbits(32) for _ in range(8)])
            for w in windows_for(S, vw, rng)]
    got = run(SpikeSampler(S, vw), jobs, seed=S, idle=0.2, bp=0.2)
    n = check(got, expected_of(jobs), max(1, (S - 1).bit_length()), f"SpikeSampler S={S}")
    assert n == sum(len(d) for _, d in jobs)


def test_larger_window_random():
    S, vw, seed = 100, 16, 5
    rng = random.Random(seed)
    jobs = [([rng.randrange(1 << vw) for _ in range(S)], [rng.getrandbits(32) for _ in range(200)]),
            ([0] * 50 + [rng.randrange(1 << vw) for _ in range(50)], [rng.getrandbits(32) for _ in range(100)])]
    got = run(SpikeSampler(S, vw), jobs, seed)
    check(got, expected_of(jobs), 7)


@pytest.mark.parametrize("S", [1, 2, 7, 8, 9, 64])
def test_latency(S):
    dut = SpikeSampler(S, 8)
    out = {}

    async def tb(ctx):
        for i in range(S):
            await amaranth_put(ctx, dut.load, i % 3)
        ctx.set(dut.index.ready, 1)
        ctx.set(dut.draw.payload, 0x9E3779B9)
        ctx.set(dut.draw.valid, 1)
        await ctx.tick().until(dut.draw.ready)
        ctx.set(dut.draw.valid, 0)
        cycles = 1  # the draw was transferred in the cycle before this one
        while not ctx.get(dut.index.valid):
            await ctx.tick()
            cycles += 1
        out["latency"] = cycles
        out["index"] = ctx.get(dut.index.payload)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert out["latency"] == dut.latency == max(1, (S - 1).bit_length()) + 1
    assert out["index"] == reference([i % 3 for i in range(S)], [0x9E3779B9])[0]


def test_fault_injection_is_caught():
    rng = random.Random(3)
    w = [rng.randrange(256) for _ in range(8)]
    jobs = [(w, [rng.getrandbits(32) for _ in range(200)])]
    got = run(SpikeSampler(8, 8, fault="flip_bit0"), jobs, 3)
    with pytest.raises(ScoreboardMismatch, match="first at index"):
        check(got, expected_of(jobs), 3)


def test_bad_parameters():
    with pytest.raises(ValueError, match="S must be"):
        SpikeSampler(0, 8)
    with pytest.raises(ValueError, match=r"value_width must be in 1\.\.21 for S=1024"):
        SpikeSampler(1024, 22)
    with pytest.raises(ValueError, match="fault"):
        SpikeSampler(4, 8, fault="stuck")
