"""Amaranth components of the SbS accelerator, Verilog emission, lint and synthesis.

Python API (``docs/api.md``), loaded on first use: :func:`generate_verilog`."""

__all__ = ["generate_verilog"]


def __getattr__(name):
    if name != "generate_verilog":
        raise AttributeError(f"module 'rtl' has no attribute {name!r}")
    from rtl.api import generate_verilog

    return generate_verilog
