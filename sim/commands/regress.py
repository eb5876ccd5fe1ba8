"""``sbs regress``: the cocotb regression of every registered RTL unit against the model."""
from __future__ import annotations

from sbs_model.outputs import output_dir, output_file
from sim import regress
from sim.runner import SimulatorUnavailable

NAME = "regress"
HELP = ("run the RTL regression (every registered unit x datapath x lanes, cocotb, == against the "
        "model); table, JUnit XML, waves and reproduce commands on failure")


def add_arguments(p):
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quick", dest="mode", action="store_const", const="quick",
                   help="fewer vectors per entry (the default)")
    g.add_argument("--full", dest="mode", action="store_const", const="full",
                   help="the full vector sets (tens of thousands per format, exhaustive small inputs)")
    p.set_defaults(mode="quick")
    p.add_argument("--seed", type=int, default=None,
                   help="regression seed 0..2**32-1 (default: random, printed); each entry's seed is "
                        "derived from it and the entry's name")
    p.add_argument("--sim", default="verilator", help="simulator: verilator (default) or icarus")
    p.add_argument("--waves", action="store_true",
                   help="dump waves (FST, else VCD) for every entry and keep every run dir (without "
                        "it, failing entries are re-run with waves)")
    p.add_argument("--no-fail-waves", action="store_true",
                   help="do not re-run failing entries with waves")
    p.add_argument("-k", dest="patterns", action="append", default=None, metavar="PATTERN",
                   help="run only entries whose name (unit/datapath/L<lanes>[/fault]) equals PATTERN, "
                        "matches it as a glob (*?[]) or contains it; repeatable")
    p.add_argument("--jobs", "-j", type=int, default=2, help="worker processes, 1..64 (default: 2)")
    p.add_argument("--junit", default=None, metavar="OUT.xml", help="write JUnit XML here")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="report directory (report.json, logs/); default build/regress/<time>-<seed>")
    p.add_argument("--keep", action="store_true", help="keep the run directories of passing entries too")
    p.add_argument("--list", action="store_true", help="list the selected entries and exit")


def run(args) -> int:
    if args.out is not None:  # before any work: a wrong output path costs nothing
        output_dir(args.out, "--out")
    if args.junit is not None:
        output_file(args.junit, "--junit")
    selected = regress.select(args.patterns)
    if args.list:
        print(regress.list_entries(selected))
        return 0
    try:
        rep = regress.run_regression(selected, mode=args.mode, seed=args.seed, simulator=args.sim,
                                     jobs=args.jobs, waves=args.waves,
                                     fail_waves=not args.no_fail_waves, out_dir=args.out,
                                     keep=args.keep)
    except SimulatorUnavailable as exc:
        raise ValueError(str(exc)) from None
    print()
    print(regress.format_table(rep))
    if args.junit:
        print(f"JUnit XML: {regress.write_junit(args.junit, rep)}")
    print(f"report: {rep.out_dir}/report.json")
    return 0 if rep.ok else 1
