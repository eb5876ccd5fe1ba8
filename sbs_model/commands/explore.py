"""``sbs explore``: resumable design-space sweep over datapaths, spikes, noise, seeds and layers."""
from __future__ import annotations

NAME = "explore"
HELP = ("design-space exploration: accuracy (mean over seeds, 95 % interval) and analytic hardware cost of "
        "every point of a grid file; results.json/.csv and plots; resumable")


def add_arguments(p):
    p.add_argument("--grid", required=True, metavar="GRID.toml", help="grid file (see README, 'Design-space "
                   "exploration'); shipped: bench/explore/quick.toml, paper.toml, full.toml")
    p.add_argument("--out", default=None, metavar="DIR", help="output directory (default: explore-<grid name>)")
    p.add_argument("--resume", action="store_true",
                   help="continue a sweep in --out: finished runs are kept, only missing ones are computed")
    p.add_argument("-n", type=int, default=None, help="evaluate the first N images (default: the grid's base.n)")
    p.add_argument("--seeds", default=None, metavar="LIST",
                   help="comma-separated seeds replacing every point's seeds (e.g. 0 for a first pass; a later "
                        "--resume with the grid's seeds reuses those runs)")
    p.add_argument("--jobs", "-j", type=int, default=1,
                   help="worker processes (default 1: points one after another, each on all cores)")
    p.add_argument("--weights", default=None, help="override base.weights (.npz or pytorch-sbs directory)")
    p.add_argument("--data", default=None, metavar="DIR", help="override base.data (directory of IDX files)")
    p.add_argument("--no-plots", action="store_true", help="write results only")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args) -> int:
    from pathlib import Path

    from sbs_model.explore.grid import load_grid
    from sbs_model.explore.runner import run_grid

    grid = load_grid(args.grid)
    seeds = None
    if args.seeds is not None:
        try:
            seeds = [int(v) for v in args.seeds.split(",")]
        except ValueError:
            raise ValueError(f"--seeds {args.seeds!r}: expected comma-separated integers 0..{2 ** 32 - 1}") from None
    out = Path(args.out) if args.out else Path(f"explore-{grid.name}")
    try:
        doc = run_grid(grid, out, resume=args.resume, n=args.n, jobs=args.jobs, progress=not args.no_progress,
                       plots=not args.no_plots, weights=args.weights, data=args.data, seeds=seeds)
    except KeyboardInterrupt:
        print(f"interrupted: finished runs are kept in {out}/runs; continue with "
              f"sbs explore --grid {args.grid} --out {out} --resume")
        raise
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
    return 0
