"""Cosimulation of a whole-network design (``sbs cosim``): the Verilog under Verilator, cocotb
driving whole images (:mod:`sim.tb_network`), every layer's codes and the class compared with the
:class:`sbs_model.quant.QuantizedModel` by ``==``, measured cycles with the cycle model.

The images ``first .. first+n-1`` are cut into *shards* ``[a, b)`` (dataset indices) of at most
``shard_size`` images.  A shard is one simulator run of one Verilator build (built once per design hash
on each machine and reused by every later run, :mod:`sim.runner`); the model's reference codes of its
images are computed where it runs.  Image ``k`` of the dataset uses spike pattern ``k`` (as ``sbs
eval``), so a shard gives the same codes, classes and cycles wherever and with whichever neighbours it
runs, and the merged report equals the one of a single run over all images.

Where the shards run: one after another in this process (``jobs = 1``, the default), on a local Dask
cluster of ``jobs`` worker processes, or on an existing Dask cluster (``cluster`` address or
``scheduler_file``) -- :class:`sbs_model.cluster.DaskEngine`, as ``sbs explore``.  The design (Verilog,
network, datapaths, weights) and the images travel to every worker once, as a :class:`Shipment` with
their SHA-256 digests, checked on arrival; no path of the submitting machine is used on a worker.

Every finished shard is a file ``OUT/cosim/<run key>/<a>-<b>.json`` (written atomically), the run key
being a hash of the design, the seed and the whole test set: ``resume`` reuses the finished shards that
lie in the requested range (after Ctrl-C, a lost scheduler, or to extend ``n``).

On a divergence the first one is reported (image, layer, IP, element, both bit patterns), the image is
simulated again alone with waves in this process (unless ``waves=False``), and a command that
reproduces it is returned.
"""
from __future__ import annotations

import hashlib
import json
import math
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from rtl.layer.engine import pack_job
from rtl.network.build import load_design
from rtl.network.design import cycle_model, expected
from sbs_model.atomic import write_json
from sbs_model.cluster import (ClusterError, ContentMismatch, DaskEngine, images_sha256, plan, throughput,
                               weights_sha256, worker_label)
from sbs_model.data import load_dataset
from sbs_model.quant import QuantizedModel
from sim.runner import SimulatorUnavailable, build_and_test

SHARD_SIZE = 10          # images per shard at most (one simulator run) unless shard_size says otherwise
SHARD_FORMAT = 1
SHARDS_DIR = "cosim"     # finished shards: OUT/cosim/<run key>/<a>-<b>.json
TESTBENCH = "sim.tb_network"
JOBS_MAX = 64

#: report fields that depend on how and where the images ran (engine, timing, files of one run), not on
#: the design and the images: everything else is identical between any two runs of the same images
RUN_FIELDS = ("jobs", "engine", "shard_size", "shards", "shards_kept", "wall_seconds", "build_seconds",
              "images_per_second", "simulated_cycles_per_second", "throughput", "reproduce_run", "waves")


def load_test_set(data):
    """All MNIST test images and labels (``data``: a directory or None for the embedded images)."""
    return load_dataset("mnist", data, "test", None)


def load_images(data, first: int, n: int):
    """Images ``first .. first+n-1`` and labels of the MNIST test set (``data``: a directory or None
    for the embedded images); ValueError naming the argument when there are not enough."""
    images, labels = load_test_set(data)
    check_range(first, n, len(images))
    return images[first:first + n], labels[first:first + n]


def check_range(first: int, n: int, total: int) -> None:
    if first + n > total:
        raise ValueError(f"--first {first} -n {n}: the test set has {total} images (allowed: first + n <= {total})")


def vectors(model: QuantizedModel, images, first: int, cycles: int | None):
    codes, cls = expected(model, images, first)
    return {"images": [{"job": pack_job(model.seed, first + b), "pixels": [int(v) for v in images[b].reshape(-1)],
                        "codes": codes[b], "cls": cls[b]} for b in range(len(images))],
            "cycles": cycles}, cls


def image_digest(index: int, vec_image: dict) -> str:
    """SHA-256 of what one image's comparison covered: its dataset index, job, pixels, every layer's codes
    and the class the model expects (the report's ``compared_sha256`` hashes these in image order)."""
    blob = json.dumps([int(index), vec_image["job"], vec_image["pixels"], vec_image["codes"], vec_image["cls"]])
    return hashlib.sha256(blob.encode()).hexdigest()


def describe(net, mm: dict, h_width: int) -> dict:
    """A divergence (``image`` = dataset index) -> image, layer, IP, element, bit patterns."""
    out = dict(mm)
    if mm["layer"] not in ("class", None):
        C, X, Y = net.shapes()[int(mm["layer"])]
        e = int(mm["element"])
        out.update(ip=e % (X * Y), channel=e // (X * Y),
                   got_bits=format(int(mm["got"]), f"0{h_width}b"), want_bits=format(int(mm["want"]), f"0{h_width}b"))
    return out


# ---------------------------------------------------------------------------- what travels to workers
def design_sha256(verilog: str, top: str, net, dps: dict, weights: dict, cycles: int) -> str:
    """Content hash of a design as a shard needs it: Verilog text, top module, network, datapaths,
    weights and the cycle model's cycles per image."""
    h = hashlib.sha256()
    for part in (verilog, top, json.dumps(net.to_dict(), sort_keys=True),
                 json.dumps({str(k): dp.to_dict() for k, dp in sorted(dps.items())}, sort_keys=True),
                 weights_sha256(weights), str(int(cycles))):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


@dataclass
class Shipment:
    """The design and the images ``first .. first+len(images)-1`` with the digests they must have on arrival."""

    verilog: str
    top: str
    net: object
    dps: dict
    weights: dict
    cycles: int
    images: np.ndarray
    labels: np.ndarray
    first: int
    design_sha: str
    images_sha: str

    def verify(self, design_sha: str, images_sha: str) -> None:
        """Recompute both digests; :class:`~sbs_model.cluster.ContentMismatch` names the part that differs."""
        got_d = design_sha256(self.verilog, self.top, self.net, self.dps, self.weights, self.cycles)
        got_i = images_sha256(self.images, self.labels)
        host = socket.gethostname()
        if got_d != design_sha:
            raise ContentMismatch(f"the design arrived on {host} with sha256 {got_d}, expected {design_sha}")
        if got_i != images_sha:
            raise ContentMismatch(f"images arrived on {host} with sha256 {got_i}, expected {images_sha}")


_CHECKED: dict = {}   # (design sha, images sha) -> (the shipment checked in this process, {seed: model})


def _checked_model(ship: Shipment, design_sha: str, images_sha: str, seed: int) -> QuantizedModel:
    """The quantized model of ``ship`` for ``seed`` after the digests were verified once in this process."""
    key = (design_sha, images_sha)
    if key not in _CHECKED or _CHECKED[key][0] is not ship:
        ship.verify(design_sha, images_sha)
        _CHECKED.clear()           # one design at a time per process
        _CHECKED[key] = (ship, {})
    models = _CHECKED[key][1]
    if seed not in models:
        models[seed] = QuantizedModel(ship.net, ship.weights, ship.dps, seed=seed)
    return models[seed]


def run_shard(ship: Shipment, design_sha: str, images_sha: str, seed: int, start: int, stop: int) -> dict:
    """Simulate the dataset images ``[start, stop)`` (on a worker or in this process): the model's codes,
    one simulator run, the testbench's results as a shard record.  ``seconds`` excludes the Verilator
    build (``build_seconds``; 0 when the build of this design was already there)."""
    t0 = time.perf_counter()
    model = _checked_model(ship, design_sha, images_sha, int(seed))
    a, b = start - ship.first, stop - ship.first
    vec, _ = vectors(model, ship.images[a:b], start, ship.cycles)
    res = build_and_test(ship.verilog, ship.top, TESTBENCH, data=vec, seed=int(seed) % (1 << 31))
    o = res.out
    complete = int(o.get("images", 0)) == stop - start
    return {"format": SHARD_FORMAT, "start": int(start), "stop": int(stop), "seed": int(seed),
            "worker": worker_label(), "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "seconds": time.perf_counter() - t0 - res.build_seconds, "build_seconds": res.build_seconds,
            "built": not res.cached, "images": int(o.get("images", 0)),
            "classes": [int(c) for c in o.get("classes", [])], "cycles": [int(c) for c in o.get("cycles", [])],
            "mismatches": [dict(mm, image=int(start) + int(mm["image"])) for mm in o.get("mismatches", [])],
            "digests": [image_digest(start + k, im) for k, im in enumerate(vec["images"])],
            "failed": res.failures > 0, "error": None if complete else res.summary(), "run": res.reproduce}


# ---------------------------------------------------------------------------- finished shards on disk
def run_key(design_sha: str, seed: int, test_set_sha: str) -> str:
    blob = json.dumps({"v": SHARD_FORMAT, "design": design_sha, "seed": int(seed), "test_set": test_set_sha,
                       "testbench": TESTBENCH}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def load_shards(shard_dir: Path, seed: int) -> dict:
    """Finished shards in ``shard_dir``: {(start, stop): record}; files that do not parse or are not
    complete shards of ``seed`` are ignored (and computed again)."""
    out = {}
    if shard_dir.is_dir():
        for p in shard_dir.glob("*.json"):
            try:
                r = json.loads(p.read_text())
                a, b = int(r["start"]), int(r["stop"])
                ok = (r["format"] == SHARD_FORMAT and p.stem == f"{a}-{b}" and r["seed"] == seed and r["error"] is None
                      and int(r["images"]) == b - a == len(r["classes"]) == len(r["cycles"]) == len(r["digests"])
                      and isinstance(r["mismatches"], list) and float(r["seconds"]) >= 0)
                if ok:
                    out[(a, b)] = r
            except (OSError, ValueError, KeyError, TypeError):
                continue
    return out


def check_engine_args(jobs: int, cluster, scheduler_file, shard_size, timeout) -> None:
    """The engine arguments (ValueError naming the argument and the allowed range)."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or not 1 <= jobs <= JOBS_MAX:
        raise ValueError(f"--jobs must be in 1..{JOBS_MAX}, got {jobs}")
    if (cluster is not None or scheduler_file is not None) and jobs != 1:
        raise ValueError(f"--jobs {jobs}: not with --cluster/--scheduler-file (the cluster's workers do the work)")
    if cluster is not None and scheduler_file is not None:
        raise ValueError("--cluster and --scheduler-file: give one of them")
    if shard_size is not None and (isinstance(shard_size, bool) or not isinstance(shard_size, int)
                                   or not 1 <= shard_size <= 10 ** 6):
        raise ValueError(f"--shard-size must be in 1..{10 ** 6}, got {shard_size}")
    if not 0 < timeout <= 3600:
        raise ValueError(f"--timeout must be in (0, 3600] seconds, got {timeout:g}")


# ---------------------------------------------------------------------------- the command
def cosim(out_dir, data=None, n: int = 10, first: int = 0, seed: int = 0, jobs: int = 1, waves: bool = True,
          progress=print, cluster: str | None = None, scheduler_file: str | None = None,
          shard_size: int | None = None, resume: bool = False, timeout: float = 30.0, bar: bool = False) -> dict:
    """Cosimulate images ``first .. first+n-1`` of the design in ``out_dir``; returns the report.

    ``jobs > 1``: a local Dask cluster of that many worker processes; ``cluster`` / ``scheduler_file``: an
    existing one; else this process.  ``shard_size``: images per simulator run (default: at most
    :data:`SHARD_SIZE`, fewer so that every worker gets a shard).  ``resume``: reuse finished shards of the
    same design, seed and test set.  ``bar``: a progress bar over shards instead of a line per shard.
    :class:`~sbs_model.cluster.ClusterError` if the cluster fails (finished shards are kept)."""
    check_engine_args(jobs, cluster, scheduler_file, shard_size, timeout)
    man, net, weights, dps = load_design(out_dir)
    d = Path(out_dir)
    text = (d / man["verilog"]).read_text()
    all_images, all_labels = load_test_set(data)
    check_range(first, n, len(all_images))
    images, labels = all_images[first:first + n], all_labels[first:first + n]
    model = QuantizedModel(net, weights, dps, seed=seed)
    plan_layers = {int(k): v for k, v in man["plan"]["layers"].items()}
    cpi = cycle_model(model, plan_layers)["cycles_per_image"]
    if cpi != man["cycles_per_image"]:
        raise ValueError(f"OUT {out_dir}: manifest cycles_per_image {man['cycles_per_image']} differs from the cycle "
                         f"model {cpi} (rebuild with 'sbs build')")
    design_sha = design_sha256(text, man["top"], net, dps, weights, cpi)
    ship = Shipment(text, man["top"], net, dps, weights, cpi, images, labels, first, design_sha,
                    images_sha256(images, labels))
    shard_dir = d / SHARDS_DIR / run_key(design_sha, seed, images_sha256(all_images, all_labels))
    finished = load_shards(shard_dir, seed) if resume else {}

    on_cluster = jobs > 1 or cluster is not None or scheduler_file is not None
    engine = None
    if on_cluster and (len(finished) == 0 or plan(first + n, shard_size or SHARD_SIZE, finished, first)[1]):
        # reach the cluster before any work (a wrong address: ValueError, nothing written)
        engine = DaskEngine(jobs=jobs if jobs > 1 else None, address=cluster, scheduler_file=scheduler_file,
                            timeout=timeout).__enter__()
    try:
        workers = jobs if engine is None or engine.cluster is not None else max(1, engine.n_workers())
        size = shard_size or max(1, min(SHARD_SIZE, math.ceil(n / workers)))
        used, todo = plan(first + n, size, finished, first)
        records = {ab: finished[ab] for ab in used}
        where = engine.describe() if engine is not None else "this process"
        progress(f"cosim: {n} images (first {first}) in {len(used) + len(todo)} shard(s) of <= {size}, "
                 f"{len(used)} finished before; {len(todo)} to simulate on {where}")
        t0 = time.perf_counter()
        args = (design_sha, ship.images_sha, seed)
        if engine is not None:
            results = engine.run(run_shard, ship, todo, lambda ab: args + ab,
                                 name=lambda ab: f"shard [{ab[0]}, {ab[1]})")
        else:
            results = ((ab, run_shard(ship, *args, *ab)) for ab in todo)
        pbar = tqdm(total=len(todo), unit="shard", desc="cosim") if bar and todo else None
        simulated = 0
        try:
            for ab, rec in results:
                records[ab] = rec
                simulated += rec["images"]
                if rec["error"] is None:
                    write_json(shard_dir / f"{ab[0]}-{ab[1]}.json", rec)
                if pbar is not None:
                    pbar.set_postfix_str(f"[{ab[0]}, {ab[1]}) on {rec['worker']}"[:50])
                    pbar.update(1)
                else:
                    progress(f"cosim: {simulated}/{sum(b - a for a, b in todo)} images simulated "
                             f"({time.perf_counter() - t0:.0f} s)")
        finally:
            close = getattr(results, "close", None)
            if close is not None:
                close()                 # cancels what is still queued on the cluster
            if pbar is not None:
                pbar.close()
        wall = time.perf_counter() - t0
    finally:
        if engine is not None:
            engine.__exit__(None, None, None)
    report = merge_report(net, model, man, d, records, first, n, labels, cpi, seed, data)
    shards = [records[ab] for ab in sorted(records)]
    new = [records[ab] for ab in todo]
    sim_cycles = sum(sum(r["cycles"]) for r in new)
    build = max([r["build_seconds"] for r in new] + [0.0])
    sim_wall = wall - build   # of simulation: the shards wait for the (one, locked) Verilator build
    report.update(jobs=jobs, engine=where, shard_size=size, shards=len(shards), shards_kept=len(used),
                  wall_seconds=round(wall, 2), build_seconds=round(build, 2),
                  images_per_second=round(simulated / sim_wall, 4) if sim_wall > 0 and simulated else None,
                  simulated_cycles_per_second=round(sim_cycles / sim_wall, 1) if sim_wall > 0 and simulated else None,
                  throughput=throughput(shards, over="the shards of this report"),
                  reproduce_run=next((r["run"] for r in shards if r["failed"]), None))
    mm = report["first_divergence"]
    if mm is not None and waves and mm.get("layer") is not None:
        progress(f"cosim: divergence at image {mm['image']}; simulating it again with waves ...")
        k = mm["image"] - first
        vec, _ = vectors(model, images[k:k + 1], mm["image"], cpi)
        try:
            res = build_and_test(text, man["top"], TESTBENCH, data=vec, seed=seed % (1 << 31), waves=True)
        except SimulatorUnavailable as e:
            report["waves"] = None
            report["waves_note"] = f"not simulated here: {e}"
        else:
            dumps = sorted(str(p) for p in res.test_dir.glob("dump.*"))
            report["waves"] = dumps[0] if dumps else None
            report["reproduce_run"] = res.reproduce
    return report


def merge_report(net, model, man: dict, d: Path, records: dict, first: int, n: int, labels, cpi: int, seed: int,
                 data) -> dict:
    """The report's content fields from shard records tiling ``[first, first+n)``: the same, field by field,
    whatever the shards were and wherever they ran."""
    got_cls, cycles, mismatches, compared = [], [], [], 0
    digest = hashlib.sha256()
    h_width = model.qlayers[min(model.qlayers)].H.width
    pos = first
    for a, b in sorted(records):
        if a != pos:
            raise ValueError(f"cosim shards do not tile [{first}, {first + n}): gap or overlap at image {pos}")
        pos = b
        r = records[(a, b)]
        compared += r["images"]
        got_cls += r["classes"]
        cycles += r["cycles"]
        for h in r["digests"][:r["images"]]:
            digest.update(h.encode())
        mismatches += [describe(net, mm, h_width) for mm in r["mismatches"]]
        if r["error"] is not None:  # the simulation itself failed
            mismatches.append({"image": a + r["images"], "layer": None, "error": r["error"]})
    if pos != first + n:
        raise ValueError(f"cosim shards do not tile [{first}, {first + n}): they end at image {pos}")
    equal = compared == n and not mismatches and all(c == cpi for c in cycles) and len(cycles) == n
    correct = int(sum(int(c) == int(lab) for c, lab in zip(got_cls, labels)))
    report = {
        "design": str(d), "top": man["top"], "input_hash": man["input_hash"],
        "images": compared, "first": first, "seed": seed,
        "equal": bool(equal), "mismatched": len(mismatches), "first_divergence": mismatches[0] if mismatches else None,
        "cycles_per_image": cpi, "cycles_measured": sorted(set(cycles)),
        "cycles_equal": bool(cycles) and all(c == cpi for c in cycles),
        "accuracy": correct / max(1, len(got_cls)), "correct": correct, "classes": got_cls,
        "compared_sha256": digest.hexdigest(),
        "plan": man["plan"]["layers"], "T": [layer["spikes"] for layer in man["network"]["layers"]
                                             if layer["kind"] in ("sbs", "sbspool")],
    }
    if mismatches:
        cmd = f"sbs cosim {d} --first {mismatches[0]['image']} -n 1 --seed {seed}" + (f" --data {data}" if data else "")
        report["reproduce"] = cmd
    return report


def summary_lines(rep: dict) -> list[str]:
    lines = [f"images {rep['images']}, equal: {str(rep['equal']).lower()}, mismatched {rep['mismatched']}, "
             f"accuracy {100 * rep['accuracy']:.2f} % ({rep['correct']}/{rep['images']})",
             f"cycles per image: model {rep['cycles_per_image']}, measured {rep['cycles_measured']}",
             f"{rep['images_per_second']} images/s simulated ({rep['simulated_cycles_per_second']} cycles/s, "
             f"{rep['engine']}, build {rep['build_seconds']} s; {rep['shards_kept']} of {rep['shards']} shards "
             "finished before)"]
    workers = rep.get("throughput", {}).get("workers", {})
    if len(workers) > 1:
        lines.append("throughput: " + ", ".join(f"{w} {v['images_per_s']:.2f} images/s" for w, v in workers.items()
                                                if v.get("images_per_s")))
    if rep["first_divergence"]:
        lines.append(f"first divergence: {rep['first_divergence']}")
        lines.append(f"reproduce: {rep['reproduce']}  (simulator run: {rep.get('reproduce_run')})")
        if rep.get("waves"):
            lines.append(f"waves: {rep['waves']}")
    return lines


__all__ = ["ClusterError", "RUN_FIELDS", "Shipment", "cosim", "load_images", "run_shard", "summary_lines",
           "vectors"]
