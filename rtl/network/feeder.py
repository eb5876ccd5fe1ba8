"""``FmapFeeder``: a feature-map RAM read out as a stream, one value per cycle.

Ports: ``start`` (pulse): the next cycle presents address 0; ``rd_addr`` / ``rd_en`` out and
``rd_data`` in: a synchronous read port (data one cycle after the address, held while ``rd_en`` is
low); ``o``: ``lib.stream`` of ``n`` values in address order.  With ``o.ready`` high, value ``j``
transfers in cycle ``s + 2 + j`` for ``start`` in cycle ``s``.
"""
from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import stream
from amaranth.lib.wiring import In, Out

from rtl.checked import CheckedComponent


class FmapFeeder(CheckedComponent):
    @staticmethod
    def plan(n: int, width: int) -> dict:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"FmapFeeder: n must be an int >= 1, got {n!r}")
        return dict(n=n, width=int(width))

    def __init__(self, n: int, width: int):
        super().__init__({
            "start": In(1),
            "rd_addr": Out(range(max(n, 2))), "rd_en": Out(1), "rd_data": In(self.width),
            "o": Out(stream.Signature(self.width)),
        })

    def elaborate(self, platform):
        m = Module()
        n = self.n
        active = Signal()
        cnt = Signal(range(n + 1))
        v = Signal()
        en = active & (~v | self.o.ready)
        with m.If(self.start):
            m.d.sync += [active.eq(1), cnt.eq(0), v.eq(0)]
        with m.Elif(en):
            m.d.sync += v.eq(cnt < n)
            with m.If(cnt < n):
                m.d.sync += cnt.eq(cnt + 1)
            with m.Else():
                m.d.sync += active.eq(0)
        m.d.comb += [self.rd_addr.eq(cnt), self.rd_en.eq(en), self.o.valid.eq(v), self.o.payload.eq(self.rd_data)]
        return m


__all__ = ["FmapFeeder"]
