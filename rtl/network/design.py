"""A :class:`rtl.network.top.NetworkAccelerator` for a quantized model and a plan, and its reference.

:func:`accelerator` builds one :class:`rtl.layer.engine.LayerEngine` per SbS layer (the layer's
weight codes, spikes, schedule and geometry from the :class:`sbs_model.quant.QuantizedModel`, lanes
and engine cores from the plan) and one :class:`rtl.network.pool.PoolUnit` per pooling layer.
:func:`check_model` refuses what the RTL does not implement (a float layer, a float h format,
different h formats between layers, an ``sbspool`` layer, a non-square or multi-channel input).
:func:`expected` is the model's answer for images: every layer's codes in the debug path's order
(the model's ``(c, y, x)`` flattening) and the class.
"""
from __future__ import annotations

import numpy as np

from fixedpoint.formats import FixedFormat, parse_format
from fixedpoint.schedule import Schedule
from rtl.layer.engine import LayerEngine
from rtl.network.pool import PoolUnit
from rtl.network.top import NetworkAccelerator
from sbs_model import plan as planner
from sbs_model.network_cycles import network_cycles
from sbs_model.quant import QuantizedModel
from sbs_model.quant_ref import classes


def check_model(model: QuantizedModel) -> None:
    net = model.net
    if net.input_shape[0] != 1 or net.input_shape[1] > 28 or net.input_shape[2] > 28:
        raise ValueError(f"network input {net.input_shape}: the accelerator takes one channel cropped from 28x28")
    h_formats = set()
    for i, layer in enumerate(net.layers):
        if layer.kind == "sbspool":
            raise ValueError(f"layer {i}: kind 'sbspool' is not implemented by the accelerator")
        if layer.is_sbs:
            if model.datapaths.get(i) is None:
                raise ValueError(f"layer {i}: runs in float; the accelerator needs every SbS layer quantized")
            h_formats.add(parse_format(model.datapaths[i].h_format).text)
        elif i == 0:
            raise ValueError("layer 0: pooling of the image is not supported (the model refuses it too)")
    if len(h_formats) != 1:
        raise ValueError(f"datapath: the accelerator needs one h format in every layer, got {sorted(h_formats)}")
    H = parse_format(h_formats.pop())
    if not isinstance(H, FixedFormat):
        raise ValueError(f"datapath: h format {H} is a float format; the accelerator needs fixed point (uqI.F)")


def producer_dp(model: QuantizedModel, index: int):
    return model.datapaths[max(i for i in model.qlayers if i < index)]


def accelerator(model: QuantizedModel, plan: dict) -> NetworkAccelerator:
    """The whole-network design (``plan``: ``{layer: {"lanes", "engines"[, "slots"]}}``)."""
    check_model(model)
    net = model.net
    plan = planner.check_plan(planner.plan_json(plan), [i for i, l in enumerate(net.layers) if l.is_sbs])
    units = []
    in_shapes = net.input_shapes()
    for i, layer in enumerate(net.layers):
        if layer.is_sbs:
            ql = model.qlayers[i]
            units.append(LayerEngine(ql.dp, ql.wcodes, ql.W, layer.spikes, plan[i]["lanes"], plan[i]["engines"],
                                     in_shapes[i], layer, i, "pixels" if i == 0 else "codes",
                                     schedule=Schedule.from_layer(layer), key_held=True,
                                     slots=plan[i].get("slots")))
        else:
            dp = producer_dp(model, i)
            units.append(PoolUnit(layer, in_shapes[i], dp.h_format, dp.h_rounding))
    H = parse_format(model.datapaths[0].h_format)
    return NetworkAccelerator(units, net.shapes(), H.width, net.input_shape[1:])


def cycle_model(model: QuantizedModel, plan: dict) -> dict:
    return network_cycles(planner.stages(model.net, model.datapaths, plan), model.net.input_shape[1:])


def expected(model: QuantizedModel, images, first_pattern: int = 0):
    """``(codes, classes)``: ``codes[b][layer]`` the flat int list of layer ``layer``'s output of image
    ``b`` (pattern ``first_pattern + b``), ``classes[b]`` the model's class."""
    tr = model.trace(np.asarray(images), first_pattern)
    n = len(images)
    codes = [[[int(v) for v in np.asarray(tr.outputs[li][b]).reshape(-1)] for li in range(len(tr.outputs))]
             for b in range(n)]
    last = len(tr.outputs) - 1
    cls = classes(tr.outputs[last], tr.kinds[last], tr.formats[last])
    return codes, [int(c) for c in cls]


__all__ = ["accelerator", "check_model", "cycle_model", "expected"]
