"""``FeatureMap``: one layer's output codes in on-chip RAM, split into banks whose outputs are registered.

Parameters: ``depth`` (codes) and ``width`` (bits per code).  The map is
``ceil(depth / FMAP_BANK_WORDS)`` banks of :data:`sbs_model.network_cycles.FMAP_BANK_WORDS` words
(1024: one DP16KD of the ECP5 holds 1024 words of up to 18 bits); code ``a`` is word
``a mod FMAP_BANK_WORDS`` of bank ``a // FMAP_BANK_WORDS``.

Ports (plain signals):

* write: ``wr_en``, ``wr_addr``, ``wr_data`` in.  With ``depth >= 2`` the three pass a register
  before they reach the banks (the write lands one cycle later; the banks' write pins are long
  routes from the layer); a map of one code is written directly (its only code is the next
  stage's first read).
* read: ``rd_en``, ``rd_addr`` in, ``rd_data`` out.  The read is a pipeline of
  :data:`sbs_model.network_cycles.FMAP_READ_LATENCY` = 2 stages that advance together in the
  cycles with ``rd_en`` high: every bank's synchronous read port, then every bank's output register
  (a fabric flip-flop next to its block RAM); ``rd_data`` is the registered word of the bank
  selected by the address (the selection travels with the pipeline).  So with ``rd_en`` high in
  every cycle, the code at the address given in cycle ``c`` is on ``rd_data`` in cycle ``c + 2``;
  in cycles with ``rd_en`` low nothing moves and ``rd_data`` holds.

Why the bank register: the block RAM's clock-to-output time (about 5.8 ns on the ECP5 without
its own output register) followed by the banks' output multiplexer and a route across the chip
was the whole network's critical path.  With the register the block RAM drives one nearby
flip-flop, and the multiplexer starts at flip-flops.
"""
from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import memory
from amaranth.lib.wiring import In, Out

from rtl.checked import CheckedComponent
from sbs_model.network_cycles import FMAP_BANK_WORDS, FMAP_READ_LATENCY, fmap_banks


class FeatureMap(CheckedComponent):
    """``depth`` codes of ``width`` bits in registered banks (see module docstring)."""

    @staticmethod
    def plan(depth: int, width: int) -> dict:
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise ValueError(f"FeatureMap: depth must be an int >= 1, got {depth!r}")
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ValueError(f"FeatureMap: width must be an int >= 1, got {width!r}")
        banks = fmap_banks(depth)
        return dict(depth=depth, width=width, banks=banks, bank_words=min(depth, FMAP_BANK_WORDS),
                    latency=FMAP_READ_LATENCY)

    def __init__(self, depth: int, width: int):
        super().__init__({
            "wr_en": In(1), "wr_addr": In(range(max(depth, 2))), "wr_data": In(width),
            "rd_en": In(1), "rd_addr": In(range(max(depth, 2))), "rd_data": Out(width),
        })

    def elaborate(self, platform):
        assert FMAP_READ_LATENCY == 2  # bank read port + bank output register
        m = Module()
        nb, words, w = self.banks, self.bank_words, self.width
        lo = max(words - 1, 1).bit_length() if nb > 1 else None  # the word's address bits (banks: a power of two)

        # ---- write: through a register (depth >= 2), then to the bank its high bits select
        if self.depth >= 2:
            en, addr, value = Signal(name="wr_en_q"), Signal.like(self.wr_addr, name="wr_addr_q"), Signal(w, name="wr_data_q")
            m.d.sync += [en.eq(self.wr_en), addr.eq(self.wr_addr), value.eq(self.wr_data)]
        else:
            en, addr, value = self.wr_en, self.wr_addr, self.wr_data

        if nb > 1:
            sel1 = Signal(range(nb))  # the bank of the word in the read port stage
            sel2 = Signal(range(nb))  # ... in the bank-register stage
            with m.If(self.rd_en):
                m.d.sync += [sel1.eq(self.rd_addr[lo:]), sel2.eq(sel1)]
        qs = []
        for b in range(nb):
            depth_b = min(words, self.depth - b * words)
            ram = memory.Memory(shape=w, depth=max(depth_b, 2), init=[])
            m.submodules[f"bank{b}"] = ram
            wp, rp = ram.write_port(), ram.read_port(domain="sync")
            q = Signal(w, name=f"q{b}")
            if nb > 1:
                m.d.comb += [wp.en.eq(en & (addr[lo:] == b)), wp.addr.eq(addr[:lo]), rp.addr.eq(self.rd_addr[:lo])]
            else:
                m.d.comb += [wp.en.eq(en), wp.addr.eq(addr), rp.addr.eq(self.rd_addr)]
            m.d.comb += [wp.data.eq(value), rp.en.eq(self.rd_en)]
            with m.If(self.rd_en):
                m.d.sync += q.eq(rp.data)
            qs.append(q)
        if nb == 1:
            m.d.comb += self.rd_data.eq(qs[0])
        else:
            with m.Switch(sel2):  # a case statement: one parallel multiplexer over the bank registers
                for b, q in enumerate(qs[:-1]):
                    with m.Case(b):
                        m.d.comb += self.rd_data.eq(q)
                with m.Default():
                    m.d.comb += self.rd_data.eq(qs[-1])
        return m


__all__ = ["FeatureMap"]
