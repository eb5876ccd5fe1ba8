"""Write one layer engine's design directory: Verilog + ``manifest.json`` (for ``sbs build --layer``).

:func:`build_layer` writes into ``out_dir`` (an earlier design there and its synthesis / place and
route results are removed first, :func:`rtl.generate.remove_previous_design`):

* ``<top>.v``: deterministic Verilog of :class:`rtl.layer.engine.LayerEngine` (memories initialised
  inside the Verilog); ``top = layer_engine_l<K>``;
* ``manifest.json``: ``unit`` ``layer-engine``, ``top``, ``verilog``, ``verilog_sha256``, ``ports``
  (name, direction, width), ``formats``, ``datapath``, the layer's geometry (S, N, T, IPs, input
  shape and kind), lanes L, engines E, beats B, slots P, ``memories`` (words x bits per engine and
  in all), ``cycles_per_image`` (:func:`sbs_model.layer_cycles.layer_cycles`, the exact cycles of
  one image from its job transfer to its last output code, input always valid, output always
  ready) with the formula, ``spike_steps_per_cycle``, and ``input_hash`` (SHA-256 of the network's
  config hash, the datapath text, layer, lanes, engines, T and the layer's float32 weights).

No dates or absolute paths: the directory is a pure function of its inputs.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from rtl.emit import design_hash, to_verilog
from rtl.generate import input_hash, ports_of, remove_previous_design
from rtl.layer.design import engine_for
from rtl.lint import lint as run_lint
from sbs_model import layer_cycles as lc
from sbs_model import loader
from sbs_model.atomic import write_text
from sbs_model.float_ref import layer_weights
from sbs_model.quant import QuantizedModel
from sbs_model.quant_ref import load_datapath


def load_int_build(config, weights, datapath, spikes, what: str, updates=("int",)):
    """``(net, weights, dp)`` for an RTL build of the model ``config``/``weights`` (``None``: the
    shipped model) with ``datapath``; ValueError naming ``--datapath`` unless its update is one of
    ``updates`` (the layer engine: ``int`` and ``scaled``; ``what`` names the design in the message)."""
    weights = loader.weights_or_shipped(weights)
    dp = load_datapath(datapath)
    if dp is None or dp.update not in updates:
        names = "int-e4m1, int-e4m0, int-uq0.8" + (", scaled-e4m1, scaled-e3m1, cheap-e4m1, cheap-e3m1"
                                                   if "scaled" in updates else "")
        upd = " or ".join(repr(u) for u in updates)
        raise ValueError(f"--datapath {datapath}: {what} needs a datapath with the {upd} update "
                         f"({names} or a .json file)")
    net, w, _ = loader.load_net_and_weights(config, weights, spikes)
    return net, w, dp

CYCLES_FORMULA = (f"n_in + sum over waves of (n0*S + {lc.WAVE_FIXED} + ({lc.RNG + lc.SAMPLER} + {lc.STEP}*ceil(log2 S)) "
                  "+ min(4, T*n0) + T*max(n0*B, D + B) + n0*B "
                  "+ n_w*(2*B + N)) [+ 4 with the scaled update: FinalScale]; P >= ceil((D + B)/B), "
                  f"D = {lc.chain_latency(1, 0)} + ceil(log2 L) + Qb, B = ceil(N/L); "
                  "n_w = IPs of the wave (<= E*P), n0 = min(P, n_w); job transfer to last output code")


def memories(eng) -> dict:
    """``{name: {"words", "bits", "per_engine"}}`` of the engine's memories."""
    c = eng.cores[0]
    L, B, P, S, N = eng.L, eng.B, eng.P, eng.S, eng.N
    sw = max(1, lc.clog2(S))
    per = {
        "weights": (S * B, L * c.W.width),
        "h": (P * B, L * c.word_width),
        "coefficients": (P, 1 + c.units.c_width + int(eng.dp.coef_bits) + c.upd.exp_k_shape.width),
        "spike_rows": (P, sw),
        "schedule": (eng.T, len(c.sched.C) + len(c.sched.G)),
        "windows": (P * S, c.cum_width),
        "spike_fifo": (c.gen.depth, sw),
        "geometry": (c.loader.n_ip + S, 3 * c.loader.c_shape.width),
    }
    out = {k: {"words": w, "bits": w * b, "per_engine": True} for k, (w, b) in per.items()}
    out["input"] = {"words": eng.n_in, "bits": eng.n_in * eng.value_width, "per_engine": False}
    return out


def update_lanes_info(eng) -> dict:
    """The update lanes of the engine: ``int`` (two multipliers per lane) or ``scaled`` (``K*P`` by one
    multiplier, ``mult``, or by gated shifted adds, ``shift_add``; ``C_{T-1}`` by FinalScale)."""
    c = eng.cores[0]
    if not c.units.scaled:
        return {"update": "int", "multipliers_per_lane": 2}
    return {"update": "scaled", "coef": c.upd.coef, "multipliers_per_lane": int(c.upd.coef == "mult"),
            "j_max": c.upd.j_max, "clamp_bits": c.upd.clamp_bits, "word_bits_per_lane": c.word_width,
            "c_last": c.units.c_last, "final_scale_latency": lc.FINAL}


def build_layer(net, weights, dp, layer: int, out_dir, lanes: int, engines: int = 1, lint: bool = False) -> dict:
    """Write the layer engine of SbS layer ``layer`` of ``net`` with ``weights`` (``{layer: (S, N)}``
    floats) and datapath ``dp`` (every SbS layer quantized with it); returns the manifest."""
    model = QuantizedModel(net, weights, dp)
    eng = engine_for(model, layer, lanes, engines)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    top = f"layer_engine_l{layer}"
    text = to_verilog(eng, top)
    ql = model.qlayers[layer]
    cycles = eng.cycles()
    manifest = {
        "unit": "layer-engine",
        "top": top,
        "verilog": f"{top}.v",
        "verilog_sha256": design_hash(text),
        "ports": ports_of(eng),
        "layer": layer,
        "input_shape": list(model.net.input_shapes()[layer]),
        "input_kind": eng.input_kind,
        "input_width": eng.in_width,
        "S": eng.S, "N": eng.N, "T": eng.T, "ips": eng.n_ip,
        "lanes": eng.L, "engines": eng.E, "beats": eng.B, "slots": eng.P,
        "chain_latency": lc.chain_latency(eng.L, ql.dp.recip_bits),
        "formats": {"weights": ql.W.text, "h": ql.H.text, "window_value_bits": eng.value_width},
        "datapath": ql.dp.to_dict(),
        "memories": memories(eng),
        "update_lanes": update_lanes_info(eng),
        "cycles_per_image": cycles,
        "cycles_formula": CYCLES_FORMULA,
        "spike_steps_per_cycle": round(eng.n_ip * eng.T / cycles, 6),
        "input_hash": input_hash(net, layer_weights(net, weights, layer, np.float64), ql.dp, layer,
                                 f"layer-engine-E{engines}", lanes, eng.T),
    }
    remove_previous_design(out)
    write_text(out / f"{top}.v", text)
    write_text(out / "manifest.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    if lint:
        run_lint(out / f"{top}.v", top)
    return manifest


__all__ = ["build_layer", "memories", "CYCLES_FORMULA"]
