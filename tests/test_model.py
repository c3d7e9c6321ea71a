"""Sequential: shape inference, summary, batched predict, evaluate, save/load,
seeding and initialisation, a short training run, and the ``layer(...)`` factory."""
import os
import zipfile

import numpy as np
import pytest

from cnnlib import (SGD, AvgPool2D, Conv2D, Dense, Flatten, MaxPool2D, Sequential,
                    layer, softmax_cross_entropy)
from cnnlib.layers.conv import conv2d_forward_naive


# ------------------------------------------------------------------ helpers
def original_example_model(seed=None):
    """The original project's example network (28x28 grey images, 10 classes)."""
    return Sequential([
        layer("conv", (3, 3, 1, 8), (28, 28, 1), "relu", "same"),
        layer("avgPool"),
        layer("flatten", 14 * 14 * 8),
        layer("dense", 128, 1568, "relu"),
        layer("dense", 10, 128, "softmax"),
    ], seed=seed)


def small_model(seed=0, dtype=np.float32):
    model = Sequential([
        Conv2D(4, 3, (9, 8, 2), padding="same", activation="relu", dtype=dtype),
        MaxPool2D(dtype=dtype),                      # (4, 4, 4)
        Conv2D(3, (2, 3), padding="valid", activation="tanh", dtype=dtype),   # (3, 2, 3)
        AvgPool2D(dtype=dtype),                      # (1, 1, 3)
        Flatten(dtype=dtype),
        Dense(6, activation="sigmoid", dtype=dtype),
        Dense(4, activation="softmax", dtype=dtype),
    ], seed=seed)
    # non-zero biases so that save/load must carry them
    rng = np.random.default_rng(seed + 1)
    for lay in model.trainable_layers:
        lay.params["b"][:] = rng.normal(0, 0.3, lay.params["b"].shape)
    return model


def small_data(n=30, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 9, 8, 2)).astype(dtype), rng.integers(0, 4, n)


# ------------------------------------------------------------------ shapes and summary
def test_shapes_are_inferred_at_add_time():
    model = Sequential()
    model.add(layer("conv", (3, 3, 1, 8), (28, 28, 1), "relu", "same"))
    pool = layer("maxPool")
    assert not pool.built
    model.add(pool)
    assert pool.input_shape == (28, 28, 8) and pool.output_shape == (14, 14, 8)
    conv2 = Conv2D(5, (4, 3))                      # no input shape given
    model.add(conv2)
    assert conv2.output_shape == (11, 12, 5) and conv2.params["W"].shape == (4, 3, 8, 5)
    model.add(AvgPool2D())
    flat = Flatten()
    model.add(flat)
    assert flat.output_shape == (5 * 6 * 5,)
    model.add(Dense(10, activation="softmax"))
    # known before any data has flowed
    assert model.input_shape == (28, 28, 1)
    assert model.output_shape == (10,)
    assert model.layers[-1].params["W"].shape == (150, 10)


def test_unbuilt_model_builds_from_first_batch():
    model = Sequential([Conv2D(3, 3, padding="same", activation="relu"), MaxPool2D(), Flatten(),
                        Dense(2, activation="softmax")], seed=0)
    assert model.output_shape is None
    y = model.forward(np.zeros((2, 6, 4, 2), np.float32))
    assert y.shape == (2, 2)
    assert model.input_shape == (6, 4, 2) and model.output_shape == (2,)
    assert model.layers[3].params["W"].shape == (3 * 2 * 3, 2)


def test_summary_of_the_original_example_model():
    model = original_example_model(seed=0)
    text = model.summary()
    assert model.n_params == 202_202
    lines = text.splitlines()
    expected_rows = [
        ("Conv2D(8, 3x3, same, relu)", "(None, 28, 28, 8)", "80"),
        ("AvgPool2D", "(None, 14, 14, 8)", "0"),
        ("Flatten", "(None, 1568)", "0"),
        ("Dense(128, relu)", "(None, 128)", "200,832"),
        ("Dense(10, softmax)", "(None, 10)", "1,290"),
    ]
    for name, shape, params in expected_rows:
        row = [ln for ln in lines if name in ln]
        assert len(row) == 1, f"no single row for {name} in\n{text}"
        assert shape in row[0] and row[0].rstrip().endswith(params), row[0]
    assert "202,202" in lines[-1]
    assert "(None, 28, 28, 1)" in text                         # the input shape
    assert [lay.n_params for lay in model.layers] == [80, 0, 0, 200_832, 1_290]


# ------------------------------------------------------------------ predict / evaluate
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_batched_predict_equals_one_forward(dtype):
    model = small_model(dtype=dtype)
    x, _ = small_data(30, dtype=dtype)
    full = model.forward(x)
    batched = model.predict(x, batch_size=7)                 # batches 7, 7, 7, 7, 2
    assert batched.shape == (30, 4) and batched.dtype == dtype
    tol = 1e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(batched, full, rtol=tol, atol=tol)
    # each batch on its own equals the matching rows
    np.testing.assert_array_equal(batched[28:], model.forward(x[28:]))
    np.testing.assert_allclose(batched.sum(axis=1), 1.0, rtol=1e-5)


def test_astype_after_running_keeps_predictions():
    """A float32 model that has already run, converted to float64 (as for a
    gradient check) and back, predicts the same probabilities."""
    model = small_model(dtype=np.float32)
    x, _ = small_data(10)
    before = model.predict(x).astype(np.float64)
    model.astype(np.float64)
    assert model.dtype == np.float64
    after64 = model.predict(x.astype(np.float64))
    assert after64.dtype == np.float64
    np.testing.assert_allclose(after64, before, rtol=1e-5, atol=1e-6)
    model.astype(np.float32)
    np.testing.assert_allclose(model.predict(x), before, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_batch_split_over_workers_gives_the_same_gradients(dtype):
    """``workers=2`` splits a large enough batch across threads; loss, probs and
    every gradient must equal the single-thread result (weighted by slice size)."""
    single = small_model(seed=4, dtype=dtype)
    single.workers = 1
    split = small_model(seed=4, dtype=dtype)
    split.workers = 2
    x, labels = small_data(75, seed=2, dtype=dtype)       # 75 >= 2 slices of 32
    loss1, probs1 = single.compute_gradients(x, labels)
    loss2, probs2 = split.compute_gradients(x, labels)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert loss2 == pytest.approx(loss1, rel=tol)
    assert probs2.dtype == dtype
    np.testing.assert_allclose(probs2, probs1, rtol=tol, atol=tol)
    for a, b in zip(split.trainable_layers, single.trainable_layers):
        for key in b.params:
            assert a.grads[key].dtype == dtype
            np.testing.assert_allclose(a.grads[key], b.grads[key], rtol=tol, atol=tol,
                                       err_msg=f"{b.describe()} {key}")
    # predictions split over workers too
    np.testing.assert_allclose(split.predict(x, batch_size=7), single.predict(x, batch_size=7),
                               rtol=tol, atol=tol)
    # a second call after an update still agrees (replicas see the new weights)
    for model in (single, split):
        SGD(lr=0.5).step(model.trainable_layers)
    np.testing.assert_allclose(split.compute_gradients(x, labels)[1],
                               single.compute_gradients(x, labels)[1], rtol=tol, atol=tol)


def test_evaluate_matches_loss_and_accuracy_by_hand():
    model = small_model(dtype=np.float64)
    x, labels = small_data(30, dtype=np.float64)
    loss, accuracy, probs = model.evaluate(x, labels, batch_size=8)
    np.testing.assert_allclose(probs, model.predict(x), rtol=1e-13)
    assert loss == pytest.approx(-np.log(probs[np.arange(30), labels]).mean(), rel=1e-12)
    assert accuracy == pytest.approx(np.mean(probs.argmax(axis=1) == labels))
    # equals the training loss on the same batch
    train_loss, _ = model.compute_gradients(x, labels)
    assert loss == pytest.approx(train_loss, rel=1e-10)
    # accuracy is 1 when the labels are the predictions
    assert model.evaluate(x, probs.argmax(axis=1))[1] == 1.0


# ------------------------------------------------------------------ save / load
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_save_load_round_trip_is_bit_identical(tmp_path, dtype):
    model = small_model(seed=3, dtype=dtype)
    x, _ = small_data(12, dtype=dtype)
    path = model.save(tmp_path / "model.npz")
    assert os.fspath(path).endswith("model.npz")
    loaded = Sequential.load(path)
    assert loaded.dtype == dtype
    assert [type(a) for a in loaded.layers] == [type(b) for b in model.layers]
    assert loaded.summary() == model.summary()
    for a, b in zip(loaded.trainable_layers, model.trainable_layers):
        for key in b.params:
            assert a.params[key].dtype == dtype
            np.testing.assert_array_equal(a.params[key], b.params[key])
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    # the loaded model trains like the original
    labels = np.arange(12) % 4
    assert loaded.compute_gradients(x, labels)[0] == model.compute_gradients(x, labels)[0]


def test_save_adds_extension_and_leaves_no_temporary_files(tmp_path):
    model = small_model()
    path = model.save(tmp_path / "weights")
    assert os.fspath(path) == os.fspath(tmp_path / "weights.npz")
    assert sorted(os.listdir(tmp_path)) == ["weights.npz"]


def test_save_over_an_existing_file_replaces_it(tmp_path):
    x, _ = small_data(5)
    first, second = small_model(seed=1), small_model(seed=2)
    path = tmp_path / "model.npz"
    first.save(path)
    second.save(path)
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]
    np.testing.assert_array_equal(Sequential.load(path).predict(x), second.predict(x))
    assert not np.array_equal(first.predict(x), second.predict(x))


def test_interrupted_save_keeps_the_old_file_and_cleans_up(tmp_path, monkeypatch):
    x, _ = small_data(5)
    old = small_model(seed=1)
    path = tmp_path / "model.npz"
    old.save(path)
    before = path.read_bytes()

    def broken_savez(file, **arrays):
        file.write(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(KeyboardInterrupt):
        small_model(seed=2).save(path)
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]
    assert path.read_bytes() == before
    np.testing.assert_array_equal(Sequential.load(path).predict(x), old.predict(x))


def test_load_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nothing-here.npz"
    with pytest.raises(FileNotFoundError, match="nothing-here.npz"):
        Sequential.load(path)


def test_load_corrupt_file(tmp_path):
    path = tmp_path / "corrupt.npz"
    path.write_bytes(b"this is not a zip archive at all" * 10)
    with pytest.raises(ValueError, match="corrupt.npz"):
        Sequential.load(path)


def test_load_truncated_model_file(tmp_path):
    good = small_model().save(tmp_path / "good.npz")
    data = open(good, "rb").read()
    path = tmp_path / "truncated.npz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated.npz"):
        Sequential.load(path)


def test_load_foreign_npz(tmp_path):
    path = tmp_path / "foreign.npz"
    np.savez(path, x_train=np.zeros((2, 3)), y_train=np.arange(2))
    with pytest.raises(ValueError, match="foreign.npz.*not a cnnlib model"):
        Sequential.load(path)


def _rewrite(src, dst, change):
    with np.load(src) as data:
        arrays = {k: data[k] for k in data.files}
    change(arrays)
    np.savez(dst, **arrays)


def test_load_mismatched_weight_shapes(tmp_path):
    src = small_model().save(tmp_path / "good.npz")
    path = tmp_path / "bad-shapes.npz"
    _rewrite(src, path, lambda a: a.__setitem__("layer5/W", np.zeros((7, 6), np.float32)))
    with pytest.raises(ValueError, match=r"bad-shapes.npz.*layer5/W.*\(7, 6\).*\(3, 6\)"):
        Sequential.load(path)


def test_load_missing_weights(tmp_path):
    src = small_model().save(tmp_path / "good.npz")
    path = tmp_path / "no-bias.npz"
    _rewrite(src, path, lambda a: a.pop("layer0/b"))
    with pytest.raises(ValueError, match="no-bias.npz.*layer0/b"):
        Sequential.load(path)


def test_load_invalid_architecture(tmp_path):
    src = small_model().save(tmp_path / "good.npz")
    path = tmp_path / "bad-arch.npz"
    _rewrite(src, path, lambda a: a.__setitem__("architecture", np.array("[{\"class\": 1")))
    with pytest.raises(ValueError, match="bad-arch.npz"):
        Sequential.load(path)


def test_load_file_is_a_zip_without_arrays(tmp_path):
    path = tmp_path / "plain.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("readme.txt", "hello")
    with pytest.raises(ValueError, match="plain.npz"):
        Sequential.load(path)


# ------------------------------------------------------------------ seeding and init
def test_seeded_models_are_reproducible():
    a, b, c = original_example_model(0), original_example_model(0), original_example_model(1)
    for la, lb, lc in zip(a.trainable_layers, b.trainable_layers, c.trainable_layers):
        np.testing.assert_array_equal(la.params["W"], lb.params["W"])
        assert not np.array_equal(la.params["W"], lc.params["W"])
    # different layers of one model do not reuse the same random numbers
    w0 = a.trainable_layers[0].params["W"].ravel()
    w1 = a.trainable_layers[1].params["W"].ravel()[: w0.size]
    assert not np.allclose(w0 / np.std(w0), w1 / np.std(w1))


def test_unseeded_layers_differ_and_no_two_filters_are_identical():
    rng = np.random.default_rng(0)
    layers = []
    for _ in range(40):
        k = int(rng.integers(1, 6))
        c_in, c_out = int(rng.integers(1, 5)), int(rng.integers(2, 17))
        act = ["relu", "tanh", "sigmoid", None][int(rng.integers(0, 4))]
        layers.append(Conv2D(c_out, k, (8, 8, c_in), padding="same", activation=act))
    for lay in layers:
        filters = lay.params["W"].reshape(-1, lay.filters).T            # (C_out, KH*KW*C_in)
        diff = np.abs(filters[:, None, :] - filters[None, :, :]).max(axis=2)
        np.fill_diagonal(diff, np.inf)
        assert diff.min() > 0, f"two identical filters in {lay.describe()}"
    # two layers built the same way without a seed get different weights
    a = Conv2D(8, 3, (28, 28, 1))
    b = Conv2D(8, 3, (28, 28, 1))
    assert not np.array_equal(a.params["W"], b.params["W"])


@pytest.mark.parametrize("make,fan_in", [
    (lambda: Conv2D(64, 3, (8, 8, 16), activation="relu", rng=0), 3 * 3 * 16),
    (lambda: Conv2D(32, (5, 4), (8, 8, 3), padding="same", activation="relu", rng=1), 5 * 4 * 3),
    (lambda: Dense(400, 300, activation="relu", rng=2), 300),
], ids=["conv3x3x16-relu", "conv5x4x3-relu", "dense300-relu"])
def test_he_normal_for_relu_layers(make, fan_in):
    lay = make()
    W = lay.params["W"].astype(np.float64)
    std = np.sqrt(2.0 / fan_in)
    assert W.std() == pytest.approx(std, rel=0.05)
    assert abs(W.mean()) < 0.05 * std
    assert np.abs(W).max() > 3 * std                    # normal tails, not a uniform box
    np.testing.assert_array_equal(lay.params["b"], 0)


@pytest.mark.parametrize("make,fan_in,fan_out", [
    (lambda: Dense(200, 300, activation="tanh", rng=3), 300, 200),
    (lambda: Dense(10, 128, activation="softmax", rng=4), 128, 10),
    (lambda: Dense(50, 60, rng=5), 60, 50),
    (lambda: Conv2D(32, 3, (8, 8, 16), activation="sigmoid", rng=6), 9 * 16, 9 * 32),
], ids=["dense-tanh", "dense-softmax", "dense-linear", "conv-sigmoid"])
def test_glorot_uniform_for_other_layers(make, fan_in, fan_out):
    lay = make()
    W = lay.params["W"].astype(np.float64)
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    assert np.abs(W).max() <= limit
    assert np.abs(W).max() > 0.97 * limit
    assert W.std() == pytest.approx(limit / np.sqrt(3), rel=0.06)
    np.testing.assert_array_equal(lay.params["b"], 0)


# ------------------------------------------------------------------ training
def test_sgd_training_reduces_the_loss():
    """Two classes of 8x8 images: a bright vertical bar in the left half or in
    the right half, plus noise. 50 full-batch SGD steps must learn it."""
    rng = np.random.default_rng(0)
    n = 40
    labels = np.arange(n) % 2
    x = rng.normal(0, 0.2, (n, 8, 8, 1))
    cols = rng.integers(0, 4, n) + 4 * labels                          # column of the bar
    x[np.arange(n), :, cols, 0] += 1.0
    x = x.astype(np.float32)
    model = Sequential([
        layer("conv", (3, 3, 1, 4), (8, 8, 1), "relu", "same"),
        layer("maxPool"),
        layer("flatten", 4 * 4 * 4),
        layer("dense", 2, 64, "softmax"),
    ], seed=0)
    optimizer = SGD(lr=0.1)
    losses = []
    for _ in range(50):
        loss, _ = model.compute_gradients(x, labels)
        losses.append(loss)
        optimizer.step(model.trainable_layers)
    final_loss, accuracy, _ = model.evaluate(x, labels)
    assert losses[0] > 0.5                                             # ~log 2 at the start
    assert final_loss < 0.25 * losses[0], f"loss {losses[0]:.3f} -> {final_loss:.3f}"
    assert accuracy >= 0.95
    assert np.all(np.isfinite(losses))


# ------------------------------------------------------------------ the factory
def test_factory_accepts_every_documented_form():
    conv = layer("conv", (3, 3, 1, 8), (28, 28, 1), "relu", "same")
    assert isinstance(conv, Conv2D)
    assert (conv.input_shape, conv.output_shape) == ((28, 28, 1), (28, 28, 8))
    assert conv.params["W"].shape == (3, 3, 1, 8) and conv.activation_name == "relu"
    assert conv.padding == "same"

    conv_m = layer("conv", (3, 3, 1, 8), (64, 28, 28, 1), "relu", "same")
    assert conv_m.input_shape == (28, 28, 1) and conv_m.output_shape == (28, 28, 8)

    conv_default = layer("conv", (5, 5, 1, 4), (28, 28, 1))           # relu, valid
    assert conv_default.activation_name == "relu" and conv_default.padding == "valid"
    assert conv_default.output_shape == (24, 24, 4)

    max_pool, avg_pool = layer("maxPool"), layer("avgPool")
    assert isinstance(max_pool, MaxPool2D) and isinstance(avg_pool, AvgPool2D)

    flat = layer("flatten", 14 * 14 * 8, (14, 14, 8))
    assert isinstance(flat, Flatten) and flat.output_shape == (1568,)
    flat_tuple = layer("flatten", (14 * 14 * 8, 100), (100, 14, 14, 8))
    assert flat_tuple.input_shape == (14, 14, 8) and flat_tuple.output_shape == (1568,)

    dense = layer("dense", 128, 1568, "relu")
    assert isinstance(dense, Dense) and dense.params["W"].shape == (1568, 128)
    assert dense.activation_name == "relu"
    assert layer("dense", 10, 128, "softmax").activation_name == "softmax"
    assert layer("dense", 10, 128).activation_name == "relu"           # the default

    # keyword arguments go to the layer
    d64 = layer("dense", 3, 4, "tanh", dtype=np.float64, rng=0)
    assert d64.params["W"].dtype == np.float64


def test_factory_conv_forward_is_convolution_then_relu():
    conv = layer("conv", (3, 3, 1, 8), (28, 28, 1), "relu", "same")
    rng = np.random.default_rng(0)
    conv.params["b"][:] = rng.normal(0, 0.1, 8).astype(np.float32)
    x = rng.random((3, 28, 28, 1)).astype(np.float32)
    y = conv.forward(x)
    z = conv2d_forward_naive(x.astype(np.float64), conv.params["W"].astype(np.float64),
                             conv.params["b"].astype(np.float64), "same")
    expected = np.maximum(z, 0)
    assert y.shape == (3, 28, 28, 8) and y.dtype == np.float32
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
    assert (y == 0).mean() > 0.1 and (y > 0).mean() > 0.1               # ReLU did cut


def test_factory_example_model_runs_end_to_end():
    model = original_example_model(seed=0)
    x = np.random.default_rng(1).random((4, 28, 28, 1)).astype(np.float32)
    probs = model.predict(x)
    assert probs.shape == (4, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    loss, _ = model.compute_gradients(x, np.array([0, 1, 2, 3]))
    # untrained: roughly uniform, so the loss is near log(10)
    assert 1.0 < loss < 4.0
    logits_loss = softmax_cross_entropy(model.layers[-1].activation.logits, [0, 1, 2, 3])[0]
    assert loss == pytest.approx(logits_loss)
