"""A :class:`rtl.layer.engine.LayerEngine` for one SbS layer of a quantized model, and its real inputs.

:func:`engine_for` takes the layer's encoded weights, weight format, spikes, schedule, geometry and
input shape from a :class:`sbs_model.quant.QuantizedModel` (one datapath for the layer); the
input kind is ``pixels`` for a layer fed by the image, ``codes`` otherwise.
:func:`layer_io` runs the model on images and returns, per image, the engine's input values and
the model's output codes in the engine's output order.
"""
from __future__ import annotations

import numpy as np

from sbs_model.quant import QuantizedModel
from sbs_model.quant_ref import crop_pixels

from rtl.layer.engine import LayerEngine


def input_kind(model: QuantizedModel, index: int) -> str:
    """``pixels`` when layer ``index`` reads the image, ``codes`` when it reads a quantized layer's
    (pooled) codes; ValueError otherwise."""
    if index == 0:
        return "pixels"
    prev = [i for i in model.qlayers if i < index]
    if not prev or any(model.datapaths.get(i) is None for i in range(index) if model.net.layers[i].is_sbs):
        raise ValueError(f"layer {index}: the engine needs the layers before it quantized")
    return "codes"


def engine_for(model: QuantizedModel, index: int, lanes: int, engines: int = 1, fault=None) -> LayerEngine:
    """The layer engine of quantized SbS layer ``index`` of ``model``."""
    if index not in model.qlayers:
        raise ValueError(f"layer {index}: not a quantized SbS layer; allowed: {sorted(model.qlayers)}")
    ql = model.qlayers[index]
    from fixedpoint.schedule import Schedule
    return LayerEngine(ql.dp, ql.wcodes, ql.W, ql.layer.spikes, lanes, engines, model.net.input_shapes()[index],
                       ql.layer, index, input_kind(model, index), schedule=Schedule.from_layer(ql.layer), fault=fault)


def layer_io(model: QuantizedModel, index: int, images, first_pattern: int = 0):
    """``(inputs, outputs)``: per image the engine's input values (flat, C*H*W ints) and the model's
    output codes of layer ``index`` in engine order (IP by IP, N each)."""
    images = np.asarray(images)
    tr = model.trace(images, first_pattern)
    if index == 0:
        x = crop_pixels(images, model.net).astype(np.int64)
    else:
        if tr.kinds[index - 1] != "codes":
            raise ValueError(f"layer {index}: the layer before produces {tr.kinds[index - 1]}, not codes")
        x = np.asarray(tr.outputs[index - 1], dtype=np.int64)
    out = np.asarray(tr.outputs[index], dtype=np.int64)
    n, N = out.shape[:2]
    ins = [[int(v) for v in x[b].reshape(-1)] for b in range(n)]
    outs = [[int(v) for v in out[b].reshape(N, -1).T.reshape(-1)] for b in range(n)]
    return ins, outs


__all__ = ["engine_for", "layer_io", "input_kind"]
