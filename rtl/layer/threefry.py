"""``ThreefryPipe``: :func:`fixedpoint.rng.spike_random` with one 32-bit addition per stage.

Threefry-2x32-20 as :class:`rtl.rng.SpikeRandom` (``"pipelined"``), but the five key injections
(after rounds 3, 7, 11, 15, 19) get stages of their own, and the injected constant
``key + s`` of the second word is prepared in a register of its own, so no stage holds more than
one 32-bit carry chain (a round: ``x0 + x1``, then a rotate and xor; an injection: one addition
per word).  The counter is ``((layer << 24) | ip, spike)``, the key ``(seed, pattern)``.

The key is not carried down the pipe: the injections read the key words from ``seed`` and
``pattern`` as they are when the draw reaches them (``key + s`` one cycle later, from registers
of their own).  So the key must stay the same from a draw's request until its output
(:attr:`latency` cycles); a draw with a new key may be requested in the first cycle the new key
shows, once the old key's draws are out.  The :class:`rtl.layer.spikegen.SpikeGenerator` holds
one key per wave, and every draw of a wave has left the pipe before the next wave starts.
Carrying the key (three words) through the 26 stages cost 2,496 flip-flops per engine.

Ports (plain signals, no back-pressure): ``i_valid``, ``seed``, ``pattern``, ``layer`` (u8),
``ip`` (u24), ``spike`` (u32) in; ``o_valid``, ``o_r`` (the first output word) out.
:attr:`latency` = ``ROUNDS + 5 + 1`` = 26: inputs of cycle ``c`` show in cycle ``c + 26``.
"""
from __future__ import annotations

from amaranth import Cat, Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from fixedpoint.rng import KS_PARITY, ROTATIONS, ROUNDS, spike_random

INJECTIONS = ROUNDS // 4


def reference(seed, pattern, layer, ip, spike) -> int:
    return int(spike_random(seed, pattern, layer, ip, spike))


def _rotl(x, r: int):
    return Cat(x[32 - r:], x[:32 - r])


class ThreefryPipe(wiring.Component):
    """Threefry-2x32-20 spike draw, one addition per stage (see module docstring)."""

    latency = ROUNDS + INJECTIONS + 1

    def __init__(self):
        super().__init__({
            "i_valid": In(1), "seed": In(32), "pattern": In(32), "layer": In(8), "ip": In(24), "spike": In(32),
            "o_valid": Out(1), "o_r": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        # the key words and the second word's injected constants key + s, from the held key
        ks = [self.seed, self.pattern, self.seed ^ self.pattern ^ Const(KS_PARITY, 32)]
        kadd = [Signal(32, name=f"kadd_{s}") for s in range(1, INJECTIONS + 1)]
        m.d.sync += [k.eq((ks[(s + 1) % 3] + s)[:32]) for s, k in enumerate(kadd, start=1)]
        # stage 0: the initial state (one addition per word)
        v, x0, x1 = Signal(name="v0"), Signal(32, name="x0_0"), Signal(32, name="x1_0")
        m.d.sync += [v.eq(self.i_valid), x0.eq(Cat(self.ip, self.layer) + self.seed),
                     x1.eq(self.spike + self.pattern)]
        n = 0
        for r in range(ROUNDS):
            n += 1
            nv, n0, n1 = Signal(name=f"v{n}"), Signal(32, name=f"x0_{n}"), Signal(32, name=f"x1_{n}")
            y0 = (x0 + x1)[:32]
            m.d.sync += [nv.eq(v), n0.eq(y0), n1.eq(_rotl(x1, ROTATIONS[r % 8]) ^ y0)]
            v, x0, x1 = nv, n0, n1
            if r % 4 == 3:  # key injection s: x0 += ks[s % 3], x1 += ks[(s + 1) % 3] + s
                s = (r + 1) // 4
                n += 1
                nv, n0, n1 = Signal(name=f"v{n}"), Signal(32, name=f"x0_{n}"), Signal(32, name=f"x1_{n}")
                m.d.sync += [nv.eq(v), n0.eq((x0 + ks[s % 3])[:32]), n1.eq((x1 + kadd[s - 1])[:32])]
                v, x0, x1 = nv, n0, n1
        m.d.comb += [self.o_valid.eq(v), self.o_r.eq(x0)]
        return m


__all__ = ["ThreefryPipe", "reference"]
