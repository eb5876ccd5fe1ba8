"""Benchmark of ``sbs regress``: wall time of the quick and full regressions, vectors per second
per entry and per unit (cocotb + Verilator, warm build caches).

Run: ``python bench/bench_regress.py [--jobs 2] [--seed 1] [--modes quick,full]``.  A warm-up
quick run (untimed) fills the build caches first, so the times are those of a repeated run of the
same checkout.  Writes ``bench/results/regress.json``.

Per entry: ``seconds`` (vector generation + Verilog conversion + cached build lookup + cocotb
run), ``sim_seconds`` (the cocotb/Verilator process alone) and ``vectors_per_second`` =
vectors / sim_seconds (includes the simulator's start-up, so short entries look slower).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import write_result  # noqa: E402
from sim import regress  # noqa: E402


def summarise(rep) -> dict:
    per_unit: dict[str, dict] = {}
    for o in rep.outcomes:
        u = per_unit.setdefault(o.unit, {"entries": 0, "vectors": 0, "seconds": 0.0, "sim_seconds": 0.0})
        u["entries"] += 1
        u["vectors"] += o.vectors
        u["seconds"] += o.seconds
        u["sim_seconds"] += o.sim_seconds
    for u in per_unit.values():
        u["vectors_per_second"] = round(u["vectors"] / u["sim_seconds"], 1) if u["sim_seconds"] else 0.0
        u["seconds"] = round(u["seconds"], 2)
        u["sim_seconds"] = round(u["sim_seconds"], 2)
    return {
        "wall_seconds": round(rep.seconds, 2),
        "ok": rep.ok,
        "counts": rep.counts(),
        "vectors": sum(o.vectors for o in rep.outcomes),
        "per_unit": per_unit,
        "entries": [{"name": o.name, "status": o.status, "vectors": o.vectors,
                     "seconds": round(o.seconds, 2), "sim_seconds": round(o.sim_seconds, 2),
                     "build_cached": o.cached, "vectors_per_second": round(o.vectors_per_second, 1)}
                    for o in rep.outcomes],
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--modes", default="quick,full")
    args = ap.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    for m in modes:
        if m not in regress.MODES:
            raise SystemExit(f"--modes: {m!r} is not one of {regress.MODES}")
    results = {"jobs": args.jobs, "seed": args.seed, "entries": len(regress.entries())}
    with tempfile.TemporaryDirectory() as tmp:
        print("warm-up (fills the build caches; not timed)")
        regress.run_regression(mode="quick", seed=args.seed, jobs=args.jobs,
                               out_dir=Path(tmp) / "warm", progress=None)
        for m in modes:
            rep = regress.run_regression(mode=m, seed=args.seed, jobs=args.jobs,
                                         out_dir=Path(tmp) / m)
            print(regress.format_table(rep))
            results[m] = summarise(rep)
    path = write_result("regress", results)
    print(f"wrote {path}")
    return 0 if all(results[m]["ok"] for m in modes) else 1


if __name__ == "__main__":
    sys.exit(main())
