"""``sbs cosim`` on Dask: images sharded over a local cluster give the same report as one process (content
fields, every layer's codes compared by the testbench), finished shards are files that ``--resume`` reuses,
the design and the images are checked by hash on arrival, bad cluster arguments exit 2 before any work;
under ``slow``: a worker killed in the middle of a cosim, and a scheduler that goes away.

The design is the two-layer fully connected network of ``tests/test_network_cosim.py`` with the same
weights, datapath and plan, so its Verilog is the same and the Verilator build made there (cached by
design hash) is reused here.  Every cluster listens on 127.0.0.1 only."""
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import REPO
from rtl.network.build import build_network
from rtl.network.design import expected
from sbs_model.cli import main
from sbs_model.cluster import ContentMismatch
from sbs_model.quant import QuantizedModel
from sbs_model.weights import init_weights
from sim.runner import simulator_available

pytestmark = pytest.mark.verilator
pytest.importorskip("distributed")
ok, why = simulator_available("verilator")
if not ok:
    pytest.skip(why, allow_module_level=True)

from sim import cosim as sc  # noqa: E402
from test_network_cosim import NETS  # noqa: E402

FIRST, N, SEED = 5, 6, 11
#: fields that depend on where and how the shards ran; every other field must be identical
RUN_DEPENDENT = {"jobs", "engine", "shard_size", "shards", "shards_kept", "wall_seconds", "build_seconds",
                 "images_per_second", "simulated_cycles_per_second", "throughput", "reproduce_run", "waves"}


@pytest.fixture(scope="module")
def design(tmp_path_factory):
    net, plan = NETS["fc2"]
    d = tmp_path_factory.mktemp("cosim") / "fc2"
    build_network(net, init_weights(net, 3), "int-e4m1", d, plan=plan, progress=lambda m: None)
    return d


@pytest.fixture(scope="module")
def reference(design):
    """One process, one shard of all N images; its shard files are removed (later runs start clean)."""
    rep = sc.cosim(design, n=N, first=FIRST, seed=SEED, waves=False, progress=print)
    assert rep["equal"] is True and rep["images"] == N and rep["shards"] == 1
    # the design's class of every image is the model's for test images FIRST.. with spike patterns FIRST..
    man, net, weights, dps = sc.load_design(design)
    images, _ = sc.load_images(None, FIRST, N)
    model = QuantizedModel(net, weights, dps, seed=SEED)
    assert rep["classes"] == expected(model, images, FIRST)[1]
    # and what was compared are those images with every layer's codes (a digest of them, image by image)
    vec, _ = sc.vectors(model, images, FIRST, rep["cycles_per_image"])
    h = hashlib.sha256()
    for k, im in enumerate(vec["images"]):
        h.update(sc.image_digest(FIRST + k, im).encode())
    assert rep["compared_sha256"] == h.hexdigest()
    clear_shards(design)
    return rep


def clear_shards(d):
    for p in (Path(d) / sc.SHARDS_DIR).glob("*/*.json"):
        p.unlink()


def shard_files(d) -> dict:
    """{name: text} of the finished shard files (not the temporary files of an atomic write in progress)."""
    return {p.name: p.read_text() for p in (Path(d) / sc.SHARDS_DIR).glob("*/*.json") if not p.name.startswith(".")}


def content(rep: dict) -> dict:
    return {k: v for k, v in rep.items() if k not in RUN_DEPENDENT}


def test_run_dependent_fields_are_the_documented_ones():
    assert set(sc.RUN_FIELDS) == RUN_DEPENDENT


def test_local_cluster_equals_one_process_then_resume(design, reference, capsys):
    """jobs = 2 local worker processes, 2 images per shard: the same report as one process; the shard files
    are reused by --resume (in one process), a broken one is simulated again alone.  (One test function,
    so that pytest-xdist runs the design's fixtures once.)"""
    rep = sc.cosim(design, n=N, first=FIRST, seed=SEED, jobs=2, shard_size=2, waves=False, progress=print)
    assert content(rep) == content(reference)
    assert rep["equal"] is True and rep["shards"] == 3 and rep["engine"].startswith("local Dask cluster: 2")
    workers = rep["throughput"]["workers"]
    assert sum(w["images"] for w in workers.values()) == N and all(w["images_per_s"] > 0 for w in workers.values())
    assert all("/worker-" in w for w in workers)
    before = shard_files(design)
    assert set(before) == {"5-7.json", "7-9.json", "9-11.json"}
    # nothing to simulate: the report comes from the files, identical in content
    rep = sc.cosim(design, n=N, first=FIRST, seed=SEED, resume=True, waves=False, progress=print)
    assert content(rep) == content(reference)
    assert (rep["shards_kept"], rep["shards"], rep["images_per_second"]) == (3, 3, None)
    # a shard file that is not a complete shard is simulated again (alone); the others are kept
    key_dir = next((design / sc.SHARDS_DIR).iterdir())
    (key_dir / "7-9.json").write_text('{"format": 1, "start": 7')
    rep = sc.cosim(design, n=N, first=FIRST, seed=SEED, resume=True, waves=False, progress=print)
    assert content(rep) == content(reference) and rep["shards_kept"] == 2
    after = shard_files(design)
    assert after["5-7.json"] == before["5-7.json"] and after["9-11.json"] == before["9-11.json"]
    assert json.loads(after["7-9.json"])["run"] != json.loads(before["7-9.json"])["run"]
    # a scheduler that does not answer: exit 2 with one line, nothing simulated or written
    capsys.readouterr()
    assert main(["cosim", str(design), "-n", "2", "--cluster", "tcp://127.0.0.1:9", "--timeout", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--cluster tcp://127.0.0.1:9: no Dask scheduler answered" in err[0], err
    assert shard_files(design) == after


def test_changed_design_or_images_are_refused_on_arrival():
    from fixedpoint.datapath import Datapath

    net, _ = NETS["fc2"]
    weights = init_weights(net, 3)
    dps = {i: Datapath() for i in net.sbs_layers()}
    images, labels = sc.load_images(None, 0, 2)
    text = "module sbs_network(input clk);\nendmodule\n"
    dsha = sc.design_sha256(text, "sbs_network", net, dps, weights, 100)
    ship = sc.Shipment(text, "sbs_network", net, dps, weights, 100, images, labels, 0, dsha,
                       sc.images_sha256(images, labels))
    ship.verify(dsha, ship.images_sha)
    fields = ("top", "net", "dps", "weights", "cycles", "images", "labels", "first", "design_sha", "images_sha")
    bad = sc.Shipment(text.replace("clk", "clock"), *[getattr(ship, f) for f in fields])
    with pytest.raises(ContentMismatch, match="the design arrived on .* expected " + dsha):
        sc.run_shard(bad, dsha, ship.images_sha, 0, 0, 1)   # refused before any model or simulator work
    w2 = {k: v.copy() for k, v in weights.items()}
    w2[0][0, 0] += 1
    with pytest.raises(ContentMismatch, match="the design arrived"):
        sc.Shipment(text, "sbs_network", net, dps, w2, 100, images, labels, 0, dsha, ship.images_sha).verify(
            dsha, ship.images_sha)
    img2 = images.copy()
    img2[1, 3, 3] ^= 1
    with pytest.raises(ContentMismatch, match="images arrived on"):
        sc.Shipment(text, "sbs_network", net, dps, weights, 100, img2, labels, 0, dsha, ship.images_sha).verify(
            dsha, ship.images_sha)


@pytest.mark.parametrize("args,msg", [
    (["--jobs", "2", "--cluster", "tcp://127.0.0.1:1"], "--jobs 2: not with --cluster"),
    (["--cluster", "tcp://127.0.0.1:1", "--scheduler-file", "x.json"], "give one of them"),
    (["--shard-size", "0"], "--shard-size must be in 1..1000000"),
    (["--timeout", "0"], "--timeout must be in (0, 3600]"),
    (["--jobs", "65"], "--jobs must be in 1..64"),
])
def test_cluster_arguments_exit_2_before_work(args, msg, capsys, tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "manifest.json").write_text("{}")
    assert main(["cosim", str(d), "-n", "2", "--json", str(tmp_path / "r.json")] + args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and msg in err[0], err
    assert sorted(p.name for p in d.iterdir()) == ["manifest.json"] and not (tmp_path / "r.json").exists()


# ------------------------------------------------------------------------------ faults (slow)
def _watch(design, action, timeout=600):
    """Run ``action()`` in a thread once the first shard file of this cosim is on disk; returns the thread
    and a dict that receives the shard files seen at that moment (``files``) and ``action``'s result."""
    seen = {}

    def loop():
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            files = shard_files(design)
            if files:
                seen["files"] = files
                seen["result"] = action()
                return
            time.sleep(0.05)

    th = threading.Thread(target=loop, daemon=True)
    th.start()
    return th, seen


@pytest.mark.slow
def test_worker_killed_mid_cosim(design, reference):
    """An existing loopback cluster of 2 worker processes; once the first shard is on disk, a worker that is
    simulating a shard is killed (SIGKILL): its shard is simulated again elsewhere, no finished shard is,
    and the report equals the one-process report."""
    from distributed import Client, LocalCluster

    clear_shards(design)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        pids = client.run(os.getpid)

        def kill_a_busy_worker():
            for _ in range(200):
                busy = [w for w, keys in client.processing().items() if keys]
                if busy:
                    os.kill(pids[busy[0]], signal.SIGKILL)
                    return busy[0]
                time.sleep(0.05)
            return None

        th, seen = _watch(design, kill_a_busy_worker)
        rep = sc.cosim(design, n=N, first=FIRST, seed=SEED, cluster=cluster.scheduler_address, shard_size=1,
                       waves=False, progress=print)
        th.join(timeout=60)
    assert seen.get("result") is not None, "no worker was killed while simulating"
    assert content(rep) == content(reference)
    after = shard_files(design)
    assert len(after) == N
    for name, text in seen["files"].items():        # finished before the kill: never simulated again
        assert after[name] == text


def _start_cluster(tmp_path):
    """``dask scheduler`` and one ``dask worker`` as separate processes on 127.0.0.1 (a scheduler file)."""
    sf = tmp_path / "scheduler.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "tests"), str(REPO)]))
    sched = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                              "--port", "0", "--no-dashboard", "--scheduler-file", str(sf)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.monotonic()
    while not sf.exists() and time.monotonic() - t0 < 60:
        time.sleep(0.1)
    worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file", str(sf),
                               "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return sf, sched, worker


@pytest.mark.slow
def test_scheduler_lost_one_line_then_resume(design, reference, tmp_path, capsys):
    """The scheduler is killed once the first shard is on disk: one error line, exit 1, finished shards
    kept; ``--resume`` on a local cluster simulates only the rest and gives the one-process report."""
    clear_shards(design)
    sf, sched, worker = _start_cluster(tmp_path)
    try:
        th, seen = _watch(design, lambda: sched.kill())
        rc = main(["cosim", str(design), "-n", str(N), "--first", str(FIRST), "--seed", str(SEED),
                   "--scheduler-file", str(sf), "--shard-size", "1", "--no-progress", "--no-waves"])
        th.join(timeout=60)
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 1 and "files" in seen
        assert len(err) == 1 and err[0].startswith("sbs cosim: error: lost the Dask scheduler"), err
        assert "--resume" in err[0]
        kept = shard_files(design)
        assert 1 <= len(kept) < N
        out = tmp_path / "r.json"
        assert main(["cosim", str(design), "-n", str(N), "--first", str(FIRST), "--seed", str(SEED), "--jobs", "2",
                     "--shard-size", "1", "--resume", "--no-progress", "--no-waves", "--json", str(out)]) == 0
        rep = json.loads(out.read_text())
        assert rep["shards_kept"] == len(kept) and content(rep) == content(reference)
        after = shard_files(design)
        assert all(after[k] == v for k, v in kept.items())
    finally:
        for p in (worker, sched):
            if p.poll() is None:
                p.kill()
            p.wait(timeout=30)
