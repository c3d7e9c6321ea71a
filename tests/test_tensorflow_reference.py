"""Forward outputs and gradients of every layer type against TensorFlow (float32).

TensorFlow is a test requirement: if it is missing these tests fail, they are
not skipped. Each test draws 20+ random configurations from one seeded
generator; the scalar ``sum(y * r)`` for a random ``r`` gives TensorFlow's
gradients, and cnnlib's ``backward(r)`` must agree to 1e-5 relative
(``rel_error``: max-abs-diff / max-abs-value).
"""
import os

import numpy as np
import pytest

from cnnlib import (AvgPool2D, Conv2D, Dense, MaxPool2D, ReLU, Sigmoid, Softmax, Tanh,
                    rel_error, softmax_cross_entropy)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

N_CONFIGS = 24
TOL = 1e-5
ACTIVATIONS = (None, "relu", "tanh", "sigmoid", "softmax")


@pytest.fixture(scope="module")
def tf():
    import tensorflow as tf        # a hard requirement of this test module
    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:           # already initialised by another module
        pass
    return tf


def tf_activation(tf, name, z):
    if name is None:
        return z
    return {"relu": tf.nn.relu, "tanh": tf.nn.tanh, "sigmoid": tf.nn.sigmoid,
            "softmax": tf.nn.softmax}[name](z)


def tf_forward_and_grads(tf, fn, r, *arrays):
    """``y = fn(*tensors)`` and the gradients of ``sum(y * r)`` w.r.t. each array."""
    tensors = [tf.Variable(a) for a in arrays]
    with tf.GradientTape() as tape:
        y = fn(*tensors)
        target = tf.reduce_sum(y * tf.constant(r))
    grads = tape.gradient(target, tensors)
    return y.numpy(), [g.numpy() for g in grads]


def assert_close(ours, theirs, what, config):
    assert ours.shape == theirs.shape, f"{what} shape {ours.shape} != TF {theirs.shape} for {config}"
    assert ours.dtype == np.float32, f"{what} dtype {ours.dtype} for {config}"
    err = rel_error(ours, theirs)
    assert err < TOL, f"{what}: relative error {err:.2e} vs TensorFlow for {config}"


# ------------------------------------------------------------------ Conv2D
def random_conv_config(rng, padding):
    kh, kw = (int(k) for k in rng.integers(1, 6, 2))
    return dict(n=int(rng.integers(1, 4)), h=int(rng.integers(kh, 13)), w=int(rng.integers(kw, 13)),
                c_in=int(rng.integers(1, 7)), c_out=int(rng.integers(1, 6)), kh=kh, kw=kw,
                padding=padding, activation=ACTIVATIONS[int(rng.integers(0, 4))])


@pytest.mark.parametrize("padding", ["same", "valid"])
def test_conv2d_matches_tensorflow(tf, padding):
    rng = np.random.default_rng(100 if padding == "same" else 200)
    kernels, channels = set(), [0, 0]
    for _ in range(N_CONFIGS):
        cfg = random_conv_config(rng, padding)
        kernels.add((cfg["kh"] % 2, cfg["kw"] % 2))
        channels[cfg["c_in"] >= 4] += 1
        layer = Conv2D(cfg["c_out"], (cfg["kh"], cfg["kw"]), (cfg["h"], cfg["w"], cfg["c_in"]),
                       padding=padding, activation=cfg["activation"], rng=rng)
        layer.params["b"][:] = rng.standard_normal(cfg["c_out"]).astype(np.float32)
        x = rng.standard_normal((cfg["n"], cfg["h"], cfg["w"], cfg["c_in"])).astype(np.float32)
        y = layer.forward(x)
        r = rng.standard_normal(y.shape).astype(np.float32)
        dx = layer.backward(r)

        def fn(x_, W_, b_):
            z = tf.nn.conv2d(x_, W_, strides=1, padding=padding.upper()) + b_
            return tf_activation(tf, cfg["activation"], z)

        y_tf, (dx_tf, dW_tf, db_tf) = tf_forward_and_grads(
            tf, fn, r, x, layer.params["W"], layer.params["b"])
        assert_close(y, y_tf, "forward", cfg)
        assert_close(dx, dx_tf, "dx", cfg)
        assert_close(layer.grads["W"], dW_tf, "dW", cfg)
        assert_close(layer.grads["b"], db_tf, "db", cfg)
    # the random draw covered odd and even kernel sizes, few and many channels
    assert {(1, 1), (0, 0)} <= kernels
    assert channels[0] and channels[1]


def test_conv2d_softmax_activation_normalises_channels_like_tensorflow(tf):
    """A softmax on a conv output is over the channel axis (last), as in Keras."""
    rng = np.random.default_rng(300)
    layer = Conv2D(4, 3, (5, 6, 2), padding="same", activation="softmax", rng=rng)
    x = rng.standard_normal((2, 5, 6, 2)).astype(np.float32)
    y = layer.forward(x)
    r = rng.standard_normal(y.shape).astype(np.float32)
    dx = layer.backward(r)

    def fn(x_, W_, b_):
        return tf.nn.softmax(tf.nn.conv2d(x_, W_, 1, "SAME") + b_)   # axis=-1

    y_tf, (dx_tf, dW_tf, _) = tf_forward_and_grads(tf, fn, r, x, layer.params["W"],
                                                   layer.params["b"])
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-5,
                               err_msg="conv softmax must sum to 1 over channels")
    assert_close(y, y_tf, "forward", "conv 3x3 same softmax")
    assert_close(dx, dx_tf, "dx", "conv 3x3 same softmax")
    assert_close(layer.grads["W"], dW_tf, "dW", "conv 3x3 same softmax")


# ------------------------------------------------------------------ pooling
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pooling_matches_tensorflow(tf, kind):
    rng = np.random.default_rng(400 if kind == "max" else 500)
    odd_seen = False
    for _ in range(N_CONFIGS):
        n, h, w, c = (int(rng.integers(1, 4)), int(rng.integers(2, 12)),
                      int(rng.integers(2, 12)), int(rng.integers(1, 5)))
        odd_seen |= bool(h % 2 or w % 2)
        cfg = dict(kind=kind, shape=(n, h, w, c))
        layer = MaxPool2D() if kind == "max" else AvgPool2D()
        x = rng.standard_normal((n, h, w, c)).astype(np.float32)
        y = layer.forward(x)
        r = rng.standard_normal(y.shape).astype(np.float32)
        dx = layer.backward(r)
        op = tf.nn.max_pool2d if kind == "max" else tf.nn.avg_pool2d
        y_tf, (dx_tf,) = tf_forward_and_grads(tf, lambda x_: op(x_, 2, 2, "VALID"), r, x)
        assert_close(y, y_tf, "forward", cfg)
        assert_close(dx, dx_tf, "dx", cfg)
    assert odd_seen


# ------------------------------------------------------------------ Dense
def test_dense_matches_tensorflow(tf):
    rng = np.random.default_rng(600)
    for i in range(N_CONFIGS + len(ACTIVATIONS)):
        # the first five configurations cover every activation once
        act = ACTIVATIONS[i] if i < len(ACTIVATIONS) else ACTIVATIONS[int(rng.integers(0, 5))]
        n, n_in, n_out = (int(v) for v in rng.integers(1, 40, 3))
        cfg = dict(n=n, n_in=n_in, n_out=n_out, activation=act)
        layer = Dense(n_out, n_in, activation=act, rng=rng)
        layer.params["b"][:] = rng.standard_normal(n_out).astype(np.float32)
        x = rng.standard_normal((n, n_in)).astype(np.float32)
        y = layer.forward(x)
        r = rng.standard_normal(y.shape).astype(np.float32)
        dx = layer.backward(r)
        y_tf, (dx_tf, dW_tf, db_tf) = tf_forward_and_grads(
            tf, lambda x_, W_, b_: tf_activation(tf, act, tf.matmul(x_, W_) + b_),
            r, x, layer.params["W"], layer.params["b"])
        assert_close(y, y_tf, "forward", cfg)
        assert_close(dx, dx_tf, "dx", cfg)
        assert_close(layer.grads["W"], dW_tf, "dW", cfg)
        assert_close(layer.grads["b"], db_tf, "db", cfg)


# ------------------------------------------------------------------ activations
@pytest.mark.parametrize("name,cls", [("relu", ReLU), ("tanh", Tanh), ("sigmoid", Sigmoid),
                                      ("softmax", Softmax)])
def test_activation_matches_tensorflow(tf, name, cls):
    rng = np.random.default_rng(700 + len(name))
    for _ in range(N_CONFIGS):
        if name == "softmax" or rng.random() < 0.5:
            shape = (int(rng.integers(1, 9)), int(rng.integers(1, 12)))
        else:
            shape = tuple(int(v) for v in rng.integers(1, 6, 4))
        # Softmax backward is ill-conditioned in float32 once it saturates (TF and
        # cnnlib both drift ~3e-5 from float64 at logits ~10): keep its logits moderate.
        scale = float(rng.choice([0.1, 1.0, 3.0] if name == "softmax" else [0.1, 1.0, 10.0]))
        cfg = dict(activation=name, shape=shape, scale=scale)
        x = (rng.standard_normal(shape) * scale).astype(np.float32)
        layer = cls()
        y = layer.forward(x)
        r = rng.standard_normal(y.shape).astype(np.float32)
        dx = layer.backward(r)
        y_tf, (dx_tf,) = tf_forward_and_grads(tf, lambda x_: tf_activation(tf, name, x_), r, x)
        assert_close(y, y_tf, "forward", cfg)
        assert_close(dx, dx_tf, "dx", cfg)


# ------------------------------------------------------------------ loss
def test_softmax_cross_entropy_matches_tensorflow(tf):
    rng = np.random.default_rng(800)
    for _ in range(N_CONFIGS):
        n, k = int(rng.integers(1, 33)), int(rng.integers(2, 12))
        scale = float(rng.choice([0.1, 1.0, 10.0, 100.0]))
        cfg = dict(n=n, k=k, scale=scale)
        logits = (rng.standard_normal((n, k)) * scale).astype(np.float32)
        labels = rng.integers(0, k, n)
        loss, dlogits, probs = softmax_cross_entropy(logits, labels)
        var = tf.Variable(logits)
        with tf.GradientTape() as tape:
            loss_tf = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels=tf.constant(labels), logits=var))
        dlogits_tf = tape.gradient(loss_tf, var).numpy()
        assert isinstance(loss, float)
        assert loss == pytest.approx(float(loss_tf), rel=TOL, abs=1e-6), f"loss for {cfg}"
        assert_close(dlogits, dlogits_tf, "dlogits", cfg)
        assert_close(probs, tf.nn.softmax(logits).numpy(), "probs", cfg)
