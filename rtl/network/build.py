"""Write the whole-network design directory (``sbs build`` without ``--layer``).

:func:`build_network` writes into ``out_dir`` (an earlier design there and its synthesis / place
and route results are removed first, :func:`rtl.generate.remove_previous_design`):

* ``sbs_network.v``: deterministic Verilog of :class:`rtl.network.top.NetworkAccelerator`
  (memories initialised inside the Verilog);
* ``weights.npz``: the weights the design was built from (float32, :func:`sbs_model.weights.save_weights`),
  so that ``sbs cosim`` rebuilds the same quantized model;
* ``manifest.json``: ``unit`` ``network``, ``top``, ``verilog``, ``verilog_sha256``, ``ports``, the
  network (``network``: its JSON form), ``datapaths`` per SbS layer, ``formats``, ``plan`` (lanes and
  engine cores per SbS layer, where it came from, the estimated resources), ``memories`` (feature
  maps and per-layer engine memories), ``update_lanes`` per SbS layer (``int``: two multipliers per
  lane; ``scaled``: one, or none for the ``cheap-*`` presets, plus FinalScale), ``cycles_per_image``
  (:mod:`sbs_model.network_cycles`) with the per-stage table, and ``input_hash`` (SHA-256 of the network, datapaths, plan and weights).

No dates or absolute paths: the directory is a pure function of its inputs.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from rtl.emit import design_hash, to_verilog
from rtl.generate import ports_of, remove_previous_design
from rtl.layer.generate import load_int_build
from rtl.layer.generate import memories as engine_memories
from rtl.layer.generate import update_lanes_info
from rtl.lint import LintError
from rtl.lint import lint as run_lint
from rtl.network.design import accelerator, check_model, cycle_model
from sbs_model import layer_cycles as lc
from sbs_model import plan as planner
from sbs_model.atomic import write_text
from sbs_model.network import NetworkSpec
from sbs_model.outputs import output_dir
from sbs_model.quant import QuantizedModel
from sbs_model.quant_ref import datapath_from_fields
from sbs_model.weights import load_weights, save_weights

TOP = "sbs_network"
WEIGHTS_FILE = "weights.npz"


def network_input_hash(net, weights: dict, dps: dict, plan: dict) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(net.to_dict(), sort_keys=True).encode() + b"\0")
    for i in sorted(dps):
        h.update(f"{i}:{dps[i].text}".encode() + b"\0")
    h.update(json.dumps(planner.plan_json(plan), sort_keys=True).encode() + b"\0")
    for i in sorted(weights):
        h.update(np.ascontiguousarray(weights[i], dtype=np.float32).tobytes())
    return h.hexdigest()


def as_float32(weights: dict) -> dict:
    """The weights as the design stores them (float32), so build and cosim see the same model."""
    return {int(k): np.ascontiguousarray(v, dtype=np.float32) for k, v in weights.items()}


def choose_plan(net, dps: dict, plan="auto", device: str = "lfe5u-85f", target_cycles=None) -> tuple[dict, str]:
    """``(plan, source)``: ``plan`` ``"auto"`` (the planner), a dict, or a JSON file path."""
    sbs = [i for i, layer in enumerate(net.layers) if layer.is_sbs]
    if plan == "auto":
        return planner.auto_plan(net, dps, device, target_cycles), f"auto ({device})"
    if isinstance(plan, dict):
        out, source = planner.check_plan(planner.plan_json(plan) if "layers" not in plan else plan, sbs), "given"
    else:
        out, source = planner.load_plan(plan, sbs), str(Path(plan).name)
    planner.stages(net, dps, out)  # slots below a layer's chain: ValueError naming the layer
    return out, source


def build_network(net, weights, datapath, out_dir, plan="auto", device: str = "lfe5u-85f", target_cycles=None,
                  seed: int = 0, lint: bool = False, progress=print) -> dict:
    """Write the design of the whole network (see module docstring); returns the manifest."""
    weights = as_float32(weights)
    model = QuantizedModel(net, weights, datapath, seed=seed)
    check_model(model)
    dps = model.datapaths
    plan, source = choose_plan(net, dps, plan, device, target_cycles)
    progress(f"plan ({source}): " + ", ".join(f"layer {i}: L={p['lanes']} E={p['engines']}"
                                               + (f" P={p['slots']}" if p.get("slots") else "")
                                               for i, p in sorted(plan.items())))
    acc = accelerator(model, plan)
    progress("elaborating and writing Verilog ...")
    text = to_verilog(acc, TOP)
    cm = cycle_model(model, plan)
    stages = planner.stages(net, dps, plan)
    for st, c in zip(stages, cm["stages"]):
        st.update(c)
    lanes_info = {str(i): update_lanes_info(u) for i, u in enumerate(acc.units) if hasattr(u, "x_in")}
    mems = {f"fmap{i}": {"words": size, "bits": size * acc.hw} for i, size in enumerate(acc.sizes)}
    for i, u in enumerate(acc.units):
        if hasattr(u, "x_in"):
            for name, mm in engine_memories(u).items():
                mems[f"layer{i}.{name}"] = dict(mm, engines=u.E if mm["per_engine"] else 1)
        else:
            mems[f"layer{i}.pool_geometry"] = {"words": u.n_out * u.k, "bits": u.n_out * u.k * 16}
    H = model.qlayers[min(model.qlayers)].H
    manifest = {
        "unit": "network",
        "top": TOP,
        "verilog": f"{TOP}.v",
        "verilog_sha256": design_hash(text),
        "ports": ports_of(acc),
        "network": net.to_dict(),
        "weights": WEIGHTS_FILE,
        "seed_default": int(seed),
        "datapaths": {str(i): dp.to_dict() for i, dp in sorted(dps.items())},
        "formats": {"h": H.text, "weights": {str(i): ql.W.text for i, ql in sorted(model.qlayers.items())},
                    "image": "uint8, 28x28, row-major", "crop": list(net.input_shape[1:])},
        "plan": {"layers": planner.plan_json(plan)["layers"], "source": source, "device": device,
                 "estimate": planner.plan_cost(net, dps, plan)},
        "memories": mems,
        "update_lanes": lanes_info,
        "stages": stages,
        "cycles_per_image": cm["cycles_per_image"],
        "cycles_model": "sbs_model.network_cycles (job transfer to class transfer, one image at a time; "
                        "an SbS stage with the scaled update includes FinalScale's "
                        f"{lc.FINAL} cycles)",
        "input_hash": network_input_hash(net, weights, dps, plan),
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    remove_previous_design(out)
    write_text(out / f"{TOP}.v", text)
    save_weights(out / WEIGHTS_FILE, weights, net)
    write_text(out / "manifest.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    if lint:
        progress("lint (verilator --lint-only -Wall) ...")
        run_lint(out / f"{TOP}.v", TOP)
    return manifest


def load_design(out_dir):
    """``(manifest, model)`` of a design directory written by :func:`build_network` (the model with
    the seed ``seed``); ValueError naming what is wrong."""
    d = Path(out_dir)
    mpath = d / "manifest.json"
    if not d.is_dir() or not mpath.is_file():
        raise ValueError(f"OUT {str(d)!r}: not a design directory (no manifest.json; make one with 'sbs build -o {d}')")
    try:
        man = json.loads(mpath.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"OUT {str(d)!r}: manifest.json is not valid JSON ({e})") from None
    if not isinstance(man, dict) or man.get("unit") != "network":
        raise ValueError(f"OUT {str(d)!r}: not a whole-network design (manifest unit {man.get('unit')!r}; "
                         f"make one with 'sbs build -o {d}' without --layer)")
    for f in (man["verilog"], man["weights"]):
        if not (d / f).is_file():
            raise ValueError(f"OUT {str(d)!r}: {f} is missing")
    net = NetworkSpec.from_dict(man["network"])
    weights, _ = load_weights(d / man["weights"], net)
    dps = {int(k): datapath_from_fields(v, f"manifest datapath of layer {k}") for k, v in man["datapaths"].items()}
    plan = {int(k): v for k, v in man["plan"]["layers"].items()}
    if network_input_hash(net, as_float32(weights), dps, plan) != man["input_hash"]:
        raise ValueError(f"OUT {str(d)!r}: the weights/network/datapaths do not match the manifest's input_hash")
    return man, net, weights, dps


__all__ = ["build_network", "load_design", "choose_plan", "TOP", "WEIGHTS_FILE"]


# ------------------------------------------------------------------ sbs build (whole network)
def add_network_arguments(p) -> None:
    """The options of ``sbs build`` without ``--layer``."""
    p.add_argument("--plan", default="auto", metavar="auto|FILE.json",
                   help="whole network: engine cores and lanes per SbS layer; 'auto' (default) = the planner "
                        "(least cycles per image within --device by the analytic cost model), or a JSON file "
                        '{"layers": {"0": {"lanes": 32, "engines": 2}, ...}}')
    p.add_argument("--device", default="lfe5u-85f",
                   help=f"whole network: the planner's device budget (default lfe5u-85f; one of {', '.join(planner.DEVICES)})")
    p.add_argument("--target-ms", type=float, default=None, metavar="X",
                   help="whole network: the planner stops adding hardware once the cycle model gives <= X ms per "
                        "image at the planning clock of 100 MHz (a goal, not a measured latency)")


def check_network_args(args) -> None:
    if args.lanes is not None or args.engines != 1:
        raise ValueError("--lanes/--engines are for one layer (--layer K); for the whole network use --plan FILE.json")
    if args.spikes is not None and not 1 <= args.spikes <= (1 << 24):
        raise ValueError(f"--spikes must be in 1..{1 << 24}, got {args.spikes}")
    planner.get_device(args.device)
    if args.target_ms is not None and not (0 < args.target_ms <= 1e6):
        raise ValueError(f"--target-ms must be in (0, 1e6], got {args.target_ms}")
    if args.plan != "auto" and not Path(args.plan).is_file():
        raise ValueError(f"--plan {args.plan!r}: not a file; allowed: auto or a plan JSON file")
    output_dir(args.out, "-o/--out")


def run_network(args) -> int:
    """``sbs build`` without ``--layer``: the whole network into ``args.out``."""
    check_network_args(args)
    net, weights, dp = load_int_build(args.config, args.weights, args.datapath, args.spikes, "the accelerator",
                                      updates=("int", "scaled"))
    if args.plan != "auto":
        planner.load_plan(args.plan, [i for i, layer in enumerate(net.layers) if layer.is_sbs])
    target = None if args.target_ms is None else int(args.target_ms * 1e-3 * 100e6)
    try:
        man = build_network(net, weights, dp, args.out, args.plan, args.device, target, lint=args.lint,
                            progress=lambda m: print(m, flush=True))
    except LintError as exc:
        print(f"sbs build: lint failed: {exc}")
        return 1
    est = man["plan"]["estimate"]
    print(f"{man['top']}: {net.name}, {len(net.layers)} layers, T={[s['T'] for s in man['stages'] if s['kind'] == 'sbs']}: "
          f"{man['cycles_per_image']} cycles per image (cycle model); estimated {est['lut4']} LUT4, "
          f"{est['mult18']} MULT18X18D, {est['dp16kd']} DP16KD (analytic) -> {args.out}")
    if args.lint:
        print("lint: clean")
    return 0
