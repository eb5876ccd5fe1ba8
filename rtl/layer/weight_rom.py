"""``WeightROM``: a layer's weights ROM in block RAM, sliced by bits so that no multiplexer follows it.

Parameters: ``words`` (the ROM's contents, ``EngineCore.weight_words``: row s, beat b at ``s*B + b``)
and ``width`` (bits per word, L weight codes).  Read as one memory, a ROM deeper than one block RAM
at its width is a column of block RAMs whose outputs go through a multiplexer; with the block RAM's
slow clock-to-out (about 5.6 ns on ECP5) and the routing between far-apart block RAMs that does not
fit in 10 ns.  An ECP5 DP16KD with two read ports is 16 kbit in any of the shapes 1024 x 18,
2048 x 9, 4096 x 4, 8192 x 2, 16384 x 1 (512 x 36 has one read port only), so the ROM is stored
as *slices* of :func:`slice_bits` bits over the
whole depth, one block RAM each and no multiplexer (bits that are the same in every word are
constants, not stored).  Deeper than 16384 words: banks of 16384 words of 1-bit slices, and a bank
multiplexer.

* ``u_addr`` -> ``u_data``: one cycle (the update's weights; the caller registers them);
* ``d_addr`` -> ``d_data``: :data:`D_LATENCY` cycles: every slice registered next to its block RAM,
  then once more (the dot's weights, which travel to every lane).
"""
from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from sbs_model.hwcost import ROM_BANK_DEPTH, rom_slice_bits

D_LATENCY = 3
BANK_DEPTH = ROM_BANK_DEPTH
slice_bits = rom_slice_bits


def varying_bits(words, width: int) -> list[int]:
    """Bit positions that are not the same in every word."""
    ones = zero = 0
    for w in words:
        ones |= w
        zero |= ~w
    return [i for i in range(width) if (ones >> i) & 1 and (zero >> i) & 1]


class WeightROM(wiring.Component):
    """Two-port weights ROM in bit slices (see module docstring)."""

    def __init__(self, words, width: int):
        if not isinstance(width, int) or width < 1:
            raise ValueError(f"WeightROM: width must be an int >= 1, got {width!r}")
        self.words = [int(w) for w in words] or [0]
        self.width = width
        self.depth = max(len(self.words), 2)
        self.bits = varying_bits(self.words, width)
        self.banks = -(-len(self.words) // BANK_DEPTH)
        self.slice_bits = slice_bits(min(len(self.words), BANK_DEPTH))
        self.slices = -(-len(self.bits) // self.slice_bits)
        super().__init__({"u_addr": In(range(self.depth)), "u_data": Out(width),
                          "d_addr": In(range(self.depth)), "d_data": Out(width)})

    def elaborate(self, platform):
        m = Module()
        const = self.words[0]  # the value of every bit that does not vary
        nb, bd, sb = self.banks, BANK_DEPTH, self.slice_bits
        lo = bd.bit_length() - 1
        u_sel, d_sel1, d_sel2 = (Signal(range(max(nb, 2)), name=n) for n in ("u_sel", "d_sel1", "d_sel2"))
        if nb > 1:
            m.d.sync += [u_sel.eq(self.u_addr[lo:]), d_sel1.eq(self.d_addr[lo:]), d_sel2.eq(d_sel1)]
        u_bits = [Const((const >> i) & 1, 1) for i in range(self.width)]
        d_bits = list(u_bits)
        for s in range(self.slices):
            pos = self.bits[s * sb:(s + 1) * sb]
            u_val = d_val = None
            for k in range(nb):
                chunk = [sum(((w >> p) & 1) << j for j, p in enumerate(pos)) for w in self.words[k * bd:(k + 1) * bd]]
                mem = memory.Memory(shape=len(pos), depth=max(len(chunk), 2), init=chunk, attrs={"ram_style": "block"})
                m.submodules[f"s{s}b{k}"] = mem
                ru, rd = mem.read_port(domain="sync"), mem.read_port(domain="sync")
                aw = len(ru.addr)
                m.d.comb += [ru.addr.eq(self.u_addr[:aw]), rd.addr.eq(self.d_addr[:aw])]
                q = Signal(len(pos), name=f"d_q{s}_{k}")  # next to the block RAM
                m.d.sync += q.eq(rd.data)
                u_val = ru.data if u_val is None else Mux(u_sel == k, ru.data, u_val)
                d_val = q if d_val is None else Mux(d_sel2 == k, q, d_val)
            for j, p in enumerate(pos):
                u_bits[p], d_bits[p] = u_val[j], d_val[j]
        d_reg = Signal(self.width, name="d_reg")
        m.d.sync += d_reg.eq(Cat(*d_bits))
        m.d.comb += [self.u_data.eq(Cat(*u_bits)), self.d_data.eq(d_reg)]
        return m


__all__ = ["WeightROM", "slice_bits", "varying_bits", "D_LATENCY", "BANK_DEPTH"]
