"""Reciprocal (rtl/reciprocal.py) in Amaranth's simulator against fixedpoint.reciprocal (==)."""
import dataclasses
import random

import pytest
from amaranth.sim import Simulator

from fixedpoint.datapath import Datapath
from rtl.reciprocal import Reciprocal, reference
from sim.scoreboard import ScoreboardMismatch, check
from sim.stream import amaranth_put, amaranth_sink, amaranth_source

INT = Datapath.preset("int-e4m1")


def dp_of(**kw):
    return dataclasses.replace(INT, **kw)


def run(dut, sigs, seed, idle=0.0, bp=0.0):
    got = []
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(amaranth_source(dut.i, sigs, seed, idle))
    sim.add_testbench(amaranth_sink(dut.o, len(sigs), got, seed + 1, bp))
    sim.run()
    return got


def all_sigs(R):
    return [0] + list(range(1 << (R - 1), 1 << R))


@pytest.mark.parametrize("kw", [
    dict(norm_bits=6, recip_bits=8, recip_method="div", recip_rounding="rne"),
    dict(norm_bits=6, recip_bits=8, recip_method="div", recip_rounding="trunc"),
    dict(norm_bits=7, recip_bits=5, recip_method="div", recip_rounding="rna"),
    dict(norm_bits=8, recip_bits=10, recip_method="nr", lut_bits=3, nr_iters=2),
    dict(norm_bits=6, recip_bits=9, recip_method="nr", lut_bits=2, nr_iters=0),
    dict(norm_bits=9, recip_bits=12, recip_method="nr", lut_bits=4, nr_iters=1),
])
def test_every_input_small_widths(kw):
    dp = dp_of(**kw)
    sigs = all_sigs(dp.norm_bits)
    got = run(Reciprocal(dp), sigs, seed=7, idle=0.1, bp=0.1)
    assert check(got, reference(dp, sigs), dp.recip_bits + 1, f"Reciprocal {kw}") == len(sigs)


@pytest.mark.parametrize("method", ["div", "nr"])
def test_random_r16(method):
    dp = dp_of(recip_method=method)  # R = 16, Qb = 16 (the int presets)
    rng = random.Random(16)
    R = dp.norm_bits
    sigs = [1 << (R - 1), (1 << R) - 1, (1 << (R - 1)) + 1, 0] + [rng.randrange(1 << (R - 1), 1 << R)
                                                                 for _ in range(150)]
    got = run(Reciprocal(dp), sigs, seed=3)
    check(got, reference(dp, sigs), 17, f"Reciprocal {method} R=16")
    if method == "div":  # sig = 2**(R-1) -> exactly 2**Qb (the Qb+1-bit output is needed)
        assert max(got) == 1 << 16


@pytest.mark.parametrize("method", ["div", "nr"])
def test_latency(method):
    dp = dp_of(recip_method=method)
    dut = Reciprocal(dp)
    out = {}

    async def tb(ctx):
        ctx.set(dut.o.ready, 1)
        await amaranth_put(ctx, dut.i, 40000)
        cycles = 1  # the input was transferred in the cycle before this one
        while not ctx.get(dut.o.valid):
            await ctx.tick()
            cycles += 1
        out["latency"] = cycles
        out["y"] = ctx.get(dut.o.payload)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert out["latency"] == dut.latency == (18 if method == "div" else dp.nr_iters + 1)
    assert out["y"] == reference(dp, [40000])[0]


def test_fault_flag_is_caught():
    dp = dp_of(norm_bits=6, recip_bits=8)
    sigs = all_sigs(6)
    got = run(Reciprocal(dp, fault="flip_bit0"), sigs, seed=1)
    with pytest.raises(ScoreboardMismatch, match="first at index"):
        check(got, reference(dp, sigs), 9)


def test_bad_parameters():
    with pytest.raises(ValueError, match="update must be 'int'"):
        Reciprocal(Datapath.preset("paper"))
    with pytest.raises(ValueError, match="fault"):
        Reciprocal(INT, fault="nope")
