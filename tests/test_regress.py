"""``sbs regress``: the quick regression passes with every fault detected; failures are reported
with waves and reproduce commands; JUnit XML; seeds; selection; bad input exits 2."""
import gc
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from rtl.rng import SpikeRandom
from sbs_model.cli import main
from sim import regress
from sim.regress import Entry
from sim.regress_units import rng as rng_units
from sim.runner import simulator_available

HAVE_VERILATOR, WHY = simulator_available("verilator")
needs_verilator = pytest.mark.skipif(not HAVE_VERILATOR, reason=WHY)
SEED = 20261122


def junit_cases(path):
    root = ET.parse(path).getroot()
    suite = root.find("testsuite")
    cases = {}
    for c in suite.iter("testcase"):
        props = {p.get("name"): p.get("value") for p in c.find("properties")}
        cases[c.get("name")] = (props, c.find("failure"), c.find("error"))
    return suite, cases


# ------------------------------------------------------------------------ without a simulator

def test_entry_seed_is_reproducible_and_per_entry():
    a = regress.entry_seed(5, "dot/paper/L4")
    assert a == regress.entry_seed(5, "dot/paper/L4")
    assert a != regress.entry_seed(6, "dot/paper/L4")
    assert a != regress.entry_seed(5, "dot/paper/L1")
    assert 0 <= a < 2 ** 31


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")  # built for their widths only
def test_every_entry_has_vectors_reproducible_from_its_seed():
    every = regress.entries()
    assert {"rng", "sampler"} <= {e.unit for e in every}
    assert any(e.fault for e in every), "no fault-injection entry registered"
    for e in every:
        dut = e.design(e.fault, "quick")
        data, n = e.vectors(dut, "quick", 11)
        again, _ = e.vectors(dut, "quick", 11)
        other, _ = e.vectors(dut, "quick", 12)
        assert n > 0, e.name
        assert data == again, f"{e.name}: vectors differ for the same seed"
        assert data != other, f"{e.name}: vectors ignore the seed"
    del dut
    gc.collect()  # the designs were built for their widths only: let Amaranth's warning fire under the filter


def test_selection_exact_glob_substring():
    names = [e.name for e in regress.entries()]
    assert [e.name for e in regress.select(["rng/any/L1"])] == ["rng/any/L1"]  # not the fault one
    assert {e.name for e in regress.select(["rng/*"])} == {n for n in names if n.startswith("rng/")}
    assert {e.name for e in regress.select(["FAULT"])} == {n for n in names if n.endswith("/fault")}
    with pytest.raises(ValueError, match="matches no registered entry"):
        regress.select(["no-such-unit"])


def test_bad_input_exits_2(capsys):
    assert main(["regress", "-k", "no-such-unit"]) == 2
    assert "-k 'no-such-unit' matches no registered entry" in capsys.readouterr().err
    assert main(["regress", "--sim", "modelsim", "-k", "rng"]) == 2
    assert "--sim must be one of verilator, icarus" in capsys.readouterr().err
    assert main(["regress", "--jobs", "0", "-k", "rng"]) == 2
    assert "--jobs must be in 1..64" in capsys.readouterr().err
    assert main(["regress", "--seed", "-1", "-k", "rng"]) == 2
    with pytest.raises(SystemExit):  # argparse: --quick and --full exclude each other
        main(["regress", "--quick", "--full"])


def test_icarus_absent_is_a_clear_exit_2(capsys):
    if simulator_available("icarus")[0]:
        pytest.skip("iverilog present: nothing to check about its absence")
    assert main(["regress", "--sim", "icarus", "-k", "rng"]) == 2
    err = capsys.readouterr().err
    assert "--sim icarus" in err and "iverilog" in err


def test_broken_entry_is_an_error_with_junit_error(tmp_path, capsys):
    def vectors(dut, mode, seed):
        raise RuntimeError("model exploded")
    e = regress.register(Entry(unit="broken", datapath="any", lanes=1, toplevel="x",
                               testbench="sim.tb_rng", design=lambda fault, mode: None, vectors=vectors))
    try:
        rc = main(["regress", "-k", e.name, "--jobs", "1", "--seed", "3", "--out", str(tmp_path),
                   "--junit", str(tmp_path / "j.xml")])
    finally:
        regress.unregister(e.name)
    out = capsys.readouterr().out
    if not HAVE_VERILATOR:
        assert rc == 2
        return
    assert rc == 1
    assert "ERROR: broken/any/L1" in out and "RuntimeError: model exploded" in out
    suite, cases = junit_cases(tmp_path / "j.xml")
    assert suite.get("errors") == "1" and cases["broken/any/L1"][2] is not None


# ------------------------------------------------------------------------ with Verilator

@pytest.mark.verilator
@needs_verilator
def test_quick_regression_passes_and_detects_every_fault(tmp_path, capsys):
    junit = tmp_path / "regress.xml"
    rc = main(["regress", "--quick", "--seed", str(SEED), "--jobs", "2", "--out", str(tmp_path),
               "--junit", str(junit)])
    out = capsys.readouterr().out
    assert rc == 0, out
    every = regress.entries()
    suite, cases = junit_cases(junit)
    assert suite.get("tests") == str(len(every)) and suite.get("failures") == "0" \
        and suite.get("errors") == "0"
    for e in every:
        props, failure, error = cases[e.name]
        assert failure is None and error is None, e.name
        assert props["status"] == ("fault detected" if e.fault else "pass"), e.name
        assert int(props["vectors"]) > 0
    rep = json.loads((tmp_path / "report.json").read_text())
    assert rep["ok"] and rep["seed"] == SEED
    assert rep["counts"]["fault detected"] == sum(1 for e in every if e.fault)
    assert "ALL PASSED" in out
    # passing entries leave no run directories behind
    assert all(x["run_dir"] is None for x in rep["entries"])


def _rng_entry(unit, fault_in_design, fault_flag, n=120):
    def design(fault, mode):
        return SpikeRandom("pipelined", fault=fault_in_design)

    def vectors(dut, mode, seed):
        data, _ = rng_units.vectors_of("pipelined")(dut, mode, seed)
        return dict(data, requests=data["requests"][:n], expected=data["expected"][:n]), n
    return Entry(unit=unit, datapath="any", lanes=1, toplevel="spike_random", testbench="sim.tb_rng",
                 design=design, vectors=vectors, fault=fault_flag, testcase="random_stream_vs_model")


@pytest.mark.verilator
@needs_verilator
def test_failure_keeps_run_dir_and_prints_reproduce(tmp_path, capsys):
    e = regress.register(_rng_entry("rng-broken", "flip_bit3", None))  # a real bug, not expected
    try:
        args = ["regress", "-k", e.name, "--jobs", "1", "--seed", "99", "--no-fail-waves",
                "--out", str(tmp_path / "a"), "--junit", str(tmp_path / "a.xml")]
        assert main(args) == 1
        out = capsys.readouterr().out
        rep = json.loads((tmp_path / "a" / "report.json").read_text())["entries"][0]
        assert rep["status"] == "FAIL" and "first at index" in rep["messages"][0]
        assert Path(rep["run_dir"], "rerun.sh").is_file() and Path(rep["run_dir"], "sim.log").is_file()
        assert f"reproduce: sbs regress -k {e.name} --seed 99 --quick" in out
        assert "rerun.sh" in out and "1 FAILED" in out
        _, cases = junit_cases(tmp_path / "a.xml")
        failure = cases[e.name][1]
        assert failure is not None and "sbs regress -k" in failure.text
        # the printed command reproduces the same failure (same entry seed, same first mismatch)
        args[args.index("--out") + 1] = str(tmp_path / "b")
        assert main(args) == 1
        again = json.loads((tmp_path / "b" / "report.json").read_text())["entries"][0]
        assert again["seed"] == rep["seed"] and again["messages"] == rep["messages"]
    finally:
        regress.unregister(e.name)


@pytest.mark.verilator
@needs_verilator
def test_fault_that_passes_is_a_regression_failure(tmp_path, capsys):
    # a fault entry whose design ignores the fault flag: the regression must call it missed
    e = regress.register(_rng_entry("rng-nofault", None, "flip_bit3"))
    try:
        rc = main(["regress", "-k", e.name, "--jobs", "1", "--seed", "4", "--out", str(tmp_path)])
    finally:
        regress.unregister(e.name)
    out = capsys.readouterr().out
    assert rc == 1
    assert "FAULT MISSED: rng-nofault/any/L1/fault" in out and "cannot see this fault" in out


@pytest.mark.slow  # builds Verilator's run-time library with tracing once
@pytest.mark.verilator
@needs_verilator
def test_failure_is_rerun_with_waves(tmp_path):
    e = regress.register(_rng_entry("rng-waves", "flip_bit3", None, n=40))
    try:
        rep = regress.run_regression([e], seed=7, jobs=1, out_dir=tmp_path, progress=None)
    finally:
        regress.unregister(e.name)
    o = rep.outcomes[0]
    assert o.status == "FAIL" and o.waves and Path(o.waves).stat().st_size > 1000
    assert "with waves" in o.rerun
