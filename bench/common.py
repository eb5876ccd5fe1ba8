"""Shared helpers for benchmark scripts: machine description, commit, timing, JSON results.

Every result file in ``bench/results/`` holds ``machine``, ``commit``, ``command``, ``date`` and
the script's own ``results``; times are medians over repeats, with all samples kept.
"""
from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from sbs_model.atomic import write_json

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
    }
    try:
        import numba

        info["numba"] = numba.__version__
        info["numba_threads"] = numba.config.NUMBA_NUM_THREADS
    except ImportError:
        pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return info


def commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).parent, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, cwd=Path(__file__).parent).stdout.strip()
        return out + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


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
