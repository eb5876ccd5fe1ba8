"""Block diagram of a whole-network accelerator, drawn from its ``manifest.json`` (``sbs build``):
image in -> centre crop -> one box per layer (SbS layer engines with their engine cores E and lanes
L, pooling units) -> the feature-map RAM each layer writes -> argmax -> class out, with the
scheduler above and the debug read path below.  Every number in the picture comes from the
manifest: plan, stage cycles, memories (bits), formats, cycles per image.

:func:`draw_accelerator` writes SVG or PNG (by the suffix), atomically."""
from __future__ import annotations

from pathlib import Path

from sbs_model.atomic import atomic_path
from sbs_model.network import NetworkSpec
from sbs_model.plotting import pyplot

COLORS = {"io": "#e8e8e8", "sbs": "#cfe2f3", "pool": "#d9ead3", "ram": "#fff2cc", "sched": "#f4cccc",
          "debug": "#eeeeee", "argmax": "#ead1dc"}
W, GAP = 1.9, 0.45  # box width and the gap between boxes (data units)


def _kbit(bits: float) -> str:
    return f"{bits / 1000:,.1f} kbit" if bits < 1e6 else f"{bits / 1e6:,.2f} Mbit"


def layer_boxes(man: dict) -> list[dict]:
    """One record per layer: kind, the box text, the engines E (1 for pooling), the RAM text."""
    net = NetworkSpec.from_dict(man["network"])
    shapes = net.shapes()
    stages = {int(s["layer"]): s for s in man["stages"]}
    plan = {int(k): v for k, v in man["plan"]["layers"].items()}
    mems = man["memories"]
    h = man["formats"]["h"]
    out = []
    for i, layer in enumerate(net.layers):
        st = stages.get(i, {})
        C, X, Y = shapes[i]
        kh, kw = layer.kernel
        fmap = mems.get(f"fmap{i}", {})
        ram = f"feature map {i}\n{C}x{X}x{Y} {h}\n{_kbit(fmap.get('bits', 0))} RAM"
        if layer.is_sbs:
            p = plan[i]
            wbits = sum(m["bits"] * m.get("engines", 1) for k, m in mems.items() if k == f"layer{i}.weights")
            w_fmt = man["formats"]["weights"].get(str(i), "")
            slots = f", P = {p['slots']}" if p.get("slots") else ""  # the plan's slots, when not the fewest
            text = (f"layer {i}: SbS {kh}x{kw}\nlayer engine\nE = {p['engines']} x L = {p['lanes']} lanes{slots}\n"
                    f"N = {st.get('N', layer.out_channels)}, T = {st.get('T', layer.spikes)}\n"
                    f"weights {w_fmt}\n{_kbit(wbits)} ROM\n{st.get('cycles', 0):,} cycles")
            out.append({"kind": "sbs", "text": text, "engines": int(p["engines"]), "ram": ram})
        else:
            text = (f"layer {i}: {layer.kind}\npooling unit\n{kh}x{kw}, stride {tuple(layer.stride)[0]}\n"
                    f"{st.get('cycles', 0):,} cycles")
            out.append({"kind": "pool", "text": text, "engines": 1, "ram": ram})
    return out


def draw_accelerator(man: dict, path, title: str | None = None) -> Path:
    """Draw the accelerator of manifest ``man`` into ``path`` (``.svg`` or ``.png``); returns the path."""
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    path = Path(path)
    boxes = layer_boxes(man)
    n = len(boxes)
    step = W + GAP
    x_layers = [2 * step + k * step for k in range(n)]
    x_end = x_layers[-1] + step if n else 2 * step
    width = x_end + 2 * step - GAP
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(0.95 * width + 0.4, 5.6))
    ax.set_xlim(-0.15, width + 0.15)
    ax.set_ylim(-1.05, 5.15)
    ax.axis("off")

    def box(x, y, w, hgt, text, color, fs=7.5, lw=1.0):
        ax.add_patch(FancyBboxPatch((x, y), w, hgt, boxstyle="round,pad=0.04", fc=color, ec="black", lw=lw))
        ax.text(x + w / 2, y + hgt / 2, text, ha="center", va="center", fontsize=fs, linespacing=1.25)

    def arrow(p0, p1, color="black"):
        ax.add_patch(FancyArrowPatch(p0, p1, arrowstyle="-|>", mutation_scale=10, color=color, lw=1.1,
                                     shrinkA=0, shrinkB=0))

    y_u, h_u = 1.85, 2.0     # units row
    y_r, h_r = 0.25, 1.0     # RAM row
    crop = man["formats"].get("crop", [0, 0])
    box(0.0, y_u + 0.45, W, 1.1, "image in\n28x28 uint8\n(stream, row-major)", COLORS["io"])
    box(step, y_u + 0.45, W, 1.1, f"centre crop\n{crop[0]}x{crop[1]}\n(other pixels dropped)", COLORS["io"])
    arrow((W, y_u + 1.0), (step, y_u + 1.0))
    for k, (x, b) in enumerate(zip(x_layers, boxes)):
        for e in range(min(b["engines"], 4) - 1, 0, -1):  # engine cores drawn as a stack
            box(x + 0.07 * e, y_u + 0.07 * e, W, h_u, "", COLORS[b["kind"]])
        box(x, y_u, W, h_u, b["text"], COLORS[b["kind"]], lw=1.3 if b["kind"] == "sbs" else 1.0)
        box(x + 0.1, y_r, W - 0.2, h_r, b["ram"], COLORS["ram"], fs=7)
        arrow((x + W / 2, y_u), (x + W / 2, y_r + h_r))  # the layer writes its feature map
        if k == 0:
            arrow((step + W, y_u + 1.0), (x, y_u + 1.0))
        else:  # the previous feature map feeds this layer
            arrow((x_layers[k - 1] + W - 0.1, y_r + h_r / 2), (x, y_u + 0.3), color="#555555")
    box(x_end, y_u + 0.45, W, 1.1, "argmax\n(first on ties)", COLORS["argmax"])
    if n:
        arrow((x_layers[-1] + W - 0.1, y_r + h_r / 2), (x_end, y_u + 0.6), color="#555555")
    box(x_end + step, y_u + 0.45, W, 1.1, "class out\n(4-bit stream)", COLORS["io"])
    arrow((x_end + W, y_u + 1.0), (x_end + step, y_u + 1.0))
    T = sorted({int(s["T"]) for s in man["stages"] if s.get("kind") == "sbs"})
    box(step, 4.25, x_end + W - step, 0.55,
        f"scheduler: one image at a time, one stage per layer -- {man['cycles_per_image']:,} cycles per image "
        f"(cycle model, T = {', '.join(map(str, T))})", COLORS["sched"], fs=8)
    box(step, -0.95, x_end + W - step, 0.5, "debug read path: dbg_layer, dbg_addr -> dbg_data (every layer's codes, "
        "read by the cosimulation)", COLORS["debug"], fs=7.5)
    name = man["network"].get("name", "network")
    est = man["plan"]["estimate"]
    ax.set_title(title or (f"{man['top']}: {name}, plan {man['plan'].get('source', '')}; analytic estimate "
                           f"{est['lut4']:,} LUT4, {est['mult18']} MULT18X18D, {est['dp16kd']} DP16KD"),
                 fontsize=9)
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in ("svg", "png"):
        raise ValueError(f"diagram {path}: suffix .svg or .png, got {path.suffix!r}")
    meta = {"Date": None} if fmt == "svg" else {}
    import matplotlib

    # SVG: real text (small, searchable) and fixed element ids, so the same manifest gives the same file
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "sbs-accelerator"}), atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=110, bbox_inches="tight", metadata=meta)
    plt.close(fig)
    return path
