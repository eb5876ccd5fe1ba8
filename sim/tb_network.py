"""cocotb testbench for ``rtl.network.top.NetworkAccelerator`` (run through :func:`sim.runner.build_and_test`).

``tb_data()``: ``images`` = list of ``{"job": packed job, "pixels": [784 uint8], "codes": [[layer
codes] per layer], "cls": class}``, ``layers`` (names), ``cycles`` (the cycle model), ``n_layers``.
Per image: the job is sent when the design is idle, the 784 pixels are streamed (one per cycle, the
design may hold ``ready`` low), then the testbench waits for the event ``cls__valid`` (Verilator
runs freely, no per-cycle Python), takes the class, and reads every layer's output codes through
the debug port.  Everything is compared with ``==``; per image the first divergence (image, layer,
element, both values) is recorded.  ``tb_out.json`` (rewritten after every image): ``images``
(compared), ``mismatches`` (one per diverging image), ``cycles`` (measured per image), ``classes``,
``seconds`` (wall-clock seconds per image of the three phases: ``load`` = job and pixels, ``run`` =
until the class, ``read`` = the debug read-back; ``run_cycles / run`` is the simulator's own speed,
no Python runs in that phase).
"""
import time

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge, Timer
from cocotb.utils import get_sim_time

from sbs_model.network_cycles import FMAP_READ_LATENCY
from sim.runner import tb_data, tb_write_out
from sim.stream import reset

PERIOD_NS = 10


@cocotb.test()
async def network_vs_model(dut):
    cfg = tb_data()
    images = cfg["images"]
    Clock(dut.clk, PERIOD_NS, unit="ns").start()
    dut.job__valid.value = 0
    dut.image__valid.value = 0
    dut.cls__ready.value = 1
    dut.dbg_layer.value = 0
    dut.dbg_addr.value = 0
    await reset(dut, dut.clk)
    measured, got_cls, mismatches, seconds = [], [], [], []
    for b, im in enumerate(images):
        t0 = time.perf_counter()
        await RisingEdge(dut.clk)
        dut.job__payload.value = int(im["job"])
        dut.job__valid.value = 1
        await ReadOnly()
        assert int(dut.job__ready.value) == 1, "the design is not idle at the start of an image"
        await RisingEdge(dut.clk)
        t_job = get_sim_time("ns")
        dut.job__valid.value = 0
        for p in im["pixels"]:
            dut.image__payload.value = int(p)
            dut.image__valid.value = 1
            while True:
                await ReadOnly()
                fire = int(dut.image__ready.value) == 1
                await RisingEdge(dut.clk)
                if fire:
                    break
        dut.image__valid.value = 0
        t1, c1 = time.perf_counter(), get_sim_time("ns")
        # wait for the event "image done" (no per-cycle Python while the layers run)
        await ReadOnly()
        if not int(dut.cls__valid.value):
            await RisingEdge(dut.cls__valid)
            await ReadOnly()
        cls = int(dut.cls__payload.value)
        await RisingEdge(dut.clk)  # the class transfers at this edge (ready is always high)
        cycles = round((get_sim_time("ns") - t_job) / PERIOD_NS)
        measured.append(cycles)
        got_cls.append(cls)
        t2, c2 = time.perf_counter(), get_sim_time("ns")
        # every layer's output codes through the debug port
        await ReadOnly()
        assert int(dut.idle.value) == 1
        await RisingEdge(dut.clk)
        for li, want in enumerate(im["codes"]):
            # one address per cycle; the code of the address given before edge e is on dbg_data
            # after edge e + FMAP_READ_LATENCY - 1
            dut.dbg_layer.value = li
            dut.dbg_addr.value = 0
            got = []
            for e in range(len(want) + FMAP_READ_LATENCY - 1):
                await RisingEdge(dut.clk)
                if e + 1 < len(want):
                    dut.dbg_addr.value = e + 1
                if e >= FMAP_READ_LATENCY - 1:
                    await ReadOnly()
                    got.append(int(dut.dbg_data.value))
            await RisingEdge(dut.clk)
            if got != want and (not mismatches or mismatches[-1]["image"] != b):
                e = next(j for j in range(len(want)) if got[j] != want[j])
                mismatches.append({"image": b, "layer": li, "element": e, "got": got[e], "want": want[e]})
        if cls != im["cls"] and (not mismatches or mismatches[-1]["image"] != b):
            mismatches.append({"image": b, "layer": "class", "element": 0, "got": cls, "want": im["cls"]})
        t3 = time.perf_counter()
        seconds.append({"load": round(t1 - t0, 4), "run": round(t2 - t1, 4), "read": round(t3 - t2, 4),
                        "run_cycles": round((c2 - c1) / PERIOD_NS)})
        tb_write_out(images=b + 1, mismatches=mismatches, cycles=measured, classes=got_cls,
                     starved=int(dut.starved.value), seconds=seconds)
    await Timer(1, unit="ns")
    assert not mismatches, f"first divergence: {mismatches[0]}"
    assert int(dut.starved.value) == 0, "a layer engine's spike FIFO ran empty"
    if cfg.get("cycles") is not None:
        assert measured == [cfg["cycles"]] * len(measured), f"cycles per image {measured}, model {cfg['cycles']}"
