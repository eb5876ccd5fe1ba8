"""bench/bench_network.py's place-and-route record: latency only from a met post-route Fmax."""
import json

import pytest

from bench.bench_network import placed_and_routed, pnr_key


def _design(tmp_path, met: bool, sha="abc", seed=1, speed=None, placer=None):
    man = {"verilog": "sbs_network.v", "verilog_sha256": "abc", "cycles_per_image": 1_500_000}
    rep = {"verilog_sha256": sha, "routed": True, "seed": seed, "router": "router2", "freq_mhz": 90.0,
           "fmax_min_mhz": 93.75 if met else 85.0, "timing_met": met,
           "utilization": {"LUT4": {"used": 60000, "available": 83640}, "PLL": {"used": 0, "available": 4}},
           "critical_path": {"delay_ns": 10.6}}
    if speed is not None:  # records from before --speed have no speed_grade
        rep["speed_grade"] = speed
    if placer is not None:  # records from before --placer have no placer
        rep["placer"] = placer
    (tmp_path / "pnr.json").write_text(json.dumps(rep))
    return man


def test_latency_is_cycles_over_met_fmax(tmp_path):
    run = placed_and_routed(tmp_path, _design(tmp_path, True))
    assert run["timing_met"] is True and run["fmax_mhz"] == 93.75
    assert run["ms_per_image"] == 16.0  # 1.5e6 cycles / 93.75 MHz
    assert run["nextpnr"]["utilisation"] == {"LUT4": 60000}


def test_no_latency_when_timing_fails(tmp_path):
    run = placed_and_routed(tmp_path, _design(tmp_path, False))
    assert run["timing_met"] is False and run["ms_per_image"] is None and "NOT met" in run["note"]


def test_report_of_other_verilog_refused(tmp_path):
    with pytest.raises(SystemExit, match="sha256 differs"):
        placed_and_routed(tmp_path, _design(tmp_path, True, sha="other"))


def test_skip_build_records_only_the_commands_it_ran(tmp_path, monkeypatch):
    """--skip-build: the design was built before; the result lists the cosim command only (no build
    command that this run did not execute)."""
    import bench.bench_network as bn

    d = tmp_path / "d"
    d.mkdir()
    man = {"plan": {"layers": {}}, "stages": [], "cycles_per_image": 7, "verilog_sha256": "abc", "input_hash": "h"}
    (d / "manifest.json").write_text(json.dumps(man))
    (d / "cosim.json").write_text(json.dumps({"equal": True, "images": 1, "cycles_per_image": 7, "accuracy": 1.0}))
    ran, written = [], {}
    monkeypatch.setattr(bn.subprocess, "call", lambda cmd: ran.append(cmd) or 0)
    monkeypatch.setattr(bn, "write_result", lambda name, results, extra: written.update(extra) or tmp_path / "r.json")
    assert bn.main(["--skip-build", "--out", str(d), "-n", "1", "--name", "x"]) == 0
    assert [c[1] for c in ran] == ["cosim"]
    assert len(written["commands"]) == 1 and written["commands"][0].startswith("sbs cosim ")
    ran.clear()
    assert bn.main(["--out", str(d), "-n", "1", "--name", "x"]) == 0  # with the build: both commands
    assert [c[1] for c in ran] == ["build", "cosim"] and len(written["commands"]) == 2


def test_seeds_of_one_design_are_separate_records(tmp_path):
    """A record replaces only the same design placed with the same seed, router, constraint and speed grade."""
    s1 = placed_and_routed(tmp_path, _design(tmp_path, True, seed=1))
    s2 = placed_and_routed(tmp_path, _design(tmp_path, True, seed=2))
    again = placed_and_routed(tmp_path, _design(tmp_path, True, seed=1))
    for r in (s1, s2, again):
        r["verilog_sha256"] = "abc"
    assert pnr_key(s1) != pnr_key(s2) and pnr_key(s1) == pnr_key(again)
    six = placed_and_routed(tmp_path, _design(tmp_path, True, seed=1, speed=6))
    eight = placed_and_routed(tmp_path, _design(tmp_path, True, seed=1, speed=8))
    for r in (six, eight):
        r["verilog_sha256"] = "abc"
    assert eight["nextpnr"]["speed_grade"] == 8 and s1["nextpnr"]["speed_grade"] == 6
    assert pnr_key(six) == pnr_key(s1) and pnr_key(eight) != pnr_key(s1)  # grade 8 is a run of its own
    heap = placed_and_routed(tmp_path, _design(tmp_path, True, seed=1, placer="heap"))
    static = placed_and_routed(tmp_path, _design(tmp_path, True, seed=1, placer="static"))
    for r in (heap, static):
        r["verilog_sha256"] = "abc"
    assert static["nextpnr"]["placer"] == "static" and s1["nextpnr"]["placer"] == "heap"
    assert pnr_key(heap) == pnr_key(s1) and pnr_key(static) != pnr_key(s1)  # another placer: a run of its own
