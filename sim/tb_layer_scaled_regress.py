"""``sbs regress`` entries of the layer engine with the ``scaled`` update (``cheap-*`` / ``scaled-*``
presets: :class:`rtl.layer.scaled_lanes.ScaledUpdateLanes`, :class:`rtl.layer.final_scale.FinalScale`),
testbench :mod:`sim.tb_layer` (the same as the ``int`` engine's entries, :mod:`sim.tb_layer_regress`);
registered when this module is imported (listed in ``sim.regress.UNIT_MODULES``).

* ``layer-engine-scaled`` (datapaths ``cheap-e4m1`` and ``scaled-e4m1``) -- quick: a small conv
  layer (2x5x5 input, 3x3 kernel, N = 10, T = 6, L = 16, random weights), three images (random,
  all-zero, sparse) with random idle cycles and back-pressure; full: layer 5 of the shipped model
  (N = 10, S = 96, T = 1600, L = 10) on two embedded MNIST test images (inputs: the quantized model's
  layer-4 codes with the same datapath) and one random input.
* ``layer-engine-scaled-timing`` (``cheap-e4m1``) -- the small design without stalls; the cycles per
  image must equal :func:`sbs_model.layer_cycles.layer_cycles` with ``update="scaled"``.
* ``layer-engine-scaled-stale-h`` (``cheap-e4m1``, fault, must fail): an IP starts from a stale h
  (the engine's ``fault="select"`` build).

Expected codes: :func:`rtl.layer.reference.layer_reference` (random inputs) and
:func:`rtl.layer.design.layer_io` (MNIST images); vectors = output codes.
"""
from __future__ import annotations

import random

import numpy as np

from fixedpoint.datapath import PRESETS
from rtl.layer.design import engine_for, layer_io
from rtl.layer.engine import FAULT_SELECT, LayerEngine, pack_job
from rtl.layer.reference import layer_reference
from sbs_model import loader
from sbs_model.data import load_embedded
from sbs_model.network import LayerSpec
from sbs_model.quant import QuantizedModel
from sim.regress import Entry, register

DATAPATHS = ("cheap-e4m1", "scaled-e4m1")
SMALL = dict(in_shape=(2, 5, 5), N=10, kernel=(3, 3), T=6, lanes=16, layer_index=3)
SHIPPED_LAYER, SHIPPED_LANES = 5, 10


def small_engine(dp_name: str, fault=None):
    """The quick entries' engine (random weights, seed 0) with datapath ``dp_name``."""
    c, dp = SMALL, PRESETS[dp_name]
    layer = LayerSpec("sbs", c["in_shape"][0], c["N"], c["kernel"], spikes=c["T"])
    W = np.random.default_rng(0).uniform(0, 1, size=(layer.window, c["N"])) ** 3
    wc, wf = dp.encode_weights(W / W.sum(axis=0))
    return LayerEngine(dp, wc, wf, c["T"], c["lanes"], 1, c["in_shape"], layer, c["layer_index"], "codes",
                       fault=fault)


def _stalls(on: bool) -> dict:
    return {"idle": 0.25, "backpressure": 0.25} if on else {"idle": 0.0, "backpressure": 0.0}


def _random_inputs(eng, rng, n):
    xs = [[rng.randrange(1 << eng.H.width) for _ in range(eng.n_in)] for _ in range(n)]
    if n > 1:
        xs[1] = [0] * eng.n_in
    if n > 2:
        xs[2] = [v if rng.random() < 0.2 else 0 for v in xs[2]]
    return xs


def small_vectors(eng, seed: int, stalls: bool, fault_sel=None):
    """tb_data of the quick entries for ``eng`` (a :func:`small_engine` design): three images."""
    c0 = eng.cores[0]
    rng = random.Random(seed)
    images = []
    for x in _random_inputs(eng, rng, 3):
        sd, pat = rng.getrandbits(32), rng.randrange(1 << 16)
        want = layer_reference(eng.dp, c0.w_codes, c0.W, eng.T, eng.layer, SMALL["layer_index"],
                               np.asarray(x).reshape(SMALL["in_shape"]), "codes", sd, pat)
        images.append({"job": pack_job(sd, pat), "x": x, "expected": want})
    data = {"images": images, "h_width": eng.H.width, "cycles": eng.cycles(), "check_cycles": not stalls,
            **_stalls(stalls)}
    if fault_sel is not None:
        data["fault_sel"] = fault_sel
    return data, sum(len(im["expected"]) for im in images)


def shipped_model(dp_name: str) -> QuantizedModel:
    return QuantizedModel.load("reference-mnist", loader.shipped_model_path(), datapath=dp_name)


def shipped_vectors(eng, model: QuantizedModel, seed: int):
    """tb_data of the full entry: two MNIST images and one random input through layer 5."""
    rng = random.Random(seed)
    images, _ = load_embedded()
    first = rng.randrange(len(images) - 2)
    ins, outs = layer_io(model, SHIPPED_LAYER, images[first:first + 2], first_pattern=first)
    data_images = [{"job": pack_job(model.seed, first + b), "x": ins[b], "expected": outs[b]} for b in range(2)]
    ql = model.qlayers[SHIPPED_LAYER]
    x = _random_inputs(eng, rng, 1)[0]
    sd, pat = rng.getrandbits(32), rng.randrange(1 << 16)
    want = layer_reference(ql.dp, ql.wcodes, ql.W, ql.layer.spikes, ql.layer, SHIPPED_LAYER,
                           np.asarray(x).reshape(model.net.input_shapes()[SHIPPED_LAYER]), eng.input_kind, sd, pat,
                           fast=True)
    data_images.append({"job": pack_job(sd, pat), "x": x, "expected": want})
    data = {"images": data_images, "h_width": eng.H.width, "cycles": eng.cycles(), "check_cycles": False,
            **_stalls(True)}
    return data, sum(len(im["expected"]) for im in data_images)


def _design(dp_name: str):
    def design(fault, mode):
        if fault is not None:
            return small_engine(dp_name, "select")
        if mode == "quick":
            return small_engine(dp_name)
        return engine_for(shipped_model(dp_name), SHIPPED_LAYER, SHIPPED_LANES)
    return design


def _vectors(dp_name: str):
    def vectors(eng, mode, seed):
        if mode == "quick":
            return small_vectors(eng, seed, True)
        return shipped_vectors(eng, shipped_model(dp_name), seed)
    return vectors


def _register() -> None:
    note = "LayerEngine (scaled update) vs the quantized model, every output code ==; vectors = output codes"
    for dp_name in DATAPATHS:
        register(Entry(unit="layer-engine-scaled", datapath=dp_name, lanes=SMALL["lanes"], toplevel="layer_engine",
                       testbench="sim.tb_layer", design=_design(dp_name), vectors=_vectors(dp_name),
                       note=f"{note}; quick: small layer, stalls; full: shipped layer 5, T = 1600, "
                            f"L = {SHIPPED_LANES}"))
    dp_name = DATAPATHS[0]
    register(Entry(unit="layer-engine-scaled-timing", datapath=dp_name, lanes=SMALL["lanes"],
                   toplevel="layer_engine", testbench="sim.tb_layer",
                   design=lambda fault, mode: small_engine(dp_name),
                   vectors=lambda eng, mode, seed: small_vectors(eng, seed, False),
                   note=f"{note}; no stalls, cycles per image == sbs_model.layer_cycles (update 'scaled')"))
    register(Entry(unit="layer-engine-scaled-stale-h", datapath=dp_name, lanes=SMALL["lanes"],
                   toplevel="layer_engine_faults", testbench="sim.tb_layer",
                   design=lambda fault, mode: small_engine(dp_name, "select"),
                   vectors=lambda eng, mode, seed: small_vectors(eng, seed, True, FAULT_SELECT["stale_h"]),
                   fault="stale_h", note="must fail: stale_h (an IP starts from a stale h)"))


_register()
