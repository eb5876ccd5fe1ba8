"""``FmapFeeder``: a feature-map RAM read out as a stream, one value per cycle.

Ports: ``start`` (pulse): the next cycle presents address 0; ``rd_addr`` / ``rd_en`` out and
``rd_data`` in: a :class:`rtl.network.fmap.FeatureMap` read port (a pipeline of
:data:`sbs_model.network_cycles.FMAP_READ_LATENCY` stages that advance in the cycles with ``rd_en``
high); ``o``: ``lib.stream`` of ``n`` values in address order; ``busy`` out: addresses left to issue
or values in the pipeline (from the cycle after ``start`` until the last value has transferred): while
it is low the map's read port is free (the network's debug path uses it then).

The feeder is a pipeline of the map's read stages and an output register (``o.payload`` is a
flip-flop), all advancing together whenever the output register can take a value (it is empty or
``o.ready`` is high); so a stalled consumer freezes every stage and loses nothing.  With
``o.ready`` high, value ``j`` transfers in cycle ``s + 2 + FEED_DELAY + j`` = ``s + 4 + j`` for
``start`` in cycle ``s`` (:data:`sbs_model.network_cycles.FEED_DELAY` = 2: the map's bank register
and this output register).
"""
from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import stream
from amaranth.lib.wiring import In, Out

from rtl.checked import CheckedComponent
from sbs_model.network_cycles import FEED_DELAY, FMAP_READ_LATENCY


class FmapFeeder(CheckedComponent):
    """``n`` values of ``width`` bits from a feature map's read pipeline to a stream, through an
    output register stage."""

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
            "busy": Out(1),
        })

    def elaborate(self, platform):
        assert FEED_DELAY == FMAP_READ_LATENCY  # the read stages beyond the first, and the output register
        m = Module()
        n = self.n
        active = Signal()  # addresses left to issue
        cnt = Signal(range(n + 1))
        v = [Signal(name=f"v{i}") for i in range(FMAP_READ_LATENCY)]  # read stage i holds a value
        v_o = Signal()  # output stage
        data_o = Signal(self.width)
        take = ~v_o | self.o.ready  # the output stage can take a value: every stage advances
        with m.If(take):
            m.d.sync += [v_o.eq(v[-1]), data_o.eq(self.rd_data)]
            for a, b in zip(v[1:], v):
                m.d.sync += a.eq(b)
        with m.If(self.start):
            m.d.sync += [active.eq(1), cnt.eq(0), v_o.eq(0)] + [x.eq(0) for x in v]
        with m.Elif(take):
            m.d.sync += v[0].eq(active & (cnt < n))
            with m.If(active & (cnt < n)):
                m.d.sync += cnt.eq(cnt + 1)
            with m.Else():
                m.d.sync += active.eq(0)
        busy = active | v_o
        for x in v:
            busy = busy | x
        m.d.comb += [self.rd_addr.eq(cnt), self.rd_en.eq(take), self.o.valid.eq(v_o), self.o.payload.eq(data_o),
                     self.busy.eq(busy)]
        return m


__all__ = ["FmapFeeder"]
