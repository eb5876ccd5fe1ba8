"""``sbs demo``: load the model, check the input, then run every step in order (:func:`run_demo`)."""
from __future__ import annotations

from rtl.update import check_rtl_datapath
from sbs_model.atomic import write_json
from sbs_model.configs import load_network
from sbs_model.data import load_dataset
from sbs_model.loader import default_spikes, load_model
from sbs_model.plan import load_plan
from sim.demo import network, report, steps
from sim.demo.options import DemoOptions, rtl_datapath


def step_functions():
    """``(name, step)`` in run order; looked up at call time so a test can replace one step."""
    return (("float", steps.step_float), ("quantized", steps.step_quantized), ("verilog", steps.step_verilog),
            ("lint", steps.step_lint), ("regression", steps.step_regression), ("network", network.step_network),
            ("cosim", network.step_cosim), ("cost", steps.step_cost), ("synth", steps.step_synth),
            ("network-synth", network.step_network_synth), ("network-pnr", network.step_network_pnr),
            ("report", report.step_report))


def run_demo(opts: DemoOptions) -> steps.Demo:
    """Run every step (see :mod:`sim.demo`); returns the :class:`~sim.demo.steps.Demo` record.
    Loading the model with bad input raises ValueError before any step runs."""
    net, weights, meta = load_model(opts.weights)
    T = opts.spikes if opts.spikes is not None else default_spikes(net, meta)
    net = load_network(net, spikes=T)
    demo = steps.Demo(opts=opts, net=net, weights=weights, meta=meta)
    steps.rtl_layer(demo)  # bad --layer is bad input
    if isinstance(opts.network_plan, str) and opts.network_plan != "auto":
        load_plan(opts.network_plan, net.sbs_layers())  # a bad plan file is bad input
    if opts.datapath is not None:
        check_rtl_datapath(rtl_datapath(opts)[1], f"--datapath {opts.datapath}")
    demo.images, demo.labels = load_dataset("mnist", directory=None, split="test", n=max(opts.n, opts.quant_n))
    opts.out.mkdir(parents=True, exist_ok=True)
    demo.say(f"sbs demo: weights {meta.get('source')}, T = {T}, seed {opts.seed}, {opts.n} images (float), "
             f"{opts.quant_n} per quantized format -> {opts.out}")
    for name, fn in step_functions():
        steps.run_step(demo, name, fn)
    if demo.steps.get("report", "").startswith("failed"):
        # the report step's own failure must still reach summary.json if at all possible
        try:
            s = report.build_summary(demo)
            s["exit_code"] = steps.exit_code(demo.steps)
            write_json(opts.out / "summary.json", s)
        except Exception:
            pass
    return demo
