"""bench/bench_latency_vs_t.py: a row gets a latency only from a placed design of its own T, plan and datapath."""
import json

from bench.bench_latency_vs_t import measured_runs, run_spikes
from sbs_model.quant_ref import load_datapath

LAYERS = {"0": {"engines": 1, "lanes": 16}, "2": {"engines": 1, "lanes": 8}}


def _run(T, met=True, layers=LAYERS, commit="a", new_form=True, dp="int-e4m1", fmax=90.0, cycles=1000):
    d = load_datapath(dp)
    run = {"design": f"ref, shipped weights, update {d.update}, weights {d.weight_format}, coefficient "
                     f"{d.coef_bits} bits, T = [{T}], plan auto", "plan": layers, "timing_met": met,
           "fmax_mhz": fmax, "source_commit": commit, "cycles_per_image": cycles, "verilog_sha256": commit}
    if new_form:
        run |= {"spikes": [T], "datapaths": {"0": d.to_dict(), "2": d.to_dict()}}
    return run


def _write(tmp_path, runs):
    p = tmp_path / "network_pnr.json"
    p.write_text(json.dumps({"results": {"runs": runs}}))
    return p


def test_spikes_from_either_record_form():
    assert run_spikes(_run(800)) == [800]
    assert run_spikes(_run(1600, new_form=False)) == [1600]
    assert run_spikes({"design": "no T here"}) == []


def test_only_met_runs_of_the_same_plan_and_datapath_count(tmp_path):
    dp = load_datapath("int-e4m1")
    runs = [_run(1600, new_form=False, commit="old"), _run(1600, commit="new", fmax=95.0),  # the faster run wins
            _run(1600, commit="slower-later", fmax=91.0),
            _run(800, met=False, commit="unmet"),
            _run(400, layers={"0": {"engines": 1, "lanes": 32}}, commit="other-plan"),
            _run(200, dp="cheap-e4m1", commit="other-dp"), _run(100, dp="cheap-e4m1", new_form=False, commit="other-dp2")]
    got = measured_runs(_write(tmp_path, runs), LAYERS, dp)
    assert {t: r["source_commit"] for t, r in got.items()} == {1600: "new"}
    assert measured_runs(tmp_path / "missing.json", LAYERS, dp) == {}


def test_runs_with_other_cycles_do_not_count(tmp_path):
    """A design of the same plan with other cycles (another RTL: e.g. a reverted divider) is not this
    commit's design at that T."""
    dp = load_datapath("int-e4m1")
    runs = [_run(700, commit="other-rtl", cycles=958_620, fmax=99.0), _run(700, commit="this-rtl", cycles=965_630),
            _run(1600, commit="other-only", cycles=1)]
    path = _write(tmp_path, runs)
    got = measured_runs(path, LAYERS, dp, {700: 965_630, 1600: 2_105_030}.get)
    assert {t: r["source_commit"] for t, r in got.items()} == {700: "this-rtl"}
    assert {t: r["source_commit"] for t, r in measured_runs(path, LAYERS, dp).items()} == {700: "other-rtl",
                                                                                           1600: "other-only"}


def test_runs_on_a_faster_speed_grade_do_not_count(tmp_path):
    """The curve is of the default (slowest) grade; a -8 run of the same design is another part."""
    dp = load_datapath("int-e4m1")
    fast = _run(1600, commit="grade8", fmax=120.0) | {"nextpnr": {"speed_grade": 8}}
    runs = [fast, _run(1600, commit="grade6") | {"nextpnr": {"speed_grade": 6}}, _run(700, commit="old-record")]
    got = measured_runs(_write(tmp_path, runs), LAYERS, dp)
    assert {t: r["source_commit"] for t, r in got.items()} == {1600: "grade6", 700: "old-record"}
