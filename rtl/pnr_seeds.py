"""Place and route with several nextpnr placer seeds: one synthesis, one nextpnr run per seed, the best kept.

nextpnr's result moves by several MHz with the placer seed (the whole network at one RTL: three seeds,
three different critical paths), so one seed says little about a change of the RTL.
:func:`pnr_seeds` runs Yosys once (:func:`rtl.pnr.prepare`), then nextpnr for every seed, ``jobs`` of
them at a time, each into files of its own:

* ``pnr-seed<N>.json``: that seed's result, the fields of ``pnr.json`` (:func:`rtl.pnr.place_and_route`);
* ``pnr-report-seed<N>.json``, ``pnr-nextpnr-seed<N>.log``: nextpnr's report and log;

with ``-speed<G>`` before the extension for a speed grade other than the default (``pnr-seed1-speed8.json``)
and ``-<placer>`` for a placer other than nextpnr's default heap (``pnr-seed1-static.json``), so sweeps of
one design at two grades or with two placers keep each other's files.

``pnr.json`` is then the best seed's result (timing met before not met, then the highest Fmax of the
slowest clock) with ``seed_sweep`` added: every seed's Fmax, timing, critical path and time, the
median Fmax, and how many seeds met timing.  The best seed's placement is a real implementation of
the design (its routed netlist and report are on disk), so its ``ms_per_image`` is a measured latency;
the median says what one run should be expected to give.

A seed that does not route (router2 stopped by the route watch, or any other nextpnr failure) is a
failed seed, not a failed sweep: while at least one seed routed, ``pnr.json`` is the best routed seed's
result and ``seed_sweep["failed"]`` names each failed seed with the first and last line of its error
(the 32-lane plan of aa4130e: seed 1 stalled, seed 2 met 83 MHz).  Only a sweep in
which no seed routed is an error.

``until_met``: seeds run in the order given and the sweep stops starting new ones as soon as one meets
timing (seeds already running finish); the seeds never started are ``seed_sweep["skipped"]``.  What
``sbs demo --pnr`` runs: one routed placement that meets timing is what a latency needs, and a seed
that does not route costs half an hour before the route watch stops it.

A seed whose ``pnr-seed<N>.json`` is already there for the same Verilog, device, speed grade, package,
constraint, router and placer is not run again, so an interrupted sweep resumes where it stopped; nor is the seed of a
one-seed ``sbs pnr`` whose ``pnr.json`` has those settings (:func:`adopt_single_run`).
"""
from __future__ import annotations

import json
import os
import statistics
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

from rtl.pnr import (DEFAULT_DEVICE, DEFAULT_FREQ_MHZ, DEFAULT_PACKAGE, DEFAULT_PLACER, DEFAULT_ROUTER, MAX_SEED,
                     RESULT, SPEED_GRADE, Flow, _say, check_args, estimate_mhz, place_and_route, prepare,
                     require_tools)
from rtl.route_watch import ROUTE_PATIENCE, check_patience
from sbs_model.atomic import write_json, write_text

MAX_SEEDS = 32  # seeds in one sweep


DEFAULT_FLOW = Flow()


def seed_result(seed: int, flow: Flow = DEFAULT_FLOW) -> str:
    """A seed's result, the fields of ``pnr.json`` (``-speed8``, ``-static``: :attr:`rtl.pnr.Flow.suffix`)."""
    return f"pnr-seed{seed}{flow.suffix}.json"


def seed_report(seed: int, flow: Flow = DEFAULT_FLOW) -> str:
    return f"pnr-report-seed{seed}{flow.suffix}.json"


def seed_log(seed: int, flow: Flow = DEFAULT_FLOW) -> str:
    return f"pnr-nextpnr-seed{seed}{flow.suffix}.log"


def seed_unrouted(seed: int, flow: Flow = DEFAULT_FLOW) -> str:
    """A seed's ``pnr-unrouted.json`` (its router2 was stopped: :mod:`rtl.route_watch`)."""
    return f"pnr-unrouted-seed{seed}{flow.suffix}.json"


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


def _reusable(path: Path, seed: int, sha: str, flow: Flow, routed: bool = True) -> dict | None:
    """The result in ``path`` when it is ``seed``'s for the same Verilog and settings ``flow`` (and
    ``routed`` as given: False for a ``pnr-unrouted`` file), else None."""
    if not path.is_file():
        return None
    try:
        old = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    same = (isinstance(old, dict) and old.get("verilog_sha256") == sha and old.get("seed") == seed
            and old.get("routed") is routed and Flow.of(old) == flow)
    return old if same else None


def stalled_before(d: Path, seed: int, sha: str, flow: Flow, route_patience: int) -> str | None:
    """Why ``seed`` did not route before, when its ``pnr-unrouted-seed<N>.json`` is for the same Verilog,
    flow settings and route patience (nextpnr is deterministic for a seed: it would stall again), else None."""
    name = seed_unrouted(seed, flow)
    old = _reusable(d / name, seed, sha, flow, routed=False)
    watch = (old or {}).get("route_watch") or {}
    if old is None or watch.get("patience") != route_patience:
        return None
    return f"did not route with these settings before ({name}: {watch.get('reason')})"


def adopt_single_run(d: Path, seeds: list[int], sha: str, flow: Flow, progress=print) -> int | None:
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
    if (d / seed_result(s, flow)).is_file() or _reusable(path, s, sha, flow) is None:
        return None
    files = dict(old.get("files") or {})
    for key, name in (("report", seed_report(s, flow)), ("nextpnr_log", seed_log(s, flow))):
        if files.get(key) and (d / files[key]).is_file():
            write_text(d / name, (d / files[key]).read_text(errors="replace"))
            files[key] = name
    write_json(d / seed_result(s, flow), dict(old, files=files))
    _say(progress, f"seed {s}: taken from the one-seed run in {RESULT} ({old.get('fmax_min_mhz')} MHz)")
    return s


def sweep_summary(results: list[dict], jobs: int, failed: dict[int, str] | None = None,
                  skipped: list[int] | None = None, until_met: bool = False) -> dict:
    """``seed_sweep`` of ``pnr.json``: one row per routed seed (best first), the median Fmax, the count
    met; ``failed`` (seed -> error line) and ``skipped`` (seeds not started, ``until_met``) as given."""
    rows = []
    for r in sorted(results, key=rank):
        cp = r.get("critical_path") or {}
        rows.append({"seed": r["seed"], "fmax_min_mhz": r.get("fmax_min_mhz"), "timing_met": r.get("timing_met"),
                     "ms_per_image": r.get("ms_per_image"),
                     "critical_path": {k: cp.get(k) for k in ("delay_ns", "logic_levels", "start", "end")} if cp else None,
                     "fmax_estimate_mhz": estimate_mhz(r),
                     "nextpnr_seconds": (r.get("seconds") or {}).get("nextpnr"),
                     "result": seed_result(r["seed"], Flow.of(r))})
    fmaxes = [r["fmax_min_mhz"] for r in rows if r["fmax_min_mhz"] is not None]
    failed = dict(sorted((failed or {}).items()))
    return {"seeds": sorted([r["seed"] for r in results] + list(failed)), "best_seed": rows[0]["seed"],
            "runs": rows, "fmax_min_mhz_median": round(statistics.median(fmaxes), 2) if fmaxes else None,
            "fmax_min_mhz_range": [min(fmaxes), max(fmaxes)] if fmaxes else None,
            "timing_met_count": sum(1 for r in rows if r["timing_met"]), "jobs": jobs,
            "failed": [{"seed": k, "error": v} for k, v in failed.items()], "skipped": list(skipped or []),
            "until_met": bool(until_met),
            "rule": "best = timing met first, then the highest Fmax of the slowest clock"}


def pnr_seeds(design, seeds: list[int], jobs: int = 1, device: str = DEFAULT_DEVICE,
              package: str = DEFAULT_PACKAGE, freq: float = DEFAULT_FREQ_MHZ, progress=print,
              timeout: float | None = None, router: str = DEFAULT_ROUTER,
              speed: int = SPEED_GRADE, route_patience: int = ROUTE_PATIENCE, until_met: bool = False,
              placer: str = DEFAULT_PLACER) -> dict:
    """Place and route ``design`` once per seed of ``seeds`` (see module docstring), ``jobs`` nextpnr
    runs at a time, at speed grade ``speed`` and placer ``placer`` (:func:`rtl.pnr.nextpnr_args`);
    writes and returns ``pnr.json`` (the best routed seed's
    result with ``seed_sweep``).  ``route_patience``: see :func:`rtl.pnr.place_and_route` (a seed whose
    router2 stalls is a failed seed).  ``until_met``: start no more seeds once one meets timing.
    ValueError (bad arguments, before any work), PnrUnavailable, RuntimeError (no seed routed: the
    message names every failed seed; nothing is written to ``pnr.json``)."""
    if not seeds or len(seeds) > MAX_SEEDS or len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds {seeds!r}: 1..{MAX_SEEDS} distinct seeds allowed")
    for s in seeds:
        d, manifest, flow = check_args(design, device, package, freq, s, router, speed, placer)
    jobs = check_jobs(jobs)
    check_patience(route_patience)
    require_tools()
    t0 = time.monotonic()
    prep = prepare(d, manifest, flow.package, progress, timeout)
    sha = prep["stamp"]["verilog_sha256"]
    adopt_single_run(d, seeds, sha, flow, progress)
    (d / RESULT).unlink(missing_ok=True)
    done: dict[int, dict] = {}
    failed: dict[int, str] = {}
    todo = []
    for s in seeds:
        if until_met and any(r.get("timing_met") for r in done.values()):
            break  # an earlier seed of the list met timing: the rest are skipped
        old = _reusable(d / seed_result(s, flow), s, sha, flow)
        stalled = None if old is not None else stalled_before(d, s, sha, flow, route_patience)
        if stalled is not None:
            failed[s] = stalled
            _say(progress, f"seed {s}: {stalled}; not run again")
        elif old is not None:
            done[s] = old
            _say(progress, f"seed {s}: {seed_result(s, flow)} is up to date ({old.get('fmax_min_mhz')} MHz, "
                     f"timing {'met' if old.get('timing_met') else 'NOT met'}); not run again")
        else:
            (d / seed_result(s, flow)).unlink(missing_ok=True)
            todo.append(s)
    stop = threading.Event()

    def one(s: int) -> dict:
        res = place_and_route(d, manifest, flow, s, prep, progress, timeout, report=seed_report(s, flow),
                              log=seed_log(s, flow), label=f"nextpnr seed {s}", stop=stop,
                              route_patience=route_patience, unrouted=seed_unrouted(s, flow))
        write_json(d / seed_result(s, flow), res)
        return res

    queue = list(todo)  # started in order, at most ``jobs`` at a time (until_met: none after a seed met timing)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        running: dict = {}
        try:
            while queue or running:
                while queue and len(running) < jobs:
                    s = queue.pop(0)
                    running[pool.submit(one, s)] = s
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in sorted(finished, key=lambda f: running[f]):
                    s = running.pop(fut)
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
                    if until_met and res.get("timing_met") and queue:
                        _say(progress, f"seed {s} met timing: seed(s) {', '.join(map(str, queue))} not started "
                                       f"(--until-met)")
                        queue.clear()
        except BaseException:
            stop.set()  # the running tools stop within a second; finished seeds keep their files
            raise
    if not done:
        raise RuntimeError("nextpnr failed for seed(s) " + ", ".join(f"{s} ({m})" for s, m in sorted(failed.items()))
                           + "; no seed routed (another seed, --placer static, a smaller plan, or a lower --freq)")
    results = [done[s] for s in seeds if s in done]
    skipped = [s for s in seeds if s not in done and s not in failed]
    best = dict(min(results, key=rank))
    best["seed_sweep"] = sweep_summary(results, jobs, failed, skipped, until_met)
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
             + (f" (estimate after placement {r['fmax_estimate_mhz']} MHz)" if r.get("fmax_estimate_mhz") else "")
             for r in sw["runs"]]
    lines += [f"seed {f['seed']:>4}: not routed ({f['error']})" for f in sw.get("failed", [])]
    if sw.get("skipped"):
        lines.append(f"seed(s) {', '.join(map(str, sw['skipped']))}: not run (a seed before them met timing)")
    lines.append(f"{len(sw['runs'])} routed seeds: median {sw['fmax_min_mhz_median']} MHz, range "
                 f"{sw['fmax_min_mhz_range']}, timing met in {sw['timing_met_count']}; pnr.json is seed "
                 f"{sw['best_seed']}'s")
    return lines


__all__ = ["pnr_seeds", "parse_seeds", "check_jobs", "rank", "sweep_summary", "sweep_lines", "seed_result",
           "MAX_SEEDS"]
