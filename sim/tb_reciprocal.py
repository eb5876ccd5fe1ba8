"""cocotb testbench for ``rtl.reciprocal.Reciprocal`` (run through :func:`sim.runner.build_and_test`).

``tb_data()``: ``inputs`` (sig_r values), ``expected`` (``fixedpoint.reciprocal.reciprocal``),
``y_width``, ``idle``, ``backpressure``, ``seed``.  Inputs go in with random idle cycles, Y comes out
with random back-pressure; every Y is compared with ``==``.
"""
import cocotb
from cocotb.clock import Clock

from sim.runner import tb_data, tb_write_out
from sim.scoreboard import check
from sim.stream import StreamDriver, StreamMonitor, reset


@cocotb.test()
async def reciprocal_vs_model(dut):
    cfg = tb_data()
    seed, xs = cfg["seed"], cfg["inputs"]
    dut._log.info("Reciprocal: seed=%d n=%d idle=%.2f backpressure=%.2f", seed, len(xs), cfg["idle"],
                  cfg["backpressure"])
    Clock(dut.clk, 10, unit="ns").start()
    await reset(dut, dut.clk)
    drv = StreamDriver(dut, "i", dut.clk, seed + 1, cfg["idle"])
    mon = StreamMonitor(dut, "o", dut.clk, seed + 2, cfg["backpressure"]).start()
    await drv.send(xs)
    await mon.wait_for(len(xs), timeout_cycles=100 * len(xs) + 1000)
    mon.stop()
    n = check(mon.items, cfg["expected"], cfg["y_width"], f"Reciprocal Y (seed {seed})")
    tb_write_out(values=n)
