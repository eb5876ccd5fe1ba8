"""``sbs regress``: every registered RTL unit against the model, bit for bit, as one regression.

Registry
    An :class:`Entry` is one (unit x datapath x lanes) design with its cocotb testbench module
    (``sim.tb_*``), a ``design(fault, mode)`` function returning the Amaranth component, and a
    ``vectors(dut, mode, seed)`` function returning ``(tb_data dict, number of vectors)`` for that
    component, computed from the model (``quick`` or ``full``).  :func:`register` adds one; the
    project's entries live in :mod:`sim.regress_units`, one module per unit (imported by
    :func:`entries`).  An entry with ``fault`` set is a
    fault-injection entry: the unit is built with its ``fault=`` flag and the regression must
    FAIL on it ("fault detected"; always with the quick vectors); a fault that passes is a
    regression failure ("FAULT MISSED").

Names
    ``unit/datapath/L<lanes>`` (e.g. ``dot/int-e4m1/L4``); fault entries append ``/fault``.
    ``-k PATTERN`` selects: an exact name selects that entry alone, a pattern with ``*?[`` is a
    glob, anything else a case-insensitive substring.

Seeds
    One regression seed (``--seed``, default random, always printed); each entry's seed is
    ``sha256("<seed>:<name>")`` truncated to 31 bits (:func:`entry_seed`), so
    ``sbs regress -k NAME --seed SEED`` repeats exactly that entry's vectors and stall patterns.

Runs
    :func:`run_regression` runs entries in ``jobs`` spawned processes (builds are cached and
    locked per design hash by :func:`sim.runner.build_and_test`).  A passing entry's run directory
    is deleted; a failing one's is kept, the entry is re-run with waves (``dump.fst`` or
    ``dump.vcd``) and both reproduce commands (``sh .../rerun.sh`` and the ``sbs regress`` line)
    are reported.  Each entry's runner output goes to ``<out>/logs/<name>.log``.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import fnmatch
import hashlib
import importlib
import importlib.util
import random
import shlex
import shutil
import socket
import time
import traceback
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from sbs_model.atomic import write_json, write_text
from sim.runner import SIMULATORS, SimulatorUnavailable, build_and_test, simulator_available

REPO = Path(__file__).resolve().parent.parent
MODES = ("quick", "full")
UNIT_MODULES = ("sim.regress_units", "sim.tb_layer_regress", "sim.tb_layer_scaled_regress")
JOBS_MAX = 64

# outcome statuses; the first two are successes
PASS = "pass"
DETECTED = "fault detected"
FAIL = "FAIL"
MISSED = "FAULT MISSED"
ERROR = "ERROR"


@dataclass(frozen=True)
class Entry:
    """One registered regression design.

    ``design(fault, mode)`` -> Amaranth component (``fault`` is None or the entry's fault flag;
    ``mode`` matters only for designs whose size differs, e.g. the engine's T; a design must not
    depend on the seed, so its build is cached across seeds);
    ``vectors(dut, mode, seed)`` -> ``(data, n)``: the testbench's ``tb_data()`` dict (inputs and the
    model's expected outputs) for the component ``dut`` that ``design`` built, and how many vectors
    it checks; ``testcase`` restricts the cocotb
    module to one test (None: all of its tests).
    """
    unit: str
    datapath: str
    lanes: int
    toplevel: str
    testbench: str
    design: Callable
    vectors: Callable
    fault: str | None = None
    testcase: str | None = None
    note: str = ""

    @property
    def name(self) -> str:
        base = f"{self.unit}/{self.datapath}/L{self.lanes}"
        return f"{base}/fault" if self.fault else base

    @property
    def expect_failure(self) -> bool:
        return self.fault is not None


_REGISTRY: dict[str, Entry] = {}
_loaded = False


def register(entry: Entry) -> Entry:
    """Add ``entry`` to the registry; ValueError if its name is already taken."""
    if entry.name in _REGISTRY:
        raise ValueError(f"regress: entry {entry.name!r} is already registered")
    if not isinstance(entry.lanes, int) or entry.lanes < 1:
        raise ValueError(f"regress: lanes of {entry.name!r} must be an int >= 1, got {entry.lanes!r}")
    if importlib.util.find_spec(entry.testbench) is None:
        raise ValueError(f"regress: testbench {entry.testbench!r} of {entry.name!r} is not an importable module")
    _REGISTRY[entry.name] = entry
    return entry


def unregister(name: str) -> None:
    """Remove a registered entry (tests that register temporary entries clean up with this)."""
    _REGISTRY.pop(name, None)


def entries() -> list[Entry]:
    """All registered entries (importing :data:`UNIT_MODULES` the first time), in registry order."""
    global _loaded
    if not _loaded:
        for mod in UNIT_MODULES:
            importlib.import_module(mod)
        _loaded = True
    return list(_REGISTRY.values())


def get(name: str) -> Entry:
    for e in entries():
        if e.name == name:
            return e
    raise ValueError(f"regress: no registered entry named {name!r}")


def select(patterns=None) -> list[Entry]:
    """Entries matching any of ``patterns`` (None/empty: all).  ValueError naming a pattern that
    matches nothing."""
    every = entries()
    if not patterns:
        return every
    chosen: set[str] = set()
    for pat in patterns:
        if not isinstance(pat, str) or not pat:
            raise ValueError(f"-k: a pattern must be a non-empty string, got {pat!r}")
        exact = [e.name for e in every if e.name == pat]
        if exact:
            hits = exact
        elif any(c in pat for c in "*?["):
            hits = [e.name for e in every if fnmatch.fnmatchcase(e.name.lower(), pat.lower())]
        else:
            hits = [e.name for e in every if pat.lower() in e.name.lower()]
        if not hits:
            raise ValueError(f"-k {pat!r} matches no registered entry (names look like "
                             f"{every[0].name!r} if any; list them with 'sbs regress --list')"
                             if every else f"-k {pat!r}: no entries are registered")
        chosen.update(hits)
    return [e for e in every if e.name in chosen]


def entry_seed(seed: int, name: str) -> int:
    """The entry's own 31-bit seed derived from the regression seed and its name."""
    d = hashlib.sha256(f"{int(seed)}:{name}".encode()).digest()
    return int.from_bytes(d[:4], "little") & 0x7FFFFFFF


def repro_command(name: str, seed: int, mode: str, simulator: str = "verilator") -> str:
    """The ``sbs regress`` line that repeats one entry exactly."""
    cmd = ["sbs", "regress", "-k", name, "--seed", str(seed), f"--{mode}"]
    if simulator != "verilator":
        cmd += ["--sim", simulator]
    return " ".join(shlex.quote(c) for c in cmd)


# ------------------------------------------------------------------------------ one entry

@dataclass
class Outcome:
    """What one entry did.  ``ok`` is True for ``pass`` and ``fault detected``."""
    name: str
    unit: str
    datapath: str
    lanes: int
    fault: str | None
    status: str
    ok: bool
    vectors: int
    seed: int
    seconds: float = 0.0
    vector_seconds: float = 0.0
    build_seconds: float = 0.0
    sim_seconds: float = 0.0
    cached: bool = False
    tests: int = 0
    failures: int = 0
    messages: list = field(default_factory=list)
    run_dir: str | None = None
    rerun: str | None = None
    waves: str | None = None
    command: str = ""
    log: str | None = None

    @property
    def vectors_per_second(self) -> float:
        return self.vectors / self.sim_seconds if self.sim_seconds > 0 else 0.0


def _safe(name: str) -> str:
    return name.replace("/", "_").replace("=", "-")


def run_one(name: str, mode: str, seed: int, simulator: str = "verilator", waves: bool = False,
            fail_waves: bool = True, log_dir: str | None = None, keep: bool = False) -> dict:
    """Run entry ``name`` (see module docstring); returns :class:`Outcome` fields as a dict (it is
    the function the worker processes call).  Never raises for a failing design."""
    entry = get(name)
    eseed = entry_seed(seed, name)
    out = Outcome(name=name, unit=entry.unit, datapath=entry.datapath, lanes=entry.lanes,
                  fault=entry.fault, status=ERROR, ok=False, vectors=0, seed=eseed,
                  command=repro_command(name, seed, mode, simulator))
    log_path = None
    if log_dir is not None:
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        log_path = Path(log_dir) / f"{_safe(name)}.log"
        out.log = str(log_path)
    t0 = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if log_path is not None:
            f = stack.enter_context(open(log_path, "w"))
            stack.enter_context(contextlib.redirect_stdout(f))
            stack.enter_context(contextlib.redirect_stderr(f))
        try:
            _run_entry(entry, out, mode, simulator, waves, fail_waves, keep)
        except Exception as exc:  # a broken entry is reported, not fatal for the regression
            traceback.print_exc()
            out.status, out.ok = ERROR, False
            out.messages.append(f"{type(exc).__name__}: {exc}"[:2000])
    out.seconds = time.perf_counter() - t0
    return asdict(out)


def _run_entry(entry: Entry, out: Outcome, mode: str, simulator: str, waves: bool,
               fail_waves: bool, keep: bool) -> None:
    print(f"[regress] {entry.name}: mode={mode} seed={out.seed} simulator={simulator}", flush=True)
    t = time.perf_counter()
    # a fault entry only has to show the fault: the quick vectors suffice in either mode
    vmode = "quick" if entry.expect_failure else mode
    design = entry.design(entry.fault, vmode)
    data, n = entry.vectors(design, vmode, out.seed)
    out.vectors = int(n)
    out.vector_seconds = time.perf_counter() - t
    res = build_and_test(design, entry.toplevel, entry.testbench, data=data, seed=out.seed,
                         waves=waves, simulator=simulator, testcase=entry.testcase)
    out.tests, out.failures = res.tests, res.failures
    out.build_seconds, out.sim_seconds, out.cached = res.build_seconds, res.run_seconds, res.cached
    out.messages = [f"{case}: {msg}" for case, msg in res.failed_cases]
    out.run_dir, out.rerun = str(res.test_dir), res.reproduce
    crashed = res.tests == 0 or any(case == "<simulation>" for case, _ in res.failed_cases)
    if entry.expect_failure:
        if res.ok:
            out.status, out.ok = MISSED, False
            out.messages.append(f"the unit built with fault={entry.fault!r} passed every vector: "
                                "the regression cannot see this fault")
        elif crashed:
            out.status, out.ok = ERROR, False
        else:
            out.status, out.ok = DETECTED, True
    else:
        out.status, out.ok = (PASS, True) if res.ok else (FAIL, False)
    if waves:
        out.waves = _dump_of(res.test_dir)
    if out.ok and not keep and not waves:  # --waves keeps every run dir (they hold the dumps)
        shutil.rmtree(res.test_dir, ignore_errors=True)
        out.run_dir = None
        out.rerun = None
    elif not out.ok and not waves:
        if fail_waves and not crashed:
            print(f"[regress] {entry.name} failed: re-running with waves", flush=True)
            again = build_and_test(entry.design(entry.fault, vmode), entry.toplevel, entry.testbench,
                                   data=data, seed=out.seed, waves=True, simulator=simulator,
                                   testcase=entry.testcase)
            out.waves = _dump_of(again.test_dir)
            out.rerun = f"{res.reproduce}   (with waves: {again.reproduce})"


def _dump_of(test_dir: Path) -> str | None:
    for n in ("dump.fst", "dump.vcd"):
        p = Path(test_dir) / n
        if p.is_file():
            return str(p)
    return None


# ------------------------------------------------------------------------------ the regression

@dataclass
class Report:
    mode: str
    seed: int
    simulator: str
    jobs: int
    seconds: float
    outcomes: list
    out_dir: str

    @property
    def ok(self) -> bool:
        return bool(self.outcomes) and all(o.ok for o in self.outcomes)

    def counts(self) -> dict:
        c: dict[str, int] = {}
        for o in self.outcomes:
            c[o.status] = c.get(o.status, 0) + 1
        return c


def default_out_dir(seed: int) -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return REPO / "build" / "regress" / f"{stamp}-{seed}"


def check_options(mode: str, simulator: str, jobs: int, seed: int | None) -> None:
    """ValueError (one message naming the option and its allowed values) for bad options,
    :class:`sim.runner.SimulatorUnavailable` when the simulator cannot run here."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if simulator not in SIMULATORS:
        raise ValueError(f"--sim must be one of {', '.join(SIMULATORS)}, got {simulator!r}")
    if not isinstance(jobs, int) or not 1 <= jobs <= JOBS_MAX:
        raise ValueError(f"--jobs must be in 1..{JOBS_MAX}, got {jobs!r}")
    if seed is not None and not 0 <= int(seed) < (1 << 32):
        raise ValueError(f"--seed must be in 0..{(1 << 32) - 1}, got {seed}")
    ok, why = simulator_available(simulator)
    if not ok:
        raise SimulatorUnavailable(f"--sim {simulator}: {why}")


def run_regression(selected: list[Entry] | None = None, mode: str = "quick", seed: int | None = None,
                   simulator: str = "verilator", jobs: int = 2, waves: bool = False,
                   fail_waves: bool = True, out_dir=None, keep: bool = False,
                   progress: Callable[[str], None] | None = print) -> Report:
    """Run ``selected`` entries (default: all) and return a :class:`Report` (also written to
    ``<out_dir>/report.json``).  ``jobs`` > 1 uses that many spawned worker processes, so
    entries registered at run time (not by :data:`UNIT_MODULES`) need ``jobs=1``."""
    check_options(mode, simulator, jobs, seed)
    if seed is None:
        seed = random.SystemRandom().randrange(1 << 31)
    seed = int(seed)
    selected = entries() if selected is None else list(selected)
    out = Path(out_dir) if out_dir is not None else default_out_dir(seed)
    out.mkdir(parents=True, exist_ok=True)
    logs = str(out / "logs")
    say = progress or (lambda s: None)
    say(f"sbs regress: {len(selected)} entries, {mode}, seed {seed}, {simulator}, "
        f"{min(jobs, max(1, len(selected)))} job(s); logs in {logs}")
    t0 = time.perf_counter()
    results: dict[str, Outcome] = {}
    args = dict(mode=mode, seed=seed, simulator=simulator, waves=waves, fail_waves=fail_waves,
                log_dir=logs, keep=keep)

    def done(d: dict) -> None:
        o = Outcome(**d)
        results[o.name] = o
        say(f"[{len(results):>3}/{len(selected)}] {o.name:<34} {o.status:<15} {o.vectors:>7} vectors "
            f"{o.seconds:7.1f} s")

    if jobs == 1 or len(selected) <= 1:
        for e in selected:
            done(run_one(e.name, **args))
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(jobs, len(selected)), mp_context=ctx) as pool:
            futs = {pool.submit(run_one, e.name, **args): e for e in selected}
            for f in as_completed(futs):
                e = futs[f]
                try:
                    done(f.result())
                except Exception as exc:  # the worker itself died
                    done(asdict(Outcome(name=e.name, unit=e.unit, datapath=e.datapath, lanes=e.lanes,
                                        fault=e.fault, status=ERROR, ok=False, vectors=0,
                                        seed=entry_seed(seed, e.name),
                                        command=repro_command(e.name, seed, mode, simulator),
                                        messages=[f"worker failed: {type(exc).__name__}: {exc}"])))
    order = {e.name: i for i, e in enumerate(selected)}
    outcomes = sorted(results.values(), key=lambda o: order[o.name])
    rep = Report(mode=mode, seed=seed, simulator=simulator, jobs=jobs,
                 seconds=time.perf_counter() - t0, outcomes=outcomes, out_dir=str(out))
    write_json(out / "report.json", report_dict(rep))
    return rep


# ------------------------------------------------------------------------------ reporting

def report_dict(rep: Report) -> dict:
    return {"mode": rep.mode, "seed": rep.seed, "simulator": rep.simulator, "jobs": rep.jobs,
            "seconds": round(rep.seconds, 3), "ok": rep.ok, "counts": rep.counts(),
            "entries": [dict(asdict(o), vectors_per_second=round(o.vectors_per_second, 1))
                        for o in rep.outcomes]}


def format_table(rep: Report) -> str:
    """The human-readable table plus, for each failure, its messages and reproduce commands."""
    uw = max([4] + [len(o.unit) + (8 if o.fault else 0) for o in rep.outcomes])
    dw = max([8] + [len(o.datapath) for o in rep.outcomes])
    head = (f"{'unit':<{uw}} {'datapath':<{dw}} {'lanes':>5} {'vectors':>8} {'result':<15} "
            f"{'time s':>7} {'vec/s':>8}")
    lines = [head, "-" * len(head)]
    for o in rep.outcomes:
        unit = o.unit + (" (fault)" if o.fault else "")
        vps = f"{o.vectors_per_second:8.0f}" if o.sim_seconds else f"{'-':>8}"
        lines.append(f"{unit:<{uw}} {o.datapath:<{dw}} {o.lanes:>5} {o.vectors:>8} {o.status:<15} "
                     f"{o.seconds:7.1f} {vps}")
    c = rep.counts()
    n_bad = sum(not o.ok for o in rep.outcomes)
    lines.append("-" * len(head))
    lines.append(f"{len(rep.outcomes)} entries: " + ", ".join(f"{v} {k}" for k, v in sorted(c.items()))
                 + f"; {sum(o.vectors for o in rep.outcomes)} vectors; {rep.seconds:.1f} s wall; "
                 f"seed {rep.seed}; {'ALL PASSED' if rep.ok else f'{n_bad} FAILED'}")
    for o in rep.outcomes:
        if o.ok:
            continue
        lines.append("")
        lines.append(f"{o.status}: {o.name} (entry seed {o.seed})")
        for m in o.messages[:5]:
            lines.append(f"  {m}")
        if o.run_dir:
            lines.append(f"  run dir kept: {o.run_dir}")
        if o.waves:
            lines.append(f"  waves: {o.waves}")
        if o.log:
            lines.append(f"  log: {o.log}")
        if o.rerun:
            lines.append(f"  rerun the simulation: {o.rerun}")
        lines.append(f"  reproduce: {o.command}")
    return "\n".join(lines)


def write_junit(path, rep: Report) -> Path:
    """JUnit XML: one ``testsuite`` (mode), one ``testcase`` per entry (``classname`` =
    ``regress.<unit>``); FAIL / FAULT MISSED as ``failure``, ERROR as ``error``, with the
    reproduce commands in the text."""
    n_fail = sum(o.status in (FAIL, MISSED) for o in rep.outcomes)
    n_err = sum(o.status == ERROR for o in rep.outcomes)
    attrs = {"name": f"sbs-regress-{rep.mode}", "tests": str(len(rep.outcomes)),
             "failures": str(n_fail), "errors": str(n_err), "skipped": "0",
             "time": f"{rep.seconds:.3f}", "hostname": socket.gethostname(),
             "timestamp": _dt.datetime.now().isoformat(timespec="seconds")}
    root = ET.Element("testsuites", {"name": "sbs regress", "tests": attrs["tests"],
                                     "failures": attrs["failures"], "errors": attrs["errors"],
                                     "time": attrs["time"]})
    suite = ET.SubElement(root, "testsuite", attrs)
    props = ET.SubElement(suite, "properties")
    for k in ("mode", "seed", "simulator", "jobs"):
        ET.SubElement(props, "property", {"name": k, "value": str(getattr(rep, k))})
    for o in rep.outcomes:
        case = ET.SubElement(suite, "testcase", {"classname": f"regress.{o.unit}", "name": o.name,
                                                 "time": f"{o.seconds:.3f}"})
        cp = ET.SubElement(case, "properties")
        for k in ("status", "seed", "vectors", "datapath", "lanes", "fault", "run_dir", "waves"):
            v = getattr(o, k)
            if v is not None:
                ET.SubElement(cp, "property", {"name": k, "value": str(v)})
        detail = "\n".join(list(o.messages) + [f"run dir: {o.run_dir}", f"waves: {o.waves}",
                                               f"rerun: {o.rerun}", f"reproduce: {o.command}"])
        if o.status in (FAIL, MISSED):
            msg = o.messages[0] if o.messages else o.status
            el = ET.SubElement(case, "failure", {"message": f"{o.status}: {msg}"[:1000],
                                                 "type": o.status})
            el.text = detail
        elif o.status == ERROR:
            msg = o.messages[0] if o.messages else "error"
            el = ET.SubElement(case, "error", {"message": msg[:1000], "type": ERROR})
            el.text = detail
        out = ET.SubElement(case, "system-out")
        out.text = (f"{o.status}; {o.vectors} vectors; seed {o.seed}; build "
                    f"{'cached' if o.cached else f'{o.build_seconds:.1f} s'}; simulation "
                    f"{o.sim_seconds:.1f} s; reproduce: {o.command}")
    ET.indent(root)
    p = Path(path)
    write_text(p, ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n")
    return p


def list_entries(selected: list[Entry]) -> str:
    lines = [f"{'name':<34} {'toplevel':<22} {'testbench':<20} note"]
    for e in selected:
        lines.append(f"{e.name:<34} {e.toplevel:<22} {e.testbench:<20} {e.note}")
    return "\n".join(lines)


__all__ = ["Entry", "Outcome", "Report", "register", "unregister", "entries", "get", "select",
           "entry_seed", "repro_command", "run_one", "run_regression", "format_table",
           "write_junit", "report_dict", "list_entries", "check_options", "MODES",
           "PASS", "DETECTED", "FAIL", "MISSED", "ERROR"]
