"""sim.runner's ``visibility`` option: only the top module's ports public to VPI ("ports", the
default: cocotb's ``--public-flat-rw`` removed, a Verilator control file instead) or every signal
("all").  The port parser and the control file are checked on Yosys-style Verilog; one tiny design is
built both ways: the same outputs, internal names reachable only with "all"."""
import pytest

from rtl.emit import to_verilog
from rtl.rng import SpikeRandom
from sim import runner
from sim.runner import build_key, ports_control_file, top_ports

VIS_TOP = """module vis_top(clk, rst, a, y);
  input clk;
  wire clk;
  input rst;
  input [7:0] a;
  output [7:0] y;
  wire [7:0] inner;
  reg [7:0] acc = 8'h00;
  sub u (.x(a), .z(inner));
  always @(posedge clk) acc <= rst ? 8'h00 : acc + inner;
  assign y = acc;
endmodule
module sub(x, z);
  input [7:0] x;
  output [7:0] z;
  assign z = x ^ 8'h5a;
endmodule
"""


def test_top_ports_of_yosys_verilog():
    assert top_ports(VIS_TOP, "vis_top") == {"clk": "input", "rst": "input", "a": "input", "y": "output"}
    assert top_ports(VIS_TOP, "sub") == {"x": "input", "z": "output"}
    text = to_verilog(SpikeRandom("pipelined"), "spike_random")
    assert top_ports(text, "spike_random") == {
        "clk": "input", "rst": "input", "i__valid": "input", "i__payload": "input", "o__ready": "input",
        "i__ready": "output", "o__valid": "output", "o__payload": "output"}
    with pytest.raises(ValueError, match="not found"):
        top_ports(VIS_TOP, "nope")
    with pytest.raises(ValueError, match="no direction"):
        top_ports(VIS_TOP.replace("  output [7:0] y;\n", ""), "vis_top")


def test_control_file_inputs_rw_outputs_rd():
    vlt = ports_control_file(VIS_TOP, "vis_top").splitlines()
    assert vlt[0] == "`verilator_config"
    body = [ln for ln in vlt[1:] if not ln.startswith("//")]
    assert sorted(body) == sorted([
        'public_flat_rw -module "vis_top" -var "clk"', 'public_flat_rw -module "vis_top" -var "rst"',
        'public_flat_rw -module "vis_top" -var "a"', 'public_flat_rd -module "vis_top" -var "y"'])


def test_build_key_holds_the_visibility_and_flags(monkeypatch):
    ok, why = runner.simulator_available("verilator")
    if not ok:
        pytest.skip(why)
    keys = {build_key(VIS_TOP, "verilator", None, v) for v in ("ports", "all")}
    monkeypatch.setattr(runner, "MAKE_FLAGS", {"OPT_FAST": "-O2"})
    keys.add(build_key(VIS_TOP, "verilator", None, "ports"))
    monkeypatch.setattr(runner, "VERILATOR_ARGS", ["-O3"])
    keys.add(build_key(VIS_TOP, "verilator", None, "ports"))
    assert len(keys) == 4


def test_bad_visibility_is_refused_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setenv("SBS_SIM_BUILD", str(tmp_path))
    with pytest.raises(ValueError, match="visibility must be one of"):
        runner.build_and_test(VIS_TOP, "vis_top", "sim.tb_visibility", visibility="some")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.verilator
def test_ports_visibility_same_outputs_no_internals():
    ok, why = runner.simulator_available("verilator")
    if not ok:
        pytest.skip(why)
    data = {"values": [3, 200, 17, 0, 255, 90, 1]}
    res = {}
    for vis in ("ports", "all"):
        r = runner.build_and_test(VIS_TOP, "vis_top", "sim.tb_visibility", data=data, seed=5, visibility=vis)
        assert r.ok, r.summary()
        res[vis] = r
    assert res["ports"].build_dir != res["all"].build_dir
    assert (res["ports"].build_dir / "vis_top_ports.vlt").is_file()
    assert not (res["all"].build_dir / "vis_top_ports.vlt").exists()
    assert res["ports"].out["y"] == res["all"].out["y"] and len(res["ports"].out["y"]) == 7
    assert res["ports"].out["internal"] == []          # only the ports: --public-flat-rw is gone
    assert res["all"].out["internal"] == ["acc", "u"]  # cocotb's default: everything public
