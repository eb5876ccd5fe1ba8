"""``SpikeRandom``: the Threefry-2x32-20 spike draw of :func:`fixedpoint.rng.spike_random` as RTL.

Ports (``lib.stream``, valid/ready):

* ``i``: request, payload :data:`REQUEST_LAYOUT` (120 bits, first field in the LSBs):
  ``seed`` u32, ``pattern`` u32, ``layer`` u8, ``ip`` u24, ``spike`` u32.
  In Verilog: ``i__valid``, ``i__ready``, ``i__payload[119:0]``; :func:`pack_request` packs one.
* ``o``: the uint32 draw (``o__payload[31:0]``), in request order.

Architectures (``mode``):

* ``"pipelined"``: one Threefry round per stage, 20 stages; accepts one request per cycle and
  delivers one draw per cycle.  Latency :attr:`SpikeRandom.latency` = 20 cycles: a request
  transferred in cycle ``c`` makes ``o.valid`` high in cycle ``c + 20`` (when not stalled).
  Back-pressure stalls the whole pipeline (``i.ready = ~o.valid | o.ready``).
  About 2560 flip-flops, 40 32-bit adders.
* ``"iterative"``: one round per cycle on one set of registers; one request in flight;
  latency 21 cycles, one draw per 21 cycles + handshakes.  Two 32-bit adders (+ key injection).

Bit widths: all words 32 bits, additions modulo 2**32; counter = ((layer << 24) | ip, spike),
key = (seed, pattern).  ``fault`` is for tests only (``"flip_bit3"``: invert bit 3 of the draw
whenever its bits [7:4] are all ones, i.e. on 1/16 of the draws).
"""
from __future__ import annotations

from types import SimpleNamespace

from amaranth import Cat, Const, Module, Mux, Shape, Signal
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from fixedpoint.rng import KS_PARITY, ROTATIONS, ROUNDS, spike_random
from rtl.checked import CheckedComponent

REQUEST_LAYOUT = data.StructLayout({
    "seed": 32, "pattern": 32, "layer": 8, "ip": 24, "spike": 32,
})
MODES = ("pipelined", "iterative")
FAULTS = (None, "flip_bit3")


def pack_request(seed: int, pattern: int, layer: int, ip: int, spike: int) -> int:
    """The ``i__payload`` integer (120 bits) for one request; fields must fit their widths."""
    out = 0
    for fname, value in (("seed", seed), ("pattern", pattern), ("layer", layer), ("ip", ip),
                         ("spike", spike)):
        field = REQUEST_LAYOUT[fname]
        width = Shape.cast(field.shape).width
        if not 0 <= int(value) < (1 << width):
            raise ValueError(f"pack_request: {fname} must be in 0..{(1 << width) - 1}, got {value}")
        out |= int(value) << field.offset
    return out


def reference(seed, pattern, layer, ip, spike) -> int:
    """The model's draw (``fixedpoint.rng.spike_random``) as a Python int."""
    return int(spike_random(seed, pattern, layer, ip, spike))


def _rotl(x, r: int):
    return Cat(x[32 - r:], x[:32 - r])


def _key(k0, k1, j: int):
    if j == 0:
        return k0
    if j == 1:
        return k1
    return k0 ^ k1 ^ Const(KS_PARITY, 32)


def _round(x0, x1, k0, k1, r: int):
    """Threefry round ``r`` (0..19) incl. the key injection after rounds 3, 7, 11, 15, 19;
    returns the new (x0, x1) as 32-bit expressions."""
    y0 = (x0 + x1)[:32]
    y1 = _rotl(x1, ROTATIONS[r % 8]) ^ y0
    if r % 4 == 3:
        s = (r + 1) // 4
        y0 = (y0 + _key(k0, k1, s % 3))[:32]
        y1 = (y1 + _key(k0, k1, (s + 1) % 3) + s)[:32]
    return y0, y1


class SpikeRandom(CheckedComponent):
    """Threefry-2x32-20 spike draw unit (see module docstring for ports, latency, resources)."""

    @staticmethod
    def plan(mode: str = "pipelined", fault: str | None = None) -> dict:
        """Checked arguments -> the attributes of a SpikeRandom (ValueError for bad ones)."""
        p = SimpleNamespace()
        if mode not in MODES:
            raise ValueError(f"SpikeRandom: mode must be one of {MODES}, got {mode!r}")
        if fault not in FAULTS:
            raise ValueError(f"SpikeRandom: fault must be one of {FAULTS}, got {fault!r}")
        p.mode = mode
        p.fault = fault
        p.latency = ROUNDS if mode == "pipelined" else ROUNDS + 1
        return vars(p)

    def __init__(self, mode: str = "pipelined", fault: str | None = None):
        super().__init__({
            "i": In(stream.Signature(REQUEST_LAYOUT)),
            "o": Out(stream.Signature(32)),
        })

    def _inject_fault(self, m, result):
        if self.fault == "flip_bit3":
            return Mux(result[4:8] == 0xF, result ^ (1 << 3), result)
        return result

    def elaborate(self, platform):
        m = Module()
        req = self.i.payload
        c0 = Cat(req.ip, req.layer)
        init0 = (c0 + req.seed)[:32]
        init1 = (req.spike + req.pattern)[:32]
        if self.mode == "pipelined":
            self._pipelined(m, init0, init1)
        else:
            self._iterative(m, init0, init1)
        return m

    def _pipelined(self, m, init0, init1):
        req = self.i.payload
        advance = Signal()
        m.d.comb += advance.eq(~self.o.valid | self.o.ready)
        m.d.comb += self.i.ready.eq(advance)
        prev = (self.i.valid, init0, init1, req.seed, req.pattern)
        for r in range(ROUNDS):
            v = Signal(name=f"s{r}_valid")
            x0 = Signal(32, name=f"s{r}_x0")
            x1 = Signal(32, name=f"s{r}_x1")
            pv, px0, px1, pk0, pk1 = prev
            y0, y1 = _round(px0, px1, pk0, pk1, r)
            with m.If(advance):
                m.d.sync += [v.eq(pv), x0.eq(y0)]
                if r < ROUNDS - 1:  # the last stage's x1 is never used
                    m.d.sync += x1.eq(y1)
            if r < ROUNDS - 1:
                k0 = Signal(32, name=f"s{r}_k0")
                k1 = Signal(32, name=f"s{r}_k1")
                with m.If(advance):
                    m.d.sync += [k0.eq(pk0), k1.eq(pk1)]
                prev = (v, x0, x1, k0, k1)
            else:
                prev = (v, x0, None, None, None)
        v, x0 = prev[0], prev[1]
        m.d.comb += [self.o.valid.eq(v), self.o.payload.eq(self._inject_fault(m, x0))]

    def _iterative(self, m, init0, init1):
        req = self.i.payload
        x0 = Signal(32)
        x1 = Signal(32)
        k0 = Signal(32)
        k1 = Signal(32)
        rnd = Signal(range(ROUNDS))
        busy = Signal()
        out_valid = Signal()
        m.d.comb += [self.i.ready.eq(~busy & ~out_valid), self.o.valid.eq(out_valid),
                     self.o.payload.eq(self._inject_fault(m, x0))]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += out_valid.eq(0)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [x0.eq(init0), x1.eq(init1), k0.eq(req.seed), k1.eq(req.pattern),
                         rnd.eq(0), busy.eq(1)]
        with m.If(busy):
            # One adder pair shared by all rounds: rotation chosen by rnd % 8, key injection
            # (rnd % 4 == 3) chosen by s = (rnd + 1) // 4 in 1..5.
            y0 = Signal(32)
            y1 = Signal(32)
            m.d.comb += y0.eq(x0 + x1)
            with m.Switch(rnd[:3]):
                for j in range(8):
                    with m.Case(j):
                        m.d.comb += y1.eq(_rotl(x1, ROTATIONS[j]) ^ y0)
            z0 = Signal(32)
            z1 = Signal(32)
            with m.Switch(rnd):
                for r in range(3, ROUNDS, 4):
                    s = (r + 1) // 4
                    with m.Case(r):
                        m.d.comb += [z0.eq(y0 + _key(k0, k1, s % 3)),
                                     z1.eq(y1 + _key(k0, k1, (s + 1) % 3) + s)]
                with m.Default():  # a full case: Verilator's CASEINCOMPLETE is not waived
                    m.d.comb += [z0.eq(y0), z1.eq(y1)]
            m.d.sync += [x0.eq(z0), x1.eq(z1), rnd.eq(rnd + 1)]
            with m.If(rnd == ROUNDS - 1):
                m.d.sync += [busy.eq(0), out_valid.eq(1), rnd.eq(0)]
