"""``sbs demo``: the whole co-design loop on what ships in the package.

It sits at the top of the dependency chain (it orchestrates the model, the RTL and the simulator):
:mod:`sim.demo.options` (tables, defaults, validation), :mod:`sim.demo.steps` (one function per
step), :mod:`sim.demo.network` (the whole-network steps), :mod:`sim.demo.diagram`, :mod:`sim.demo.plots`, :mod:`sim.demo.report` (report.md, summary.json, the final table) and
:mod:`sim.demo.pipeline` (:func:`run_demo`).  The model comes from :mod:`sbs_model.loader`.

Steps (each one records a status: ``passed``, ``skipped: <reason>`` or ``failed: <message>``; a
step that cannot run or fails never stops the steps after it):

1. ``float``: golden float32 :class:`sbs_model.model.Model` accuracy (Wilson 95 % interval) and
   wall-clock ms per pattern on the embedded MNIST test images (:func:`sbs_model.data.load_dataset`).
2. ``quantized``: bit-exact :class:`sbs_model.quant.QuantizedModel` (numba backend) accuracy and ms
   per pattern for the paper datapaths (:data:`~sim.demo.options.PAPER_DATAPATHS`) and the project's best integer
   datapaths (:data:`~sim.demo.options.BEST_INT_DATAPATHS`).
3. ``verilog``: :func:`rtl.generate.generate` of the IP engine of one SbS layer (default: the output
   layer) with the best integer datapath into ``OUT/verilog/`` (Verilog, hex memory images,
   ``manifest.json``); ``lint``: :func:`rtl.lint.lint` (Verilator ``--lint-only -Wall``).
4. ``regression``: the generated Verilog under cocotb + Verilator (:func:`sim.runner.build_and_test`,
   testbench ``sim.tb_engine``) on a few IPs whose integer windows come from the quantized model's
   trace of real embedded images; the final h codes must equal the model's (``==``) and the cycles
   between IPs the engine's cycle model (:func:`rtl.engine.engine_cycles`).
5. ``network`` + ``cosim`` (:mod:`sim.demo.network`): the whole-network accelerator built as ``sbs
   build`` does (:func:`rtl.network.build.build_network`, ``OUT/network/``; reused when the same
   design is there) and a few embedded test images cosimulated as ``sbs cosim`` does
   (:func:`sim.cosim.cosim`, resumable): every layer's codes, the class and the cycles ``==`` the
   model; ``network-synth`` / ``network-pnr`` (Yosys, nextpnr) only with ``--synth`` / ``--pnr``.
   :mod:`sim.demo.diagram` draws its block diagram from the manifest.
6. ``cost``: analytic estimate (:mod:`sbs_model.hwcost`) for every datapath (whole network) and for
   the generated engine; ``synth``: yosys through :mod:`rtl.synth` when the ``synth`` extra is
   installed.
7. ``report``: ``OUT/report.md``, ``OUT/summary.json`` and PNG plots, all written atomically.

Exit code (:func:`~sim.demo.steps.exit_code`): 0 when no step failed (skipped steps do not fail the run), 1 when one
did; bad input raises ``ValueError`` (the CLI's exit code 2).

Units: accuracy as a fraction in JSON (percent in the report), times in seconds / milliseconds,
memory in bits, clock in MHz, latency in clock cycles.
"""
from __future__ import annotations

from __future__ import annotations

from sbs_model.loader import default_spikes, load_model, shipped_model, shipped_model_path
from sim.demo.options import (BEST_INT_DATAPATHS, PAPER_DATAPATHS, STEPS, DemoOptions, demo_datapaths,
                              make_options, rtl_datapath)
from sim.demo.pipeline import run_demo
from sim.demo.report import build_summary, render_report, summary_table
from sim.demo.steps import Demo, StepSkipped, exit_code, synth_status, verilator_status

__all__ = ["BEST_INT_DATAPATHS", "PAPER_DATAPATHS", "STEPS", "DemoOptions", "Demo", "StepSkipped", "make_options",
           "run_demo", "shipped_model", "shipped_model_path", "load_model", "default_spikes", "exit_code",
           "summary_table", "render_report", "build_summary", "demo_datapaths", "rtl_datapath", "verilator_status",
           "synth_status"]
