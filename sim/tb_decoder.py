"""cocotb testbench for ``rtl.decoder.WeightDecoder`` (run through :func:`sim.runner.build_and_test`).

The decoder is combinational (no clock): each code is applied to ``code`` and, after 1 ns,
``sig`` and ``exp`` are read and packed as ``sig | (exp mod 2**exp_bits) << sig_bits``.
``tb_data()``: ``codes`` (every code of the format), ``expected`` (packed ``fmt.decode_parts``
results, computed by pytest), ``sig_bits``, ``exp_bits``, ``seed``.  Compared with ``==``.
"""
import time

import cocotb
from cocotb.triggers import Timer

from sim.runner import tb_data, tb_write_out
from sim.scoreboard import check


@cocotb.test()
async def every_code_vs_model(dut):
    cfg = tb_data()
    codes, expected = cfg["codes"], cfg["expected"]
    sb, eb = cfg["sig_bits"], cfg["exp_bits"]
    dut._log.info("WeightDecoder: %d codes, sig %d bits, exp %d bits", len(codes), sb, eb)
    got = []
    t0 = time.perf_counter()
    for c in codes:
        dut.code.value = c
        await Timer(1, unit="ns")
        got.append(int(dut.sig.value) | (int(dut.exp.value) << sb))
    wall = time.perf_counter() - t0
    n = check(got, expected, sb + eb, "WeightDecoder (sig, exp)")
    tb_write_out(vectors=n, seconds=wall)
    dut._log.info("%d codes equal decode_parts (%.0f codes/s)", n, n / wall)
