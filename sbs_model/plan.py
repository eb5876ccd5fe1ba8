"""Plans for the whole-network accelerator: engine cores and lanes per SbS layer.

A plan is ``{"layers": {"<layer index>": {"lanes": L, "engines": E}, ...}}`` with an entry for every
SbS layer (``1 <= L <= 64``, ``1 <= E <= 64``).  :func:`auto_plan` chooses one that minimises the
cycles per image (:mod:`sbs_model.network_cycles`) within a device budget, with resources from
the analytic cost model (:func:`sbs_model.hwcost.unit_costs`, ECP5 target): an estimate, not a
synthesis result.  :func:`load_plan` reads and checks a plan file.

Search: start from one core of the fewest lanes per layer; repeatedly take the single change (one
layer's lanes doubled or one more core) with the largest saving of cycles per added LUT4 that keeps
the design inside the budget; stop when nothing fits or nothing saves cycles, or when the cycles
reach ``target_cycles``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from sbs_model import hwcost
from sbs_model.hwcost import Cost, HwConfig
from sbs_model.network_cycles import network_cycles

LANES = (1, 2, 4, 8, 16, 32, 64)
MAX_ENGINES = 64


@dataclass(frozen=True)
class Device:
    name: str
    lut4: int
    mult18: int
    dp16kd: int


DEVICES = {"lfe5u-85f": Device("lfe5u-85f", 83640, 156, 208),
           "lfe5u-45f": Device("lfe5u-45f", 43848, 72, 108),
           "lfe5u-25f": Device("lfe5u-25f", 24288, 28, 56)}
FILL = 0.85  # LUT4 share the planner may fill (routing needs slack)


def get_device(name: str) -> Device:
    if name not in DEVICES:
        raise ValueError(f"--device {name!r}; allowed: {', '.join(DEVICES)}")
    return DEVICES[name]


def check_plan(plan, sbs_layers) -> dict:
    """The plan as ``{int layer: {"lanes", "engines"}}``; ValueError naming the first problem."""
    if not isinstance(plan, dict) or not isinstance(plan.get("layers"), dict):
        raise ValueError('plan: expected {"layers": {"<layer>": {"lanes": L, "engines": E}}}')
    out = {}
    for key, v in plan["layers"].items():
        try:
            li = int(key)
        except ValueError:
            raise ValueError(f"plan: layer key {key!r} is not an integer") from None
        if li not in sbs_layers:
            raise ValueError(f"plan: layer {li} is not an SbS layer; SbS layers: {sorted(sbs_layers)}")
        if not isinstance(v, dict):
            raise ValueError(f"plan: layer {li}: expected {{\"lanes\": L, \"engines\": E}}")
        for name, hi in (("lanes", 64), ("engines", MAX_ENGINES)):
            x = v.get(name)
            if isinstance(x, bool) or not isinstance(x, int) or not 1 <= x <= hi:
                raise ValueError(f"plan: layer {li}: '{name}' must be an integer in 1..{hi}, got {x!r}")
        out[li] = {"lanes": v["lanes"], "engines": v["engines"]}
    missing = sorted(set(sbs_layers) - set(out))
    if missing:
        raise ValueError(f"plan: no entry for SbS layer(s) {missing}")
    return out


def load_plan(path, sbs_layers) -> dict:
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"--plan {path!r}: not a file (use 'auto' or a plan JSON file)")
    try:
        plan = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"--plan {path}: not valid JSON ({e})") from None
    return check_plan(plan, sbs_layers)


def stages(net, dps: dict, plan: dict) -> list[dict]:
    """The cycle model's stage list (:func:`sbs_model.network_cycles.network_cycles`)."""
    shapes_in, shapes = net.input_shapes(), net.shapes()
    out = []
    for i, layer in enumerate(net.layers):
        C, H, W = shapes_in[i]
        Co, X, Y = shapes[i]
        if layer.is_sbs:
            out.append({"kind": "sbs", "layer": i, "N": Co, "S": layer.window, "T": layer.spikes, "n_ip": X * Y,
                        "n_in": C * H * W, "lanes": plan[i]["lanes"], "engines": plan[i]["engines"],
                        "recip_bits": int(dps[i].recip_bits)})
        else:
            out.append({"kind": layer.kind, "layer": i, "C": C, "n_out": X * Y, "k": layer.kernel[0] * layer.kernel[1]})
    return out


def cycles(net, dps: dict, plan: dict) -> int:
    return network_cycles(stages(net, dps, plan), net.input_shape[1:])["cycles_per_image"]


def layer_cost(dp, layer, lanes: int, engines: int, T: int, index: int) -> Cost:
    """Estimated cost of one SbS layer's engine cores (ECP5, pipelined RNG)."""
    u = hwcost.unit_costs(dp, HwConfig(lanes=lanes, engines=1, target="ecp5", rng_mode="pipelined"),
                          S=layer.window, N=layer.out_channels, T=T, layer_index=index)
    core = Cost()
    for c in u.values():
        core = core + c
    return core * engines


def fmap_cost(net, dp) -> Cost:
    """Feature-map RAMs (one per layer, h codes) and the engines' input RAMs."""
    t = hwcost.get_target("ecp5")
    H = dp.formats()[1]
    total = Cost()
    for c, x, y in net.shapes():
        total = total + hwcost.memory(c * x * y * H.width, H.width, t)
    for c, x, y in net.input_shapes():
        total = total + hwcost.memory(c * x * y * H.width, H.width, t)
    return total


def plan_cost(net, dps: dict, plan: dict) -> dict:
    """``{"lut4", "ff", "mult18", "dp16kd", "per_layer": {...}}`` estimated for a plan."""
    per, total = {}, Cost()
    for i, p in plan.items():
        c = layer_cost(dps[i], net.layers[i], p["lanes"], p["engines"], net.layers[i].spikes, i)
        per[str(i)] = {"lut4": c.lut, "ff": c.ff, "mult18": c.dsp, "dp16kd": c.bram}
        total = total + c
    any_dp = dps[min(dps)]
    total = total + fmap_cost(net, any_dp)
    return {"lut4": total.lut, "ff": total.ff, "mult18": total.dsp, "dp16kd": total.bram, "per_layer": per,
            "estimate": "analytic (sbs_model.hwcost), not a synthesis result"}


def fits(cost: dict, dev: Device) -> bool:
    return cost["lut4"] <= FILL * dev.lut4 and cost["mult18"] <= dev.mult18 and cost["dp16kd"] <= dev.dp16kd


def auto_plan(net, dps: dict, device: str = "lfe5u-85f", target_cycles: int | None = None) -> dict:
    """The plan the greedy search finds (see module docstring); ValueError if even the smallest
    plan does not fit."""
    dev = get_device(device)
    sbs = [i for i, l in enumerate(net.layers) if l.is_sbs]
    plan = {i: {"lanes": 1, "engines": 1} for i in sbs}
    if not fits(plan_cost(net, dps, plan), dev):
        raise ValueError(f"--device {device}: even one core of one lane per layer does not fit "
                         f"({plan_cost(net, dps, plan)})")
    cur = cycles(net, dps, plan)
    while target_cycles is None or cur > target_cycles:
        best = None
        base_lut = plan_cost(net, dps, plan)["lut4"]
        for i in sbs:
            L, E = plan[i]["lanes"], plan[i]["engines"]
            N = net.layers[i].out_channels
            options = []
            if L < 64 and L < N:
                options.append({"lanes": min(64, L * 2), "engines": E})
            n_ip = net.shapes()[i][1] * net.shapes()[i][2]
            if E < MAX_ENGINES and E < n_ip:
                options.append({"lanes": L, "engines": E + 1})
            for opt in options:
                trial = dict(plan)
                trial[i] = opt
                cost = plan_cost(net, dps, trial)
                if not fits(cost, dev):
                    continue
                c = cycles(net, dps, trial)
                if c >= cur:
                    continue
                score = (cur - c) / max(1, cost["lut4"] - base_lut)
                if best is None or score > best[0]:
                    best = (score, trial, c)
        if best is None:
            break
        _, plan, cur = best
    return plan


def plan_json(plan: dict) -> dict:
    return {"layers": {str(i): dict(v) for i, v in sorted(plan.items())}}


__all__ = ["auto_plan", "load_plan", "check_plan", "stages", "cycles", "plan_cost", "plan_json", "DEVICES",
           "get_device"]
