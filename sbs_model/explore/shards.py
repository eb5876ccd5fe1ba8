"""Work units of a sweep: (point, seed, image shard), their evaluation, planning and exact merging.

A *run* (one point, one seed) over ``n`` images is cut into *shards* ``[start, stop)`` of at most
``shard_size`` images.  Every random draw of the models is keyed by the image's index in the whole test
set (``first_pattern + row``), so a shard evaluated alone gives exactly the predictions and counters it
has inside the whole run: merging the shards (sum of correct answers, of images, of every overflow
counter) gives the run's result bit for bit, wherever each shard ran.

The arrays every shard needs (weights, images, labels) travel as one :class:`Shipment` that carries their
SHA-256 digests; a worker recomputes both digests when the shipment arrives and refuses to evaluate
anything if one differs (:class:`ContentMismatch`).  Nothing refers to a file of the submitting machine.
"""
from __future__ import annotations

import socket
import time
from dataclasses import dataclass

import numba
import numpy as np

from sbs_model.cluster import (ContentMismatch, images_sha256, plan, split,  # noqa: F401 (re-exported)
                               weights_sha256, worker_label)
from sbs_model.evaluation import wilson_interval

SHARD_FORMAT = 1


@dataclass
class Shipment:
    """Weights, images and labels of a sweep with the digests they must have on arrival."""

    weights: dict
    images: np.ndarray
    labels: np.ndarray
    weights_sha: str
    images_sha: str

    def verify(self, weights_sha: str, images_sha: str) -> None:
        """Recompute both digests; :class:`ContentMismatch` names the part that differs."""
        got_w = weights_sha256(self.weights)
        got_i = images_sha256(self.images, self.labels)
        host = socket.gethostname()
        if got_w != weights_sha:
            raise ContentMismatch(f"weights arrived on {host} with sha256 {got_w}, expected {weights_sha}")
        if got_i != images_sha:
            raise ContentMismatch(f"images arrived on {host} with sha256 {got_i}, expected {images_sha}")


_VERIFIED: dict = {}   # (weights sha, images sha) -> the shipment object already checked in this process


def checked(shipment: Shipment, weights_sha: str, images_sha: str) -> Shipment:
    """``shipment`` after its digests were verified once in this process (later shards reuse the check)."""
    key = (weights_sha, images_sha)
    if _VERIFIED.get(key) is not shipment:
        shipment.verify(weights_sha, images_sha)
        _VERIFIED.clear()          # one sweep's arrays at a time per process
        _VERIFIED[key] = shipment
    return shipment


def run_shard(shipment: Shipment, weights_sha: str, images_sha: str, net, datapath, seed: int, noise: float,
              batch: int, start: int, stop: int, evaluator, threads: int | None = None,
              progress: bool = False) -> dict:
    """Evaluate images ``[start, stop)`` of one run (on a worker or in this process).

    ``threads`` sets the numba threads of this process (None leaves them).  A ``ValueError`` from the
    model (weights that do not fit the format, ...) is deterministic and becomes ``status: invalid``."""
    sh = checked(shipment, weights_sha, images_sha)
    if threads is not None:
        numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))
    rec = {"format": SHARD_FORMAT, "start": int(start), "stop": int(stop), "worker": worker_label(),
           "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    t0 = time.perf_counter()
    try:
        res = evaluator(net, sh.weights, datapath, sh.images[start:stop], sh.labels[start:stop], seed=int(seed),
                        noise=noise, batch=batch, progress=progress, first_pattern=int(start))
    except ValueError as e:
        rec.update(status="invalid", error=str(e), seconds=time.perf_counter() - t0)
        return rec
    counters = {str(layer): {k: int(v) for k, v in c.items()} for layer, c in (res.get("counters") or {}).items()}
    rec.update(status="ok", error=None, n=int(res["n"]), correct=int(res["correct"]),
               seconds=float(res["seconds"]), counters=counters)
    if rec["n"] != stop - start:
        raise RuntimeError(f"evaluator returned n = {rec['n']} for images [{start}, {stop})")
    return rec


# ---------------------------------------------------------------------------- merging (planning: sbs_model.cluster)
def merge(shards: list, n: int) -> dict:
    """One run's result from shards that tile ``[0, n)``: ``status``, ``error`` and ``result``
    (``accuracy``, ``ci95``, ``n``, ``correct``, ``seconds``, ``ms_per_pattern``, ``counters``), plus
    ``shards`` (where and how fast each ran).  An invalid shard makes the run invalid with its message."""
    shards = sorted(shards, key=lambda s: s["start"])
    meta = [{"start": s["start"], "stop": s["stop"], "worker": s.get("worker"), "seconds": s.get("seconds")}
            for s in shards]
    bad = [s for s in shards if s["status"] == "invalid"]
    if bad:
        return {"status": "invalid", "error": bad[0]["error"], "shards": meta}
    pos = 0
    for s in shards:
        if s["start"] != pos:
            raise ValueError(f"shards do not tile [0, {n}): gap or overlap at image {pos}")
        pos = s["stop"]
    if pos != n:
        raise ValueError(f"shards do not tile [0, {n}): they end at image {pos}")
    correct = sum(s["correct"] for s in shards)
    seconds = float(sum(s["seconds"] for s in shards))
    counters: dict = {}
    for s in shards:
        for layer, c in s["counters"].items():
            t = counters.setdefault(layer, {})
            for k, v in c.items():
                t[k] = t.get(k, 0) + v
    lo, hi = wilson_interval(correct, n)
    result = {"accuracy": correct / n, "ci95": [lo, hi], "n": n, "correct": correct, "seconds": seconds,
              "ms_per_pattern": 1e3 * seconds / n, "counters": counters}
    return {"status": "ok", "error": None, "result": result, "shards": meta}
