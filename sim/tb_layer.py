"""cocotb testbench for ``rtl.layer.engine.LayerEngine`` (run through :func:`sim.runner.build_and_test`).

``tb_data()``: ``images`` = list of ``{"job": packed job payload, "x": [C*H*W input values],
"expected": [n_ip*N output codes of the quantized model]}``, ``h_width``, ``cycles`` (the model
:func:`sbs_model.layer_cycles.layer_cycles`), ``idle``, ``backpressure``, ``check_cycles``, ``seed``.
One coroutine sends each image's job and input values (random idle cycles); the monitor takes the
output codes with random back-pressure.  Every code is compared with ``==``; the ``starved`` flag
must stay 0; ``fault_sel`` (optional) drives the input of a ``fault="select"`` design; with ``check_cycles`` (no idle, no back-pressure) the cycles from each job transfer
to the image's last code must equal the model exactly.
"""
import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from sim.runner import tb_data, tb_write_out
from sim.scoreboard import check
from sim.stream import StreamDriver, StreamMonitor, reset


@cocotb.test()
async def layer_vs_model(dut):
    cfg = tb_data()
    seed, images = cfg["seed"], cfg["images"]
    n_codes = sum(len(im["expected"]) for im in images)
    dut._log.info("LayerEngine: seed=%d images=%d codes=%d idle=%.2f backpressure=%.2f", seed, len(images),
                  n_codes, cfg["idle"], cfg["backpressure"])
    Clock(dut.clk, 10, unit="ns").start()
    if "fault_sel" in cfg:  # a fault="select" design: the fault to switch on (0 = none)
        dut.fault_sel.value = int(cfg["fault_sel"])
    await reset(dut, dut.clk)
    job = StreamDriver(dut, "job", dut.clk, seed + 1, cfg["idle"])
    xin = StreamDriver(dut, "x_in", dut.clk, seed + 2, cfg["idle"])
    mon = StreamMonitor(dut, "h_out", dut.clk, seed + 3, cfg["backpressure"]).start()
    job_cycles = []

    async def watch_jobs():
        cycle = 0
        while True:
            await ReadOnly()
            if int(dut.job__valid.value) and int(dut.job__ready.value):
                job_cycles.append(cycle)
            await RisingEdge(dut.clk)
            cycle += 1

    async def feed():
        for im in images:
            await job.send([im["job"]])
            await xin.send(im["x"])

    watcher = cocotb.start_soon(watch_jobs())
    cocotb.start_soon(feed())
    slow = 1 + 4 * (cfg["idle"] + cfg["backpressure"])
    await mon.wait_for(n_codes, timeout_cycles=int(len(images) * (slow * 2 * cfg["cycles"] + 1000)))
    mon.stop()
    watcher.cancel()
    expected = [c for im in images for c in im["expected"]]
    n = check(mon.items, expected, cfg["h_width"], f"LayerEngine output codes (seed {seed})")
    assert int(dut.starved.value) == 0, "LayerEngine: the spike FIFO ran empty"
    ends, k = [], 0
    for im in images:
        k += len(im["expected"])
        ends.append(mon.cycles[k - 1])
    measured = [e - j for j, e in zip(job_cycles, ends)]
    if cfg["check_cycles"]:
        assert measured == [cfg["cycles"]] * len(images), f"cycles per image {measured}, model {cfg['cycles']}"
    tb_write_out(codes=n, cycles=measured)
