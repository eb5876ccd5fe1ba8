"""ScheduleTable (rtl/schedule.py): ROM contents read back in Amaranth's simulator == dp.tables."""
import dataclasses
import gc

import pytest
from amaranth.sim import Simulator

from fixedpoint.datapath import Datapath
from fixedpoint.schedule import Schedule
from rtl.schedule import ScheduleTable

INT = Datapath.preset("int-e4m1")


def read_all(dut):
    out = []

    async def tb(ctx):
        for t in range(dut.T):
            ctx.set(dut.addr, t)
            await ctx.tick()  # synchronous read: data of addr t after one edge
            out.append((ctx.get(dut.C), ctx.get(dut.G)))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return out


@pytest.mark.parametrize("T,schedule,kw", [
    (1, Schedule(), {}),
    (50, Schedule(), {}),
    (40, Schedule(eps0=0.5, kind="constant"), dict(c_bits=12, g_bits=20)),
    (64, Schedule(eps0=2.0, cooldown_after=30), dict(c_bits=16, g_bits=14)),
])
def test_rom_equals_model_tables(T, schedule, kw):
    dp = dataclasses.replace(INT, **kw)
    dut = ScheduleTable(dp, T, schedule)
    tab = dp.tables(T, schedule)
    got = read_all(dut)
    assert got == [(int(c), int(g)) for c, g in zip(tab.C, tab.G)]
    assert dut.latency == 1


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")  # never elaborated
def test_words_layout():
    dut = ScheduleTable(INT, 3)
    tab = INT.tables(3)
    assert dut.words() == [(int(g) << 16) | int(c) for c, g in zip(tab.C, tab.G)]
    one = ScheduleTable(INT, 1)
    assert one.words()[1] == 0  # padded to depth 2
    del dut, one
    gc.collect()  # only their words() were used: Amaranth's warning fires here, under the filter


def test_bad_T():
    with pytest.raises(ValueError, match="T must be"):
        ScheduleTable(INT, 0)
