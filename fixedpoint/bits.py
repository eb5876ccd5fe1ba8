"""Bit-width arithmetic shared by the cost model and the RTL."""
from __future__ import annotations


def clog2(n: int) -> int:
    """ceil(log2 n) for n >= 1 (0 for n = 1): the bits of an index into n things, the levels of an
    adder tree over n inputs."""
    n = int(n)
    if n < 1:
        raise ValueError(f"clog2: n must be >= 1, got {n}")
    return (n - 1).bit_length()


def sig_bits(fmt) -> int:
    """Bits of the largest significand that ``fmt.decode_parts`` returns: ``man_bits + 1`` for a
    float format (the hidden one), ``width`` for a fixed-point format."""
    return fmt.man_bits + 1 if fmt.kind == "float" else fmt.width
