"""``LayerEngine``: one whole SbS layer in RTL, input feature map in, output h codes out.

Parameters: a :class:`fixedpoint.datapath.Datapath` (``int`` update, fixed-point H, ``div``
reciprocal), the layer's weight codes ``w_codes`` (S x N, :meth:`Datapath.encode_weights`) and
weight format, T, ``lanes`` L, ``engines`` E (``slots``: each core's P, default the fewest the
chain allows, :func:`sbs_model.layer_cycles.core_slots`), the input shape ``(C, H, W)``, the
:class:`sbs_model.network.LayerSpec` (geometry and eps schedule), the layer index (spike draws)
and ``input_kind``: ``"pixels"`` (8-bit pixels, the first layer) or ``"codes"`` (h codes of the
layer before, after pooling, converted to sampler-window values ``floor(h * 2**sampler_frac_bits)``
on the way into the input RAM, as :func:`fixedpoint.pooling.window_from_h`).

Ports (``lib.stream``):

* ``job``: :data:`JOB_LAYOUT` (``seed`` u32, ``pattern`` u32; first field in the LSBs), one per image.
  With ``key_held`` the driver holds the payload (the image's spike key) from the end of the input
  phase (the first wave's start: only the waves read the key, so it may arrive up to ``n_in`` cycles
  after the job's transfer) until the engine's last output code, and the engine keeps no key register
  of its own (the whole network's top does: its key is written only while no image is in flight);
* ``x_in``: the ``C*H*W`` input values in (c, y, x) order, :attr:`in_width` bits each;
* ``h_out``: the layer's output codes (``H.width`` bits), IP by IP (``ip = oy*W_out + ox``), N
  codes each (channel order): ``out[:, oy, ox]`` of the model;
* ``starved``: sticky debug flag, must stay 0 (see :class:`rtl.layer.core.EngineCore`).

Operation: the input goes into an input RAM (E read ports), then the IPs are processed in waves
of ``E*P`` IPs (core e takes IPs ``wave_base + e*P ...``); all cores load, run and drain in
parallel, then the output serialiser reads the h RAMs (two cycles per h word, then one code per
cycle with back-pressure; the word is held in a register loaded every cycle, without an enable,
and a lane counter selects the code).  The exact cycle count is :func:`sbs_model.layer_cycles.layer_cycles`.

``fault`` (tests only): ``"drop_ip"`` (the second IP of the first wave is not sent),
``"swap_ips"`` (the first two IPs of every wave are sent in swapped order), ``"stale_h"``
(:class:`EngineCore`'s fault on every core), ``"select"`` (all three in one design, chosen at run
time by an extra 2-bit input ``fault_sel``, :data:`FAULT_SELECT`; 0 = none), so one simulator build
serves every fault entry.
"""
from __future__ import annotations

import numpy as np
from amaranth import Const, Module, Mux, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from fixedpoint.formats import parse_format
from fixedpoint.schedule import Schedule
from rtl.layer.core import EngineCore, word_addr
from rtl.layer.final_scale import FinalScale
from rtl.layer.scaled_lanes import check_layer_datapath
from sbs_model import layer_cycles as lc

JOB_LAYOUT = data.StructLayout({"seed": 32, "pattern": 32})
INPUT_KINDS = ("pixels", "codes")
FAULTS = (None, "drop_ip", "swap_ips", "stale_h", "select")
FAULT_SELECT = {"drop_ip": 1, "swap_ips": 2, "stale_h": 3}  # fault_sel codes of fault="select"
ENGINES_MAX = 64


def pack_job(seed: int, pattern: int) -> int:
    for name, v in (("seed", seed), ("pattern", pattern)):
        if not 0 <= int(v) < (1 << 32):
            raise ValueError(f"pack_job: {name} must be in 0..{(1 << 32) - 1}, got {v}")
    return int(seed) | (int(pattern) << 32)


def window_shift(dp) -> int:
    """``floor(h * 2**sampler_frac_bits)`` of a fixed-point code is ``code << shift`` (>= 0) or
    ``code >> -shift``."""
    return int(dp.sampler_frac_bits) - parse_format(dp.h_format).frac_bits


def value_width(dp, input_kind: str) -> int:
    """Bits of a sampler-window value: 8 for pixels, else those of the largest converted code."""
    if input_kind == "pixels":
        return 8
    H = parse_format(dp.h_format)
    top = int(H.to_fixed(np.array([H.n_codes - 1]), dp.sampler_frac_bits)[0])
    return max(1, top.bit_length())


class LayerEngine(wiring.Component):
    """A streaming SbS layer engine (see module docstring)."""

    def __init__(self, dp, w_codes, w_format, T: int, lanes: int, engines: int, in_shape, layer,
                 layer_index: int, input_kind: str = "codes", schedule: Schedule | None = None,
                 fault: str | None = None, key_held: bool = False, slots: int | None = None):
        self._MustUse__silence = True
        check_layer_datapath(dp, "LayerEngine")
        if input_kind not in INPUT_KINDS:
            raise ValueError(f"LayerEngine: input_kind must be one of {INPUT_KINDS}, got {input_kind!r}")
        if fault not in FAULTS:
            raise ValueError(f"LayerEngine: fault must be one of {FAULTS}, got {fault!r}")
        if not isinstance(engines, int) or not 1 <= engines <= ENGINES_MAX:
            raise ValueError(f"LayerEngine: engines must be an int in 1..{ENGINES_MAX}, got {engines!r}")
        if not isinstance(lanes, int) or not 1 <= lanes <= 64:
            raise ValueError(f"LayerEngine: lanes must be an int in 1..64, got {lanes!r}")
        if not isinstance(T, int) or not 1 <= T <= (1 << 24):
            raise ValueError(f"LayerEngine: T must be an int in 1..{1 << 24}, got {T!r}")
        self.H = parse_format(dp.h_format)
        self.dp, self.T, self.L, self.E, self.fault = dp, T, lanes, engines, fault
        self.input_kind, self.key_held = input_kind, bool(key_held)
        self.in_width = 8 if input_kind == "pixels" else self.H.width
        self.value_width = value_width(dp, input_kind)
        self.schedule = schedule or Schedule.from_layer(layer)
        core_fault = fault if fault in ("stale_h", "select") else None
        self.cores = [EngineCore(dp, w_codes, w_format, T, lanes, in_shape, layer, layer_index, self.value_width,
                                 self.schedule, core_fault, slots) for _ in range(engines)]
        c0 = self.cores[0]
        self.S, self.N, self.B, self.P = c0.S, c0.N, c0.B, c0.P
        self.scaled, self.word_width = c0.units.scaled, c0.word_width
        if self.scaled:  # the last spike's factor C_{T-1} on the output stream, one multiplier per engine
            self.final = FinalScale(dp, self.word_width, c0.units.c_last)
            assert self.final.latency == lc.FINAL, "LayerEngine: FinalScale latency differs from layer_cycles.FINAL"
        self.n_in, self.n_ip = c0.n_in, c0.loader.n_ip
        self.in_shape, self.layer, self.layer_index = tuple(in_shape), layer, layer_index
        self._MustUse__silence = False
        ports = {"fault_sel": In(2)} if fault == "select" else {}
        super().__init__(ports | {
            "job": In(stream.Signature(JOB_LAYOUT)),
            "x_in": In(stream.Signature(self.in_width)),
            "h_out": Out(stream.Signature(self.H.width)),
            "starved": Out(1),
        })

    def cycles(self) -> int:
        """Cycles per image (:func:`sbs_model.layer_cycles.layer_cycles` for this engine)."""
        return lc.layer_cycles(N=self.N, S=self.S, T=self.T, n_ip=self.n_ip, n_in=self.n_in, lanes=self.L,
                               engines=self.E, recip_bits=int(self.dp.recip_bits), update=self.dp.update,
                               n_slots=self.P)

    def elaborate(self, platform):
        m = Module()
        E, P, B, N, L, hw = self.E, self.P, self.B, self.N, self.L, self.word_width
        n_in, n_ip = self.n_in, self.n_ip
        for e, core in enumerate(self.cores):
            m.submodules[f"core{e}"] = core

        # ---- input RAM
        m.submodules.xram = xram = memory.Memory(shape=self.value_width, depth=max(n_in, 2), init=[])
        x_wr = xram.write_port()
        for e, core in enumerate(self.cores):
            rp = xram.read_port(domain="sync")
            m.d.comb += [rp.addr.eq(core.rd_addr), core.rd_data.eq(rp.data)]
        sh = window_shift(self.dp)
        x_val = self.x_in.payload
        if self.input_kind == "codes":
            x_val = x_val << sh if sh >= 0 else x_val >> -sh
        m.d.comb += [x_wr.data.eq(x_val)]

        # ---- control
        state = Signal(range(5))  # 0 idle, 1 input, 2 wave start, 3 wave run, 4 output
        # the spike key: the job's payload itself when the driver holds it (``key_held``), else registered
        # when the job transfers.  At e70f96d (seed 1) layer 2's idle flag -> the clock enables of these 64
        # flip-flops, across the chip, was the whole network's critical path (10.95 ns)
        if self.key_held:
            seed, pattern = self.job.payload.seed, self.job.payload.pattern
        else:
            seed, pattern = Signal(32), Signal(32)
        # the input counter and its flag are set back to 0 (and n_in == 1) by the last input value, not by
        # the job, so the job's transfer enables only the three state flip-flops (at e70f96d, seed 2: layer
        # 0's idle flag -> the job handshake -> this counter's clock enable, across the chip, 10.57 ns)
        xi = Signal(range(max(n_in, 2)))
        # xi == n_in - 1, registered with xi: the wave registers' clock enables see a flip-flop, not a
        # compare of the input counter (layer 2's critical path at c7d5e78)
        xi_last = Signal(init=int(n_in == 1))
        base = Signal(range(n_ip + E * P + 1))
        rem = Signal(range(max(n_ip, 2 * E * P + 1) + 1))  # as wide as the compares with 2*E*P (no CMPCONST)
        # per core: IPs of the wave, that minus one, first IP; registers written together with rem and
        # base (from their old values: no compare chain behind the wave parameters)
        n_e = [Signal(range(P + 1), name=f"n_act{e}") for e in range(E)]
        n_m1 = [Signal(range(P + 1), name=f"n_last{e}") for e in range(E)]
        ip_e = [Signal(range(n_ip + E * P + 1), name=f"ip_start{e}") for e in range(E)]

        def wave_params(left, first):
            """Statements setting the registers for a wave of ``left`` IPs starting at IP ``first``
            (``left`` is ``rem - skip`` for a Python int ``skip``: compared without subtracting)."""
            r, skip = left
            out = []
            for e in range(E):
                lo = e * P + skip
                if isinstance(r, int):
                    n = min(max(r - lo, 0), P)
                    out += [n_e[e].eq(n), n_m1[e].eq(max(n - 1, 0))]
                else:
                    out += [n_e[e].eq(Mux(r <= lo, 0, Mux(r >= lo + P, P, r - lo))),
                            n_m1[e].eq(Mux(r <= lo + 1, 0, Mux(r >= lo + P, P - 1, r - lo - 1)))]
                out.append(ip_e[e].eq(first + e * P))
            return out

        # start = (state == 2), a flip-flop of its own (set with the transitions into state 2): it fans
        # out to every core's wave registers
        start = Signal()
        m.d.sync += start.eq(0)
        for e, core in enumerate(self.cores):
            m.d.comb += [core.seed.eq(seed), core.pattern.eq(pattern), core.ip_start.eq(ip_e[e]),
                         core.n_active.eq(n_e[e]), core.start.eq(start)]
        m.d.comb += self.starved.eq(_any(c.starved for c in self.cores))
        all_done = _all(c.done for c in self.cores)
        settle = Signal()

        # serialiser
        eo = Signal(range(max(E, 2)))
        ko, bo = Signal(range(max(P, 2))), Signal(range(max(B, 2)))
        sub = Signal(range(3))  # 0 read address, 1 word ready, 2 send its codes
        # the h word being sent: registered on every cycle, without an enable (one enable net for L*hw
        # flip-flops was the critical path of a 32-lane engine); the h RAMs' address is held while a
        # word is sent, so the register holds it; a lane counter picks the code to send
        word = Signal(L * hw)
        lane = Signal(range(max(L, 2)))
        cnt = Signal(range(L + 1))
        cnt_one = Signal()  # cnt == 1, registered with cnt
        on = {f: Const(int(self.fault == f), 1) if self.fault != "select" else (self.fault_sel == code)
              for f, code in FAULT_SELECT.items()}
        if self.fault == "select":
            for core in self.cores:
                m.d.comb += core.stale_en.eq(on["stale_h"])
        # the h RAM word ko*B + bo, counted in a register (no multiplier in front of the RAM address); the
        # cores take its next value (their address registers sit next to their RAMs), so ko, bo, eo and
        # the address are written through ``*_next`` signals
        oaddr = Signal(range(max(P * B, 2)))
        eo_next, ko_next, bo_next, oaddr_next = Signal.like(eo), Signal.like(ko), Signal.like(bo), Signal.like(oaddr)
        m.d.comb += [eo_next.eq(eo), ko_next.eq(ko), bo_next.eq(bo), oaddr_next.eq(oaddr)]
        m.d.sync += [eo.eq(eo_next), ko.eq(ko_next), bo.eq(bo_next), oaddr.eq(oaddr_next)]
        rd_addr = oaddr_next
        if self.fault in ("swap_ips", "select"):
            k_rd = Mux(on["swap_ips"] & (eo_next == 0) & (ko_next < 2) & (n_e[0] >= 2), ko_next ^ 1, ko_next)
            rd_addr = word_addr(k_rd, bo_next, B)
        for core in self.cores:
            m.d.comb += core.out_addr_next.eq(rd_addr)
        out_word = Signal(L * hw)
        sel = self.cores[0].out_data.as_value()
        for e in range(1, E):  # a mux chain, not a Switch (Verilator's CASEINCOMPLETE is not waived)
            sel = Mux(eo == e, self.cores[e].out_data.as_value(), sel)
        m.d.comb += out_word.eq(sel)
        m.d.sync += word.eq(out_word)
        suppress = 0
        if self.fault in ("drop_ip", "select"):
            suppress = on["drop_ip"] & (base == 0) & (eo == 0) & (ko == 1)
        out = self.h_out
        if self.scaled:  # codes = FinalScale(the lanes' last sums)
            m.submodules.final = self.final
            out = self.final.i
            wiring.connect(m, self.final.o, wiring.flipped(self.h_out))
        # registered state flags, written with the state and sub transitions: idle (state 0), loading (1),
        # sending (state 4, sub 2).  The stream handshakes (job.valid, x_in.valid, h_out.ready come from
        # outside, in a placed engine from pins) meet one flip-flop each, not a decode of the state
        # register (layer 4 at e7bec52: state -> 3 levels through the job.valid logic -> xi_last, 91.83 MHz)
        idle, loading, sending = Signal(init=1), Signal(), Signal()
        m.d.comb += [out.payload.eq(word.word_select(lane, hw) if L > 1 else word), out.valid.eq(sending & ~suppress)]
        moved = sending & (suppress | out.ready)
        n_last = N - (B - 1) * L

        with m.If(idle):
            m.d.comb += self.job.ready.eq(1)
            with m.If(self.job.valid):
                m.d.sync += [state.eq(1), idle.eq(0), loading.eq(1)]
                if not self.key_held:
                    m.d.sync += [seed.eq(self.job.payload.seed), pattern.eq(self.job.payload.pattern)]
        # the flags are exclusive, so loading and the states after it are decoded without the idle flag: the
        # input's ready is the `loading` flip-flop alone (at e70f96d, T = 700: layer 2's idle flag -> the
        # feeder -> a feature map's read enable, across the chip, 11.08 ns)
        with m.If(loading):
            m.d.comb += [self.x_in.ready.eq(1), x_wr.addr.eq(xi), x_wr.en.eq(self.x_in.valid)]
            with m.If(self.x_in.valid):
                m.d.sync += [xi.eq(xi + 1), xi_last.eq(xi == n_in - 2)]
                with m.If(xi_last):
                    m.d.sync += [xi.eq(0), xi_last.eq(n_in == 1), state.eq(2), loading.eq(0), start.eq(1),
                                 base.eq(0), rem.eq(n_ip)]
                    m.d.sync += wave_params((n_ip, 0), 0)
        with m.If(state == 2):
            m.d.sync += [state.eq(3), settle.eq(1)]
        with m.Elif(state == 3):
            m.d.sync += settle.eq(0)
            with m.If(~settle & all_done):
                m.d.sync += [state.eq(4), sub.eq(0)]
                m.d.comb += [eo_next.eq(0), ko_next.eq(0), bo_next.eq(0), oaddr_next.eq(0)]
        with m.Elif(state == 4):
            with m.If(sub == 0):
                m.d.sync += sub.eq(1)
            with m.Elif(sub == 1):
                m.d.sync += [lane.eq(0), cnt.eq(Mux(bo == B - 1, n_last, L)), sub.eq(2), sending.eq(1),
                             cnt_one.eq(Mux(bo == B - 1, n_last == 1, L == 1))]
            with m.Elif(moved):
                m.d.sync += [lane.eq(lane + 1), cnt.eq(cnt - 1), cnt_one.eq(cnt == 2)]
                with m.If(cnt_one):
                    m.d.sync += [sub.eq(0), sending.eq(0)]
                    n_cur = n_m1[0]
                    for e in range(1, E):
                        n_cur = Mux(eo == e, n_m1[e], n_cur)
                    last_k = ko == n_cur
                    next_empty = Const(1, 1)
                    for e in range(E - 1):
                        next_empty = Mux(eo == e, n_e[e + 1] == 0, next_empty)
                    with m.If(bo != B - 1):
                        m.d.comb += [bo_next.eq(bo + 1), oaddr_next.eq(oaddr + 1)]
                    with m.Elif(~last_k):
                        m.d.comb += [bo_next.eq(0), ko_next.eq(ko + 1), oaddr_next.eq(oaddr + 1)]
                    with m.Elif((eo != E - 1) & ~next_empty):
                        m.d.comb += [bo_next.eq(0), ko_next.eq(0), eo_next.eq(eo + 1), oaddr_next.eq(0)]
                    with m.Else():  # wave finished
                        m.d.sync += [base.eq(base + E * P), rem.eq(Mux(rem > E * P, rem - E * P, 0)),
                                     state.eq(Mux(rem > E * P, 2, 0)), start.eq(rem > E * P), idle.eq(rem <= E * P)]
                        m.d.sync += wave_params((rem, E * P), base + E * P)
        with m.Elif(~idle & ~loading):  # states 0 and 1 without their flag (unreachable): back to idle
            m.d.sync += [state.eq(0), idle.eq(1)]
        return m


def _any(values):
    out = 0
    for v in values:
        out = out | v
    return out


def _all(values):
    out = 1
    for v in values:
        out = out & v
    return out


__all__ = ["LayerEngine", "pack_job", "JOB_LAYOUT", "value_width", "window_shift"]
