"""sbs pnr --seeds: the seed list parser, argument errors (exit 2 before any work), the best seed chosen
(timing met, then Fmax) with every seed's result kept, resume of an interrupted sweep, a failed seed,
seeds run in parallel, and a tool stopped from another thread."""
import json
import sys
import threading
import time
from pathlib import Path

import pytest

import rtl.pnr as pnr_mod
import rtl.pnr_seeds as pnr_seeds_mod
from rtl.pnr import Flow
from rtl.pnr_seeds import parse_seeds, pnr_seeds, rank, seed_result
from sbs_model.cli import main

DATA = Path(__file__).resolve().parent / "data" / "pnr"


@pytest.fixture
def design(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "top.v").write_text("module top(input clk, input a, output reg q); always @(posedge clk) q <= a; endmodule\n")
    (d / "manifest.json").write_text(json.dumps({"top": "top", "verilog": "top.v", "cycles_per_image": 1_000_000,
                                                 "ports": [{"name": "clk", "direction": "in", "width": 1},
                                                           {"name": "a", "direction": "in", "width": 1},
                                                           {"name": "q", "direction": "out", "width": 1}]}))
    return d


class FakeNextpnr:
    """Stands in for Yosys and nextpnr: each seed gets the Fmax of ``fmax`` (MHz), seeds in ``fail``
    exit 1; records the seeds it ran and the most runs at once."""

    def __init__(self, monkeypatch, fmax: dict, fail=(), delay: float = 0.0):
        self.fmax, self.fail, self.delay = fmax, set(fail), delay
        self.ran: list[int] = []
        self.speeds: list[int] = []  # the speed grade of each run, in the order of ``ran``
        self.placers: list[str] = []  # the placer of each run (nextpnr's heap when not given)
        self.running = self.most = 0
        self.lock = threading.Lock()
        self.synth = 0
        monkeypatch.setattr(pnr_mod, "require_tools", lambda tools=None: None)
        monkeypatch.setattr(pnr_seeds_mod, "require_tools", lambda tools=None: None)
        monkeypatch.setattr(pnr_mod, "tool_command", lambda tool: [tool])
        monkeypatch.setattr(pnr_mod, "nextpnr_version", lambda cmd: "nextpnr-test")
        monkeypatch.setattr(pnr_mod, "synthesise", self.synthesise)
        monkeypatch.setattr(pnr_mod, "run_tool", self.run_tool)

    def synthesise(self, d, manifest, progress, timeout):
        self.synth += 1
        (d / pnr_mod.NETLIST).write_text(json.dumps({"modules": {}}))
        return {"verilog_sha256": "sha-of-top", "yosys": {}}

    def run_tool(self, cmd, cwd, label, phase, progress=None, timeout=None, stop=None, **k):
        seed = int(cmd[cmd.index("--seed") + 1])
        with self.lock:
            self.speeds.append(int(cmd[cmd.index("--speed") + 1]) if "--speed" in cmd else 6)
            self.placers.append(cmd[cmd.index("--placer") + 1] if "--placer" in cmd else "heap")
            self.ran.append(seed)
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(self.delay)
        with self.lock:
            self.running -= 1
        if seed in self.fail:
            (cwd / cmd[cmd.index("--log") + 1]).write_text("ERROR: Failed to route arc 0.0 of net 'x'\n")
            return 1, ["ERROR: Failed to route arc 0.0 of net 'x'"], 1.0
        rep = json.loads((DATA / "report-engine-l5-L8.json").read_text())
        rep["fmax"] = {"$glbnet$clk": {"achieved": self.fmax[seed], "constraint": float(cmd[cmd.index("--freq") + 1])}}
        (cwd / cmd[cmd.index("--report") + 1]).write_text(json.dumps(rep))
        est = self.fmax[seed] - 5  # nextpnr's estimate after placement, before its router starts
        (cwd / cmd[cmd.index("--log") + 1]).write_text(
            f"Info: seed {seed}\nInfo: Max frequency for clock '$glbnet$clk': {est:.2f} MHz (PASS at 1.00 MHz)\n"
            f"Info: Routing globals...\nInfo: Max frequency for clock '$glbnet$clk': {self.fmax[seed]:.2f} MHz "
            f"(PASS at 1.00 MHz)\n")
        return 0, [], 1.0


def test_parse_seeds():
    assert parse_seeds("1-3,7") == [1, 2, 3, 7]
    assert parse_seeds("5") == [5]
    assert parse_seeds("2,1,2") == [2, 1]
    for bad in ("", "x", "3-1", "-1", "1-100", "1,,2"):
        with pytest.raises(ValueError, match="--seeds"):
            parse_seeds(bad)


@pytest.mark.parametrize("extra, match", [
    (["--seeds", "1-3", "--seed", "4"], "--seed"), (["--seeds", "1-3", "--place-only"], "--place-only"),
    (["--seeds", "a"], "--seeds"), (["--seeds", "1-40"], "--seeds"), (["--seeds", "1,2", "--jobs", "0"], "--jobs"),
    (["--seeds", "1,2", "--jobs", "999"], "--jobs"), (["--jobs", "2"], "--jobs"),
    (["--seeds", "1,2", "--freq", "0"], "--freq"),
])
def test_bad_arguments_exit_2_before_work(design, monkeypatch, capsys, extra, match):
    def boom(*a, **k):
        raise AssertionError("a tool was started")
    monkeypatch.setattr(pnr_mod, "run_tool", boom)
    monkeypatch.setattr(pnr_mod, "synthesise", boom)
    assert main(["pnr", str(design)] + extra) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0]
    assert not (design / "pnr.json").exists()


def test_sweep_keeps_every_seed_and_takes_the_best(design, monkeypatch, capsys):
    fake = FakeNextpnr(monkeypatch, {1: 70.0, 2: 80.5, 3: 75.25, 4: 60.0})
    assert main(["pnr", str(design), "--seeds", "1-4", "--freq", "72"]) == 0
    assert fake.synth == 1 and sorted(fake.ran) == [1, 2, 3, 4]
    res = json.loads((design / "pnr.json").read_text())
    assert res["seed"] == 2 and res["fmax_min_mhz"] == 80.5 and res["timing_met"] is True
    assert res["fmax_estimate_mhz"] == {"clk": 75.5}  # from the log, before routing
    assert [r["fmax_estimate_mhz"] for r in res["seed_sweep"]["runs"]] == [75.5, 70.25, 65.0, 55.0]
    assert res["ms_per_image"] == pytest.approx(1_000_000 / 80.5e3, abs=1e-6)
    sw = res["seed_sweep"]
    assert sw["best_seed"] == 2 and [r["seed"] for r in sw["runs"]] == [2, 3, 1, 4]
    assert sw["fmax_min_mhz_median"] == pytest.approx((70.0 + 75.25) / 2, abs=0.01)
    assert sw["timing_met_count"] == 2 and sw["fmax_min_mhz_range"] == [60.0, 80.5]
    for s in (1, 2, 3, 4):
        one = json.loads((design / seed_result(s)).read_text())
        assert one["seed"] == s and one["files"]["report"] == f"pnr-report-seed{s}.json"
        assert (design / f"pnr-nextpnr-seed{s}.log").read_text().startswith(f"Info: seed {s}\n")
    out = capsys.readouterr().out
    assert "median 72.62 MHz" in out and "pnr.json is seed 2's" in out
    assert "seed    2: 80.5 MHz, timing met, " in out and " ns critical path (estimate after placement 75.5 MHz)" in out
    assert "estimate after placement: 75.50 MHz (before routing)" in out


def test_timing_met_ranks_before_a_higher_fmax_of_an_unmet_run():
    met = {"seed": 5, "timing_met": True, "fmax_min_mhz": 70.0}
    unmet = {"seed": 1, "timing_met": False, "fmax_min_mhz": 90.0}
    assert min([unmet, met], key=rank) is met


def test_interrupted_sweep_resumes_and_settings_change_reruns(design, monkeypatch):
    fake = FakeNextpnr(monkeypatch, {1: 70.0, 2: 80.0, 3: 90.0})
    pnr_seeds(design, [1, 2], progress=None, freq=72)  # quiet
    assert fake.ran == [1, 2]
    res = pnr_seeds(design, [1, 2, 3], progress=lambda m: None, freq=72)
    assert fake.ran == [1, 2, 3] and res["seed"] == 3  # 1 and 2 taken from their files
    pnr_seeds(design, [1, 2, 3], progress=lambda m: None, freq=80)  # another constraint: all again
    assert fake.ran == [1, 2, 3, 1, 2, 3]


@pytest.mark.parametrize("flag, value, field, default, suffix, said, flow, ran_with", [
    ("--speed", "8", "speed_grade", 6, "-speed8", "LFE5U-85F-8 CABGA381", Flow(speed=8), "speeds"),
    ("--placer", "static", "placer", "heap", "-static", "placer static", Flow(placer="static"), "placers"),
])
def test_other_flow_settings_run_again_into_files_of_their_own(design, monkeypatch, capsys, flag, value, field,
                                                               default, suffix, said, flow, ran_with):
    """Another speed grade or placer is another run of each seed, kept beside the default's."""
    fake = FakeNextpnr(monkeypatch, {1: 70.0, 2: 80.0})
    other = type(default)(value)
    assert main(["pnr", str(design), "--seeds", "1,2", "--freq", "72"]) == 0
    assert main(["pnr", str(design), "--seeds", "1,2", "--freq", "72", flag, value]) == 0
    assert fake.ran == [1, 2, 1, 2] and getattr(fake, ran_with) == [default, default, other, other]
    res = json.loads((design / "pnr.json").read_text())
    assert res[field] == other and res["seed_sweep"]["runs"][0]["result"] == f"pnr-seed2{suffix}.json"
    for s in (1, 2):  # both settings' files kept side by side
        assert json.loads((design / seed_result(s)).read_text())[field] == default
        alt = json.loads((design / seed_result(s, flow)).read_text())
        assert alt[field] == other and alt["files"]["report"] == f"pnr-report-seed{s}{suffix}.json"
    assert said in capsys.readouterr().out
    assert main(["pnr", str(design), "--seeds", "1,2", "--freq", "72", flag, value]) == 0
    assert main(["pnr", str(design), "--seeds", "1,2", "--freq", "72", flag, str(default)]) == 0
    assert fake.ran == [1, 2, 1, 2]  # up to date with both settings: nothing run again


def test_a_one_seed_run_at_another_speed_grade_is_not_adopted(design, monkeypatch):
    fake = FakeNextpnr(monkeypatch, {1: 70.0})
    assert main(["pnr", str(design), "--seed", "1", "--freq", "72"]) == 0  # grade 6, in pnr.json
    assert main(["pnr", str(design), "--seeds", "1", "--freq", "72", "--speed", "8"]) == 0
    assert fake.speeds == [6, 8] and json.loads((design / "pnr.json").read_text())["speed_grade"] == 8


def test_a_failed_seed_is_named_and_the_best_routed_seed_kept(design, monkeypatch, capsys):
    FakeNextpnr(monkeypatch, {1: 70.0, 3: 75.0}, fail={2})
    assert main(["pnr", str(design), "--seeds", "1-3", "--freq", "72"]) == 0
    out = capsys.readouterr().out
    assert "seed    2: not routed (" in out and "Failed to route" in out
    res = json.loads((design / "pnr.json").read_text())
    sw = res["seed_sweep"]
    assert res["seed"] == 3 and sw["seeds"] == [1, 2, 3] and [r["seed"] for r in sw["runs"]] == [3, 1]
    assert [f["seed"] for f in sw["failed"]] == [2] and "Failed to route" in sw["failed"][0]["error"]
    assert sw["skipped"] == [] and sw["timing_met_count"] == 1
    assert (design / seed_result(1)).is_file() and (design / seed_result(3)).is_file()
    assert not (design / seed_result(2)).exists()


def test_no_seed_routed_is_an_error_and_writes_no_result(design, monkeypatch, capsys):
    FakeNextpnr(monkeypatch, {}, fail={1, 2})
    assert main(["pnr", str(design), "--seeds", "1,2", "--freq", "72"]) == 1
    err = capsys.readouterr().err
    assert "seed(s) 1 (" in err and ", 2 (" in err and "no seed routed" in err
    assert not (design / "pnr.json").exists()


def test_until_met_stops_at_the_first_seed_that_meets_timing(design, monkeypatch, capsys):
    fake = FakeNextpnr(monkeypatch, {1: 60.0, 2: 80.0, 3: 95.0, 4: 99.0})
    assert main(["pnr", str(design), "--seeds", "1-4", "--freq", "72", "--until-met"]) == 0
    assert fake.ran == [1, 2]  # seed 1 misses 72 MHz, seed 2 meets it: 3 and 4 never start
    res = json.loads((design / "pnr.json").read_text())
    assert res["seed"] == 2 and res["seed_sweep"]["skipped"] == [3, 4] and res["seed_sweep"]["until_met"] is True
    assert "seed(s) 3, 4 not started (--until-met)" in capsys.readouterr().out
    # again: seed 2's result is reused and still meets timing, so nothing runs
    assert main(["pnr", str(design), "--seeds", "1-4", "--freq", "72", "--until-met"]) == 0
    assert fake.ran == [1, 2]
    # two at a time: seeds 1 and 2 start together and both meet timing; whichever finishes first, 3 and 4
    # never start (a seed that missed timing would free its slot for seed 3 before the other finished)
    for s in (1, 2):
        (design / seed_result(s)).unlink()
    fake2 = FakeNextpnr(monkeypatch, {1: 75.0, 2: 80.0, 3: 95.0, 4: 99.0}, delay=0.3)
    res = pnr_seeds(design, [1, 2, 3, 4], jobs=2, progress=lambda m: None, freq=72, until_met=True)
    assert sorted(fake2.ran) == [1, 2] and res["seed"] == 2 and res["seed_sweep"]["skipped"] == [3, 4]


def test_until_met_needs_seeds(design, capsys):
    assert main(["pnr", str(design), "--until-met"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--until-met" in err[0]


def test_a_seed_that_stalled_with_the_same_settings_is_not_run_again(design, monkeypatch, capsys):
    """nextpnr is deterministic for a seed: a pnr-unrouted-seed<N>.json of the same Verilog, settings and
    route patience counts as that seed's failure; other settings run it again."""
    fake = FakeNextpnr(monkeypatch, {1: 70.0, 2: 80.0})
    assert main(["pnr", str(design), "--seeds", "2", "--freq", "72"]) == 0  # the Yosys stamp
    stalled = {"verilog_sha256": "sha-of-top", "device": "LFE5U-85F", "package": "CABGA381", "freq_mhz": 72.0,
               "router": "router1", "seed": 1, "routed": False, "speed_grade": 6,
               "route_watch": {"patience": 10, "reason": "router2 did not converge: test"}}
    (design / "pnr-unrouted-seed1.json").write_text(json.dumps(stalled))
    assert main(["pnr", str(design), "--seeds", "1,2", "--freq", "72"]) == 0
    assert fake.ran == [2]
    sw = json.loads((design / "pnr.json").read_text())["seed_sweep"]
    assert sw["failed"][0]["seed"] == 1 and "did not route with these settings before" in sw["failed"][0]["error"]
    assert main(["pnr", str(design), "--seeds", "1,2", "--freq", "72", "--route-patience", "20"]) == 0
    assert fake.ran == [2, 1]  # another patience: run again


def test_jobs_run_seeds_side_by_side(design, monkeypatch):
    fake = FakeNextpnr(monkeypatch, {s: 70.0 + s for s in range(1, 5)}, delay=0.3)
    res = pnr_seeds(design, [1, 2, 3, 4], jobs=2, progress=lambda m: None, freq=72)
    assert fake.most == 2 and res["seed"] == 4 and res["seed_sweep"]["jobs"] == 2
    fake2 = FakeNextpnr(monkeypatch, {s: 70.0 for s in range(1, 3)}, delay=0.2)
    for s in (1, 2):
        (design / seed_result(s)).unlink()
    pnr_seeds(design, [1, 2], jobs=1, progress=lambda m: None, freq=72)
    assert fake2.most == 1


def test_run_tool_stops_its_child_when_told(tmp_path):
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        pnr_mod.run_tool([sys.executable, "-c", "import time; time.sleep(20)"], tmp_path, "sleep",
                         pnr_mod._NEXTPNR_PHASE, progress=None, stop=stop)
    assert time.monotonic() - t0 < 10


def test_a_one_seed_run_counts_as_that_seed(design, monkeypatch):
    fake = FakeNextpnr(monkeypatch, {1: 70.0, 2: 80.0, 3: 60.0, 5: 65.0})
    main(["pnr", str(design), "--seed", "2", "--freq", "72"])
    assert fake.ran == [2] and json.loads((design / "pnr.json").read_text())["seed"] == 2
    res = pnr_seeds(design, [1, 2, 3], progress=lambda m: None, freq=72)
    assert sorted(fake.ran) == [1, 2, 3] and fake.ran.count(2) == 1
    assert res["seed"] == 2 and res["files"]["report"] == "pnr-report-seed2.json"
    assert (design / "pnr-report-seed2.json").is_file() and (design / "pnr-nextpnr-seed2.log").is_file()
    main(["pnr", str(design), "--seed", "5", "--freq", "80"])  # another constraint: not taken
    pnr_seeds(design, [5], progress=lambda m: None, freq=72)
    assert fake.ran.count(5) == 2
