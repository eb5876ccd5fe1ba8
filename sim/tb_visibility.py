"""cocotb testbench of :mod:`sim.runner`'s ``visibility`` option (``tests/test_sim_runner.py``).

The design (Verilog text in the test) is ``vis_top``: input ``a``, output ``y`` = a running sum of
``a ^ 0x5a`` (register ``acc``, the XOR in submodule ``u``).  The testbench drives ``a`` (a write to
an input port), checks ``y`` against the sum computed here (a read of an output port) and records in
``tb_out.json`` which internal names the testbench can reach (``internal``: ``acc``, ``u``).
"""
import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from sim.runner import tb_data, tb_write_out


@cocotb.test()
async def ports_drive_and_sample(dut):
    values = tb_data()["values"]
    tb_write_out(internal=[name for name in ("acc", "u") if hasattr(dut, name)])
    Clock(dut.clk, 10, unit="ns").start()
    dut.a.value = 0
    dut.rst.value = 1
    await RisingEdge(dut.clk)
    dut.rst.value = 0
    want, got = 0, []
    for v in values:
        dut.a.value = v
        await RisingEdge(dut.clk)
        want = (want + (v ^ 0x5A)) & 0xFF
        await ReadOnly()
        got.append(int(dut.y.value))
        assert got[-1] == want, f"y = {got[-1]}, want {want}"
        await FallingEdge(dut.clk)
    tb_write_out(y=got)
