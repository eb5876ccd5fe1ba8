"""cocotb testbench for ``rtl.dot.DotProduct`` (run through :func:`sim.runner.build_and_test`).

``tb_data()`` (computed by pytest from the model, so the simulator imports neither numba nor
Amaranth): ``h_beats`` / ``w_beats`` (packed ``h__payload`` / ``w__payload`` ints, ``beats`` per
row, the masked lanes of each last beat holding random codes), ``expected`` (packed ``acc | ovf
<< acc_width`` per row from ``Datapath.dot``), ``acc_width``, ``beats``, ``latency``, ``idle``,
``backpressure``, ``seed``.  Two :class:`StreamDriver` feed ``h`` and ``w`` independently (the unit
joins them), a :class:`StreamMonitor` collects ``o``; results are compared with ``==``.
"""
import time

import cocotb
from cocotb.clock import Clock

from sim.runner import tb_data, tb_write_out
from sim.scoreboard import check
from sim.stream import StreamDriver, StreamMonitor, reset


async def _start(dut):
    Clock(dut.clk, 10, unit="ns").start()
    await reset(dut, dut.clk)


@cocotb.test()
async def random_rows_vs_model(dut):
    """Random idle cycles on both inputs and back-pressure on the output; every row == the model."""
    cfg = tb_data()
    seed, expected = cfg["seed"], cfg["expected"]
    n = len(expected)
    dut._log.info("DotProduct: seed=%d rows=%d beats/row=%d idle=%.2f backpressure=%.2f",
                  seed, n, cfg["beats"], cfg["idle"], cfg["backpressure"])
    await _start(dut)
    dh = StreamDriver(dut, "h", dut.clk, seed + 1, cfg["idle"])
    dw = StreamDriver(dut, "w", dut.clk, seed + 2, cfg["idle"])
    mon = StreamMonitor(dut, "o", dut.clk, seed + 3, cfg["backpressure"]).start()
    t0 = time.perf_counter()
    th = cocotb.start_soon(dh.send(cfg["h_beats"]))
    tw = cocotb.start_soon(dw.send(cfg["w_beats"]))
    await th
    await tw
    await mon.wait_for(n, timeout_cycles=20 * len(cfg["h_beats"]) + 1000)
    wall = time.perf_counter() - t0
    mon.stop()
    check(mon.items, expected, cfg["acc_width"] + 1, f"DotProduct rows (seed {seed})")
    tb_write_out(rows=n, beats=len(cfg["h_beats"]), seconds=wall)
    dut._log.info("%d rows equal the model (%.0f beats/s)", n, len(cfg["h_beats"]) / wall)


@cocotb.test()
async def back_to_back_rows(dut):
    """No stalls: one row per ``beats`` cycles; the first row's result ``latency`` cycles after
    its last beat (cycle 0 = the cycle in which the first beat is presented and transferred)."""
    cfg = tb_data()
    rows = min(8, len(cfg["expected"]))
    nb = rows * cfg["beats"]
    await _start(dut)
    dh = StreamDriver(dut, "h", dut.clk, 0, 0.0)
    dw = StreamDriver(dut, "w", dut.clk, 0, 0.0)
    mon = StreamMonitor(dut, "o", dut.clk, 0, 0.0).start()
    th = cocotb.start_soon(dh.send(cfg["h_beats"][:nb]))
    tw = cocotb.start_soon(dw.send(cfg["w_beats"][:nb]))
    await th
    await tw
    await mon.wait_for(rows, timeout_cycles=nb + 100)
    mon.stop()
    check(mon.items, cfg["expected"][:rows], cfg["acc_width"] + 1, "DotProduct back-to-back")
    gaps = {b - a for a, b in zip(mon.cycles, mon.cycles[1:])}
    assert gaps <= {cfg["beats"]}, f"rows not one per {cfg['beats']} cycles: gaps {sorted(gaps)}"
    first = cfg["beats"] - 1 + cfg["latency"]
    assert mon.cycles[0] == first, f"first row in cycle {mon.cycles[0]}, expected {first}"
