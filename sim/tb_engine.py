"""cocotb testbench for ``rtl.engine.IPEngine`` (run through :func:`sim.runner.build_and_test`).

``tb_data()``: ``jobs`` = list of ``{"job": packed job payload, "window": [S ints], "expected":
[N h codes from rtl.engine.reference_ip], "cycles": engine_cycles of that IP}``, ``h_width``,
``idle``, ``backpressure``, ``check_cycles`` and ``seed``.  One coroutine sends every job and its
window back to back (the job driver waits while the engine is busy); the monitor takes h codes
with random back-pressure.  All codes are compared with ``==``; with ``check_cycles`` (no idle, no
back-pressure) the distance between the last h codes of consecutive IPs must be the model's
cycle count + 1 (the next job transfers in the cycle after the previous IP's last code).
"""
import cocotb
from cocotb.clock import Clock

from sim.runner import tb_data, tb_write_out
from sim.scoreboard import check
from sim.stream import StreamDriver, StreamMonitor, reset


@cocotb.test()
async def ips_vs_model(dut):
    cfg = tb_data()
    seed, jobs = cfg["seed"], cfg["jobs"]
    n_h = sum(len(j["expected"]) for j in jobs)
    dut._log.info("IPEngine: seed=%d IPs=%d h codes=%d idle=%.2f backpressure=%.2f", seed, len(jobs), n_h,
                  cfg["idle"], cfg["backpressure"])
    Clock(dut.clk, 10, unit="ns").start()
    await reset(dut, dut.clk)
    job = StreamDriver(dut, "job", dut.clk, seed + 1, cfg["idle"])
    win = StreamDriver(dut, "window", dut.clk, seed + 2, cfg["idle"])
    mon = StreamMonitor(dut, "h_out", dut.clk, seed + 3, cfg["backpressure"]).start()

    async def feed():
        for j in jobs:
            await job.send([j["job"]])
            await win.send(j["window"])

    cocotb.start_soon(feed())
    budget = sum(3 * j["cycles"] + 50 * len(j["window"]) + 1000 for j in jobs)
    await mon.wait_for(n_h, timeout_cycles=budget)
    mon.stop()
    expected = [c for j in jobs for c in j["expected"]]
    n = check(mon.items, expected, cfg["h_width"], f"IPEngine h codes (seed {seed})")
    ends, k = [], 0
    for j in jobs:
        k += len(j["expected"])
        ends.append(mon.cycles[k - 1])
    if cfg["check_cycles"]:
        gaps = [b - a for a, b in zip(ends, ends[1:])]
        want = [j["cycles"] + 1 for j in jobs[1:]]
        assert gaps == want, f"cycles between IPs {gaps}, model {want}"
    tb_write_out(h_codes=n, last_cycles=ends)
