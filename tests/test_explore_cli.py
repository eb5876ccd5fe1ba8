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
