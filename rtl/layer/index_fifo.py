"""``IndexFifo``: the spike generator's index queue, a FIFO whose writes are never refused.

Cycle for cycle the behaviour of ``amaranth.lib.fifo.SyncFIFOBuffered(width, depth)`` (the same
``level``, ``r_rdy`` and ``r_data`` in every cycle) for a writer that never writes into a full
queue, which :class:`rtl.layer.spikegen.SpikeGenerator` guarantees by its credit (at most
``depth`` indices requested and not yet taken).  The difference is the write side: the storage's
write enable is ``w_en`` itself, not ``w_en & w_rdy``, so no path runs from the fill level to the
storage.  In the whole network placed and routed at commit 66f745e (seed 1) that path, the level
register -> ``w_rdy`` -> the LUT-RAM write enable across the chip, was the critical path (11.23 ns,
9.58 ns of it routing).

Parameters: ``width`` (bits of an entry), ``depth`` (entries, a power of two >= 4: the pointers wrap
without a compare; at depth 2 ``SyncFIFOBuffered`` refuses a write into a half-full queue whose
entry has not reached its output register yet, and this queue would take it).  Ports (plain signals): ``w_en``, ``w_data`` in (write ``w_data`` now; the
queue must not be full); ``r_en`` in, ``r_rdy``, ``r_data`` out (``r_data`` is the head while
``r_rdy``; ``r_en`` takes it); ``level`` out (entries held, ``0 .. depth``).  An entry written to
an empty queue in cycle ``c`` shows ``r_rdy`` in cycle ``c + 2``: one cycle in the storage, one in
the output register.
"""
from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out


class IndexFifo(wiring.Component):
    """Buffered synchronous FIFO without write refusal (see module docstring)."""

    def __init__(self, width: int, depth: int):
        if not isinstance(width, int) or width < 1:
            raise ValueError(f"IndexFifo: width must be an int >= 1, got {width!r}")
        if not isinstance(depth, int) or depth < 4 or depth & (depth - 1):
            raise ValueError(f"IndexFifo: depth must be a power of two >= 4, got {depth!r}")
        self.width, self.depth = width, depth
        super().__init__({
            "w_en": In(1), "w_data": In(width),
            "r_en": In(1), "r_rdy": Out(1), "r_data": Out(width),
            "level": Out(range(depth + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.storage = storage = memory.Memory(shape=self.width, depth=self.depth, init=[])
        w_port, r_port = storage.write_port(), storage.read_port(domain="sync")
        produce, consume = Signal(range(self.depth)), Signal(range(self.depth))  # wrap by truncation
        inner = Signal(range(self.depth + 1))  # entries in the storage (the head register not counted)
        # the storage feeds the output register whenever it holds an entry and the register is free or taken
        refill = (inner != 0) & (~self.r_rdy | self.r_en)

        m.d.comb += [w_port.addr.eq(produce), w_port.data.eq(self.w_data), w_port.en.eq(self.w_en),
                     r_port.addr.eq(consume), r_port.en.eq(refill), self.r_data.eq(r_port.data),
                     self.level.eq(inner + self.r_rdy)]
        with m.If(self.w_en):
            m.d.sync += produce.eq(produce + 1)
        with m.If(refill):
            m.d.sync += consume.eq(consume + 1)
        with m.If(self.w_en & ~refill):
            m.d.sync += inner.eq(inner + 1)
        with m.Elif(refill & ~self.w_en):
            m.d.sync += inner.eq(inner - 1)
        with m.If(refill):
            m.d.sync += self.r_rdy.eq(1)
        with m.Elif(self.r_en):
            m.d.sync += self.r_rdy.eq(0)
        return m


__all__ = ["IndexFifo"]
