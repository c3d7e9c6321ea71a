"""Finite-difference gradient checks (float64) for every layer, the loss and a
whole model, plus the naive convolution oracle, padding and pooling details,
numerical stability of the activations and dtype preservation (float32).

Every backward pass must agree with centred differences to a max relative
error below 1e-7 (``cnnlib.gradcheck.rel_error``). Inputs of ReLU and max-pool
are kept away from kinks and ties, so each check is deterministic.
"""
import warnings

import numpy as np
import pytest

import cnnlib
from cnnlib import (SGD, Adam, AvgPool2D, Conv2D, Dense, Flatten, MaxPool2D, Momentum, ReLU,
                    Sequential, Sigmoid, Softmax, Tanh, check_layer, numerical_gradient,
                    rel_error, softmax_cross_entropy)
from cnnlib.layers.conv import conv2d_backward_naive, conv2d_forward_naive

TOL = 1e-7          # max relative error allowed for float64 gradient checks
MARGIN = 1e-4       # minimum distance of ReLU inputs from 0 and between max-pool candidates


# ------------------------------------------------------------------ helpers
def assert_gradcheck(errors, context):
    """``errors`` is the dict returned by ``check_layer``."""
    bad = {k: v for k, v in errors.items() if not v < TOL}
    assert not bad, f"{context}: relative errors above {TOL}: {bad} (all: {errors})"


def conv_pre_activation(layer, x):
    """Linear part of a float64 Conv2D, via the naive oracle."""
    return conv2d_forward_naive(x, layer.params["W"], layer.params["b"], layer.padding)


def window_gap(a):
    """Smallest gap between the largest and the second largest value of each
    2x2 pooling window of ``a`` (N, H, W, C), ignoring windows whose maximum is
    exactly 0 (all inputs were cut by a ReLU: no gradient flows there)."""
    n, h, w, c = a.shape
    oh, ow = h // 2, w // 2
    win = a[:, :2 * oh, :2 * ow, :].reshape(n, oh, 2, ow, 2, c)       # (N, OH, 2, OW, 2, C)
    win = win.transpose(0, 1, 3, 5, 2, 4).reshape(-1, 4)               # (N*OH*OW*C, 4)
    top2 = np.sort(win, axis=1)[:, -2:]                                # (windows, 2)
    live = top2[:, 1] != 0
    return np.inf if not live.any() else float((top2[live, 1] - top2[live, 0]).min())


def distinct_values(rng, shape, spacing=0.05):
    """Float64 array of ``shape`` whose entries are all distinct, spaced by ``spacing``."""
    size = int(np.prod(shape))
    values = (rng.permutation(size) - size / 2) * spacing
    return values.reshape(shape).astype(np.float64)


def away_from_zero(rng, shape, margin=0.05):
    """Standard normal values pushed at least ``margin`` away from 0 (ReLU kink)."""
    z = rng.standard_normal(shape)
    return z + np.sign(z) * margin + (z == 0) * margin


# ------------------------------------------------------------------ Conv2D
# (N, H, W, C_in, C_out, KH, KW, padding, activation)
CONV_CONFIGS = [
    (1, 5, 7, 1, 2, 1, 1, "same", None),
    (2, 6, 5, 3, 2, 2, 2, "same", "relu"),
    (1, 7, 6, 2, 3, 3, 3, "same", "tanh"),
    (2, 5, 6, 1, 2, 2, 3, "same", "sigmoid"),
    (1, 6, 7, 3, 2, 4, 3, "same", None),
    (1, 6, 6, 2, 2, 5, 5, "same", "relu"),
    (1, 5, 7, 1, 2, 1, 1, "valid", "relu"),
    (2, 6, 5, 3, 2, 2, 2, "valid", None),
    (1, 7, 6, 2, 3, 3, 3, "valid", "relu"),
    (2, 5, 6, 1, 2, 2, 3, "valid", "tanh"),
    (1, 6, 7, 3, 2, 4, 3, "valid", "sigmoid"),
    (1, 6, 6, 2, 2, 5, 5, "valid", None),
    # 4+ input channels take the channels-last im2col path
    (2, 5, 6, 4, 3, 3, 3, "same", "relu"),
    (1, 6, 5, 5, 2, 2, 3, "same", None),
    (2, 6, 6, 4, 2, 3, 2, "valid", "tanh"),
    (1, 5, 7, 6, 3, 4, 4, "valid", "relu"),
]


def conv_id(cfg):
    n, h, w, cin, cout, kh, kw, pad, act = cfg
    return f"{pad}-k{kh}x{kw}-n{n}-{h}x{w}x{cin}-to{cout}-{act or 'linear'}"


@pytest.mark.parametrize("cfg", CONV_CONFIGS, ids=[conv_id(c) for c in CONV_CONFIGS])
def test_conv2d_gradcheck(cfg):
    n, h, w, cin, cout, kh, kw, pad, act = cfg
    # Try seeds in a fixed order until no ReLU input sits near its kink.
    for seed in range(100):
        rng = np.random.default_rng(seed)
        layer = Conv2D(cout, (kh, kw), (h, w, cin), padding=pad, activation=act,
                       rng=rng, dtype=np.float64)
        layer.params["b"][:] = rng.normal(0, 0.5, cout)      # non-zero biases
        x = rng.standard_normal((n, h, w, cin))
        if act != "relu" or np.abs(conv_pre_activation(layer, x)).min() > MARGIN:
            break
    else:
        pytest.fail("no seed keeps the ReLU inputs away from 0")
    assert layer.forward(x).shape == (n,) + layer.output_shape
    errors = check_layer(layer, x, seed=seed)
    assert set(errors) == {"x", "W", "b"}
    assert_gradcheck(errors, conv_id(cfg))


# ------------------------------------------------------------------ Dense
@pytest.mark.parametrize("activation", [None, "relu", "tanh", "sigmoid", "softmax"],
                         ids=lambda a: f"dense-{a or 'linear'}")
def test_dense_gradcheck(activation):
    for seed in range(100):
        rng = np.random.default_rng(seed)
        layer = Dense(5, 7, activation=activation, rng=rng, dtype=np.float64)
        layer.params["b"][:] = rng.normal(0, 0.5, 5)
        x = rng.standard_normal((4, 7))
        z = x @ layer.params["W"] + layer.params["b"]
        if activation != "relu" or np.abs(z).min() > MARGIN:
            break
    errors = check_layer(layer, x, seed=seed)
    assert set(errors) == {"x", "W", "b"}
    assert_gradcheck(errors, f"Dense activation={activation}")


# ------------------------------------------------------------------ pooling, flatten
@pytest.mark.parametrize("pool_cls", [MaxPool2D, AvgPool2D], ids=["max", "avg"])
@pytest.mark.parametrize("shape", [(2, 4, 6, 3), (1, 5, 7, 2), (2, 6, 5, 1), (1, 3, 3, 2)],
                         ids=["even-4x6", "odd-5x7", "mixed-6x5", "odd-3x3"])
def test_pool_gradcheck(pool_cls, shape):
    rng = np.random.default_rng(sum(shape))
    x = distinct_values(rng, shape)            # no ties, gaps of 0.05 >> h
    layer = pool_cls(dtype=np.float64)
    assert layer.forward(x).shape == (shape[0], shape[1] // 2, shape[2] // 2, shape[3])
    errors = check_layer(layer, x)
    assert set(errors) == {"x"}
    assert_gradcheck(errors, f"{pool_cls.__name__} {shape}")


def test_flatten_gradcheck():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 4, 5, 2))
    layer = Flatten(dtype=np.float64)
    y = layer.forward(x)
    assert y.shape == (3, 40)
    np.testing.assert_array_equal(y[1], x[1].ravel())       # row-major, C fastest
    assert_gradcheck(check_layer(layer, x), "Flatten")


# ------------------------------------------------------------------ activations
@pytest.mark.parametrize("act_cls,shape", [
    (ReLU, (3, 4, 5, 2)), (ReLU, (4, 6)), (Tanh, (3, 4, 5, 2)), (Tanh, (4, 6)),
    (Sigmoid, (3, 4, 5, 2)), (Sigmoid, (4, 6)), (Softmax, (4, 6)), (Softmax, (1, 3)),
], ids=lambda v: v.__name__ if isinstance(v, type) else "x".join(map(str, v)))
def test_activation_gradcheck(act_cls, shape):
    rng = np.random.default_rng(len(shape) * 10 + shape[-1])
    x = away_from_zero(rng, shape) * 2
    assert np.abs(x).min() >= 0.05
    errors = check_layer(act_cls(dtype=np.float64), x)
    assert_gradcheck(errors, act_cls.__name__)


def test_relu_backward_values_exact():
    # Not only consistent: the gradient is exactly dout where x > 0 and 0 elsewhere.
    x = np.array([[-2.0, -0.5, 0.5, 3.0]])
    layer = ReLU(dtype=np.float64)
    np.testing.assert_array_equal(layer.forward(x), [[0, 0, 0.5, 3.0]])
    np.testing.assert_array_equal(layer.backward(np.array([[1.0, 2.0, 3.0, 4.0]])),
                                  [[0, 0, 3.0, 4.0]])


# ------------------------------------------------------------------ loss
@pytest.mark.parametrize("n,k,scale", [(1, 2, 1.0), (5, 10, 1.0), (8, 3, 5.0), (4, 7, 0.1)],
                         ids=lambda v: str(v))
def test_softmax_cross_entropy_gradcheck(n, k, scale):
    rng = np.random.default_rng(n * k)
    logits = rng.standard_normal((n, k)) * scale
    labels = rng.integers(0, k, n)
    loss, dlogits, probs = softmax_cross_entropy(logits, labels)

    # Loss value by hand: -mean log softmax at the labels.
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert loss == pytest.approx(-np.log(p[np.arange(n), labels]).mean(), rel=1e-12)
    np.testing.assert_allclose(probs, p, rtol=1e-12)

    numeric = numerical_gradient(lambda: softmax_cross_entropy(logits, labels)[0], logits)
    assert dlogits.shape == (n, k) and dlogits.dtype == np.float64
    assert rel_error(dlogits, numeric) < TOL


# ------------------------------------------------------------------ whole model
def build_small_model(seed):
    rng = np.random.default_rng(seed)
    layers = [
        Conv2D(3, 3, (8, 7, 2), padding="same", activation="relu", rng=rng, dtype=np.float64),
        MaxPool2D(dtype=np.float64),                                  # (4, 3, 3)
        Conv2D(4, (2, 2), padding="valid", activation="tanh", rng=rng, dtype=np.float64),
        AvgPool2D(dtype=np.float64),                                  # (3, 2, 4) -> (1, 1, 4)
        Flatten(dtype=np.float64),
        Dense(5, activation="sigmoid", rng=rng, dtype=np.float64),
        Dense(3, activation="softmax", rng=rng, dtype=np.float64),
    ]
    model = Sequential(layers)
    for layer in model.trainable_layers:
        layer.params["b"][:] = rng.normal(0, 0.3, layer.params["b"].shape)
    x = rng.standard_normal((3, 8, 7, 2))
    labels = rng.integers(0, 3, 3)
    return model, x, labels


def test_sequential_model_gradcheck():
    for seed in range(200):
        model, x, labels = build_small_model(seed)
        conv = model.layers[0]
        z = conv_pre_activation(conv, x)
        if np.abs(z).min() > MARGIN and window_gap(np.maximum(z, 0)) > MARGIN:
            break
    else:
        pytest.fail("no seed keeps ReLU/max-pool inputs away from kinks and ties")
    assert model.output_shape == (3,)
    assert [layer.output_shape for layer in model.layers][:4] == [
        (8, 7, 3), (4, 3, 3), (3, 2, 4), (1, 1, 4)]

    loss, probs = model.compute_gradients(x, labels)
    assert probs.shape == (3, 3) and np.isfinite(loss)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-12)
    analytic = [{k: g.copy() for k, g in layer.grads.items()} for layer in model.trainable_layers]

    def f():
        return model.compute_gradients(x, labels)[0]

    checked = 0
    for index, (layer, grads) in enumerate(zip(model.trainable_layers, analytic)):
        assert set(grads) == set(layer.params) == {"W", "b"}
        for key, w in layer.params.items():
            err = rel_error(grads[key], numerical_gradient(f, w))
            assert err < TOL, f"trainable layer {index} ({layer.describe()}) {key}: {err}"
            checked += 1
    assert checked == 8


# ------------------------------------------------------------------ naive oracle
@pytest.mark.parametrize("cfg", [
    (2, 6, 5, 3, 4, 3, 3, "same"), (1, 7, 6, 2, 3, 2, 2, "same"),
    (2, 5, 8, 1, 2, 4, 3, "same"), (1, 6, 6, 2, 5, 5, 5, "valid"),
    (3, 5, 7, 3, 2, 2, 3, "valid"), (1, 4, 4, 1, 1, 1, 1, "valid"),
    (2, 6, 5, 4, 3, 3, 3, "same"), (1, 7, 6, 5, 2, 2, 2, "same"),
    (2, 6, 7, 6, 3, 3, 4, "valid"), (1, 4, 4, 8, 2, 1, 1, "valid"),
], ids=lambda c: f"{c[7]}-k{c[5]}x{c[6]}-{c[1]}x{c[2]}x{c[3]}-to{c[4]}")
def test_conv2d_matches_naive_oracle(cfg):
    n, h, w, cin, cout, kh, kw, pad = cfg
    rng = np.random.default_rng(h * w + kh)
    layer = Conv2D(cout, (kh, kw), (h, w, cin), padding=pad, rng=rng, dtype=np.float64)
    layer.params["b"][:] = rng.standard_normal(cout)
    x = rng.standard_normal((n, h, w, cin))
    expected = conv2d_forward_naive(x, layer.params["W"], layer.params["b"], pad)
    y = layer.forward(x)
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)

    dz = rng.standard_normal(y.shape)
    dx_ref, dW_ref, db_ref = conv2d_backward_naive(dz, x, layer.params["W"], pad)
    dx = layer.backward(dz)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.grads["W"], dW_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.grads["b"], db_ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("c_in", [1, 6], ids=["1-channel", "6-channels"])
@pytest.mark.parametrize("padding", ["same", "valid"])
def test_conv2d_reused_across_batch_sizes_and_dtypes(c_in, padding):
    """Scratch buffers are reused between calls: results must not depend on
    the previous call's batch size or dtype (e.g. after ``astype``)."""
    rng = np.random.default_rng(c_in)
    layer = Conv2D(3, 3, (6, 5, c_in), padding=padding, rng=rng, dtype=np.float64)
    layer.params["b"][:] = [1.0, -2.0, 3.0]
    for n, dtype in [(3, np.float64), (1, np.float64), (3, np.float64), (3, np.float32),
                     (2, np.float32), (3, np.float64), (3, np.float32)]:
        if layer.dtype != dtype:
            layer.astype(dtype)
        x = rng.standard_normal((n, 6, 5, c_in)).astype(dtype)
        y = layer.forward(x)
        ref = conv2d_forward_naive(x.astype(np.float64), layer.params["W"].astype(np.float64),
                                   layer.params["b"].astype(np.float64), padding)
        tol = 1e-12 if dtype == np.float64 else 1e-5
        assert y.dtype == dtype
        np.testing.assert_allclose(y, ref, rtol=tol, atol=tol,
                                   err_msg=f"batch {n}, {np.dtype(dtype).name}")
        dz = rng.standard_normal(y.shape).astype(dtype)
        layer.backward(dz)
        _, dW_ref, db_ref = conv2d_backward_naive(dz.astype(np.float64), x.astype(np.float64),
                                                  layer.params["W"].astype(np.float64), padding)
        np.testing.assert_allclose(layer.grads["W"], dW_ref, rtol=tol, atol=tol)
        np.testing.assert_allclose(layer.grads["b"], db_ref, rtol=tol, atol=tol)


def conv_valid_by_hand(xp, W, b):
    """Valid cross-correlation written with explicit loops (independent of cnnlib)."""
    kh, kw, _, cout = W.shape
    n, hp, wp, _ = xp.shape
    out = np.zeros((n, hp - kh + 1, wp - kw + 1, cout))
    for i in range(out.shape[1]):
        for j in range(out.shape[2]):
            patch = xp[:, i:i + kh, j:j + kw, :]                      # (N, KH, KW, C_in)
            out[:, i, j, :] = np.tensordot(patch, W, axes=3) + b
    return out


@pytest.mark.parametrize("kernel,pads", [
    ((2, 2), ((0, 1), (0, 1))),
    ((4, 3), ((1, 2), (1, 1))),
    ((2, 5), ((0, 1), (2, 2))),
    ((3, 3), ((1, 1), (1, 1))),
], ids=["k2x2", "k4x3", "k2x5", "k3x3"])
def test_same_padding_puts_extra_row_and_column_bottom_right(kernel, pads):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 6, 7, 2))
    layer = Conv2D(3, kernel, (6, 7, 2), padding="same", rng=rng, dtype=np.float64)
    layer.params["b"][:] = rng.standard_normal(3)
    W, b = layer.params["W"], layer.params["b"]
    xp = np.pad(x, ((0, 0),) + pads + ((0, 0),))
    expected = conv_valid_by_hand(xp, W, b)
    y = layer.forward(x)
    assert y.shape == (2, 6, 7, 3)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    if kernel[0] % 2 == 0:
        # Padding on the wrong side (top instead of bottom) must give a different answer.
        (top, bottom), cols = pads
        wrong = conv_valid_by_hand(np.pad(x, ((0, 0), (bottom, top), cols, (0, 0))), W, b)
        assert np.abs(y - wrong).max() > 1e-3


# ------------------------------------------------------------------ max-pool routing
def test_maxpool_ties_route_gradient_to_top_left_only():
    x = np.ones((2, 4, 6, 3))                                         # every window all-equal
    layer = MaxPool2D(dtype=np.float64)
    np.testing.assert_array_equal(layer.forward(x), np.ones((2, 2, 3, 3)))
    dout = np.random.default_rng(0).uniform(1, 2, (2, 2, 3, 3))
    dx = layer.backward(dout)
    expected = np.zeros_like(x)
    expected[:, 0::2, 0::2, :] = dout
    np.testing.assert_array_equal(dx, expected)
    # exactly one receiver per window
    win = (dx != 0).reshape(2, 2, 2, 3, 2, 3).sum(axis=(2, 4))
    np.testing.assert_array_equal(win, 1)


def test_maxpool_partial_tie_uses_first_max_in_row_major_order():
    # Window [[1, 3], [3, 2]]: top-right and bottom-left tie; top-right comes first.
    # Window [[0, 0], [5, 5]]: bottom-left comes first.
    x = np.array([[1.0, 3.0, 0.0, 0.0],
                  [3.0, 2.0, 5.0, 5.0]]).reshape(1, 2, 4, 1)
    layer = MaxPool2D(dtype=np.float64)
    np.testing.assert_array_equal(layer.forward(x).ravel(), [3.0, 5.0])
    dx = layer.backward(np.array([10.0, 20.0]).reshape(1, 1, 2, 1))
    np.testing.assert_array_equal(dx.reshape(2, 4), [[0, 10, 0, 0], [0, 0, 20, 0]])


@pytest.mark.parametrize("pool_cls", [MaxPool2D, AvgPool2D], ids=["max", "avg"])
def test_pool_odd_size_drops_last_row_and_column(pool_cls):
    rng = np.random.default_rng(11)
    x = distinct_values(rng, (2, 5, 7, 3))
    layer = pool_cls(dtype=np.float64)
    y = layer.forward(x)
    assert y.shape == (2, 2, 3, 3) and layer.output_shape == (2, 3, 3)
    win = x[:, :4, :6, :].reshape(2, 2, 2, 3, 2, 3)                  # (N, OH, 2, OW, 2, C)
    expected = win.max(axis=(2, 4)) if pool_cls is MaxPool2D else win.mean(axis=(2, 4))
    np.testing.assert_allclose(y, expected, rtol=1e-12)
    dx = layer.backward(rng.uniform(1, 2, y.shape))
    assert np.all(dx[:, 4, :, :] == 0) and np.all(dx[:, :, 6, :] == 0)
    assert np.all(dx[:, :4, :6, :].reshape(2, 2, 2, 3, 2, 3).sum(axis=(2, 4)) > 0)


def test_avgpool_backward_spreads_a_quarter():
    layer = AvgPool2D(dtype=np.float64)
    layer.forward(np.zeros((1, 2, 2, 1)))
    np.testing.assert_array_equal(layer.backward(np.full((1, 1, 1, 1), 8.0)),
                                  np.full((1, 2, 2, 1), 2.0))


# ------------------------------------------------------------------ stability
EXTREME = [1e4, -1e4, 0.0, 50.0, -50.0, 1e-3, 9999.5, -9999.5]


def _activation_outputs(dtype):
    z = np.array([EXTREME], dtype=dtype)                             # (1, 8)
    out = {}
    for cls in (Sigmoid, Softmax):
        layer = cls(dtype=dtype)
        y = layer.forward(z)
        out[cls.__name__] = (y, layer.backward(np.ones_like(z)))
    loss0, d0, p0 = softmax_cross_entropy(np.array([[1e4, -1e4]], dtype=dtype), [0])
    loss1, d1, p1 = softmax_cross_entropy(np.array([[1e4, -1e4]], dtype=dtype), [1])
    out["loss"] = (loss0, loss1, d0, d1, p0, p1)
    return z, out


def _check_activation_outputs(dtype, z, out):
    y, dz = out["Sigmoid"]
    assert y.dtype == dtype and dz.dtype == dtype
    assert np.isfinite(y).all() and np.isfinite(dz).all()
    assert y[0, 0] == 1.0 and y[0, 1] == 0.0 and y[0, 2] == 0.5
    np.testing.assert_allclose(y[0, 5], 1 / (1 + np.exp(-1e-3)), rtol=1e-6)
    y, dz = out["Softmax"]
    assert y.dtype == dtype and np.isfinite(y).all() and np.isfinite(dz).all()
    assert y[0, 0] == pytest.approx(1 / (1 + np.exp(-0.5)), rel=1e-6)   # 1e4 vs 9999.5
    assert y.sum() == pytest.approx(1.0, rel=1e-6)
    loss0, loss1, d0, d1, p0, p1 = out["loss"]
    assert loss0 == 0.0
    assert loss1 == pytest.approx(2e4, rel=1e-6)
    np.testing.assert_array_equal(p0, [[1.0, 0.0]])
    np.testing.assert_array_equal(d0, [[0.0, 0.0]])
    np.testing.assert_array_equal(d1, [[1.0, -1.0]])
    assert d1.dtype == dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_activations_stable_no_overflow_or_invalid(dtype):
    """Overflow, division by zero and invalid operations raise; underflow to 0
    is allowed here (numpy's default)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", divide="raise", invalid="raise"):
            z, out = _activation_outputs(dtype)
    _check_activation_outputs(dtype, z, out)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_activations_stable_under_errstate_all_raise(dtype):
    """The issue asks for no floating-point warnings even under
    ``np.errstate(all="raise")`` (how a learner hunts exploding numbers), which
    includes the harmless underflow of ``exp(-1e4)`` to 0."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            z, out = _activation_outputs(dtype)
    _check_activation_outputs(dtype, z, out)


# ------------------------------------------------------------------ dtype preservation
def _float32_layers():
    rng = np.random.default_rng(0)
    return [
        ("conv-same-relu", Conv2D(3, 3, (6, 5, 2), padding="same", activation="relu", rng=rng),
         rng.standard_normal((2, 6, 5, 2))),
        ("conv-valid-sigmoid", Conv2D(3, (2, 3), (6, 5, 2), activation="sigmoid", rng=rng),
         rng.standard_normal((2, 6, 5, 2))),
        ("conv-linear", Conv2D(2, 2, (5, 5, 1), padding="same", rng=rng),
         rng.standard_normal((2, 5, 5, 1))),
        ("dense-tanh", Dense(4, 6, activation="tanh", rng=rng), rng.standard_normal((3, 6))),
        ("dense-softmax", Dense(4, 6, activation="softmax", rng=rng),
         rng.standard_normal((3, 6))),
        ("dense-linear", Dense(4, 6, rng=rng), rng.standard_normal((3, 6))),
        ("maxpool", MaxPool2D(), rng.standard_normal((2, 5, 4, 3))),
        ("avgpool", AvgPool2D(), rng.standard_normal((2, 5, 4, 3))),
        ("flatten", Flatten(), rng.standard_normal((2, 3, 4, 2))),
        ("relu", ReLU(), rng.standard_normal((2, 5))),
        ("tanh", Tanh(), rng.standard_normal((2, 5))),
        ("sigmoid", Sigmoid(), rng.standard_normal((2, 5))),
        ("softmax", Softmax(), rng.standard_normal((2, 5))),
    ]


@pytest.mark.parametrize("index", range(13), ids=[n for n, _, _ in _float32_layers()])
def test_float32_in_float32_out(index):
    name, layer, x = _float32_layers()[index]
    x = x.astype(np.float32)
    y = layer.forward(x)
    assert y.dtype == np.float32, f"{name}: forward returned {y.dtype}"
    dx = layer.backward(np.ones_like(y))
    assert dx.dtype == np.float32, f"{name}: backward returned {dx.dtype}"
    assert dx.shape == x.shape
    for key, p in layer.params.items():
        assert p.dtype == np.float32, f"{name}: param {key} is {p.dtype}"
        assert layer.grads[key].dtype == np.float32, f"{name}: grad {key} is {layer.grads[key].dtype}"
        assert layer.grads[key].shape == p.shape


@pytest.mark.parametrize("make_optimizer", [
    lambda: SGD(lr=0.1, weight_decay=1e-3),
    lambda: Momentum(lr=0.1, momentum=0.9),
    lambda: Momentum(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
    lambda: Adam(lr=1e-3, weight_decay=1e-3),
], ids=["sgd", "momentum", "nesterov", "adam"])
def test_float32_model_stays_float32_after_optimizer_steps(make_optimizer):
    rng = np.random.default_rng(5)
    model = Sequential([
        cnnlib.layer("conv", (3, 3, 1, 4), (8, 8, 1), "relu", "same"),
        cnnlib.layer("maxPool"),
        cnnlib.layer("conv", (2, 2, 4, 3), None, "tanh", "valid"),
        cnnlib.layer("avgPool"),
        cnnlib.layer("flatten", 1 * 1 * 3),
        cnnlib.layer("dense", 6, None, "sigmoid"),
        cnnlib.layer("dense", 3, None, "softmax"),
    ], seed=0)
    x = rng.standard_normal((5, 8, 8, 1)).astype(np.float32)
    labels = rng.integers(0, 3, 5)
    optimizer = make_optimizer()
    before = [p.copy() for layer in model.trainable_layers for p in layer.params.values()]
    for _ in range(3):
        loss, probs = model.compute_gradients(x, labels)
        assert probs.dtype == np.float32 and np.isfinite(loss)
        for layer in model.trainable_layers:
            for key in layer.params:
                assert layer.grads[key].dtype == np.float32, (layer.describe(), key)
        optimizer.step(model.trainable_layers)
    after = [p for layer in model.trainable_layers for p in layer.params.values()]
    assert all(p.dtype == np.float32 for p in after)
    assert any(np.abs(a - b).max() > 0 for a, b in zip(after, before)), "no parameter moved"
    for state in optimizer._state.values():
        for value in state.values():
            if isinstance(value, np.ndarray):
                assert value.dtype == np.float32
    assert model.predict(x).dtype == np.float32
    assert model.forward(x).dtype == np.float32
