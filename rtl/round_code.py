"""Round an unsigned sum into an unsigned code: the hardware of ``fixedpoint.rounding`` for a right
shift by a constant, with saturation.

One definition for every unit that ends in an h code (the IP engine's update, the layer engine's
``int`` and ``scaled`` lanes, FinalScale)."""
from __future__ import annotations

from amaranth import Mux, Signal

from fixedpoint.rounding import RNA, RNE, rounding_code


def round_to_code(m, s, shift: int, rounding: str, width: int, name: str):
    """Combinational: ``s`` (unsigned) divided by ``2**shift`` with ``rounding`` ('trunc', 'rne',
    'rna'; a negative ``shift`` multiplies exactly), saturated to ``2**width - 1``. Returns a
    ``width``-bit signal; ``name`` names the pre-saturation sum ``k<name>`` in waves."""
    mode = rounding_code(rounding)
    if shift <= 0:
        k = Signal(len(s) - shift, name=f"k{name}")
        m.d.comb += k.eq(s << (-shift))
    else:
        q, half = s[shift:], s[shift - 1]
        sticky = s[:shift - 1].any() if shift >= 2 else 0
        up = half & (sticky | q[0]) if mode == RNE else (half if mode == RNA else 0)
        k = Signal(len(q) + 1, name=f"k{name}")
        m.d.comb += k.eq(q + up)
    kpos = (1 << int(width)) - 1
    code = Signal(int(width), name=f"code{name}")
    m.d.comb += code.eq(Mux(k > kpos, kpos, k))
    return code


__all__ = ["round_to_code"]
