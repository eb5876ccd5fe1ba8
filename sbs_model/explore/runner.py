"""Resumable design-space sweep: every (point, seed) *run* is evaluated once and stored atomically.

Layout of the output directory::

    grid.toml            copy of the grid text that was run
    runs/<run id>.json   one finished run (written atomically: a reader never sees half a file)
    results.json         every point: parameters, accuracy (mean over seeds), 95 % interval, cost
    results.csv          the same, one row per point
    plots/*.png, *.svg   see :mod:`sbs_model.explore.plots`

A run id is the SHA-256 (16 hex) of the point's canonical parameters, its seed, the network's
``config_hash`` (spikes included), the SHA-256 of the weights and of the images + labels evaluated, and
the evaluator's tag: a finished run is never recomputed by ``--resume``, and a change of any input gives
new ids.  Ctrl-C loses at most the runs in progress.

Runs execute one after another; each uses both cores through the model's numba kernels (``prange``).
``jobs > 1`` starts that many worker processes (spawned) and gives each ``cores // jobs`` numba threads.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fixedpoint.datapath import Datapath
from sbs_model.atomic import write_json, write_text
from sbs_model.explore.grid import DATAPATH_FIELDS, Grid, Point
from sbs_model.model import wilson_interval

RUN_FORMAT = 1


# ---------------------------------------------------------------------------- evaluation
def default_evaluator(net, weights, datapath, images, labels, seed, noise, batch, progress):
    """Float points (``datapath`` None): the golden float32 :class:`~sbs_model.model.Model` on images
    with :func:`sbs_model.quant.add_noise` applied; else :class:`~sbs_model.quant.QuantizedModel`
    (numba backend) with its own ``noise`` option (the same noise)."""
    from sbs_model.quant import QuantizedModel, add_noise

    if datapath is None:
        from sbs_model.model import Model

        imgs = add_noise(images, noise, seed, 0) if noise else images
        res = Model(net, weights, dtype="float32", seed=seed).evaluate(imgs, labels, batch=batch, progress=progress)
        res["counters"] = {}
        return res
    return QuantizedModel(net, weights, datapath, seed=seed).evaluate(images, labels, batch=batch,
                                                                     progress=progress, noise=noise)


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


def weights_sha256(weights: dict) -> str:
    h = hashlib.sha256()
    for k in sorted(weights, key=int):
        w = np.ascontiguousarray(weights[k])
        h.update(f"{int(k)}:{w.dtype.str}:{w.shape}".encode())
        h.update(w.tobytes())
    return h.hexdigest()


def images_sha256(images, labels) -> str:
    h = hashlib.sha256()
    for a in (images, labels):
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def prepare(grid: Grid, n: int | None = None, weights: str | None = None, data: str | None = None) -> Context:
    """Load network, weights and images of a grid (``n``/``weights``/``data`` override the base)."""
    from sbs_model.configs import load_network
    from sbs_model.data import load_dataset
    from sbs_model.weights import load_any

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
    from sbs_model.configs import with_spikes

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


def evaluate_run(ctx: Context, point: Point, seed: int, evaluator, progress: bool) -> dict:
    """Evaluate one run; a ``ValueError`` from the model (e.g. weights that do not fit the format)
    makes the run ``invalid`` with that message (deterministic, so it is stored like a result)."""
    net = point_network(ctx, point)
    rec = {"format": RUN_FORMAT, "point_id": point_id(point), "params": point.params, "seed": int(seed),
           "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    try:
        res = evaluator(net, ctx.weights, point_datapath(ctx, point), ctx.images, ctx.labels, seed=int(seed),
                        noise=point.params["noise"], batch=ctx.base["batch"], progress=progress)
    except ValueError as e:
        rec.update(status="invalid", error=str(e))
        return rec
    keep = ("accuracy", "ci95", "n", "correct", "seconds", "ms_per_pattern", "counters")
    rec.update(status="ok", error=None, result=_jsonable({k: res[k] for k in keep if k in res}))
    return rec


# ---------------------------------------------------------------------------- worker processes
_WORKER = {}


def _worker_init(ctx, evaluator, threads):
    import numba

    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    _WORKER.update(ctx=ctx, evaluator=evaluator)


def _worker_run(point, seed, path):
    rec = evaluate_run(_WORKER["ctx"], point, seed, _WORKER["evaluator"], False)
    write_json(path, rec)
    return rec


# ---------------------------------------------------------------------------- the sweep
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


def run_grid(grid: Grid, out_dir, resume: bool = False, n: int | None = None, jobs: int = 1, evaluator=None,
             progress: bool = True, plots: bool = True, weights: str | None = None, data: str | None = None,
             seeds=None, log=print) -> dict:
    """Run every pending run of ``grid`` into ``out_dir``; write results.json/.csv (and plots).

    Without ``resume`` the directory must not hold finished runs.  ``seeds`` (a list) replaces every
    point's seeds (run ids do not change: a later run with more seeds resumes).  results.json/.csv are
    rewritten after every finished run (unfinished points have status ``pending``).  Returns the
    results document."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or not 1 <= jobs <= 64:
        raise ValueError(f"--jobs {jobs!r} out of range 1..64")
    evaluator = evaluator or default_evaluator
    tag = getattr(evaluator, "tag", getattr(evaluator, "__name__", "evaluator"))
    out = Path(out_dir)
    runs_dir = out / "runs"
    done = load_runs(runs_dir)
    if done and not resume:
        raise ValueError(f"--out {out} already holds {len(done)} finished runs; pass --resume to continue that "
                         "sweep, or choose another --out")
    if seeds is not None:
        from dataclasses import replace

        from sbs_model.explore.grid import _seed_list

        seeds = tuple(_seed_list("--seeds", list(seeds)))
        grid = replace(grid, points=tuple(replace(p, seeds=seeds) for p in grid.points))
    ctx = prepare(grid, n=n, weights=weights, data=data)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "grid.toml", grid.text)

    # every point's first seed before any second seed: partial results cover the whole grid early
    todo, skipped = [], []
    for order, p in enumerate(grid.points):
        err = point_error(ctx, p)
        if err:
            skipped.append((p, err))
            continue
        for k, s in enumerate(p.seeds):
            rid = run_id(ctx, p, s, tag)
            if rid not in done:
                todo.append((k, order, p, s, rid))
    todo = [t[2:] for t in sorted(todo, key=lambda t: (t[0], t[1]))]
    for p, err in skipped:
        log(f"skip point {point_label(p)}: {err}")
    n_runs = sum(len(p.seeds) for p in grid.points if not point_error(ctx, p))
    log(f"{len(grid.points)} points, {n_runs} runs ({len(todo)} to do, {n_runs - len(todo)} finished), "
        f"{len(ctx.images)} images, data {ctx.data_text}")

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), unit="run", desc="explore")
    try:
        if jobs == 1:
            for p, s, rid in todo:
                if bar is not None:
                    bar.set_postfix_str(f"{point_label(p)} seed {s}"[:60])
                rec = evaluate_run(ctx, p, s, evaluator, progress)
                write_json(runs_dir / f"{rid}.json", rec)
                done[rid] = rec
                _write_results(out, aggregate(grid, ctx, done, tag))
                if bar is not None:
                    bar.update(1)
        elif todo:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor, as_completed

            threads = max(1, (os.cpu_count() or 1) // jobs)
            mp = multiprocessing.get_context("spawn")
            runs_dir.mkdir(parents=True, exist_ok=True)
            with ProcessPoolExecutor(jobs, mp_context=mp, initializer=_worker_init,
                                     initargs=(ctx, evaluator, threads)) as pool:
                futs = {pool.submit(_worker_run, p, s, str(runs_dir / f"{rid}.json")): rid for p, s, rid in todo}
                for f in as_completed(futs):
                    done[futs[f]] = f.result()
                    _write_results(out, aggregate(grid, ctx, done, tag))
                    if bar is not None:
                        bar.update(1)
    finally:
        if bar is not None:
            bar.close()

    doc = aggregate(grid, ctx, done, tag)
    _write_results(out, doc)
    if plots:
        from sbs_model.explore.plots import make_plots

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
    from sbs_model.hwcost import HwConfig, hw_cost

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
    rows = []
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
    return {"grid": grid.name, "grid_path": grid.path, "grid_sha256": hashlib.sha256(grid.text.encode()).hexdigest(),
            "config": str(ctx.base["config"]), "weights": str(ctx.base["weights"]), "weights_sha256": ctx.weights_sha,
            "data": ctx.data_text, "dataset": ctx.base["dataset"], "n_images": int(len(ctx.images)),
            "images_sha256": ctx.images_sha, "evaluator": tag,
            "hw": {k: ctx.base[k] for k in ("lanes", "engines", "clock_mhz", "target")},
            "ci95_note": "Wilson 95 % interval of the mean accuracy over seeds with n test images",
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "points": rows}


def _weight_bits(fmt_text) -> int | None:
    from fixedpoint.formats import parse_format

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
