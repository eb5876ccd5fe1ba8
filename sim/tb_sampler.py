"""cocotb testbench for ``rtl.sampler.SpikeSampler`` (run through :func:`sim.runner.build_and_test`).

``tb_data()``: ``jobs`` = list of ``{"values": [...], "draws": [...], "expected": [...]}`` (one
window each, ``expected`` from ``fixedpoint.rng.sample_index_int``), ``index_width``, ``idle``,
``backpressure`` and ``seed``.  Per job: load the window through ``load``, send its draws through
``draw`` while the monitor takes indices from ``index`` with random back-pressure, then wait for all
indices before the next window (the unit's protocol).  All indices are compared with ``==``.
"""
import cocotb
from cocotb.clock import Clock

from sim.runner import tb_data, tb_write_out
from sim.scoreboard import check
from sim.stream import StreamDriver, StreamMonitor, reset


@cocotb.test()
async def windows_vs_model(dut):
    cfg = tb_data()
    seed, jobs = cfg["seed"], cfg["jobs"]
    dut._log.info("SpikeSampler: seed=%d windows=%d draws=%d idle=%.2f backpressure=%.2f", seed,
                  len(jobs), sum(len(j["draws"]) for j in jobs), cfg["idle"], cfg["backpressure"])
    Clock(dut.clk, 10, unit="ns").start()
    await reset(dut, dut.clk)
    load = StreamDriver(dut, "load", dut.clk, seed + 1, cfg["idle"])
    draw = StreamDriver(dut, "draw", dut.clk, seed + 2, cfg["idle"])
    mon = StreamMonitor(dut, "index", dut.clk, seed + 3, cfg["backpressure"]).start()
    expected = []
    for job in jobs:
        await load.send(job["values"])
        await draw.send(job["draws"])
        expected += job["expected"]
        await mon.wait_for(len(expected), timeout_cycles=100 * len(job["draws"]) + 1000)
    mon.stop()
    n = check(mon.items, expected, cfg["index_width"], f"SpikeSampler indices (seed {seed})")
    tb_write_out(draws=n)
