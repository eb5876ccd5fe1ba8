"""Shared helpers for benchmark scripts: machine description, commit, timing, JSON results.

Every result file in ``bench/results/`` holds ``machine``, ``commit``, ``command``, ``date`` and
the script's own ``results``; times are medians over repeats, with all samples kept.
"""
from __future__ import annotations

import datetime as _dt
import sys
import time
from pathlib import Path

import numpy as np

from sbs_model.atomic import write_json
from sbs_model.provenance import commit, machine

RESULTS = Path(__file__).resolve().parent / "results"


def timeit(fn, repeats: int = 5, warmup: int = 1) -> dict:
    """Run ``fn`` ``warmup`` times untimed then ``repeats`` times; median and samples in s."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return {"median_s": float(np.median(samples)), "samples_s": [float(s) for s in samples]}


def write_result(name: str, results, extra: dict | None = None) -> Path:
    """Write ``bench/results/<name>.json`` atomically and return its path."""
    doc = {
        "benchmark": name,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "commit": commit(),
        "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]) if sys.argv and sys.argv[0] else "",
        "machine": machine(),
        "results": results,
    }
    if extra:
        doc.update(extra)
    path = RESULTS / f"{name}.json"
    write_json(path, doc)
    return path
