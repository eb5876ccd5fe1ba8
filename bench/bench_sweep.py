"""Wall time of one small ``sbs explore`` grid on each sweep engine, before and after Dask, same run.

The grid: the shipped model at its full T = 1600 spikes, two points (float32 golden and the int-e4m1
datapath) x two seeds x the first ``--n`` embedded MNIST test images (default 500), so four runs.
Configurations, each into a fresh output directory, one after another on this machine:

* ``before_sequential``: the runner as it was at ``--before`` (default: the commit before Dask),
  one process, runs one after another, numba on every core;
* ``before_jobs2``: that runner with ``--jobs 2`` (its own spawned process pool, cores/2 numba threads
  each);
* ``after_single``: the current runner without a cluster (one process, every core);
* ``after_dask1``: a local Dask cluster of one worker process with one numba thread;
* ``after_dask2``: ``--jobs 2``, a local Dask cluster of two worker processes, one numba thread each.

Shards of ``--shard-size`` images (default 125) on the Dask clusters.  ``--repeats R`` runs the
configurations round robin R times and reports each one's median wall time (all samples kept).  Every configuration must give
the same correct answers per point and seed (checked).  Scaling efficiency of the local cluster:
``t(after_dask1) / (2 * t(after_dask2))``.  On a 2-core machine more than two workers only
oversubscribe the cores, so they are not measured.  The machine's load average is recorded before and
after each configuration (other work on a shared machine slows every configuration).
Writes ``bench/results/sweep_scaling.json`` and ``sweep_scaling.png``.

    python -m bench.bench_sweep [--n 500] [--shard-size 125] [--repeats 1] [--before COMMIT] [--only NAME,...]
"""
from __future__ import annotations

import argparse
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import RESULTS, write_result  # noqa: E402
from sbs_model.explore import runner  # noqa: E402
from sbs_model.explore.grid import parse_grid  # noqa: E402

CONFIGS = ("before_sequential", "before_jobs2", "after_single", "after_dask1", "after_dask2")
GRID = """name = "sweep-bench"
[base]
config = "reference-mnist"
weights = "{weights}"
n = {n}
seeds = [0, 1]
datapath = "int-e4m1"
[[point]]
float = true
[[point]]
weight_format = "e4m1"
label = "int e4m1"
"""


def old_runner(commit: str, tmp: Path):
    """The runner module of ``commit`` (``git show``), importable by spawned worker processes."""
    src = subprocess.run(["git", "-C", str(ROOT), "show", f"{commit}:sbs_model/explore/runner.py"], check=True,
                         capture_output=True, text=True).stdout
    (tmp / "sbs_explore_runner_before.py").write_text(src)
    sys.path.insert(0, str(tmp))
    os.environ["PYTHONPATH"] = os.pathsep.join([str(tmp), str(ROOT), os.environ.get("PYTHONPATH", "")])
    return importlib.import_module("sbs_explore_runner_before")


def correct_table(doc) -> dict:
    return {r["label"]: r["correct_per_seed"] for r in doc["points"]}


def measure(name, grid, out, args, before):
    quiet = dict(progress=False, plots=False, log=lambda *a: None)
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    if name == "before_sequential":
        doc = before.run_grid(grid, out, jobs=1, **quiet)
    elif name == "before_jobs2":
        doc = before.run_grid(grid, out, jobs=2, **quiet)
    elif name == "after_single":
        doc = runner.run_grid(grid, out, **quiet)
    elif name == "after_dask2":
        doc = runner.run_grid(grid, out, jobs=2, shard_size=args.shard_size, **quiet)
    else:  # after_dask1: one worker process with one numba thread (its environment is read at spawn)
        from distributed import LocalCluster

        t0 = time.perf_counter()
        old = os.environ.get("NUMBA_NUM_THREADS")
        os.environ["NUMBA_NUM_THREADS"] = "1"
        try:
            with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                              dashboard_address=None) as lc:
                doc = runner.run_grid(grid, out, cluster=lc.scheduler_address, shard_size=args.shard_size, **quiet)
        finally:
            if old is None:
                os.environ.pop("NUMBA_NUM_THREADS")
            else:
                os.environ["NUMBA_NUM_THREADS"] = old
    wall = time.perf_counter() - t0
    res = {"wall_s": wall, "load_avg_before": list(load0), "load_avg_after": list(os.getloadavg()),
           "correct_per_seed": correct_table(doc)}
    if "throughput" in doc:
        res["workers"] = doc["throughput"]["workers"]
    print(f"{name}: {wall:.1f} s  (load {load0[0]:.1f} -> {res['load_avg_after'][0]:.1f})", flush=True)
    return res


def plot(doc, path):
    """One bar per configuration and round (rounds are the round-robin repeats), labelled with the
    machine's load average before -> after."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = doc["results"]
    res = r["configs"]
    names = [c for c in CONFIGS if c in res]
    rounds = max(len(res[c].get("samples_s", [res[c]["wall_s"]])) for c in names)
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.45 * len(names) * rounds))
    height = 0.8 / rounds
    top = 0.0
    for i, c in enumerate(names):
        samples = res[c].get("samples_s", [res[c]["wall_s"]])
        loads = res[c].get("load_avg_per_sample", [[res[c]["load_avg_before"][0], res[c]["load_avg_after"][0]]])
        for k, (w, (l0, l1)) in enumerate(zip(samples, loads)):
            y = -(i + k * height)
            color = ("#bbbbbb", "#777777")[k % 2] if c.startswith("before") else ("#9ecae1", "#1f77b4")[k % 2]
            ax.barh(y, w, height=height * 0.9, color=color)
            ax.text(w, y, f" {w:.0f} s, round {k + 1} (load {l0:.0f} -> {l1:.0f})", va="center", fontsize=7)
            top = max(top, w)
    ax.set_yticks([-(i + (rounds - 1) * height / 2) for i in range(len(names))], names)
    ax.set_xlabel(f"wall time (s), lower is better\n{doc['machine'].get('cpus', r.get('cores'))}-core machine "
                  "shared with other jobs: 1-minute load average before -> after", fontsize=8)
    eff = r.get("scaling_efficiency")
    ax.set_title(f"sbs explore, {r['points']} points x {r['seeds']} seeds x {r['n_images']} images, T = 1600"
                 + (f"\nlocal Dask cluster 1 -> 2 workers (medians): scaling efficiency {100 * eff:.0f} %"
                    if eff else ""), fontsize=9)
    ax.set_xlim(0, top * 1.5)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500, help="test images per run (default 500)")
    ap.add_argument("--shard-size", type=int, default=125, help="images per shard on Dask (default 125)")
    ap.add_argument("--before", default="19cd3a5^", help="commit of the runner before Dask (default 19cd3a5^)")
    ap.add_argument("--only", default=None, help="comma-separated configurations (default: all)")
    ap.add_argument("--repeats", type=int, default=1, help="timed sweeps per configuration, round robin; the "
                    "median is reported (default 1)")
    args = ap.parse_args(argv)
    names = CONFIGS if args.only is None else tuple(args.only.split(","))
    bad = set(names) - set(CONFIGS)
    if bad:
        ap.error(f"--only: unknown {', '.join(sorted(bad))}; allowed: {', '.join(CONFIGS)}")
    weights = ROOT / "sbs_model" / "models" / "reference-mnist.npz"
    grid = parse_grid(GRID.format(weights=weights, n=args.n), str(ROOT / "bench" / "sweep-bench.toml"))
    tmp = Path(tempfile.mkdtemp(prefix="sbs-bench-sweep-"))
    before_commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", args.before], check=True,
                                   capture_output=True, text=True).stdout.strip()
    samples = {n: [] for n in names}
    try:
        before = old_runner(before_commit, tmp) if any(n.startswith("before") for n in names) else None
        for r in range(args.repeats):  # round robin: a change of the machine's load hits every configuration
            for n in names:
                samples[n].append(measure(n, grid, tmp / f"{n}-{r}", args, before))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    configs = {}
    for n, runs in samples.items():
        walls = [x["wall_s"] for x in runs]
        configs[n] = dict(runs[int(np.argsort(walls)[len(walls) // 2])], wall_s=float(np.median(walls)),
                          samples_s=walls, load_avg_per_sample=[[x["load_avg_before"][0], x["load_avg_after"][0]]
                                                                for x in runs])
        if any(x["correct_per_seed"] != runs[0]["correct_per_seed"] for x in runs):
            raise SystemExit(f"{n}: repeats disagree")
    tables = {n: c["correct_per_seed"] for n, c in configs.items()}
    first = next(iter(tables.values()))
    if any(t != first for t in tables.values()):
        raise SystemExit(f"configurations disagree: {tables}")
    out = {"grid": GRID.format(weights="sbs_model/models/reference-mnist.npz", n=args.n),
           "points": len(grid.points), "seeds": 2, "n_images": args.n, "runs": 2 * len(grid.points),
           "spikes": 1600, "data": "embedded MNIST test images (first n)", "shard_size": args.shard_size,
           "repeats": args.repeats,
           "before_commit": before_commit, "cores": os.cpu_count(), "identical_correct_per_seed": True,
           "configs": configs}
    w = {n: c["wall_s"] for n, c in configs.items()}
    if "after_dask1" in w and "after_dask2" in w:
        out["speedup_dask2_over_dask1"] = w["after_dask1"] / w["after_dask2"]
        out["scaling_efficiency"] = w["after_dask1"] / (2 * w["after_dask2"])
    for a, b in (("after_single", "before_sequential"), ("after_dask2", "before_jobs2"),
                 ("after_dask2", "before_sequential")):
        if a in w and b in w:
            out[f"ratio_{a}_over_{b}"] = w[a] / w[b]
    out["note"] = ("more workers than the machine's 2 cores only oversubscribe them (every worker runs numba "
                   "kernels that keep a core busy), so 1 and 2 workers are measured; the load average shows "
                   "how busy the shared machine was")
    path = write_result("sweep_scaling", out)
    import json

    plot(json.loads(path.read_text()), RESULTS / "sweep_scaling.png")
    print(f"wrote {path} and {RESULTS / 'sweep_scaling.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
