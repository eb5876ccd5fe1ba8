"""Place and route with several nextpnr placer seeds: one synthesis, one nextpnr run per seed, the best kept.

nextpnr's result moves by several MHz with the placer seed (the whole network at one RTL: three seeds,
three different critical paths), so one seed says little about a change of the RTL.
:func:`pnr_seeds` runs Yosys once (:func:`rtl.pnr.prepare`), then nextpnr for every seed, ``jobs`` of
them at a time, each into files of its own:

* ``pnr-seed<N>.json``: that seed's result, the fields of ``pnr.json`` (:func:`rtl.pnr.place_and_route`);
* ``pnr-report-seed<N>.json``, ``pnr-nextpnr-seed<N>.log``: nextpnr's report and log;

with ``-speed<G>`` before the extension for a speed grade other than the default (``pnr-seed1-speed8.json``),
so sweeps of one design at two grades keep each other's files.

``pnr.json`` is then the best seed's result (timing met before not met, then the highest Fmax of the
slowest clock) with ``seed_sweep`` added: every seed's Fmax, timing, critical path and time, the
median Fmax, and how many seeds met timing.  The best seed's placement is a real implementation of
the design (its routed netlist and report are on disk), so its ``ms_per_image`` is a measured latency;
the median says what one run should be expected to give.

A seed whose ``pnr-seed<N>.json`` is already there for the same Verilog, device, speed grade, package,
constraint and router is not run again, so an interrupted sweep resumes where it stopped; nor is the seed of a
one-seed ``sbs pnr`` whose ``pnr.json`` has those settings (:func:`adopt_single_run`).
"""
from __future__ import annotations

import json
import os
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from rtl.pnr import (DEFAULT_DEVICE, DEFAULT_FREQ_MHZ, DEFAULT_PACKAGE, DEFAULT_ROUTER, MAX_SEED, RESULT, SPEED_GRADE,
                     _say, check_args, place_and_route, prepare, require_tools)
from rtl.route_watch import ROUTE_PATIENCE, check_patience
from sbs_model.atomic import write_json, write_text

MAX_SEEDS = 32  # seeds in one sweep


def _grade(speed: int) -> str:
    """File-name suffix of a speed grade: none for nextpnr's default, ``-speed8`` for grade 8."""
    return "" if speed == SPEED_GRADE else f"-speed{speed}"


def seed_result(seed: int, speed: int = SPEED_GRADE) -> str:
    return f"pnr-seed{seed}{_grade(speed)}.json"


def seed_report(seed: int, speed: int = SPEED_GRADE) -> str:
    return f"pnr-report-seed{seed}{_grade(speed)}.json"


def seed_log(seed: int, speed: int = SPEED_GRADE) -> str:
    return f"pnr-nextpnr-seed{seed}{_grade(speed)}.log"


def seed_unrouted(seed: int, speed: int = SPEED_GRADE) -> str:
    """A seed's ``pnr-unrouted.json`` (its router2 was stopped: :mod:`rtl.route_watch`)."""
    return f"pnr-unrouted-seed{seed}{_grade(speed)}.json"


def parse_seeds(text: str) -> list[int]:
    """``"1,2,5"`` or ``"1-4"`` or both (``"1-3,7"``) -> the seeds in order, each once; ValueError with
    one line naming ``--seeds`` and what is allowed."""
    allowed = f"allowed: seeds 0..{MAX_SEED} as a list and ranges, e.g. 1,2,3 or 1-4, at most {MAX_SEEDS} seeds"
    seeds: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        lo, sep, hi = part.partition("-")
        try:
            a = int(lo)
            b = int(hi) if sep else a
        except ValueError:
            raise ValueError(f"--seeds {text!r}: {part!r} is not a seed or a range; {allowed}") from None
        if not (0 <= a <= b <= MAX_SEED):
            raise ValueError(f"--seeds {text!r}: {part!r} out of range; {allowed}")
        if b - a + 1 > MAX_SEEDS:
            raise ValueError(f"--seeds {text!r}: more than {MAX_SEEDS} seeds; {allowed}")
        seeds += [s for s in range(a, b + 1) if s not in seeds]
    if not seeds or len(seeds) > MAX_SEEDS:
        raise ValueError(f"--seeds {text!r}: {len(seeds)} seeds; {allowed}")
    return seeds


def check_jobs(jobs) -> int:
    """``jobs`` as an int in 1..cpu count; ValueError naming ``--jobs`` otherwise."""
    top = os.cpu_count() or 1
    if isinstance(jobs, bool) or not isinstance(jobs, int) or not 1 <= jobs <= top:
        raise ValueError(f"--jobs {jobs!r} out of range; allowed: integer 1..{top} (this machine's CPUs)")
    return jobs


def rank(result: dict) -> tuple:
    """Sort key, best first: timing met, then the slowest clock's Fmax (higher first), then the seed."""
    f = result.get("fmax_min_mhz")
    return (not result.get("timing_met"), -(f if f is not None else -1.0), result.get("seed", 0))


def _reusable(path: Path, seed: int, sha: str, dev: str, pkg: str, freq: float, router: str,
              speed: int = SPEED_GRADE) -> dict | None:
    """The result in ``path`` when it is ``seed``'s for the same Verilog and flow settings, else None."""
    if not path.is_file():
        return None
    try:
        old = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    same = (isinstance(old, dict) and old.get("verilog_sha256") == sha and old.get("device") == dev.upper()
            and old.get("package") == pkg and old.get("freq_mhz") == freq and old.get("router") == router
            and old.get("seed") == seed and old.get("routed") is True
            and old.get("speed_grade", SPEED_GRADE) == speed)
    return old if same else None


def adopt_single_run(d: Path, seeds: list[int], sha: str, dev: str, pkg: str, freq: float, router: str,
                     progress=print, speed: int = SPEED_GRADE) -> int | None:
    """A ``pnr.json`` of a one-seed ``sbs pnr`` with one of ``seeds`` and the same settings becomes
    that seed's result (report and log copied to the seed's names), so a sweep does not run it again.
    Returns the seed adopted, or None."""
    path = d / RESULT
    try:
        old = json.loads(path.read_text()) if path.is_file() else None
    except json.JSONDecodeError:
        return None
    if not isinstance(old, dict) or "seed_sweep" in old or old.get("seed") not in seeds:
        return None
    s = old["seed"]
    if (d / seed_result(s, speed)).is_file() or _reusable(path, s, sha, dev, pkg, freq, router, speed) is None:
        return None
    files = dict(old.get("files") or {})
    for key, name in (("report", seed_report(s, speed)), ("nextpnr_log", seed_log(s, speed))):
        if files.get(key) and (d / files[key]).is_file():
            write_text(d / name, (d / files[key]).read_text(errors="replace"))
            files[key] = name
    write_json(d / seed_result(s, speed), dict(old, files=files))
    _say(progress, f"seed {s}: taken from the one-seed run in {RESULT} ({old.get('fmax_min_mhz')} MHz)")
    return s


def sweep_summary(results: list[dict], jobs: int) -> dict:
    """``seed_sweep`` of ``pnr.json``: one row per seed (best first), the median Fmax, the count met."""
    rows = []
    for r in sorted(results, key=rank):
        cp = r.get("critical_path") or {}
        rows.append({"seed": r["seed"], "fmax_min_mhz": r.get("fmax_min_mhz"), "timing_met": r.get("timing_met"),
                     "ms_per_image": r.get("ms_per_image"),
                     "critical_path": {k: cp.get(k) for k in ("delay_ns", "logic_levels", "start", "end")} if cp else None,
                     "nextpnr_seconds": (r.get("seconds") or {}).get("nextpnr"),
                     "result": seed_result(r["seed"], r.get("speed_grade", SPEED_GRADE))})
    fmaxes = [r["fmax_min_mhz"] for r in rows if r["fmax_min_mhz"] is not None]
    return {"seeds": [r["seed"] for r in sorted(results, key=lambda r: r["seed"])], "best_seed": rows[0]["seed"],
            "runs": rows, "fmax_min_mhz_median": round(statistics.median(fmaxes), 2) if fmaxes else None,
            "fmax_min_mhz_range": [min(fmaxes), max(fmaxes)] if fmaxes else None,
            "timing_met_count": sum(1 for r in rows if r["timing_met"]), "jobs": jobs,
            "rule": "best = timing met first, then the highest Fmax of the slowest clock"}


def pnr_seeds(design, seeds: list[int], jobs: int = 1, device: str = DEFAULT_DEVICE,
              package: str = DEFAULT_PACKAGE, freq: float = DEFAULT_FREQ_MHZ, progress=print,
              timeout: float | None = None, router: str = DEFAULT_ROUTER,
              speed: int = SPEED_GRADE, route_patience: int = ROUTE_PATIENCE) -> dict:
    """Place and route ``design`` once per seed of ``seeds`` (see module docstring), ``jobs`` nextpnr
    runs at a time, at speed grade ``speed``; writes and returns ``pnr.json`` (the best seed's result
    with ``seed_sweep``).  ``route_patience``: see :func:`rtl.pnr.place_and_route` (a seed whose router2
    stalls is a failed seed).
    ValueError (bad arguments, before any work), PnrUnavailable, RuntimeError (a seed's nextpnr failed:
    the others still run and keep their files; the message names every failed seed)."""
    if not seeds or len(seeds) > MAX_SEEDS or len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds {seeds!r}: 1..{MAX_SEEDS} distinct seeds allowed")
    for s in seeds:
        d, manifest, dev, pkg = check_args(design, device, package, freq, s, router, speed)
    jobs = check_jobs(jobs)
    check_patience(route_patience)
    freq = float(freq)
    require_tools()
    t0 = time.monotonic()
    prep = prepare(d, manifest, pkg, progress, timeout)
    sha = prep["stamp"]["verilog_sha256"]
    adopt_single_run(d, seeds, sha, dev, pkg, freq, router, progress, speed)
    (d / RESULT).unlink(missing_ok=True)
    done: dict[int, dict] = {}
    todo = []
    for s in seeds:
        old = _reusable(d / seed_result(s, speed), s, sha, dev, pkg, freq, router, speed)
        if old is not None:
            done[s] = old
            _say(progress, f"seed {s}: {seed_result(s, speed)} is up to date ({old.get('fmax_min_mhz')} MHz, "
                     f"timing {'met' if old.get('timing_met') else 'NOT met'}); not run again")
        else:
            (d / seed_result(s, speed)).unlink(missing_ok=True)
            todo.append(s)
    stop = threading.Event()
    failed: dict[int, str] = {}

    def one(s: int) -> dict:
        res = place_and_route(d, manifest, dev, pkg, freq, s, router, prep, progress, timeout,
                              report=seed_report(s, speed), log=seed_log(s, speed), label=f"nextpnr seed {s}",
                              stop=stop, speed=speed, route_patience=route_patience,
                              unrouted=seed_unrouted(s, speed))
        write_json(d / seed_result(s, speed), res)
        return res

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(one, s): s for s in todo}
        try:
            for fut in as_completed(futures):
                s = futures[fut]
                try:
                    res = fut.result()
                except RuntimeError as exc:
                    lines = str(exc).splitlines() or [""]
                    failed[s] = lines[0] + (f": {lines[-1].strip()}" if len(lines) > 1 else "")
                    _say(progress, f"seed {s}: nextpnr failed ({failed[s]})")
                    continue
                done[s] = res
                _say(progress, f"seed {s}: {res.get('fmax_min_mhz')} MHz, timing "
                         f"{'met' if res.get('timing_met') else 'NOT met'} ({len(done)} of {len(seeds)} seeds)")
        except BaseException:
            stop.set()  # the running tools stop within a second; finished seeds keep their files
            for fut in futures:
                fut.cancel()
            raise
    if failed:
        raise RuntimeError("nextpnr failed for seed(s) " + ", ".join(f"{s} ({m})" for s, m in sorted(failed.items()))
                           + f"; the other seeds' results are in {d}/pnr-seed<N>.json (a re-run skips them)")
    results = [done[s] for s in seeds]
    best = dict(min(results, key=rank))
    best["seed_sweep"] = sweep_summary(results, jobs)
    best["seconds"] = dict(best["seconds"], sweep_total=round(time.monotonic() - t0, 1))
    write_json(d / RESULT, best)
    return best


def sweep_lines(res: dict) -> list[str]:
    """Human-readable lines of a ``pnr.json`` with ``seed_sweep`` (one per seed, then the median)."""
    sw = res.get("seed_sweep")
    if not sw:
        return []
    lines = [f"seed {r['seed']:>4}: {r['fmax_min_mhz']} MHz, timing {'met' if r['timing_met'] else 'NOT met'}"
             + (f", {r['critical_path']['delay_ns']} ns critical path" if r.get("critical_path") else "")
             for r in sw["runs"]]
    lines.append(f"{len(sw['runs'])} seeds: median {sw['fmax_min_mhz_median']} MHz, range "
                 f"{sw['fmax_min_mhz_range']}, timing met in {sw['timing_met_count']}; pnr.json is seed "
                 f"{sw['best_seed']}'s")
    return lines


__all__ = ["pnr_seeds", "parse_seeds", "check_jobs", "rank", "sweep_summary", "sweep_lines", "seed_result",
           "MAX_SEEDS"]
