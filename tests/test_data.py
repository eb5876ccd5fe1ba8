"""Datasets: IDX reading, MNIST loading, embedded default, preprocessing."""
import gzip
import shutil

import numpy as np
import pytest

from conftest import MNIST_DIR
from sbs_model import data as D


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path, dtype, gz):
    a = (np.arange(2 * 3 * 5) - 7).reshape(2, 3, 5).astype(dtype)
    p = tmp_path / ("a.idx.gz" if gz else "a.idx")
    D.write_idx(p, a)
    raw = p.read_bytes()
    assert (raw[:2] == b"\x1f\x8b") == gz
    b = D.read_idx(p)
    assert b.dtype == np.dtype(dtype) and np.array_equal(a, b)


def test_idx_header_layout_by_hand(tmp_path):
    # magic 0x00000801 (uint8, 1 dim), size 3, values 7 8 9 -- written without our encoder
    p = tmp_path / "labels"
    p.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9]))
    assert D.read_idx(p).tolist() == [7, 8, 9]
    q = tmp_path / "img.gz"
    q.write_bytes(gzip.compress(bytes([0, 0, 0x0B, 2, 0, 0, 0, 1, 0, 0, 0, 2, 1, 2, 0xFF, 0xFE])))
    assert D.read_idx(q).tolist() == [[258, -2]]


def test_idx_errors(tmp_path):
    p = tmp_path / "x"
    p.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 4, 1, 2, 3]))
    with pytest.raises(ValueError, match=r"size mismatch: dims \(4,\) need 12 bytes, file has 11"):
        D.read_idx(p)
    p.write_bytes(bytes([0, 0, 0x42, 1, 0, 0, 0, 1, 1]))
    with pytest.raises(ValueError, match="unknown IDX type code 0x42"):
        D.read_idx(p)
    p.write_bytes(b"\x01\x02\x08\x01")
    with pytest.raises(ValueError, match="not an IDX file"):
        D.read_idx(p)
    p.write_bytes(gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 2, 1, 2]))[:-6])
    with pytest.raises(ValueError, match="corrupt gzip"):
        D.read_idx(p)
    with pytest.raises(ValueError, match="file not found"):
        D.read_idx(tmp_path / "nope")


def test_shared_mnist_test_set_loads_with_checksums():
    sums = D.read_sha256sums(MNIST_DIR / "SHA256SUMS")
    assert sums == {k: v for k, v in D.KNOWN_SHA256["mnist"].items()}
    for name, h in sums.items():
        assert D.sha256_file(MNIST_DIR / name) == h
    images, labels = D.load_dataset("mnist", MNIST_DIR, "test")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8 and labels.dtype == np.uint8
    assert labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert images.max() == 255 and images.min() == 0


def test_directory_checksum_mismatch_is_rejected(tmp_path):
    for f in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "SHA256SUMS"):
        shutil.copy(MNIST_DIR / f, tmp_path / f)
    images, labels = D.load_dataset("mnist", tmp_path, "test", n=5)
    assert images.shape == (5, 28, 28)
    lab = D.read_idx(tmp_path / "t10k-labels-idx1-ubyte.gz")
    lab[0] = 3
    D.write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", lab)
    with pytest.raises(ValueError, match="SHA-256 mismatch"):
        D.load_dataset("mnist", tmp_path, "test")
    with pytest.raises(ValueError, match=r"missing train-images-idx3-ubyte.gz"):
        D.load_dataset("mnist", tmp_path, "train")


def test_embedded_default_equals_first_2000_of_test_set():
    emb_i, emb_l = D.load_dataset()  # directory=None: embedded default
    full_i, full_l = D.load_dataset("mnist", MNIST_DIR, "test", n=2000)
    assert emb_i.shape == (2000, 28, 28) and np.array_equal(emb_i, full_i) and np.array_equal(emb_l, full_l)
    i, l = D.load_dataset(n=10)
    assert np.array_equal(i, full_i[:10]) and l.tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    total = sum(p.stat().st_size for p in D.EMBEDDED_DIR.iterdir())
    assert total < 1_000_000
    assert (D.EMBEDDED_DIR / "LICENSE-MNIST.md").read_text().count("CC BY-SA 3.0") >= 1
    with pytest.raises(ValueError, match=r"n must be an integer in \[1, 2000\]"):
        D.load_dataset(n=2001)


def test_embedded_default_is_verified(tmp_path, monkeypatch):
    for f in D.EMBEDDED_DIR.iterdir():
        shutil.copy(f, tmp_path / f.name)
    monkeypatch.setattr(D, "EMBEDDED_DIR", tmp_path)
    p = tmp_path / D.EMBEDDED_FILES["labels"]
    lab = D.read_idx(p)
    lab[5] = (lab[5] + 1) % 10
    D.write_idx(p, lab)
    with pytest.raises(ValueError, match="SHA-256 mismatch"):
        D.load_dataset()


def test_none_directory_train_uses_user_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SBS_DATA", str(tmp_path))
    with pytest.raises(ValueError, match=r"no mnist train data: .*run `sbs data --name mnist`"):
        D.load_dataset("mnist", None, "train")
    with pytest.raises(ValueError, match=r"no fashion-mnist test data"):
        D.load_dataset("fashion-mnist")
    d = tmp_path / "mnist"
    d.mkdir()
    imgs = np.random.default_rng(0).integers(0, 256, (4, 28, 28), dtype=np.uint8)
    D.write_idx(d / "train-images-idx3-ubyte.gz", imgs)
    D.write_idx(d / "train-labels-idx1-ubyte", np.array([1, 2, 3, 4], np.uint8))
    i, l = D.load_dataset("mnist", None, "train")
    assert np.array_equal(i, imgs) and l.tolist() == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="dataset name is 'cifar'; allowed: mnist, fashion-mnist"):
        D.load_dataset("cifar")
    with pytest.raises(ValueError, match="split is 'val'; allowed: test, train"):
        D.load_dataset("mnist", d, "val")


def test_preprocess_center_crop_exact():
    imgs = np.random.default_rng(1).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    x = D.preprocess(imgs)
    assert x.shape == (3, 1, 24, 24) and x.dtype == np.float64
    for k in range(3):
        for r in range(24):
            for c in range(24):
                assert x[k, 0, r, c] == float(imgs[k, r + 2, c + 2]) / 255.0 + 1e-20
    black = D.preprocess(np.zeros((1, 28, 28), np.uint8))
    assert np.all(black == 1e-20)
    assert D.preprocess(np.full((1, 28, 28), 255, np.uint8)).max() == 1.0


def test_center_crop_offset_is_torchvision_center_crop():
    # rows and columns 2..25 for the reference network's 24x24; an odd margin rounds down
    assert D.center_crop_offset(24, 24, 28, 28) == (2, 2)
    assert D.center_crop_offset(25, 27, 28, 28) == (1, 0)
    assert D.center_crop_offset(28, 28, 28, 28) == (0, 0)
    assert D.center_crop_offset(1, 3, 28, 28) == (13, 12)
    for h, w in ((0, 5), (5, 29), (29, 5)):
        with pytest.raises(ValueError, match=f"crop {h}x{w} does not fit the 28x28 image"):
            D.center_crop_offset(h, w, 28, 28)


def test_preprocess_random_crop_reproducible_and_covers_offsets():
    imgs = np.zeros((400, 28, 28), np.uint8)
    imgs[:, 0, 0] = 255  # the top-left pixel is inside the crop only at offset (0, 0)
    imgs[:, 27, 27] = 200  # the bottom-right pixel only at offset (4, 4)
    a = D.preprocess(imgs, crop="random", rng=np.random.default_rng(7))
    b = D.preprocess(imgs, crop="random", rng=np.random.default_rng(7))
    assert np.array_equal(a, b)
    assert 0 < (a[:, 0, 0, 0] == 1.0).sum() < 60 and 0 < (a[:, 0, 23, 23] == 200 / 255).sum() < 60
    row = np.arange(28, dtype=np.uint8)[None, :, None] * np.ones((1, 1, 28), np.uint8)
    offs = D.preprocess(np.repeat(row, 300, 0), crop="random", rng=np.random.default_rng(1), eps=0)[:, 0, 0, 0]
    assert sorted(set(np.round(offs * 255).astype(int).tolist())) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="rng must be a numpy Generator"):
        D.preprocess(imgs, crop="random")
    with pytest.raises(ValueError, match="crop is 'middle'; allowed: center, random"):
        D.preprocess(imgs, crop="middle")
    with pytest.raises(ValueError, match=r"images must be uint8 \(n, H, W\)"):
        D.preprocess(imgs.astype(np.float32))


def test_preprocess_onoff_channels():
    imgs = np.zeros((1, 28, 28), np.uint8)
    imgs[0, 2:14, :] = 255  # top half of the crop white, bottom half black: mean 0.5
    x = D.preprocess(imgs, onoff=True, eps=0.0)
    assert x.shape == (1, 2, 24, 24)
    assert np.all(x[0, 0, :12] == 1.0) and np.all(x[0, 1, :12] == 0.0)
    assert np.all(x[0, 0, 12:] == 0.0) and np.all(x[0, 1, 12:] == 1.0)
    y = D.preprocess(imgs, onoff=True, eps=0.0, mean=0.25)
    assert np.all(y[0, 0, :12] == 1.5) and np.all(y[0, 1, 12:] == 0.5)
