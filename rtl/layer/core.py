"""``EngineCore``: P interleaved IPs of one SbS layer, one fused update + dot pass per beat.

Parameters: a :class:`fixedpoint.datapath.Datapath` (``int`` or ``scaled`` update -- the units of
either are chosen by :func:`rtl.layer.update_select.update_units`; fixed-point H, ``div``
reciprocal), the layer's weight codes ``w_codes`` (S x N) in its weight format ``w_format``, T
spikes, L lanes, the layer geometry (for :class:`rtl.layer.window.WindowLoader`) and the layer
index (for the spike draws).  ``B = ceil(N/L)`` beats per pass, ``P`` =
:func:`sbs_model.layer_cycles.slots` slots.

Memories: weights ROM (``S*B`` words of L codes, two read ports: spike t-1's row for the update,
spike t's row for the dot), h RAM (``P*B`` words of L codes), coefficient RAM (``P`` words: the
ignored flag, ``C`` (Fc+1 bits), ``K``, ``exp_K``), spike-row RAM (``P`` words: the row of the
slot's latest spike), the schedule ROM (``C_t``, ``G_t``), the windows (sampler, ``P*S`` words).

A wave (``start`` with ``ip_start``, ``n_active`` <= P; ``seed``, ``pattern`` held from ``start`` until
the spike generator starts: the core copies them in every cycle):

1. LOAD: :class:`WindowLoader` writes the cumulative windows of the wave's IPs (``n_active*S``
   cycles + :data:`rtl.layer.window.LATENCY`);
2. the :class:`rtl.layer.spikegen.SpikeGenerator` starts; the core waits for ``primed``;
3. RUN: rounds ``t = 0..T``, slot by slot (the ``n_active`` active slots), beat by beat; a round
   lasts :func:`sbs_model.layer_cycles.round_cycles` = ``max(n_active*B, D+B)`` cycles (a pad without
   passes after the last slot when the chain ``D`` is longer than the other slots' passes), round T
   ends with its last pass.  The pass of slot k in round t (beat b issued in cycle c0):

   * c0: h RAM, coefficient RAM and spike-row RAM read; slot k's spike index ``s_t`` is taken
     from the FIFO (``t < T``, beat 0) and written to the spike-row RAM;
   * c1: the RAM words registered as read, the weight address of ``s_{t-1}``; c2: weight read, and
     ``h`` (``t = 0``: the initial h) and the coefficient (identity ``C = 2**Fc, K = 0`` for ``t = 0``
     and for an ignored spike) selected; c3: the weights registered;
   * c4..c10: :class:`rtl.layer.update_lanes.UpdateLanes` -> new h, written back in c10;
   * c10: :class:`rtl.layer.dot_lanes.DotLanes` of the new h with row ``s_t`` (address in c7, :class:`rtl.layer.weight_rom.WeightROM`),
     accumulated over the B beats; then :class:`rtl.layer.norm_pipe.NormalisePipe`,
     :class:`rtl.layer.reciprocal_pipe.ReciprocalPipe` (with ``C_t, G_t`` from the schedule ROM) and
     :class:`rtl.layer.coefficient.CoefficientPipe`; the coefficient RAM word of slot k is written
     ``D`` = :func:`sbs_model.layer_cycles.chain_latency` cycles after the last beat.

   Round T only updates (the final h).
4. ``done`` rises when the last h word is written; the engine then reads the h RAM: ``out_addr_next``
   is the word (``k*B + b``) to read in the *next* cycle (it goes into the address registers next to
   the RAMs), and ``out_data`` is that word one cycle after that.

``starved`` (sticky) is set if a pass needed an index while the FIFO was empty (never, by the
credit and prime rules; the tests check it).  ``fault`` (tests only): ``"stale_h"`` -- slot 0
starts from the h left in its RAM instead of the initial h; ``"select"`` -- the same, enabled by
an extra input ``stale_en``.
"""
from __future__ import annotations

import numpy as np
from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from fixedpoint.formats import parse_format
from fixedpoint.schedule import Schedule
from rtl.emit import KEEP_FLOPS, NO_RW_CHECK
from rtl.layer.dot_lanes import DotLanes
from rtl.layer.norm_pipe import NormalisePipe
from rtl.layer.reciprocal_pipe import ReciprocalPipe
from rtl.layer.spikegen import SpikeGenerator
from rtl.layer.update_select import update_units
from rtl.layer.weight_rom import D_LATENCY, WeightROM
from rtl.layer.window import LATENCY as LOADER_LATENCY
from rtl.layer.window import WindowLoader
from sbs_model import layer_cycles as lc
from sbs_model.hwcost import HRAM_GROUP_BITS

FAULTS = (None, "stale_h", "select")
HRAM_WIDTH = HRAM_GROUP_BITS  # the h RAM is split in groups of lanes at most this wide (sbs_model.hwcost)


def delay(m, value, n: int, name: str):
    """``value`` delayed by ``n`` registers (n >= 0)."""
    for i in range(n):
        r = Signal(value.shape(), name=f"{name}_d{i + 1}")
        m.d.sync += r.eq(value)
        value = r
    return value


def hram_groups(L: int, ow: int) -> list[tuple[int, int]]:
    """Lane ranges ``(j0, j1)`` of the h RAMs: as many lanes as fit :data:`HRAM_WIDTH` bits, at least
    one."""
    n = max(1, HRAM_WIDTH // ow)
    return [(j0, min(j0 + n, L)) for j0 in range(0, L, n)]


def word_addr(row, beat, B: int):
    """``row*B + beat``, the memory word of a beat: no adder when B is a power of two."""
    if B == 1:
        return row
    if B & (B - 1) == 0:
        return Cat(beat[:B.bit_length() - 1], row)
    return row * B + beat


def pack(codes, width: int) -> int:
    return sum(int(c) << (j * width) for j, c in enumerate(codes))


class EngineCore(wiring.Component):
    """One engine core (see module docstring)."""

    def __init__(self, dp, w_codes, w_format, T: int, lanes: int, in_shape, layer, layer_index: int,
                 value_width: int, schedule: Schedule | None = None, fault: str | None = None,
                 n_slots: int | None = None):
        self._MustUse__silence = True
        if fault not in FAULTS:
            raise ValueError(f"EngineCore: fault must be one of {FAULTS}, got {fault!r}")
        w_codes = np.asarray(w_codes, dtype=np.int64)
        self.S, self.N = (int(v) for v in w_codes.shape)
        self.dp, self.T, self.L, self.fault = dp, int(T), int(lanes), fault
        self.H, self.W = parse_format(dp.h_format), parse_format(w_format)
        self.w_codes = w_codes
        self.B = lc.beats(self.N, self.L)
        self.P = lc.core_slots(self.N, self.L, int(dp.recip_bits), n_slots)  # ValueError below the chain's
        self.D = lc.chain_latency(self.L, dp.recip_bits)
        self.schedule = schedule or Schedule()
        self.cum_width = value_width + max(1, lc.clog2(self.S))
        if self.cum_width > 31:
            raise ValueError(f"EngineCore: window values of {value_width} bits over S = {self.S} positions need "
                             f"{self.cum_width} bits; the sampler allows 31 (lower sampler_frac_bits)")
        # sub-units (validation errors surface here)
        self.units = update_units(dp, self.W, self.L, self.T, self.schedule)  # int or scaled update
        self.upd = self.units.upd
        self.word_width = self.units.word_width  # bits per lane of an h memory word
        self.dot = DotLanes(dp, self.W, self.N, self.L)
        self.norm = NormalisePipe(dp)
        self.recip = ReciprocalPipe(dp)
        self.coef, self.sched = self.units.coef, self.units.sched
        self.gen = SpikeGenerator(self.S, self.cum_width, self.T, self.P, layer_index)
        self.loader = WindowLoader(in_shape, layer, value_width, self.cum_width, self.P)
        got = (self.upd.latency, self.dot.latency, self.norm.latency, self.recip.latency, self.coef.latency,
               self.gen.latency, LOADER_LATENCY)
        want = (lc.UPDATE, lc.dot_latency(self.L), lc.NORM, int(dp.recip_bits) + lc.RECIP, lc.COEF,
                lc.spikegen_latency(self.S), lc.LOAD)
        assert got == want, f"EngineCore: unit latencies {got} differ from sbs_model.layer_cycles {want}"
        self.n_in = self.loader.n_in
        self.h0 = [int(c) for c in dp.initial_h(self.N)]
        self._MustUse__silence = False
        ports = {"stale_en": In(1)} if fault == "select" else {}
        super().__init__(ports | {
            "start": In(1), "ip_start": In(range(self.loader.n_ip + 1)), "n_active": In(range(self.P + 1)),
            "seed": In(32), "pattern": In(32),
            "rd_addr": Out(range(max(self.n_in, 2))), "rd_data": In(value_width),
            "done": Out(1), "starved": Out(1),
            "out_addr_next": In(range(max(self.P * self.B, 2))),
            "out_data": Out(data.ArrayLayout(self.word_width, self.L)),
        })

    def weight_words(self) -> list[int]:
        """Weights ROM: row s, beat b at address ``s*B + b``, lane j = element ``b*L + j`` (pad 0)."""
        L, B, ww = self.L, self.B, self.W.width
        out = []
        for s in range(self.S):
            row = [int(c) for c in self.w_codes[s]] + [0] * (B * L - self.N)
            out += [pack(row[b * L:(b + 1) * L], ww) for b in range(B)]
        return out

    def elaborate(self, platform):
        m = Module()
        dp, S, N, T, L, B, P = self.dp, self.S, self.N, self.T, self.L, self.B, self.P
        hw, ow, units = self.H.width, self.word_width, self.units
        for name in ("upd", "dot", "norm", "recip", "coef", "sched", "gen", "loader"):
            m.submodules[name] = getattr(self, name)
        upd, dot, norm, recip, coef, sched, gen, ld = (self.upd, self.dot, self.norm, self.recip, self.coef,
                                                       self.sched, self.gen, self.loader)
        # ---- loader -> sampler memories; input RAM port
        for name in ("wr_en", "wr_slot", "wr_s", "wr_cum"):
            m.d.comb += getattr(gen, name).eq(getattr(ld, name))
        m.d.comb += [self.rd_addr.eq(ld.rd_addr), ld.rd_data.eq(self.rd_data),
                     ld.start.eq(self.start), ld.ip_start.eq(self.ip_start), ld.n_active.eq(self.n_active)]

        # ---- memories
        # The h and coefficient RAMs are never read and written at one address in one cycle, so they carry
        # NO_RW_CHECK (no read-old-data emulation behind the block RAMs): a slot's h word is written WRITE
        # cycles after its read and read again P*B > D >= WRITE cycles after that read
        # (layer_cycles.slots); its coefficient is written D cycles after its pass's last beat, before its
        # next pass; the output serialiser reads when nothing is written (tests/test_layer_cycles.py checks
        # P*B > WRITE and P*B >= D + B).  Only memories forced into block RAM carry it, so Yosys' choice of
        # memory kind (its cost counts the emulation) stays as the cost model has it.
        # block RAM even when small: a ROM in LUTs is a deep mux tree whose address fans out to every bit
        # (banked by depth, rtl.layer.weight_rom: the dot's port registered next to every bank)
        m.submodules.wrom = wrom = WeightROM(self.weight_words(), L * self.W.width)
        # h and coefficient RAMs in block RAM too: in LUT RAM the slot address fans out to every cell
        # ... in groups of lanes (hram_groups: up to 4 block RAMs wide), each with its own address registers:
        # one address register for all of a wide h RAM spans the chip (layer 0: 15 block RAMs)
        h_ports = []
        for g, (j0, j1) in enumerate(hram_groups(L, ow)):
            mem = memory.Memory(shape=(j1 - j0) * ow, depth=max(P * B, 2), init=[],
                                attrs={"ram_style": "block", NO_RW_CHECK: 1})
            m.submodules[f"hram{g}"] = mem
            h_ports.append((mem.read_port(domain="sync"), mem.write_port()))
        h_rd_data = Cat(*(rp.data for rp, _ in h_ports))
        ek_shape = upd.exp_k_shape
        coef_layout = data.StructLayout({"ign": 1, "C": units.c_width, "K": int(dp.coef_bits), "eK": ek_shape})
        m.submodules.cram = cram = memory.Memory(shape=coef_layout, depth=max(P, 2), init=[],
                                                 attrs={"ram_style": "block", NO_RW_CHECK: 1})
        c_rd, c_wr = cram.read_port(domain="sync"), cram.write_port()
        sw = max(1, lc.clog2(S))
        # B not a power of two: the row's first weight word (s*B) is stored instead of s, computed in a
        # register stage before the (delayed) write, so no multiplier sits in front of a weight address
        premul = B & (B - 1) != 0
        m.submodules.sram = sram = memory.Memory(shape=range(max(S * B, 2)) if premul else sw, depth=max(P, 2),
                                                 init=[])
        s_rd, s_wr = sram.read_port(domain="sync"), sram.write_port()

        # ---- wave control
        seed, pattern = Signal(32), Signal(32)
        n_act = Signal(range(P + 1))
        phase = Signal(range(5))  # 0 idle/done, 1 load, 2 prime, 3 run, 4 drain
        gen_start = Signal()
        drain = Signal(range(lc.WRITE + 2))
        m.d.comb += [gen.seed.eq(seed), gen.pattern.eq(pattern), gen.start.eq(gen_start),
                     gen.n_active.eq(n_act)]
        ip_base = Signal.like(self.ip_start)
        m.d.comb += gen.ip_base.eq(ip_base)
        k, b, t = Signal(range(max(P, 2))), Signal(range(max(B, 2))), Signal(range(T + 1))
        # registered flags of the counters (k, b, t), written with them from their old values: the
        # issue logic and the phase see one flip-flop each, no comparator
        run, b_first, b_last, k_last, k_act = Signal(), Signal(), Signal(), Signal(), Signal()
        t_first, t_spike, t_end = Signal(), Signal(), Signal()  # t == 0, t < T, t == T
        n_m1 = Signal(range(P + 1))  # n_act - 1
        n_m2 = Signal(range(P + 1))  # n_act - 2 (unused when n_act == 1)
        # a round is max(n_act*B, D+B) cycles (layer_cycles.round_cycles): the n_act passes, then ``pad``
        # cycles without a pass when the chain (D) is longer than the passes of the other slots
        R_MIN = self.D + B
        pad_len = Signal(range(R_MIN + 1))  # set from n_act in every cycle; n_act is held from ``start``
        has_pad, idle, pad_last = Signal(), Signal(), Signal()
        pad_cnt = Signal(range(R_MIN + 1))
        # a table of n_act (no multiplier: Yosys could map n_act*B to a MULT18X18D)
        with m.Switch(n_act):
            for n in range(1, min(P, -(-R_MIN // B) - 1) + 1):  # n*B < R_MIN
                with m.Case(n):
                    m.d.sync += [pad_len.eq(R_MIN - n * B), has_pad.eq(1)]
            with m.Default():
                m.d.sync += [pad_len.eq(0), has_pad.eq(0)]
        # the h RAM word of (k, b), k*B + b, counted: it runs 0 .. P*B-1 with the counters (no multiplier
        # behind the RAM address when B is not a power of two)
        a0 = Signal(range(max(P * B, 2)))
        # a0 and run as they will be in the next cycle: the h RAM address is registered per RAM group
        # from them (a register next to its RAM holds the address of the current cycle)
        a0_next, run_next = Signal.like(a0), Signal()
        m.d.comb += [a0_next.eq(a0), run_next.eq(run)]
        m.d.sync += [a0.eq(a0_next), run.eq(run_next)]
        m.d.comb += self.done.eq(phase == 0)
        # the generator starts when the windows are loaded (phase 1, the first cycle the loader is not
        # busy): the loader's registered ``finished`` pulse, so neither the engine's start flag (it fans
        # out over the whole chip) nor the core's phase register is in front of the generator's counters
        m.d.comb += gen_start.eq(ld.finished)
        # the spike key is copied in every cycle, not on ``start``: the engine (or, in the whole network, the
        # top) holds it for the whole image (it changes only while the engine is idle, at least a cycle before
        # a wave starts).
        # At 8541ba2 (seed 1) the start flag -> the clock enables of these 64 flip-flops, placed beside
        # the spike generator across the chip, was the whole network's critical path (11.46 ns, 10.94 ns
        # routing)
        m.d.sync += [seed.eq(self.seed), pattern.eq(self.pattern)]
        with m.If(self.start):
            m.d.sync += [n_act.eq(self.n_active),
                         n_m1.eq(self.n_active - 1), n_m2.eq(self.n_active - 2), ip_base.eq(self.ip_start),
                         phase.eq(Mux(self.n_active == 0, 0, 1))]
        with m.Elif(phase == 1):
            with m.If(~ld.busy):
                m.d.sync += phase.eq(2)
        with m.Elif(phase == 2):
            with m.If(gen.primed):
                m.d.comb += [a0_next.eq(0), run_next.eq(1)]
                m.d.sync += [phase.eq(3), k.eq(0), b.eq(0), t.eq(0), b_first.eq(1),
                             b_last.eq(B == 1), idle.eq(0),
                             k_last.eq(n_m1 == 0), k_act.eq(1), t_first.eq(1), t_spike.eq(T > 0), t_end.eq(T == 0)]
        with m.Elif(phase == 3):
            next_round = [t.eq(t + 1), t_first.eq(0), t_spike.eq(t < T - 1 if T > 1 else 0), t_end.eq(t == T - 1)]
            with m.If(idle):  # the round's pad: no pass; the counters wait at slot 0, beat 0
                m.d.sync += [pad_cnt.eq(pad_cnt - 1), pad_last.eq(pad_cnt == 1)]
                with m.If(pad_last):
                    m.d.sync += [idle.eq(0), k_act.eq(1)] + next_round
            with m.Else():
                m.d.comb += a0_next.eq(Mux(b_last & k_last, 0, a0 + 1))
                m.d.sync += [b.eq(Mux(b_last, 0, b + 1)), b_first.eq(b_last),
                             b_last.eq(Mux(b_last, B == 1, b == B - 2) if B > 1 else 1)]
                with m.If(b_last):
                    m.d.sync += [k.eq(Mux(k_last, 0, k + 1)), k_last.eq(Mux(k_last, n_m1 == 0, k == n_m2))]
                    with m.If(k_last):
                        with m.If(t_end):  # round T (update only) ends with its last pass: no pad
                            m.d.sync += [phase.eq(4), drain.eq(lc.WRITE)]
                            m.d.comb += run_next.eq(0)
                        with m.Elif(has_pad):
                            m.d.sync += [idle.eq(1), k_act.eq(0), pad_cnt.eq(pad_len - 1), pad_last.eq(pad_len == 1)]
                        with m.Else():
                            m.d.sync += next_round
        with m.Elif(phase == 4):
            m.d.sync += drain.eq(drain - 1)
            with m.If(drain == 1):
                m.d.sync += phase.eq(0)

        # ---- c0: issue
        act = run & k_act
        take = act & t_spike & b_first
        s_hold = Signal(sw)
        s_now = Mux(b_first, gen.o.payload, s_hold)
        with m.If(take):
            m.d.sync += s_hold.eq(gen.o.payload)
        starved = Signal()
        with m.If(take & ~gen.o.valid):
            m.d.sync += starved.eq(1)
        m.d.comb += [self.starved.eq(starved), gen.o.ready.eq(take),
                     s_rd.addr.eq(k), c_rd.addr.eq(k),
                     self.out_data.eq(h_rd_data)]
        h_addr = []
        for g, (rp, _) in enumerate(h_ports):
            # a copy per group: rtl.emit.KEEP_FLOPS keeps Yosys from merging them
            a = Signal.like(a0, name=f"h_addr{g}", init=g % max(P * B, 2), attrs={KEEP_FLOPS: 1})
            m.d.sync += a.eq(Mux(run_next, a0_next, self.out_addr_next))
            m.d.comb += rp.addr.eq(a)
            h_addr.append(a)
        if premul:  # c2: s_t*B, written with the slot's delayed address (read again >= P*B cycles later)
            base2 = Signal(range(max(S * B, 2)))
            m.d.sync += base2.eq(s_hold * B)
            m.d.comb += [s_wr.en.eq(delay(m, take, 2, "s_take")), s_wr.addr.eq(delay(m, k, 2, "s_slot")),
                         s_wr.data.eq(base2)]
        else:
            m.d.comb += [s_wr.en.eq(take), s_wr.addr.eq(k), s_wr.data.eq(gen.o.payload)]
        # v: a beat of a pass (the dot lanes count the beats of a row: none in a round's pad)
        tag0 = Cat(run & ~idle, act, t_spike, t_first, k, b)
        tag1 = delay(m, tag0, 1, "tag1")
        v1, a1, need1, first1 = tag1[0], tag1[1], tag1[2], tag1[3]
        k1 = tag1[4:4 + len(k)]
        b1 = tag1[4 + len(k):]
        t1 = delay(m, t, 1, "t1")

        # ---- c1: h, coefficient, weight address of spike t-1's row
        h0w = pack([self.h0[0]] * L, ow)
        stale = Const(0, 1)
        if self.fault == "stale_h":
            stale = k1 == 0
        elif self.fault == "select":
            stale = (k1 == 0) & self.stale_en
        # the block RAM outputs (h, coefficient) go straight to flip-flops; the selection of the initial
        # h and of the identity coefficient happens a cycle later (block RAM clock-to-out is ~5.6 ns)
        h2 = Signal(L * ow)
        C2, K2, eK2 = Signal(units.c_width), Signal(int(dp.coef_bits)), Signal(ek_shape)
        h0_2, ident2, ident_c2 = Signal(), Signal(), Signal()
        wa2 = Signal(range(max(S * B, 2)))
        s_prev_hold = Signal.like(s_rd.data)
        s_prev = Mux(b1 == 0, s_rd.data, s_prev_hold)
        with m.If(v1 & (b1 == 0)):
            m.d.sync += s_prev_hold.eq(s_rd.data)
        ident = first1 | c_rd.data.ign
        ident_c = first1 if units.scaled else ident  # scaled: an ignored spike keeps its j_t (K = 0)
        last2 = Signal()  # scaled: round T, the lanes output the sums for FinalScale
        m.d.sync += [h2.eq(h_rd_data), h0_2.eq(first1 & ~stale), last2.eq(t1 == T),
                     C2.eq(c_rd.data.C), K2.eq(c_rd.data.K), ident2.eq(ident), ident_c2.eq(ident_c),
                     eK2.eq(c_rd.data.eK), wa2.eq(s_prev + b1 if premul else word_addr(s_prev, b1, B))]
        # ---- c2: weight read (row s_{t-1}), initial h / identity selected; c3: the weights registered
        m.d.comb += wrom.u_addr.eq(wa2)
        h3, C3, K3 = Signal.like(h2), Signal.like(C2), Signal.like(K2)
        m.d.sync += [h3.eq(Mux(h0_2, h0w, h2)), C3.eq(Mux(ident_c2, units.c_identity, C2)), K3.eq(Mux(ident2, 0, K2))]
        # exp_K: the int lanes take it a cycle early and copy it per lane (UpdateLanes exp_k_early)
        ek_delay = 1 if upd.exp_k_early else 2
        h4, eK4 = delay(m, h3, 1, "h_upd"), delay(m, eK2, ek_delay, "ek_upd")
        # C and K: the int lanes take them a cycle early and copy them in two levels (UpdateLanes ck_early)
        C4, K4 = (C3, K3) if upd.ck_early else (delay(m, C3, 1, "c_upd"), delay(m, K3, 1, "k_upd"))
        w4 = delay(m, wrom.u_data, 1, "w_upd")
        # ---- c4: update lanes
        m.d.comb += [upd.h.as_value().eq(_narrow(h4, L, ow, hw)), upd.w.as_value().eq(w4), units.c_port().eq(C4),
                     upd.K.eq(K4), upd.exp_K.eq(eK4)]
        if units.scaled:
            m.d.comb += upd.last.eq(delay(m, last2, 2, "last_upd"))
        # ---- c7: weight address (row s_t) for the dot, data registered in c10; c10: write back, dot
        wd0 = Signal(range(max(S * B, 2)))
        if premul:  # s_t*B in a register stage of its own, then + b
            base_d = Signal(range(max(S * B, 2)))
            m.d.sync += base_d.eq(delay(m, s_now, 1, "s_dot") * B)
            m.d.comb += wd0.eq(base_d + delay(m, b, 2, "b_dot"))
            m.d.comb += wrom.d_addr.eq(delay(m, wd0, lc.WRITE - 2 - D_LATENCY, "wdot"))
        else:
            m.d.comb += wd0.eq(word_addr(s_now, b, B))
            m.d.comb += wrom.d_addr.eq(delay(m, wd0, lc.WRITE - D_LATENCY, "wdot"))
        # the ROM word arrives registered (WeightROM's dot port) in c10, with the new h
        w_dot_q = wrom.d_data
        tag7 = delay(m, tag1, lc.WRITE - 1, "tag7")
        v7, a7, need7 = tag7[0], tag7[1], tag7[2]
        k7, b7 = tag7[4:4 + len(k)], tag7[4 + len(k):]
        t7 = delay(m, t1, lc.WRITE - 1, "t7")
        new_h = upd.o.as_value()
        for g, ((_, wp), (j0, j1)) in enumerate(zip(h_ports, hram_groups(L, ow))):
            m.d.comb += [wp.en.eq(a7), wp.addr.eq(delay(m, h_addr[g], lc.WRITE, f"h_waddr{g}")),
                         wp.data.eq(new_h[j0 * ow:j1 * ow])]
        m.d.comb += [                     dot.i_h.as_value().eq(_narrow(upd.o.as_value(), L, ow, hw)), dot.i_w.as_value().eq(w_dot_q),
                     dot.i_valid.eq(v7)]
        # ---- chain: dot -> normaliser -> reciprocal -> coefficient -> coefficient RAM
        # the coefficient RAM word is written once per pass, by the last beat's tag: the chain's output is
        # the pass's coefficient only then, and a write per beat would overwrite the slot's coefficient
        # while its own update pass still reads it (whenever B > D + 1)
        last7 = (b7 == B - 1) if B > 1 else Const(1, 1)
        ctag = Cat(a7 & need7 & last7, k7)
        ctag_d = delay(m, ctag, dot.latency, "ctag_dot")
        t_d = delay(m, t7, dot.latency, "t_dot")
        m.d.comb += [norm.i.valid.eq(dot.o_valid), norm.i.payload.eq(dot.o_acc), norm.o.ready.eq(1)]
        ctag_n = delay(m, ctag_d, lc.NORM, "ctag_norm")
        t_n = delay(m, t_d, lc.NORM, "t_norm")
        m.d.comb += recip.i_sig.eq(norm.o.payload.sig)
        zr = delay(m, Cat(norm.o.payload.zero, norm.o.payload.exp), recip.latency, "zexp")
        ctag_r = delay(m, ctag_n, recip.latency, "ctag_recip")
        m.d.comb += sched.addr.eq(delay(m, t_n, recip.latency - 1, "t_recip"))
        m.d.comb += [coef.G.eq(sched.G), coef.Y.eq(recip.o_y), coef.exp_r.eq(zr[1:])]
        ctag_c = delay(m, ctag_r, lc.COEF, "ctag_coef")
        cz = delay(m, Cat(zr[0], sched.C), lc.COEF, "c_coef")
        m.d.comb += [c_wr.en.eq(ctag_c[0]), c_wr.addr.eq(ctag_c[1:]), c_wr.data.ign.eq(cz[0]),
                     c_wr.data.C.eq(cz[1:]), c_wr.data.K.eq(coef.K), c_wr.data.eK.eq(coef.exp_K)]
        return m


def _narrow(word, L: int, ow: int, hw: int):
    """The low ``hw`` bits of each of the L ``ow``-bit lanes of ``word`` (the h codes of a wide word)."""
    return word if ow == hw else Cat(*(word[j * ow:j * ow + hw] for j in range(L)))


__all__ = ["EngineCore", "delay", "pack", "word_addr"]
