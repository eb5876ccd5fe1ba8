"""``PipelinedSampler``: :func:`fixedpoint.rng.sample_index_int` for many IPs, one draw per cycle.

Parameters: ``S`` (window length, 1..65536), ``cum_width`` (bits of a cumulative sum, <= 31 so the
window total is below 2**31 as the model requires), ``slots`` (IPs whose windows are held at once).

Memory layout (one slot = one IP): the search is a power-of-two binary search over
``KS = ceil(log2 S)`` steps.  Step ``j`` (``j = KS-1`` first, ``j = 0`` last) probes position
``p = idx + 2**j - 1`` (``idx`` has no bits below ``j + 1``) and sets bit ``j`` of ``idx`` when
``p < S`` and ``cum[p] <= target``; after the last step ``idx`` is the number of ``cum`` entries
``<= target``, i.e. the first ``s`` with ``cum[s] > target`` (``cum[S-1] = total > target``, so it
is below S).  The positions probed by step ``j`` are exactly those whose lowest ``j`` bits are ones
and bit ``j`` is zero, so ``cum[s]`` is stored once, in the memory of step ``j = trailing_ones(s)``
at address ``(slot, s >> (j+1))`` (``2**(KS-1-j)`` words per slot).  ``cum[S-1]`` (the total) also
goes to a ``total`` memory (one word per slot).  Total storage: ``slots * S`` words.  A step memory
deeper than one block RAM is a :class:`rtl.layer.sliced_ram.SlicedRAM` (bit slices, no multiplexer
after the block RAMs).

Ports (plain signals):

* write side (``wr_en``, ``wr_slot``, ``wr_s``, ``wr_cum``): store ``cum[wr_s]`` of slot ``wr_slot``;
* draw side (``i_valid``, ``i_r`` u32, ``i_slot``): one draw per cycle, no back-pressure;
* result (``o_valid``, ``o_index``, ``index_width`` bits): in draw order.

Pipeline: the total is read (1) and registered (2), the four 16 x 16 partial products of
``r * total`` are registered (3), summed in two registered steps to ``target = (r * total) >> 32``
(4, 5), then ``KS`` search steps of four cycles each (the memory address is wired from
registers; the memory output is registered twice, the compare once).  An all-zero window gives ``(r * S) >> 32``.  :attr:`latency` = ``6 + 4*KS``
(:data:`sbs_model.layer_cycles.SAMPLER` + :data:`~sbs_model.layer_cycles.STEP` * KS): a
draw presented in cycle ``c`` shows ``o_valid`` in cycle ``c + latency``.
"""
from __future__ import annotations

import numpy as np
from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from fixedpoint.rng import sample_index_int
from rtl.layer.sliced_ram import SlicedRAM
from sbs_model import layer_cycles as lc

S_MAX = 1 << 16


def clog2(n: int) -> int:
    """ceil(log2 n) for n >= 1."""
    return (int(n) - 1).bit_length()


def trailing_ones(s: int) -> int:
    """Number of trailing one bits of ``s`` (which search step probes position ``s``)."""
    j = 0
    while (s >> j) & 1:
        j += 1
    return j


def reference(windows, draws, slots) -> list[int]:
    """Model indices (:func:`fixedpoint.rng.sample_index_int`) for draws ``r`` of slots ``slot``
    given ``windows[slot]`` (integer window values)."""
    out = []
    for r, k in zip(draws, slots):
        cum = np.cumsum(np.asarray(windows[k], dtype=np.int64))
        out.append(int(sample_index_int(cum, np.asarray([r], dtype=np.uint64))[0]))
    return out


class PipelinedSampler(wiring.Component):
    """Integer spike sampler for ``slots`` windows of S values (see module docstring)."""

    def __init__(self, S: int, cum_width: int, slots: int):
        self._MustUse__silence = True
        if not isinstance(S, int) or not 1 <= S <= S_MAX:
            raise ValueError(f"PipelinedSampler: S must be an int in 1..{S_MAX}, got {S!r}")
        if not isinstance(cum_width, int) or not 1 <= cum_width <= 31:
            raise ValueError(f"PipelinedSampler: cum_width must be in 1..31, got {cum_width!r}")
        if not isinstance(slots, int) or not 1 <= slots <= 4096:
            raise ValueError(f"PipelinedSampler: slots must be in 1..4096, got {slots!r}")
        self.S, self.cum_width, self.slots = S, cum_width, slots
        self.steps = clog2(S)
        self.index_width = max(1, self.steps)
        self.latency = lc.SAMPLER + lc.STEP * self.steps
        self._MustUse__silence = False
        super().__init__({
            "wr_en": In(1), "wr_slot": In(range(max(slots, 2))), "wr_s": In(range(max(S, 2))),
            "wr_cum": In(cum_width),
            "i_valid": In(1), "i_r": In(32), "i_slot": In(range(max(slots, 2))),
            "o_valid": Out(1), "o_index": Out(self.index_width),
        })

    def elaborate(self, platform):
        m = Module()
        S, cw, P, KS = self.S, self.cum_width, self.slots, self.steps
        sw = len(self.i_slot)

        # ---- storage
        m.submodules.total = tot_mem = memory.Memory(shape=cw, depth=max(P, 2), init=[])
        tw = tot_mem.write_port()
        tr = tot_mem.read_port(domain="sync")
        m.d.comb += [tw.en.eq(self.wr_en & (self.wr_s == S - 1)), tw.addr.eq(self.wr_slot),
                     tw.data.eq(self.wr_cum), tr.addr.eq(self.i_slot)]
        step_rd = {}
        for j in range(KS):
            b = KS - 1 - j  # words per slot: 2**b
            # deep ones in bit slices (rtl.layer.sliced_ram): no multiplexer behind the block RAMs
            m.submodules[f"cum{j}"] = mem = SlicedRAM(cw, max(P << b, 2))
            low = self.wr_s[:j].all() if j else Const(1, 1)
            hit = low & ~self.wr_s[j] if j < len(self.wr_s) else low
            waddr = Cat(self.wr_s[j + 1:KS], self.wr_slot) if b else self.wr_slot
            m.d.comb += [mem.wr_en.eq(self.wr_en & hit), mem.wr_addr.eq(waddr), mem.wr_data.eq(self.wr_cum)]
            step_rd[j] = mem

        # ---- stage 0: draw registered while the total is read
        v0, r0, k0 = Signal(), Signal(32), Signal(sw)
        m.d.sync += [v0.eq(self.i_valid), r0.eq(self.i_r), k0.eq(self.i_slot)]
        # ---- stage 0b: the total registered (memory output -> register -> multipliers)
        v0b, r0b, k0b, tot = Signal(), Signal(32), Signal(sw), Signal(cw)
        m.d.sync += [v0b.eq(v0), r0b.eq(r0), k0b.eq(k0), tot.eq(tr.data)]
        v0, r0, k0 = v0b, r0b, k0b
        # ---- stage 1: partial products of r * total, uniform (r * S)
        th_w = max(cw - 16, 0)
        v1, k1, z1 = Signal(), Signal(sw), Signal()
        pll, plh, phl, phh = Signal(32), Signal(32), Signal(32), Signal(32)
        # uniform index (r * S) >> 32 from two registered halves: r_lo*S and r_hi*S
        ul1, uh1 = Signal(16 + max(1, S.bit_length())), Signal(16 + max(1, S.bit_length()))
        m.d.sync += [v1.eq(v0), k1.eq(k0), z1.eq(tot == 0), ul1.eq(r0[:16] * S), uh1.eq(r0[16:] * S),
                     pll.eq(r0[:16] * tot[:16]), phl.eq(r0[16:] * tot[:16])]
        if th_w:
            m.d.sync += [plh.eq(r0[:16] * tot[16:cw]), phh.eq(r0[16:] * tot[16:cw])]
        # ---- stage 2: middle sum
        v2, k2, z2 = Signal(), Signal(sw), Signal()
        mid, ll2, hh2, u2 = Signal(33), Signal(32), Signal(32), Signal(self.index_width)
        m.d.sync += [v2.eq(v1), k2.eq(k1), z2.eq(z1), mid.eq(plh + phl), ll2.eq(pll), hh2.eq(phh),
                     u2.eq((uh1 + (ul1 >> 16)) >> 16)]
        # ---- stage 3: low sum
        v3, k3, z3 = Signal(), Signal(sw), Signal()
        x3, hh3, u3 = Signal(50), Signal(32), Signal(self.index_width)
        m.d.sync += [v3.eq(v2), k3.eq(k2), z3.eq(z2), x3.eq(ll2 + (mid << 16)), hh3.eq(hh2), u3.eq(u2)]
        # ---- stage 4: target
        v, k, z = Signal(), Signal(sw), Signal()
        target, u, idx = Signal(cw), Signal(self.index_width), Signal(self.index_width)
        m.d.sync += [v.eq(v3), k.eq(k3), z.eq(z3), target.eq(hh3 + x3[32:]), u.eq(u3), idx.eq(0)]

        # ---- search steps, four cycles each: address (wired from registers), memory output
        #      registered, compare registered
        for j in reversed(range(KS)):
            b = KS - 1 - j
            rd = step_rd[j]
            m.d.comb += rd.rd_addr.eq(Cat(idx[j + 1:KS], k) if b else k)
            fields = Cat(v, z, k, target, u, idx)
            fa = Signal(len(fields), name=f"s{j}a")
            f2 = Signal(len(fields), name=f"s{j}a2")
            fb = Signal(len(fields), name=f"s{j}b")
            # the memory output registered twice: a register next to the memory (a deep memory is several
            # block RAMs and a mux), then one next to the compare
            q0 = Signal(cw, name=f"s{j}q0")
            q = Signal(cw, name=f"s{j}q")
            m.d.sync += [fa.eq(fields), f2.eq(fa), fb.eq(f2), q0.eq(rd.rd_data), q.eq(q0)]
            o = 0
            parts = []
            for width in (1, 1, sw, cw, self.index_width, self.index_width):
                parts.append(fb[o:o + width])
                o += width
            vb, zb, kb, tb, ub, ib = parts
            le = q <= tb
            if ((1 << KS) - 1) >= S:  # some probes fall past the window: tested a cycle earlier, on f2
                ia = f2[len(fields) - self.index_width:]
                pok = Signal(name=f"s{j}ok")
                m.d.sync += pok.eq(ia + ((1 << j) - 1) < S)
                le = le & pok
            nv, nz, nk = Signal(name=f"s{j}c_v"), Signal(name=f"s{j}c_z"), Signal(sw, name=f"s{j}c_k")
            nt, nu = Signal(cw, name=f"s{j}c_t"), Signal(self.index_width, name=f"s{j}c_u")
            ni = Signal(self.index_width, name=f"s{j}c_i")
            m.d.sync += [nv.eq(vb), nz.eq(zb), nk.eq(kb), nt.eq(tb), nu.eq(ub), ni.eq(ib | Mux(le, 1 << j, 0))]
            v, z, k, target, u, idx = nv, nz, nk, nt, nu, ni

        m.d.comb += [self.o_valid.eq(v), self.o_index.eq(Mux(z, u, idx))]
        return m


__all__ = ["PipelinedSampler", "reference", "trailing_ones", "clog2"]
