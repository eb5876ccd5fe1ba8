"""cocotb testbench for ``rtl.update.UpdateUnit`` (run through :func:`sim.runner.build_and_test`).

``tb_data()``: ``spikes`` = list of ``{"coef": coef payload, "beats": [i payloads], "expected":
[payload of each output beat]}`` (from ``rtl.update.reference``: the model's new h codes packed
L per beat), ``width`` (bits of one output beat), ``idle``, ``backpressure``, ``seed``.  Per spike the
coefficient goes first (the unit takes it once its pipeline is empty), then the beats with random
idle cycles; the monitor applies random back-pressure.  Every output beat is compared with ``==``.
"""
import cocotb
from cocotb.clock import Clock

from sim.runner import tb_data, tb_write_out
from sim.scoreboard import check
from sim.stream import StreamDriver, StreamMonitor, reset


@cocotb.test()
async def update_vs_model(dut):
    cfg = tb_data()
    seed, spikes = cfg["seed"], cfg["spikes"]
    n = sum(len(s["beats"]) for s in spikes)
    dut._log.info("UpdateUnit: seed=%d spikes=%d beats=%d", seed, len(spikes), n)
    Clock(dut.clk, 10, unit="ns").start()
    await reset(dut, dut.clk)
    coef = StreamDriver(dut, "coef", dut.clk, seed + 1, cfg["idle"])
    beats = StreamDriver(dut, "i", dut.clk, seed + 2, cfg["idle"])
    mon = StreamMonitor(dut, "o", dut.clk, seed + 3, cfg["backpressure"]).start()
    for s in spikes:
        await coef.send([s["coef"]])
        await beats.send(s["beats"])
    await mon.wait_for(n, timeout_cycles=20 * n + 1000)
    mon.stop()
    k = check(mon.items, [b for s in spikes for b in s["expected"]], cfg["width"], f"UpdateUnit beats (seed {seed})")
    tb_write_out(beats=k)
