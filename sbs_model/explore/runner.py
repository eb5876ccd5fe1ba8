"""Resumable design-space sweep: every (point, seed) *run* is evaluated once and stored atomically.

Layout of the output directory::

    grid.toml                      copy of the grid text that was run
    runs/<run id>.json             one finished run (written atomically: a reader never sees half a file)
    shards/<run id>/<a>-<b>.json   finished image shards [a, b) of a run not finished yet
    results.json                   every point: parameters, accuracy (mean over seeds), 95 % interval, cost,
                                   and the images/s of every worker that evaluated shards
    results.csv                    the same points, one row per point
    plots/*.png, *.svg             see :mod:`sbs_model.explore.plots`

A run id is the SHA-256 (16 hex) of the point's canonical parameters, its seed, the network's
``config_hash`` (spikes included), the SHA-256 of the weights and of the images + labels evaluated, and
the evaluator's tag: a finished run is never recomputed by ``--resume``, and a change of any input gives
new ids.  Ctrl-C loses at most the shards in progress.

A run is evaluated in shards of ``shard_size`` images (:mod:`sbs_model.explore.shards`); their merge is
exactly the run's result, so results do not depend on the shard size or on where shards ran.  Without
a cluster each run is one shard evaluated in this process on every core (numba ``prange``).  With
``jobs > 1`` a local Dask cluster of that many worker processes evaluates the shards; ``cluster`` /
``scheduler_file`` use an existing Dask cluster (:mod:`sbs_model.explore.cluster`).
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from fixedpoint.datapath import Datapath
from fixedpoint.formats import parse_format
from sbs_model.atomic import write_json, write_text
from sbs_model.cluster import throughput
from sbs_model.configs import load_network, with_spikes
from sbs_model.data import load_dataset
from sbs_model.explore.cluster import ClusterError, DaskEngine, Unit, iter_local
from sbs_model.explore.grid import DATAPATH_FIELDS, Grid, Point, _seed_list
from sbs_model.explore.plots import make_plots
from sbs_model.explore.shards import Shipment, images_sha256, merge, plan, weights_sha256
from sbs_model.hwcost import HwConfig, hw_cost
from sbs_model.model import Model, wilson_interval
from sbs_model.quant import QuantizedModel, add_noise
from sbs_model.weights import load_any

__all__ = ["ClusterError", "Context", "run_grid", "prepare", "run_id", "weights_sha256", "images_sha256",
           "aggregate", "check_out_dir"]

RUN_FORMAT = 1
CLUSTER_SHARD_SIZE = 1000   # images per shard on a cluster unless --shard-size says otherwise


# ---------------------------------------------------------------------------- evaluation
def default_evaluator(net, weights, datapath, images, labels, seed, noise, batch, progress, first_pattern=0):
    """Float points (``datapath`` None): the golden float32 :class:`~sbs_model.model.Model` on images
    with :func:`sbs_model.quant.add_noise` applied; else :class:`~sbs_model.quant.QuantizedModel`
    (numba backend) with its own ``noise`` option (the same noise).  ``images[k]`` is the test set's
    image ``first_pattern + k`` (its random draws are keyed by that index)."""
    if datapath is None:
        imgs = add_noise(images, noise, seed, first_pattern) if noise else images
        res = Model(net, weights, dtype="float32", seed=seed).evaluate(imgs, labels, batch=batch, progress=progress,
                                                                       first_pattern=first_pattern)
        res["counters"] = {}
        return res
    return QuantizedModel(net, weights, datapath, seed=seed).evaluate(images, labels, batch=batch,
                                                                     progress=progress, noise=noise,
                                                                     first_pattern=first_pattern)


default_evaluator.tag = "model-v1"


@dataclass
class Context:
    """Everything the runs share: base network, weights, images, their hashes, the hardware settings."""

    net: object
    weights: dict
    images: np.ndarray
    labels: np.ndarray
    weights_sha: str
    images_sha: str
    base: dict
    data_text: str


def prepare(grid: Grid, n: int | None = None, weights: str | None = None, data: str | None = None) -> Context:
    """Load network, weights and images of a grid (``n``/``weights``/``data`` override the base)."""
    base = dict(grid.base)
    if weights is not None:
        base["weights"] = weights
    if data is not None:
        base["data"] = data
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"-n must be an integer >= 1, got {n!r}")
        base["n"] = n
    net = load_network(base["config"])
    w, _meta = load_any(base["weights"], net)
    images, labels = load_dataset(base["dataset"], directory=base["data"], split="test", n=base["n"])
    return Context(net, w, images, labels, weights_sha256(w), images_sha256(images, labels), base,
                   base["data"] or "embedded")


def point_network(ctx: Context, point: Point):
    return with_spikes(ctx.net, point.params["spikes"])


def point_error(ctx: Context, point: Point) -> str | None:
    """Why a point cannot run (invalid datapath, layer that is not an SbS layer), else None."""
    if point.error:
        return point.error
    layer = point.params.get("layer")
    if layer is not None:
        sbs = ctx.net.sbs_layers()
        if layer not in sbs:
            return f"layer {layer} is not an SbS layer; allowed: {', '.join(map(str, sbs))}"
    return None


def point_datapath(ctx: Context, point: Point):
    """None (float), a Datapath (every SbS layer), or {layer: Datapath or None} (one layer quantized)."""
    dp = point.datapath
    if dp is None or point.params.get("layer") is None:
        return dp
    return {li: (dp if li == point.params["layer"] else None) for li in ctx.net.sbs_layers()}


def run_id(ctx: Context, point: Point, seed: int, tag: str) -> str:
    blob = json.dumps({"v": RUN_FORMAT, "params": point.params, "seed": int(seed),
                       "net": point_network(ctx, point).config_hash(), "weights": ctx.weights_sha,
                       "images": ctx.images_sha, "evaluator": tag}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def point_id(point: Point) -> str:
    return hashlib.sha256(point.key.encode()).hexdigest()[:12]


def _jsonable(o):
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return o


# ---------------------------------------------------------------------------- files
def load_runs(runs_dir: Path) -> dict:
    """Finished runs on disk: {run id: record} (files that do not parse are ignored and recomputed)."""
    out = {}
    if runs_dir.is_dir():
        for p in runs_dir.glob("*.json"):
            try:
                out[p.stem] = json.loads(p.read_text())
            except (OSError, json.JSONDecodeError):
                continue
    return out


def load_shards(shard_dir: Path) -> dict:
    """Finished shards of one run on disk: {(start, stop): record} (unreadable files are recomputed)."""
    out = {}
    if shard_dir.is_dir():
        for p in shard_dir.glob("*.json"):
            try:
                rec = json.loads(p.read_text())
                ok = rec["status"] == "invalid" or (rec["status"] == "ok" and isinstance(rec["counters"], dict)
                                                    and int(rec["correct"]) >= 0 and float(rec["seconds"]) >= 0
                                                    and int(rec["n"]) == int(rec["stop"]) - int(rec["start"]))
                if ok:
                    out[(int(rec["start"]), int(rec["stop"]))] = rec
            except (OSError, ValueError, KeyError, TypeError):
                continue
    return out


def check_out_dir(out: Path) -> None:
    """``--out`` must be a directory or a path that can become one (ValueError naming --out otherwise)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: is a file, not a directory")
    parent = out
    while not parent.exists():
        if parent.parent == parent:
            break
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise ValueError(f"--out {out}: {parent} is a file, so no directory can be made under it")
    if parent.is_dir() and not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"--out {out}: {parent} is not writable")


def _check_count(name, v, lo, hi):
    if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi):
        raise ValueError(f"{name} {v!r} out of range {lo}..{hi}")


# ---------------------------------------------------------------------------- the sweep
def run_grid(grid: Grid, out_dir, resume: bool = False, n: int | None = None, jobs: int = 1, evaluator=None,
             progress: bool = True, plots: bool = True, weights: str | None = None, data: str | None = None,
             seeds=None, log=print, cluster: str | None = None, scheduler_file: str | None = None,
             shard_size: int | None = None, timeout: float = 30.0) -> dict:
    """Run every pending shard of ``grid`` into ``out_dir``; write results.json/.csv (and plots).

    Without ``resume`` the directory must not hold finished runs.  ``seeds`` (a list) replaces every
    point's seeds (run ids do not change: a later run with more seeds resumes).  ``jobs > 1``: a local
    Dask cluster of ``jobs`` worker processes; ``cluster`` (scheduler address) or ``scheduler_file``: an
    existing Dask cluster; neither: this process alone.  ``shard_size``: images per work unit (default:
    a whole run without a cluster, :data:`CLUSTER_SHARD_SIZE` on one).  results.json/.csv are rewritten
    after every finished run (unfinished points have status ``pending``).  Returns the results document.
    :class:`~sbs_model.explore.cluster.ClusterError` if the cluster fails (finished shards are kept)."""
    _check_count("--jobs", jobs, 1, 64)
    _check_count("--shard-size", shard_size, 1, 10 ** 7)
    if (cluster is not None or scheduler_file is not None) and jobs != 1:
        raise ValueError(f"--jobs {jobs}: not with --cluster/--scheduler-file (the cluster's workers do the work)")
    if cluster is not None and scheduler_file is not None:
        raise ValueError("--cluster and --scheduler-file: give one of them")
    evaluator = evaluator or default_evaluator
    tag = getattr(evaluator, "tag", getattr(evaluator, "__name__", "evaluator"))
    out = Path(out_dir)
    check_out_dir(out)
    runs_dir, shards_dir = out / "runs", out / "shards"
    done = load_runs(runs_dir)
    n_shard_files = len(list(shards_dir.glob("*/*.json"))) if shards_dir.is_dir() else 0
    if (done or n_shard_files) and not resume:
        raise ValueError(f"--out {out} already holds {len(done)} finished runs and {n_shard_files} finished "
                         "shards; pass --resume to continue that sweep, or choose another --out")
    if seeds is not None:
        seeds = tuple(_seed_list("--seeds", list(seeds)))
        grid = replace(grid, points=tuple(replace(p, seeds=seeds) for p in grid.points))
    ctx = prepare(grid, n=n, weights=weights, data=data)
    skipped = [(p, point_error(ctx, p)) for p in grid.points]
    skipped = [(p, e) for p, e in skipped if e]
    if len(skipped) == len(grid.points):
        raise ValueError(f"--grid {grid.path or grid.name}: every point is invalid, nothing to evaluate; "
                         f"{point_label(skipped[0][0])}: {skipped[0][1]}")
    on_cluster = jobs > 1 or cluster is not None or scheduler_file is not None
    n_img = len(ctx.images)
    size = shard_size or (min(n_img, CLUSTER_SHARD_SIZE) if on_cluster else n_img)

    # every point's first seed before any second seed: partial results cover the whole grid early
    runs, bad = [], {p.key for p, _ in skipped}
    for order, p in enumerate(grid.points):
        if p.key in bad:
            continue
        for k, s in enumerate(p.seeds):
            rid = run_id(ctx, p, s, tag)
            if rid not in done:
                runs.append((k, order, p, s, rid))
    runs = [r[2:] for r in sorted(runs, key=lambda t: (t[0], t[1]))]
    n_runs = sum(len(p.seeds) for p in grid.points if p.key not in bad)

    # each pending run: its finished shards (kept) and the shards still to compute
    units, have = [], {}
    for p, s, rid in runs:
        finished = load_shards(shards_dir / rid)
        used, todo = plan(n_img, size, finished)
        have[rid] = {ab: finished[ab] for ab in used}
        net = point_network(ctx, p)
        units += [Unit(rid, a, b, net, point_datapath(ctx, p), int(s), p.params["noise"], ctx.base["batch"])
                  for a, b in todo]
    info = {rid: (p, s) for p, s, rid in runs}
    n_kept = sum(len(v) for v in have.values())

    shipment = Shipment(ctx.weights, ctx.images, ctx.labels, ctx.weights_sha, ctx.images_sha)
    skip: set = set()
    remaining: dict = {}
    for u in units:
        remaining[u.rid] = remaining.get(u.rid, 0) + 1
    # reach the cluster before anything is written (a wrong address exits 2 with nothing on disk)
    engine = None
    if units and on_cluster:
        engine = DaskEngine(jobs=jobs if jobs > 1 else None, address=cluster, scheduler_file=scheduler_file,
                            timeout=timeout).__enter__()
    results, bar = iter(()), None
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_text(out / "grid.toml", grid.text)
        for p, err in skipped:
            log(f"skip point {point_label(p)}: {err}")
        log(f"{len(grid.points)} points, {n_runs} runs ({len(runs)} to do, {n_runs - len(runs)} finished), "
            f"{n_img} images, data {ctx.data_text}; {len(units)} shards to evaluate"
            + (f" ({n_kept} finished shards kept)" if n_kept else ""))

        def finish_run(rid, shards):
            p, s = info[rid]
            m = merge(list(shards.values()), n_img)
            rec = {"format": RUN_FORMAT, "point_id": point_id(p), "params": p.params, "seed": int(s),
                   "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "status": m["status"],
                   "error": m["error"]}
            if m["status"] == "ok":
                rec["result"] = _jsonable(m["result"])
            rec["shards"] = m["shards"]
            write_json(runs_dir / f"{rid}.json", rec)
            shutil.rmtree(shards_dir / rid, ignore_errors=True)
            done[rid] = rec
            _write_results(out, aggregate(grid, ctx, done, tag))

        # runs whose shards were all finished before (e.g. under another shard size) complete now
        for rid in [r for r in have if r not in remaining]:
            finish_run(rid, have.pop(rid))

        if progress:
            bar = tqdm(total=len(units), unit="shard", desc="explore")
        if engine is not None:
            log(engine.describe())
            results = engine.iter(units, shipment, evaluator, skip)
        elif units:
            results = iter_local(units, shipment, evaluator, progress, skip)
        for u, rec in results:
            rid = u.rid
            if rid in skip:
                continue
            rec = dict(rec, run_id=rid)
            if bar is not None:
                bar.set_postfix_str(f"{point_label(info[rid][0])} seed {info[rid][1]} [{u.start}, {u.stop})"[:60])
                bar.update(1)
            remaining[rid] -= 1
            have[rid][(u.start, u.stop)] = rec
            if rec["status"] == "invalid" or remaining[rid] == 0:
                if rec["status"] == "invalid":
                    skip.add(rid)   # deterministic for the point: its other shards are not needed
                finish_run(rid, have[rid])
            else:
                write_json(shards_dir / rid / f"{u.start}-{u.stop}.json", rec)
    finally:
        close = getattr(results, "close", None)
        if close is not None:
            close()                 # cancels what is still queued on the cluster
        if engine is not None:
            engine.__exit__(None, None, None)
        if bar is not None:
            bar.close()

    doc = aggregate(grid, ctx, done, tag)
    _write_results(out, doc)
    if plots:
        doc["plots"] = [str(p) for p in make_plots(doc["points"], out / "plots")]
    return doc


# ---------------------------------------------------------------------------- aggregation
def _write_results(out: Path, doc: dict) -> None:
    write_json(out / "results.json", doc)
    write_text(out / "results.csv", to_csv(doc["points"]))


def point_label(p: Point) -> str:
    """A point's own label (explicit or preset-based), else ``float`` or its weight format."""
    if p.label:
        return p.label
    if p.params["float"]:
        return "float"
    return str((p.params["datapath"] or {}).get("weight_format", "?"))


def labels_for(points) -> dict:
    """Short label per point: explicit ``label`` (a preset point's is the preset name), else ``float``,
    else the weight format plus every other datapath field that differs between the grid's unlabelled
    non-float points (``field=value``)."""
    dps = [p.params["datapath"] for p in points if p.params["datapath"] is not None and not p.label]
    varied = [k for k in DATAPATH_FIELDS if k != "weight_format" and len({json.dumps(d.get(k)) for d in dps}) > 1]
    out = {}
    for p in points:
        if p.label:
            out[p.key] = p.label
        elif p.params["float"]:
            out[p.key] = "float"
        else:
            d = p.params["datapath"]
            parts = [str(d.get("weight_format"))] + [f"{k}={d.get(k)}" for k in varied]
            out[p.key] = " ".join(parts)
    return out


def _hw_columns(ctx: Context, point: Point, net) -> dict:
    b = ctx.base
    n_w = {li: S * N for li, (S, N) in net.weight_shapes().items()}
    if point.params["float"]:
        return {"hw_weight_mem_bits": 32 * sum(n_w.values())}
    dp = Datapath.from_dict(point.params["datapath"])
    hw = HwConfig(lanes=b["lanes"], engines=b["engines"], clock_mhz=float(b["clock_mhz"]), target=b["target"])
    c = hw_cost(dp, net, hw)
    wbits = dp.formats()[0].width
    layer = point.params.get("layer")
    mem = sum((wbits if layer is None or li == layer else 32) * k for li, k in n_w.items())
    return {"hw_lut": c["lut"], "hw_ff": c["ff"], "hw_dsp": c["dsp"], "hw_bram": c["bram"],
            "hw_weight_mem_bits": mem, "hw_cycles_per_image": c["cycles_per_image"],
            "hw_ms_per_image": c["ms_per_image"]}


def _sum_counters(dicts) -> dict:
    total = {}
    for d in dicts:
        for layer, c in (d or {}).items():
            t = total.setdefault(str(layer), {})
            for k, v in c.items():
                t[k] = t.get(k, 0) + v
    return total


def aggregate(grid: Grid, ctx: Context, runs: dict, tag: str) -> dict:
    """One row per point: parameters, status, accuracy (mean over seeds), 95 % interval, cost."""
    labels = labels_for(grid.points)
    rows, shards = [], []
    for p in grid.points:
        net = point_network(ctx, p)
        spikes = [l.spikes for l in net.layers if l.is_sbs]
        row = {"point_id": point_id(p), "label": labels[p.key], "origin": p.origin, "status": "pending",
               "error": None, "float": p.params["float"], "layer": p.params["layer"],
               "spikes": spikes[0] if len(set(spikes)) == 1 else spikes, "noise": p.params["noise"],
               "seeds": list(p.seeds)}
        dpd = p.params["datapath"] or {}
        for k in DATAPATH_FIELDS:
            row[k] = dpd.get(k)
        row["weight_bits"] = 32 if p.params["float"] else _weight_bits(dpd.get("weight_format"))
        err = point_error(ctx, p)
        recs = [runs.get(run_id(ctx, p, s, tag)) for s in p.seeds]
        if err:
            row.update(status="invalid", error=err)
        elif any(r is not None and r.get("status") == "invalid" for r in recs):
            row.update(status="invalid", error=next(r["error"] for r in recs if r and r.get("status") == "invalid"))
        elif all(r is not None for r in recs):
            res = [r["result"] for r in recs]
            n = res[0]["n"]
            correct = [r["correct"] for r in res]
            accs = [r["accuracy"] for r in res]
            mean_c = float(np.mean(correct))
            lo, hi = wilson_interval(mean_c, n)
            row.update(status="ok", n=n, accuracy=float(np.mean(accs)), ci95_lo=lo, ci95_hi=hi,
                       acc_std=float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0,
                       acc_min=float(min(accs)), acc_max=float(max(accs)), acc_per_seed=accs,
                       correct_per_seed=correct, seconds=float(sum(r["seconds"] for r in res)),
                       ms_per_pattern=float(np.mean([r["ms_per_pattern"] for r in res])),
                       counters=_sum_counters(r.get("counters") for r in res))
        if row["status"] != "invalid":
            row.update(_hw_columns(ctx, p, net))
        rows.append(row)
        for r in recs:
            for sh in (r or {}).get("shards") or []:
                shards.append(sh)
    return {"grid": grid.name, "grid_path": grid.path, "grid_sha256": hashlib.sha256(grid.text.encode()).hexdigest(),
            "config": str(ctx.base["config"]), "weights": str(ctx.base["weights"]), "weights_sha256": ctx.weights_sha,
            "data": ctx.data_text, "dataset": ctx.base["dataset"], "n_images": int(len(ctx.images)),
            "images_sha256": ctx.images_sha, "evaluator": tag,
            "hw": {k: ctx.base[k] for k in ("lanes", "engines", "clock_mhz", "target")},
            "ci95_note": "Wilson 95 % interval of the mean accuracy over seeds with n test images",
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "points": rows,
            "throughput": throughput(shards)}


def _weight_bits(fmt_text) -> int | None:
    try:
        return parse_format(fmt_text).width
    except (ValueError, TypeError):
        return None


CSV_FIRST = ["point_id", "label", "status", "float", "layer", "spikes", "noise", "weight_bits", "accuracy",
             "ci95_lo", "ci95_hi", "acc_std", "acc_min", "acc_max", "n", "seeds", "seconds", "ms_per_pattern",
             "hw_lut", "hw_ff", "hw_dsp", "hw_bram", "hw_weight_mem_bits", "hw_cycles_per_image",
             "hw_ms_per_image"]


def to_csv(rows: list) -> str:
    """results.csv text: fixed leading columns, every datapath field, then the rest (lists/dicts as JSON)."""
    cols = CSV_FIRST + list(DATAPATH_FIELDS) + ["acc_per_seed", "correct_per_seed", "counters", "error", "origin"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in rows:
        vals = []
        for c in cols:
            v = r.get(c)
            if isinstance(v, (list, dict)):
                v = json.dumps(v, sort_keys=True)
            elif v is None:
                v = ""
            elif isinstance(v, float) and math.isfinite(v):
                v = repr(v)
            vals.append(v)
        w.writerow(vals)
    return buf.getvalue()
