"""The report of ``sbs demo``: ``OUT/report.md``, ``OUT/summary.json`` (the ``report`` step) and the
short table printed at the end."""
from __future__ import annotations

import datetime as _dt
import sys

from sbs_model.atomic import write_json, write_text
from sbs_model.provenance import commit, machine
from sim.demo.options import PASSED, STEPS
from sim.demo.diagram import draw_accelerator
from sim.demo.plots import plot_accuracy, plot_resources
from sim.demo.steps import Demo, exit_code

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
                 f"L = {cfg.get('lanes', '-')} lanes, one engine per SbS layer); paper datapaths have a model-only "
                 "float32 update. Latency: cycles per image from the RTL cycle model (a time needs a post-route "
                 "Fmax, see `sbs pnr`). Each paper "
                 "format appears twice: as published (its weight encoding has no range check: weights outside "
                 "the format's range wrap) and `fit` (the project's range handling: the format fitted to each "
                 "layer, values outside it saturated).\n")
        L.append("| format | weight bits | weight memory (kbit) | accuracy (%) | 95 % interval (%) | n | ms/pattern "
                 "| LUT | FF | DSP | BRAM | cycles/image (HW) |")
        L.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            c = r.get("cost") or {}
            acc = _pct(r.get("accuracy")) if "error" not in r else "error"
            L.append(f"| {r['label']} | {r['weight_bits']} | {r['weight_memory_bits'] / 1000:,.1f} | {acc} | "
                     f"{_ci(r)} | {r.get('n', '-')} | {_num(r.get('ms_per_pattern'), '{:.1f}')} | "
                     f"{_num(c.get('lut'))} | {_num(c.get('ff'))} | {_num(c.get('dsp'))} | {_num(c.get('bram'))} | "
                     f"{_num(c.get('cycles_per_image'))} |")
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
    L += network_section(summary)
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


def network_section(summary: dict) -> list[str]:
    """The whole-network accelerator: plan, cycles, resources (analytic / Yosys / nextpnr), latency,
    cosim result and the block diagram; one status line when the step did not run."""
    steps = summary["steps"]
    nw = summary.get("network")
    L = ["## Whole-network accelerator (`sbs build` + `sbs cosim`)\n"]
    if not nw:
        L.append(f"Not built: network step {steps.get('network', 'did not run')}.\n")
        return L
    m = nw["manifest"]
    est = m["plan"]["estimate"]
    L.append(f"`{nw['dir']}/{m['verilog']}` (+ `manifest.json`, `weights.npz`): the whole network in one design, "
             f"datapath {nw['datapath']}, T = {nw['T']}, h `{m['formats']['h']}`, plan {m['plan'].get('source')}"
             f"{' (reused: the same design was already there)' if nw.get('reused') else ''}; Verilog SHA-256 "
             f"`{m['verilog_sha256'][:16]}...`.\n")
    if nw.get("diagram_svg"):
        L.append(f"![block diagram of the accelerator]({nw['diagram_svg']})\n")
    L.append("| layer | kind | engines E | lanes L | S | N | IPs | T | cycles |")
    L.append("|---|---|---|---|---|---|---|---|---|")
    for st in m["stages"]:
        if st["kind"] == "sbs":
            L.append(f"| {st['layer']} | SbS | {st['engines']} | {st['lanes']} | {st['S']} | {st['N']} | "
                     f"{st['n_ip']} | {st['T']} | {st['cycles']:,} |")
        else:
            L.append(f"| {st['layer']} | {st['kind']} | - | - | - | - | {st.get('n_out', '-')} | - | "
                     f"{st['cycles']:,} |")
    L.append(f"| **image** | | | | | | | | **{m['cycles_per_image']:,}** |")
    L.append("")
    L.append(f"Cycles per image: **{m['cycles_per_image']:,}** (the exact cycle model; the cosimulation measures "
             "them).\n")
    L.append("| resources | LUT4 | FF | MULT18X18D | DP16KD |")
    L.append("|---|---|---|---|---|")
    L.append(f"| analytic (`sbs_model.hwcost`, the planner's estimate; not a synthesis result) | {est['lut4']:,} | "
             f"{_num(est.get('ff'))} | {est['mult18']} | {est['dp16kd']} |")
    ys, pr = summary.get("network_synth"), summary.get("network_pnr")
    if ys:
        L.append(f"| Yosys `synth_ecp5` ({_num(ys.get('seconds'), '{:.0f}')} s; LUT4 counts carry cells and LUT "
                 f"RAM as LUTs) | {ys['lut']:,} | {ys['ff']:,} | {ys['dsp']} | {ys['bram']} |")
    else:
        L.append(f"| Yosys | {steps.get('network-synth', 'not run')} | | | |")
    if pr:
        u = pr["utilization"]
        cell = (lambda k: f"{u[k]['used']:,} / {u[k]['available']:,}" if k in u else "-")
        seeds = (f", {pr['placer']} placer" if pr.get("placer") else "")
        seeds += "" if pr.get("seed") is None else f", seed {pr['seed']}"
        seeds += "".join(f", seed(s) {', '.join(map(str, pr[k]))} {what}" for k, what in (
            ("seeds_failed", "not routed"), ("seeds_skipped", "not run")) if pr.get(k))
        L.append(f"| nextpnr {pr['device']} (placed{seeds}; used / available) | {cell('LUT4')} | {cell('FF')} | "
                 f"{cell('MULT18X18D')} | {cell('DP16KD')} |")
    else:
        L.append(f"| nextpnr | {steps.get('network-pnr', 'not run')} | | | |")
    L.append("")
    if pr and pr.get("ms_per_image") is not None:
        L.append(f"Latency: {m['cycles_per_image']:,} cycles / post-route Fmax {pr['fmax_min_mhz']:.2f} MHz "
                 f"(constraint {pr['freq_mhz']:g} MHz, timing met) = **{pr['ms_per_image']:.3f} ms per image**.\n")
    else:
        why = (pr or {}).get("ms_per_image_note") or "no place and route in this run (--pnr)"
        L.append(f"Latency: no ms per image is quoted ({why}); a latency is the cycles above divided by a post-route "
                 "Fmax with timing met (`sbs pnr`).\n")
    cs = summary.get("cosim")
    if cs:
        L.append("| cosim (cocotb + Verilator) | images | equal (every code of every layer, class, cycles) | "
                 "mismatched | class accuracy | cycles measured | images/s simulated |")
        L.append("|---|---|---|---|---|---|---|")
        L.append(f"| `{cs['file']}` | {cs['images']} | **{str(cs['equal']).lower()}** | {cs['mismatched']} | "
                 f"{_pct(cs['accuracy'])} % ({cs['correct']}/{cs['images']}) | "
                 f"{', '.join(f'{c:,}' for c in cs['cycles_measured'])} | "
                 f"{_num(cs.get('images_per_second'), '{:.3g}')} |")
        L.append("")
        if cs.get("first_divergence"):
            L.append(f"First divergence: `{cs['first_divergence']}`; reproduce: `{cs.get('reproduce')}`.\n")
        L.append(f"Result: {steps.get('cosim')}; {cs.get('shards_kept', 0)} of {cs.get('shards')} images were "
                 "finished by an earlier run (resumed).\n")
    else:
        L.append(f"Cosimulation: {steps.get('cosim', 'did not run')}.\n")
    return L


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
    for k in ("verilog", "regression", "network", "cosim", "network_synth", "network_pnr", "cost", "synth",
              "plots", "errors"):
        if k in demo.data:
            out[k] = demo.data[k]
    return out


def step_report(demo: Demo) -> None:
    out = demo.opts.out
    plots, problems = {}, []
    for key, name, make in (("accuracy_png", "accuracy_vs_bits.png", lambda p: plot_accuracy(accuracy_rows(demo), p)),
                            ("resources_png", "resources.png", lambda p: plot_resources(demo.data.get("cost", {}), p))):
        try:  # a plot that fails must not cost the tables
            if make(out / name):
                plots[key] = name
        except Exception as exc:
            problems.append(f"plot {name}: {type(exc).__name__}: {exc}")
    nw = demo.data.get("network")
    if nw:
        for key, name in (("diagram_svg", "accelerator.svg"), ("diagram_png", "accelerator.png")):
            try:
                draw_accelerator(nw["manifest"], out / name)
                nw[key] = plots[key] = name
            except Exception as exc:
                problems.append(f"diagram {name}: {type(exc).__name__}: {exc}")
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
    lines = [f"{'step':<13} status"]
    for k in STEPS:
        lines.append(f"{k:<13} {demo.steps.get(k, 'not run')}")
    rows = accuracy_rows(demo)
    if rows:
        w = max([11] + [len(r["label"]) for r in rows])
        lines.append("")
        lines.append(f"{'format':<{w}} {'bits':>4} {'accuracy %':>10} {'95 % interval':>16} {'n':>5} "
                     f"{'ms/pat':>8} {'LUT':>8}")
        for r in rows:
            c = r.get("cost") or {}
            lines.append(f"{r['label']:<{w}} {r['weight_bits']:>4} {_pct(r.get('accuracy')):>10} {_ci(r):>16} "
                         f"{r.get('n', '-'):>5} {_num(r.get('ms_per_pattern'), '{:.1f}'):>8} "
                         f"{_num(c.get('lut')):>8}")
    rg = demo.data.get("regression")
    if rg:
        lines.append("")
        lines.append(f"regression: {len(rg['ips'])} IPs, {rg.get('compared')} h codes == model "
                     f"({demo.steps.get('regression')})")
    nw = demo.data.get("network")
    if nw:
        m = nw["manifest"]
        lines.append("")
        lines.append(f"accelerator (T = {nw['T']}, {nw['datapath']}): "
                     + ", ".join(f"layer {k}: E={p['engines']} L={p['lanes']}" for k, p in m["plan"]["layers"].items())
                     + f"; {m['cycles_per_image']:,} cycles per image")
        cs = demo.data.get("cosim")
        if cs:
            lines.append(f"cosim: {cs['images']} images, equal: {str(cs['equal']).lower()}, class "
                         f"{cs['correct']}/{cs['images']} ({demo.steps.get('cosim')})")
        pr = demo.data.get("network_pnr")
        if pr and pr.get("ms_per_image") is not None:
            lines.append(f"latency: {pr['ms_per_image']:.3f} ms per image (cycles / post-route Fmax "
                         f"{pr['fmax_min_mhz']:.2f} MHz, timing met)")
        else:
            lines.append("latency: no ms per image quoted (needs --pnr with timing met)")
    lines.append(f"report: {demo.opts.out / 'report.md'}")
    return "\n".join(lines)
