"""The whole-network steps of ``sbs demo``: ``network`` (:func:`rtl.network.build.build_network`, what
``sbs build`` does, into ``OUT/network/``), ``cosim`` (:func:`sim.cosim.cosim`, what ``sbs cosim``
does: every layer's codes, the class and the cycles of a few embedded test images ``==`` the quantized
model) and, only when asked, ``network-synth`` (Yosys ``synth_ecp5`` of the whole design,
:func:`rtl.pnr.synthesise`, ``--synth``) and ``network-pnr`` (nextpnr-ecp5, :func:`rtl.pnr_seeds.pnr_seeds` with :data:`NETWORK_PNR`, ``--pnr``).

Resumable: a design already in ``OUT/network/`` whose manifest has the input hash of what would be
built (network, T, datapaths, plan, weights) and whose Verilog matches its SHA-256 is reused, and
the cosimulation runs one image per shard with ``resume``, so after Ctrl-C a second run simulates
only the images that were not finished.  Yosys / nextpnr reuse their own up-to-date results
(:mod:`rtl.pnr`)."""
from __future__ import annotations

import argparse
import json

from rtl.commands import build as build_command
from rtl.emit import design_hash
from rtl.network.build import as_float32, build_network, choose_plan, network_input_hash
from rtl.pnr import PnrUnavailable, require_tools, synthesise
from rtl.pnr_seeds import pnr_seeds
from sbs_model.atomic import write_json
from sbs_model.configs import load_network
from sbs_model.quant import QuantizedModel
from sbs_model.quant_ref import load_datapath
from sim.cosim import cosim
from sim.demo.options import NETWORK_DIR, rtl_datapath
from sim.demo.steps import Demo, StepSkipped, verilator_status

# network-pnr: the settings that routed today's plan (bench/results/network_pnr.json): router2 (router1 did
# not finish routing the shipped plan), nextpnr's static placer (the heap placer's seeds 1-3 stalled; static
# seed 1 routed at 68.91 MHz), a 66 MHz constraint, and placer seeds in turn until one meets timing
NETWORK_PNR = {"seeds": [1, 2, 3], "freq": 66.0, "router": "router2", "placer": "static"}
COSIM_FILE = "cosim.json"  # OUT/network/cosim.json: the cosim report (as sbs cosim --json)
MANIFEST_KEYS = ("top", "verilog", "verilog_sha256", "input_hash", "cycles_per_image", "plan", "stages",
                 "memories", "formats", "network", "datapaths")
COSIM_KEYS = ("images", "first", "seed", "equal", "mismatched", "first_divergence", "cycles_per_image",
              "cycles_measured", "cycles_equal", "accuracy", "correct", "images_per_second",
              "simulated_cycles_per_second", "wall_seconds", "build_seconds", "shards", "shards_kept", "reproduce",
              "reproduce_run", "waves")


def build_default_datapath() -> str:
    """The datapath ``sbs build`` uses when none is given (read from its own argument parser)."""
    p = argparse.ArgumentParser()
    build_command.add_arguments(p)
    return p.get_default("datapath")


def network_datapath(demo: Demo):
    """``(label, datapath)`` of the accelerator: ``--datapath`` if given, else ``sbs build``'s default."""
    if demo.opts.datapath is not None:
        return rtl_datapath(demo.opts)
    name = build_default_datapath()
    return name, load_datapath(name)


def network_spec(demo: Demo):
    """The network of the accelerator: the demo's, with T = ``--network-spikes`` in every SbS layer
    when given (``--quick``: a reduced T)."""
    T = demo.opts.network_spikes
    return demo.net if T is None else load_network(demo.net, spikes=T)


def spikes_text(net) -> str:
    Ts = sorted({int(net.layers[i].spikes) for i in net.sbs_layers()})
    return ", ".join(map(str, Ts))


def indent(demo: Demo):
    return lambda msg: demo.say(f"      {msg}")


def existing_design(out, input_hash: str) -> dict | None:
    """The manifest in ``out`` if it is the design of ``input_hash`` with its Verilog intact, else None."""
    try:
        man = json.loads((out / "manifest.json").read_text())
        text = (out / man["verilog"]).read_text()
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if man.get("unit") != "network" or man.get("input_hash") != input_hash or design_hash(text) != man.get(
            "verilog_sha256"):
        return None
    return man


def step_network(demo: Demo) -> None:
    o = demo.opts
    if not o.rtl:
        raise StepSkipped("--no-rtl")
    if not o.network:
        raise StepSkipped("--no-network")
    label, dp = network_datapath(demo)
    net = network_spec(demo)
    T = spikes_text(net)
    weights = as_float32(demo.weights)
    out = o.out / NETWORK_DIR
    model = QuantizedModel(net, weights, dp, seed=o.seed)
    plan, _ = choose_plan(net, model.datapaths, o.network_plan)
    man = existing_design(out, network_input_hash(net, weights, model.datapaths, plan))
    reused = man is not None
    if reused:
        demo.say(f"      {out}: the same design is already there (input hash {man['input_hash'][:12]}...), reused")
    else:
        man = build_network(net, weights, dp, out, plan=o.network_plan, seed=o.seed, progress=indent(demo))
    demo.data["network"] = {"dir": NETWORK_DIR, "datapath": label, "T": T, "reused": reused,
                            "manifest": {k: man[k] for k in MANIFEST_KEYS if k in man}}
    est = man["plan"]["estimate"]
    demo.say(f"      {man['top']}.v: {net.name}, T = {T}, datapath {label}: {man['cycles_per_image']:,} cycles per "
             f"image (cycle model); analytic {est['lut4']:,} LUT4, {est['mult18']} MULT18X18D, {est['dp16kd']} DP16KD")


def need_network(demo: Demo) -> dict:
    if not demo.opts.rtl:
        raise StepSkipped("--no-rtl")
    if not demo.opts.network:
        raise StepSkipped("--no-network")
    n = demo.data.get("network")
    if n is None:
        raise StepSkipped(f"no accelerator (network step {demo.steps.get('network', 'did not run')})")
    return n


def step_cosim(demo: Demo) -> None:
    need_network(demo)
    ok, why = verilator_status()
    if not ok:
        raise StepSkipped(f"Verilator unavailable: {why}")
    o = demo.opts
    d = o.out / NETWORK_DIR
    demo.say("      the first simulator run builds the Verilator model of the design (cached per design under "
             "build/sim/; for the whole reference network tens of minutes on a busy 2-core machine)")
    # waves=False: on a divergence the report names it with a command that simulates that image again
    # with waves (a second Verilator build of the whole design, with tracing, would cost as much again)
    rep = cosim(d, n=o.network_images, first=0, seed=o.seed, jobs=1, waves=False, progress=indent(demo),
                shard_size=1, resume=True)
    write_json(d / COSIM_FILE, rep)
    demo.data["cosim"] = dict({k: rep.get(k) for k in COSIM_KEYS}, file=f"{NETWORK_DIR}/{COSIM_FILE}")
    demo.say(f"      {rep['images']} images: equal {str(rep['equal']).lower()}, class accuracy "
             f"{100 * rep['accuracy']:.1f} % ({rep['correct']}/{rep['images']}), cycles measured "
             f"{rep['cycles_measured']} (model {rep['cycles_per_image']:,})")
    if not rep["equal"]:
        raise RuntimeError(f"RTL != model: first divergence {rep['first_divergence']} "
                           f"(reproduce: {rep.get('reproduce')})")


def step_network_synth(demo: Demo) -> None:
    if not demo.opts.synth:
        raise StepSkipped("not asked (--synth: Yosys on the whole accelerator takes tens of minutes)")
    need_network(demo)
    try:
        require_tools(("yosys",))
    except PnrUnavailable as exc:
        raise StepSkipped(str(exc)) from None
    d = demo.opts.out / NETWORK_DIR
    stamp = synthesise(d, json.loads((d / "manifest.json").read_text()), progress=indent(demo))
    y = stamp["yosys"]
    demo.data["network_synth"] = {"target": "ecp5", "lut": y["lut"], "ff": y["ff"], "dsp": y["dsp"],
                                  "bram": y["bram"], "cells": y.get("cells"), "seconds": stamp.get("seconds"),
                                  "version": stamp.get("version")}


def step_network_pnr(demo: Demo) -> None:
    if not demo.opts.pnr:
        raise StepSkipped("not asked (--pnr: Yosys + nextpnr on the whole accelerator take tens of minutes)")
    need_network(demo)
    try:
        require_tools()
    except PnrUnavailable as exc:
        raise StepSkipped(str(exc)) from None
    res = pnr_seeds(demo.opts.out / NETWORK_DIR, NETWORK_PNR["seeds"], jobs=1, freq=NETWORK_PNR["freq"],
                    router=NETWORK_PNR["router"], placer=NETWORK_PNR["placer"], until_met=True,
                    progress=indent(demo))
    sweep = res["seed_sweep"]
    util = {k: res["utilization"][k] for k in ("LUT4", "FF", "MULT18X18D", "DP16KD")
            if k in res["utilization"]}
    demo.data["network_pnr"] = {k: res.get(k) for k in (
        "device", "package", "freq_mhz", "fmax_mhz", "fmax_min_mhz", "timing_met", "cycles_per_image",
        "ms_per_image", "ms_per_image_note", "seconds", "router", "placer", "seed")}
    demo.data["network_pnr"].update(utilization=util, file=f"{NETWORK_DIR}/pnr.json",
                                    seeds_failed=[f["seed"] for f in sweep["failed"]], seeds_skipped=sweep["skipped"])
    if not demo.data.get("network_synth"):  # pnr synthesised it: its counts are the Yosys row
        y = res["yosys"]
        demo.data["network_synth"] = {"target": "ecp5", **{k: y[k] for k in ("lut", "ff", "dsp", "bram")},
                                      "seconds": res["seconds"].get("yosys")}
