"""The registered ``sbs regress`` entries: unit x datapath x lanes, vectors, expected values.

Each unit registers a clean entry per (datapath, lanes) and one fault-injection entry (the unit
built with its ``fault=`` flag, which the regression must detect).  Vectors are drawn from the
entry's seed (:func:`sim.regress.entry_seed`) plus fixed corner cases; expected outputs come from
the units' model functions (``rtl.<unit>.reference``, i.e. ``fixedpoint``), so the testbenches
compare RTL with the model by ``==``.  Testbenches are the units' own ``sim/tb_<unit>.py``; a unit
whose testbench module is not importable yet is simply not registered.

Datapaths: ``paper`` (the paper's formats of the weight/h/accumulator path; its float32 update is
model-only, so the reciprocal is int-only) and ``int-e4m1``.  Units without datapath parameters
(the RNG) register under ``any``.
"""
from __future__ import annotations

import importlib.util
import random

from sim.regress import Entry, register

DATAPATHS = ("paper", "int-e4m1")
LANES = (1, 4)


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _dp(name: str):
    from fixedpoint.datapath import Datapath
    return Datapath.preset(name)


def _stalls(mode: str) -> dict:
    """Random idle cycles on inputs / back-pressure on outputs (the streams' protocol corners)."""
    return {"idle": 0.25, "backpressure": 0.25}


# ------------------------------------------------------------------------------ SpikeRandom

RNG_CORNERS = [(0, 0, 0, 0, 0), (0xFFFFFFFF, 0xFFFFFFFF, 255, (1 << 24) - 1, 0xFFFFFFFF),
               (1, 0, 0, 1, 0), (0, 1, 1, 0, 0xFFFFFFFF)]


def _rng_vectors(arch: str):
    def vectors(mode: str, seed: int):
        import numpy as np

        from fixedpoint.rng import ROUNDS, spike_random
        from rtl.rng import pack_request
        n = {"quick": 2000, "full": 50000}[mode] if arch == "pipelined" else \
            {"quick": 200, "full": 5000}[mode]
        rng = random.Random(seed)
        vecs = list(RNG_CORNERS)
        while len(vecs) < n:
            vecs.append((rng.getrandbits(32), rng.getrandbits(32), rng.randrange(256),
                         rng.randrange(1 << 24), rng.getrandbits(32)))
        a = np.array(vecs, dtype=np.uint64).T
        data = {"requests": [pack_request(*v) for v in vecs],
                "expected": [int(v) for v in spike_random(a[0], a[1], a[2], a[3], a[4])],
                "latency": ROUNDS if arch == "pipelined" else ROUNDS + 1, **_stalls(mode)}
        return data, n
    return vectors


def _rng_design(arch: str):
    def design(fault):
        from rtl.rng import SpikeRandom
        return SpikeRandom(arch, fault=fault)
    return design


def _register_rng() -> None:
    for arch, unit, top in (("pipelined", "rng", "spike_random"),
                            ("iterative", "rng-iter", "spike_random_it")):
        for fault in (None, "flip_bit3") if arch == "pipelined" else (None,):
            register(Entry(unit=unit, datapath="any", lanes=1, toplevel=top, testbench="sim.tb_rng",
                           design=_rng_design(arch), vectors=_rng_vectors(arch), fault=fault,
                           # the back-to-back test checks the pipelined unit's 1 draw/cycle
                           testcase=None if arch == "pipelined" and not fault
                           else "random_stream_vs_model",
                           note=f"SpikeRandom({arch!r}) vs fixedpoint.rng.spike_random"))


# ------------------------------------------------------------------------------ SpikeSampler

SAMPLER_S = 32  # the reference network's first SbS layer has 32 neurons per window


def _sampler_params(dpname: str) -> tuple[int, int]:
    """(S, value_width): window values are ``floor(h * 2**sampler_frac_bits)`` <= 2**sfb."""
    return SAMPLER_S, int(_dp(dpname).sampler_frac_bits) + 1


def _sampler_vectors(dpname: str):
    def vectors(mode: str, seed: int):
        from rtl.sampler import reference
        S, vw = _sampler_params(dpname)
        vmax = (1 << vw) - 1
        rng = random.Random(seed)
        windows = [[0] * S, [vmax] * S, [vmax if i == S // 2 else 0 for i in range(S)],
                   [1 if i == S - 1 else 0 for i in range(S)]]
        n_windows = {"quick": 12, "full": 200}[mode]
        draws_per = {"quick": 40, "full": 100}[mode]
        while len(windows) < n_windows:
            kind = rng.randrange(3)
            if kind == 0:
                windows.append([rng.randrange(vmax + 1) for _ in range(S)])
            elif kind == 1:   # sparse: most of the mass in a few entries
                windows.append([rng.choice([0, 0, 0, rng.randrange(vmax + 1)]) for _ in range(S)])
            else:             # h-like: values summing to about 2**sfb
                windows.append([rng.randrange((vmax + 1) // S * 2) for _ in range(S)])
        jobs = []
        for w in windows:
            draws = [0, (1 << 32) - 1] + [rng.getrandbits(32) for _ in range(draws_per - 2)]
            jobs.append({"values": w, "draws": draws, "expected": reference(w, draws)})
        index_width = max(1, (S - 1).bit_length())
        data = {"jobs": jobs, "index_width": index_width, **_stalls(mode)}
        return data, sum(len(j["draws"]) for j in jobs)
    return vectors


def _sampler_design(dpname: str):
    def design(fault):
        from rtl.sampler import SpikeSampler
        S, vw = _sampler_params(dpname)
        return SpikeSampler(S, vw, fault=fault)
    return design


def _register_sampler() -> None:
    for dpname in DATAPATHS:
        for fault in (None, "flip_bit0") if dpname == "int-e4m1" else (None,):
            register(Entry(unit="sampler", datapath=dpname, lanes=1, toplevel="spike_sampler",
                           testbench="sim.tb_sampler", design=_sampler_design(dpname),
                           vectors=_sampler_vectors(dpname), fault=fault,
                           note=f"SpikeSampler(S={SAMPLER_S}, sampler_frac_bits + 1) vs "
                                "fixedpoint.rng.sample_index_int"))


_register_rng()
_register_sampler()
