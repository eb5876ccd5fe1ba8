"""``sbs explore`` on Dask: shards merge exactly, a worker killed mid-sweep changes nothing, resume works
across engines and shard sizes, weights/images are checked by hash on arrival, a lost scheduler ends the
command with one message.  Every cluster here listens on 127.0.0.1 only."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO
from fixedpoint.formats import parse_format
from sbs_model.cli import main
from sbs_model.explore import runner
from sbs_model.explore.cluster import ClusterError, DaskEngine, Unit
from sbs_model.explore.grid import parse_grid
from sbs_model.explore.shards import ContentMismatch, Shipment, checked, merge, plan, run_shard
from sbs_model.network import reference_mnist

pytest.importorskip("distributed")

N_IMAGES = 12
CALLS = []
TIMING_KEYS = ("seconds", "ms_per_pattern")


def additive_evaluator(net, weights, datapath, images, labels, seed, noise, batch, progress, first_pattern=0):
    """Stand-in whose answer for each image depends only on that image, its index in the test set, the
    seed and the point, as the real models' do: results of shards add up to the whole run's.

    Environment (set by the tests, inherited by worker processes): SBS_TEST_LOG (a line per finished
    call), SBS_TEST_SLEEP (seconds per call), SBS_TEST_KILL ("seed start marker-file": the first call of
    that shard kills its own process after listing the finished files of SBS_TEST_OUT into the marker),
    SBS_TEST_KILL_PID ("start pid": a call of that shard kills process pid first)."""
    n = len(labels)
    if datapath is None:
        bits = 10
    elif isinstance(datapath, dict):
        bits = 9
    else:
        if datapath.weight_format == "uq0.2":
            raise ValueError("weights: layer 0 does not fit uq0.2")
        bits = parse_format(datapath.weight_format).width
    kill = os.environ.get("SBS_TEST_KILL")
    if kill:
        k_seed, k_start, marker = kill.split(" ", 2)
        if int(k_seed) == seed and int(k_start) == first_pattern and bits == 5 and not os.path.exists(marker):
            time.sleep(0.3)  # the client has collected and released the shards finished before this one
            out = Path(os.environ["SBS_TEST_OUT"])
            finished = sorted(str(p.relative_to(out)) for p in out.glob("*/**/*.json"))
            Path(marker).write_text(json.dumps(finished))
            os.kill(os.getpid(), signal.SIGKILL)
    kill_pid = os.environ.get("SBS_TEST_KILL_PID")
    if kill_pid and int(kill_pid.split()[0]) == first_pattern:
        time.sleep(0.5)  # the client has collected the shards before this one
        os.kill(int(kill_pid.split()[1]), signal.SIGKILL)
        time.sleep(5)
    time.sleep(float(os.environ.get("SBS_TEST_SLEEP", "0")))
    idx = np.arange(first_pattern, first_pattern + n)
    pix = images.reshape(n, -1).astype(np.int64).sum(axis=1)
    guess = (idx * 7 + seed * 3 + bits + pix + int(10 * noise)) % 10
    ok = (guess == labels) | ((idx + bits + seed) % 3 != 0)
    correct = int(ok.sum())
    log = os.environ.get("SBS_TEST_LOG")
    if log:
        with open(log, "a") as f:
            f.write(f"{bits} {seed} {first_pattern} {os.getpid()}\n")
    CALLS.append((bits, seed, first_pattern))
    counters = {} if datapath is None else {"0": {"spikes": int((idx % 5).sum()) + 3 * n,
                                                  "acc_overflows": n - correct}}
    return {"accuracy": correct / n, "ci95": [0.0, 1.0], "n": n, "correct": correct, "seconds": 0.001 * n,
            "ms_per_pattern": 1.0, "counters": counters}


additive_evaluator.tag = "additive-v1"


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    from sbs_model.weights import init_weights, save_weights

    net = reference_mnist()
    path = tmp_path_factory.mktemp("w") / "w.npz"
    save_weights(path, init_weights(net, 1), net)
    return path


def make_grid(weights_file, seeds="[0, 1]", n=N_IMAGES):
    return parse_grid(f'[base]\nweights = "{weights_file}"\nn = {n}\nseeds = {seeds}\n'
                      '[sweep]\nweight_format = ["e4m1", "uq0.4"]\n[[point]]\nfloat = true\nnoise = 0.2\n')


def run(grid, out, **kw):
    kw.setdefault("evaluator", additive_evaluator)
    kw.setdefault("progress", False)
    kw.setdefault("plots", False)
    kw.setdefault("log", lambda *a: None)
    return runner.run_grid(grid, out, **kw)


def comparable(doc_or_path):
    """results.json without the wall-clock fields (date, seconds, ms per pattern, worker throughput)."""
    doc = json.loads(Path(doc_or_path).read_text()) if not isinstance(doc_or_path, dict) else doc_or_path
    doc = json.loads(json.dumps(doc))
    doc.pop("date"), doc.pop("throughput")
    for r in doc["points"]:
        for k in TIMING_KEYS:
            r.pop(k, None)
    return doc


def run_results(out):
    """{run id: result without timing} of every finished run file."""
    res = {}
    for p in (Path(out) / "runs").glob("*.json"):
        r = json.loads(p.read_text())
        res[p.stem] = (r["status"], {k: v for k, v in (r.get("result") or {}).items() if k not in TIMING_KEYS})
    return res


# ------------------------------------------------------------------------------ shards without a cluster
def test_plan_reuses_finished_shards_that_fit():
    assert plan(10, 4, []) == ([], [(0, 4), (4, 8), (8, 10)])
    assert plan(10, 4, [(4, 8)]) == ([(4, 8)], [(0, 4), (8, 10)])
    # shards of an earlier shard size: the disjoint ones are kept, the gaps are filled
    assert plan(10, 3, [(0, 5), (2, 4), (5, 10)]) == ([(0, 5), (5, 10)], [])
    assert plan(10, 3, [(0, 2), (7, 12)]) == ([(0, 2)], [(2, 5), (5, 8), (8, 10)])


def test_merge_checks_tiling_and_sums_counters():
    a = {"start": 0, "stop": 2, "status": "ok", "n": 2, "correct": 1, "seconds": 0.5, "worker": "h/0",
         "counters": {"0": {"spikes": 3, "h_overflow": 1}}}
    b = {"start": 2, "stop": 5, "status": "ok", "n": 3, "correct": 3, "seconds": 0.25, "worker": "h/1",
         "counters": {"0": {"spikes": 4, "h_overflow": 0}}}
    m = merge([b, a], 5)
    assert m["status"] == "ok" and m["result"]["correct"] == 4 and m["result"]["accuracy"] == 0.8
    assert m["result"]["counters"] == {"0": {"spikes": 7, "h_overflow": 1}}
    assert [s["worker"] for s in m["shards"]] == ["h/0", "h/1"]
    with pytest.raises(ValueError, match="do not tile"):
        merge([a], 5)
    with pytest.raises(ValueError, match="gap or overlap at image 0"):
        merge([b], 5)
    bad = dict(b, status="invalid", error="weights do not fit")
    assert merge([a, bad], 5)["error"] == "weights do not fit"


def test_shards_in_one_process_equal_whole_runs(weights_file, tmp_path):
    g = make_grid(weights_file)
    whole = run(g, tmp_path / "whole")
    sharded = run(g, tmp_path / "sharded", shard_size=5)
    assert comparable(whole) == comparable(sharded)
    assert comparable(tmp_path / "whole" / "results.json") == comparable(tmp_path / "sharded" / "results.json")
    assert run_results(tmp_path / "whole") == run_results(tmp_path / "sharded")
    assert all(len(json.loads(p.read_text())["shards"]) == 3 for p in (tmp_path / "sharded" / "runs").iterdir())
    assert not list((tmp_path / "sharded" / "shards").glob("*/*.json"))  # merged shards are removed


def test_interrupted_shards_are_kept_and_not_recomputed(weights_file, tmp_path):
    g = make_grid(weights_file, seeds="[0]")
    calls = []

    def flaky(*a, **kw):
        if len(calls) == 4:
            raise KeyboardInterrupt
        calls.append(kw["first_pattern"])
        return additive_evaluator(*a, **kw)

    flaky.tag = additive_evaluator.tag
    with pytest.raises(KeyboardInterrupt):
        run(g, tmp_path / "o", evaluator=flaky, shard_size=5)
    # 3 shards per run: one run finished, one shard of the second kept
    assert len(list((tmp_path / "o" / "runs").glob("*.json"))) == 1
    assert len(list((tmp_path / "o" / "shards").glob("*/*.json"))) == 1
    CALLS.clear()
    doc = run(g, tmp_path / "o", resume=True, shard_size=5)
    assert len(CALLS) == 3 * 3 - 4
    assert comparable(doc) == comparable(run(g, tmp_path / "ref"))


@pytest.mark.parametrize("n", [7])
def test_real_models_sharded_equal_whole(tmp_path, n):
    """The real float and quantized models with input noise: images [a, b) evaluated alone give the
    same answers and overflow counters as inside the whole run."""
    w = REPO / "sbs_model" / "models" / "reference-mnist.npz"
    g = parse_grid(f'[base]\nweights = "{w}"\nn = {n}\nseeds = [0, 5]\nspikes = 12\nnoise = 0.1\n'
                   '[sweep]\nweight_format = ["e4m1"]\n[[point]]\nfloat = true\n[[point]]\nlayer = 2\n')
    kw = dict(evaluator=None, progress=False, plots=False, log=lambda *a: None)
    whole = runner.run_grid(g, tmp_path / "whole", **kw)
    sharded = runner.run_grid(g, tmp_path / "sharded", shard_size=3, **kw)
    assert comparable(whole) == comparable(sharded)
    assert run_results(tmp_path / "whole") == run_results(tmp_path / "sharded")
    counters = [r["counters"] for r in whole["points"] if not r["float"]]
    assert all(c and all(v["spikes"] > 0 for v in c.values()) for c in counters)


# ------------------------------------------------------------------------------ content by hash
def test_shipment_is_checked_on_arrival(weights_file):
    g = make_grid(weights_file)
    ctx = runner.prepare(g)
    ship = Shipment(ctx.weights, ctx.images, ctx.labels, ctx.weights_sha, ctx.images_sha)
    assert checked(ship, ctx.weights_sha, ctx.images_sha) is ship
    net = reference_mnist()
    rec = run_shard(ship, ctx.weights_sha, ctx.images_sha, net, None, 0, 0.0, 10, 2, 6, additive_evaluator)
    assert rec["status"] == "ok" and rec["n"] == 4 and (rec["start"], rec["stop"]) == (2, 6)
    images = ctx.images.copy()
    images[3, 5, 5] ^= 1
    bad = Shipment(ctx.weights, images, ctx.labels, ctx.weights_sha, ctx.images_sha)
    with pytest.raises(ContentMismatch, match="images arrived on .* with sha256"):
        run_shard(bad, ctx.weights_sha, ctx.images_sha, net, None, 0, 0.0, 10, 0, 4, additive_evaluator)
    w2 = dict(ctx.weights)
    w2[0] = w2[0] * np.float32(2)
    with pytest.raises(ContentMismatch, match="weights arrived"):
        checked(Shipment(w2, ctx.images, ctx.labels, ctx.weights_sha, ctx.images_sha), ctx.weights_sha,
                ctx.images_sha)


@pytest.fixture(scope="module")
def thread_cluster():
    """An in-process Dask cluster on 127.0.0.1 (worker threads: the evaluator's CALLS are visible here)."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp", host="127.0.0.1",
                      dashboard_address=None) as c:
        yield c


def test_changed_arrays_are_refused_by_the_cluster(weights_file, thread_cluster):
    g = make_grid(weights_file)
    ctx = runner.prepare(g)
    images = ctx.images.copy()
    images[0, 0, 0] ^= 1
    bad = Shipment(ctx.weights, images, ctx.labels, ctx.weights_sha, ctx.images_sha)
    units = [Unit("r", 0, 4, reference_mnist(), None, 0, 0.0, 10)]
    with DaskEngine(address=thread_cluster.scheduler_address, timeout=10) as eng:
        with pytest.raises(ClusterError, match="images arrived on .* expected " + ctx.images_sha):
            list(eng.iter(units, bad, additive_evaluator, set()))


# ------------------------------------------------------------------------------ Dask clusters
def test_existing_cluster_by_address_and_resume_across_engines(weights_file, tmp_path, thread_cluster):
    g = make_grid(weights_file)
    ref = run(g, tmp_path / "ref")
    # a first pass with seed 0 on the cluster, interrupted after 3 shards of 4 images
    calls = []

    def flaky(*a, **kw):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(1)
        return additive_evaluator(*a, **kw)

    flaky.tag = additive_evaluator.tag
    with pytest.raises(KeyboardInterrupt):
        run(g, tmp_path / "o", evaluator=flaky, shard_size=4, seeds=[0])
    kept = len(list((tmp_path / "o" / "shards").glob("*/*.json"))) + 3 * len(list((tmp_path / "o" / "runs").glob("*")))
    assert kept == 3
    CALLS.clear()
    run(g, tmp_path / "o", resume=True, seeds=[0], cluster=thread_cluster.scheduler_address, shard_size=4)
    assert len(CALLS) == 3 * 3 - 3                   # 3 points x 3 shards, 3 kept
    # the second seed in this process (no cluster): whole runs
    CALLS.clear()
    doc = run(g, tmp_path / "o", resume=True)
    assert len(CALLS) == 3 and {c[1] for c in CALLS} == {1}
    assert comparable(doc) == comparable(ref)
    assert run_results(tmp_path / "o") == run_results(tmp_path / "ref")
    workers = doc["throughput"]["workers"]
    assert sum(w["images"] for w in workers.values()) == 6 * N_IMAGES
    assert all(w["images_per_s"] > 0 for w in workers.values())


def test_local_cluster_worker_killed_mid_sweep(weights_file, tmp_path, monkeypatch):
    """jobs = 2 local worker processes; one dies (SIGKILL) while evaluating a shard of the second seed:
    Dask re-runs that shard on a worker that lives, nothing persisted is recomputed, the results equal
    the single-process ones."""
    g = make_grid(weights_file)
    ref = run(g, tmp_path / "ref")
    out = tmp_path / "o"
    marker, log = tmp_path / "killed.json", tmp_path / "calls.log"
    monkeypatch.setenv("SBS_TEST_OUT", str(out))
    monkeypatch.setenv("SBS_TEST_KILL", f"1 6 {marker}")
    monkeypatch.setenv("SBS_TEST_LOG", str(log))
    monkeypatch.setenv("SBS_TEST_SLEEP", "0.05")
    doc = run(g, out, jobs=2, shard_size=3)
    assert marker.exists()                               # a worker did die mid-sweep
    assert comparable(doc) == comparable(ref)
    assert comparable(out / "results.json") == comparable(tmp_path / "ref" / "results.json")
    assert run_results(out) == run_results(tmp_path / "ref")
    calls = [tuple(map(int, line.split()[:3])) for line in log.read_text().splitlines()]
    assert sorted(set(calls)) == sorted({(b, s, a) for b in (4, 5, 10) for s in (0, 1) for a in (0, 3, 6, 9)})
    assert (5, 1, 6) in calls                            # the killed shard was evaluated again elsewhere
    # every shard that was on disk when the worker died was never evaluated again
    rid_shards = {}
    for rel in json.loads(marker.read_text()):
        parts = Path(rel).parts
        if parts[0] == "shards" and not parts[2].startswith("."):  # ".NAME..." is an atomic write in flight
            rid_shards.setdefault(parts[1], []).append(int(parts[2].split("-")[0]))
    runs = {p.stem: json.loads(p.read_text()) for p in (out / "runs").glob("*.json")}
    for rid, starts in rid_shards.items():
        r = runs[rid]
        bits = 10 if r["params"]["float"] else parse_format(r["params"]["datapath"]["weight_format"]).width
        for a in starts:
            assert calls.count((bits, r["seed"], a)) == 1
    for rel in json.loads(marker.read_text()):
        if rel.startswith("runs/"):
            r = runs[Path(rel).stem]
            bits = 10 if r["params"]["float"] else parse_format(r["params"]["datapath"]["weight_format"]).width
            assert all(calls.count((bits, r["seed"], a)) == 1 for a in (0, 3, 6, 9))
    workers = doc["throughput"]["workers"]
    assert sum(w["images"] for w in workers.values()) == 6 * N_IMAGES and len(workers) >= 1


def _start_cluster(tmp_path):
    """``dask scheduler`` and one ``dask worker`` as separate processes on 127.0.0.1 (a scheduler file);
    the worker's evaluations kill the scheduler at the shard starting at image 8."""
    sf = tmp_path / "scheduler.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "tests"), str(REPO)]))
    sched = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                              "--port", "0", "--no-dashboard", "--scheduler-file", str(sf)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.monotonic()
    while not sf.exists() and time.monotonic() - t0 < 60:
        time.sleep(0.1)
    env["SBS_TEST_KILL_PID"] = f"8 {sched.pid}"
    worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file", str(sf),
                               "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=str(REPO / "tests"))
    return sf, sched, worker


def test_scheduler_lost_ends_with_one_message_and_keeps_finished_runs(weights_file, tmp_path, monkeypatch,
                                                                      capsys):
    sf, sched, worker = _start_cluster(tmp_path)
    try:
        gfile = tmp_path / "g.toml"
        gfile.write_text(make_grid(weights_file, seeds="[0]").text)
        monkeypatch.setattr(runner, "default_evaluator", additive_evaluator)
        out = tmp_path / "o"
        rc = main(["explore", "--grid", str(gfile), "--out", str(out), "--scheduler-file", str(sf),
                   "--shard-size", "4", "--no-progress", "--no-plots"])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 1
        assert len(err) == 1 and err[0].startswith("sbs explore: error: lost the Dask scheduler")
        assert "--resume" in err[0]
        kept = list((out / "shards").glob("*/*.json")) + list((out / "runs").glob("*.json"))
        assert len(kept) >= 2                        # shards [0, 4) and [4, 8) of the first run
        # the scheduler is gone: a second try cannot connect (exit 2, one line naming --scheduler-file)
        assert main(["explore", "--grid", str(gfile), "--out", str(out), "--resume", "--scheduler-file",
                     str(sf), "--timeout", "2", "--no-progress", "--no-plots"]) == 2
        assert "--scheduler-file" in capsys.readouterr().err
    finally:
        for p in (worker, sched):
            if p.poll() is None:
                p.kill()
            p.wait(timeout=30)


def test_cluster_arguments_exit_2_before_work(weights_file, tmp_path, capsys):
    gfile = tmp_path / "g.toml"
    gfile.write_text(make_grid(weights_file).text)
    out = tmp_path / "o"
    assert main(["explore", "--grid", str(gfile), "--out", str(out), "--jobs", "2", "--cluster",
                 "tcp://127.0.0.1:1"]) == 2
    assert "--jobs 2: not with --cluster" in capsys.readouterr().err
    assert main(["explore", "--grid", str(gfile), "--out", str(out), "--scheduler-file",
                 str(tmp_path / "none.json")]) == 2
    err = capsys.readouterr().err
    assert "--scheduler-file" in err and "not a file" in err
    assert main(["explore", "--grid", str(gfile), "--out", str(out), "--shard-size", "0"]) == 2
    assert "--shard-size 0 out of range" in capsys.readouterr().err
    assert main(["explore", "--grid", str(gfile), "--out", str(out), "--cluster", "tcp://127.0.0.1:9",
                 "--timeout", "1"]) == 2
    assert "--cluster tcp://127.0.0.1:9: no Dask scheduler answered" in capsys.readouterr().err
    assert not out.exists()                          # nothing written
