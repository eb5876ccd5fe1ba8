"""The simulation side of the Python API (re-exported by :mod:`sim`): the cocotb regression."""
from __future__ import annotations

from sim.regress import run_regression as _run_regression
from sim.regress import select

__all__ = ["run_regression"]


def run_regression(patterns=None, mode: str = "quick", seed: int | None = None, jobs: int = 2, out_dir=None,
                   progress=None):
    """Run the registered RTL units (names, globs or substrings in ``patterns``; ``None``: all) as
    generated Verilog under cocotb + Verilator against the model, ``==`` on every vector, as
    ``sbs regress`` does.  Returns the report: ``.ok``, ``.outcomes`` (per entry: status, vectors,
    seconds), ``.out_dir`` (``report.json``, logs).  ``progress``: a callable for status lines."""
    if isinstance(patterns, str):
        patterns = [patterns]
    return _run_regression(select(patterns), mode=mode, seed=seed, jobs=jobs, out_dir=out_dir, progress=progress)
