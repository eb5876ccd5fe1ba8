"""``sbs data``: copy / download with SHA-256 verification, offline against a local HTTP server
on 127.0.0.1 (never anything else)."""
import functools
import http.server
import shutil
import threading

import numpy as np
import pytest

from conftest import MNIST_DIR
from sbs_model import data as D
from sbs_model.cli import main

TEST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path, monkeypatch):
    """Serve ``tmp_path/'srv'`` on 127.0.0.1 (an ephemeral port) in a thread; no proxy."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    root = tmp_path / "srv"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def _files(d):
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def test_download_verified_and_found_by_load_dataset(server, tmp_path, monkeypatch, capsys):
    root, url = server
    for f in TEST_FILES:
        shutil.copy(MNIST_DIR / f, root / f)
    monkeypatch.setenv("SBS_DATA", str(tmp_path / "home"))
    assert main(["data", "--url", url, "--split", "test"]) == 0
    dest = tmp_path / "home" / "mnist"
    assert _files(dest) == ["SHA256SUMS"] + sorted(TEST_FILES)
    for f in TEST_FILES:
        assert D.sha256_file(dest / f) == D.KNOWN_SHA256["mnist"][f]
    assert "SHA-256 verified" in capsys.readouterr().out
    images, labels = D.load_dataset("mnist", D.data_dir("mnist"), "test")
    assert images.shape == (10000, 28, 28) and labels[:3].tolist() == [7, 2, 1]


def test_corrupted_download_rejected_nothing_written(server, tmp_path, capsys):
    root, url = server
    for f in TEST_FILES:
        shutil.copy(MNIST_DIR / f, root / f)
    data = bytearray((root / TEST_FILES[1]).read_bytes())
    data[100] ^= 0xFF
    (root / TEST_FILES[1]).write_bytes(bytes(data))
    dest = tmp_path / "out"
    assert main(["data", "--url", url, "--split", "test", "--to", str(dest)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sbs data: error: t10k-labels-idx1-ubyte.gz: SHA-256 mismatch") and err.count("\n") == 1
    assert _files(dest) == []  # neither the good file nor temporary files


def test_missing_file_on_server(server, tmp_path, capsys):
    root, url = server
    shutil.copy(MNIST_DIR / TEST_FILES[0], root / TEST_FILES[0])
    assert main(["data", "--url", url, "--split", "test", "--to", str(tmp_path / "out")]) == 2
    assert "t10k-labels-idx1-ubyte.gz: HTTP 404" in capsys.readouterr().err
    assert _files(tmp_path / "out") == []


def test_copy_from_directory(tmp_path):
    dest = tmp_path / "fm"
    paths = D.place_dataset("mnist", source=MNIST_DIR, to=dest, split="all")
    assert len(paths) == 4 and _files(dest) == sorted(["SHA256SUMS", *D.KNOWN_SHA256["mnist"]])
    assert D.read_sha256sums(dest / "SHA256SUMS") == D.KNOWN_SHA256["mnist"]


def test_copy_rejects_file_not_matching_local_sums_or_known_sums(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for f in TEST_FILES + ("SHA256SUMS",):
        shutil.copy(MNIST_DIR / f, src / f)
    # a re-encoded (valid IDX, different bytes) file: fails the directory's SHA256SUMS
    D.write_idx(src / TEST_FILES[1], np.zeros(10000, np.uint8))
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte.gz: SHA-256 mismatch"):
        D.place_dataset("mnist", source=src, to=tmp_path / "out", split="test")
    # without a SHA256SUMS the known published checksum still rejects it
    (src / "SHA256SUMS").unlink()
    with pytest.raises(ValueError, match=r"SHA-256 mismatch: got [0-9a-f]{64}, expected 909a5aeb"):
        D.place_dataset("mnist", source=src, to=tmp_path / "out", split="test")
    assert _files(tmp_path / "out") == []
    with pytest.raises(ValueError, match="missing train-images-idx3-ubyte.gz"):
        D.place_dataset("mnist", source=src, to=tmp_path / "out", split="train")
    with pytest.raises(ValueError, match="either a source directory or a URL"):
        D.place_dataset("mnist", source=src, url="http://127.0.0.1:1/")
