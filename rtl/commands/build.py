"""``sbs build``: Verilog + manifest.json of the whole-network accelerator (:mod:`rtl.network`), or with
``--layer K`` of one SbS layer's streaming layer engine."""
from __future__ import annotations

import shlex
from pathlib import Path

from rtl.layer.engine import ENGINES_MAX
from rtl.layer.generate import build_layer, load_int_build
from rtl.lint import LintError, lint_command
from rtl.network.build import add_network_arguments, run_network
from sbs_model import loader
from sbs_model.outputs import output_dir

NAME = "build"
HELP = ("generate the whole-network accelerator, or with --layer one SbS layer's streaming engine (Verilog + "
        "manifest.json with the plan and the exact cycles per image)")
LANES_MAX = 64


def add_arguments(p):
    p.add_argument("--layer", type=int, default=None,
                   help="the layer's position in the network, pooling layers counted (reference-mnist: SbS "
                        "layers 0, 2, 4, 5); without --layer: the whole network (rtl.network)")
    loader.add_model_arguments(p)
    p.add_argument("--datapath", default="int-e4m1",
                   help="datapath preset with the int update (int-e4m1, int-e4m0, int-uq0.8) or the scaled "
                        "update (scaled-e4m1, scaled-e3m1: one multiplier per lane; cheap-e4m1, cheap-e3m1: none), "
                        "or a .json file of Datapath fields (default int-e4m1)")
    p.add_argument("--spikes", type=int, default=None, help="T, spikes per IP (default: the config's)")
    p.add_argument("--lanes", type=int, default=None,
                   help=f"lanes L: elements per cycle, 1..{LANES_MAX} (default: N, one spike per cycle, capped "
                        f"at {LANES_MAX})")
    p.add_argument("--engines", type=int, default=1, help=f"engines E sharing the layer's IPs, 1..{ENGINES_MAX} "
                                                          "(default 1)")
    p.add_argument("--lint", action="store_true", help="also run verilator --lint-only -Wall on the result")
    add_network_arguments(p)
    p.add_argument("-o", "--out", required=True,
                   help="output directory (an earlier design in it and its synthesis / place-and-route results "
                        "are replaced)")


def check_args(args) -> None:
    """ValueError (-> exit 2) naming the argument and its range, before any work."""
    if args.lanes is not None and not 1 <= args.lanes <= LANES_MAX:
        raise ValueError(f"--lanes must be in 1..{LANES_MAX}, got {args.lanes}")
    if not 1 <= args.engines <= ENGINES_MAX:
        raise ValueError(f"--engines must be in 1..{ENGINES_MAX}, got {args.engines}")
    if args.spikes is not None and not 1 <= args.spikes <= (1 << 24):
        raise ValueError(f"--spikes must be in 1..{1 << 24}, got {args.spikes}")
    output_dir(args.out, "-o/--out")


def run(args) -> int:
    if args.layer is None:
        return run_network(args)
    check_args(args)
    net, weights, dp = load_int_build(args.config, args.weights, args.datapath, args.spikes, "the layer engine",
                                      updates=("int", "scaled"))
    sbs = [i for i, layer in enumerate(net.layers) if layer.is_sbs]
    if args.layer not in sbs:
        raise ValueError(f"--layer {args.layer}: not an SbS layer of {net.name}; allowed: "
                         f"{', '.join(map(str, sbs))}")
    N = net.layers[args.layer].out_channels
    lanes = args.lanes if args.lanes is not None else min(N, LANES_MAX)
    try:
        man = build_layer(net, weights, dp, args.layer, args.out, lanes, args.engines, lint=args.lint)
    except LintError as exc:
        print(f"sbs build: lint failed: {exc}")
        return 1
    print(f"{man['top']}: layer {man['layer']} S={man['S']} N={man['N']} T={man['T']} IPs={man['ips']} "
          f"L={man['lanes']} E={man['engines']} (B={man['beats']}, P={man['slots']} IPs in flight per engine), "
          f"weights {man['formats']['weights']}: {man['cycles_per_image']} cycles per image "
          f"({man['spike_steps_per_cycle']:.3f} spike steps per cycle) -> {args.out}")
    if args.lint:
        cmd = ["verilator-cli"] + lint_command(Path(args.out) / man["verilog"], man["top"])[1:]
        print(f"lint: clean; the same check by hand: {shlex.join(cmd)}")
    return 0
