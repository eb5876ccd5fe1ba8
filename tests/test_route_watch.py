"""The router2 watchdog of ``sbs pnr`` (rtl.route_watch): runs that routed are never stopped, runs that
did not converge are stopped where their least overuse stopped falling; a bad --route-patience exits 2;
a stalled nextpnr is terminated and ``sbs pnr`` exits 1 with one message and no pnr.json."""
import json
import sys
import time
from pathlib import Path

import pytest

import rtl.pnr as pnr_mod
from rtl.route_watch import END_GAME_FACTOR, OVERUSE_FLOOR, ROUTE_PATIENCE, RouteStalled, RouteWatch, check_patience
from sbs_model.cli import main

DATA = Path(__file__).resolve().parent / "data" / "pnr"
RUNS = json.loads((DATA / "router2_overuse.json").read_text())["runs"]


def router2_line(it: int, overuse: int) -> str:
    """A router2 iteration line as nextpnr logs it."""
    return f"Info:     iter={it} wires={1_000_000 + it} overused={overuse} overuse={overuse} archfail=NA"


def first_stop(overuse: list[int], **kw) -> tuple[int, str] | None:
    w = RouteWatch(**kw)
    w.feed("Info: Routing globals...")  # other lines are ignored
    for it, ov in enumerate(overuse, 1):
        reason = w.feed(router2_line(it, ov))
        if reason:
            return it, reason
    return None


@pytest.mark.parametrize("name", [k for k, r in RUNS.items() if r["routed"]])
def test_runs_that_routed_are_never_stopped(name):
    assert first_stop(RUNS[name]["overuse"]) is None


def test_a_run_hovering_in_the_end_game_is_stopped():
    """Static placer, seed 2: 1 wire at iteration 160, then between 1 and 66 without reaching 0."""
    it, reason = first_stop(RUNS["padck_static_seed2"]["overuse"])
    assert it == 160 + END_GAME_FACTOR * ROUTE_PATIENCE and "1 wire at iteration 160" in reason


@pytest.mark.parametrize("name, patience, stop_at, least, least_at", [
    ("e2", ROUTE_PATIENCE, 36, 1187, 26),  # logged to iteration 44, stopped by hand
    ("l32", 8, 30, 2897, 22),  # logged to iteration 31 only (stopped by hand): a shorter patience
    ("l32n_seed1", ROUTE_PATIENCE, 40, 671, 30),  # stopped by sbs pnr itself (aa4130e)
])
def test_runs_that_did_not_converge_stop_where_the_least_overuse_stopped_falling(name, patience, stop_at, least,
                                                                                  least_at):
    assert not RUNS[name]["routed"]
    it, reason = first_stop(RUNS[name]["overuse"], patience=patience)
    assert it == stop_at == least_at + patience
    assert f"{least:,} wires at iteration {least_at}" in reason and "did not converge" in reason


def test_patience_zero_never_stops_and_the_end_game_gets_more_patience():
    assert first_stop(RUNS["e2"]["overuse"], patience=0) is None
    assert first_stop(RUNS["padck_static_seed2"]["overuse"], patience=0) is None
    # below the floor a run may hold for long (the static placer's seed 1 held 14 iterations before 0)
    end = END_GAME_FACTOR * ROUTE_PATIENCE
    assert first_stop([5000, 400, OVERUSE_FLOOR - 1] + [OVERUSE_FLOOR + 50] * (end - 1)) is None
    it, reason = first_stop([5000, 400, OVERUSE_FLOOR - 1] + [OVERUSE_FLOOR + 50] * end)
    assert it == 3 + end and f"below {OVERUSE_FLOOR} wires a run gets {END_GAME_FACTOR} x the patience" in reason
    # at the floor it is stopped after `patience` iterations without a new least
    assert first_stop([5000, OVERUSE_FLOOR] + [OVERUSE_FLOOR + 1] * 40, patience=3) == (
        5, f"router2 did not converge: the least overuse, {OVERUSE_FLOOR} wires at iteration 2, did not fall in 3 "
           f"iterations (now {OVERUSE_FLOOR + 1} at iteration 5)")


@pytest.mark.parametrize("bad", [-1, 1001, 2.5, True, "10"])
def test_check_patience_names_the_option_and_the_range(bad):
    with pytest.raises(ValueError, match=r"--route-patience .* allowed: integer 0\.\.1000"):
        check_patience(bad)


@pytest.fixture
def design(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "top.v").write_text("module top(input clk, input a, output reg q); always @(posedge clk) q <= a; endmodule\n")
    (d / "manifest.json").write_text(json.dumps({"top": "top", "verilog": "top.v"}))
    return d


@pytest.mark.parametrize("value", ["-1", "1001"])
def test_bad_route_patience_exits_2_before_work(design, monkeypatch, capsys, value):
    def boom(*a, **k):
        raise AssertionError("a tool was started")
    monkeypatch.setattr(pnr_mod, "run_tool", boom)
    assert main(["pnr", str(design), "--route-patience", value]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--route-patience" in err[0] and "allowed" in err[0]


UTILISATION = ("Info: Device utilisation:\nInfo: \t        TRELLIS_FF:   64794/  83640    77%\n"
               "Info: \t      TRELLIS_COMB:   57470/  83640    68%\nInfo: \t        MULT18X18D:     123/    156    78%\n"
               "Info: Max frequency for clock '$glbnet$clk$TRELLIS_IO_IN': 71.50 MHz (FAIL at 100.00 MHz)\n"
               "Info: Routing globals...\nInfo: Running router2...\n")


def fake_nextpnr(tmp_path: Path, overuse: list[int]) -> list[str]:
    """A stand-in for nextpnr that logs (to stdout and to its ``--log`` file) a placed design's
    utilisation and ``overuse`` as router2 iterations, then hangs for a minute."""
    script = tmp_path / "fake_nextpnr.py"
    text = UTILISATION + "\n".join(router2_line(i, v) for i, v in enumerate(overuse, 1)) + "\n"
    script.write_text("import sys, time\n"
                      f"text = {text!r}\n"
                      "if '--log' in sys.argv:\n"
                      "    open(sys.argv[sys.argv.index('--log') + 1], 'w').write(text)\n"
                      "print(text, flush=True)\ntime.sleep(60)\n")
    return [sys.executable, str(script)]


@pytest.fixture
def stalling_nextpnr(tmp_path, monkeypatch):
    """nextpnr replaced by :func:`fake_nextpnr` with the overuse of the two-core run (least 1,187 wires at
    iteration 26); Yosys skipped."""
    import rtl.pnr_seeds as seeds_mod
    cmd = fake_nextpnr(tmp_path, RUNS["e2"]["overuse"])
    monkeypatch.setattr(pnr_mod, "tool_command", lambda tool: cmd)
    for mod in (pnr_mod, seeds_mod):
        monkeypatch.setattr(mod, "require_tools", lambda tools=None: None)
        monkeypatch.setattr(mod, "prepare", lambda d, m, p, progress, t: {
            "stamp": {"verilog_sha256": "abc", "yosys": {"lut": 1}}, "dsp": {}, "lpf": None})


def test_a_stalled_router2_is_terminated_and_sbs_pnr_exits_1(design, stalling_nextpnr, capsys):
    (design / "pnr.json").write_text("{}")  # an earlier run's result is not left beside this one
    t0 = time.monotonic()
    assert main(["pnr", str(design), "--router", "router2"]) == 1
    assert time.monotonic() - t0 < 30  # the fake hangs for 60 s after its lines: it was terminated
    err = capsys.readouterr().err
    assert "router2 did not converge" in err and "1,187 wires at iteration 26" in err and "--route-patience 0" in err
    assert "(estimate after placement 71.50 MHz)" in err
    assert not (design / "pnr.json").exists()
    rep = json.loads((design / "pnr-unrouted.json").read_text())
    assert rep["routed"] is False and rep["fmax_mhz"] is None and rep["ms_per_image"] is None
    rw = rep["route_watch"]
    assert (rw["least_overuse"], rw["least_at_iteration"], rw["stopped_at_iteration"]) == (1187, 26, 36)
    assert rw["overuse"] == RUNS["e2"]["overuse"][:36] and rw["iterations"] == list(range(1, 37))
    assert rep["utilization"]["LUT4"]["used"] == 57470 and rep["utilization"]["MULT18X18D"]["available"] == 156
    assert rep["verilog_sha256"] == "abc" and rep["seed"] == 1 and rep["fmax_estimate_mhz"] == {"clk": 71.5}


def test_a_later_run_removes_the_earlier_unrouted_file(design, stalling_nextpnr, monkeypatch, capsys):
    assert main(["pnr", str(design), "--router", "router2"]) == 1 and (design / "pnr-unrouted.json").is_file()
    monkeypatch.setattr(pnr_mod, "tool_command", lambda tool: [sys.executable, "-c", "raise SystemExit(3)"])
    assert main(["pnr", str(design), "--router", "router2"]) == 1  # fails otherwise: nothing of the stalled run left
    assert "exit 3" in capsys.readouterr().err and not (design / "pnr-unrouted.json").exists()


def test_a_stalled_seed_of_a_sweep_keeps_its_own_unrouted_file(design, stalling_nextpnr, capsys):
    assert main(["pnr", str(design), "--seeds", "2-3", "--router", "router2"]) == 1
    err = capsys.readouterr().err
    assert "seed(s) 2 (" in err and "3 (" in err and "did not converge" in err
    for s in (2, 3):
        assert json.loads((design / f"pnr-unrouted-seed{s}.json").read_text())["seed"] == s
    assert not (design / "pnr.json").exists() and not (design / "pnr-unrouted.json").exists()


def test_an_unrouted_run_is_recorded_without_fmax_or_latency(design, stalling_nextpnr, capsys):
    from bench.bench_network import not_routed, placed_and_routed
    assert main(["pnr", str(design), "--router", "router2"]) == 1
    man = {"verilog": "top.v", "verilog_sha256": "abc", "cycles_per_image": 1_459_235}
    run = placed_and_routed(design, man)
    assert run == not_routed(design, man)
    assert run["fmax_mhz"] is None and run["ms_per_image"] is None and run["timing_met"] is None
    assert run["nextpnr"]["routed"] is False and run["nextpnr"]["utilisation"]["LUT4"] == 57470
    assert run["nextpnr"]["route_watch"]["least_overuse"] == 1187 and "not routed" in run["note"]
    with pytest.raises(SystemExit, match="sha256 differs"):
        placed_and_routed(design, dict(man, verilog_sha256="other"))


def test_run_tool_stops_on_the_watchs_reason_only(tmp_path):
    cmd = fake_nextpnr(tmp_path, [9000, 8000, 8500, 8600])
    w = RouteWatch(patience=2)
    with pytest.raises(RouteStalled, match="8,000 wires at iteration 2"):
        pnr_mod.run_tool(cmd, tmp_path, "t", pnr_mod._NEXTPNR_PHASE, progress=None, watch=w.feed)
    assert w.trajectory == [(1, 9000), (2, 8000), (3, 8500), (4, 8600)]
    quick = tmp_path / "quick.py"
    quick.write_text(f"print({router2_line(1, 9000)!r}); print({router2_line(2, 9500)!r})\n")
    rc, tail, _ = pnr_mod.run_tool([sys.executable, str(quick)], tmp_path, "t", pnr_mod._NEXTPNR_PHASE,
                                   progress=None, watch=RouteWatch(patience=2).feed)
    assert rc == 0 and len(tail) == 2
