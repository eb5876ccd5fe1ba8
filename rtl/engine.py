"""``IPEngine``: all T spikes of one SbS inference population (IP) in RTL, bit-exact to the model.

One engine holds one layer: its encoded weights ``W`` (S x N codes of the layer's scaled weight
format, :meth:`fixedpoint.datapath.Datapath.encode_weights`) in a ROM and the IP's h (N codes of H)
in a RAM, both ``lib.memory.Memory`` of L codes per word (``B = ceil(N/L)`` words per row; the h
RAM starts as ``dp.initial_h(N)``).  Per IP the host sends a job (seed, pattern, layer, ip) and the
S integer sampler-window values; the engine runs ``t = 0..T-1``:

1. draw ``r = spike_random(seed, pattern, layer, ip, t)`` (:class:`rtl.rng.SpikeRandom`, iterative)
   and sample ``s`` (:class:`rtl.sampler.SpikeSampler`); both run ahead of the spike loop (the draw
   and index of spike t+1 are computed while spike t is processed: stream back-pressure);
2. dot pass over ``W[s, :]`` and h (:class:`rtl.dot.DotProduct`, L lanes) -> A;
3. :class:`rtl.normaliser.Normaliser` -> ``(sig_r, exp_r)``; ``A == 0``: the spike is ignored;
4. :class:`rtl.reciprocal.Reciprocal` -> Y; the schedule ROM (:class:`rtl.schedule.ScheduleTable`)
   gives ``C_t, G_t``; :class:`rtl.update.UpdateUnit` (L lanes) rewrites h beat by beat;

then streams the final h out (N codes, element order) and re-initialises the h RAM to
``initial_h`` while reading it (so the next IP starts at once).  ``int`` update with a fixed-point
H only (the paper's float32 update is model-only).

Ports (``lib.stream``):

* ``job``: :data:`JOB_LAYOUT` (96 bits, first field in the LSBs): ``seed`` u32, ``pattern`` u32,
  ``layer`` u8, ``ip`` u24; :func:`pack_job`.
* ``window``: S values of ``value_width`` bits (layer 0: raw pixels, 8 bits; later layers
  ``floor(h * 2**sampler_frac_bits)``), sent after the job.
* ``h_out``: N codes of H (``H.width`` bits), element 0 first.

Cycle counts: :func:`~sbs_model.hw_cycles.engine_latency` (closed form, every spike accepted) and
:func:`~sbs_model.hw_cycles.engine_cycles` (the exact cycle model for any pattern of ignored spikes),
defined once on the model side (:mod:`sbs_model.hw_cycles`, no Amaranth) and re-exported here; both
count from the cycle in which the job transfers to the cycle in which the last h code transfers, with
the window sent back to back and ``h_out`` always ready.  The tests check both against the simulated cycle count.

``reference_ip`` is the model of one IP built from ``fixedpoint`` functions only.

``fault`` is for tests only: ``"update"`` (the update unit's ``flip_bit0``) or ``"sampler"`` (the
sampler's ``flip_bit0``: a wrong spike index on 1/16 of the draws).
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from amaranth import Cat, Module, Mux, Shape, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from fixedpoint.formats import parse_format
from fixedpoint.rng import sample_index_int, spike_random
from fixedpoint.schedule import Schedule
from rtl.checked import CheckedComponent
from rtl.dot import DotProduct
from rtl.normaliser import Normaliser
from rtl.reciprocal import Reciprocal
from rtl.rng import SpikeRandom
from rtl.sampler import SpikeSampler
from rtl.schedule import ScheduleTable
from rtl.update import UpdateUnit, check_rtl_datapath
from sbs_model.hw_cycles import engine_cycles, engine_latency, spike_cycles  # noqa: F401 (re-exported)

JOB_LAYOUT = data.StructLayout({"seed": 32, "pattern": 32, "layer": 8, "ip": 24})
FAULTS = (None, "update", "sampler")
STATES = ("IDLE", "LOAD", "SPIKE", "DOT", "NORM", "RECIP", "WAIT_Y", "COEF", "UPDATE", "OUT")  # iterative SpikeRandom: accept, 20 rounds, result taken -> next accept


def pack_job(seed: int, pattern: int, layer: int, ip: int) -> int:
    """The ``job__payload`` integer; fields must fit their widths."""
    out = 0
    for name, value in (("seed", seed), ("pattern", pattern), ("layer", layer), ("ip", ip)):
        f = JOB_LAYOUT[name]
        width = Shape.cast(f.shape).width
        if not 0 <= int(value) < (1 << width):
            raise ValueError(f"pack_job: {name} must be in 0..{(1 << width) - 1}, got {value}")
        out |= int(value) << f.offset
    return out


def window_value_width(dp, layer_index: int) -> int:
    """Bits of one sampler-window value: 8 for layer 0 (pixels), else those of
    ``floor(max h * 2**sampler_frac_bits)``."""
    if layer_index == 0:
        return 8
    H = parse_format(dp.h_format)
    top = int(H.to_fixed(np.array([H.n_codes - 1]), dp.sampler_frac_bits)[0])
    return max(1, top.bit_length())


def reference_ip(dp, w_codes, window, seed: int, pattern: int, layer: int, ip: int, T: int,
                 w_format=None, schedule: Schedule | None = None, record: bool = False):
    """The model of one IP (``fixedpoint`` only): ``h = dp.initial_h(N)``; for t < T:
    ``r = spike_random(...)``, ``s = sample_index_int(cumsum(window), r)``,
    ``h = dp.step(h, w_codes[s], t, tables)``.  Returns the final h codes (list of ints), with
    ``record`` also the list of ignored flags per spike."""
    w_codes = np.asarray(w_codes, dtype=np.int64)
    S, N = w_codes.shape
    window = np.asarray(window, dtype=np.int64)
    if window.shape != (S,):
        raise ValueError(f"reference_ip: window must have S = {S} values, got shape {window.shape}")
    tables = dp.tables(T, schedule or Schedule())
    cum = np.cumsum(window)
    r = spike_random(seed, pattern, layer, ip, np.arange(T, dtype=np.int64))
    spikes = sample_index_int(cum, r)
    h = dp.initial_h(N)
    ignored = []
    for t in range(T):
        h, rec = dp.step(h, w_codes[int(spikes[t])], t, tables, w_format=w_format)
        ignored.append(rec.ignored)
    out = [int(v) for v in h]
    return (out, ignored) if record else out


# ------------------------------------------------------------------------------------ engine
class IPEngine(CheckedComponent):
    """One SbS layer's IP engine (see module docstring)."""

    @staticmethod
    def plan(dp, w_codes, T: int, lanes: int = 1, w_format=None, schedule: Schedule | None = None,
             value_width: int | None = None, layer_index: int = 1, fault: str | None = None) -> dict:
        """Checked arguments (the sub-units' too) -> the attributes of an IPEngine (ValueError for
        bad ones)."""
        check_rtl_datapath(dp, "IPEngine")
        w_codes = np.asarray(w_codes, dtype=np.int64)
        if w_codes.ndim != 2 or w_codes.shape[0] < 1 or w_codes.shape[1] < 1:
            raise ValueError(f"IPEngine: w_codes must be a 2-D (S, N) array, got shape {w_codes.shape}")
        if not isinstance(T, int) or isinstance(T, bool) or not 1 <= T <= (1 << 24):
            raise ValueError(f"IPEngine: T must be an int in 1..{1 << 24}, got {T!r}")
        if fault not in FAULTS:
            raise ValueError(f"IPEngine: fault must be one of {FAULTS}, got {fault!r}")
        p = SimpleNamespace()
        p.dp = dp
        p.S, p.N = (int(v) for v in w_codes.shape)
        p.T = T
        p.lanes = lanes
        p.H = parse_format(dp.h_format)
        p.W = parse_format(w_format if w_format is not None else dp.weight_format)
        if w_codes.min() < 0 or w_codes.max() >= p.W.n_codes:
            raise ValueError(f"IPEngine: w_codes must be codes of {p.W} (0..{p.W.n_codes - 1})")
        p.w_codes = w_codes
        p.schedule = schedule or Schedule()
        p.value_width = value_width if value_width is not None else window_value_width(dp, layer_index)
        p.fault = fault
        # the sub-units' arguments (they are built in __init__, once everything is known to be valid)
        DotProduct.plan(dp, p.N, lanes, p.W)
        Normaliser.plan(dp)
        Reciprocal.plan(dp)
        ScheduleTable.plan(dp, T, p.schedule)
        UpdateUnit.plan(dp, p.W, lanes)
        SpikeSampler.plan(p.S, p.value_width)
        p.B = -(-p.N // lanes)
        p.latency = engine_latency(dp, p.N, p.S, T, lanes)
        return vars(p)

    def __init__(self, dp, w_codes, T: int, lanes: int = 1, w_format=None, schedule: Schedule | None = None,
                 value_width: int | None = None, layer_index: int = 1, fault: str | None = None):
        self.dot = DotProduct(dp, self.N, lanes, self.W)
        self.norm = Normaliser(dp)
        self.recip = Reciprocal(dp)
        self.sched = ScheduleTable(dp, T, self.schedule)
        self.upd = UpdateUnit(dp, self.W, lanes, fault="flip_bit0" if fault == "update" else None)
        self.rng = SpikeRandom("iterative")
        self.sampler = SpikeSampler(self.S, self.value_width, fault="flip_bit0" if fault == "sampler" else None)
        super().__init__({
            "job": In(stream.Signature(JOB_LAYOUT)),
            "window": In(stream.Signature(self.value_width)),
            "h_out": Out(stream.Signature(self.H.width)),
        })

    # ------------------------------------------------------------------ memory images
    def weight_words(self) -> list[int]:
        """Weight ROM words: row s, beat b at address ``s*B + b``, lane j = element ``b*L + j``
        (``j*w_width`` bits up), lanes past N hold code 0."""
        L, B, ww = self.lanes, self.B, self.W.width
        out = []
        for s in range(self.S):
            row = [int(c) for c in self.w_codes[s]] + [0] * (B * L - self.N)
            for b in range(B):
                out.append(sum(c << (j * ww) for j, c in enumerate(row[b * L:(b + 1) * L])))
        return out

    def h_words(self) -> list[int]:
        """h RAM initial words (``dp.initial_h(N)``, lanes past N hold 0), depth ``max(B, 2)``."""
        L, B, hw = self.lanes, self.B, self.H.width
        row = [int(c) for c in self.dp.initial_h(self.N)] + [0] * (B * L - self.N)
        words = [sum(c << (j * hw) for j, c in enumerate(row[b * L:(b + 1) * L])) for b in range(B)]
        return words + [0] * (max(B, 2) - B)

    def memories(self) -> dict[str, tuple[int, list[int]]]:
        """``{name: (word width, words)}`` of every initialised memory (for hex files)."""
        return {"weights": (self.lanes * self.W.width, self.weight_words()),
                "h_init": (self.lanes * self.H.width, self.h_words()),
                "schedule": (self.sched.c_bits + self.sched.g_bits, self.sched.words())}

    # ------------------------------------------------------------------ hardware
    def elaborate(self, platform):
        m = Module()
        S, N, T, L, B = self.S, self.N, self.T, self.lanes, self.B
        hw, ww = self.H.width, self.W.width
        dot, norm, recip, sched, upd = self.dot, self.norm, self.recip, self.sched, self.upd
        rng, sampler = self.rng, self.sampler
        for name, unit in (("dot", dot), ("norm", norm), ("recip", recip), ("sched", sched), ("upd", upd),
                           ("rng", rng), ("sampler", sampler)):
            m.submodules[name] = unit

        m.submodules.wmem = wmem = memory.Memory(shape=L * ww, depth=S * B, init=self.weight_words())
        m.submodules.hmem = hmem = memory.Memory(shape=L * hw, depth=max(B, 2), init=self.h_words())
        wrd = wmem.read_port(domain="sync")
        hrd = hmem.read_port(domain="sync")
        hwr = hmem.write_port()
        h_init_word = Signal(L * hw)
        init_words = self.h_words()

        # ---- job registers
        seed, pattern = Signal(32), Signal(32)
        layer, ip = Signal(8), Signal(24)

        # ---- RNG requests run ahead of the spike loop
        rq_t = Signal(range(T + 1))
        rq_on = Signal()
        rp = rng.i.payload
        m.d.comb += [rng.i.valid.eq(rq_on), rp.seed.eq(seed), rp.pattern.eq(pattern), rp.layer.eq(layer),
                     rp.ip.eq(ip), rp.spike.eq(rq_t)]
        with m.If(rng.i.valid & rng.i.ready):
            m.d.sync += rq_t.eq(rq_t + 1)
            with m.If(rq_t == T - 1):
                m.d.sync += rq_on.eq(0)
        wiring.connect(m, rng.o, sampler.draw)

        # ---- beat reader shared by the dot, update and output passes
        rb = Signal(range(B + 1))        # next beat to read
        dv = Signal()                    # read data valid
        db = Signal(range(max(B, 2)))    # beat on the read port
        reading = Signal()
        take = Signal()
        s_base = Signal(range(S * B + 1))
        adv = ~dv | take
        m.d.comb += [hrd.en.eq(adv), wrd.en.eq(adv), hrd.addr.eq(rb), wrd.addr.eq(s_base + rb)]
        with m.If(adv):
            with m.If(reading & (rb < B)):
                m.d.sync += [rb.eq(rb + 1), dv.eq(1), db.eq(rb)]
            with m.Else():
                m.d.sync += dv.eq(0)

        # ---- datapath wiring
        m.d.comb += [dot.h.payload.eq(hrd.data), dot.w.payload.eq(wrd.data),
                     norm.i.valid.eq(dot.o.valid), norm.i.payload.eq(dot.o.payload.acc),
                     dot.o.ready.eq(norm.i.ready),
                     upd.i.payload.eq(Cat(hrd.data, wrd.data))]
        t = Signal(range(T))
        m.d.comb += sched.addr.eq(t)
        sig_r = Signal(norm.norm_bits)
        exp_r = Signal(norm.exp_shape)
        Y = Signal(recip.y_width)
        m.d.comb += [recip.i.payload.eq(sig_r), upd.coef.payload.C.eq(sched.C), upd.coef.payload.G.eq(sched.G),
                     upd.coef.payload.Y.eq(Y), upd.coef.payload.exp_r.eq(exp_r)]
        wb = Signal(range(max(B, 2)))
        oj = Signal(range(max(L, 2)))
        last_beat = db == B - 1
        last_lane = Mux(last_beat, N - (B - 1) * L - 1, L - 1)
        m.d.comb += self.h_out.payload.eq(hrd.data.word_select(oj, hw))
        with m.Switch(db):
            for b, word in enumerate(init_words):
                with m.Case(b):
                    m.d.comb += h_init_word.eq(word)
            with m.Default():
                m.d.comb += h_init_word.eq(0)

        # controller: an explicit state register and an if/elif chain (Yosys turns a Switch into
        # per-signal incomplete cases, and Verilator's CASEINCOMPLETE is not waived); an unknown
        # state code returns to IDLE
        state = Signal(range(len(STATES)))

        def goto(name):
            m.d.sync += state.eq(STATES.index(name))

        def next_spike():
            with m.If(t == T - 1):
                m.d.sync += [rb.eq(0), oj.eq(0)]
                goto("OUT")
            with m.Else():
                m.d.sync += t.eq(t + 1)
                goto("SPIKE")

        with m.If(state == STATES.index("IDLE")):
            m.d.comb += self.job.ready.eq(1)
            with m.If(self.job.valid):
                jp = self.job.payload
                m.d.sync += [seed.eq(jp.seed), pattern.eq(jp.pattern), layer.eq(jp.layer), ip.eq(jp.ip),
                             t.eq(0)]
                goto("LOAD")
        with m.Elif(state == STATES.index("LOAD")):
            lc = Signal(range(S + 1))
            m.d.comb += [sampler.load.valid.eq(self.window.valid), sampler.load.payload.eq(self.window.payload),
                         self.window.ready.eq(sampler.load.ready)]
            with m.If(self.window.valid & self.window.ready):
                with m.If(lc == S - 1):
                    m.d.sync += [lc.eq(0), rq_t.eq(0), rq_on.eq(1)]
                    goto("SPIKE")
                with m.Else():
                    m.d.sync += lc.eq(lc + 1)
        with m.Elif(state == STATES.index("SPIKE")):
            m.d.comb += sampler.index.ready.eq(1)
            with m.If(sampler.index.valid):
                m.d.sync += [s_base.eq(sampler.index.payload * B), rb.eq(0)]
                goto("DOT")
        with m.Elif(state == STATES.index("DOT")):
            m.d.comb += [reading.eq(1), dot.h.valid.eq(dv), dot.w.valid.eq(dv), take.eq(dot.h.ready)]
            with m.If(take & last_beat):
                goto("NORM")
        with m.Elif(state == STATES.index("NORM")):
            m.d.comb += norm.o.ready.eq(1)
            with m.If(norm.o.valid):
                m.d.sync += [sig_r.eq(norm.o.payload.sig), exp_r.eq(norm.o.payload.exp)]
                with m.If(norm.o.payload.zero):
                    next_spike()
                with m.Else():
                    goto("RECIP")
        with m.Elif(state == STATES.index("RECIP")):
            m.d.comb += recip.i.valid.eq(1)
            with m.If(recip.i.ready):
                goto("WAIT_Y")
        with m.Elif(state == STATES.index("WAIT_Y")):
            m.d.comb += recip.o.ready.eq(1)
            with m.If(recip.o.valid):
                m.d.sync += Y.eq(recip.o.payload)
                goto("COEF")
        with m.Elif(state == STATES.index("COEF")):
            m.d.comb += upd.coef.valid.eq(1)
            with m.If(upd.coef.ready):
                m.d.sync += [rb.eq(0), wb.eq(0)]
                goto("UPDATE")
        with m.Elif(state == STATES.index("UPDATE")):
            m.d.comb += [reading.eq(1), upd.i.valid.eq(dv), take.eq(upd.i.ready), upd.o.ready.eq(1),
                         hwr.addr.eq(wb), hwr.data.eq(upd.o.payload), hwr.en.eq(upd.o.valid)]
            with m.If(upd.o.valid):
                m.d.sync += wb.eq(wb + 1)
                with m.If(wb == B - 1):
                    next_spike()
        with m.Elif(state == STATES.index("OUT")):
            m.d.comb += [reading.eq(1), self.h_out.valid.eq(dv),
                         take.eq(dv & self.h_out.ready & (oj == last_lane)),
                         hwr.addr.eq(db), hwr.data.eq(h_init_word), hwr.en.eq(take)]
            with m.If(self.h_out.valid & self.h_out.ready):
                m.d.sync += oj.eq(Mux(oj == last_lane, 0, oj + 1))
                with m.If((oj == last_lane) & last_beat):
                    goto("IDLE")
        with m.Else():
            goto("IDLE")
        return m
