"""SpikeSampler against :func:`fixedpoint.rng.sample_index_int`: the stimulus (:func:`stimulus`, also
used by ``tests/test_sim_sampler.py``) and the ``sbs regress`` entries."""
from __future__ import annotations

import random

from rtl.sampler import SpikeSampler, reference
from sim.regress import Entry, register
from sim.regress_units.common import DATAPATHS, datapath, stalls

SAMPLER_S = 32  # the reference network's first SbS layer has 32 neurons per window


def stimulus(dut: SpikeSampler, n_windows: int, draws_per: int, seed: int, idle: float = 0.25,
             backpressure: float = 0.25) -> dict:
    """``tb_data`` of ``sim.tb_sampler``: four corner windows (zeros, all max, one max in the middle,
    one 1 at the end) then random, sparse and h-like ones (``n_windows`` in all), each with the
    draws 0 and 2**32-1 and random ones (``draws_per``), and the model's indices."""
    S, vmax = dut.S, (1 << dut.value_width) - 1
    rng = random.Random(seed)
    windows = [[0] * S, [vmax] * S, [vmax if i == S // 2 else 0 for i in range(S)],
               [1 if i == S - 1 else 0 for i in range(S)]]
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
    return {"jobs": jobs, "index_width": dut.index_width, "idle": idle, "backpressure": backpressure}


def design_of(dpname: str):
    """(S, value_width): window values are ``floor(h * 2**sampler_frac_bits)`` <= 2**sfb."""
    return lambda fault, mode: SpikeSampler(SAMPLER_S, int(datapath(dpname).sampler_frac_bits) + 1, fault=fault)


def vectors(dut, mode: str, seed: int):
    data = stimulus(dut, {"quick": 12, "full": 200}[mode], {"quick": 40, "full": 100}[mode], seed, **stalls(mode))
    return data, sum(len(j["draws"]) for j in data["jobs"])


def register_entries() -> None:
    for dpname in DATAPATHS:
        for fault in (None, "flip_bit0") if dpname == "int-e4m1" else (None,):
            register(Entry(unit="sampler", datapath=dpname, lanes=1, toplevel="spike_sampler",
                           testbench="sim.tb_sampler", design=design_of(dpname), vectors=vectors, fault=fault,
                           note=f"SpikeSampler(S={SAMPLER_S}, sampler_frac_bits + 1) vs "
                                "fixedpoint.rng.sample_index_int"))
