"""rtl.layer.sampler_pipe / rtl.layer.spikegen in Amaranth's simulator against fixedpoint.rng (==)."""
import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from fixedpoint.rng import sample_index_int, spike_random
from rtl.layer.sampler_pipe import PipelinedSampler, reference, trailing_ones
from rtl.layer.spikegen import SpikeGenerator


def windows_for(S, slots, vw, rng):
    out = []
    for k in range(slots):
        kind = k % 4
        if kind == 0:
            w = [0] * S                                   # all zero: uniform draw
        elif kind == 1:
            w = [rng.randrange(1 << vw) for _ in range(S)]
        elif kind == 2:
            w = [rng.randrange(1 << vw) if rng.random() < 0.2 else 0 for _ in range(S)]
        else:
            w = [0] * S
            w[rng.randrange(S)] = rng.randrange(1, 1 << vw)   # a single non-zero value
        out.append(w)
    return out


async def write_windows(ctx, dut, windows):
    for k, w in enumerate(windows):
        cum = np.cumsum(np.asarray(w, dtype=np.int64))
        for s, c in enumerate(cum):
            ctx.set(dut.wr_en, 1)
            ctx.set(dut.wr_slot, k)
            ctx.set(dut.wr_s, s)
            ctx.set(dut.wr_cum, int(c))
            await ctx.tick()
    ctx.set(dut.wr_en, 0)


# (300, 5): the first step memory is 5 * 256 = 1280 words deep, stored in bit slices (rtl.layer.sliced_ram)
@pytest.mark.parametrize("S,slots", [(1, 2), (5, 3), (8, 4), (25, 5), (96, 3), (300, 5)])
def test_pipelined_sampler_equals_model(S, slots):
    rng = random.Random(S * 31 + slots)
    vw = 8
    cw = vw + max(1, (S - 1).bit_length())
    dut = PipelinedSampler(S, cw, slots)
    windows = windows_for(S, slots, vw, rng)
    draws = [rng.getrandbits(32) for _ in range(60)] + [0, 0xFFFFFFFF]
    ks = [rng.randrange(slots) for _ in draws]
    # zero window (slot 0), draws whose (r*S) >> 32 needs the carry of the low half r_lo*S
    carry = [r for r in (rng.getrandbits(32) for _ in range(20000)) if ((r >> 16) * S) >> 16 != (r * S) >> 32][:6]
    draws, ks = draws + carry, ks + [0] * len(carry)
    got, when = [], []

    async def tb(ctx):
        await write_windows(ctx, dut, windows)
        cycle = 0
        for r, k in zip(draws + [None] * (dut.latency + 2), ks + [0] * (dut.latency + 2)):
            ctx.set(dut.i_valid, r is not None)
            ctx.set(dut.i_r, r or 0)
            ctx.set(dut.i_slot, k)
            _, _, ov, oi = await ctx.tick().sample(dut.o_valid, dut.o_index)
            if ov:
                got.append(int(oi))
                when.append(cycle)
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert got == reference(windows, draws, ks)
    assert when[0] == dut.latency and when == list(range(dut.latency, dut.latency + len(draws)))


def test_trailing_ones():
    assert [trailing_ones(s) for s in range(8)] == [0, 1, 0, 2, 0, 1, 0, 3]


def run_generator(dut, windows, seed, pattern, ip_base, ready_p, rng, prime_check=True):
    n = len(windows)
    got = []
    info = {}

    async def tb(ctx):
        await write_windows(ctx, dut, windows)
        ctx.set(dut.start, 1)
        ctx.set(dut.seed, seed)
        ctx.set(dut.pattern, pattern)
        ctx.set(dut.ip_base, ip_base)
        ctx.set(dut.n_active, n)
        await ctx.tick()
        ctx.set(dut.start, 0)
        cycle = 0
        while len(got) < n * dut.T:
            rdy = "primed" in info and rng.random() < ready_p
            ctx.set(dut.o.ready, rdy)
            _, _, ov, op, pr = await ctx.tick().sample(dut.o.valid, dut.o.payload, dut.primed)
            cycle += 1
            if pr and "primed" not in info:
                info["primed"] = cycle
            if ov and rdy:
                got.append(int(op))
            assert cycle < 20 * n * dut.T + 500, "SpikeGenerator: timeout"
        ctx.set(dut.o.ready, 0)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return got, info


def model_indices(windows, seed, pattern, layer, ip_base, T):
    out = []
    for t in range(T):
        for k, w in enumerate(windows):
            r = spike_random(seed, pattern, layer, ip_base + k, t)
            out.append(int(sample_index_int(np.cumsum(np.asarray(w, dtype=np.int64)), r)))
    return out


@pytest.mark.parametrize("S,slots,T,ready_p", [(25, 4, 7, 1.0), (96, 3, 5, 0.5), (12, 5, 30, 0.9)])
def test_spike_generator_equals_model(S, slots, T, ready_p):
    rng = random.Random(S + T)
    vw = 8
    cw = vw + (S - 1).bit_length()
    dut = SpikeGenerator(S, cw, T, slots, layer_index=3)
    windows = windows_for(S, slots, vw, rng)
    seed, pattern, base = rng.getrandbits(32), rng.randrange(60000), rng.randrange(1000)
    got, info = run_generator(dut, windows, seed, pattern, base, ready_p, rng)
    assert got == model_indices(windows, seed, pattern, 3, base, T)
    # the FIFO fills without stalls: primed when the PRIME-th index is in it
    assert info["primed"] == dut.prime_cycles(slots)


def test_spike_generator_fault_is_seen():
    rng = random.Random(1)
    dut = SpikeGenerator(12, 12, 8, 3, layer_index=1, fault="flip_bit0")
    windows = windows_for(12, 3, 8, rng)
    got, _ = run_generator(dut, windows, 7, 9, 0, 1.0, rng)
    assert got != model_indices(windows, 7, 9, 1, 0, 8)
