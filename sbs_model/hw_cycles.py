"""Cycle model of the IP engine (:class:`rtl.engine.IPEngine`), without Amaranth.

The one definition of how many clock cycles the engine spends on a spike and on an IP: the cost
model (:mod:`sbs_model.hwcost`: latency per image for every ``sbs explore`` point) and the RTL
(:mod:`rtl.engine`, whose tests check it against the simulated cycle count) both take it from here,
so the model side works where Amaranth is not installed.

Unit latencies (cycles from an input transfer to the result being valid), as built in ``rtl/``:
:data:`NORMALISER_LATENCY`, :data:`UPDATE_LATENCY`, :func:`dot_latency`, :func:`reciprocal_latency`,
:func:`sampler_latency`; the iterative spike RNG needs :data:`RNG_PERIOD` cycles per draw.
"""
from __future__ import annotations

from fixedpoint.bits import clog2
from fixedpoint.rng import ROUNDS

RNG_PERIOD = ROUNDS + 2      # iterative SpikeRandom: accept, 20 rounds, result taken -> next accept
NORMALISER_LATENCY = 2       # rtl.normaliser.Normaliser: leading-one detect, then shift
UPDATE_LATENCY = 3           # rtl.update.UpdateUnit: products, sums, encode


def dot_latency(lanes: int) -> int:
    """rtl.dot.DotProduct: decode, product, alignment + one adder-tree level per ``clog2(L)``."""
    return 3 + clog2(lanes)


def reciprocal_latency(dp) -> int:
    """rtl.reciprocal.Reciprocal: ``Qb + 2`` (restoring divider, ``div``) or ``nr_iters + 1`` (``nr``)."""
    return int(dp.recip_bits) + 2 if dp.recip_method == "div" else int(dp.nr_iters) + 1


def sampler_latency(S: int) -> int:
    """rtl.sampler.SpikeSampler: one binary-search step per index bit, plus the result cycle."""
    return max(1, clog2(S)) + 1


def engine_parts(dp, N: int, S: int, L: int) -> dict:
    """Fixed cycle counts of the engine's phases (see :func:`engine_cycles`): ``B`` beats per h row,
    an ``ignored`` and an ``accepted`` spike, the ``sampler`` latency."""
    B = -(-N // L)
    # index taken (1) + read latency (1) + B beats + dot latency + normaliser + result taken (1)
    ignored = B + dot_latency(L) + NORMALISER_LATENCY + 2
    # + reciprocal issue (1) + its latency + coefficient (1) + read latency (1) + B beats
    #   + update latency + last write (1)
    accepted = ignored + 1 + reciprocal_latency(dp) + 1 + 1 + B + UPDATE_LATENCY
    return {"B": B, "ignored": ignored, "accepted": accepted, "sampler": sampler_latency(S)}


def engine_cycles(dp, N: int, S: int, L: int, ignored) -> int:
    """Exact cycles from the job transfer to the last ``h_out`` transfer, for a given sequence of
    ignored flags (one per spike, T = its length).

    Model (cycle numbers of one IP, job transferred in cycle 0):

    * window: S values back to back, cycles 1..S; the RNG takes request 0 at ``S + 1`` and
      request k+1 one cycle after the sampler accepted draw k; a draw is ready ``RNG_PERIOD - 1``
      cycles after its request (``ROUNDS + 1``);
    * the sampler accepts draw k at ``a_k = max(draw k ready, c_{k-1} + 1)`` (``c_k``: cycle the
      engine takes index k) and shows index k at ``a_k + sampler latency``;
    * spike k starts at ``c_k = max(end of spike k-1, index k shown)`` and lasts
      ``accepted`` or ``ignored`` cycles (:func:`engine_parts`);
    * output: B beats of L codes, one code per cycle (N cycles) plus one cycle to read the first
      beat.
    """
    p = engine_parts(dp, N, S, L)
    free = S + 1                   # the cycle in which the spike loop may take index 0
    req = S + 1                    # RNG request 0
    c_prev = None
    end = free
    for flag in ignored:
        ready = req + ROUNDS + 1   # the draw's o.valid
        a = ready if c_prev is None else max(ready, c_prev + 1)
        shown = a + p["sampler"]
        c = max(end, shown)
        end = c + (p["ignored"] if flag else p["accepted"])
        req = a + 1
        c_prev = c
    return end + 1 + N - 1


def engine_latency(dp, N: int, S: int, T: int, L: int) -> int:
    """Cycles per IP (job transfer to last ``h_out`` transfer) when no spike is ignored.

    Closed form, valid when a spike takes at least ``RNG_PERIOD`` (22) cycles and at least the
    sampler latency + 1 (always true for the int presets: the reciprocal alone takes Qb + 2)::

        S + 1 + (ROUNDS + 1) + (ceil(log2 S) + 1) + T * accepted + N
        accepted = 2*B + (3 + ceil(log2 L)) + recip_latency + 10,  B = ceil(N/L)

    (window, first draw, first index, spikes, output); ``recip_latency`` is ``Qb + 2`` (``div``)
    or ``nr_iters + 1`` (``nr``).  Otherwise the exact model :func:`engine_cycles`.
    """
    p = engine_parts(dp, N, S, L)
    per_spike = p["accepted"]
    if per_spike >= max(RNG_PERIOD, p["sampler"] + 1):  # the draws never hold the spike loop back
        return S + 1 + (ROUNDS + 1) + p["sampler"] + T * per_spike + N
    return engine_cycles(dp, N, S, L, [False] * T)


def spike_cycles(dp, N: int, S: int, L: int) -> dict:
    """Cycles of one accepted / ignored spike (when the sampler keeps up)."""
    p = engine_parts(dp, N, S, L)
    return {"accepted": p["accepted"], "ignored": p["ignored"]}
