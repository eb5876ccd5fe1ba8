"""``WindowLoader``: the receptive fields of a block of IPs, read from the input RAM, as cumulative sums.

Geometry from a :class:`sbs_model.network.LayerSpec` and the input shape ``(C, H, W)``: window
position ``s`` of IP ``ip`` reads input element :func:`sbs_model.unfold.unfold_index` ``[ip, s]``
(PyTorch unfold order; padding reads 0).  Two small ROMs hold the geometry: per IP the top-left
corner ``(by, bx)`` and ``base = by*W + bx`` (``n_ip`` words), per window position the offsets
``(dy, dx)`` and ``off = c*H*W + dy*W + dx`` (``S`` words); the element is inside when
``0 <= by+dy < H`` and ``0 <= bx+dx < W``, at address ``base + off``.

Ports (plain signals): ``start`` (pulse) with ``ip_start`` and ``n_active`` (IPs ``ip_start ..
ip_start + n_active - 1`` go to slots ``0 .. n_active-1``); ``rd_addr`` out / ``rd_data`` in: a
synchronous read port of the input RAM (window values, ``value_width`` bits); ``wr_*`` out: the
cumulative sums ``cum[s]`` per slot for :class:`rtl.layer.sampler_pipe.PipelinedSampler`;
``busy`` out; ``finished`` out, a registered pulse in the first cycle ``busy`` is low again.  One
window value per cycle: ``start`` in cycle ``c`` -> the last ``wr_en`` in cycle
``c + n_active*S + LATENCY - 1`` and ``busy`` low (``finished`` high) from cycle ``c + n_active*S + LATENCY``.
"""
from __future__ import annotations

import numpy as np
from amaranth import Module, Mux, Signal, signed
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from rtl.decoder import signed_bits
from sbs_model.unfold import unfold_index

LATENCY = 8  # issue, geometry ROM read, ROM words registered, address, input RAM read, the RAM's output
             # registered, value, cumulative sum


def geometry(in_shape, layer):
    """``(ip_rows, s_rows)``: per IP ``(by, bx, base)``, per window position ``(dy, dx, off)``."""
    C, H, W = (int(v) for v in in_shape)
    ho, wo = layer.output_hw(H, W)
    (kh, kw), (sy, sx), (dly, dlx), (py, px) = layer.kernel, layer.stride, layer.dilation, layer.padding
    ips = []
    for oy in range(ho):
        for ox in range(wo):
            by, bx = oy * sy - py, ox * sx - px
            ips.append((by, bx, by * W + bx))
    ss = [(ky * dly, kx * dlx, c * H * W + ky * dly * W + kx * dlx)
          for c in range(C) for ky in range(kh) for kx in range(kw)]
    return ips, ss


def check_geometry(in_shape, layer) -> None:
    """The ROM formula equals :func:`sbs_model.unfold.unfold_index` (raises AssertionError)."""
    ips, ss = geometry(in_shape, layer)
    C, H, W = (int(v) for v in in_shape)
    want = unfold_index(in_shape, layer)
    got = np.full(want.shape, -1, dtype=np.int64)
    for i, (by, bx, base) in enumerate(ips):
        for s, (dy, dx, off) in enumerate(ss):
            if 0 <= by + dy < H and 0 <= bx + dx < W:
                got[i, s] = base + off
    assert np.array_equal(got, want), "WindowLoader geometry differs from unfold_index"


class WindowLoader(wiring.Component):
    """Receptive-field reader and cumulative summer (see module docstring)."""

    def __init__(self, in_shape, layer, value_width: int, cum_width: int, slots: int):
        self._MustUse__silence = True
        check_geometry(in_shape, layer)
        self.in_shape = tuple(int(v) for v in in_shape)
        self.ips, self.ss = geometry(in_shape, layer)
        self.n_ip, self.S = len(self.ips), len(self.ss)
        self.n_in = int(np.prod(self.in_shape))
        self.slots, self.value_width, self.cum_width = slots, value_width, cum_width
        C, H, W = self.in_shape
        self.c_shape = signed(signed_bits(min(min(r[i] for r in self.ips + self.ss) for i in range(3)) - 1,
                                          max(max(r[i] for r in self.ips + self.ss) for i in range(3)) + 1
                                          + max(H, W, self.n_in)))
        self._MustUse__silence = False
        super().__init__({
            "start": In(1), "ip_start": In(range(self.n_ip + 1)), "n_active": In(range(slots + 1)),
            "rd_addr": Out(range(max(self.n_in, 2))), "rd_data": In(value_width),
            "wr_en": Out(1), "wr_slot": Out(range(max(slots, 2))), "wr_s": Out(range(max(self.S, 2))),
            "wr_cum": Out(cum_width), "busy": Out(1), "finished": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        S, P = self.S, self.slots
        C, H, W = self.in_shape
        cs = self.c_shape
        row = data.StructLayout({"a": cs, "b": cs, "c": cs})

        m.submodules.ip_rom = ip_rom = memory.Memory(shape=row, depth=max(self.n_ip, 2),
                                                     init=[dict(a=a, b=b, c=c) for a, b, c in self.ips])
        m.submodules.s_rom = s_rom = memory.Memory(shape=row, depth=max(S, 2),
                                                   init=[dict(a=a, b=b, c=c) for a, b, c in self.ss])
        ipr, sr = ip_rom.read_port(domain="sync"), s_rom.read_port(domain="sync")

        # ---- issue counters
        k, s = Signal(range(max(P, 2))), Signal(range(max(S, 2)))
        ip0 = Signal(range(self.n_ip + 1))
        running = Signal()
        tail = Signal(range(LATENCY))
        # registered flags (written with the counters, from their old values): s == S-1, and
        # busy = running | (tail != 0) of this cycle
        s_last, busy, k_last = Signal(), Signal(), Signal()  # and k == n_active - 1
        n_m2 = Signal(range(P + 1))  # n_active - 2
        with m.If(self.start):
            m.d.sync += [k.eq(0), s.eq(0), ip0.eq(self.ip_start), n_m2.eq(self.n_active - 2),
                         running.eq(self.n_active != 0), tail.eq(0), s_last.eq(S == 1),
                         busy.eq(self.n_active != 0), k_last.eq(self.n_active == 1)]
        with m.Elif(running):
            with m.If(s_last):
                m.d.sync += [s.eq(0), k.eq(k + 1), s_last.eq(S == 1), k_last.eq(k == n_m2)]
                with m.If(k_last):
                    m.d.sync += [running.eq(0), tail.eq(LATENCY - 1), busy.eq(LATENCY > 1)]
            with m.Else():
                m.d.sync += [s.eq(s + 1), s_last.eq(s == S - 2) if S > 1 else s_last.eq(1)]
        with m.Elif(tail != 0):
            m.d.sync += [tail.eq(tail - 1), busy.eq(tail != 1)]
        # finished: a register, high in the first cycle busy is low after a load (the spike generator's
        # start, without logic in front: the core's phase register sat across the chip from the generator)
        m.d.sync += self.finished.eq(~self.start & ~running & (tail == 1))
        m.d.comb += [self.busy.eq(busy), ipr.addr.eq(ip0 + k), sr.addr.eq(s)]
        # ---- 1: geometry words
        v1, k1, s1 = Signal(), Signal.like(k), Signal.like(s)
        m.d.sync += [v1.eq(running & ~self.start), k1.eq(k), s1.eq(s)]
        # ---- 1b: the ROM words registered
        v1b, k1b, s1b = Signal(), Signal.like(k), Signal.like(s)
        ipw, sw_ = Signal(row), Signal(row)
        m.d.sync += [v1b.eq(v1), k1b.eq(k1), s1b.eq(s1), ipw.eq(ipr.data), sw_.eq(sr.data)]
        # ---- 2: address and inside test
        v2, k2, s2, in2 = Signal(), Signal.like(k), Signal.like(s), Signal()
        addr2 = Signal(range(max(self.n_in, 2)))
        y, x = ipw.a + sw_.a, ipw.b + sw_.b
        m.d.sync += [v2.eq(v1b), k2.eq(k1b), s2.eq(s1b), in2.eq((y >= 0) & (y < H) & (x >= 0) & (x < W)),
                     addr2.eq(ipw.c + sw_.c)]
        m.d.comb += self.rd_addr.eq(addr2)
        # ---- 3: input RAM read
        v3, k3, s3, in3 = Signal(), Signal.like(k), Signal.like(s), Signal()
        m.d.sync += [v3.eq(v2), k3.eq(k2), s3.eq(s2), in3.eq(in2)]
        # ---- 3b: the input RAM's output registered as it is, no logic in front (a block RAM without its
        # output register has 5.8 ns clock-to-out on the ECP5; at commit 66f745e, seed 2, this read
        # through one LUT into the value register, 4.6 ns of routing away, was the whole network's
        # critical path: 10.77 ns)
        v3b, k3b, s3b, in3b = Signal(), Signal.like(k), Signal.like(s), Signal()
        raw = Signal(self.value_width)
        m.d.sync += [v3b.eq(v3), k3b.eq(k3), s3b.eq(s3), in3b.eq(in3), raw.eq(self.rd_data)]
        # ---- 3c: the value (0 outside the input), registered before the adder
        v4, k4, s4, first4 = Signal(), Signal.like(k), Signal.like(s), Signal()
        value = Signal(self.value_width)
        m.d.sync += [v4.eq(v3b), k4.eq(k3b), s4.eq(s3b), first4.eq(s3b == 0), value.eq(Mux(in3b, raw, 0))]
        # ---- 4: cumulative sum -> write registers
        cum = Signal(self.cum_width)
        nxt = Mux(first4, value, cum + value)
        with m.If(v4):
            m.d.sync += cum.eq(nxt)
        m.d.sync += [self.wr_en.eq(v4), self.wr_slot.eq(k4), self.wr_s.eq(s4), self.wr_cum.eq(nxt)]
        return m


__all__ = ["WindowLoader", "geometry", "check_geometry", "LATENCY"]
