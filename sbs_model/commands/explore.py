"""``sbs explore``: resumable design-space sweep over datapaths, spikes, noise, seeds and layers."""
from __future__ import annotations

import sys
from pathlib import Path

from sbs_model.explore.grid import load_grid
from sbs_model.explore.runner import ClusterError, check_out_dir, run_grid

NAME = "explore"
HELP = ("design-space exploration: accuracy (mean over seeds, 95 % interval) and analytic hardware cost of "
        "every point of a grid file; results.json/.csv and plots; resumable")


def add_arguments(p):
    p.add_argument("--grid", required=True, metavar="GRID.toml", help="grid file (see docs/exploration.md); shipped: "
                   "bench/explore/quick.toml, shipped.toml, table.toml, paper.toml, full.toml, ...")
    p.add_argument("--out", default=None, metavar="DIR", help="output directory (default: explore-<grid name>)")
    p.add_argument("--resume", action="store_true",
                   help="continue a sweep in --out: finished runs are kept, only missing ones are computed")
    p.add_argument("-n", type=int, default=None, help="evaluate the first N images (default: the grid's base.n)")
    p.add_argument("--seeds", default=None, metavar="LIST",
                   help="comma-separated seeds replacing every point's seeds (e.g. 0 for a first pass; a later "
                        "--resume with the grid's seeds reuses those runs)")
    p.add_argument("--jobs", "-j", type=int, default=1,
                   help="J > 1: a local Dask cluster of J worker processes (loopback only, cores/J numba threads "
                        "each); default 1: this process alone, each run on all cores, nothing started")
    p.add_argument("--cluster", default=None, metavar="tcp://HOST:8786",
                   help="use an existing Dask cluster by its scheduler address (started with 'dask scheduler' "
                        "and 'dask worker'; see docs/sweeps.md)")
    p.add_argument("--scheduler-file", default=None, metavar="FILE",
                   help="use an existing Dask cluster by the file 'dask scheduler --scheduler-file FILE' wrote")
    p.add_argument("--shard-size", type=int, default=None, metavar="N",
                   help="images per work unit (default: a whole run in one process, 1000 on a cluster); "
                        "results do not depend on it")
    p.add_argument("--timeout", type=float, default=30.0, metavar="S",
                   help="seconds to wait for a --cluster/--scheduler-file scheduler and its first worker "
                        "(default 30)")
    p.add_argument("--weights", default=None, help="override base.weights (.npz or pytorch-sbs directory)")
    p.add_argument("--data", default=None, metavar="DIR", help="override base.data (directory of IDX files)")
    p.add_argument("--no-plots", action="store_true", help="write results only")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args) -> int:
    grid = load_grid(args.grid)
    seeds = None
    if args.seeds is not None:
        try:
            seeds = [int(v) for v in args.seeds.split(",")]
        except ValueError:
            raise ValueError(f"--seeds {args.seeds!r}: expected comma-separated integers 0..{2 ** 32 - 1}") from None
    if not 0 < args.timeout <= 3600:
        raise ValueError(f"--timeout {args.timeout:g} out of range (0, 3600] seconds")
    out = Path(args.out) if args.out else Path(f"explore-{grid.name}")
    check_out_dir(out)
    try:
        doc = run_grid(grid, out, resume=args.resume, n=args.n, jobs=args.jobs, progress=not args.no_progress,
                       plots=not args.no_plots, weights=args.weights, data=args.data, seeds=seeds,
                       cluster=args.cluster, scheduler_file=args.scheduler_file, shard_size=args.shard_size,
                       timeout=args.timeout)
    except KeyboardInterrupt:
        print(f"interrupted: finished runs and shards are kept in {out}; continue with "
              f"sbs explore --grid {args.grid} --out {out} --resume")
        raise
    except ClusterError as e:
        print(f"sbs explore: error: {e}", file=sys.stderr)
        return 1
    rows = doc["points"]
    ok = [r for r in rows if r["status"] == "ok"]
    width = max([len(r["label"]) for r in rows] + [5])
    print(f"{'point':<{width}}  {'T':>5} {'noise':>5} {'layer':>5}  {'accuracy':>8}  95 % interval      "
          f"{'w bits':>6} {'LUT':>6} {'DSP':>4}")
    for r in rows:
        layer = "all" if r["layer"] is None else str(r["layer"])
        head = f"{r['label']:<{width}}  {str(r['spikes']):>5} {r['noise']:>5.2f} {layer:>5}"
        if r["status"] == "ok":
            lut = r.get("hw_lut")
            print(f"{head}  {100 * r['accuracy']:7.2f}%  [{100 * r['ci95_lo']:6.2f}, {100 * r['ci95_hi']:6.2f}]  "
                  f"{r['weight_bits']:>6} {lut if lut is not None else '-':>6} {r.get('hw_dsp', '-'):>4}")
        else:
            print(f"{head}  {r['status']}: {r['error'] or ''}")
    print(f"{len(ok)}/{len(rows)} points done; wrote {out / 'results.json'}, {out / 'results.csv'}"
          + (f" and {len(doc.get('plots', []))} plot files in {out / 'plots'}" if doc.get("plots") else ""))
    workers = doc.get("throughput", {}).get("workers", {})
    if len(workers) > 1:
        print("throughput: " + ", ".join(f"{w} {v['images_per_s']:.1f} images/s" for w, v in workers.items()
                                         if v.get("images_per_s")))
    if not ok:
        print(f"sbs explore: error: no point could be evaluated: all {len(rows)} points are invalid "
              "(messages above)", file=sys.stderr)
        return 1
    return 0
