"""``SpikeGenerator``: a free-running stage producing the spike indices of many IPs.

Spike indices depend only on the layer's input (never on h), so they are produced ahead of the
update datapath, in the order the engine core consumes them: for ``t = 0..T-1``, for
``slot = 0..n_active-1``, the index of spike ``t`` of IP ``ip_base + slot``:

1. a request sequencer issues ``(seed, pattern, layer, ip, t)`` (one per cycle while it has
   credit) to the pipelined Threefry RNG (:class:`rtl.layer.threefry.ThreefryPipe`, 26 stages,
   never stalled);
2. :class:`rtl.layer.sampler_pipe.PipelinedSampler` turns each draw into an index (``5 + 2*KS``
   stages, never stalled);
3. a FIFO (:class:`rtl.layer.index_fifo.IndexFifo`, :attr:`depth` entries, ``lib.fifo.SyncFIFOBuffered``'s
   timing without its write refusal) holds the indices for the core.

Credit: a request is issued only while fewer than :attr:`depth` indices are issued and not yet
taken from the FIFO, so the FIFO never overflows and nothing inside the pipeline stalls.

Ports (plain signals unless noted):

* ``start`` (pulse) with ``seed``, ``pattern`` (u32 each), ``ip_base`` (u24), ``n_active``
  (1..slots): begin a wave of ``T * n_active`` indices; the windows must be stored already
  (``wr_*``, forwarded to the sampler);
* ``o`` (``lib.stream``, ``index_width`` bits): the indices;
* ``primed``: the FIFO holds at least ``min(PRIME, T * n_active)`` indices (the core may start).

Latency: :attr:`latency` = ``26 + sampler latency`` cycles from a request to its index
entering the FIFO.  ``fault`` (tests only): ``"flip_bit0"`` inverts bit 0 of every 7th index.
"""
from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from fixedpoint.rng import IP_MAX, LAYER_MAX
from rtl.layer.index_fifo import IndexFifo
from rtl.layer.sampler_pipe import PipelinedSampler
from rtl.layer.threefry import ThreefryPipe
from sbs_model import layer_cycles as lc

PRIME = lc.PRIME
FAULTS = (None, "flip_bit0")


class SpikeGenerator(wiring.Component):
    """Spike index producer for ``slots`` interleaved IPs of one layer (see module docstring)."""

    def __init__(self, S: int, cum_width: int, T: int, slots: int, layer_index: int, fault=None):
        self._MustUse__silence = True
        if not isinstance(T, int) or not 1 <= T <= (1 << 24):
            raise ValueError(f"SpikeGenerator: T must be an int in 1..{1 << 24}, got {T!r}")
        if not 0 <= int(layer_index) <= LAYER_MAX:
            raise ValueError(f"SpikeGenerator: layer_index must be in 0..{LAYER_MAX}, got {layer_index!r}")
        if fault not in FAULTS:
            raise ValueError(f"SpikeGenerator: fault must be one of {FAULTS}, got {fault!r}")
        self.sampler = PipelinedSampler(S, cum_width, slots)
        self.rng = ThreefryPipe()
        self.S, self.T, self.slots, self.layer_index, self.fault = S, T, slots, int(layer_index), fault
        self.index_width = self.sampler.index_width
        self.latency = self.rng.latency + self.sampler.latency
        self.depth = lc.spike_fifo_depth(self.latency)
        self._MustUse__silence = False
        super().__init__({
            "wr_en": In(1), "wr_slot": In(range(max(slots, 2))), "wr_s": In(range(max(S, 2))),
            "wr_cum": In(cum_width),
            "start": In(1), "seed": In(32), "pattern": In(32), "ip_base": In(range(IP_MAX + 1)),
            "n_active": In(range(slots + 1)),
            "o": Out(stream.Signature(self.index_width)),
            "primed": Out(1),
        })

    def prime_cycles(self, n_active: int) -> int:
        """``start`` high in cycle ``c`` -> ``primed`` first high in cycle ``c + prime_cycles``
        (requests from ``c + 1``, one per cycle; the FIFO shows an index one cycle after it is
        written; the flag is registered: one cycle more)."""
        return self.latency + min(PRIME, self.T * int(n_active)) + 2

    def elaborate(self, platform):
        m = Module()
        T, P = self.T, self.slots
        m.submodules.rng = rng = self.rng
        m.submodules.sampler = smp = self.sampler
        m.submodules.fifo = q = IndexFifo(self.index_width, self.depth)
        primed = Signal()
        for name in ("wr_en", "wr_slot", "wr_s", "wr_cum"):
            m.d.comb += getattr(smp, name).eq(getattr(self, name))

        # ---- wave parameters, held from start
        seed, pattern = Signal(32), Signal(32)
        ip_base = Signal(range(IP_MAX + 1))
        thr = Signal(range(max(PRIME, 1) + 1))
        t_req, k_req = Signal(range(max(T, 2))), Signal(range(max(P, 2)))
        ip_req = Signal(range(IP_MAX + 1))
        k_out = Signal(range(max(P, 2)))
        active = Signal()
        outstanding = Signal(range(self.depth + 1))
        last_slot = Signal(range(max(P, 2)))  # n_act - 1: the slot after which the requests wrap
        before_last = Signal(range(max(P, 2)))  # n_act - 2
        req_last, out_last = Signal(), Signal()  # registered k_req == last_slot, k_out == last_slot
        with m.If(self.start):
            # min(n_active*T, PRIME) without a product: n_active*T >= PRIME from ceil(PRIME/T) IPs on
            n_full = -(-PRIME // T)
            m.d.sync += [seed.eq(self.seed), pattern.eq(self.pattern), ip_base.eq(self.ip_base),
                         t_req.eq(0), k_req.eq(0), k_out.eq(0), active.eq(1),
                         ip_req.eq(self.ip_base), last_slot.eq(self.n_active - 1),
                         before_last.eq(self.n_active - 2), req_last.eq(self.n_active == 1),
                         out_last.eq(self.n_active == 1),
                         thr.eq(Mux(self.n_active >= n_full, PRIME, (self.n_active * T)[:len(thr)]))]

        # ---- requests (credit-limited)
        issue = Signal()
        m.d.comb += issue.eq(active & (outstanding < self.depth))
        m.d.comb += [rng.i_valid.eq(issue), rng.seed.eq(seed), rng.pattern.eq(pattern),
                     rng.layer.eq(self.layer_index), rng.ip.eq(ip_req), rng.spike.eq(t_req)]
        with m.If(issue & ~self.start):
            last_k = req_last
            m.d.sync += [k_req.eq(Mux(last_k, 0, k_req + 1)), ip_req.eq(Mux(last_k, ip_base, ip_req + 1)),
                         req_last.eq(Mux(last_k, last_slot == 0, k_req == before_last))]
            with m.If(last_k):
                m.d.sync += t_req.eq(t_req + 1)
                with m.If(t_req == T - 1):
                    m.d.sync += active.eq(0)
        # the credit of a pop comes back one cycle late (``pop_q``): the core's ready logic ends at a flip-flop
        # here, not at the credit counter's adder (at 993bd52, T = 800, layer 5's core -> ``outstanding`` across
        # the chip was the critical path, 11.38 ns, 10 levels).  The count is then at most one too high for a
        # cycle, which only holds a request back; the queue's depth covers the one cycle longer credit loop
        # (layer_cycles.spike_fifo_depth: 14 entries beyond the request-to-queue latency)
        pop = self.o.valid & self.o.ready
        pop_q = Signal()
        m.d.sync += [pop_q.eq(pop), outstanding.eq(outstanding + issue - pop_q)]

        # ---- draws -> sampler (slot of each draw follows the request order)
        m.d.comb += [smp.i_valid.eq(rng.o_valid), smp.i_r.eq(rng.o_r), smp.i_slot.eq(k_out)]
        with m.If(rng.o_valid & ~self.start):
            m.d.sync += [k_out.eq(Mux(out_last, 0, k_out + 1)),
                         out_last.eq(Mux(out_last, last_slot == 0, k_out == before_last))]

        # ---- FIFO
        index = smp.o_index
        if self.fault == "flip_bit0":
            cnt = Signal(3)
            with m.If(smp.o_valid):
                m.d.sync += cnt.eq(Mux(cnt == 6, 0, cnt + 1))
            index = Mux(cnt == 6, index ^ 1, index)
        m.d.comb += [q.w_en.eq(smp.o_valid), q.w_data.eq(index),
                     self.o.valid.eq(q.r_rdy), self.o.payload.eq(q.r_data), q.r_en.eq(self.o.ready),
                     self.primed.eq(primed)]
        # primed registered (the FIFO level compare feeds a flip-flop, not the core's phase logic); low in
        # the cycle after start, so a wave never sees the previous wave's flag
        m.d.sync += primed.eq((q.level >= thr) & ~self.start)
        return m


__all__ = ["SpikeGenerator", "PRIME"]
