"""Verilator lint for generated Verilog.

``lint(verilog_text_or_path, top)`` runs ``verilator --lint-only -Wall`` and raises
:class:`LintError` on any warning or error, except for the classes Amaranth's code generator emits
by construction (the only waivers, passed as ``-Wno-<CLASS>``):

* ``WIDTHEXPAND`` / ``WIDTHTRUNC``: Yosys' ``write_verilog`` relies on Verilog's implicit width
  extension/truncation in assignments and arithmetic (e.g. ``{1'h0, a} + b``).
* ``PROCASSINIT``: ``reg x = init;`` plus an ``always`` block assigning ``x`` (Amaranth reset values).
* ``UNUSEDSIGNAL``: helper wires for struct fields (``\\i__payload.a``) and unused slices.
* ``DECLFILENAME``: the module name need not match the file name (text is linted from a temp file).

Everything else (multiple drivers, latches, combinational loops, undriven signals, ...) fails.
"""
from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from rtl.verilator_env import ensure_verilator

WAIVERS = ("WIDTHEXPAND", "WIDTHTRUNC", "PROCASSINIT", "UNUSEDSIGNAL", "DECLFILENAME")


class LintError(RuntimeError):
    """Verilator reported a warning/error outside :data:`WAIVERS`; the message is its output."""


def lint_command(path, top: str) -> list[str]:
    """The exact verilator command line used by :func:`lint`."""
    return (["verilator", "--lint-only", "-Wall"] + [f"-Wno-{w}" for w in WAIVERS]
            + ["--top-module", top, str(path)])


def lint(verilog_text_or_path, top: str) -> None:
    """Lint Verilog text (a str containing ``module``) or a file path; raise :class:`LintError`
    with Verilator's messages unless it is clean."""
    ensure_verilator()
    with tempfile.TemporaryDirectory(prefix="sbs-lint-") as tmp:
        if isinstance(verilog_text_or_path, Path) or (
                isinstance(verilog_text_or_path, str) and "module" not in verilog_text_or_path):
            path = Path(verilog_text_or_path).resolve()  # verilator runs in the temp dir
            if not path.is_file():
                raise ValueError(f"lint: verilog_text_or_path must be Verilog text or an existing "
                                 f"file, got {str(verilog_text_or_path)[:80]!r}")
        else:
            path = Path(tmp) / f"{top}.v"
            path.write_text(verilog_text_or_path)
        cmd = lint_command(path, top)
        res = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp)
    out = (res.stdout + res.stderr).strip()
    if res.returncode != 0 or "%Warning" in out or "%Error" in out:
        raise LintError(f"verilator lint of {top} failed (exit {res.returncode}):\n{out}")
