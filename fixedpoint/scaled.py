"""The ``scaled`` h update: per-IP scale for h, so the lanes need no multiplier for ``c_t``.

The SbS update of one accepted spike is ``h_new_i = c_t*h_i + (g_t/r)*h_i*w_i`` with
``r = sum_i h_i*w_i``, ``c_t = 1/(1+eps_t)`` and ``g_t = c_t*eps_t``.  It is homogeneous in h, so
h can be kept as ``h_t = s_t * u_t`` with a scale ``s_t`` that is the same for every IP of a layer
and known before the run (it depends only on the eps schedule):

* the lanes hold ``u`` (codes of H, the datapath's h format) and update
  ``u_new_i = (u_i + (eps_t / (s_t*r')) * u_i*w_i) * c_t*s_t/s_{t+1}`` where ``r' = sum u_i*w_i``
  is the dot product the lanes compute anyway (``r = s_t*r'``);
* ``s_{t+1} = c_t*s_t*2**j_t`` with the smallest ``j_t >= 0`` that keeps ``s_{t+1} >= M``
  (``M = 17/16``, ``s_0 = 1``), so ``s_{t+1}`` lies in ``[M, 2M)`` and the common factor
  ``c_t*s_t/s_{t+1} = 2**-j_t`` is a power of two: a shift of the sum before its rounding, no
  multiplier;
* the per-spike coefficient ``eps_t/(s_t*r')`` is ``A_t * Y`` (a schedule entry times the
  reciprocal of ``r'``), exactly as the ``int`` update's ``G_t * Y``: one scalar per spike;
* at the last spike (``t = T-1``) the factor is the real number ``c_t*s_t`` (in ``(0, 2)``) instead
  of ``2**-j_t``, so the layer's output codes are h itself (``s_T * u_T``), in H like every other
  update mode.  In hardware this is one extra pass of the lanes per IP through the multiplier that
  forms ``K * P`` (or, with a short coefficient, through its shifted adds).

Since ``u = h/s_t`` with ``s_t`` in ``[M, 2M)``, u lies in ``(h/(2M), h/M]``: H's range suffices
with a margin of ``1 - 1/M`` (the sum of h drifts a little from 1 through the roundings; with
``M = 1`` an h close to 1 would saturate H), and the cost is about one bit of H's precision.  A spike whose dot product is 0 (``A == 0``, ignored by
the other modes) still applies the factor with ``K = 0``; the IP's scale is then too small by
``c_t`` and the next spikes pull it back: the sum of h obeys ``sigma_{t+1} = c_t*sigma_t + g_t``
(contracting towards 1), exactly as in the ``int`` update.

Tables (:func:`scaled_tables`, in the ``C``/``G`` slots of :class:`fixedpoint.schedule.ScheduleTables`
so that every kernel passes them unchanged): ``C_t = 2**(Fc - j_t)`` for ``t < T-1`` and
``C_{T-1} = round(c_{T-1}*s_{T-1} * 2**Fc)`` (uq2.Fc: ``c*s < 2M``; Fc = ``c_bits``), ``A_t = eps_t/s_t`` in
``uqI.Fg`` (Fg = ``g_bits``, rne; I = 0 for ``eps0 <= 1``).  The integer step is in
:func:`fixedpoint.update.update_scaled_sums` and :meth:`fixedpoint.datapath.Datapath.step`.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from fixedpoint.formats import FixedFormat
from fixedpoint.schedule import Schedule, ScheduleTables, make_tables

MARGIN = 17.0 / 16.0  # M: the scale is renormalised into [M, 2M)


def scale_schedule(eps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """float64 ``(s, j, a, last)`` of the eps schedule: the scale ``s_t`` before spike t (in
    ``[M, 2M)`` after the first), the shift ``j_t``, the coefficient factor ``a_t = eps_t/s_t`` and the last spike's
    factor ``c_{T-1}*s_{T-1}``."""
    eps = np.asarray(eps, dtype=np.float64)
    T = eps.shape[0]
    s = np.empty(T)
    j = np.zeros(T, dtype=np.int64)
    cur = 1.0
    last = 1.0
    for t in range(T):
        s[t] = cur
        x = cur / (1.0 + float(eps[t]))
        last = x
        k = 0
        while x < MARGIN:  # x * 2**k is exact in float64
            x *= 2.0
            k += 1
        j[t] = k
        cur = x
    return s, j, eps / s, last


def scaled_tables(T: int, schedule: Schedule | None = None, c_bits: int = 16, g_bits: int = 16) -> ScheduleTables:
    """:func:`fixedpoint.schedule.make_tables` with ``C`` and ``G`` replaced by the ``scaled``
    update's ``C_t`` (uq2.Fc: powers of two, the last entry ``c*s``) and ``A_t`` (uqI.Fg)."""
    base = make_tables(T, schedule, c_bits, g_bits)
    _, j, a, last = scale_schedule(base.eps)
    if int(j.max()) > int(c_bits):
        raise ValueError(f"schedule: a scaled update needs shifts up to {int(j.max())} per spike; "
                         f"c_bits {c_bits} allows at most {c_bits} (lower eps0)")
    C = np.left_shift(np.int64(1), int(c_bits) - j)
    C[-1] = int(FixedFormat(False, 2, int(c_bits)).encode(np.array([last]), rounding="rne", overflow="saturate")[0])
    if C[-1] < 1:
        raise ValueError(f"schedule: the last spike's scale {last!r} rounds to 0 in uq2.{c_bits}")
    int_bits = max(0, math.frexp(float(a.max()))[1])  # a < 2**int_bits
    A = FixedFormat(False, int_bits, int(g_bits)).encode(a, rounding="rne", overflow="saturate")
    return dataclasses.replace(base, C=np.asarray(C, dtype=np.int64), G=np.asarray(A, dtype=np.int64))


__all__ = ["scale_schedule", "scaled_tables"]
