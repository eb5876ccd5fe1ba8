"""``PoolUnit``: average or max pooling of h codes, from one feature-map RAM into another.

Parameters: the pooling :class:`sbs_model.network.LayerSpec` (kernel, stride, dilation, padding),
the input shape ``(C, H, W)``, the h format (fixed point, ``uqI.F``: codes are integers on one
grid) and the rounding mode of the producing layer's datapath (``h_rounding``).

Arithmetic (the same as :func:`fixedpoint.pooling.pool_avg` / :func:`fixedpoint.pooling.pool_max`
for fixed-point codes, which the tests compare bit for bit):

* max: the largest code of the window's positions inside the input (padding is skipped);
* average (no padding, as the model requires): ``S`` = the sum of the ``k`` codes,
  ``q = floor(S / k)``, ``r = S - q*k``, then ``q`` rounded by ``r``: ``trunc`` keeps ``q``,
  ``rne`` adds one when ``2r > k`` or ``2r == k`` and ``q`` is odd, ``rna`` when ``2r >= k``.
  ``floor(S / k)`` is ``(S * M) >> sh`` with ``sh = n + ceil(log2 k)``, ``M = ceil(2**sh / k)``
  for every ``S < 2**n`` (``n`` the sum's width), a constant multiplication.

Ports (plain signals): ``start`` (pulse); ``rd_addr`` / ``rd_en`` out, ``rd_data`` in: a
read port of the input :class:`rtl.network.fmap.FeatureMap` (``c*H*W + y*W + x``; its value
``FMAP_READ_LATENCY`` = 2 cycles after the address); ``wr_addr`` / ``wr_data`` /
``wr_en`` out: the output RAM, written in order ``c*n_out + o``; ``done`` (pulse with the last
write).  One window position per cycle: ``start`` in cycle ``s`` -> positions issued in cycles
``s+1 .. s + C*n_out*k``, the last write in cycle ``s + C*n_out*k + LATENCY``
(:data:`sbs_model.network_cycles.POOL_LATENCY` = 8).  The geometry ROM's word, the read address and the
read value each pass a register (the input feature map spans many block RAMs: their address pins and their output
multiplexer are long routes).
"""
from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.lib import data, memory
from amaranth.lib.wiring import In, Out

from fixedpoint.bits import clog2
from fixedpoint.formats import FixedFormat, parse_format
from rtl.checked import CheckedComponent
from sbs_model.network_cycles import FMAP_READ_LATENCY, POOL_LATENCY
from sbs_model.quant_ref import pool_index

KINDS = ("avgpool", "maxpool")
FLAGS = data.StructLayout({"v": 1, "first": 1, "last": 1, "inb": 1})  # a window position in the pipeline
ROUNDINGS = ("trunc", "rne", "rna")


def divider_constants(k: int, n: int) -> tuple[int, int]:
    """``(M, sh)`` with ``(S * M) >> sh == S // k`` for all ``0 <= S < 2**n``."""
    sh = int(n) + clog2(int(k))
    return -(-(1 << sh) // int(k)), sh


class PoolUnit(CheckedComponent):
    """Pooling of one feature map (see module docstring)."""

    @staticmethod
    def plan(layer, in_shape, h_format, rounding: str = "rne") -> dict:
        if layer.kind not in KINDS:
            raise ValueError(f"PoolUnit: layer kind {layer.kind!r}; allowed: {', '.join(KINDS)}")
        H = parse_format(h_format)
        if not isinstance(H, FixedFormat):
            raise ValueError(f"PoolUnit: h_format {H} is not fixed point (uqI.F)")
        if rounding not in ROUNDINGS:
            raise ValueError(f"PoolUnit: rounding {rounding!r}; allowed: {', '.join(ROUNDINGS)}")
        if layer.kind == "avgpool" and max(layer.padding) > 0:
            raise ValueError("PoolUnit: average pooling with padding is not supported (the model refuses it)")
        C, h, w = (int(v) for v in in_shape)
        idx = pool_index(layer, h, w)  # (n_out, k), -1 = padding
        n_out, k = (int(v) for v in idx.shape)
        ho, wo = layer.output_hw(h, w)
        assert ho * wo == n_out
        sum_width = H.width + max(1, clog2(k))
        M, sh = divider_constants(k, sum_width)
        return dict(layer=layer, H=H, rounding=rounding, C=C, h=h, w=w, idx=idx, n_out=n_out, k=k,
                    out_shape=(C, ho, wo), n_in=C * h * w, total=C * n_out, sum_width=sum_width, M=M, sh=sh,
                    latency=POOL_LATENCY)

    def __init__(self, layer, in_shape, h_format, rounding: str = "rne"):
        super().__init__({
            "start": In(1), "done": Out(1),
            "rd_addr": Out(range(max(self.n_in, 2))), "rd_en": Out(1), "rd_data": In(self.H.width),
            "wr_addr": Out(range(max(self.total, 2))), "wr_data": Out(self.H.width), "wr_en": Out(1),
        })

    def cycles(self) -> int:
        return self.total * self.k + self.latency

    def elaborate(self, platform):
        m = Module()
        k, n_out, C, hw = self.k, self.n_out, self.C, self.H.width
        plane = self.h * self.w
        row = data.StructLayout({"ok": 1, "idx": range(max(plane, 2))})
        m.submodules.geo = geo = memory.Memory(
            shape=row, depth=max(n_out * k, 2),
            init=[dict(ok=int(v >= 0), idx=max(int(v), 0)) for v in self.idx.reshape(-1)])
        gp = geo.read_port(domain="sync")

        # ---- p0: issue counters (channel c, geometry address ra = o*k + j, window position j)
        running = Signal()
        ra = Signal(range(max(n_out * k, 2)))
        j = Signal(range(max(k, 2)))
        c = Signal(range(max(C, 2)))
        cbase = Signal(range(max(self.n_in, 2)))
        with m.If(self.start):
            m.d.sync += [running.eq(1), ra.eq(0), j.eq(0), c.eq(0), cbase.eq(0)]
        with m.Elif(running):
            m.d.sync += j.eq(Mux(j == k - 1, 0, j + 1))
            with m.If(ra == n_out * k - 1):
                m.d.sync += [ra.eq(0), c.eq(c + 1), cbase.eq(cbase + plane)]
                with m.If(c == C - 1):
                    m.d.sync += running.eq(0)
            with m.Else():
                m.d.sync += ra.eq(ra + 1)
        m.d.comb += gp.addr.eq(ra)
        # ---- p1: the geometry ROM's word into a register (a block RAM without its output register drove
        # the address adder: at 838dd54, T = 700, seed 1, the ROM -> addr2 path was critical, 11.10 ns)
        v1, first1, last1 = Signal(), Signal(), Signal()
        cb1 = Signal.like(cbase)
        m.d.sync += [v1.eq(running & ~self.start), first1.eq(j == 0), last1.eq(j == k - 1), cb1.eq(cbase)]
        g_q = Signal(row)
        v1q, first1q, last1q = Signal(), Signal(), Signal()
        cb1q = Signal.like(cbase)
        m.d.sync += [g_q.eq(gp.data), v1q.eq(v1), first1q.eq(first1), last1q.eq(last1), cb1q.eq(cb1)]
        # ---- p2: geometry word -> input RAM address (registered: the address adder ends at a flip-flop,
        # not at the address pins of every block RAM of the feature map)
        # the per-position flags travel with the read: valid, first / last of the window, inside the input
        f2 = Signal(FLAGS)
        addr2 = Signal.like(self.rd_addr)
        m.d.sync += [f2.v.eq(v1q), f2.first.eq(first1q), f2.last.eq(last1q), f2.inb.eq(g_q.ok),
                     addr2.eq(cb1q + g_q.idx)]
        # ---- p3, p4: the map's read (FMAP_READ_LATENCY stages: bank read port, bank register)
        m.d.comb += [self.rd_addr.eq(addr2), self.rd_en.eq(1)]
        f = f2
        for i in range(FMAP_READ_LATENCY):
            g = Signal(FLAGS, name=f"f_read{i}")
            m.d.sync += g.eq(f)
            f = g
        # ---- the map's value into a register (the banks' output multiplexer ends here)
        f4 = Signal(FLAGS, name="f_data")
        d4 = Signal(hw)
        m.d.sync += [f4.eq(f), d4.eq(self.rd_data)]
        v4, first4, last4, in4 = f4.v, f4.first, f4.last, f4.inb
        # ---- p5: value -> running sum / max
        acc = Signal(self.sum_width)
        x = Mux(in4, d4, 0)
        if self.layer.kind == "avgpool":
            nxt = Mux(first4, x, acc + x)
        else:
            nxt = Mux(first4, x, Mux(in4 & (d4 > acc), d4, acc))
        with m.If(v4):
            m.d.sync += acc.eq(nxt)
        # ---- p6: window result; p7: quotient; then the rounded write
        v5, s5 = Signal(), Signal(self.sum_width)
        m.d.sync += [v5.eq(v4 & last4), s5.eq(nxt)]
        v6, s6, q6 = Signal(), Signal(self.sum_width), Signal(self.sum_width)
        if self.layer.kind == "avgpool":
            q = (s5 * self.M) >> self.sh
        else:
            q = s5
        m.d.sync += [v6.eq(v5), s6.eq(s5), q6.eq(q)]
        res = Signal(hw)
        if self.layer.kind == "avgpool" and self.k > 1:
            r = Signal(self.sum_width)
            m.d.comb += r.eq(s6 - q6 * self.k)
            if self.rounding == "trunc":
                up = 0
            elif self.rounding == "rne":
                up = (2 * r > self.k) | ((2 * r == self.k) & q6[0])
            else:
                up = 2 * r >= self.k
            m.d.comb += res.eq(q6 + up)
        else:
            m.d.comb += res.eq(q6)
        wo = Signal(range(max(self.total, 2)))
        with m.If(self.start):
            m.d.sync += wo.eq(0)
        with m.Elif(v6):
            m.d.sync += wo.eq(wo + 1)
        m.d.comb += [self.wr_en.eq(v6), self.wr_addr.eq(wo), self.wr_data.eq(res),
                     self.done.eq(v6 & (wo == self.total - 1))]
        return m


__all__ = ["PoolUnit", "divider_constants"]
