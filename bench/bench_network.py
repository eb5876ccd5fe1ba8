"""Whole-network accelerator: ``sbs build`` + ``sbs cosim`` of the reference network (shipped
weights, int-e4m1, the planner's plan) on MNIST test images -> ``bench/results/network_cosim.json``.

Usage: ``python bench/bench_network.py [-n 100] [--spikes T] [--jobs J] [--out DIR]``.
The result holds the cosim report (images, equal, mismatched, cycles per image from the cycle model
and measured, accuracy, images per second of simulation), the plan, the manifest's estimate, the
commands, machine and commit.  Latency in ms needs the post-route Fmax (``sbs pnr DIR``,
``bench/results/network_pnr.json``), never an assumed clock.
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

from bench.common import write_result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=100)
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--spikes", type=int, default=None, help="T in every SbS layer (default: the config's, 1600)")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--plan", default="auto")
    ap.add_argument("--out", default="build/bench_network", help="design directory (default build/bench_network)")
    ap.add_argument("--name", default="network_cosim", help="result name in bench/results (default network_cosim)")
    ap.add_argument("--source-commit", default=None,
                    help="the commit this checkout was exported from (for runs from 'git archive' copies)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    build = ["sbs", "build", "--plan", args.plan, "-o", str(out), "--lint"]
    if args.spikes:
        build += ["--spikes", str(args.spikes)]
    rep_path = out / "cosim.json"
    cos = ["sbs", "cosim", str(out), "-n", str(args.n), "--first", str(args.first), "--jobs", str(args.jobs),
           "--json", str(rep_path)]
    t0 = time.perf_counter()
    for cmd in (build, cos):
        print("$", shlex.join(cmd), flush=True)
        rc = subprocess.call(cmd)
        if rc not in (0, 1) or not (out / "manifest.json").is_file():
            print(f"bench_network: {cmd[1]} failed (exit {rc})", file=sys.stderr)
            return rc or 1
    man = json.loads((out / "manifest.json").read_text())
    rep = json.loads(rep_path.read_text())
    results = {"cosim": rep, "plan": man["plan"], "stages": man["stages"], "cycles_per_image": man["cycles_per_image"],
               "verilog_sha256": man["verilog_sha256"], "input_hash": man["input_hash"],
               "seconds_total": round(time.perf_counter() - t0, 1)}
    extra = {"commands": [shlex.join(build), shlex.join(cos)]}
    if args.source_commit:
        extra["source_commit"] = args.source_commit
    path = write_result(args.name, results, extra)
    print(f"-> {path}: equal={rep['equal']} images={rep['images']} cycles={rep['cycles_per_image']} "
          f"accuracy={rep['accuracy']:.4f}")
    return 0 if rep["equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
