"""``ScaledScheduleTable``: ROM of the ``scaled`` update's per-spike ``A_t`` and ``j_t``.

Contents: :meth:`fixedpoint.datapath.Datapath.tables` with ``update = "scaled"``
(:func:`fixedpoint.scaled.scaled_tables`): ``A_t`` (uqI.Fg, :attr:`a_bits` bits) and the rounding
position ``j_t`` (``C_t = 2**(Fc - j_t)``, :func:`rtl.layer.scaled_lanes.scaled_constants`;
:attr:`j_width` bits, 2 for the reference schedule) -- the ``j_t`` table beside the ``A_t``
table, in one memory of depth ``max(T, 2)``, word ``t`` = ``(A_t << j_width) | j_t``.  The last
spike's factor ``C_{T-1}`` is not a power of two; it is the constant :attr:`c_last`
(:class:`rtl.layer.final_scale.FinalScale`), and the table holds ``j = 0`` there.

Ports as :class:`rtl.schedule.ScheduleTable` (so an engine core uses either): ``addr`` In (spike
index t), ``C`` Out (``j_t``, j_width bits), ``G`` Out (``A_t``, a_bits bits); synchronous read,
:attr:`latency` = 1.
"""
from __future__ import annotations

from types import SimpleNamespace

from amaranth import Module
from amaranth.lib import memory
from amaranth.lib.wiring import In, Out

from fixedpoint.bits import clog2
from fixedpoint.schedule import Schedule
from rtl.checked import CheckedComponent
from rtl.layer.scaled_coefficient import a_bits_of
from rtl.layer.scaled_lanes import scaled_constants


class ScaledScheduleTable(CheckedComponent):
    """A_t / j_t ROM (see module docstring)."""

    latency = 1

    @staticmethod
    def plan(dp, T: int, schedule: Schedule | None = None) -> dict:
        p = SimpleNamespace()
        if dp.update != "scaled":
            raise ValueError(f"ScaledScheduleTable: datapath update must be 'scaled', got {dp.update!r}")
        if not isinstance(T, int) or isinstance(T, bool) or not 1 <= T <= (1 << 24):
            raise ValueError(f"ScaledScheduleTable: T must be an int in 1..{1 << 24}, got {T!r}")
        p.dp, p.T = dp, T
        p.schedule = schedule or Schedule()
        p.tables = dp.tables(T, p.schedule)
        p.j, p.c_last = scaled_constants(dp, p.tables)
        p.j_max = max(p.j)
        p.j_width = max(1, p.j_max.bit_length())
        p.a_bits = a_bits_of(dp, p.tables)
        p.addr_width = max(1, clog2(T))
        return vars(p)

    def __init__(self, dp, T: int, schedule: Schedule | None = None):
        super().__init__({"addr": In(self.addr_width), "C": Out(self.j_width), "G": Out(self.a_bits)})

    def words(self) -> list[int]:
        """Memory words ``(A_t << j_width) | j_t`` for t = 0..T-1 (padded with 0 to depth >= 2)."""
        w = [(int(a) << self.j_width) | int(j) for j, a in zip(self.j, self.tables.G)]
        return w + [0] * (max(self.T, 2) - self.T)

    def elaborate(self, platform):
        m = Module()
        m.submodules.rom = rom = memory.Memory(shape=self.j_width + self.a_bits, depth=max(self.T, 2),
                                               init=self.words())
        rd = rom.read_port(domain="sync")
        m.d.comb += [rd.addr.eq(self.addr), self.C.eq(rd.data[:self.j_width]), self.G.eq(rd.data[self.j_width:])]
        return m


__all__ = ["ScaledScheduleTable"]
