"""cocotb testbench for ``rtl.rng.SpikeRandom`` (run through :func:`sim.runner.build_and_test`).

The host (pytest) computes everything from the model and passes it in ``tb_data()``:
``requests`` (packed ``i__payload`` ints), ``expected`` (``fixedpoint.rng.spike_random`` draws),
``idle`` / ``backpressure`` probabilities, ``latency`` (the unit's documented latency) and ``seed``
(for the stall patterns).  The testbench imports neither numba nor Amaranth, so the simulator
starts fast; it only drives, monitors and compares with ``==`` (``sim.scoreboard.check``).
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
async def random_stream_vs_model(dut):
    """Random idle cycles and back-pressure; every draw == the model's."""
    cfg = tb_data()
    seed, requests, expected = cfg["seed"], cfg["requests"], cfg["expected"]
    n = len(requests)
    dut._log.info("SpikeRandom random stream: seed=%d n=%d idle=%.2f backpressure=%.2f",
                  seed, n, cfg["idle"], cfg["backpressure"])
    await _start(dut)
    drv = StreamDriver(dut, "i", dut.clk, seed + 1, cfg["idle"])
    mon = StreamMonitor(dut, "o", dut.clk, seed + 2, cfg["backpressure"]).start()
    t0 = time.perf_counter()
    await drv.send(requests)
    await mon.wait_for(n, timeout_cycles=50 * n + 1000)
    wall = time.perf_counter() - t0
    mon.stop()
    check(mon.items, expected, 32, f"SpikeRandom draws (seed {seed})")
    tb_write_out(vectors=n, seconds=wall, vectors_per_second=n / wall)
    dut._log.info("%d draws equal the model; %.0f vectors/s", n, n / wall)


@cocotb.test()
async def back_to_back_one_per_cycle(dut):
    """No idle, no back-pressure: one draw per cycle, the first after the documented latency."""
    cfg = tb_data()
    requests, expected = cfg["requests"][:32], cfg["expected"][:32]
    n = len(requests)
    await _start(dut)
    drv = StreamDriver(dut, "i", dut.clk, 0, 0.0)
    mon = StreamMonitor(dut, "o", dut.clk, 0, 0.0).start()
    await drv.send(requests)
    await mon.wait_for(n, timeout_cycles=200)
    mon.stop()
    check(mon.items, expected, 32, "SpikeRandom back-to-back")
    gaps = {b - a for a, b in zip(mon.cycles, mon.cycles[1:])}
    assert gaps == {1}, f"outputs not one per cycle: gaps {sorted(gaps)}"
    # cycle 0 = the cycle in which the first request is presented (and transferred)
    assert mon.cycles[0] == cfg["latency"], \
        f"first output in cycle {mon.cycles[0]}, expected the latency {cfg['latency']}"
