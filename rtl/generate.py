"""Design generation for one SbS layer: Verilog, memory images (hex) and ``manifest.json``.

:func:`generate` builds the :class:`rtl.engine.IPEngine` (``unit="engine"``) or the
:class:`rtl.dot.DotProduct` alone (``unit="dot"``) of layer ``K`` of a network from its trained
weights, encoded with the datapath (per-layer scaled weight format), and writes into ``out_dir``:

* ``<top>.v``: deterministic Verilog (:func:`rtl.emit.to_verilog`; identical bytes for identical
  inputs).  Memories are initialised inside the Verilog (``initial`` blocks).
* one ``<memory>.hex`` per memory (the same contents; one word per line, lowest address first,
  ``ceil(width/4)`` hex digits, the ``$readmemh`` format): engine ``weights.hex`` (row s, beat b at
  ``s*B + b``, lane j = element ``b*L + j`` in bits ``[j*w, (j+1)*w)``), ``h_init.hex``,
  ``schedule.hex`` (``G_t << Fc | C_t``); for the dot unit ``weights.hex`` is the ``w`` stream of
  every row in the same packing (it has no memory of its own).
* ``manifest.json``: unit, top module, the Verilog's SHA-256, ports (name as in the Verilog,
  direction, width), latency (formula and value), formats, lanes, T, S, N, the datapath, memories,
  and ``input_hash`` = SHA-256 of the network's ``config_hash``, the layer's float32 weight bytes,
  the datapath text, layer, unit, lanes and T.  No dates or paths: the whole directory is a pure
  function of the inputs.

The paper datapath (float32 update) has no RTL update: ``unit="engine"`` raises ``ValueError``;
``unit="dot"`` works for every datapath.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from amaranth import Shape

from fixedpoint.schedule import Schedule
from rtl.dot import DotProduct
from rtl.emit import design_hash, to_verilog
from rtl.engine import IPEngine
from rtl.lint import lint as run_lint
from sbs_model.atomic import write_text
from sbs_model.float_ref import layer_weights
from sbs_model.hw_cycles import sampler_latency, spike_cycles

UNITS = ("engine", "dot")


def hex_lines(words, width: int) -> str:
    """``$readmemh`` text: one word per line, ``ceil(width/4)`` lower-case hex digits."""
    digits = max(1, -(-int(width) // 4))
    return "".join(f"{int(w):0{digits}x}\n" for w in words)


def ports_of(component) -> list[dict]:
    """Verilog ports of a ``wiring.Component`` (``name``, ``direction`` in/out, ``width``), plus
    ``clk`` and ``rst``, in signature order."""
    out = [{"name": "clk", "direction": "in", "width": 1}, {"name": "rst", "direction": "in", "width": 1}]
    for path, member in component.signature.members.flatten():
        if not member.is_port:
            continue
        out.append({"name": "__".join(str(p) for p in path),
                    "direction": "in" if member.flow.name == "In" else "out",
                    "width": Shape.cast(member.shape).width})
    return out


def input_hash(net, w_float, dp, layer: int, unit: str, lanes: int, T: int) -> str:
    h = hashlib.sha256()
    for part in (net.config_hash(), dp.text, f"layer={layer}", f"unit={unit}", f"lanes={lanes}", f"T={T}"):
        h.update(part.encode() + b"\0")
    h.update(np.ascontiguousarray(w_float, dtype=np.float32).tobytes())
    return h.hexdigest()


def build(net, weights, dp, layer: int, lanes: int = 1, unit: str = "engine", T: int | None = None,
          fault: str | None = None):
    """``(component, info)`` for layer ``layer``: the unit and a dict with the layer's weight codes,
    format, S, N, T, schedule.  ValueError for a bad layer/unit/lanes or an unsupported datapath."""
    if unit not in UNITS:
        raise ValueError(f"unit {unit!r}; allowed: {', '.join(UNITS)}")
    sbs_layers = [i for i, l in enumerate(net.layers) if l.is_sbs]
    if not isinstance(layer, int) or layer not in sbs_layers:
        raise ValueError(f"layer {layer!r}: not an SbS layer of {net.name}; allowed: "
                         f"{', '.join(map(str, sbs_layers))}")
    if not isinstance(lanes, int) or not 1 <= lanes <= 64:
        raise ValueError(f"lanes {lanes!r} out of range 1..64")
    spec = net.layers[layer]
    T = int(spec.spikes if T is None else T)
    w = layer_weights(net, weights, layer, np.float64)
    w_codes, w_fmt = dp.encode_weights(w)
    S, N = w_codes.shape
    schedule = Schedule.from_layer(spec)
    info = {"w_float": w, "w_codes": np.asarray(w_codes, dtype=np.int64), "w_format": w_fmt, "S": int(S),
            "N": int(N), "T": T, "schedule": schedule, "layer": layer}
    if unit == "engine":
        comp = IPEngine(dp, w_codes, T, lanes=lanes, w_format=w_fmt, schedule=schedule, layer_index=layer,
                        fault=fault)
    else:
        comp = DotProduct(dp, int(N), lanes, w_fmt)
    return comp, info


def _latency(comp, unit: str, dp, info: dict, lanes: int) -> dict:
    B = -(-info["N"] // lanes)
    if unit == "dot":
        return {"formula": "3 + ceil(log2 L) cycles from a row's last beat to its result; one row per "
                           "ceil(N/L) cycles",
                "cycles": comp.latency, "row_cycles": B}
    sc = spike_cycles(dp, info["N"], info["S"], lanes)
    recip = "Qb + 2" if dp.recip_method == "div" else "nr_iters + 1"
    return {"formula": f"S + 1 + 21 + (ceil(log2 S) + 1) + T * (2*B + 3 + ceil(log2 L) + recip + 10) + N, "
                       f"B = ceil(N/L), recip = {recip} (job transfer to last h_out transfer, no ignored spike)",
            "cycles": comp.latency, "per_spike": sc["accepted"], "per_ignored_spike": sc["ignored"],
            "B": B, "sampler_latency": sampler_latency(info["S"])}


DERIVED_RESULTS = ("synth.json", "yosys_*", "pnr.json", "pnr-*")  # rtl.synth and rtl.pnr outputs


def remove_previous_design(out: Path) -> list[str]:
    """Delete an earlier design in ``out`` -- the files its ``manifest.json`` names and the results
    derived from it (synthesis, place and route: :data:`DERIVED_RESULTS`) -- so that nothing stale
    sits beside a new design.  A directory without ``manifest.json`` is left alone.  Returns the
    removed names."""
    mpath = out / "manifest.json"
    if not mpath.is_file():
        return []
    try:
        old = json.loads(mpath.read_text())
    except (ValueError, OSError):
        old = {}
    names = {"manifest.json"}
    if isinstance(old, dict):
        names.add(old.get("verilog"))
        names.update(m.get("file") for m in (old.get("memories") or {}).values() if isinstance(m, dict))
    for pattern in DERIVED_RESULTS:
        names.update(p.name for p in out.glob(pattern))
    removed = []
    for name in sorted(n for n in names if isinstance(n, str) and n and Path(n).name == n):
        if (out / name).is_file():
            (out / name).unlink()
            removed.append(name)
    return removed


def generate(net, weights, dp, layer: int, out_dir, lanes: int = 1, unit: str = "engine", T: int | None = None,
             lint: bool = False) -> dict:
    """Write the design of layer ``layer`` into ``out_dir`` (see module docstring); returns the
    manifest dict.  ``lint=True`` also runs ``verilator --lint-only -Wall`` (:func:`rtl.lint.lint`)."""
    comp, info = build(net, weights, dp, layer, lanes, unit, T)
    top = f"sbs_{unit}_l{layer}"
    text = to_verilog(comp, top)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    remove_previous_design(out)
    write_text(out / f"{top}.v", text)
    mems = {}
    if unit == "engine":
        images = comp.memories()
    else:
        ww = info["w_format"].width
        B = -(-info["N"] // lanes)
        words = []
        for row in info["w_codes"]:
            r = [int(c) for c in row] + [0] * (B * lanes - info["N"])
            words += [sum(c << (j * ww) for j, c in enumerate(r[b * lanes:(b + 1) * lanes])) for b in range(B)]
        images = {"weights": (lanes * ww, words)}
    for name, (width, words) in images.items():
        write_text(out / f"{name}.hex", hex_lines(words, width))
        mems[name] = {"file": f"{name}.hex", "width": int(width), "depth": len(words)}
    H = dp.formats()[1]
    manifest = {
        "unit": unit,
        "top": top,
        "verilog": f"{top}.v",
        "verilog_sha256": design_hash(text),
        "layer": layer,
        "lanes": lanes,
        "T": info["T"], "S": info["S"], "N": info["N"],
        "ports": ports_of(comp),
        "latency": _latency(comp, unit, dp, info, lanes),
        "formats": {"weights": str(info["w_format"]), "weights_base": dp.weight_format, "h": str(H),
                    "accumulator": dp.acc_format, "update": dp.update,
                    "window_value_bits": getattr(comp, "value_width", None)},
        "datapath": dp.to_dict(),
        "memories": mems,
        "input_hash": input_hash(net, info["w_float"], dp, layer, unit, lanes, info["T"]),
    }
    write_text(out / "manifest.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    if lint:
        run_lint(out / f"{top}.v", top)
    return manifest
