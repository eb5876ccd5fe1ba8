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


def _clean(text: str) -> str:
    text = _SRC_ATTR.sub("", text)  # belt and braces: emit_src=False already drops them
    lines = [ln.rstrip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln.strip() != ""]
    return "\n".join(lines) + "\n"


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
