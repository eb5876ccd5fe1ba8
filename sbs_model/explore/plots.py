"""Plots of a sweep (matplotlib, PNG and SVG), each only when the sweep has its dimension.

Accuracy is the mean over seeds, in percent; error bars are the 95 % interval of each point
(``ci95_lo``/``ci95_hi`` of results.json); the float reference is a dashed line with a grey band.

* ``bits``: accuracy vs weight bits, vs weight memory (bits x weights) and vs the analytic LUT count,
  with the Pareto frontier in the last two panels (needs >= 2 weight widths among quantized points);
* ``spikes``: accuracy vs spikes per IP, one line per format (needs >= 2 spike counts);
* ``noise``: accuracy vs input noise level, one line per format (needs >= 2 noise levels);
* ``layers``: per-layer sensitivity, one bar per (format, quantized layer) (needs points with ``layer``).

Rows used: status ``ok``; ``bits``/``spikes``/``noise`` use points with every layer quantized; ``bits``
and ``spikes`` the lowest noise level, ``bits``, ``noise`` and ``layers`` the largest spike count.
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from sbs_model.atomic import atomic_path
from sbs_model.explore.pareto import front_rows


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "sbs-explore"
    return plt


def _skey(v):
    return json.dumps(v)


def _save(fig, out: Path, name: str) -> list[Path]:
    paths = []
    for ext in ("png", "svg"):
        p = out / f"{name}.{ext}"
        with atomic_path(p) as tmp:
            fig.savefig(tmp, format=ext, dpi=110, metadata={"Date": None} if ext == "svg" else None)
        paths.append(p)
    return paths


def _yerr(rows):
    """Error bar lengths (percentage points) from the 95 % intervals; clipped at 0, because at 0 %
    or 100 % the Wilson bound rounds to just inside the accuracy and matplotlib rejects a negative
    length."""
    lo = [max(0.0, 100 * (r["accuracy"] - r["ci95_lo"])) for r in rows]
    hi = [max(0.0, 100 * (r["ci95_hi"] - r["accuracy"])) for r in rows]
    return [lo, hi]


def _float_ref(ax, rows):
    """Dashed line (and interval band) of the float reference among ``rows``, if any."""
    fl = [r for r in rows if r["float"]]
    if fl:
        r = fl[0]
        ax.axhline(100 * r["accuracy"], color="k", ls="--", lw=1, label=f"float ({100 * r['accuracy']:.2f} %)")
        ax.axhspan(100 * r["ci95_lo"], 100 * r["ci95_hi"], color="0.85", zorder=0)


def _ref_spikes(rows):
    """The reference spike count: the largest uniform one (else the first per-layer list)."""
    vals = [r["spikes"] for r in rows]
    ints = [v for v in vals if isinstance(v, int)]
    if ints:
        return max(ints)
    return vals[0] if vals else None


def select(rows, noise="min", spikes="max", layer_all=True):
    """Rows with status ok, all layers quantized (``layer_all``), at the lowest noise / largest spikes."""
    ok = [r for r in rows if r.get("status") == "ok"]
    if layer_all:
        ok = [r for r in ok if r["layer"] is None]
    if noise == "min" and ok:
        m = min(r["noise"] for r in ok)
        ok = [r for r in ok if r["noise"] == m]
    if spikes == "max" and ok:
        ref = _ref_spikes(ok)
        ok = [r for r in ok if _skey(r["spikes"]) == _skey(ref)]
    return ok


def plot_bits(rows, out: Path) -> list[Path]:
    sel = select(rows)
    q = [r for r in sel if not r["float"]]
    if len({r["weight_bits"] for r in q}) < 2:
        return []
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(16, 5), layout="constrained")
    panels = (("weight_bits", "weight bits per weight"), ("hw_weight_mem_bits", "weight memory (bits)"),
              ("hw_lut", "analytic LUTs (every layer's engines)"))
    for ax, (key, xlabel) in zip(axes, panels):
        pts = [r for r in q if r.get(key) is not None]
        _float_ref(ax, sel)
        for r in pts:
            ax.errorbar([r[key]], [100 * r["accuracy"]], yerr=_yerr([r]), fmt="o", ms=4, capsize=3)
            ax.annotate(r["label"], (r[key], 100 * r["accuracy"]), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
        if key != "weight_bits" and pts:
            fr = front_rows(pts, key)
            ax.plot([r[key] for r in fr], [100 * r["accuracy"] for r in fr], "r-", lw=1.5, label="Pareto front")
        if key == "hw_weight_mem_bits":
            ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 0))
        ax.set_xlabel(xlabel)
        ax.set_ylabel("accuracy (%)")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, loc="lower right")
    n = q[0].get("n")
    fig.suptitle(f"accuracy vs weight width / memory / logic (n = {n} images, mean over seeds, 95 % interval)")
    paths = _save(fig, out, "accuracy_vs_bits")
    plt.close(fig)
    return paths


def _lines(rows, xkey, xlabel, title, name, out: Path) -> list[Path]:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 5), layout="constrained")
    groups = defaultdict(list)
    for r in rows:
        groups[r["label"]].append(r)
    xs_all = [r[xkey] for r in rows]
    dx = 0.008 * ((max(xs_all) - min(xs_all)) or 1.0)   # small offsets keep error bars apart
    for j, (label, rs) in enumerate(groups.items()):
        rs.sort(key=lambda r: r[xkey])
        off = (j - (len(groups) - 1) / 2) * dx
        ax.errorbar([r[xkey] + off for r in rs], [100 * r["accuracy"] for r in rs], yerr=_yerr(rs), marker="o",
                    ms=4, capsize=3, label=label, ls="--" if label == "float" else "-")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    paths = _save(fig, out, name)
    plt.close(fig)
    return paths


def plot_spikes(rows, out: Path) -> list[Path]:
    sel = [r for r in select(rows, spikes=None) if isinstance(r["spikes"], int)]
    if len({r["spikes"] for r in sel}) < 2:
        return []
    return _lines(sel, "spikes", "spikes per IP (T)", "accuracy vs spikes (latency trade-off)",
                  "accuracy_vs_spikes", out)


def plot_noise(rows, out: Path) -> list[Path]:
    sel = select(rows, noise=None)
    if len({r["noise"] for r in sel}) < 2:
        return []
    return _lines(sel, "noise", "input noise level", "accuracy vs input noise (robustness)", "accuracy_vs_noise",
                  out)


def plot_layers(rows, out: Path) -> list[Path]:
    ok = [r for r in rows if r.get("status") == "ok"]
    per = [r for r in ok if r["layer"] is not None]
    if not per:
        return []
    ref = _ref_spikes(per)
    per = [r for r in per if _skey(r["spikes"]) == _skey(ref)]
    noise = min(r["noise"] for r in per)
    per = [r for r in per if r["noise"] == noise]
    base = [r for r in ok if r["layer"] is None and r["noise"] == noise and _skey(r["spikes"]) == _skey(ref)]
    labels = sorted({r["label"] for r in per})
    cats = [str(x) for x in sorted({r["layer"] for r in per})]
    if any(r["label"] in labels and not r["float"] for r in base):
        cats.append("all")
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(6, 0.75 * len(cats) * max(1, len(labels))), 5), layout="constrained")
    width = 0.8 / max(1, len(labels))
    for j, label in enumerate(labels):
        xs, ys, errs = [], [], []
        for i, c in enumerate(cats):
            rr = [r for r in (base if c == "all" else per) if r["label"] == label and not r["float"]
                  and (c == "all" or str(r["layer"]) == c)]
            if rr:
                xs.append(i + (j - (len(labels) - 1) / 2) * width)
                ys.append(100 * rr[0]["accuracy"])
                errs.append(rr[0])
        if xs:
            ax.bar(xs, ys, width=width, yerr=_yerr(errs), capsize=3, label=label)
    _float_ref(ax, base)
    ax.set_xticks(range(len(cats)))
    ax.set_xticklabels([f"layer {c}" if c != "all" else "all layers" for c in cats])
    ys_all = [100 * r["accuracy"] for r in per + base]
    ax.set_ylim(max(0.0, min(ys_all) - 5), 100.5)
    ax.set_ylabel("accuracy (%)")
    ax.set_title("per-layer sensitivity (one layer quantized, the others float)")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    paths = _save(fig, out, "layer_sensitivity")
    plt.close(fig)
    return paths


def make_plots(rows, out_dir) -> list[Path]:
    """Every plot the rows support, into ``out_dir`` (PNG + SVG); returns the written paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for fn in (plot_bits, plot_spikes, plot_noise, plot_layers):
        paths += fn(rows, out)
    return paths
