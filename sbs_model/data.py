"""Datasets: IDX files, MNIST / Fashion-MNIST loading, the embedded default, preprocessing, and
placing datasets where the project finds them (``sbs data``).

Where data comes from (:func:`load_dataset`):

* ``directory=PATH``: the standard IDX file names (``t10k-images-idx3-ubyte[.gz]``,
  ``t10k-labels-idx1-ubyte[.gz]``, ``train-...``) in PATH; if PATH holds a ``SHA256SUMS`` file
  listing them, they are verified first.
* ``directory=None``: MNIST test split -> the embedded default (the first 2000 MNIST test
  images, shipped in ``sbs_model/data/``, SHA-256 checked on every load); every other
  name/split -> the user data directory ``data_dir(name)`` = ``$SBS_DATA/<name>`` or
  ``~/.cache/sbs-codesign/<name>``, filled by ``sbs data``.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from sbs_model.atomic import write_bytes

DATASETS = ("mnist", "fashion-mnist")
SPLITS = ("test", "train")
CROPS = ("center", "random")
IMAGE_HW = (28, 28)
EMBEDDED_DIR = Path(__file__).resolve().parent / "data"
EMBEDDED_COUNT = 2000
EMBEDDED_FILES = {"images": "mnist-t10k-first2000-images-idx3-ubyte.gz",
                  "labels": "mnist-t10k-first2000-labels-idx1-ubyte.gz"}

# IDX type codes -> big-endian numpy dtypes
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

# Published SHA-256 of the gzipped distribution files (MNIST: the SHA256SUMS of the original distribution;
# Fashion-MNIST: the files of github.com/zalandoresearch/fashion-mnist, whose MD5s its README lists).
KNOWN_SHA256 = {
    "mnist": {
        "t10k-images-idx3-ubyte.gz": "4e612d6003de73386763f2c35c044ab376e830da80adb2347651a1f182f103a1",
        "t10k-labels-idx1-ubyte.gz": "909a5aeb9fcec3f171b427c45622a55f69dc15dd80bd0624413cbfbe12553c1c",
        "train-images-idx3-ubyte.gz": "d2cebd02927d553943b2679536bf602ec0cdcb6555ad87dda5d640e1d425faaf",
        "train-labels-idx1-ubyte.gz": "2a107763ddf1eef92815bfbb1b855b662a7228add9dfab29de697c644d666cda",
    },
    "fashion-mnist": {
        "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    },
}
DEFAULT_URLS = {
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "fashion-mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
}
MAX_DOWNLOAD_BYTES = 64 * 2 ** 20


# --------------------------------------------------------------------------- IDX
def parse_idx(data: bytes, name: str = "IDX data") -> np.ndarray:
    """Decode IDX bytes (raw or gzip): magic ``00 00 <type> <ndim>``, ``ndim`` big-endian
    uint32 sizes, then the values.  Returns a native-endian array of the stored type."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise ValueError(f"{name}: corrupt gzip data ({exc})")
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{name}: not an IDX file (magic number must start with two zero bytes)")
    code, ndim = data[2], data[3]
    if code not in IDX_DTYPES:
        raise ValueError(f"{name}: unknown IDX type code 0x{code:02X}; allowed: "
                         f"{', '.join(f'0x{c:02X}' for c in IDX_DTYPES)}")
    if ndim < 1:
        raise ValueError(f"{name}: IDX dimension count must be >= 1, got {ndim}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{name}: truncated IDX header ({len(data)} bytes, need {header})")
    dims = tuple(int.from_bytes(data[4 + 4 * k: 8 + 4 * k], "big") for k in range(ndim))
    dtype = np.dtype(IDX_DTYPES[code])
    need = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(data) != need:
        raise ValueError(f"{name}: IDX size mismatch: dims {dims} need {need} bytes, file has {len(data)}")
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="))


def read_idx(path) -> np.ndarray:
    """Read an IDX file, raw or gzipped (detected by content, not name)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ValueError(f"{path}: file not found")
    return parse_idx(data, str(path))


def idx_bytes(array, compress: bool = False) -> bytes:
    """Encode an array as IDX bytes (gzip with mtime 0 if ``compress``: reproducible bytes)."""
    a = np.asarray(array)
    codes = {np.dtype(v).newbyteorder("="): k for k, v in IDX_DTYPES.items()}
    code = codes.get(a.dtype.newbyteorder("="))
    if code is None or a.ndim < 1:
        raise ValueError(f"array: dtype {a.dtype} / ndim {a.ndim} cannot be stored as IDX")
    head = bytes([0, 0, code, a.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in a.shape)
    raw = head + a.astype(IDX_DTYPES[code]).tobytes()
    return gzip.compress(raw, compresslevel=9, mtime=0) if compress else raw


def write_idx(path, array, compress: bool | None = None) -> None:
    """Write ``array`` as an IDX file atomically; gzipped if ``compress`` (default: name ends .gz)."""
    path = Path(path)
    write_bytes(path, idx_bytes(array, path.suffix == ".gz" if compress is None else compress))


# --------------------------------------------------------------------------- checksums
def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_sha256sums(path) -> dict[str, str]:
    """``SHA256SUMS`` (``<hex>  <name>`` lines, ``*name`` allowed) -> {name: hex}."""
    sums = {}
    for k, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 1)
        if len(parts) != 2 or len(parts[0]) != 64:
            raise ValueError(f"{path}: line {k} is not '<sha256>  <file name>'")
        sums[parts[1].lstrip("*").strip()] = parts[0].lower()
    return sums


def _check(name: str, data: bytes, expected: str) -> None:
    got = sha256_bytes(data)
    if got != expected:
        raise ValueError(f"{name}: SHA-256 mismatch: got {got}, expected {expected}")


# --------------------------------------------------------------------------- locations
def data_home() -> Path:
    """Where ``sbs data`` puts datasets: ``$SBS_DATA`` or ``~/.cache/sbs-codesign``."""
    env = os.environ.get("SBS_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "sbs-codesign"


def data_dir(name: str) -> Path:
    """The user data directory of dataset ``name``."""
    _check_name(name)
    return data_home() / name


def _check_name(name):
    if name not in DATASETS:
        raise ValueError(f"dataset name is {name!r}; allowed: {', '.join(DATASETS)}")


def file_names(split: str) -> tuple[str, str]:
    """Standard IDX base names (without .gz) of ``split``: (images, labels)."""
    if split not in SPLITS:
        raise ValueError(f"split is {split!r}; allowed: {', '.join(SPLITS)}")
    prefix = "t10k" if split == "test" else "train"
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


def _find(directory: Path, base: str) -> Path | None:
    for cand in (base + ".gz", base):
        if (directory / cand).is_file():
            return directory / cand
    return None


# --------------------------------------------------------------------------- loading
def _check_pair(images, labels, where):
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != IMAGE_HW:
        raise ValueError(f"{where}: images must be uint8 (n, 28, 28), got {images.dtype} {images.shape}")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(f"{where}: labels must be uint8 (n,), got {labels.dtype} {labels.shape}")
    if len(images) != len(labels):
        raise ValueError(f"{where}: {len(images)} images but {len(labels)} labels")
    if labels.size and labels.max() > 9:
        raise ValueError(f"{where}: labels must be in [0, 9], found {labels.max()}")


def _take(images, labels, n, where):
    if n is None:
        return images, labels
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= len(images):
        raise ValueError(f"n must be an integer in [1, {len(images)}] for {where}, got {n!r}")
    return images[:n].copy(), labels[:n].copy()


def load_embedded(n: int | None = None):
    """The embedded default: the first 2000 MNIST test images and labels (SHA-256 verified)."""
    sums = read_sha256sums(EMBEDDED_DIR / "SHA256SUMS")
    out = []
    for key in ("images", "labels"):
        fname = EMBEDDED_FILES[key]
        path = EMBEDDED_DIR / fname
        if not path.is_file() or fname not in sums:
            raise ValueError(f"embedded dataset: {path} or its SHA256SUMS entry is missing (broken install)")
        data = path.read_bytes()
        _check(str(path), data, sums[fname])
        out.append(parse_idx(data, str(path)))
    images, labels = out
    _check_pair(images, labels, "embedded dataset")
    return _take(images, labels, n, f"the embedded default ({len(images)} MNIST test images; for more, "
                                    f"run `sbs data` once and use the full set: --data {data_dir('mnist')} on "
                                    f"the command line, directory=data_dir('mnist') in Python)")


def load_dataset(name: str = "mnist", directory=None, split: str = "test", n: int | None = None):
    """-> ``(images uint8 (n, 28, 28), labels uint8 (n,))``: the first ``n`` (all if None) of the
    split.  See the module docstring for where ``directory=None`` looks."""
    _check_name(name)
    img_base, lab_base = file_names(split)
    if directory is None:
        if name == "mnist" and split == "test":
            return load_embedded(n)
        directory = data_dir(name)
        if _find(directory, img_base) is None:
            raise ValueError(f"no {name} {split} data: the embedded default holds MNIST test images only; run "
                             f"`sbs data --name {name}` once (it places the files in {directory}, where they are "
                             f"then found), or point to a directory of IDX files (--data DIR on the command line, "
                             f"directory=DIR in Python)")
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"dataset directory {directory} is a file; give the directory that holds the IDX files "
                         f"({img_base}[.gz], {lab_base}[.gz])")
    if not directory.is_dir():
        raise ValueError(f"dataset directory {directory} does not exist")
    paths = [_find(directory, b) for b in (img_base, lab_base)]
    for base, p in zip((img_base, lab_base), paths):
        if p is None:
            raise ValueError(f"{directory}: missing {base}.gz (or {base})")
    sums_file = directory / "SHA256SUMS"
    sums = read_sha256sums(sums_file) if sums_file.is_file() else {}
    arrays = []
    for p in paths:
        data = p.read_bytes()
        if p.name in sums:
            _check(str(p), data, sums[p.name])
        arrays.append(parse_idx(data, str(p)))
    images, labels = arrays
    _check_pair(images, labels, str(directory))
    return _take(images, labels, n, f"{name} {split} in {directory} ({len(images)} images)")


# --------------------------------------------------------------------------- preprocessing
def center_crop_offset(h: int, w: int, image_h: int, image_w: int) -> tuple[int, int]:
    """``(oy, ox)``: row and column of the first pixel of the centre ``h x w`` crop of an
    ``image_h x image_w`` image, ``((image_h - h) // 2, (image_w - w) // 2)``: an odd margin
    rounds down (rows and columns 2..25 for a 24x24 crop of MNIST).  The one definition of the
    centre crop: the float and quantized models, the cycle model and the RTL all use it."""
    if not (1 <= h <= image_h and 1 <= w <= image_w):
        raise ValueError(f"crop {h}x{w} does not fit the {image_h}x{image_w} image")
    return (image_h - h) // 2, (image_w - w) // 2


def preprocess(images, crop: str = "center", rng=None, eps: float = 1e-20, size: int = 24,
               onoff: bool = False, mean: float | None = None) -> np.ndarray:
    """uint8 (n, 28, 28) -> float64 (n, C, size, size): ``pixel / 255`` (float64 division), a
    ``size x size`` crop, then ``+ eps`` on every value (so a black window is uniform).

    ``crop='center'``: offset ``(28 - size) // 2`` in both axes (torchvision CenterCrop: rows
    and columns 2..25 for size 24).  ``crop='random'``: per image, independent row and column
    offsets ``rng.integers(0, 28 - size + 1)`` drawn with the numpy Generator ``rng`` (training).
    ``onoff=True`` gives C = 2 (spec section 2): ``x' = 2 (x - m)``, on = max(x', 0),
    off = max(-x', 0), with ``m`` = ``mean`` if given (e.g. the training-set mean pixel, in
    [0, 1]) else each cropped image's own mean; eps is added after the split.  Else C = 1."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(f"images must be uint8 (n, H, W), got {images.dtype} with shape {images.shape}")
    n, h, w = images.shape
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= min(h, w):
        raise ValueError(f"size must be an integer in [1, {min(h, w)}], got {size!r}")
    if not (isinstance(eps, (int, float)) and 0 <= eps < 1):
        raise ValueError(f"eps must be a number in [0, 1), got {eps!r}")
    x = images.astype(np.float64) / 255.0
    if crop == "center":
        oy, ox = center_crop_offset(size, size, h, w)
        out = x[:, oy:oy + size, ox:ox + size].copy()
    elif crop == "random":
        if not isinstance(rng, np.random.Generator):
            raise ValueError("rng must be a numpy Generator (np.random.default_rng(seed)) when crop='random'")
        oy = rng.integers(0, h - size + 1, size=n)
        ox = rng.integers(0, w - size + 1, size=n)
        out = np.empty((n, size, size), dtype=np.float64)
        for k in range(n):
            out[k] = x[k, oy[k]:oy[k] + size, ox[k]:ox[k] + size]
    else:
        raise ValueError(f"crop is {crop!r}; allowed: {', '.join(CROPS)}")
    if not onoff:
        return (out + eps)[:, None, :, :]
    if mean is None:
        m = out.mean(axis=(1, 2), keepdims=True)
    elif isinstance(mean, (int, float)) and 0 <= mean <= 1:
        m = float(mean)
    else:
        raise ValueError(f"mean must be a number in [0, 1] or None, got {mean!r}")
    xp = 2.0 * (out - m)
    return np.stack([np.maximum(xp, 0.0), np.maximum(-xp, 0.0)], axis=1) + eps


# --------------------------------------------------------------------------- placing data (sbs data)
def _wanted(split: str) -> list[str]:
    splits = SPLITS if split == "all" else (split,)
    if split != "all" and split not in SPLITS:
        raise ValueError(f"split is {split!r}; allowed: test, train, all")
    return [b + ".gz" for s in splits for b in file_names(s)]


def _fetch_url(url: str, timeout: float) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            data = resp.read(MAX_DOWNLOAD_BYTES + 1)
            length = resp.headers.get("Content-Length")
    except urllib.error.HTTPError as exc:
        raise ValueError(f"{url}: HTTP {exc.code} {exc.reason}")
    except (urllib.error.URLError, OSError) as exc:
        raise ValueError(f"{url}: download failed ({getattr(exc, 'reason', exc)})")
    if len(data) > MAX_DOWNLOAD_BYTES:
        raise ValueError(f"{url}: larger than {MAX_DOWNLOAD_BYTES} bytes, refusing")
    if length is not None and int(length) != len(data):
        raise ValueError(f"{url}: incomplete download ({len(data)} of {length} bytes)")
    return data


def place_dataset(name: str = "mnist", source=None, url: str | None = None, to=None, split: str = "all",
                  timeout: float = 60.0) -> list[Path]:
    """Put the gzipped IDX files of ``name`` (``split``: test, train or all) into ``to``
    (default ``data_dir(name)``), copied from the local directory ``source`` or downloaded
    from ``url`` (default: the dataset's usual mirror).

    Every file must match the known SHA-256 of the distribution; files copied from a
    directory holding a ``SHA256SUMS`` must also match it.  Nothing is written until every
    file has been fetched, verified and parsed as IDX; each file is then written atomically,
    and a ``SHA256SUMS`` for the placed files is written beside them.  Returns the paths."""
    _check_name(name)
    if source is not None and url is not None:
        raise ValueError("give either a source directory or a URL, not both")
    wanted = _wanted(split)
    dest = Path(to) if to is not None else data_dir(name)
    known = KNOWN_SHA256[name]
    fetched: dict[str, bytes] = {}
    if source is not None:
        src = Path(source)
        if not src.is_dir():
            raise ValueError(f"source directory {src} " + ("is a file, not a directory" if src.exists()
                                                           else "does not exist"))
        sums = read_sha256sums(src / "SHA256SUMS") if (src / "SHA256SUMS").is_file() else {}
        for fname in wanted:
            p = src / fname
            if not p.is_file():
                raise ValueError(f"{src}: missing {fname}")
            data = p.read_bytes()
            if fname in sums:
                _check(str(p), data, sums[fname])
            fetched[fname] = data
    else:
        base = (url or DEFAULT_URLS[name]).rstrip("/") + "/"
        for fname in wanted:
            fetched[fname] = _fetch_url(base + fname, timeout)
    for fname, data in fetched.items():
        _check(fname, data, known[fname])
        parse_idx(data, fname)
    out = []
    for fname, data in fetched.items():
        write_bytes(dest / fname, data)
        out.append(dest / fname)
    existing = read_sha256sums(dest / "SHA256SUMS") if (dest / "SHA256SUMS").is_file() else {}
    existing.update({f: sha256_bytes(d) for f, d in fetched.items()})
    write_bytes(dest / "SHA256SUMS", "".join(f"{h}  {f}\n" for f, h in sorted(existing.items())).encode())
    return out


def make_embedded(mnist_dir, out_dir=EMBEDDED_DIR, count: int = EMBEDDED_COUNT) -> None:
    """(Re)build the embedded default from a full MNIST directory: the first ``count`` test
    images and labels as gzipped IDX files plus their ``SHA256SUMS`` (how ``sbs_model/data/``
    was made: ``python -c "from sbs_model.data import make_embedded; make_embedded(DIR)"``)."""
    images, labels = load_dataset("mnist", mnist_dir, "test", count)
    out_dir = Path(out_dir)
    blobs = {EMBEDDED_FILES["images"]: idx_bytes(images, compress=True),
             EMBEDDED_FILES["labels"]: idx_bytes(labels, compress=True)}
    for fname, data in blobs.items():
        write_bytes(out_dir / fname, data)
    write_bytes(out_dir / "SHA256SUMS", "".join(f"{sha256_bytes(d)}  {f}\n" for f, d in sorted(blobs.items())).encode())

