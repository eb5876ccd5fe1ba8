"""rtl.layer.index_fifo.IndexFifo against amaranth.lib.fifo.SyncFIFOBuffered, cycle by cycle (==)."""
import random

import pytest
from amaranth import Module
from amaranth.lib import fifo
from amaranth.sim import Simulator

from rtl.layer.index_fifo import IndexFifo


def run_side_by_side(depth: int, width: int, cycles: int, p_write: float, p_read: float, seed: int):
    """Drive both FIFOs with the same writes (never into a full queue) and reads; return the
    per-cycle ``(level, r_rdy, r_data if r_rdy)`` of each and the number of entries taken."""
    m = Module()
    m.submodules.dut = dut = IndexFifo(width, depth)
    m.submodules.ref = ref = fifo.SyncFIFOBuffered(width=width, depth=depth)
    rng = random.Random(seed)
    got, want, taken = [], [], [0]

    async def bench(ctx):
        for _ in range(cycles):
            level = ctx.get(ref.level)
            we = int(level < depth and rng.random() < p_write)
            re = int(rng.random() < p_read)
            data = rng.randrange(1 << width)
            if we:
                assert ctx.get(ref.w_rdy), "the reference refused a write below its depth"
            for f in (dut, ref):
                ctx.set(f.w_en, we)
                ctx.set(f.w_data, data)
                ctx.set(f.r_en, re)
            for f, out in ((dut, got), (ref, want)):
                rdy = ctx.get(f.r_rdy)
                out.append((ctx.get(f.level), rdy, ctx.get(f.r_data) if rdy else None))
            taken[0] += re & ctx.get(ref.r_rdy)
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return got, want, taken[0]


@pytest.mark.parametrize("depth,p_write,p_read", [
    (4, 0.7, 0.5),      # the smallest queue
    (8, 0.9, 0.2),      # mostly full: writes wait for the level to drop
    (16, 0.5, 0.9),     # mostly empty: every entry passes the output register at once
    (64, 0.8, 0.6),     # the spike generator's size for the reference network
])
def test_index_fifo_equals_sync_fifo_buffered(depth, p_write, p_read):
    seed = 1000 + depth
    got, want, taken = run_side_by_side(depth, 7, 1500, p_write, p_read, seed)
    assert taken > 100, f"seed {seed}: too little traffic to test anything ({taken} entries)"
    if p_write > p_read:
        assert any(level == depth for level, _, _ in want), f"seed {seed}: the queue was never full"
    for c, (g, w) in enumerate(zip(got, want)):
        assert g == w, f"seed {seed}, cycle {c}: IndexFifo (level, r_rdy, r_data) {g}, SyncFIFOBuffered {w}"


@pytest.mark.parametrize("depth", [0, 1, 2, 3, 12])
def test_index_fifo_refuses_a_depth_that_is_not_a_power_of_two(depth):
    with pytest.raises(ValueError, match="depth must be a power of two >= 4"):
        IndexFifo(4, depth)
