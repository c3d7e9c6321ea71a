"""Bad input gives a clear ValueError/TypeError, raised by cnnlib itself.

Each row of ``BAD_INPUTS`` names the call, the exact exception type and the
substrings its message must contain (the argument's name and the value that
was received). The exception must be raised from a cnnlib source file, never
from deep inside NumPy.
"""
import os
import traceback

import numpy as np
import pytest

import cnnlib
from cnnlib import (SGD, Adam, Conv2D, Dense, MaxPool2D, Momentum, Sequential, Softmax,
                    get_optimizer, layer, softmax_cross_entropy)

CNNLIB_DIR = os.path.dirname(os.path.abspath(cnnlib.__file__))
NUMPY_DIR = os.path.dirname(os.path.abspath(np.__file__))


# ------------------------------------------------------------------ fixtures-as-functions
def f32(*shape, fill=0.5):
    return np.full(shape, fill, dtype=np.float32)


def conv_8x8x3():
    return Conv2D(4, 3, (8, 8, 3), padding="same")


def built_dense():
    return Dense(10, 1568)


def small_model():
    """conv (8, 8, 1) -> maxPool -> flatten 64 -> dense 10 softmax."""
    return Sequential([layer("conv", (3, 3, 1, 4), (8, 8, 1), "relu", "same"), layer("maxPool"),
                       layer("flatten", 64), layer("dense", 10, 64, "softmax")], seed=0)


def model_without_softmax():
    return Sequential([layer("flatten", 16, (4, 4, 1)), layer("dense", 10, 16, "relu")])


def dense_after_forward():
    d = Dense(10, 4)
    d.forward(f32(2, 4))
    return d


def add_twice():
    d = Dense(3, 4)
    return Sequential([d, d])


def with_nan(x):
    x[0, 2, 3, 1] = np.nan
    return x


# (id, callable, exception type, substrings of the message)
BAD_INPUTS = [
    # ---- factory: layer type, activation, padding
    ("layer-type-pool", lambda: layer("pool"), ValueError, ["layer type", "'pool'", "maxPool"]),
    ("layer-type-Dense-capital", lambda: layer("Dense", 10, 20), ValueError,
     ["layer type", "'Dense'"]),
    ("layer-type-None", lambda: layer(None), ValueError, ["layer type", "None"]),
    ("activation-relu6-dense", lambda: layer("dense", 10, 20, "relu6"), ValueError,
     ["activation", "'relu6'", "'relu'"]),
    ("activation-relu6-conv", lambda: layer("conv", (3, 3, 1, 8), (28, 28, 1), "relu6"),
     ValueError, ["activation", "'relu6'"]),
    ("activation-Relu-class", lambda: Dense(3, activation="Relu"), ValueError,
     ["activation", "'Relu'"]),
    ("padding-full", lambda: layer("conv", (3, 3, 1, 8), (28, 28, 1), "relu", "full"),
     ValueError, ["padding", "'full'", "'same'", "'valid'"]),
    ("padding-None", lambda: Conv2D(2, 3, padding=None), ValueError, ["padding", "None"]),
    ("conv-missing-filter-shape", lambda: layer("conv"), TypeError,
     ["layer('conv'", "filter_shape"]),
    # ---- wrong number of dimensions
    ("conv-3d-input", lambda: conv_8x8x3().forward(f32(8, 8, 3)), ValueError,
     ["x must have 4 dimensions", "(8, 8, 3)"]),
    ("dense-4d-input-built", lambda: built_dense().forward(f32(2, 14, 14, 8)), ValueError,
     ["x must have 2 dimensions", "(2, 14, 14, 8)"]),
    ("dense-4d-input-unbuilt", lambda: Dense(10).forward(f32(2, 14, 14, 8)), ValueError,
     ["(14, 14, 8)", "Flatten"]),
    ("dense-1d-input-unbuilt", lambda: Dense(10).forward(f32(5)), ValueError,
     ["x", "(5,)"]),
    ("model-3d-input", lambda: small_model().predict(f32(8, 8, 1)), ValueError,
     ["x must have 4 dimensions", "(8, 8, 1)"]),
    ("softmax-on-4d", lambda: Softmax().forward(f32(2, 3, 3, 1)), ValueError,
     ["softmax", "(3, 3, 1)"]),
    ("factory-input-shape-2d", lambda: layer("conv", (3, 3, 1, 8), (28, 28)), ValueError,
     ["input_shape", "(28, 28)"]),
    ("factory-filter-shape-3-entries", lambda: layer("conv", (3, 3, 8), (28, 28, 1)),
     ValueError, ["filter_shape", "(3, 3, 8)"]),
    # ---- channel mismatch
    ("filter-depth-3-input-1-channel", lambda: layer("conv", (3, 3, 3, 8), (28, 28, 1)),
     ValueError, ["filter_shape", "(3, 3, 3, 8)", "(28, 28, 1)"]),
    ("x-wrong-channels-at-forward", lambda: conv_8x8x3().forward(f32(2, 8, 8, 1)), ValueError,
     ["x", "(N, 8, 8, 3)", "(2, 8, 8, 1)"]),
    ("model-x-wrong-channels", lambda: small_model().predict(f32(2, 8, 8, 3)), ValueError,
     ["x", "(2, 8, 8, 3)"]),
    # ---- zero / negative sizes
    ("filters-0-factory", lambda: layer("conv", (3, 3, 1, 0), (28, 28, 1)), ValueError,
     ["filter_shape[3]", "received 0"]),
    ("filters-0", lambda: Conv2D(0, 3), ValueError, ["filters", "received 0"]),
    ("units-minus-1", lambda: layer("dense", -1, 10), ValueError, ["units", "-1"]),
    ("input-dim-0", lambda: layer("dense", 10, 0), ValueError, ["input_dim", "received 0"]),
    ("kernel-size-0", lambda: Conv2D(8, 0), ValueError, ["kernel_size", "received 0"]),
    ("kernel-size-3-entries", lambda: Conv2D(8, (3, 3, 3)), ValueError,
     ["kernel_size", "(3, 3, 3)"]),
    ("kernel-larger-than-valid-input",
     lambda: layer("conv", (5, 5, 1, 2), (3, 3, 1), "relu", "valid"), ValueError,
     ["kernel_size", "(5, 5)", "3x3", "'valid'"]),
    ("kernel-larger-than-valid-input-at-forward",
     lambda: Conv2D(2, (2, 4)).forward(f32(1, 5, 3, 1)), ValueError,
     ["kernel_size", "(2, 4)", "5x3"]),
    ("pool-input-1-row", lambda: MaxPool2D().forward(f32(2, 1, 5, 1)), ValueError,
     ["2x2", "1x5"]),
    # ---- non-integer sizes
    ("filters-2.5", lambda: Conv2D(2.5, 3), TypeError, ["filters", "2.5", "float"]),
    ("filter-shape-2.5", lambda: layer("conv", (3, 3, 1, 2.5), (28, 28, 1)), TypeError,
     ["filter_shape[3]", "2.5"]),
    ("units-string-8", lambda: Dense("8"), TypeError, ["units", "'8'", "str"]),
    ("units-True", lambda: layer("dense", True, 10), TypeError, ["units", "True", "bool"]),
    ("kernel-size-string", lambda: Conv2D(4, "3"), TypeError, ["kernel_size", "'3'"]),
    ("flatten-output-string", lambda: layer("flatten", "8"), TypeError,
     ["output_shape", "'8'"]),
    ("batch-size-2.5", lambda: small_model().predict(f32(3, 8, 8, 1), batch_size=2.5),
     TypeError, ["batch_size", "2.5"]),
    # ---- bad arrays
    ("uint8-images-conv", lambda: conv_8x8x3().forward(np.zeros((2, 8, 8, 3), np.uint8)),
     TypeError, ["x", "uint8", "float32"]),
    ("uint8-images-model", lambda: small_model().predict(np.zeros((2, 8, 8, 1), np.uint8)),
     TypeError, ["x", "uint8"]),
    ("int-array-relu", lambda: cnnlib.ReLU().forward(np.zeros((2, 3), np.int64)), TypeError,
     ["x", "int64"]),
    ("list-into-layer", lambda: built_dense().forward([[0.5] * 1568]), TypeError,
     ["x", "list"]),
    ("list-into-unbuilt-model",
     lambda: Sequential([Dense(10, activation="softmax")]).predict([[1.0, 2.0]]), TypeError,
     ["x", "list"]),
    ("nan-input", lambda: conv_8x8x3().forward(with_nan(f32(1, 8, 8, 3))), ValueError,
     ["x", "NaN"]),
    ("inf-input", lambda: built_dense().forward(np.full((2, 1568), np.inf, np.float32)),
     ValueError, ["x", "infinity"]),
    ("nan-input-model", lambda: small_model().compute_gradients(
        np.full((2, 8, 8, 1), np.nan, np.float32), [0, 1]), ValueError, ["x", "NaN"]),
    ("empty-batch-conv", lambda: conv_8x8x3().forward(f32(0, 8, 8, 3)), ValueError,
     ["x", "at least one sample", "(0, 8, 8, 3)"]),
    ("empty-batch-model", lambda: small_model().predict(f32(0, 8, 8, 1)), ValueError,
     ["x", "(0, 8, 8, 1)"]),
    # ---- labels
    ("label-10-of-10-classes", lambda: softmax_cross_entropy(f32(4, 10), [0, 1, 10, 2]),
     ValueError, ["labels", "[0, 9]", "10"]),
    ("label-minus-1", lambda: softmax_cross_entropy(f32(4, 10), [0, -1, 3, 2]), ValueError,
     ["labels", "-1"]),
    ("float-labels", lambda: softmax_cross_entropy(f32(4, 10), np.array([0.0, 1, 2, 3])),
     TypeError, ["labels", "float64"]),
    ("labels-wrong-length", lambda: softmax_cross_entropy(f32(4, 10), [0, 1, 2]), ValueError,
     ["labels", "(4,)", "(3,)"]),
    ("labels-column-vector", lambda: softmax_cross_entropy(f32(3, 10), np.zeros((3, 1), int)),
     ValueError, ["labels", "(3, 1)"]),
    ("label-10-compute-gradients",
     lambda: small_model().compute_gradients(f32(2, 8, 8, 1), [3, 10]), ValueError,
     ["labels", "10"]),
    ("labels-wrong-length-evaluate", lambda: small_model().evaluate(f32(3, 8, 8, 1), [1, 2]),
     ValueError, ["labels", "(3,)", "(2,)"]),
    ("logits-1d", lambda: softmax_cross_entropy(f32(10), [1]), ValueError,
     ["logits", "(10,)"]),
    ("logits-int", lambda: softmax_cross_entropy(np.zeros((2, 3), np.int64), [0, 1]),
     TypeError, ["logits", "int64"]),
    # ---- flatten
    ("flatten-size-mismatch", lambda: layer("flatten", 100, (14, 14, 8)), ValueError,
     ["output_shape", "100", "1568", "(14, 14, 8)"]),
    ("flatten-tuple-size-mismatch", lambda: layer("flatten", (100, 5), (5, 14, 14, 8)),
     ValueError, ["output_shape", "100", "1568"]),
    ("flatten-tuple-3-entries", lambda: layer("flatten", (1568, 5, 1), (14, 14, 8)),
     ValueError, ["output_shape", "(1568, 5, 1)"]),
    # ---- Sequential.add
    ("add-non-layer", lambda: Sequential().add("dense"), TypeError, ["add()", "'dense'"]),
    ("add-numpy-array", lambda: Sequential().add(np.zeros(3)), TypeError, ["add()", "ndarray"]),
    ("add-mismatched-shape",
     lambda: Sequential([layer("flatten", 1568, (14, 14, 8)), layer("dense", 10, 100, "softmax")]),
     ValueError, ["layer 1", "(100,)", "layer 0", "(1568,)"]),
    ("add-same-layer-twice", add_twice, ValueError, ["already in the model"]),
    # ---- backward
    ("dout-wrong-shape", lambda: dense_after_forward().backward(f32(2, 5)), ValueError,
     ["dout", "(2, 10)", "(2, 5)"]),
    # ---- dtype
    ("dtype-int32", lambda: Dense(3, dtype="int32"), TypeError, ["dtype", "int32"]),
    ("dtype-float16-factory", lambda: layer("dense", 10, 20, "relu", dtype=np.float16),
     TypeError, ["dtype", "float16"]),
    ("dtype-junk-string", lambda: Conv2D(2, 3, dtype="junk"), TypeError, ["dtype", "'junk'"]),
    ("float64-x-into-float32-layer", lambda: built_dense().forward(np.zeros((2, 1568))),
     TypeError, ["dtype", "float64", "float32"]),
    # ---- optimisers
    ("lr-0", lambda: SGD(lr=0), ValueError, ["lr", "received 0"]),
    ("lr-minus-1", lambda: Momentum(lr=-1), ValueError, ["lr", "-1"]),
    ("lr-nan", lambda: Adam(lr=float("nan")), ValueError, ["lr", "nan"]),
    ("lr-inf-get-optimizer", lambda: get_optimizer("sgd", lr=float("inf")), ValueError,
     ["lr", "inf"]),
    ("lr-string", lambda: SGD(lr="0.1"), TypeError, ["lr", "'0.1'"]),
    ("unknown-optimizer", lambda: get_optimizer("rmsprop"), ValueError,
     ["optimizer", "'rmsprop'", "'adam'"]),
    ("optimizer-wrong-keyword", lambda: get_optimizer("sgd", momentum=0.9), TypeError,
     ["'sgd'", "momentum"]),
    ("momentum-1.5", lambda: Momentum(momentum=1.5), ValueError, ["momentum", "1.5"]),
    ("momentum-1.5-get-optimizer", lambda: get_optimizer("momentum", momentum=1.5), ValueError,
     ["momentum", "1.5"]),
    ("momentum-negative", lambda: Momentum(momentum=-0.1), ValueError, ["momentum", "-0.1"]),
    ("weight-decay-negative", lambda: SGD(weight_decay=-0.1), ValueError,
     ["weight_decay", "-0.1"]),
    ("adam-beta1-1", lambda: Adam(beta1=1.0), ValueError, ["beta1", "1.0"]),
    ("adam-eps-0", lambda: Adam(eps=0), ValueError, ["eps", "0"]),
    # ---- Sequential usage
    ("predict-batch-size-0", lambda: small_model().predict(f32(3, 8, 8, 1), batch_size=0),
     ValueError, ["batch_size", "received 0"]),
    ("compute-gradients-without-softmax",
     lambda: model_without_softmax().compute_gradients(f32(2, 4, 4, 1), [0, 1]), ValueError,
     ["softmax", "Dense(10, relu)"]),
    ("workers-0", lambda: Sequential(workers=0), ValueError, ["workers", "received 0"]),
    ("empty-model-predict", lambda: Sequential().predict(f32(2, 3)), ValueError,
     ["no layers"]),
    # ---- random generators
    ("rng-string", lambda: Dense(3, 4, rng="seed"), TypeError, ["rng", "'seed'"]),
    ("seed-negative-model", lambda: Sequential(seed=-1), ValueError, ["seed", "-1"]),
    ("rng-negative-layer", lambda: Dense(3, 4, rng=-1), ValueError, ["seed", "-1"]),
]


def raised_in(err):
    """File name of the innermost frame of ``err``'s traceback."""
    return os.path.abspath(traceback.extract_tb(err.__traceback__)[-1].filename)


def test_table_is_large_and_ids_unique():
    ids = [row[0] for row in BAD_INPUTS]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 30


@pytest.mark.parametrize("make,error,fragments", [row[1:] for row in BAD_INPUTS],
                         ids=[row[0] for row in BAD_INPUTS])
def test_bad_input_raises_clear_error(make, error, fragments):
    with pytest.raises((ValueError, TypeError)) as info:
        make()
    err = info.value
    assert type(err) is error, f"expected {error.__name__}, got {type(err).__name__}: {err}"
    message = str(err)
    missing = [f for f in fragments if f not in message]
    assert not missing, f"message {message!r} lacks {missing}"
    # Raised by cnnlib's own checks, not by NumPy or Python deep inside a computation.
    origin = raised_in(err)
    assert origin.startswith(CNNLIB_DIR), f"raised from {origin}, not from cnnlib: {message!r}"
    assert not origin.startswith(NUMPY_DIR)
    assert "object is not iterable" not in message and "broadcast" not in message


# ------------------------------------------------------------------ separate cases
def test_flatten_tuple_form_is_accepted():
    flat = layer("flatten", (14 * 14 * 8, 100), (100, 14, 14, 8))
    assert flat.input_shape == (14, 14, 8) and flat.output_shape == (1568,)
    y = flat.forward(np.arange(2 * 1568, dtype=np.float32).reshape(2, 14, 14, 8))
    assert y.shape == (2, 1568) and y[1, 0] == 1568.0
    # the plain int form and a 1-tuple give the same layer
    assert layer("flatten", 1568, (14, 14, 8)).output_shape == (1568,)
    assert layer("flatten", (1568,), (14, 14, 8)).output_shape == (1568,)


def test_backward_before_forward_raises_runtime_error():
    for lay, dout in ((Dense(3, 4), f32(2, 3)), (Conv2D(2, 3, (5, 5, 1)), f32(1, 3, 3, 2)),
                      (MaxPool2D((4, 4, 1)), f32(1, 2, 2, 1)), (Softmax(), f32(2, 3))):
        with pytest.raises(RuntimeError, match=r"forward\(x\) before backward"):
            lay.backward(dout)


def test_declared_filter_depth_is_checked_when_the_input_shape_comes_later():
    """``layer("conv", (3, 3, 3, 8))`` declares filters of depth 3. Building it
    on a 1-channel input (directly or after a 4-channel layer in a model) must
    fail, as it does when ``input_shape`` is given, instead of silently
    creating (3, 3, 1, 8) or (3, 3, 4, 8) filters."""
    conv = layer("conv", (3, 3, 3, 8))
    with pytest.raises(ValueError, match=r"8, 8, 1\)"):
        conv.forward(f32(2, 8, 8, 1))
    with pytest.raises(ValueError) as info:
        Sequential([layer("conv", (3, 3, 1, 4), (8, 8, 1)), layer("conv", (3, 3, 3, 8))])
    message = str(info.value)
    assert "(6, 6, 4)" in message and "3" in message and "layer 1" in message, message


def test_declared_flatten_size_is_checked_when_the_input_shape_comes_later():
    """``layer("flatten", 100)`` declares 100 outputs; a (4, 4, 2) input has 32."""
    with pytest.raises(ValueError, match="100"):
        layer("flatten", 100).forward(f32(2, 4, 4, 2))
    with pytest.raises(ValueError, match="100"):
        Sequential([layer("conv", (3, 3, 1, 2), (4, 4, 1), "relu", "same"),
                    layer("flatten", 100)])


def test_optimizer_step_before_gradients_is_a_clear_error():
    """Stepping before ``compute_gradients`` must name the problem, not raise
    a bare ``KeyError: 'W'``."""
    model = small_model()
    with pytest.raises((RuntimeError, ValueError), match="gradient"):
        SGD(lr=0.1).step(model.trainable_layers)
