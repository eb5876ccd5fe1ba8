"""eps / c_t / g_t schedule tables, computed once per (T, schedule) from float64.

``eps_t = eps0 / sqrt(t + 1)`` (``inv_sqrt``) or ``eps0`` (``constant``); with ``cooldown_after = k``
``eps_t /= 25`` for ``t >= k``.  ``c_t = 1 / (1 + eps_t)``, ``g_t = c_t * eps_t`` (all float64).

Integer tables: ``C_t = c_t`` in ``uq0.Fc``, ``G_t = g_t`` in ``uq0.Fg``, both encoded with the
format's exact encoder (rounding ``rne``; overflow ``saturate``, which only matters when
``c_t`` rounds to 1.0, i.e. ``eps_t < 2**-(Fc+1)``).  Each entry is within half an ulp
(``2**-(F+1)``) of the float64 value.

float32 tables (the paper's mode): ``eps32_t = float32(eps_t)``, ``c32_t = float32(c_t)``, both
rounded to nearest even from the float64 values above.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fixedpoint.formats import FixedFormat

SCHEDULES = ("inv_sqrt", "constant")


@dataclass(frozen=True)
class Schedule:
    """eps schedule of one SbS layer (same fields as ``sbs_model.network.LayerSpec``)."""

    eps0: float = 1.0
    kind: str = "inv_sqrt"
    cooldown_after: int | None = None

    def __post_init__(self):
        if not (isinstance(self.eps0, (int, float)) and 0 < self.eps0 < float("inf")):
            raise ValueError(f"schedule: field 'eps0' must be a positive finite number, got {self.eps0!r}")
        if self.kind not in SCHEDULES:
            raise ValueError(f"schedule: field 'kind' is {self.kind!r}; allowed: {', '.join(SCHEDULES)}")
        if self.cooldown_after is not None and int(self.cooldown_after) < 0:
            raise ValueError("schedule: field 'cooldown_after' must be >= 0 or None")

    @staticmethod
    def from_layer(layer) -> "Schedule":
        """From a ``LayerSpec`` (fields eps0, eps_schedule, cooldown_after).  A layer with a
        forgetting offset is refused: the integer datapath (quantized model, RTL) does not have it."""
        fo = getattr(layer, "forgetting_offset", 0)
        if fo:
            raise ValueError(f"forgetting_offset {fo:g} is implemented only by the float model; the integer "
                             f"datapath (quantized model, RTL) does not have it")
        return Schedule(float(layer.eps0), layer.eps_schedule, layer.cooldown_after)

    def eps(self, T: int) -> np.ndarray:
        """float64 eps_t for t = 0..T-1."""
        if int(T) < 1:
            raise ValueError(f"schedule: T must be >= 1, got {T}")
        t = np.arange(int(T), dtype=np.float64)
        e = self.eps0 / np.sqrt(t + 1.0) if self.kind == "inv_sqrt" else np.full(int(T), float(self.eps0))
        if self.cooldown_after is not None:
            e = np.where(t >= self.cooldown_after, e / 25.0, e)
        return e


@dataclass(frozen=True, eq=False)
class ScheduleTables:
    """Per-spike tables: float64 eps/c/g, integer C (uq0.Fc) and G (uq0.Fg), float32 eps and c."""

    eps: np.ndarray
    c: np.ndarray
    g: np.ndarray
    C: np.ndarray
    G: np.ndarray
    c_bits: int
    g_bits: int
    eps32: np.ndarray
    c32: np.ndarray


def make_tables(T: int, schedule: Schedule | None = None, c_bits: int = 16, g_bits: int = 16) -> ScheduleTables:
    """Build the tables for T spikes (``c_bits`` = Fc, ``g_bits`` = Fg, each 1..31)."""
    schedule = schedule or Schedule()
    for name, v in (("c_bits", c_bits), ("g_bits", g_bits)):
        if not 1 <= int(v) <= 31:
            raise ValueError(f"schedule: {name} {v} out of range 1..31")
    eps = schedule.eps(T)
    c = 1.0 / (1.0 + eps)
    g = c * eps
    C = FixedFormat(False, 0, int(c_bits)).encode(c, rounding="rne", overflow="saturate")
    G = FixedFormat(False, 0, int(g_bits)).encode(g, rounding="rne", overflow="saturate")
    return ScheduleTables(eps, c, g, np.asarray(C, dtype=np.int64), np.asarray(G, dtype=np.int64),
                          int(c_bits), int(g_bits), eps.astype(np.float32), c.astype(np.float32))
