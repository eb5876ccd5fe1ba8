"""rtl.layer.weight_rom.WeightROM in Amaranth's simulator: both ports == the ROM's words at the
documented latencies (update port 1 cycle, dot port D_LATENCY) for random addresses every cycle: one
slice, several slices, bits constant in every word, a ROM deeper than one bank (16384 words)."""
import random

import pytest
from amaranth.sim import Simulator

from rtl.layer.weight_rom import D_LATENCY, WeightROM, slice_bits, varying_bits


def test_slice_bits_is_the_widest_block_ram_shape_that_deep():
    assert [slice_bits(d) for d in (25, 1024, 1025, 3200, 13824, 16384, 20000)] == [18, 18, 9, 4, 1, 1, 1]
    assert varying_bits([0b1010, 0b1110, 0b1000], 4) == [1, 2]


@pytest.mark.parametrize("n_words,width,fixed", [(100, 20, 0), (1300, 20, 0b101), (3200, 12, 0), (13824, 5, 0b10000),
                                                 (17000, 3, 0)])
def test_ports_return_the_words_at_their_latencies(n_words, width, fixed):
    rng = random.Random(n_words * 31 + width)
    words = [(rng.randrange(1 << width) & ~fixed) | (fixed & 0b100) for _ in range(n_words)]  # bits of fixed: constant
    rom = WeightROM(words, width)
    assert len(rom.bits) == width - bin(fixed).count("1")
    assert rom.slices == -(-len(rom.bits) // slice_bits(min(n_words, 16384))) and rom.banks == -(-n_words // 16384)
    cycles = 200
    ua = [rng.randrange(n_words) for _ in range(cycles)]
    da = [rng.randrange(n_words) for _ in range(cycles)]
    got_u, got_d = [], []

    async def tb(ctx):
        for c in range(cycles):
            ctx.set(rom.u_addr, ua[c])
            ctx.set(rom.d_addr, da[c])
            _, _, u, d = await ctx.tick().sample(rom.u_data, rom.d_data)
            got_u.append(int(u))
            got_d.append(int(d))

    sim = Simulator(rom)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    # sample() gives the values of the cycle just ended: the update port's word of address c appears
    # one cycle after c, the dot port's D_LATENCY cycles after
    assert got_u[1:] == [words[a] for a in ua[:-1]]
    assert got_d[D_LATENCY:] == [words[a] for a in da[:-D_LATENCY]]
