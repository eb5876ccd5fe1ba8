"""sbs build (whole network) and sbs cosim: bad arguments give one error line naming the argument,
exit code 2, before any work and without writing anything."""
from types import SimpleNamespace

import pytest

from sbs_model.cli import main


@pytest.fixture
def sbs(capsys):
    def run(*args):
        rc = main(list(args))
        cap = capsys.readouterr()
        return SimpleNamespace(returncode=rc, stderr=cap.err, stdout=cap.out)
    return run


@pytest.mark.parametrize("args,msg", [
    (["build", "--plan", "missing.json"], "--plan 'missing.json': not a file"),
    (["build", "--device", "xc7"], "--device 'xc7'; allowed: lfe5u-85f"),
    (["build", "--lanes", "4"], "--lanes/--engines are for one layer"),
    (["build", "--target-ms", "0"], "--target-ms must be in (0, 1e6]"),
])
def test_build_bad_arguments(args, msg, tmp_path, sbs):
    out = tmp_path / "d"
    r = sbs(*args, "-o", str(out))
    assert r.returncode == 2, r.stderr
    assert msg in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_build_refuses_slots_below_the_chain(tmp_path, sbs):
    plan = tmp_path / "plan.json"
    plan.write_text('{"layers": {"0": {"lanes": 16, "engines": 1, "slots": 23}, "2": {"lanes": 8, "engines": 1}, '
                    '"4": {"lanes": 2, "engines": 1}, "5": {"lanes": 2, "engines": 1}}}')
    out = tmp_path / "d"
    r = sbs("build", "--plan", str(plan), "-o", str(out))
    assert r.returncode == 2, r.stderr
    assert "plan: layer 0: slots must be an integer in 24..256" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not out.exists()


@pytest.mark.parametrize("args,msg", [
    ([], "not a design directory"),
    (["-n", "0"], "-n must be >= 1"),
    (["--jobs", "0"], "--jobs must be in 1..64"),
    (["--seed", "-1"], "--seed must be in 0..4294967295"),
    (["--first", "-3"], "--first must be >= 0"),
])
def test_cosim_bad_arguments(args, msg, tmp_path, sbs):
    r = sbs("cosim", str(tmp_path / "nothing"), *args) if not args else sbs("cosim", str(tmp_path), *args)
    assert r.returncode == 2, r.stderr
    assert msg in r.stderr


def test_cosim_refuses_a_layer_design(tmp_path, sbs):
    (tmp_path / "manifest.json").write_text('{"unit": "layer-engine", "top": "x", "verilog": "x.v"}')
    r = sbs("cosim", str(tmp_path))
    assert r.returncode == 2 and "not a whole-network design" in r.stderr
