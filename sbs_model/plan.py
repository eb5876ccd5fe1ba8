"""Plans for the whole-network accelerator: engine cores, lanes and slots per SbS layer.

A plan is ``{"layers": {"<layer index>": {"lanes": L, "engines": E}, ...}}`` with an entry for every
SbS layer (``1 <= L <= 64``, ``1 <= E <= 64``), and optionally ``"slots": P`` (the IPs in flight
per core, :func:`sbs_model.layer_cycles.core_slots`: at least the fewest the chain needs, which is
the default; more slots give fewer, fuller waves).  :func:`auto_plan` chooses one that minimises the
cycles per image (:mod:`sbs_model.network_cycles`, exact) within a device budget, with resources
from the calibrated cost model of the streaming design (:func:`sbs_model.hwcost.network_cost`:
multipliers and block RAMs as Yosys maps them, LUT4 and FF fitted to Yosys; an estimate, not a
synthesis result).  :func:`load_plan` reads and checks a plan file.

Budget: :data:`FILL` of the device's LUT4s and flip-flops (the rest is slack for the model's error
and for routing: docs/cost-model.md gives the model's error on designs it was not fitted to), and
:data:`MULT_FILL` of its MULT18X18D and :data:`BRAM_FILL` of its DP16KD (they sit in a few columns,
and a design that fills them congests the routing there: docs/accelerator.md).

Search: exact.  The cycles per image are a sum over the stages (each SbS stage's cycles depend on
its own lanes and cores only) and every resource is a sum over the layers, so :func:`auto_plan`
lists each SbS layer's options -- lanes from 1 up the counts that save a beat (``ceil(N/L)``
falls), cores from 1 while the layer's IPs fill more waves, and for each the slot counts that need
fewer waves (:func:`sbs_model.layer_cycles.balanced_slots`) -- keeps those not dominated in
(cycles, LUT4, FF, MULT18X18D, DP16KD), and combines the layers one after another, keeping after
each step only the partial plans that fit the budget and that no other partial plan dominates.
What is left at the end is every plan on the budget's Pareto front; the plan with the fewest
cycles wins (then fewer LUT4; with ``target_cycles``: the one that reaches it with the fewest
LUT4, else the fastest).  Should the partial front ever exceed :data:`MAX_FRONT` plans (a network
with many SbS layers), :func:`auto_plan` falls back to the greedy search of :func:`greedy_plan`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sbs_model import hwcost
from sbs_model import layer_cycles as lc
from sbs_model.network_cycles import network_cycles, stage_cycles

MAX_LANES = 64
MAX_ENGINES = 64
MAX_FRONT = 200_000  # partial plans the exact search keeps before it falls back to the greedy one
PLAN_FIELDS = (("lanes", MAX_LANES), ("engines", MAX_ENGINES), ("slots", lc.MAX_SLOTS))  # a plan entry's fields, bounds


@dataclass(frozen=True)
class Device:
    name: str
    lut4: int
    mult18: int
    dp16kd: int
    ff: int = 0  # flip-flops (TRELLIS_FF); 0: as many as LUT4 (an ECP5 slice has two of each)

    @property
    def ffs(self) -> int:
        return self.ff or self.lut4


DEVICES = {"lfe5u-85f": Device("lfe5u-85f", 83640, 156, 208),
           "lfe5u-45f": Device("lfe5u-45f", 43848, 72, 108),
           "lfe5u-25f": Device("lfe5u-25f", 24288, 28, 56)}
FILL = 0.75  # share of the device's LUT4s and FFs the planner may fill (model error and routing need slack)
# Shares of the device's MULT18X18D and DP16KD the planner may fill: those of the largest whole network
# measured to route on the LFE5U-85F: int-e4m1, plan 32 (P 50) / 8 (P 8) / 2 / 1, 116 multipliers and 155
# block RAMs, RTL of aa4130e (the Threefry key held: 52,167 FF), routed with seed 2 at 83.22 MHz, 17.78 ms
# per image (seed 1 did not converge: least overuse 671 wires).  The same plan at f0a666e (59,835 FF)
# did not route (2,891 wires), nor did 2x16/8/2/2 (123 and 169, 68,183 FF: 1,187 wires) or 32/8/2/2 (118
# and 156); 16/8/2/2 (86 and 145) routes at 89-101 MHz.  The shares are those counts (plus a rounding
# margin below one block), so the exact search picks that plan and nothing larger
# (bench/results/network_pnr.json).
MULT_FILL = 0.7437  # 116.0 of 156
BRAM_FILL = 0.7452  # 155.0 of 208


def get_device(name: str) -> Device:
    if name not in DEVICES:
        raise ValueError(f"--device {name!r}; allowed: {', '.join(DEVICES)}")
    return DEVICES[name]


def check_plan(plan, sbs_layers) -> dict:
    """The plan as ``{int layer: {"lanes", "engines"[, "slots"]}}``; ValueError naming the first problem
    (the lower bound of ``slots`` depends on the layer and is checked by :func:`stages`)."""
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
        out[li] = {}
        for name, hi in PLAN_FIELDS:
            if name == "slots" and name not in v:  # optional: the fewest the chain allows
                continue
            x = v.get(name)
            if isinstance(x, bool) or not isinstance(x, int) or not 1 <= x <= hi:
                raise ValueError(f"plan: layer {li}: '{name}' must be an integer in 1..{hi}, got {x!r}")
            out[li][name] = x
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
    """The cycle model's stage list (:func:`sbs_model.network_cycles.network_cycles`); ValueError if a
    layer's ``slots`` is below what its chain needs."""
    shapes_in, shapes = net.input_shapes(), net.shapes()
    out = []
    for i, layer in enumerate(net.layers):
        C, H, W = shapes_in[i]
        Co, X, Y = shapes[i]
        if layer.is_sbs:
            st = {"kind": "sbs", "layer": i, "N": Co, "S": layer.window, "T": layer.spikes, "n_ip": X * Y,
                  "n_in": C * H * W, "lanes": plan[i]["lanes"], "engines": plan[i]["engines"],
                  "recip_bits": int(dps[i].recip_bits), "update": dps[i].update}
            if plan[i].get("slots") is not None:
                try:
                    lc.core_slots(Co, plan[i]["lanes"], int(dps[i].recip_bits), plan[i]["slots"])
                except ValueError as e:
                    raise ValueError(f"plan: layer {i}: {e}") from None
                st["slots"] = plan[i]["slots"]
            out.append(st)
        else:
            out.append({"kind": layer.kind, "layer": i, "C": C, "n_out": X * Y, "k": layer.kernel[0] * layer.kernel[1]})
    return out


def cycles(net, dps: dict, plan: dict) -> int:
    return network_cycles(stages(net, dps, plan), net.input_shape[1:])["cycles_per_image"]


class _Costs:
    """Per-layer costs of the network, cached by (layer, lanes, engines)."""

    def __init__(self, net, dps):
        self.net, self.dps = net, dps
        self.ins = net.input_shapes()
        self.cache: dict = {}
        rest = hwcost.network_units(net, dps, {i: {"lanes": 1, "engines": 1} for i in net.sbs_layers()})
        self.fixed = hwcost.Cost()
        for k, c in rest.items():
            if not k.startswith("layer"):
                self.fixed = self.fixed + c

    def layer(self, i: int, lanes: int, engines: int, slots: int | None = None) -> hwcost.Cost:
        key = (i, lanes, engines, slots)
        if key not in self.cache:
            self.cache[key] = hwcost.network_engine_cost(self.dps[i], self.net.layers[i], self.ins[i], i, lanes,
                                                         engines, n_slots=slots)
        return self.cache[key]

    def total(self, plan: dict) -> hwcost.Cost:
        tot = self.fixed
        for i, p in plan.items():
            tot = tot + self.layer(i, p["lanes"], p["engines"], p.get("slots"))
        return tot


def plan_cost(net, dps: dict, plan: dict) -> dict:
    """``{"lut4", "ff", "mult18", "dp16kd", "per_layer": {...}, "parts": {...}}`` estimated for a plan
    (:func:`sbs_model.hwcost.network_cost`)."""
    c = hwcost.network_cost(net, dps, plan)
    per = {str(i): dict(zip(("lut4", "ff", "mult18", "dp16kd"), c["parts"][f"layer{i}"])) for i in plan}
    return {"lut4": c["lut4"], "lut4_placed": int(round(c["lut4"] * hwcost.NEXTPNR_LUT_FACTOR)), "ff": c["ff"],
            "mult18": c["mult18"], "dp16kd": c["dp16kd"], "per_layer": per, "parts": c["parts"],
            "estimate": "analytic (sbs_model.hwcost.network_cost, calibrated to Yosys synth_ecp5), "
                        "not a synthesis result"}


def fits(cost: dict, dev: Device) -> bool:
    """Inside the budget: :data:`MULT_FILL` of the multipliers, :data:`BRAM_FILL` of the block RAMs, :data:`FILL` of the
    LUT4s (the estimate times :data:`sbs_model.hwcost.NEXTPNR_LUT_FACTOR`: nextpnr's packed count) and
    of the FFs."""
    lut = cost.get("lut4_placed", cost["lut4"] * hwcost.NEXTPNR_LUT_FACTOR)
    return (lut <= FILL * dev.lut4 and cost["ff"] <= FILL * dev.ffs and cost["mult18"] <= MULT_FILL * dev.mult18
            and cost["dp16kd"] <= BRAM_FILL * dev.dp16kd)


def _fits(c: hwcost.Cost, dev: Device) -> bool:
    return fits({"lut4": c.lut, "ff": c.ff, "mult18": c.dsp, "dp16kd": c.bram}, dev)


def _share(d: hwcost.Cost, dev: Device) -> float:
    """The largest of the added resources as a share of the budget."""
    return max(d.lut * hwcost.NEXTPNR_LUT_FACTOR / (FILL * dev.lut4), d.ff / (FILL * dev.ffs), d.dsp / (MULT_FILL * dev.mult18),
               d.bram / (BRAM_FILL * dev.dp16kd), 1e-9)


def next_lanes(N: int, L: int) -> int | None:
    """The smallest lane count above ``L`` with fewer beats per pass (``ceil(N/L)`` falls), at most
    :data:`MAX_LANES`; None when there is none."""
    B = lc.beats(N, L)
    if B <= 1:
        return None
    L2 = -(-int(N) // (B - 1))
    return L2 if L2 <= MAX_LANES else None


def _search_setup(net, dps: dict, device: str):
    """``(device, SbS layer indices, cost cache)`` for a plan search; ValueError if even one core of
    one lane per layer does not fit the device's budget."""
    dev = get_device(device)
    sbs = [i for i, layer in enumerate(net.layers) if layer.is_sbs]
    costs = _Costs(net, dps)
    smallest = {i: {"lanes": 1, "engines": 1} for i in sbs}
    if not _fits(costs.total(smallest), dev):
        raise ValueError(f"--device {device}: even one core of one lane per layer does not fit "
                         f"({plan_cost(net, dps, smallest)})")
    return dev, sbs, costs


def auto_plan(net, dps: dict, device: str = "lfe5u-85f", target_cycles: int | None = None) -> dict:
    """The plan with the fewest cycles per image inside the budget (exact, see module docstring);
    ValueError if even the smallest plan does not fit."""
    dev, sbs, costs = _search_setup(net, dps, device)
    front = _exact_front(net, dps, dev, costs, sbs)
    if front is None:
        return greedy_plan(net, dps, device, target_cycles)
    # rows: (cycles, lut, ff, dsp, bram, plan)
    if target_cycles is not None:
        reach = [r for r in front if r[0] <= target_cycles]
        if reach:
            return min(reach, key=lambda r: (r[1], r[0]))[5]
    return min(front, key=lambda r: (r[0], r[1]))[5]


def layer_options(net, dps: dict, costs, i: int, dev: Device | None = None) -> list[tuple]:
    """SbS layer ``i``'s candidate ``(lanes, engines, slots)``: lanes 1 and every count that saves a
    beat, cores from 1 while the layer's IPs fill more waves (with ``dev``: and while the layer with
    the design's fixed parts fits the device's budget), and for each the slot counts of
    :func:`sbs_model.layer_cycles.balanced_slots` (``slots`` None: the fewest, the default); as rows
    ``(stage cycles, lut, ff, dsp, bram, lanes, engines, slots)``, the dominated ones removed."""
    N = net.layers[i].out_channels
    shapes = net.shapes()
    n_ip = shapes[i][1] * shapes[i][2]
    lanes = [1]
    while (L2 := next_lanes(N, lanes[-1])) is not None:
        lanes.append(L2)
    st = {s["layer"]: s for s in stages(net, dps, {j: {"lanes": 1, "engines": 1} for j in net.sbs_layers()})}
    rows = []
    Qb = int(dps[i].recip_bits)
    for L in lanes:
        P = lc.slots(N, L, Qb)
        E = 1
        while True:
            c = costs.layer(i, L, E)
            if dev is not None and not _fits(costs.fixed + c, dev):
                break  # more cores (or lanes) only cost more
            rows.append((stage_cycles(dict(st[i], lanes=L, engines=E)), c.lut, c.ff, c.dsp, c.bram, L, E, None))
            for P2 in lc.balanced_slots(N, L, Qb, n_ip, E)[1:]:
                c2 = costs.layer(i, L, E, P2)
                if dev is None or _fits(costs.fixed + c2, dev):
                    rows.append((stage_cycles(dict(st[i], lanes=L, engines=E, slots=P2)), c2.lut, c2.ff, c2.dsp,
                                 c2.bram, L, E, P2))
            if E >= MAX_ENGINES or E * P >= n_ip:
                break
            E += 1
    return _pareto(rows)


def _entry(lanes: int, engines: int, slots: int | None) -> dict:
    """A plan entry; ``slots`` only when not the default."""
    return {"lanes": lanes, "engines": engines} | ({} if slots is None else {"slots": slots})


def _pareto(rows: list[tuple]) -> list[tuple]:
    """The rows no other row dominates in their first five fields (all <=), the first of equal ones kept."""
    rows = sorted(rows, key=lambda r: r[:5])
    kept: list[tuple] = []
    keys = np.empty((0, 5), dtype=np.int64)
    for r in rows:
        k = np.asarray(r[:5], dtype=np.int64)
        if len(kept) and bool(np.any(np.all(keys <= k, axis=1))):
            continue
        kept.append(r)
        keys = np.vstack([keys, k])
    return kept


def _exact_front(net, dps: dict, dev: Device, costs, sbs: list):
    """Every plan on the Pareto front of (cycles, LUT4, FF, MULT18X18D, DP16KD) inside the budget, as
    rows ``(cycles, lut, ff, dsp, bram, plan)``; None when a partial front exceeds MAX_FRONT."""
    smallest = {i: {"lanes": 1, "engines": 1} for i in sbs}
    base_cycles = cycles(net, dps, smallest)
    st = {s["layer"]: s for s in stages(net, dps, smallest)}
    fx = costs.fixed
    partial = [(0, fx.lut, fx.ff, fx.dsp, fx.bram, {})]
    for i in sbs:
        c1 = stage_cycles(st[i])  # the stage's cycles in the smallest plan
        grown = []
        opts = layer_options(net, dps, costs, i, dev)
        for p in partial:
            for o in opts:
                row = (p[0] + o[0] - c1, p[1] + o[1], p[2] + o[2], p[3] + o[3], p[4] + o[4])
                if _fits(hwcost.Cost(row[1], row[2], row[3], 0, row[4]), dev):
                    grown.append(row + ({**p[5], i: _entry(o[5], o[6], o[7])},))
        partial = _pareto(grown)
        if len(partial) > MAX_FRONT:
            return None
    return [(base_cycles + r[0],) + r[1:] for r in partial]


def greedy_plan(net, dps: dict, device: str = "lfe5u-85f", target_cycles: int | None = None) -> dict:
    """The greedy search (for networks whose exact front is too large): from two starts -- one core of
    one lane per layer, and one core of the fewest lanes whose pass is no longer than the chain
    (``ceil(N/L) <= D + 1``, every slot busy) -- repeatedly take the single change (one layer's lanes
    raised to the next count that saves a beat, or one more core while the layer's IPs fill more
    waves, or the layer's slots raised to the next count of
    :func:`sbs_model.layer_cycles.balanced_slots`) that saves the most cycles per unit of the scarcest resource it uses (the largest of its
    added LUT4, FF, MULT18X18D and DP16KD as shares of the budget), among the changes that keep the
    design inside the budget; stop when nothing fits or nothing saves cycles, or when the cycles
    reach ``target_cycles``.  Keeps the plan with fewer cycles (then fewer LUT4; with
    ``target_cycles``: the one that reaches it with fewer LUT4)."""
    dev, sbs, costs = _search_setup(net, dps, device)
    smallest = {i: {"lanes": 1, "engines": 1} for i in sbs}
    busy = {i: {"lanes": _busy_lanes(net.layers[i].out_channels, int(dps[i].recip_bits)), "engines": 1} for i in sbs}
    best = None
    for start in (smallest, busy):
        if not _fits(costs.total(start), dev):
            continue
        plan = _greedy(net, dps, dev, costs, sbs, start, target_cycles)
        c = cycles(net, dps, plan)
        # without a target: fewer cycles first; with one: reaching it first, then fewer LUT4
        key = (c, costs.total(plan).lut) if target_cycles is None else (max(c - target_cycles, 0),
                                                                       costs.total(plan).lut, c)
        if best is None or key < best[0]:
            best = (key, plan)
    return best[1]


def _busy_lanes(N: int, recip_bits: int) -> int:
    """The fewest lanes whose pass (``ceil(N/L)`` beats) is no longer than the chain latency + 1."""
    L = 1
    while lc.beats(N, L) > lc.chain_latency(L, recip_bits) + 1:
        L += 1
    return L


def _greedy(net, dps: dict, dev: Device, costs, sbs: list, plan: dict, target_cycles) -> dict:
    """The greedy search of the module docstring from ``plan``."""
    plan = dict(plan)
    cur = cycles(net, dps, plan)
    shapes = net.shapes()
    while target_cycles is None or cur > target_cycles:
        best = None
        base = costs.total(plan)
        for i in sbs:
            L, E, Pp = plan[i]["lanes"], plan[i]["engines"], plan[i].get("slots")
            N = net.layers[i].out_channels
            n_ip = shapes[i][1] * shapes[i][2]
            options = []
            L2 = next_lanes(N, L)
            if L2 is not None:
                options.append({"lanes": L2, "engines": E})
            P = lc.slots(N, L, int(dps[i].recip_bits))
            if E < MAX_ENGINES and E * P < n_ip:
                options.append({"lanes": L, "engines": E + 1})
            more = [x for x in lc.balanced_slots(N, L, int(dps[i].recip_bits), n_ip, E) if x > (Pp or P)]
            if more:
                options.append(_entry(L, E, more[0]))
            for opt in options:
                trial = dict(plan)
                trial[i] = opt
                tc = costs.total(trial)
                if not _fits(tc, dev):
                    continue
                c = cycles(net, dps, trial)
                if c >= cur:
                    continue
                d = hwcost.Cost(max(tc.lut - base.lut, 0), max(tc.ff - base.ff, 0), max(tc.dsp - base.dsp, 0), 0,
                                max(tc.bram - base.bram, 0))
                score = (cur - c) / _share(d, dev)
                if best is None or score > best[0]:
                    best = (score, trial, c)
        if best is None:
            break
        _, plan, cur = best
    return plan


def plan_json(plan: dict) -> dict:
    return {"layers": {str(i): dict(v) for i, v in sorted(plan.items())}}


__all__ = ["auto_plan", "greedy_plan", "layer_options", "MAX_FRONT", "load_plan", "check_plan", "stages", "cycles", "plan_cost", "plan_json", "DEVICES",
           "get_device", "fits", "next_lanes", "FILL", "MULT_FILL", "BRAM_FILL"]
