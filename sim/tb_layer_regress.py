"""``sbs regress`` entries of the layer engine (:class:`rtl.layer.engine.LayerEngine`, testbench
:mod:`sim.tb_layer`); registered when this module is imported (list it in
``sim.regress.UNIT_MODULES``).

* ``layer-engine`` -- quick: a small conv layer (2x5x5 input, 3x3 kernel, N = 10, T = 4, L = 16,
  random weights), three images (random, all-zero, sparse inputs) with random idle cycles and
  back-pressure; full: layer 5 of the shipped model (N = 10, S = 96, T = 1600, L = 16) on two
  embedded MNIST test images (inputs: the quantized model's layer-4 codes) and one random input.
* ``layer-engine-timing`` -- the same design without stalls; the cycles from every job transfer to
  the image's last code must equal :func:`sbs_model.layer_cycles.layer_cycles`.
* ``layer-engine-l0`` / ``-l2`` / ``-l4`` -- full: layers 0 (L = 32), 2 (L = 32, B = 2), 4 (L = 32,
  B = 3) of the shipped model at T = 1600 on one MNIST image and one random input; quick: the
  small entry (same build).
* fault entries (must fail): ``layer-engine-drop-ip`` (an IP's codes are never sent),
  ``layer-engine-swap-ips`` (two IPs sent in swapped order), ``layer-engine-stale-h`` (an IP starts
  from a stale h); one ``fault="select"`` build serves all three.

Expected codes: :func:`rtl.layer.reference.layer_reference` (the quantized model,
:mod:`sbs_model.quant_ref`) for random inputs, :func:`rtl.layer.design.layer_io` (the
quantized model's trace) for MNIST images; vectors = output codes.
"""
from __future__ import annotations

import random

from sim.regress import Entry, register

DP = "int-e4m1"
SMALL = dict(in_shape=(2, 5, 5), N=10, kernel=(3, 3), T=4, lanes=16, layer_index=3)
SHIPPED = {5: 16, 0: 32, 2: 32, 4: 32}  # layer: lanes


def _dp():
    from fixedpoint.datapath import PRESETS
    return PRESETS[DP]


def small_engine(fault=None):
    """``(engine, (w_codes, w_format, layer))`` of the quick entries (random weights, seed 0)."""
    import numpy as np

    from rtl.layer.engine import LayerEngine
    from sbs_model.network import LayerSpec
    c = SMALL
    layer = LayerSpec("sbs", c["in_shape"][0], c["N"], c["kernel"], spikes=c["T"])
    W = np.random.default_rng(0).uniform(0, 1, size=(layer.window, c["N"])) ** 3
    wc, wf = _dp().encode_weights(W / W.sum(axis=0))
    eng = LayerEngine(_dp(), wc, wf, c["T"], c["lanes"], 1, c["in_shape"], layer, c["layer_index"], "codes",
                      fault=fault)
    return eng, (wc, wf, layer)


def _shipped_model():
    from sbs_model import loader
    from sbs_model.quant import QuantizedModel
    return QuantizedModel.load("reference-mnist", loader.shipped_model_path(), datapath=DP)


def _stalls(mode_stalls: bool) -> dict:
    return {"idle": 0.25, "backpressure": 0.25} if mode_stalls else {"idle": 0.0, "backpressure": 0.0}


def _random_inputs(eng, rng, n):
    hi = 256 if eng.input_kind == "pixels" else 1 << eng.H.width
    xs = [[rng.randrange(hi) for _ in range(eng.n_in)] for _ in range(n)]
    if n > 1:
        xs[1] = [0] * eng.n_in
    if n > 2:
        xs[2] = [v if rng.random() < 0.2 else 0 for v in xs[2]]
    return xs


def small_vectors(eng, seed: int, stalls: bool, fault_sel=None):
    """tb_data of the quick entries for ``eng`` (a :func:`small_engine` design): three images."""
    import numpy as np

    from rtl.layer.engine import pack_job
    from rtl.layer.reference import layer_reference
    wc, wf, layer = eng.cores[0].w_codes, eng.cores[0].W, eng.layer
    rng = random.Random(seed)
    images = []
    for x in _random_inputs(eng, rng, 3):
        sd, pat = rng.getrandbits(32), rng.randrange(1 << 16)
        want = layer_reference(_dp(), wc, wf, eng.T, layer, SMALL["layer_index"],
                               np.asarray(x).reshape(SMALL["in_shape"]), "codes", sd, pat)
        images.append({"job": pack_job(sd, pat), "x": x, "expected": want})
    data = {"images": images, "h_width": eng.H.width, "cycles": eng.cycles(), "check_cycles": not stalls,
            **_stalls(stalls)}
    if fault_sel is not None:
        data["fault_sel"] = fault_sel
    return data, sum(len(im["expected"]) for im in images)


def shipped_vectors(eng, layer: int, seed: int):
    """tb_data of a full entry for ``eng`` (the shipped model's layer ``layer``): MNIST images
    (layer 5: two, else one) and one random input."""
    import numpy as np

    from rtl.layer.design import layer_io
    from rtl.layer.engine import pack_job
    from rtl.layer.reference import layer_reference
    from sbs_model.data import load_embedded
    model = _shipped_model()
    rng = random.Random(seed)
    images, _ = load_embedded()
    n_real = 2 if layer == 5 else 1
    first = rng.randrange(len(images) - n_real)
    ins, outs = layer_io(model, layer, images[first:first + n_real], first_pattern=first)
    data_images = [{"job": pack_job(model.seed, first + b), "x": ins[b], "expected": outs[b]} for b in range(n_real)]
    ql = model.qlayers[layer]
    x = _random_inputs(eng, rng, 1)[0]
    sd, pat = rng.getrandbits(32), rng.randrange(1 << 16)
    want = layer_reference(ql.dp, ql.wcodes, ql.W, ql.layer.spikes, ql.layer, layer,
                           np.asarray(x).reshape(model.net.input_shapes()[layer]), eng.input_kind, sd, pat, fast=True)
    data_images.append({"job": pack_job(sd, pat), "x": x, "expected": want})
    data = {"images": data_images, "h_width": eng.H.width, "cycles": eng.cycles(), "check_cycles": False,
            **_stalls(True)}
    return data, sum(len(im["expected"]) for im in data_images)


def _design(layer):
    def design(fault, mode):
        if fault is not None:
            return small_engine("select")[0]
        if mode == "quick":
            return small_engine()[0]
        from rtl.layer.design import engine_for
        return engine_for(_shipped_model(), layer, SHIPPED[layer])
    return design


def _register() -> None:
    note = "LayerEngine vs the quantized model, every output code ==; vectors = output codes"
    for layer, unit in ((5, "layer-engine"), (0, "layer-engine-l0"), (2, "layer-engine-l2"), (4, "layer-engine-l4")):
        register(Entry(unit=unit, datapath=DP, lanes=SHIPPED[layer], toplevel="layer_engine",
                       testbench="sim.tb_layer", design=_design(layer),
                       vectors=lambda eng, mode, seed, layer=layer: (
                           small_vectors(eng, seed, True) if mode == "quick" else shipped_vectors(eng, layer, seed)),
                       note=f"{note}; quick: small layer, stalls; full: shipped layer {layer}, T = 1600"))
    register(Entry(unit="layer-engine-timing", datapath=DP, lanes=SMALL["lanes"], toplevel="layer_engine",
                   testbench="sim.tb_layer", design=lambda fault, mode: small_engine()[0],
                   vectors=lambda eng, mode, seed: small_vectors(eng, seed, False),
                   note=f"{note}; no stalls, cycles per image == sbs_model.layer_cycles"))
    from rtl.layer.engine import FAULT_SELECT
    for fault, code in FAULT_SELECT.items():
        register(Entry(unit=f"layer-engine-{fault.replace('_', '-')}", datapath=DP, lanes=SMALL["lanes"],
                       toplevel="layer_engine_faults", testbench="sim.tb_layer",
                       design=lambda fault, mode: small_engine("select")[0],
                       vectors=lambda eng, mode, seed, code=code: small_vectors(eng, seed, True, code), fault=fault,
                       note=f"must fail: {fault} (one fault='select' build for all fault entries)"))


_register()
