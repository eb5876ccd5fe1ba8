"""``SpikeSampler``: the integer spike sampler of :func:`fixedpoint.rng.sample_index_int` as RTL.

Parameters: ``S`` (window length, 1..65536) and ``value_width`` (bits of one window value, >= 1)
with ``value_width + ceil(log2 S) <= 31`` so the window total is always < 2**31 as the model
requires.  Cumulative sums are ``cum_width = value_width + ceil(log2 S)`` bits wide.

Ports (``lib.stream``):

* ``load``: window values, ``value_width`` bits each.  S consecutive transfers load one window;
  the unit accumulates the cumulative sum itself and writes ``cum[s]`` into a ``lib.memory.Memory``
  (depth max(S, 2), ``cum_width`` bits, one write port, one synchronous read port).  ``draw`` is not
  ready while a window is being loaded.
* ``draw``: uint32 draws ``r``; accepted once a window is complete (one draw in flight).
* ``index``: the spike index, ``index_width = max(1, ceil(log2 S))`` bits.

Protocol: after the S-th value of a window, draws are served for that window; a ``load`` transfer
while no draw is in flight starts the next window (the host sends a new window only after the
indices of the previous window's draws were received).

Datapath per draw: ``target = (r * total) >> 32`` (one 32 x cum_width multiplier), then a binary
search for the first ``s`` with ``cum[s] > target``, one step per cycle for exactly
``ceil(log2 S)`` cycles (read address computed from the next search interval so the synchronous
read keeps up); an all-zero window gives ``(r * S) >> 32``.  Latency :attr:`SpikeSampler.latency`
= ``max(1, ceil(log2 S)) + 1``: a draw transferred in cycle ``c`` shows ``index.valid`` in cycle ``c + latency``.

``fault`` is for tests only (``"flip_bit0"``: invert bit 0 of the index when the top four bits
of the draw are all ones, i.e. on 1/16 of the draws).
"""
from __future__ import annotations

from types import SimpleNamespace

from amaranth import Module, Mux, Signal
from amaranth.lib import memory, stream
from amaranth.lib.wiring import In, Out

from fixedpoint.bits import clog2
from fixedpoint.rng import sample_index_int
from rtl.checked import CheckedComponent
from sbs_model.hw_cycles import sampler_latency

FAULTS = (None, "flip_bit0")
S_MAX = 1 << 16


def reference(values, draws) -> list[int]:
    """Model indices (``fixedpoint.rng.sample_index_int``) for a window of integer values."""
    import numpy as np
    cum = np.cumsum(np.asarray(values, dtype=np.int64))
    return [int(v) for v in sample_index_int(cum, np.asarray(draws, dtype=np.uint64))]


class SpikeSampler(CheckedComponent):
    """Integer spike sampler over a window of S values (see module docstring)."""

    @staticmethod
    def plan(S: int, value_width: int, fault: str | None = None) -> dict:
        """Checked arguments -> the attributes of a SpikeSampler (ValueError for bad ones)."""
        p = SimpleNamespace()
        if not isinstance(S, int) or not 1 <= S <= S_MAX:
            raise ValueError(f"SpikeSampler: S must be an int in 1..{S_MAX}, got {S!r}")
        max_vw = 31 - clog2(S)
        if not isinstance(value_width, int) or not 1 <= value_width <= max_vw:
            raise ValueError(f"SpikeSampler: value_width must be in 1..{max_vw} for S={S} "
                             f"(value_width + ceil(log2 S) <= 31), got {value_width!r}")
        if fault not in FAULTS:
            raise ValueError(f"SpikeSampler: fault must be one of {FAULTS}, got {fault!r}")
        p.S = S
        p.value_width = value_width
        p.fault = fault
        p.steps = clog2(S)
        p.cum_width = value_width + p.steps
        p.index_width = max(1, p.steps)
        p.latency = sampler_latency(S)  # max(1, steps) + 1
        return vars(p)

    def __init__(self, S: int, value_width: int, fault: str | None = None):
        super().__init__({
            "load": In(stream.Signature(value_width)),
            "draw": In(stream.Signature(32)),
            "index": Out(stream.Signature(self.index_width)),
        })

    def elaborate(self, platform):
        m = Module()
        S, cw, iw = self.S, self.cum_width, self.index_width
        D = max(S, 2)  # S = 1: keep every address/index signal at least 1 bit wide
        m.submodules.cum = cum = memory.Memory(shape=cw, depth=D, init=[])
        wr = cum.write_port()
        rd = cum.read_port(domain="sync")

        total = Signal(cw)            # running sum while loading; cum[S-1] afterwards
        count = Signal(range(D + 1))  # values loaded into the current window
        have_window = Signal()        # a complete window is loaded
        r_top = Signal(4)             # draw[31:28] (fault condition only)
        target = Signal(cw)
        uniform = Signal(iw)          # (r * S) >> 32
        zero = Signal()               # total == 0
        lo = Signal(range(D))
        hi = Signal(range(D))
        step = Signal(range(max(1, self.steps) + 2))  # >= 2 bits: no constant compare
        busy = Signal()
        out_valid = Signal()

        idle = ~busy & ~out_valid
        # ---- load: cum[count] = total + value
        m.d.comb += self.load.ready.eq(idle)
        new_total = total + self.load.payload
        m.d.comb += [wr.addr.eq(count), wr.data.eq(Mux(count == 0, self.load.payload, new_total))]
        with m.If(self.load.valid & self.load.ready):
            m.d.comb += wr.en.eq(1)
            with m.If(count == 0):
                m.d.sync += total.eq(self.load.payload)
            with m.Else():
                m.d.sync += total.eq(new_total)
            with m.If(count == S - 1):
                m.d.sync += [count.eq(0), have_window.eq(1)]
            with m.Else():
                m.d.sync += [count.eq(count + 1), have_window.eq(0)]

        # ---- draw: one multiplier for the target, a constant multiply for the uniform case
        r = self.draw.payload
        m.d.comb += self.draw.ready.eq(idle & have_window & (count == 0) & ~self.load.valid)
        accept = self.draw.valid & self.draw.ready

        # ---- search: the read address is the midpoint of the *next* interval
        mid = ((lo + hi) >> 1)[:len(lo)]
        go_left = rd.data > target
        lo_next = Signal(range(D))
        hi_next = Signal(range(D))
        m.d.comb += [lo_next.eq(lo), hi_next.eq(hi)]
        searching = busy & (step != 0)
        with m.If(searching & (lo != hi)):
            with m.If(go_left):
                m.d.comb += hi_next.eq(mid)
            with m.Else():
                m.d.comb += lo_next.eq(mid + 1)
        with m.If(accept):
            m.d.comb += rd.addr.eq((S - 1) >> 1)
        with m.Else():
            m.d.comb += rd.addr.eq((lo_next + hi_next) >> 1)

        with m.If(accept):
            m.d.sync += [
                target.eq((r * total) >> 32),
                uniform.eq((r * S) >> 32),
                zero.eq(total == 0),
                r_top.eq(r[28:32]),
                lo.eq(0), hi.eq(S - 1), step.eq(self.steps), busy.eq(1),
            ]
        with m.Elif(busy):
            m.d.sync += [lo.eq(lo_next), hi.eq(hi_next)]
            with m.If(step != 0):
                m.d.sync += step.eq(step - 1)
            with m.If(step <= 1):  # the last search step happens in this cycle
                m.d.sync += [busy.eq(0), out_valid.eq(1)]
        with m.If(self.index.valid & self.index.ready):
            m.d.sync += out_valid.eq(0)

        result = Mux(zero, uniform, lo)
        if self.fault == "flip_bit0":
            result = Mux(r_top == 0xF, result ^ 1, result)
        m.d.comb += [self.index.valid.eq(out_valid), self.index.payload.eq(result)]
        return m
