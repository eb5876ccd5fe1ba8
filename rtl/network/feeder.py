"""``FmapFeeder``: a feature-map RAM read out as a stream, one value per cycle.

Ports: ``start`` (pulse): the next cycle presents address 0; ``rd_addr`` / ``rd_en`` out and
``rd_data`` in: a synchronous read port (data one cycle after the address, held while ``rd_en`` is
low); ``o``: ``lib.stream`` of ``n`` values in address order.

The RAM's data goes into an output register before it leaves (``o.payload`` is a flip-flop): a
feature map spans many block RAMs, and their output multiplexer then ends at this register instead
of running on into the consumer.  With ``o.ready`` high, value ``j`` transfers in cycle
``s + 2 + FEED_DELAY + j`` = ``s + 3 + j`` for ``start`` in cycle ``s``
(:data:`sbs_model.network_cycles.FEED_DELAY` is the extra cycle).
"""
from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import stream
from amaranth.lib.wiring import In, Out

from rtl.checked import CheckedComponent
from sbs_model.network_cycles import FEED_DELAY


class FmapFeeder(CheckedComponent):
    """``n`` values of ``width`` bits from a synchronous read port to a stream, through a RAM stage
    (address issued, data at the port) and an output register stage."""

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
        assert FEED_DELAY == 1  # the output register below
        m = Module()
        n = self.n
        active = Signal()  # addresses left to issue
        cnt = Signal(range(n + 1))
        v = Signal()  # RAM stage: rd_data holds a value
        v_o = Signal()  # output stage
        data_o = Signal(self.width)
        take = ~v_o | self.o.ready  # the output stage can take a value this cycle
        free = ~v | take  # the RAM stage empties (or is empty) this cycle
        en = active & free
        with m.If(take):
            m.d.sync += [v_o.eq(v), data_o.eq(self.rd_data)]
        with m.If(self.start):
            m.d.sync += [active.eq(1), cnt.eq(0), v.eq(0), v_o.eq(0)]
        with m.Elif(en):
            m.d.sync += v.eq(cnt < n)
            with m.If(cnt < n):
                m.d.sync += cnt.eq(cnt + 1)
            with m.Else():
                m.d.sync += active.eq(0)
        with m.Elif(free):
            m.d.sync += v.eq(0)
        m.d.comb += [self.rd_addr.eq(cnt), self.rd_en.eq(en), self.o.valid.eq(v_o), self.o.payload.eq(data_o)]
        return m


__all__ = ["FmapFeeder"]
