"""rtl.layer.engine.LayerEngine in Amaranth's simulator: every output code == the quantized model
(sbs_model.quant_ref via rtl.layer.reference / rtl.layer.design), the simulated cycles per image ==
sbs_model.layer_cycles.layer_cycles, the spike FIFO never starved; faults must be seen."""
import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from fixedpoint.datapath import PRESETS
from rtl.layer.engine import LayerEngine, pack_job
from rtl.layer.reference import layer_reference
from sbs_model.layer_cycles import chain_latency, layer_cycles, slots
from sbs_model.network import LayerSpec


def make(dp, in_shape, N, kernel, stride=(1, 1), pad=(0, 0), dil=(1, 1), T=5, L=16, E=1, seed=0, kind="codes",
         fault=None, li=3, slots=None):
    layer = LayerSpec("sbs", in_shape[0], N, kernel, stride, dil, pad, spikes=T)
    rng = np.random.default_rng(seed)
    W = rng.uniform(0, 1, size=(layer.window, N)) ** 3
    wc, wf = dp.encode_weights(W / W.sum(axis=0))
    return (LayerEngine(dp, wc, wf, T, L, E, in_shape, layer, li, kind, fault=fault, slots=slots),
            (wc, wf, layer, li))


def simulate(eng, images, idle=0.0, bp=0.0, seed=1, budget=None):
    """images: [(seed, pattern, flat input)] -> (codes per image, cycles per image (job transfer to
    last code), starved flag).  Stops after ``budget`` cycles per image (TimeoutError)."""
    outs, cycles, flags = [], [], []
    budget = budget or 4 * eng.cycles() + 1000

    async def tb(ctx):
        rng = random.Random(seed)
        cycle = 0
        for sd, pat, x in images:
            ctx.set(eng.job.payload.as_value(), pack_job(sd, pat))
            ctx.set(eng.job.valid, 1)
            while True:
                _, _, jr = await ctx.tick().sample(eng.job.ready)
                cycle += 1
                if jr:
                    break
            ctx.set(eng.job.valid, 0)
            start, i, got = cycle - 1, 0, []
            while len(got) < eng.n_ip * eng.N:
                if i < len(x):
                    ctx.set(eng.x_in.valid, 0 if rng.random() < idle else 1)
                    ctx.set(eng.x_in.payload, int(x[i]))
                else:
                    ctx.set(eng.x_in.valid, 0)
                rdy = not rng.random() < bp
                ctx.set(eng.h_out.ready, rdy)
                _, _, xr, xv, ov, op = await ctx.tick().sample(eng.x_in.ready, eng.x_in.valid, eng.h_out.valid,
                                                               eng.h_out.payload)
                cycle += 1
                i += int(i < len(x) and xr and xv)
                if rdy and ov:
                    got.append(int(op))
                if cycle - start > budget:
                    raise TimeoutError(f"LayerEngine: {len(got)} of {eng.n_ip * eng.N} codes after {budget} cycles")
            ctx.set(eng.h_out.ready, 0)
            outs.append(got)
            cycles.append(cycle - 1 - start)
        flags.append(int(ctx.get(eng.starved)))

    sim = Simulator(eng)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return outs, cycles, flags[0]


def images_for(eng, n, seed, kind):
    rng = np.random.default_rng(seed)
    hi = 256 if kind == "pixels" else 1 << eng.H.width
    imgs = [(int(rng.integers(0, 2 ** 32)), int(rng.integers(0, 60000)), rng.integers(0, hi, eng.n_in))
            for _ in range(n)]
    if kind == "codes" and n > 1:  # all-zero input: every window draws uniformly
        imgs[1] = (imgs[1][0], imgs[1][1], np.zeros(eng.n_in, dtype=np.int64))
    if n > 2:  # sparse input
        x = imgs[2][2].copy()
        x[rng.random(eng.n_in) < 0.8] = 0
        imgs[2] = (imgs[2][0], imgs[2][1], x)
    return imgs


SLOW = pytest.mark.slow
CONFIGS = [  # (preset, in_shape, N, kernel, extra)
    pytest.param("int-e4m1", (2, 5, 5), 10, (3, 3), dict(T=4, L=16), id="conv-L>=N"),
    pytest.param("int-e4m1", (1, 6, 6), 10, (3, 3), dict(T=3, L=4, kind="pixels", li=0), id="pixels-B3-two-waves"),
    pytest.param("int-e4m1", (1, 5, 5), 10, (1, 1), dict(T=2, L=5, E=2), id="E2-split-B2"),
    pytest.param("int-e4m1", (96, 1, 1), 10, (1, 1), dict(T=12, L=10), id="last-layer-shape"),
    pytest.param("int-uq0.8", (3, 4, 4), 6, (2, 2), dict(stride=(2, 2), pad=(1, 1), T=5, L=8, E=2), id="stride-pad",
                 marks=SLOW),
    pytest.param("int-e4m0", (2, 9, 9), 5, (3, 3), dict(dil=(2, 2), T=2, L=5), id="dilation-e4m0", marks=SLOW),
]


@pytest.mark.parametrize("preset,in_shape,N,kernel,extra", CONFIGS)
def test_layer_engine_equals_model_and_cycle_model(preset, in_shape, N, kernel, extra):
    dp = PRESETS[preset]
    eng, (wc, wf, layer, li) = make(dp, in_shape, N, kernel, **extra)
    kind = extra.get("kind", "codes")
    imgs = images_for(eng, 3, N + len(in_shape) * in_shape[1], kind)
    outs, cycles, starved = simulate(eng, imgs)
    for (sd, pat, x), got in zip(imgs, outs):
        assert got == layer_reference(dp, wc, wf, eng.T, layer, li, x.reshape(in_shape), kind, sd, pat)
    assert cycles == [eng.cycles()] * len(imgs)
    assert eng.cycles() == layer_cycles(eng.N, eng.S, eng.T, eng.n_ip, eng.n_in, eng.L, eng.E, dp.recip_bits)
    assert starved == 0


def test_one_spike_per_cycle_with_L_ge_N():
    """With L >= N one round of P slots takes P cycles: T+1 rounds of P cycles each."""
    dp = PRESETS["int-e4m1"]
    a, _ = make(dp, (2, 5, 5), 10, (3, 3), T=4, L=16)
    b, _ = make(dp, (2, 5, 5), 10, (3, 3), T=9, L=16)
    assert a.B == 1 and b.cycles() - a.cycles() == 5 * a.P * a.B  # 5 more spikes of every IP in flight


@pytest.mark.slow
def test_random_configs_with_stalls():
    rng = random.Random(11)
    for k in range(2):
        C, H = rng.randint(1, 3), rng.randint(3, 6)
        kh = rng.randint(1, min(3, H))
        N = rng.randint(2, 12)
        L = rng.choice([N, max(1, N // 2), N + 3])
        dp = PRESETS[rng.choice(["int-e4m1", "int-uq0.8"])]
        eng, (wc, wf, layer, li) = make(dp, (C, H, H), N, (kh, kh), pad=(rng.randint(0, 1),) * 2,
                                        T=rng.randint(1, 4), L=L, E=rng.randint(1, 2), seed=k)
        imgs = images_for(eng, 2, k, "codes")
        outs, cycles, starved = simulate(eng, imgs, idle=0.3, bp=0.4, seed=k)
        for (sd, pat, x), got in zip(imgs, outs):
            assert got == layer_reference(dp, wc, wf, eng.T, layer, li, x.reshape(C, H, H), "codes", sd, pat)
        assert all(c >= eng.cycles() for c in cycles) and starved == 0


@pytest.mark.parametrize("fault", ["drop_ip", "swap_ips", "stale_h"])
def test_faults_are_seen(fault):
    dp = PRESETS["int-e4m1"]
    eng, (wc, wf, layer, li) = make(dp, (2, 5, 5), 10, (3, 3), T=4, L=16, fault=fault)
    imgs = images_for(eng, 1, 3, "codes")
    want = layer_reference(dp, wc, wf, eng.T, layer, li, imgs[0][2].reshape(2, 5, 5), "codes", *imgs[0][:2])
    try:
        outs, _, _ = simulate(eng, imgs, budget=2 * eng.cycles())
    except TimeoutError:
        return  # a dropped IP: the codes never all arrive
    assert outs[0] != want


def test_shipped_model_last_layer_real_images():
    from rtl.layer.design import engine_for, layer_io
    from sbs_model import loader
    from sbs_model.data import load_dataset
    from sbs_model.quant import QuantizedModel
    model = QuantizedModel.load("reference-mnist", loader.shipped_model_path(), datapath="int-e4m1", spikes=20)
    images, _ = load_dataset("mnist", n=2)
    ins, outs = layer_io(model, 5, images)
    eng = engine_for(model, 5, lanes=16)
    got, cycles, starved = simulate(eng, [(0, b, ins[b]) for b in range(2)])
    assert got == outs and cycles == [eng.cycles()] * 2 and starved == 0


def test_slots_cover_the_chain():
    for N, L in ((10, 16), (32, 8), (64, 32), (96, 7)):
        B = -(-N // L)
        P = slots(N, L, 16)
        assert P * B >= chain_latency(L, 16) + B and (P - 1) * B < chain_latency(L, 16) + B


def test_more_beats_per_spike_than_the_chain_latency():
    """B = ceil(N/L) beats per spike well above the chain latency D (two slots in flight, each pass
    longer than the chain): == the model.  Before the coefficient RAM was written by the last beat
    only, every beat of a pass wrote it, and from B = D + 2 on a pass overwrote its own coefficient
    while still reading it (layer 4 of the reference network at L = 2 was wrong)."""
    dp = PRESETS["int-e4m1"]
    D = chain_latency(1, dp.recip_bits)
    eng, (wc, wf, layer, li) = make(dp, (4, 1, 1), D + 5, (1, 1), T=3, L=1)
    assert eng.B == D + 5 and eng.P == 2
    imgs = images_for(eng, 2, 5, "codes")
    outs, cycles, _ = simulate(eng, imgs)
    for (sd, pat, x), got in zip(imgs, outs):
        assert got == layer_reference(dp, wc, wf, eng.T, layer, li, x.reshape(4, 1, 1), "codes", sd, pat)
    assert cycles == [eng.cycles()] * len(imgs)


def test_more_slots_fewer_waves():
    """64 IPs of one core: the fewest slots (the chain's) need two waves, 64 slots one; == the model,
    cycles == layer_cycles with those slots (fewer than with the fewest).  Slots below the chain's are
    refused."""
    dp = PRESETS["int-e4m1"]
    lo = slots(4, 4, dp.recip_bits)
    assert lo < 64
    eng, (wc, wf, layer, li) = make(dp, (2, 8, 8), 4, (1, 1), T=3, L=4, slots=64)
    assert eng.P == 64 and eng.n_ip == 64
    imgs = images_for(eng, 2, 7, "codes")
    outs, cycles, starved = simulate(eng, imgs)
    for (sd, pat, x), got in zip(imgs, outs):
        assert got == layer_reference(dp, wc, wf, eng.T, layer, li, x.reshape(2, 8, 8), "codes", sd, pat)
    assert cycles == [eng.cycles()] * 2 and starved == 0
    assert eng.cycles() == layer_cycles(4, 2, 3, 64, 128, 4, 1, dp.recip_bits, n_slots=64)
    assert eng.cycles() < layer_cycles(4, 2, 3, 64, 128, 4, 1, dp.recip_bits)
    with pytest.raises(ValueError, match=rf"slots must be an integer in {lo}..256"):
        make(dp, (2, 8, 8), 4, (1, 1), T=3, L=4, slots=lo - 1)
