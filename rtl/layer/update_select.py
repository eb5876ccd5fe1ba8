"""Which update units an engine core uses: the ``int`` update's or the ``scaled`` update's.

:func:`update_units` returns the core's per-element update lanes, its schedule ROM and its
coefficient pipe for the datapath's ``update``:

* ``int``: :class:`rtl.layer.update_lanes.UpdateLanes`, :class:`rtl.schedule.ScheduleTable`
  (``C_t``, ``G_t``), :class:`rtl.layer.coefficient.CoefficientPipe`;
* ``scaled`` (``scaled-*``, ``cheap-*`` presets): :class:`rtl.layer.scaled_lanes.ScaledUpdateLanes`
  (one multiplier per lane, or gated shifted adds for a coefficient of at most
  :data:`rtl.layer.scaled_lanes.SHIFT_ADD_MAX` bits), :class:`rtl.layer.scaled_schedule.ScaledScheduleTable`
  (``j_t``, ``A_t``), :class:`rtl.layer.scaled_coefficient.ScaledCoefficientPipe`; the last spike's
  factor ``C_{T-1}`` (:attr:`UpdateUnits.c_last`) is applied by the engine's
  :class:`rtl.layer.final_scale.FinalScale`.

The per-spike value a core keeps per slot next to ``K`` and ``exp_K`` is ``C_t`` (int, ``Fc + 1``
bits, identity ``2**Fc``) or ``j_t`` (scaled, identity 0; an ignored spike keeps its ``j_t``).
The h memory words are :attr:`UpdateUnits.word_width` bits per lane: H's width, or for ``scaled`` the
lanes' sums of the last round (:attr:`ScaledUpdateLanes.out_width`).
"""
from __future__ import annotations

import dataclasses

from rtl.layer.coefficient import CoefficientPipe
from rtl.layer.scaled_lanes import ScaledUpdateLanes, check_layer_datapath
from rtl.layer.scaled_schedule import ScaledScheduleTable
from rtl.layer.scaled_coefficient import ScaledCoefficientPipe
from rtl.layer.update_lanes import UpdateLanes
from rtl.schedule import ScheduleTable


@dataclasses.dataclass
class UpdateUnits:
    upd: object
    sched: object
    coef: object
    scaled: bool
    word_width: int       # bits per lane of an h memory word
    c_width: int          # bits of the per-spike factor kept per slot (C_t or j_t)
    c_identity: int       # its value for the first pass of an IP
    c_last: int | None    # scaled: C_{T-1} (uq2.Fc), applied by FinalScale

    def c_port(self):
        """The lanes' input for the per-spike factor (``C`` or ``j``)."""
        return self.upd.j if self.scaled else self.upd.C


def update_units(dp, w_format, lanes: int, T: int, schedule) -> UpdateUnits:
    """The update units of an engine core (see module docstring); ValueError for other updates."""
    check_layer_datapath(dp, "EngineCore")
    if dp.update == "int":
        upd = UpdateLanes(dp, w_format, lanes, exp_k_early=True, ck_early=True)  # the core gives exp_K, C, K a cycle early
        return UpdateUnits(upd, ScheduleTable(dp, T, schedule), CoefficientPipe(dp), False,
                           upd.H.width, int(dp.c_bits) + 1, 1 << int(dp.c_bits), None)
    sched = ScaledScheduleTable(dp, T, schedule)
    upd = ScaledUpdateLanes(dp, w_format, lanes, sched.j_max, sched.c_last, sched.a_bits)
    return UpdateUnits(upd, sched, ScaledCoefficientPipe(dp, sched.a_bits), True, upd.out_width,
                       sched.j_width, 0, sched.c_last)


__all__ = ["UpdateUnits", "update_units"]
