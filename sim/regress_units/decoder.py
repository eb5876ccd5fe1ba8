"""WeightDecoder (weight and h formats) against ``fmt.decode_parts``: the stimulus (:func:`stimulus`,
also used by ``tests/test_sim_decoder.py``) and the ``sbs regress`` entries."""
from __future__ import annotations

import random

from rtl.decoder import WeightDecoder, reference
from sim.regress import Entry, register
from sim.regress_units.common import DATAPATHS, datapath, ident, weight_format


def stimulus(dut: WeightDecoder, codes) -> dict:
    """``tb_data`` of ``sim.tb_decoder`` for ``codes``: the model's ``(sig, exp)`` packed as the
    decoder's output (exp as a bit pattern above the significand)."""
    codes = [int(c) for c in codes]
    sig, exp = reference(dut.fmt, codes)
    eb = dut.exp_shape.width
    return {"codes": codes, "sig_bits": dut.sig_bits, "exp_bits": eb,
            "expected": [a | ((b & ((1 << eb) - 1)) << dut.sig_bits) for a, b in zip(sig, exp)]}


def fmt_of(dpname: str, which: str) -> str:
    return datapath(dpname).h_format if which == "h" else weight_format(dpname)


def vectors(dut, mode: str, seed: int):
    n_codes = dut.fmt.n_codes
    if mode == "full" or n_codes <= 4096:
        codes = list(range(n_codes))
    else:  # quick: the first and last 256 codes plus random ones, shuffled
        rng = random.Random(seed)
        codes = list(range(256)) + list(range(n_codes - 256, n_codes))
        codes += rng.sample(range(256, n_codes - 256), 1500)
    random.Random(seed).shuffle(codes)
    return stimulus(dut, codes), len(codes)


def register_entries() -> None:
    for dpname in DATAPATHS:
        for which in ("w", "h"):
            fmt = fmt_of(dpname, which)
            for fault in (None, "flip_sig0") if (dpname, which) == ("int-e4m1", "w") else (None,):
                register(Entry(unit=f"decoder-{which}", datapath=dpname, lanes=1,
                               toplevel=f"weight_decoder_{ident(fmt)}" if not fault else "weight_decoder_fault",
                               testbench="sim.tb_decoder",
                               design=lambda fault, mode, fmt=fmt: WeightDecoder(fmt, fault=fault),
                               vectors=vectors, fault=fault,
                               note=f"WeightDecoder({fmt!r}) vs decode_parts (full: every code)"))
