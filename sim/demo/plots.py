"""The PNG plots of ``sbs demo``: accuracy vs weight bits and analytic resources per datapath."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from sbs_model.atomic import atomic_path
from sbs_model.plotting import pyplot


def plot_accuracy(rows: list[dict], path: Path) -> bool:
    """Accuracy (percent, 95 % interval bars) vs weight bits, one marker per format; the float model
    as a dashed line with its interval band.  False when there is nothing to plot."""
    pts = [r for r in rows if r["kind"] != "float" and r.get("accuracy") is not None]
    if not pts:
        return False
    plt = pyplot()
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
    rows = cost.get("network") or []
    if not rows:
        return False
    plt = pyplot()
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
