"""rtl.layer.engine.LayerEngine with the ``scaled`` update (scaled-*/cheap-* presets) in Amaranth's
simulator: every output code == the quantized model (rtl.layer.reference), the simulated cycles per
image == sbs_model.layer_cycles.layer_cycles(update="scaled"), faults seen; the shipped model's
output layer (layer 5) on real MNIST images at a small T == QuantizedModel."""
import numpy as np
import pytest

from fixedpoint.datapath import PRESETS
from rtl.layer.reference import layer_reference
from sbs_model.layer_cycles import FINAL, layer_cycles
from test_rtl_layer_engine import images_for, make, simulate

CONFIGS = [  # (preset, in_shape, N, kernel, extra)
    pytest.param("cheap-e4m1", (2, 5, 5), 10, (3, 3), dict(T=5, L=16), id="cheap-e4m1-conv-L>=N"),
    pytest.param("scaled-e4m1", (1, 6, 6), 10, (3, 3), dict(T=3, L=4, kind="pixels", li=0), id="scaled-pixels-B3"),
    pytest.param("cheap-e3m1", (1, 5, 5), 10, (1, 1), dict(T=2, L=5, E=2), id="cheap-e3m1-E2-B2"),
    pytest.param("scaled-e3m1", (96, 1, 1), 10, (1, 1), dict(T=12, L=10), id="scaled-e3m1-last-layer-shape"),
    pytest.param("cheap-e4m1", (2, 4, 4), 6, (2, 2), dict(stride=(2, 2), pad=(1, 1), T=1, L=8), id="cheap-T1"),
]


@pytest.mark.parametrize("preset,in_shape,N,kernel,extra", CONFIGS)
def test_scaled_engine_equals_model_and_cycle_model(preset, in_shape, N, kernel, extra):
    dp = PRESETS[preset]
    eng, (wc, wf, layer, li) = make(dp, in_shape, N, kernel, **extra)
    assert eng.scaled
    kind = extra.get("kind", "codes")
    imgs = images_for(eng, 3, N + len(in_shape) * in_shape[1], kind)
    outs, cycles, starved = simulate(eng, imgs)
    for k, ((sd, pat, x), got) in enumerate(zip(imgs, outs)):
        want = layer_reference(dp, wc, wf, eng.T, layer, li, x.reshape(in_shape), kind, sd, pat)
        assert got == want, f"{preset} image {k} (seed {sd}, pattern {pat})"
    assert cycles == [eng.cycles()] * len(imgs)
    assert eng.cycles() == FINAL + layer_cycles(eng.N, eng.S, eng.T, eng.n_ip, eng.n_in, eng.L, eng.E,
                                                dp.recip_bits)
    assert starved == 0


def test_scaled_engine_with_stalls():
    """Random input idles and output back-pressure (FinalScale's stream), seed 3."""
    dp = PRESETS["cheap-e4m1"]
    eng, (wc, wf, layer, li) = make(dp, (2, 4, 4), 7, (2, 2), T=3, L=4, E=2, seed=3)
    imgs = images_for(eng, 2, 3, "codes")
    outs, cycles, starved = simulate(eng, imgs, idle=0.3, bp=0.4, seed=3)
    for (sd, pat, x), got in zip(imgs, outs):
        assert got == layer_reference(dp, wc, wf, eng.T, layer, li, x.reshape(2, 4, 4), "codes", sd, pat)
    assert all(c >= eng.cycles() for c in cycles) and starved == 0


@pytest.mark.parametrize("fault", ["drop_ip", "swap_ips", "stale_h"])
def test_scaled_faults_are_seen(fault):
    dp = PRESETS["cheap-e4m1"]
    eng, (wc, wf, layer, li) = make(dp, (2, 5, 5), 10, (3, 3), T=4, L=16, fault=fault)
    imgs = images_for(eng, 1, 3, "codes")
    want = layer_reference(dp, wc, wf, eng.T, layer, li, imgs[0][2].reshape(2, 5, 5), "codes", *imgs[0][:2])
    try:
        outs, _, _ = simulate(eng, imgs, budget=2 * eng.cycles())
    except TimeoutError:
        return  # a dropped IP: the codes never all arrive
    assert outs[0] != want


@pytest.mark.slow  # layer 5 of the shipped model at T = 20, twice: the long ones of this file (CI time)
@pytest.mark.parametrize("preset", ["cheap-e4m1", "scaled-e4m1"])
def test_shipped_model_layer5_real_images(preset):
    """Layer 5 (the output layer) of the shipped model, T = 20, 2 MNIST test images == QuantizedModel."""
    from rtl.layer.design import engine_for, layer_io
    from sbs_model import loader
    from sbs_model.data import load_dataset
    from sbs_model.quant import QuantizedModel
    model = QuantizedModel.load("reference-mnist", loader.shipped_model_path(), datapath=preset, spikes=20)
    images, _ = load_dataset("mnist", n=2)
    ins, outs = layer_io(model, 5, images)
    eng = engine_for(model, 5, lanes=10)
    got, cycles, starved = simulate(eng, [(0, b, ins[b]) for b in range(2)])
    assert got == outs and cycles == [eng.cycles()] * 2 and starved == 0
    assert np.max(outs) > 0
