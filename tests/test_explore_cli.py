"""``sbs explore`` end to end on the shipped quick grid (real models, 20 images) and its errors."""
import json

import pytest

from conftest import PYTORCH_SBS_DIR, REPO
from sbs_model.cli import main

QUICK = REPO / "bench" / "explore" / "quick.toml"


@pytest.mark.skipif(not (PYTORCH_SBS_DIR / "network.json").exists(), reason="pytorch-sbs weights not available")
def test_quick_grid_end_to_end_and_resume(tmp_path, capsys):
    out = tmp_path / "q"
    assert main(["explore", "--grid", str(QUICK), "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    doc = json.loads((out / "results.json").read_text())
    rows = doc["points"]
    assert doc["n_images"] == 20 and doc["data"] == "embedded" and len(rows) == 8
    assert all(r["status"] == "ok" and r["n"] == 20 for r in rows)
    assert {r["label"] for r in rows} == {"e4m1", "uq0.4", "float", "e4m0"}
    for r in rows:
        assert r["ci95_lo"] <= r["accuracy"] <= r["ci95_hi"]
        assert f"{100 * r['accuracy']:7.2f}%" in text
        if not r["float"]:
            assert r["hw_lut"] > 0 and r["counters"]  # the quantized model's counters reached the results
    layer_row = next(r for r in rows if r["layer"] == 2)
    assert set(layer_row["counters"]) == {"2"}  # only layer 2 ran quantized
    plots = sorted(p.name for p in (out / "plots").iterdir())
    assert plots == sorted(f"{n}.{e}" for n in ("accuracy_vs_bits", "accuracy_vs_noise", "accuracy_vs_spikes",
                                                "layer_sensitivity") for e in ("png", "svg"))
    assert (out / "results.csv").read_text().count("\n") == 9
    # resume: nothing to do, same results
    assert main(["explore", "--grid", str(QUICK), "--out", str(out), "--resume", "--no-progress", "--no-plots"]) == 0
    assert "(0 to do, 8 finished)" in capsys.readouterr().out
    again = json.loads((out / "results.json").read_text())["points"]
    assert [r["accuracy"] for r in again] == [r["accuracy"] for r in rows]


def test_cli_errors_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[base]\nweights = "x.npz"\n[sweep]\nweigth_format = ["e4m1"]\n')
    assert main(["explore", "--grid", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "sbs explore: error: sweep: unknown key(s) weigth_format; allowed: weight_format" in err
    assert main(["explore", "--grid", str(tmp_path / "missing.toml")]) == 2
    assert "is not a file" in capsys.readouterr().err


def test_cli_bad_seeds_and_n_exit_2(tmp_path, capsys):
    assert main(["explore", "--grid", str(QUICK), "--out", str(tmp_path / "o"), "--seeds", "0,x"]) == 2
    assert "--seeds '0,x': expected comma-separated integers" in capsys.readouterr().err
    assert main(["explore", "--grid", str(QUICK), "--out", str(tmp_path / "o"), "-n", "0",
                 "--weights", str(tmp_path / "none.npz")]) == 2
    assert "-n must be an integer >= 1" in capsys.readouterr().err


@pytest.fixture(scope="module")
def tiny_grid(tmp_path_factory):
    from sbs_model.network import reference_mnist
    from sbs_model.weights import init_weights, save_weights

    d = tmp_path_factory.mktemp("g")
    net = reference_mnist()
    save_weights(d / "w.npz", init_weights(net, 1), net)

    def write(body, name="g.toml"):
        p = d / name
        p.write_text(f'[base]\nweights = "{d / "w.npz"}"\nn = 4\nspikes = 5\n{body}')
        return p
    return write


def test_out_that_is_a_file_or_under_a_file_exits_2_before_work(tiny_grid, tmp_path, capsys):
    grid = tiny_grid('[sweep]\nweight_format = ["e4m1"]\n')
    f = tmp_path / "file.txt"
    f.write_text("keep me")
    for out, why in ((f, "is a file, not a directory"), (f / "sub", "is a file, so no directory can be made")):
        assert main(["explore", "--grid", str(grid), "--out", str(out), "--no-progress"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"sbs explore: error: --out {out}: ") and why in err[0]
    assert f.read_text() == "keep me" and sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


def test_every_point_invalid_exits_nonzero(tiny_grid, tmp_path, capsys, monkeypatch):
    # invalid before any work (a datapath that cannot exist, a layer that is not an SbS layer): exit 2
    grid = tiny_grid('[sweep]\nweight_format = ["uq0.48"]\n[[point]]\nlayer = 1\n', "bad.toml")
    out = tmp_path / "o"
    assert main(["explore", "--grid", str(grid), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "every point is invalid, nothing to evaluate" in err[0] and "--grid" in err[0]
    assert not out.exists()
    # every point found invalid while evaluating (weights that do not fit, say): exit 1 with one line
    from sbs_model.explore import runner

    def refuses(*a, **kw):
        raise ValueError("weights: layer 0 does not fit the format")

    refuses.tag = "refuses-v1"
    monkeypatch.setattr(runner, "default_evaluator", refuses)
    grid = tiny_grid('[sweep]\nweight_format = ["e4m1", "uq0.4"]\n', "refused.toml")
    assert main(["explore", "--grid", str(grid), "--out", str(out), "--no-progress", "--no-plots"]) == 1
    text = capsys.readouterr()
    assert "0/2 points done" in text.out and "does not fit the format" in text.out
    assert text.err.strip() == "sbs explore: error: no point could be evaluated: all 2 points are invalid " \
                               "(messages above)"
