"""SpikeRandom (rtl/rng.py) in Amaranth's simulator against fixedpoint.rng.spike_random (==)."""
import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from fixedpoint.rng import spike_random
from rtl.rng import MODES, SpikeRandom, pack_request
from sim.scoreboard import ScoreboardMismatch, check
from sim.stream import amaranth_sink, amaranth_source

CORNERS = [
    (0, 0, 0, 0, 0),
    (0xFFFFFFFF, 0xFFFFFFFF, 255, (1 << 24) - 1, 0xFFFFFFFF),
    (0x13198A2E, 0x03707344, 0, 0, 0),  # pieces of Random123 known-answer keys
    (0x243F6A88, 0x85A308D3, 255, 0, 1),
    (1, 0, 0, 1, 0),
    (0, 1, 1, 0, 0xFFFFFFFF),
    (0xDEADBEEF, 7, 3, 12345, 999),
]


def vectors(n, seed):
    rng = random.Random(seed)
    out = list(CORNERS)
    while len(out) < n:
        out.append((rng.getrandbits(32), rng.getrandbits(32), rng.randrange(256),
                    rng.randrange(1 << 24), rng.getrandbits(32)))
    return out


def expected_of(vecs):
    a = np.array(vecs, dtype=np.uint64).T
    return [int(v) for v in spike_random(a[0], a[1], a[2], a[3], a[4])]


def run(dut, vecs, seed, idle=0.0, bp=0.0):
    got = []
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(amaranth_source(dut.i, [pack_request(*v) for v in vecs], seed, idle))
    sim.add_testbench(amaranth_sink(dut.o, len(vecs), got, seed + 1, bp))
    sim.run()
    return got


@pytest.mark.parametrize("mode,n", [("pipelined", 2000), ("iterative", 150)])
def test_matches_model_with_stalls(mode, n):
    seed = 1234
    vecs = vectors(n, seed)
    got = run(SpikeRandom(mode), vecs, seed, idle=0.3, bp=0.3)
    assert check(got, expected_of(vecs), 32, f"SpikeRandom[{mode}] seed={seed}") == n


def _first_output_cycle(dut):
    """L such that a request transferred in cycle c shows o.valid in cycle c + L."""
    result = {}

    async def tb(ctx):
        ctx.set(dut.o.ready, 1)
        ctx.set(dut.i.payload.as_value(), pack_request(1, 2, 3, 4, 5))
        ctx.set(dut.i.valid, 1)
        await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)
        cycles = 1  # the cycle in which the transfer happened counts as cycle 0 -> 1 after it
        while not ctx.get(dut.o.valid):
            await ctx.tick()
            cycles += 1
        result["latency"] = cycles
        result["value"] = ctx.get(dut.o.payload)
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return result


@pytest.mark.parametrize("mode", MODES)
def test_latency(mode):
    dut = SpikeRandom(mode)
    res = _first_output_cycle(dut)
    assert res["latency"] == dut.latency == {"pipelined": 20, "iterative": 21}[mode]
    assert res["value"] == int(spike_random(1, 2, 3, 4, 5))


def test_pipelined_throughput_one_per_cycle():
    dut = SpikeRandom("pipelined")
    vecs = vectors(64, 7)
    cycles = {}

    async def source(ctx):
        for v in vecs:  # back to back, no idle cycles
            ctx.set(dut.i.payload.as_value(), pack_request(*v))
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)

    async def sink(ctx):
        ctx.set(dut.o.ready, 1)
        got = []
        n = 0
        while len(got) < len(vecs):
            _, _, payload, valid = await ctx.tick().sample(dut.o.payload, dut.o.valid)
            n += 1
            if valid:
                got.append(payload)
        cycles["n"] = n
        cycles["got"] = got

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(source)
    sim.add_testbench(sink)
    sim.run()
    check(cycles["got"], expected_of(vecs), 32)
    assert cycles["n"] == len(vecs) + dut.latency


def test_fault_injection_is_caught():
    vecs = vectors(300, 99)
    exp = expected_of(vecs)
    got = run(SpikeRandom("pipelined", fault="flip_bit3"), vecs, 99)
    with pytest.raises(ScoreboardMismatch, match="first at index"):
        check(got, exp, 32)
    bad = [i for i in range(len(exp)) if got[i] != exp[i]]
    assert all(got[i] ^ exp[i] == 8 for i in bad)


def test_bad_parameters():
    with pytest.raises(ValueError, match="mode"):
        SpikeRandom("unrolled")
    with pytest.raises(ValueError, match="fault"):
        SpikeRandom(fault="flip_bit9")
    with pytest.raises(ValueError, match="layer must be in 0..255"):
        pack_request(0, 0, 256, 0, 0)
