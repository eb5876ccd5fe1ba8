"""Scaling of a local Dask cluster from 1 to 2 worker processes for ``sbs explore`` and ``sbs cosim`` shards.

Two workloads, each on a loopback Dask cluster started (and warmed up) before the clock starts, so the
times are those of the sharded job alone (cluster start-up is recorded separately):

* ``explore``: the shipped model at T = 1600, one point (int-e4m1 datapath) x 2 seeds x the first ``--n``
  embedded MNIST test images, shards of ``--shard-size`` images; every worker gets one numba thread
  (``NUMBA_NUM_THREADS=1``), as ``sbs explore --jobs 2`` gives each of 2 workers on 2 cores;
* ``cosim``: the small two-layer fully connected design of the tests (random weights, int-e4m1, T = 6
  and 5) under Verilator, ``--cosim-n`` images in shards of ``--cosim-shard-size``; the Verilator build is
  made (or found in the cache) before any timing.

Configurations ``dask1`` and ``dask2`` (1 and 2 worker processes, one task thread each), round robin
``--repeats`` times (a change of the machine's load hits both); medians and every sample are kept, with the
1-minute load average before and after each sample and of the whole script.  Scaling efficiency =
t(dask1) / (2 x t(dask2)), from the medians.  Both configurations must give the same results (explore: the
correct answers per seed; cosim: ``equal`` and ``compared_sha256``), else the script stops.  More workers
than the machine's cores only oversubscribe them, so they are not measured: on several machines, use the
clusters of docs/sweeps.md.

Writes ``bench/results/<--name>.json`` and ``.png`` (default name ``sweep_scaling_cluster``; the older
``sweep_scaling.json`` of ``bench/bench_sweep.py`` compares the engines before and after Dask).  About 3
minutes on an idle 2-core machine with the defaults, plus the Verilator build of the cosim design when it
is not in the build cache yet (one to four minutes)::

    python -m bench.bench_sweep_scaling [--what explore,cosim] [--n 500] [--shard-size 50] [--repeats 2]
"""
from __future__ import annotations

import argparse
import json
import os
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
from sbs_model.network import LayerSpec, NetworkSpec  # noqa: E402
from sbs_model.weights import init_weights  # noqa: E402

WORKLOADS = ("explore", "cosim")
CONFIGS = {"dask1": 1, "dask2": 2}
GRID = """name = "scaling-bench"
[base]
config = "reference-mnist"
weights = "{weights}"
n = {n}
seeds = [0, 1]
datapath = "int-e4m1"
[[point]]
weight_format = "e4m1"
label = "int e4m1"
"""
# the two-layer fully connected network of tests/test_network_cosim.py (same weights, datapath and plan)
COSIM_NET = NetworkSpec((1, 6, 6), (LayerSpec("sbs", 1, 8, (6, 6), spikes=6), LayerSpec("sbs", 8, 3, (1, 1), spikes=5)),
                        name="small-fc")
COSIM_PLAN = {0: {"lanes": 8, "engines": 1}, 1: {"lanes": 2, "engines": 1}}


class Cluster:
    """A loopback Dask cluster of ``k`` worker processes with one numba thread each, warmed up."""

    def __init__(self, k: int):
        self.k = k

    def __enter__(self):
        from distributed import Client, LocalCluster

        self.old = os.environ.get("NUMBA_NUM_THREADS")
        os.environ["NUMBA_NUM_THREADS"] = "1"   # read by the worker processes when they start
        t0 = time.perf_counter()
        self.lc = LocalCluster(n_workers=self.k, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None)
        with Client(self.lc) as c:
            c.wait_for_workers(self.k)
            # import the model and simulation code in every worker before timing
            c.run(lambda: __import__("sim.cosim") and __import__("sbs_model.explore.runner") and None)
        self.startup_s = time.perf_counter() - t0
        return self

    def __exit__(self, *exc):
        self.lc.close()
        if self.old is None:
            os.environ.pop("NUMBA_NUM_THREADS", None)
        else:
            os.environ["NUMBA_NUM_THREADS"] = self.old
        return False


def run_explore(address, grid, out, args) -> tuple[dict, dict]:
    doc = runner.run_grid(grid, out, cluster=address, shard_size=args.shard_size, progress=False, plots=False,
                          log=lambda *a: None)
    return {r["label"]: r["correct_per_seed"] for r in doc["points"]}, doc["throughput"]["workers"]


def cosim_design(tmp: Path) -> Path:
    """Build the small design once (Verilog) and its Verilator model (one untimed image in this process)."""
    from rtl.network.build import build_network
    from sim.cosim import cosim

    d = tmp / "cosim-design"
    build_network(COSIM_NET, init_weights(COSIM_NET, 3), "int-e4m1", d, plan=COSIM_PLAN, progress=lambda m: None)
    t0 = time.perf_counter()
    rep = cosim(d, n=1, first=0, seed=11, waves=False, progress=lambda m: None)
    print(f"cosim design ready (Verilator build {rep['build_seconds']} s, first image {time.perf_counter() - t0:.1f} s)",
          flush=True)
    return d


def run_cosim(address, design, args) -> tuple[dict, dict]:
    from sim.cosim import cosim

    rep = cosim(design, n=args.cosim_n, first=0, seed=11, cluster=address, shard_size=args.cosim_shard_size,
                waves=False, progress=lambda m: None)
    if not rep["equal"]:
        raise SystemExit(f"cosim: the design differs from the model: {rep['first_divergence']}")
    return {"equal": rep["equal"], "compared_sha256": rep["compared_sha256"]}, rep["throughput"]["workers"]


def plot(doc, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = doc["results"]["workloads"]
    fig, axes = plt.subplots(1, len(res), figsize=(4.2 * len(res), 3.2), squeeze=False)
    for ax, (w, r) in zip(axes[0], res.items()):
        for i, (c, v) in enumerate(r["configs"].items()):
            ax.bar(i, v["wall_s"], color=("#9ecae1", "#1f77b4")[i % 2])
            ax.scatter([i] * len(v["samples_s"]), v["samples_s"], color="k", s=8, zorder=3)
            ax.text(i, v["wall_s"], f"{v['wall_s']:.1f} s", ha="center", va="bottom", fontsize=8)
        ax.set_xticks(range(len(r["configs"])), [f"{CONFIGS[c]} worker{'s' if CONFIGS[c] > 1 else ''}"
                                                  for c in r["configs"]])
        eff = r.get("scaling_efficiency")
        ax.set_title(f"{w}: {r['what']}\nscaling efficiency {100 * eff:.0f} %" if eff else w, fontsize=8)
        ax.set_ylabel("wall time (s), median; dots: samples", fontsize=8)
    la = doc["results"]["load_avg"]
    fig.suptitle(f"local Dask cluster, {doc['results']['cores']} cores; 1-minute load average "
                 f"{la['before'][0]:.1f} before, {la['after'][0]:.1f} after", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--what", default="explore,cosim", help="comma-separated workloads (default explore,cosim)")
    ap.add_argument("--n", type=int, default=500, help="explore: test images per run (default 500)")
    ap.add_argument("--shard-size", type=int, default=50, help="explore: images per shard (default 50)")
    ap.add_argument("--cosim-n", type=int, default=24, help="cosim: test images (default 24)")
    ap.add_argument("--cosim-shard-size", type=int, default=2, help="cosim: images per shard (default 2)")
    ap.add_argument("--repeats", type=int, default=2, help="timed runs per configuration, round robin (default 2)")
    ap.add_argument("--name", default="sweep_scaling_cluster", help="result name in bench/results")
    args = ap.parse_args(argv)
    what = tuple(args.what.split(","))
    if set(what) - set(WORKLOADS):
        ap.error(f"--what: unknown {', '.join(sorted(set(what) - set(WORKLOADS)))}; allowed: {', '.join(WORKLOADS)}")
    for name in ("n", "shard_size", "cosim_n", "cosim_shard_size", "repeats"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    load_before = list(os.getloadavg())
    t_start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="sbs-bench-scaling-"))
    weights = ROOT / "sbs_model" / "models" / "reference-mnist.npz"
    grid = parse_grid(GRID.format(weights=weights, n=args.n), str(ROOT / "bench" / "scaling-bench.toml"))
    design = cosim_design(tmp) if "cosim" in what else None
    samples = {w: {c: [] for c in CONFIGS} for w in what}
    startup = {c: [] for c in CONFIGS}
    for r in range(args.repeats):
        for c, k in CONFIGS.items():
            with Cluster(k) as cl:
                startup[c].append(cl.startup_s)
                address = cl.lc.scheduler_address
                for w in what:
                    l0 = os.getloadavg()[0]
                    t0 = time.perf_counter()
                    if w == "explore":
                        result, workers = run_explore(address, grid, tmp / f"explore-{c}-{r}", args)
                    else:
                        result, workers = run_cosim(address, design, args)
                    wall = time.perf_counter() - t0
                    samples[w][c].append({"wall_s": wall, "load_avg_before": l0, "load_avg_after": os.getloadavg()[0],
                                          "result": result, "workers": workers})
                    print(f"{w} {c} round {r + 1}: {wall:.1f} s (load {l0:.1f} -> {os.getloadavg()[0]:.1f})", flush=True)
    workloads = {}
    for w in what:
        results = {json.dumps(s["result"], sort_keys=True) for c in CONFIGS for s in samples[w][c]}
        if len(results) != 1:
            raise SystemExit(f"{w}: configurations or repeats disagree: {sorted(results)}")
        configs = {}
        for c in CONFIGS:
            walls = [s["wall_s"] for s in samples[w][c]]
            configs[c] = {"workers": CONFIGS[c], "wall_s": float(np.median(walls)), "samples_s": walls,
                          "load_avg_per_sample": [[s["load_avg_before"], s["load_avg_after"]] for s in samples[w][c]],
                          "throughput_last_sample": samples[w][c][-1]["workers"]}
        t1, t2 = configs["dask1"]["wall_s"], configs["dask2"]["wall_s"]
        workloads[w] = {
            "what": (f"shipped model T = 1600, int-e4m1, 2 seeds x {args.n} images, shards of {args.shard_size}"
                     if w == "explore" else f"fc2 design (Verilator), {args.cosim_n} images, shards of "
                                            f"{args.cosim_shard_size}"),
            "result": json.loads(results.pop()), "configs": configs, "speedup_2_over_1": t1 / t2,
            "scaling_efficiency": t1 / (2 * t2)}
    out = {"workloads": workloads, "repeats": args.repeats, "cores": os.cpu_count(),
           "cluster_startup_s": {c: float(np.median(v)) for c, v in startup.items()},
           "load_avg": {"before": load_before, "after": list(os.getloadavg())},
           "script_wall_s": time.perf_counter() - t_start,
           "note": ("times exclude starting the cluster (cluster_startup_s) and the Verilator build; more workers "
                    "than cores only oversubscribe them and are not measured; a load average well above 0 "
                    "means other work shared the cores and the efficiency is not a clean figure")}
    path = write_result(args.name, out)
    plot(json.loads(path.read_text()), RESULTS / f"{args.name}.png")
    for w, r in workloads.items():
        print(f"{w}: 1 worker {r['configs']['dask1']['wall_s']:.1f} s, 2 workers {r['configs']['dask2']['wall_s']:.1f} s, "
              f"efficiency {100 * r['scaling_efficiency']:.0f} %")
    print(f"wrote {path} and {RESULTS / (args.name + '.png')} ({out['script_wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
