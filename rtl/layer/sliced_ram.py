"""``SlicedRAM``: a deep RAM (one write port, one synchronous read port) stored in bit slices.

Parameters: ``width`` (bits per word, 1..) and ``depth`` (words, 2..).  Stored as one memory, a RAM
deeper than one block RAM at its width is a column of block RAMs whose outputs pass a multiplexer
after the block RAM's slow clock-to-out (about 5.6 ns on ECP5); across the chip that misses 10 ns
(the layer-2 sampler's 6,656 x 26 window-sum memory: 78 MHz).  Here the word is split into slices
of :func:`sbs_model.hwcost.ram_slice_bits` bits, each one block RAM of the widest ECP5 DP16KD shape
at least ``depth`` deep (1024 x 18 .. 16384 x 1), so no multiplexer follows the block RAMs.  A
memory that fits one block RAM in depth (``depth`` <= 1024) or is deeper than 16,384 words is one
memory, as before (:func:`sbs_model.hwcost.ram_is_sliced`).

Ports (plain signals): ``wr_en``, ``wr_addr``, ``wr_data`` (write in the cycle they are high);
``rd_addr`` -> ``rd_data`` one cycle later.  The caller never reads a word in the cycle it is
written (the sampler's windows are loaded before the wave's draws begin), so the slices carry
:data:`rtl.emit.NO_RW_CHECK`: Yosys adds no read-old-data logic behind the block RAMs (the one memory
of an unsliced RAM does not: Yosys' choice between LUT RAM and block RAM counts that logic).
"""
from __future__ import annotations

from amaranth import Cat, Module
from amaranth.lib import memory
from amaranth.lib.wiring import In, Out

from rtl.checked import CheckedComponent
from rtl.emit import NO_RW_CHECK
from sbs_model.hwcost import ram_is_sliced, ram_slice_bits


class SlicedRAM(CheckedComponent):
    """One-write, one-read RAM of ``depth`` words of ``width`` bits in bit slices (see module docstring)."""

    @staticmethod
    def plan(width: int, depth: int) -> dict:
        if not isinstance(width, int) or width < 1:
            raise ValueError(f"SlicedRAM: width must be an int >= 1, got {width!r}")
        if not isinstance(depth, int) or depth < 2:
            raise ValueError(f"SlicedRAM: depth must be an int >= 2, got {depth!r}")
        sliced = ram_is_sliced(depth)
        slice_bits = ram_slice_bits(depth) if sliced else width
        return {"width": width, "depth": depth, "sliced": sliced, "slice_bits": slice_bits,
                "slices": -(-width // slice_bits)}

    def __init__(self, width: int, depth: int):
        super().__init__({"wr_en": In(1), "wr_addr": In(range(depth)), "wr_data": In(width),
                          "rd_addr": In(range(depth)), "rd_data": Out(width)})

    def elaborate(self, platform):
        m = Module()
        sb, outs = self.slice_bits, []
        for s in range(self.slices):
            lo, hi = s * sb, min((s + 1) * sb, self.width)
            attrs = {"ram_style": "block", NO_RW_CHECK: 1} if self.sliced else {}
            mem = memory.Memory(shape=hi - lo, depth=self.depth, init=[], attrs=attrs)
            m.submodules[f"s{s}"] = mem
            wp, rp = mem.write_port(), mem.read_port(domain="sync", transparent_for=())
            m.d.comb += [wp.en.eq(self.wr_en), wp.addr.eq(self.wr_addr), wp.data.eq(self.wr_data[lo:hi]),
                         rp.addr.eq(self.rd_addr)]
            outs.append(rp.data)
        m.d.comb += self.rd_data.eq(Cat(*outs))
        return m


__all__ = ["SlicedRAM"]
