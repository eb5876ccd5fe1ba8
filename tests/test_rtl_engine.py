"""IPEngine (rtl/engine.py) in Amaranth's simulator against the model of one IP (==), cycle counts."""
import dataclasses
import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from fixedpoint.datapath import Datapath
from rtl.engine import IPEngine, engine_cycles, engine_latency, pack_job, reference_ip, spike_cycles
from sim.scoreboard import ScoreboardMismatch, check

INT = Datapath.preset("int-e4m1")


def layer_weights(S, N, seed, tiny_rows=()):
    rng = np.random.default_rng(seed)
    W = rng.uniform(0.0, 1.0, size=(S, N)) ** 3
    for r in tiny_rows:
        W[r] = 1e-6
    return W / W.sum(axis=0)


def run_engine(dut, jobs, seed=0, idle=0.0, bp=0.0):
    """jobs: [((seed, pattern, layer, ip), window)] -> (h lists, cycles per job (job transfer to
    last h_out transfer))."""
    outs, cycles = [], []

    async def tb(ctx):
        rng = random.Random(seed)
        cycle = 0
        for job, window in jobs:
            ctx.set(dut.job.payload.as_value(), pack_job(*job))
            ctx.set(dut.job.valid, 1)
            while True:
                _clk, _rst, jr = await ctx.tick().sample(dut.job.ready)
                cycle += 1
                if jr:  # the job transferred at this edge
                    break
            ctx.set(dut.job.valid, 0)
            start = cycle - 1
            i = 0
            h = []
            ctx.set(dut.window.valid, 1)
            ctx.set(dut.window.payload, int(window[0]))
            while len(h) < dut.N:
                if cycle - start > 20 * dut.latency + 10 * len(window) + 1000:
                    raise TimeoutError(f"IPEngine: {len(h)} of {dut.N} h codes after {cycle - start} cycles")
                idle_now = rng.random() < idle
                if i < len(window):
                    ctx.set(dut.window.valid, 0 if idle_now else 1)
                    ctx.set(dut.window.payload, int(window[i]))
                else:
                    ctx.set(dut.window.valid, 0)
                ready_out = not (rng.random() < bp)
                ctx.set(dut.h_out.ready, 1 if ready_out else 0)
                _clk, _rst, wr, wv, ov, op = await ctx.tick().sample(dut.window.ready, dut.window.valid, dut.h_out.valid,
                                                          dut.h_out.payload)
                cycle += 1
                if i < len(window) and wr and wv:
                    i += 1
                if ready_out and ov:
                    h.append(int(op))
            ctx.set(dut.h_out.ready, 0)
            cycles.append(cycle - 1 - start)
            outs.append(h)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return outs, cycles


def make_jobs(S, seed, n, vw=16, zero=True):
    rng = random.Random(seed)
    jobs = []
    for k in range(n):
        if zero and k == 0:
            window = [0] * S
        elif k % 3 == 2:
            window = [rng.randrange(1 << vw) if rng.random() < 0.2 else 0 for _ in range(S)]
        else:
            window = [rng.randrange(1 << vw) for _ in range(S)]
        jobs.append(((rng.getrandbits(32), rng.randrange(1000), rng.randrange(6), rng.randrange(1 << 24)), window))
    return jobs


def expected(dp, w_codes, w_fmt, jobs, T):
    return [reference_ip(dp, w_codes, win, *job, T, w_format=w_fmt, record=True) for job, win in jobs]


@pytest.mark.parametrize("L,T", [(1, 20), (4, 50)])
def test_engine_matches_model(L, T):
    dp = INT
    S, N = 12, 10
    w_codes, w_fmt = dp.encode_weights(layer_weights(S, N, L))
    dut = IPEngine(dp, w_codes, T, lanes=L, w_format=w_fmt)
    jobs = make_jobs(S, L, 3)
    exp = expected(dp, w_codes, w_fmt, jobs, T)
    outs, cycles = run_engine(dut, jobs)
    check([c for h in outs for c in h], [c for h, _ in exp for c in h], 16, f"IPEngine L={L} T={T}")
    assert not any(any(ign) for _, ign in exp)
    assert cycles == [engine_latency(dp, N, S, T, L)] * len(jobs) == [dut.latency] * len(jobs)


def test_ignored_spikes_and_cycle_model():
    """A narrow accumulator (uq2.12) and rows of tiny weights: some spikes have A == 0 and are
    skipped; h and the exact cycle count (engine_cycles) still match."""
    dp = dataclasses.replace(INT, acc_format="uq2.12")
    S, N, T, L = 12, 10, 40, 2
    W = layer_weights(S, N, 5, tiny_rows=(0, 3, 4, 7))
    w_codes, w_fmt = dp.encode_weights(W)
    dut = IPEngine(dp, w_codes, T, lanes=L, w_format=w_fmt)
    window = [0, 0, 0, 5000, 9000, 0, 0, 100, 0, 0, 0, 0]
    jobs = [((7, 1, 2, 3), window), ((8, 2, 2, 4), [1] * S)]
    exp = expected(dp, w_codes, w_fmt, jobs, T)
    assert sum(exp[0][1]) >= 5  # the model really ignores spikes here
    outs, cycles = run_engine(dut, jobs)
    check([c for h in outs for c in h], [c for h, _ in exp for c in h], 16, "IPEngine ignored spikes")
    assert cycles == [engine_cycles(dp, N, S, L, ign) for _, ign in exp]
    sc = spike_cycles(dp, N, S, L)
    assert sc["ignored"] < sc["accepted"]


def test_stalls_do_not_change_results():
    dp = INT
    S, N, T, L = 12, 10, 25, 4
    w_codes, w_fmt = dp.encode_weights(layer_weights(S, N, 9))
    dut = IPEngine(dp, w_codes, T, lanes=L, w_format=w_fmt)
    jobs = make_jobs(S, 11, 2, zero=False)
    exp = expected(dp, w_codes, w_fmt, jobs, T)
    outs, _ = run_engine(dut, jobs, seed=4, idle=0.3, bp=0.4)
    check([c for h in outs for c in h], [c for h, _ in exp for c in h], 16, "IPEngine with stalls")


@pytest.mark.parametrize("fault", ["update", "sampler"])
def test_fault_flags_are_caught(fault):
    dp = INT
    S, N, T, L = 12, 10, 20, 4
    w_codes, w_fmt = dp.encode_weights(layer_weights(S, N, 1))
    dut = IPEngine(dp, w_codes, T, lanes=L, w_format=w_fmt, fault=fault)
    jobs = make_jobs(S, 1, 2, zero=False)
    exp = expected(dp, w_codes, w_fmt, jobs, T)
    outs, _ = run_engine(dut, jobs)
    with pytest.raises(ScoreboardMismatch):
        check([c for h in outs for c in h], [c for h, _ in exp for c in h], 16, "IPEngine fault")


def test_reference_ip_equals_quantized_model():
    """Our one-IP reference equals sbs_model.quant_ref.run_ip (the quantized-inference model)."""
    quant_ref = pytest.importorskip("sbs_model.quant_ref")
    from fixedpoint.schedule import Schedule
    from sbs_model.network import LayerSpec
    dp = INT
    S, N, T = 12, 10, 30
    W = layer_weights(S, N, 2)
    w_codes, w_fmt = dp.encode_weights(W)
    layer = LayerSpec(kind="sbs", in_channels=12, out_channels=N, kernel=(1, 1), spikes=T)
    ql = quant_ref.QLayer(3, layer, dp, dp.formats()[1], w_fmt, w_codes, dp.tables(T, Schedule.from_layer(layer)),
                          dp.initial_h(N), dp.lut())
    window = np.array([3, 0, 7, 100, 0, 0, 5, 1, 0, 9, 2, 40])
    h, _ = quant_ref.run_ip(ql, window, 5, 6, 7)
    assert [int(v) for v in h] == reference_ip(dp, w_codes, window, 5, 6, 3, 7, T, w_format=w_fmt)


def test_bad_parameters():
    w = np.zeros((4, 3), dtype=np.int64)
    with pytest.raises(ValueError, match="model-only"):
        IPEngine(Datapath.preset("paper"), w, 10)
    with pytest.raises(ValueError, match="T must be"):
        IPEngine(INT, w, 0)
    with pytest.raises(ValueError, match="w_codes must be codes"):
        IPEngine(INT, w + 1000, 10)
    with pytest.raises(ValueError, match="pack_job: ip"):
        pack_job(1, 2, 3, 1 << 24)


@pytest.mark.parametrize("S,N,T,L", [(1, 1, 3, 4), (2, 3, 1, 2), (5, 7, 4, 8)])
def test_edge_shapes(S, N, T, L):
    """S = 1, N = 1, T = 1, more lanes than elements: results and cycle counts still exact."""
    w_codes, w_fmt = INT.encode_weights(layer_weights(S, N, 3))
    dut = IPEngine(INT, w_codes, T, lanes=L, w_format=w_fmt)
    jobs = make_jobs(S, 2, 2)
    exp = expected(INT, w_codes, w_fmt, jobs, T)
    outs, cycles = run_engine(dut, jobs)
    assert outs == [h for h, _ in exp]
    assert cycles == [engine_cycles(INT, N, S, L, ign) for _, ign in exp] == [dut.latency] * 2
