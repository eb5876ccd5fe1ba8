"""The registered ``sbs regress`` entries: unit x datapath x lanes, vectors, expected values.

Each unit registers a clean entry per (datapath, lanes) and one fault-injection entry (the unit
built with its ``fault=`` flag, which the regression must detect).  Vectors are drawn from the
entry's seed (:func:`sim.regress.entry_seed`) plus fixed corner cases; expected outputs come from
the units' model functions (``rtl.<unit>.reference``, i.e. ``fixedpoint``), so the testbenches
compare RTL with the model by ``==``.  Testbenches are the units' own ``sim/tb_<unit>.py``.

One module per unit (:mod:`~sim.regress_units.rng`, ``sampler``, ``decoder``, ``multiplier``, ``dot``,
``normaliser``, ``reciprocal``, ``update``, ``engine``), each with the unit's stimulus generator
(``stimulus(dut, ...)``: inputs and the model's expected outputs as the testbench's ``tb_data``),
used by both the unit's pytest (``tests/test_sim_<unit>.py``) and its entries, and
``register_entries()``.  Every unit is registered; a missing module or testbench is an error, not a
silently smaller regression.  An entry's ``vectors(dut, mode, seed)`` gets the very component that
is then simulated (widths and latencies come from it).

Units: rng (pipelined, iterative), sampler, decoder (w and h formats), multiplier, dot (lanes 1,
4), normaliser, reciprocal, update (lanes 1, 4), engine (lanes 1, 4; plus a no-stall cycle-count
entry), engine-layer0/2/4 (--full: whole IPs of the shipped model's layers at T = 1600).
Datapaths: ``paper`` (the paper's formats of the weight/h/accumulator path; its float32
update is model-only, so reciprocal, update and engine are int-only) and ``int-e4m1`` (weights in
the scaled format of a layer with max |W| = :data:`~sim.regress_units.common.W_MAX`), plus small exhaustive designs.  Units
without datapath parameters (the RNG) register under ``any``.  Designs never depend on the seed
(the engine's weights are fixed), so their builds are cached across seeds.
"""
from __future__ import annotations

from sim.regress_units import decoder, dot, engine, multiplier, normaliser, reciprocal, rng, sampler, update

UNITS = (rng, sampler, decoder, multiplier, dot, normaliser, reciprocal, update, engine)

for _unit in UNITS:
    _unit.register_entries()
