"""Resumable sweep runner with a test-double evaluator (no model): ids, resume, Ctrl-C, aggregation,
results files and plots."""
import csv
import json

import numpy as np
import pytest

from fixedpoint.formats import parse_format
from sbs_model.explore import runner
from sbs_model.explore.grid import parse_grid
from sbs_model.network import reference_mnist

N_IMAGES = 10
CALLS = []


def fake_evaluator(net, weights, datapath, images, labels, seed, noise, batch, progress, first_pattern=0):
    """Deterministic stand-in: correct = f(weight bits, seed, noise, spikes, layer)."""
    CALLS.append((datapath, seed, noise))
    n = len(labels)
    if datapath is None:
        bits = 10
    elif isinstance(datapath, dict):
        bits = 9
        assert sum(v is not None for v in datapath.values()) == 1
        assert sorted(datapath) == net.sbs_layers()
    else:
        if datapath.weight_format == "uq0.2":
            raise ValueError("weights: layer 0 does not fit uq0.2")
        bits = parse_format(datapath.weight_format).width
    correct = max(0, min(n, bits + seed - int(10 * noise) - (net.layers[0].spikes < 100)))
    return {"accuracy": correct / n, "ci95": [0.0, 1.0], "n": n, "correct": correct, "seconds": 0.01,
            "ms_per_pattern": 1.0, "counters": {"0": {"spikes": 5 + seed}} if datapath is not None else {}}


fake_evaluator.tag = "fake-v1"


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    from sbs_model.weights import init_weights, save_weights

    net = reference_mnist()
    path = tmp_path_factory.mktemp("w") / "w.npz"
    save_weights(path, init_weights(net, 1), net)
    return path


def make_grid(weights_file, sweep='weight_format = ["e4m1", "uq0.4", "e4m4"]\n', extra="", seeds="[0, 1]"):
    return parse_grid(f'[base]\nweights = "{weights_file}"\nn = {N_IMAGES}\nseeds = {seeds}\n'
                      f'[sweep]\n{sweep}{extra}')


def run(grid, out, **kw):
    kw.setdefault("evaluator", fake_evaluator)
    kw.setdefault("progress", False)
    kw.setdefault("plots", False)
    kw.setdefault("log", lambda *a: None)
    return runner.run_grid(grid, out, **kw)


def test_runs_every_point_and_seed_and_aggregates(weights_file, tmp_path):
    CALLS.clear()
    g = make_grid(weights_file, extra="[[point]]\nfloat = true\n")
    doc = run(g, tmp_path / "o")
    assert len(CALLS) == 4 * 2
    # first seed of every point before any second seed
    assert [c[1] for c in CALLS] == [0, 0, 0, 0, 1, 1, 1, 1]
    rows = {r["label"]: r for r in doc["points"]}
    assert set(rows) == {"e4m1", "uq0.4", "e4m4", "float"}
    r = rows["uq0.4"]  # bits 4: correct 4 (seed 0) and 5 (seed 1)
    assert r["status"] == "ok" and r["correct_per_seed"] == [4, 5] and r["accuracy"] == pytest.approx(0.45)
    assert r["acc_min"] == 0.4 and r["acc_max"] == 0.5 and r["n"] == N_IMAGES and r["seeds"] == [0, 1]
    assert r["ci95_lo"] < 0.45 < r["ci95_hi"]
    assert r["counters"] == {"0": {"spikes": 11}}  # summed over seeds
    assert r["weight_bits"] == 4 and r["hw_lut"] > 0 and r["hw_weight_mem_bits"] == 4 * sum(
        S * N for S, N in reference_mnist().weight_shapes().values())
    assert rows["float"]["hw_weight_mem_bits"] == 8 * r["hw_weight_mem_bits"]
    assert rows["float"].get("hw_lut") is None
    assert rows["e4m4"]["hw_lut"] > rows["e4m1"]["hw_lut"]
    # files: one per run, results.json == returned doc, csv has every point
    assert len(list((tmp_path / "o" / "runs").glob("*.json"))) == 8
    assert json.loads((tmp_path / "o" / "results.json").read_text())["points"] == json.loads(json.dumps(doc["points"]))
    with open(tmp_path / "o" / "results.csv") as f:
        table = list(csv.DictReader(f))
    assert [t["label"] for t in table] == [r["label"] for r in doc["points"]]
    assert float(table[1]["accuracy"]) == pytest.approx(0.45) and table[1]["weight_format"] == "uq0.4"
    assert "hw_lut" in table[0] and "acc_overflow" in table[0]
    assert (tmp_path / "o" / "grid.toml").read_text() == g.text


def test_resume_never_recomputes_and_plain_rerun_refuses(weights_file, tmp_path):
    g = make_grid(weights_file)
    run(g, tmp_path / "o")
    CALLS.clear()
    with pytest.raises(ValueError, match="already holds 6 finished runs.*--resume"):
        run(g, tmp_path / "o")
    doc = run(g, tmp_path / "o", resume=True)
    assert CALLS == []
    assert all(r["status"] == "ok" for r in doc["points"])
    # a grown grid computes only the new point (and its seeds)
    g2 = make_grid(weights_file, sweep='weight_format = ["e4m1", "uq0.4", "e4m4", "uq0.8"]\n')
    run(g2, tmp_path / "o", resume=True)
    assert len(CALLS) == 2 and all(c[0].weight_format == "uq0.8" for c in CALLS)


def test_interrupt_keeps_finished_runs_and_resume_completes(weights_file, tmp_path):
    g = make_grid(weights_file)
    calls = []

    def flaky(*a, **kw):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(1)
        return fake_evaluator(*a, **kw)

    flaky.tag = fake_evaluator.tag
    with pytest.raises(KeyboardInterrupt):
        run(g, tmp_path / "o", evaluator=flaky)
    files = list((tmp_path / "o" / "runs").glob("*"))
    assert len(files) == 3 and all(f.suffix == ".json" for f in files)  # no temporary leftovers
    CALLS.clear()
    doc = run(g, tmp_path / "o", resume=True)
    assert len(CALLS) == 3
    assert all(r["status"] == "ok" for r in doc["points"])


def test_ids_depend_on_weights_images_and_evaluator(weights_file, tmp_path):
    g = make_grid(weights_file)
    ctx = runner.prepare(g)
    p = g.points[0]
    base = runner.run_id(ctx, p, 0, "fake-v1")
    assert base == runner.run_id(runner.prepare(g), p, 0, "fake-v1")  # stable across processes/loads
    assert base != runner.run_id(ctx, p, 1, "fake-v1")
    assert base != runner.run_id(ctx, p, 0, "other")
    ctx5 = runner.prepare(g, n=5)
    assert base != runner.run_id(ctx5, p, 0, "fake-v1")
    ctx.weights = {k: v * np.float32(1.0001) for k, v in ctx.weights.items()}
    ctx.weights_sha = runner.weights_sha256(ctx.weights)
    assert base != runner.run_id(ctx, p, 0, "fake-v1")


def test_invalid_points_are_skipped_with_their_message(weights_file, tmp_path):
    CALLS.clear()
    logs = []
    g = make_grid(weights_file, sweep='weight_format = ["e4m1", "uq0.48", "uq0.2"]\n',
                  extra="[[point]]\nlayer = 1\n")
    doc = run(g, tmp_path / "o", log=logs.append)
    rows = doc["points"]
    assert [r["status"] for r in rows] == ["ok", "invalid", "invalid", "invalid"]
    assert "62" in rows[1]["error"]                       # datapath construction
    assert "does not fit uq0.2" in rows[2]["error"]        # ValueError inside the evaluation, stored
    assert "not an SbS layer" in rows[3]["error"] and "0, 2, 4, 5" in rows[3]["error"]
    assert any("skip point" in line and "uq0.48" in line for line in logs)
    # the stored invalid run is not retried on resume
    CALLS.clear()
    run(g, tmp_path / "o", resume=True)
    assert CALLS == []


def test_layer_points_quantize_one_layer(weights_file, tmp_path):
    CALLS.clear()
    g = make_grid(weights_file, sweep='layer = [0, 2, "all"]\n', seeds="[0]")
    doc = run(g, tmp_path / "o")
    assert [r["layer"] for r in doc["points"]] == [0, 2, None]
    dps = [c[0] for c in CALLS]
    assert isinstance(dps[0], dict) and dps[0][0] is not None and dps[0][2] is None
    assert isinstance(dps[1], dict) and dps[1][2] is not None and dps[1][0] is None
    assert not isinstance(dps[2], dict)


def test_plots_only_for_present_dimensions(weights_file, tmp_path):
    g = make_grid(weights_file, extra="[[point]]\nfloat = true\n", seeds="[0]")
    doc = run(g, tmp_path / "a", plots=True)
    names = sorted(p.rsplit("/", 1)[1] for p in doc["plots"])
    assert names == ["accuracy_vs_bits.png", "accuracy_vs_bits.svg"]
    g = make_grid(weights_file, sweep='weight_format = ["e4m1", "uq0.4"]\nspikes = [50, 200]\n',
                  extra='[[point]]\nnoise = 0.2\nspikes = 200\n[[point]]\nlayer = 2\nspikes = 200\n', seeds="[0]")
    doc = run(g, tmp_path / "b", plots=True)
    names = sorted({p.rsplit("/", 1)[1].split(".")[0] for p in doc["plots"]})
    assert names == ["accuracy_vs_bits", "accuracy_vs_noise", "accuracy_vs_spikes", "layer_sensitivity"]
    for p in doc["plots"]:
        assert (tmp_path / "b" / "plots" / p.rsplit("/", 1)[1]).stat().st_size > 1000
    g = make_grid(weights_file, sweep='noise = [0.0]\n', seeds="[0]")
    assert run(g, tmp_path / "c", plots=True)["plots"] == []


def test_parallel_jobs_give_the_same_results(weights_file, tmp_path):
    g = make_grid(weights_file, seeds="[0, 3]")
    one = run(g, tmp_path / "one")
    two = run(g, tmp_path / "two", jobs=2)
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in one["points"]]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in two["points"]]
    assert sorted(p.name for p in (tmp_path / "one" / "runs").iterdir()) == \
        sorted(p.name for p in (tmp_path / "two" / "runs").iterdir())
    with pytest.raises(ValueError, match="--jobs 0 out of range"):
        run(g, tmp_path / "three", jobs=0)


def test_seeds_override_then_resume_with_all_seeds(weights_file, tmp_path):
    g = make_grid(weights_file, seeds="[0, 1, 2]")
    CALLS.clear()
    doc = run(g, tmp_path / "o", seeds=[0])
    assert len(CALLS) == 3 and all(r["seeds"] == [0] for r in doc["points"])
    CALLS.clear()
    doc = run(g, tmp_path / "o", resume=True)
    assert len(CALLS) == 6 and {c[1] for c in CALLS} == {1, 2}
    assert all(r["seeds"] == [0, 1, 2] and r["status"] == "ok" for r in doc["points"])
    with pytest.raises(ValueError, match="--seeds: repeated"):
        run(g, tmp_path / "p", seeds=[1, 1])


def test_results_are_written_after_every_run(weights_file, tmp_path):
    g = make_grid(weights_file, seeds="[0]")
    seen = []

    def watching(*a, **kw):
        p = tmp_path / "o" / "results.json"
        if p.exists():
            seen.append([r["status"] for r in json.loads(p.read_text())["points"]])
        return fake_evaluator(*a, **kw)

    watching.tag = fake_evaluator.tag
    run(g, tmp_path / "o", evaluator=watching)
    assert seen == [["ok", "pending", "pending"], ["ok", "ok", "pending"]]
