"""``sbs cosim OUT``: a whole-network design (from ``sbs build``) under Verilator + cocotb on MNIST images,
every layer's codes and the class == the quantized model, cycles == the cycle model."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from sbs_model.atomic import write_json
from sbs_model.outputs import output_file
from sim.cosim import cosim, summary_lines

NAME = "cosim"
HELP = "cosimulate a whole-network design (sbs build -o OUT) against the quantized model, image by image"
JOBS_MAX = 64


def add_arguments(p):
    p.add_argument("design", metavar="OUT", help="design directory written by 'sbs build' (without --layer)")
    p.add_argument("--data", default=None, metavar="DIR",
                   help="directory with the gzipped IDX test files (default: the embedded 2000 MNIST test images)")
    p.add_argument("-n", type=int, default=10, help="number of test images (default 10)")
    p.add_argument("--first", type=int, default=0, metavar="K", help="first test image (default 0)")
    p.add_argument("--seed", type=int, default=0, help="spike random seed, 0..2**32-1 (default 0, as sbs eval)")
    p.add_argument("--jobs", type=int, default=1, metavar="J", help=f"simulator processes, 1..{JOBS_MAX} (default 1)")
    p.add_argument("--no-waves", action="store_true", help="on a divergence, do not simulate the image again with waves")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the result as JSON (atomically)")


def check_args(args) -> None:
    if args.n < 1:
        raise ValueError(f"-n must be >= 1, got {args.n}")
    if args.first < 0:
        raise ValueError(f"--first must be >= 0, got {args.first}")
    if not 0 <= args.seed < 2 ** 32:
        raise ValueError(f"--seed must be in 0..{2 ** 32 - 1}, got {args.seed}")
    if not 1 <= args.jobs <= JOBS_MAX:
        raise ValueError(f"--jobs must be in 1..{JOBS_MAX}, got {args.jobs}")
    if args.json is not None:
        output_file(args.json, "--json")
    d = Path(args.design)
    if not (d / "manifest.json").is_file():
        raise ValueError(f"OUT {args.design!r}: not a design directory (no manifest.json; make one with "
                         f"'sbs build -o {args.design}')")


def run(args) -> int:
    check_args(args)
    rep = cosim(args.design, args.data, args.n, args.first, args.seed, args.jobs, waves=not args.no_waves,
                progress=lambda m: print(m, flush=True))
    for line in summary_lines(rep):
        print(line)
    if args.json:
        write_json(args.json, rep)
        print(f"-> {args.json}")
    if not rep["equal"]:
        print("sbs cosim: the design differs from the model (see the first divergence above)", file=sys.stderr)
        return 1
    return 0
