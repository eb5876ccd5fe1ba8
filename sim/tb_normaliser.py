"""cocotb testbench for ``rtl.normaliser.Normaliser`` (run through :func:`sim.runner.build_and_test`).

``tb_data()``: ``values`` (accumulator values A), ``expected`` (packed ``sig | exp << R | zero <<
(R + exp_bits)`` from ``fixedpoint.normalise``, computed by pytest), ``out_width``, ``latency``,
``idle``, ``backpressure``, ``seed``.  Compared with ``==``.
"""
import cocotb
from cocotb.clock import Clock

from sim.runner import tb_data, tb_write_out
from sim.scoreboard import check
from sim.stream import StreamDriver, StreamMonitor, reset


async def _start(dut):
    Clock(dut.clk, 10, unit="ns").start()
    await reset(dut, dut.clk)


@cocotb.test()
async def random_values_vs_model(dut):
    cfg = tb_data()
    seed, values, expected = cfg["seed"], cfg["values"], cfg["expected"]
    dut._log.info("Normaliser: seed=%d n=%d idle=%.2f backpressure=%.2f", seed, len(values), cfg["idle"],
                  cfg["backpressure"])
    await _start(dut)
    drv = StreamDriver(dut, "i", dut.clk, seed + 1, cfg["idle"])
    mon = StreamMonitor(dut, "o", dut.clk, seed + 2, cfg["backpressure"]).start()
    await drv.send(values)
    await mon.wait_for(len(values), timeout_cycles=20 * len(values) + 1000)
    mon.stop()
    n = check(mon.items, expected, cfg["out_width"], f"Normaliser (seed {seed})")
    tb_write_out(vectors=n)


@cocotb.test()
async def back_to_back_latency(dut):
    """No stalls: one result per cycle, the first ``latency`` cycles after the first input."""
    cfg = tb_data()
    values, expected = cfg["values"][:32], cfg["expected"][:32]
    await _start(dut)
    drv = StreamDriver(dut, "i", dut.clk, 0, 0.0)
    mon = StreamMonitor(dut, "o", dut.clk, 0, 0.0).start()
    await drv.send(values)
    await mon.wait_for(len(values), timeout_cycles=200)
    mon.stop()
    check(mon.items, expected, cfg["out_width"], "Normaliser back-to-back")
    gaps = {b - a for a, b in zip(mon.cycles, mon.cycles[1:])}
    assert gaps == {1}, f"outputs not one per cycle: gaps {sorted(gaps)}"
    assert mon.cycles[0] == cfg["latency"], f"first output in cycle {mon.cycles[0]}, expected {cfg['latency']}"
