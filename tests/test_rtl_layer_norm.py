"""rtl.layer.norm_pipe.NormalisePipe in Amaranth's simulator == fixedpoint.normalise (through
rtl.normaliser.reference's packing), one input per cycle at latency 3."""
import random

import pytest
from amaranth.sim import Simulator

from fixedpoint.datapath import PRESETS
from rtl.layer.norm_pipe import NormalisePipe
from rtl.normaliser import reference


@pytest.mark.parametrize("name", ["int-e4m1", "int-uq0.8"])
def test_normalise_pipe_equals_model(name):
    dp = PRESETS[name]
    dut = NormalisePipe(dp)
    w = dut.acc_width
    rng = random.Random(5)
    vals = [0, 1, (1 << w) - 1] + [1 << p for p in range(w)] + [(1 << p) - 1 for p in range(1, w)]
    vals += [(1 << p) + 1 for p in range(1, w - 1)] + [rng.getrandbits(rng.randint(1, w)) for _ in range(300)]
    got = []

    async def tb(ctx):
        for k in range(len(vals) + dut.latency):
            if k < len(vals):
                ctx.set(dut.i.payload, vals[k])
                ctx.set(dut.i.valid, 1)
            else:
                ctx.set(dut.i.valid, 0)
            await ctx.tick()
            if k + 1 >= dut.latency:
                assert ctx.get(dut.o.valid) == (k + 1 - dut.latency < len(vals))
                got.append(int(ctx.get(dut.o.payload.as_value())))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert got[:len(vals)] == reference(dp, vals)


def test_bad_datapath_is_refused():
    with pytest.raises(ValueError, match="dp must be"):
        NormalisePipe("int-e4m1")
