"""``ScheduleTable``: ROM of the per-spike coefficients ``C_t`` (uq0.Fc) and ``G_t`` (uq0.Fg).

Contents are :meth:`fixedpoint.datapath.Datapath.tables` (``fixedpoint.schedule.make_tables``) for
T spikes and a :class:`fixedpoint.schedule.Schedule`: one ``lib.memory.Memory`` of depth
``max(T, 2)`` and width ``Fc + Fg``, word ``t`` = ``(G_t << Fc) | C_t`` (:meth:`words`), so a
synthesis tool maps it to one block RAM (``T * (Fc + Fg)`` bits; T = 1600, 16 + 16 bits: 51,200 bits).

Ports (plain signals, not streams): ``addr`` In (``max(1, ceil(log2 T))`` bits, the spike index
t), ``C`` Out (Fc bits), ``G`` Out (Fg bits).  Synchronous read: ``C``/``G`` show the entry of the
``addr`` of the previous cycle (latency 1).
"""
from __future__ import annotations

from types import SimpleNamespace

from amaranth import Module
from amaranth.lib import memory
from amaranth.lib.wiring import In, Out

from fixedpoint.bits import clog2
from fixedpoint.schedule import Schedule
from rtl.checked import CheckedComponent


class ScheduleTable(CheckedComponent):
    """C_t / G_t ROM (see module docstring)."""

    latency = 1

    @staticmethod
    def plan(dp, T: int, schedule: Schedule | None = None) -> dict:
        """Checked arguments -> the attributes of a ScheduleTable (ValueError for bad ones)."""
        p = SimpleNamespace()
        if not isinstance(T, int) or isinstance(T, bool) or not 1 <= T <= (1 << 24):
            raise ValueError(f"ScheduleTable: T must be an int in 1..{1 << 24}, got {T!r}")
        p.dp = dp
        p.T = T
        p.schedule = schedule or Schedule()
        p.tables = dp.tables(T, p.schedule)
        p.c_bits = int(dp.c_bits)
        p.g_bits = int(dp.g_bits)
        p.addr_width = max(1, clog2(T))
        return vars(p)

    def __init__(self, dp, T: int, schedule: Schedule | None = None):
        super().__init__({
            "addr": In(self.addr_width),
            "C": Out(self.c_bits),
            "G": Out(self.g_bits),
        })

    def words(self) -> list[int]:
        """Memory words ``(G_t << Fc) | C_t`` for t = 0..T-1 (padded with 0 to depth >= 2)."""
        w = [(int(g) << self.c_bits) | int(c) for c, g in zip(self.tables.C, self.tables.G)]
        return w + [0] * (max(self.T, 2) - self.T)

    def elaborate(self, platform):
        m = Module()
        m.submodules.rom = rom = memory.Memory(shape=self.c_bits + self.g_bits, depth=max(self.T, 2),
                                               init=self.words())
        rd = rom.read_port(domain="sync")
        m.d.comb += [rd.addr.eq(self.addr), self.C.eq(rd.data[:self.c_bits]),
                     self.G.eq(rd.data[self.c_bits:])]
        return m
