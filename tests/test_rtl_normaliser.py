"""Normaliser (rtl/normaliser.py) in Amaranth's simulator against fixedpoint.normalise (==)."""
import pytest
from amaranth.sim import Simulator

from fixedpoint.datapath import PRESETS, Datapath
from rtl.normaliser import Normaliser, reference
from sim.regress_units.normaliser import corner_and_random_values
from sim.scoreboard import ScoreboardMismatch, check
from sim.stream import amaranth_sink, amaranth_source, amaranth_timed_sink

SMALL = [("uq2.6", 4), ("uq3.7", 2), ("uq0.10", 16), ("uq10.0", 3), ("uq1.1", 2), ("uq5.5", 10)]


def run(dut, values, seed, idle=0.0, bp=0.0):
    got = []
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(amaranth_source(dut.i, values, seed, idle))
    sim.add_testbench(amaranth_sink(dut.o, len(values), got, seed + 1, bp))
    sim.run()
    return got


def out_width(dut):
    return dut.norm_bits + dut.exp_shape.width + 1


@pytest.mark.parametrize("acc,R", SMALL)
def test_every_input_small_widths(acc, R):
    dp = Datapath(acc_format=acc, norm_bits=R)
    dut = Normaliser(dp)
    values = list(range(1 << dut.acc_width))
    got = run(dut, values, 5, idle=0.2, bp=0.2)
    assert check(got, reference(dp, values), out_width(dut), f"{acc} R={R}") == len(values)


@pytest.mark.parametrize("preset", ["paper", "int-e4m1"])
def test_presets_random(preset):
    dp = PRESETS[preset]
    dut = Normaliser(dp)
    values = corner_and_random_values(dut.acc_width, 1500, 17)
    got = run(dut, values, 9, idle=0.3, bp=0.3)
    check(got, reference(dp, values), out_width(dut), preset)


def test_64_bit_accumulator_wide_norm_bits():
    dp = Datapath(acc_format="uq0.64", norm_bits=40)
    dut = Normaliser(dp)
    values = corner_and_random_values(64, 1000, 3)
    check(run(dut, values, 2), reference(dp, values), out_width(dut))


def test_zero_flag_and_fields():
    dp = PRESETS["paper"]
    dut = Normaliser(dp)
    got = run(dut, [0, 1 << 55, 3], 1)
    R, eb = 24, dut.exp_shape.width
    sig = [g & ((1 << R) - 1) for g in got]
    exp = [(g >> R) & ((1 << eb) - 1) for g in got]
    zero = [g >> (R + eb) for g in got]
    assert zero == [1, 0, 0] and sig == [0, 1 << 23, 3 << 22]
    assert exp[0] == 0 and exp[1] == (-23) & ((1 << eb) - 1)  # 1.0 = 2**23 * 2**-23


def test_latency_and_one_per_cycle():
    dp = PRESETS["int-e4m1"]
    dut = Normaliser(dp)
    values = corner_and_random_values(32, 40, 1)
    seen = {}

    async def source(ctx):
        for v in values:  # back to back
            ctx.set(dut.i.payload, v)
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(source)
    sim.add_testbench(amaranth_timed_sink(dut.o, len(values), seen))
    sim.run()
    check(seen["got"], reference(dp, values), out_width(dut))
    # the first A transfers at the first edge (cycle 0); its result is sampled at edge 0 + latency
    assert dut.latency == 2 and seen["cycles"][0] == dut.latency + 1
    assert seen["cycles"] == list(range(dut.latency + 1, dut.latency + 1 + len(values)))


def test_fault_flag_makes_the_check_fail():
    dp = PRESETS["int-e4m1"]
    values = corner_and_random_values(32, 200, 4)
    got = run(Normaliser(dp, fault="flip_sig0"), values, 4)
    with pytest.raises(ScoreboardMismatch, match="first at index"):
        check(got, reference(dp, values), 64)


def test_bad_parameters():
    with pytest.raises(ValueError, match="Datapath"):
        Normaliser("paper")
    with pytest.raises(ValueError, match="fault"):
        Normaliser(PRESETS["paper"], fault="x")


def test_latency_as_documented():
    """An A transferred in cycle c shows o.valid in cycle c + latency (SpikeRandom's convention)."""
    dp = PRESETS["paper"]
    dut = Normaliser(dp)
    res = {}

    async def tb(ctx):
        ctx.set(dut.o.ready, 1)
        ctx.set(dut.i.payload, 12345)
        ctx.set(dut.i.valid, 1)
        await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)
        cycles = 1
        while not ctx.get(dut.o.valid):
            await ctx.tick()
            cycles += 1
        res["latency"] = cycles
        res["value"] = ctx.get(dut.o.payload.as_value())
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert res["latency"] == dut.latency == 2
    assert [res["value"]] == reference(dp, [12345])
