"""cocotb testbench for ``rtl.multiplier.ApproxMultiplier`` (run through :func:`sim.runner.build_and_test`).

Combinational unit (no clock): each vector sets ``sig_h``, ``exp_h``, ``sig_w``, ``exp_w`` and, after
1 ns, reads ``P`` and ``E``, packed as ``P | (E mod 2**e_bits) << p_bits``.  ``tb_data()``:
``vectors`` (``[sig_h, exp_h, sig_w, exp_w]`` with the exponents as two's complement bit patterns),
``expected`` (packed ``fixedpoint.product.product`` results, computed by pytest), ``p_bits``,
``e_bits``, ``seed``.  Compared with ``==``.
"""
import cocotb
from cocotb.triggers import Timer

from sim.runner import tb_data, tb_write_out
from sim.scoreboard import check


@cocotb.test()
async def vectors_vs_model(dut):
    cfg = tb_data()
    pb, eb = cfg["p_bits"], cfg["e_bits"]
    got = []
    for sh, eh, sw, ew in cfg["vectors"]:
        dut.sig_h.value = sh
        dut.exp_h.value = eh
        dut.sig_w.value = sw
        dut.exp_w.value = ew
        await Timer(1, unit="ns")
        got.append(int(dut.P.value) | (int(dut.E.value) << pb))
    n = check(got, cfg["expected"], pb + eb, "ApproxMultiplier (P, E)")
    tb_write_out(vectors=n)
    dut._log.info("%d products equal fixedpoint.product", n)
