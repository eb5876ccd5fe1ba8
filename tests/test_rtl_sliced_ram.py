"""rtl.layer.sliced_ram.SlicedRAM in Amaranth's simulator: reads return what was written (==), and
the slicing follows sbs_model.hwcost (one block-RAM shape per slice)."""
import random

import pytest
from amaranth.hdl import Fragment
from amaranth.sim import Simulator

from rtl.layer.sliced_ram import SlicedRAM
from sbs_model.hwcost import ram_is_sliced, ram_slice_bits, sliced_ram_cost


@pytest.mark.parametrize("width,depth", [(26, 1280), (7, 3000), (5, 600)])
def test_reads_what_was_written(width, depth):
    rng = random.Random(width * 7 + depth)
    dut = SlicedRAM(width, depth)
    addrs = rng.sample(range(depth), 200) + [0, depth - 1]
    words = {a: rng.getrandbits(width) for a in addrs}
    words[addrs[0]] = (1 << width) - 1
    got = {}

    async def tb(ctx):
        for a, w in words.items():
            ctx.set(dut.wr_en, 1)
            ctx.set(dut.wr_addr, a)
            ctx.set(dut.wr_data, w)
            await ctx.tick()
        ctx.set(dut.wr_en, 0)
        for a in words:
            ctx.set(dut.rd_addr, a)
            await ctx.tick()
            got[a] = ctx.get(dut.rd_data)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert got == words


def test_slicing_follows_the_cost_model():
    assert not ram_is_sliced(1024) and ram_is_sliced(1025) and ram_is_sliced(16384) and not ram_is_sliced(16385)
    dut = SlicedRAM(26, 6656)          # the layer-2 sampler's first step memory
    assert dut.sliced and dut.slice_bits == ram_slice_bits(6656) == 2 and dut.slices == 13
    assert sliced_ram_cost(6656, 26).bram == 13
    small = SlicedRAM(26, 1000)
    assert small.slices == 1
    for d in (dut, small):
        Fragment.get(d, None)


def test_bad_parameters():
    with pytest.raises(ValueError, match="width must be"):
        SlicedRAM(0, 8)
    with pytest.raises(ValueError, match="depth must be"):
        SlicedRAM(4, 1)
