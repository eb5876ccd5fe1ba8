"""Simulation speed of the cocotb + Verilator testbenches: the same design built with cocotb's
default visibility (``--public-flat-rw``: every signal public) and with only the top-level ports
public (:mod:`sim.runner`, ``visibility="ports"``), optionally with other C++ optimisation flags ->
``bench/results/sim_speed.json``.

Usage: ``python bench/bench_sim_speed.py [--designs layer,fc2,pad-max-avg] [--variants all,ports]
[--images 3] [--name sim_speed] [--network-dir DIR]``; ``--network-dir`` adds a design made by
``sbs build`` (e.g. the reference network; its first ``--images`` MNIST test images).

Every variant is built from scratch in one fresh build root (the Verilator run-time library is
compiled first, on a tiny design, so that no variant pays for it) and runs the same vectors with the
same seed; the result of every run must be the same (codes, classes, cycles) in all variants.
Reported per design and variant: compile seconds (``verilator`` + C++), run seconds, simulated cycles
and cycles per second; for the network designs also the speed of the ``run`` phase alone (job sent
to class out: no Python in the loop, the simulator's own speed), and the ratios to the first variant.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from bench.common import write_result
from rtl.network.build import build_network, load_design
from rtl.network.design import cycle_model
from sbs_model.data import load_dataset
from sbs_model.small_networks import SMALL_NETWORKS
from sbs_model.quant import QuantizedModel
from sbs_model.weights import init_weights
from sim import runner
from sim.cosim import TESTBENCH, vectors

SEED = 11
#: small networks (random weights) of the regular cosim test, with their plans
NETS = {k: SMALL_NETWORKS[k] for k in ("fc2", "pad-max-avg")}
#: variant name -> (visibility, make flags of the C++ compile)
VARIANTS = {
    "all": ("all", {}),
    "ports": ("ports", {}),
    "ports-O2": ("ports", {"OPT_FAST": "-O2"}),
    "all-O2": ("all", {"OPT_FAST": "-O2"}),
}


def _network_case(name: str, work: Path, images: int, design_dir: Path | None = None):
    d = design_dir or work / name
    if design_dir is None and not (d / "manifest.json").exists():
        net, plan = NETS[name]
        build_network(net, init_weights(net, 3), "int-e4m1", d, plan=plan, progress=lambda m: None)
    man, net, weights, dps = load_design(d)
    text = (d / man["verilog"]).read_text()
    model = QuantizedModel(net, weights, dps, seed=SEED)
    cpi = cycle_model(model, {int(k): v for k, v in man["plan"]["layers"].items()})["cycles_per_image"]
    ims, _ = load_dataset("mnist", None, "test", None)
    first = 0 if design_dir is not None else 5
    vec, _ = vectors(model, ims[first:first + images], first, cpi)
    return text, man["top"], TESTBENCH, vec


def _layer_case():
    from sim import tb_layer_regress as lr
    eng, _ = lr.small_engine()
    data, _ = lr.small_vectors(eng, SEED, stalls=False)
    return eng, "layer_engine", "sim.tb_layer", data


def run_case(design, top, tb, data, variant: str) -> dict:
    visibility, flags = VARIANTS[variant]
    runner.MAKE_FLAGS.clear()
    runner.MAKE_FLAGS.update(flags)
    try:
        res = runner.build_and_test(design, top, tb, data=data, seed=SEED, visibility=visibility)
    finally:
        runner.MAKE_FLAGS.clear()
    out = res.out
    cycles = int(sum(out.get("cycles", [])))
    row = {"variant": variant, "visibility": visibility, "make_flags": flags, "ok": res.ok,
           "cached": res.cached, "compile_seconds": round(res.build_seconds, 2),
           "run_seconds": round(res.run_seconds, 3), "cycles": cycles,
           "cycles_per_second": round(cycles / res.run_seconds, 1) if res.run_seconds > 0 else None,
           "generated_cpp_bytes": sum(p.stat().st_size for p in res.build_dir.glob("Vtop*.cpp")),
           "outcome": {k: out.get(k) for k in ("cycles", "classes", "mismatches", "codes") if k in out}}
    if "seconds" in out:  # tb_network: the phase without Python
        run_s = sum(s["run"] for s in out["seconds"])
        run_c = sum(s["run_cycles"] for s in out["seconds"])
        row.update(run_phase_seconds=round(run_s, 3), run_phase_cycles=run_c,
                   run_phase_cycles_per_second=round(run_c / run_s, 1) if run_s > 0 else None,
                   read_phase_seconds=round(sum(s["read"] for s in out["seconds"]), 3))
    print(f"  {variant:10s} compile {row['compile_seconds']:8.1f} s  run {row['run_seconds']:7.2f} s  "
          f"{row['cycles_per_second']} cycles/s  run phase {row.get('run_phase_cycles_per_second')} cycles/s  "
          f"ok={res.ok}", flush=True)
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--designs", default="layer,fc2")
    ap.add_argument("--variants", default="all,ports")
    ap.add_argument("--images", type=int, default=3, help="images per network run (1..20)")
    ap.add_argument("--name", default="sim_speed")
    ap.add_argument("--work", default=None, help="build root (default: a fresh temporary directory)")
    ap.add_argument("--network-dir", default=None, help="also a design made by 'sbs build' (its OUT directory)")
    args = ap.parse_args(argv)
    designs = [d for d in args.designs.split(",") if d]
    if args.network_dir is not None:
        if not (Path(args.network_dir) / "manifest.json").is_file():
            print(f"--network-dir: no manifest.json in {args.network_dir}", file=sys.stderr)
            return 2
        designs.append(str(args.network_dir))
    variants = [v for v in args.variants.split(",") if v]
    for d in designs:
        if d != "layer" and d not in NETS and d != args.network_dir:
            print(f"--designs: unknown design {d!r} (allowed: layer, {', '.join(NETS)})", file=sys.stderr)
            return 2
    for v in variants:
        if v not in VARIANTS:
            print(f"--variants: unknown variant {v!r} (allowed: {', '.join(VARIANTS)})", file=sys.stderr)
            return 2
    if not 1 <= args.images <= 20:
        print(f"--images must be in 1..20, got {args.images}", file=sys.stderr)
        return 2
    work = Path(args.work or tempfile.mkdtemp(prefix="sim_speed_"))
    os.environ["SBS_SIM_BUILD"] = str(work / "build")
    # the run-time library first (compiled once, copied into every later build)
    from rtl.rng import SpikeRandom
    runner.build_and_test(SpikeRandom("pipelined"), "spike_random_warmup", "sim.tb_rng",
                          data={"n": 0, "outputs": []}, seed=1, testcase="__none__")
    results = []
    for d in designs:
        if d == "layer":
            case = _layer_case()
        else:
            case = _network_case(d, work, args.images, Path(d) if d == args.network_dir else None)
        print(f"{d}:", flush=True)
        rows = [run_case(*case, v) for v in variants]
        base = rows[0]
        for r in rows:
            r["same_outcome_as_first"] = r["outcome"] == base["outcome"]
            for k in ("cycles_per_second", "run_phase_cycles_per_second"):
                if r.get(k) and base.get(k):
                    r[f"{k}_ratio"] = round(r[k] / base[k], 3)
            r["compile_ratio"] = round(r["compile_seconds"] / base["compile_seconds"], 3) \
                if base["compile_seconds"] else None
        results.append({"design": d, "runs": rows})
    path = write_result(args.name, results, {"note": "same design, vectors and seed in every variant; "
                                                     "first variant is the baseline of the ratios"})
    print(f"wrote {path}")
    bad = [(x["design"], r["variant"]) for x in results for r in x["runs"]
           if not r["ok"] or not r["same_outcome_as_first"]]
    if bad:
        print(f"NOT EQUAL / FAILED: {bad}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
