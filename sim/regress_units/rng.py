"""SpikeRandom (pipelined and iterative) against :func:`fixedpoint.rng.spike_random`: the stimulus
(:func:`stimulus`, also used by ``tests/test_sim_rng.py``) and the ``sbs regress`` entries."""
from __future__ import annotations

import random

import numpy as np

from fixedpoint.rng import spike_random
from rtl.rng import SpikeRandom, pack_request
from sim.regress import Entry, register
from sim.regress_units.common import stalls

CORNERS = [(0, 0, 0, 0, 0), (0xFFFFFFFF, 0xFFFFFFFF, 255, (1 << 24) - 1, 0xFFFFFFFF),
           (1, 0, 0, 1, 0), (0, 1, 1, 0, 0xFFFFFFFF)]


def stimulus(dut: SpikeRandom, n: int, seed: int, idle: float = 0.25, backpressure: float = 0.25) -> dict:
    """``tb_data`` of ``sim.tb_rng``: the corner requests then random ones (``n`` in all) and the
    model's draws."""
    rng = random.Random(seed)
    vecs = list(CORNERS)
    while len(vecs) < n:
        vecs.append((rng.getrandbits(32), rng.getrandbits(32), rng.randrange(256),
                     rng.randrange(1 << 24), rng.getrandbits(32)))
    a = np.array(vecs, dtype=np.uint64).T
    return {"requests": [pack_request(*v) for v in vecs],
            "expected": [int(v) for v in spike_random(a[0], a[1], a[2], a[3], a[4])],
            "latency": dut.latency, "idle": idle, "backpressure": backpressure}


def vectors_of(arch: str):
    """The entry's ``vectors(dut, mode, seed)``."""
    def vectors(dut, mode: str, seed: int):
        n = {"quick": 2000, "full": 50000}[mode] if arch == "pipelined" else {"quick": 200, "full": 5000}[mode]
        return stimulus(dut, n, seed, **stalls(mode)), n
    return vectors


def register_entries() -> None:
    for arch, unit, top in (("pipelined", "rng", "spike_random"),
                            ("iterative", "rng-iter", "spike_random_it")):
        for fault in (None, "flip_bit3") if arch == "pipelined" else (None,):
            register(Entry(unit=unit, datapath="any", lanes=1, toplevel=top, testbench="sim.tb_rng",
                           design=lambda fault, mode, arch=arch: SpikeRandom(arch, fault=fault),
                           vectors=vectors_of(arch), fault=fault,
                           # the back-to-back test checks the pipelined unit's 1 draw/cycle
                           testcase=None if arch == "pipelined" and not fault
                           else "random_stream_vs_model",
                           note=f"SpikeRandom({arch!r}) vs fixedpoint.rng.spike_random"))
