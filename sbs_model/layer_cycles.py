"""Exact cycle model of the streaming SbS layer engine (``rtl.layer.engine.LayerEngine``).

Pure Python (no hardware library): the RTL asserts that its pipeline depths equal the constants
here, and the tests compare :func:`layer_cycles` with the simulated cycle count.

Structure (see ``docs/layer-engine.md``): an engine core keeps ``P`` IPs in flight ("slots") and
runs *passes*: one pass of an IP reads its h (``B = ceil(N/L)`` beats of ``L`` lanes), applies the
update of spike ``t-1`` and computes the dot product of spike ``t`` on the new h; the dot product
then runs through the normaliser, the reciprocal and the coefficient unit (the *chain*) and its
result must be back before the same IP's next pass.  Passes go round robin over the P slots, so
one round of all slots takes ``P*B`` cycles and

    chain latency D = FRONT + UPDATE + (DOT + ceil(log2 L)) + NORM + (Qb + RECIP) + COEF
    P >= ceil((D + B) / B)   (the fewest by default; a plan may give a core more, see core_slots)

(the coefficient of a pass is written ``D`` cycles after the pass's last beat, strictly before
the IP's next pass).  With ``L >= N`` (``B = 1``) the engine sustains one spike per cycle.

Per image: the input feature map (``n_in`` values), then ``waves = ceil(n_ip / (E*P))`` waves;
in each, every core loads the windows of its ``n_active`` IPs (``n_active * S`` cycles), starts
the spike generator and waits until its FIFO holds ``min(PRIME, T*n_active)`` indices, runs
``T + 1`` rounds (T spikes, the last round only updates), drains, and the output serialiser sends
the ``N`` codes of every IP of the wave (one per cycle, two cycles per h word to read it).  A round
is the passes of the core's ``n_active`` IPs, padded to ``D + B`` cycles when they are fewer than the
chain needs (:func:`round_cycles`; a full wave's round is ``P*B``), and the last round ends with its
last pass.
"""
from __future__ import annotations

FRONT = 4      # issue -> update input: h RAM read, coefficient select, weight read (spike t-1's row)
UPDATE = 7     # rtl.layer.update_lanes.UpdateLanes (and the scaled lanes)
DOT = 4        # rtl.layer.dot_lanes.DotLanes without its adder-tree levels
NORM = 3       # rtl.layer.norm_pipe.NormalisePipe
RECIP = 3      # rtl.layer.reciprocal_pipe.ReciprocalPipe: Qb + RECIP
COEF = 4       # rtl.layer.coefficient.CoefficientPipe
RNG = 26       # rtl.layer.threefry.ThreefryPipe: 20 rounds, 5 key injections, 1 input stage
SAMPLER = 6    # rtl.layer.sampler_pipe.PipelinedSampler: SAMPLER + STEP*ceil(log2 S)
STEP = 4       # cycles per search step of the sampler (address, memory out, registered again, compare)
PRIME = 4      # indices in the spike FIFO before a core starts its rounds
LOAD = 8       # rtl.layer.window.WindowLoader pipeline
WRITE = FRONT + UPDATE  # a beat's new h is written this many cycles after its issue
FINAL = 4      # rtl.layer.final_scale.FinalScale: the scaled update's last factor on the output stream
UPDATES = ("int", "scaled")


def clog2(n: int) -> int:
    """ceil(log2 n) for n >= 1."""
    return (int(n) - 1).bit_length()


def beats(N: int, lanes: int) -> int:
    return -(-int(N) // int(lanes))


def dot_latency(lanes: int) -> int:
    return DOT + clog2(lanes)


def chain_latency(lanes: int, recip_bits: int) -> int:
    """D: cycles from a pass's last beat to its coefficient write."""
    return FRONT + UPDATE + dot_latency(lanes) + NORM + int(recip_bits) + RECIP + COEF


def slots(N: int, lanes: int, recip_bits: int) -> int:
    """P: the fewest IPs in flight per core that cover the chain (``P*B >= D + B``)."""
    B = beats(N, lanes)
    return -(-(chain_latency(lanes, recip_bits) + B) // B)


MAX_SLOTS = 256  # slots per core a plan may ask for (a core's slot counters and memories grow with it)


def core_slots(N: int, lanes: int, recip_bits: int, n_slots: int | None = None) -> int:
    """The slots P of a core: ``n_slots`` if given (at least :func:`slots`, at most :data:`MAX_SLOTS`;
    ValueError otherwise), else :func:`slots`.  More slots than the chain needs keep every lane busy
    just the same (a round is ``P*B`` cycles of passes) and let the IPs fill the waves more evenly:
    400 IPs in waves of 24 need 17 waves, the last with 16 IPs; with 25 slots, 16 full waves."""
    lo = slots(N, lanes, recip_bits)
    if n_slots is None:
        return lo
    if isinstance(n_slots, bool) or not isinstance(n_slots, int) or not lo <= n_slots <= MAX_SLOTS:
        raise ValueError(f"slots must be an integer in {lo}..{MAX_SLOTS} (N = {N}, L = {lanes}: the chain of "
                         f"{chain_latency(lanes, recip_bits)} cycles needs at least {lo}), got {n_slots!r}")
    return n_slots


def balanced_slots(N: int, lanes: int, recip_bits: int, n_ip: int, engines: int = 1) -> list[int]:
    """Slot counts worth having: for every wave count the minimum slots allow (down to one wave), the
    fewest slots that give it (``ceil(n_ip / (E * waves))``, at least :func:`slots`, at most
    :data:`MAX_SLOTS`).  The first is :func:`slots`; each later one needs fewer waves.  With one core a
    slot count between two of these is never faster than the smaller one (same waves, and a round is
    as long as its IPs' passes or the chain); with several cores it can be by a little (the first core
    holds fewer IPs of the last wave; under 1 % in tests/test_plan.py), which the planner leaves out."""
    lo = slots(N, lanes, recip_bits)
    E, n = int(engines), int(n_ip)
    out = [lo]
    w = -(-n // (E * lo)) - 1
    while w >= 1:
        P = max(lo, -(-n // (E * w)))
        if P > MAX_SLOTS:
            break
        if P != out[-1]:
            out.append(P)
        w = -(-n // (E * P)) - 1
    return out


def round_cycles(n_active: int, N: int, lanes: int, recip_bits: int) -> int:
    """Cycles of one round of a core with ``n_active`` IPs: their passes (``n_active*B``), and at least
    ``D + B`` (a pass's coefficient is written ``D`` cycles after its last beat, before the IP's next
    pass): a core with few IPs pads the round without passes instead of running idle slots."""
    B = beats(N, lanes)
    return max(int(n_active) * B, chain_latency(lanes, recip_bits) + B)


def run_cycles(n_active: int, N: int, T: int, lanes: int, recip_bits: int) -> int:
    """Cycles of a core's rounds: T rounds of :func:`round_cycles`, then round T (update only), which
    ends with its last pass."""
    return int(T) * round_cycles(n_active, N, lanes, recip_bits) + int(n_active) * beats(N, lanes)


def spikegen_latency(S: int) -> int:
    return RNG + SAMPLER + STEP * clog2(S)


def spike_fifo_depth(latency: int) -> int:
    """Entries of a spike generator's index queue (``rtl.layer.index_fifo.IndexFifo``) for a
    request-to-queue ``latency``: a power of two covering it plus :data:`PRIME` + 10."""
    return 1 << clog2(int(latency) + 2 + PRIME + 8)


WAVE_FIXED = LOAD + WRITE + 4  # per wave: the loader pipeline, prime -> run (3: primed is registered), the
                                # drain after the last beat (WRITE + 1), the output start (1), minus the cycle
                                # the cores start in


def wave_cycles(n_core0: int, n_wave: int, N: int, S: int, T: int, lanes: int, recip_bits: int,
                n_slots: int | None = None) -> int:
    """Cycles of one wave: ``n_core0`` IPs on the first core (the most loaded), ``n_wave`` IPs in all
    cores together; from the cycle the cores start to the cycle the next wave's cores start
    (``n_slots``: the cores' P, default :func:`slots`)."""
    B = beats(N, lanes)
    core_slots(N, lanes, recip_bits, n_slots)  # ValueError for slots below the chain's
    return (int(n_core0) * int(S) + WAVE_FIXED + spikegen_latency(S) + min(PRIME, int(T) * int(n_core0))
            + run_cycles(n_core0, N, T, lanes, recip_bits) + int(n_wave) * (2 * B + int(N)))


def final_latency(update: str = "int") -> int:
    """Output latency added by the update mode: ``scaled`` sends every code through FinalScale."""
    if update not in UPDATES:
        raise ValueError(f"update must be one of {UPDATES}, got {update!r}")
    return FINAL if update == "scaled" else 0


def layer_cycles(N: int, S: int, T: int, n_ip: int, n_in: int, lanes: int, engines: int, recip_bits: int,
                 update: str = "int", n_slots: int | None = None) -> int:
    """Exact cycles of one image, from the cycle its job transfers to the cycle its last output code
    transfers, with the input always valid and the output always ready (back-to-back images take
    one cycle more each: the next job transfers in the cycle after the last code)::

        n_in + sum over waves w of ( n0_w*S + WAVE_FIXED + (RNG + SAMPLER + STEP*ceil(log2 S))
                                     + min(PRIME, T*n0_w) + T*max(n0_w*B, D+B) + n0_w*B + n_w*(2B + N) )

    with ``n_w = min(E*P, IPs left)`` the IPs of wave w and ``n0_w = min(P, n_w)`` those of its
    first core (the most loaded: its rounds are the longest, :func:`round_cycles`); plus :data:`FINAL` for the ``scaled`` update (:func:`final_latency`: the lanes run the
    same rounds, the last factor ``C_{T-1}`` is pipelined on the output stream).  ``n_slots``: P of
    every core (:func:`core_slots`; default the fewest the chain allows)."""
    P = core_slots(N, lanes, recip_bits, n_slots)
    total, left = int(n_in) + final_latency(update), int(n_ip)
    while left > 0:
        n_w = min(int(engines) * P, left)
        total += wave_cycles(min(P, n_w), n_w, N, S, T, lanes, recip_bits, P)
        left -= n_w
    return total


def spike_steps_per_cycle(N: int, S: int, T: int, n_ip: int, n_in: int, lanes: int, engines: int,
                          recip_bits: int, update: str = "int", n_slots: int | None = None) -> float:
    """Spike steps (IP x spike) per cycle over one image: at most ``engines`` when ``lanes >= N``."""
    return int(n_ip) * int(T) / layer_cycles(N, S, T, n_ip, n_in, lanes, engines, recip_bits, update, n_slots)
