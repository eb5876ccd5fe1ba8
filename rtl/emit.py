"""Deterministic Verilog emission for Amaranth components.

``to_verilog(component, name)`` converts with ``amaranth.back.verilog.convert`` and makes the text a
pure function of the design: no ``src`` attributes (they hold absolute source paths and line
numbers), no Amaranth-internal attributes, no timestamps.  The same component built with the same
parameters gives identical bytes in any process, so the SHA-256 of the text (``design_hash``) is a
valid cache key for simulator builds (see :mod:`sim.runner`).

Ports of a ``wiring.Component`` appear as ``<member>__<sub>`` (for a ``lib.stream`` port ``o``:
``o__valid``, ``o__ready``, ``o__payload``; struct payloads are one flat vector, first field in the
least significant bits), plus ``clk`` and ``rst`` for the ``sync`` domain.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

from amaranth.back import verilog

from sbs_model.atomic import write_text

_SRC_ATTR = re.compile(r"\(\*\s*src\s*=\s*\"[^\"]*\"\s*\*\)[ \t]*")


# A signal with this attribute (``Signal(..., attrs={KEEP_FLOPS: 1})``) is a register copy that synthesis
# must not merge with its twins: Yosys' opt_merge merges flip-flops with the same input bit by bit (a keep
# on the wire does not stop it, nor distinct reset values: each bit has only two), which turns per-lane
# copies back into one register driving every lane.  ``keep`` on the flip-flop cell does stop it; Yosys
# puts the attributes of an ``always`` block on the cells it makes, so the emitter writes ``(* keep *)``
# before the ``always`` block of every such register.
KEEP_FLOPS = "sbs_keep_flops"
_DECL = re.compile(r"^\s*(?:reg|wire)\b(?:\s*\[[^\]]*\])?\s+(\\\S+|[A-Za-z_][A-Za-z0-9_$]*)")
_ALIAS = re.compile(r"^\s*assign\s+(\\\S+|[A-Za-z_][A-Za-z0-9_$]*)\s*=\s*(\\\S+|[A-Za-z_][A-Za-z0-9_$]*)\s*;$")
_ALWAYS_FF = re.compile(r"^\s*always\s*@\(posedge\s+\S+\)\s*$")
_TARGET = re.compile(r"^\s*(\\\S+|[A-Za-z_][A-Za-z0-9_$]*)\s*<=")


# A memory attribute for RAMs that are never read and written at the same address in the same cycle
# (``memory.Memory(..., attrs={NO_RW_CHECK: 1})``).  Without it Yosys emulates the read-old-data behaviour
# of a non-transparent read port next to a write port: the write data and address registered, an
# address compare and a multiplexer behind the block RAM (a 47 x 144 RAM: 440 flip-flops instead of
# 144; the layer-0 engine at d79cb14: an h block RAM -> that multiplexer -> its register missed 10 ns).
# Yosys' no_rw_check attribute says the collision does not happen; the caller must know why.
NO_RW_CHECK = "no_rw_check"


def _keep_flops_of_module(lines: list[str]) -> list[str]:
    marked, reg_names, attr = set(), set(), False  # marked names; every name declared as reg
    for ln in lines:
        if ln.lstrip().startswith("(*"):
            attr = attr or KEEP_FLOPS in ln
            continue
        mt = _DECL.match(ln)
        if mt and ln.lstrip().startswith("reg"):
            reg_names.add(mt.group(1))
        if attr and mt:
            marked.add(mt.group(1))
        attr = False
    if not marked:
        return lines
    for ln in lines:  # a marked wire that is an alias of the register (assign wire = reg;)
        mt = _ALIAS.match(ln)
        if mt and mt.group(1) in marked:
            marked.add(mt.group(2))
    out, kept = [], set()
    for i, ln in enumerate(lines):
        if _ALWAYS_FF.match(ln) and i + 1 < len(lines):
            mt = _TARGET.match(lines[i + 1])
            if mt and mt.group(1) in marked:
                out.append(ln[:len(ln) - len(ln.lstrip())] + "(* keep *)")
                kept.add(mt.group(1))
        out.append(ln)
    regs = marked & reg_names
    if not regs <= kept:
        raise RuntimeError(f"to_verilog: no flip-flop found for the {KEEP_FLOPS} register(s) {sorted(regs - kept)}")
    if not kept:
        raise RuntimeError(f"to_verilog: {KEEP_FLOPS} on {sorted(marked)}, but none of them is a flip-flop")
    return out


def _keep_flops(lines: list[str]) -> list[str]:
    """``(* keep *)`` before the ``always`` block of every register marked :data:`KEEP_FLOPS`, module by module."""
    out, module = [], []
    for ln in lines:
        module.append(ln)
        if ln.strip() == "endmodule":
            out += _keep_flops_of_module(module)
            module = []
    return out + module


def _clean(text: str) -> str:
    text = _SRC_ATTR.sub("", text)  # belt and braces: emit_src=False already drops them
    lines = [ln.rstrip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln.strip() != ""]
    return "\n".join(_keep_flops(lines)) + "\n"


def to_verilog(component, name: str) -> str:
    """Verilog text of ``component`` with top module ``name`` (a valid Verilog identifier);
    deterministic (see module docstring)."""
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"to_verilog: name must be a Verilog identifier "
                         f"([A-Za-z_][A-Za-z0-9_]*), got {name!r}")
    text = verilog.convert(component, name=name, emit_src=False, strip_internal_attrs=True)
    return _clean(text)


def design_hash(verilog_text: str) -> str:
    """SHA-256 hex digest of the Verilog text (UTF-8)."""
    return hashlib.sha256(verilog_text.encode()).hexdigest()


def write_design(out_dir, component, name: str, extra_files: dict[str, str] | None = None) -> Path:
    """Write ``<out_dir>/<name>.v`` (and each ``extra_files`` entry ``{file name: text}``)
    atomically; returns the path of the Verilog file."""
    out_dir = Path(out_dir)
    text = to_verilog(component, name)
    path = out_dir / f"{name}.v"
    write_text(path, text)
    for fname, content in (extra_files or {}).items():
        if Path(fname).name != fname:
            raise ValueError(f"write_design: extra_files keys must be plain file names, got {fname!r}")
        write_text(out_dir / fname, content)
    return path
