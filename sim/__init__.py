"""cocotb testbenches, the Verilator runner, scoreboards and the RTL-vs-model regression; the demo.

Python API (``docs/api.md``), loaded on first use: :func:`run_regression`."""

__all__ = ["run_regression"]


def __getattr__(name):
    if name != "run_regression":
        raise AttributeError(f"module 'sim' has no attribute {name!r}")
    from sim.api import run_regression

    return run_regression
