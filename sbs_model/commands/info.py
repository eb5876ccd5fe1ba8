"""``sbs info``: a network summary (layers, shapes, IPs, weights, multiply-adds per pattern)."""
from __future__ import annotations

from sbs_model.configs import load_network

NAME = "info"
HELP = "print a network summary: layers, output shapes, IPs, weights, multiply-adds per pattern"


def add_arguments(p):
    p.add_argument("--config", default="reference-mnist",
                   help="a built-in preset name, a native .json config, or a pytorch-sbs directory "
                        "holding network.json/def.json (default: reference-mnist)")
    p.add_argument("--spikes", type=int, default=None, help="override spikes per IP in every SbS layer")


def summary_rows(net):
    """One dict per layer: index, kind, output shape, IPs, S, weights, dot-product MACs/pattern."""
    rows = []
    for i, (layer, shape) in enumerate(zip(net.layers, net.shapes())):
        n, x, y = shape
        row = {"layer": i, "kind": layer.kind, "output": f"{n}x{x}x{y}", "ips": 0, "S": 0, "weights": 0,
               "macs": 0}
        if layer.is_sbs:
            row.update(ips=x * y, S=layer.window, weights=layer.window * n if layer.kind == "sbs" else 0,
                       macs=x * y * layer.spikes * n)
        rows.append(row)
    return rows


def run(args) -> int:
    if args.spikes is not None and args.spikes < 1:
        raise ValueError(f"--spikes must be an integer >= 1, got {args.spikes}")
    net = load_network(args.config, spikes=args.spikes)
    rows = summary_rows(net)
    print(f"network {net.name}: input {'x'.join(map(str, net.input_shape))}")
    print(f"{'#':>2} {'kind':<8} {'output':>10} {'IPs':>5} {'S':>5} {'weights':>8} {'MACs/pattern':>13}")
    for r in rows:
        print(f"{r['layer']:>2} {r['kind']:<8} {r['output']:>10} {r['ips']:>5} {r['S']:>5} {r['weights']:>8} "
              f"{r['macs']:>13,}")
    tw = sum(r["weights"] for r in rows)
    tm = sum(r["macs"] for r in rows)
    print(f"total weights {tw:,}; dot-product multiply-adds per pattern {tm:,} "
          f"(spikes per IP: {', '.join(str(l.spikes) for l in net.layers if l.is_sbs)})")
    return 0
