"""``layer(...)``: the original project's layer factory, argument for argument.

=========================================================  ==========================
call                                                       returns
=========================================================  ==========================
``layer("conv", filter_shape, input_shape, act, padding)``  ``Conv2D`` + activation
``layer("maxPool")`` / ``layer("avgPool")``                 ``MaxPool2D`` / ``AvgPool2D``
``layer("flatten", output_shape, input_shape)``             ``Flatten``
``layer("dense", n_node, n_node_prev, act)``                ``Dense`` + activation
=========================================================  ==========================

* ``filter_shape`` is ``(H, W, D, N)``: kernel height and width, input depth
  ``D`` (must match the input's channels) and number of filters ``N``.
* ``input_shape`` is ``(H, W, D)`` or ``(M, H, W, D)``; the batch size ``M`` is
  ignored, any batch size works at run time.
* The flatten ``output_shape`` is an int ``H*W*D`` or a tuple ``(H*W*D, M)``;
  it must equal the product of ``input_shape`` (it is checked).
* ``act`` is ``"relu"`` (default), ``"tanh"``, ``"sigmoid"`` or ``"softmax"``;
  ``padding`` is ``"valid"`` (default) or ``"same"``.

Extra keyword arguments (``rng``, ``dtype``, ``name``) go to the layer.
"""
import math

from . import _checks
from .layers import AvgPool2D, Conv2D, Dense, Flatten, MaxPool2D

KINDS = ("conv", "maxPool", "avgPool", "flatten", "dense")


def _image_shape(name, shape):
    """``(H, W, D)`` from ``(H, W, D)`` or ``(M, H, W, D)``."""
    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__len__") or len(shape) not in (3, 4):
        raise ValueError(f"{name} must be (H, W, D) or (M, H, W, D), received {shape!r}")
    shape = tuple(shape)
    return _checks.shape_tuple(name, shape[-3:], 3)


def _conv(filter_shape, input_shape=None, activation="relu", padding="valid", **kwargs):
    kh, kw, depth, n_filters = _checks.shape_tuple("filter_shape", filter_shape, 4)
    if input_shape is not None:
        input_shape = _image_shape("input_shape", input_shape)
        if input_shape[2] != depth:
            raise ValueError(f"filter_shape {tuple(filter_shape)} has depth D={depth}, but "
                             f"input_shape {input_shape} has {input_shape[2]} channels; "
                             "they must be equal")
    return Conv2D(n_filters, (kh, kw), input_shape, padding=padding, activation=activation,
                  in_channels=depth, **kwargs)


def _pool(cls):
    def make(input_shape=None, **kwargs):
        if input_shape is not None:
            input_shape = _image_shape("input_shape", input_shape)
        return cls(input_shape, **kwargs)
    return make


def _flatten(output_shape, input_shape=None, **kwargs):
    if isinstance(output_shape, (tuple, list)):
        if len(output_shape) not in (1, 2):
            raise ValueError(f"output_shape must be H*W*D or (H*W*D, M), received {output_shape!r}")
        output_shape = output_shape[0]
    size = _checks.positive_int("output_shape", output_shape)
    if input_shape is not None:
        input_shape = _image_shape("input_shape", input_shape)
        if math.prod(input_shape) != size:
            raise ValueError(f"output_shape {size} must equal H*W*D = {math.prod(input_shape)} "
                             f"for input_shape {input_shape}")
    return Flatten(input_shape, size=size, **kwargs)


def _dense(n_node, n_node_prev=None, activation="relu", **kwargs):
    return Dense(n_node, n_node_prev, activation=activation, **kwargs)


_BUILDERS = {"conv": _conv, "maxPool": _pool(MaxPool2D), "avgPool": _pool(AvgPool2D),
             "flatten": _flatten, "dense": _dense}


def layer(kind, *args, **kwargs):
    """Build a layer the way the original project did (see the module docstring).

    ``layer("conv", (3, 3, 1, 8), (28, 28, 1), "relu", "same").forward(x)``
    is a convolution followed by ReLU: x (N, 28, 28, 1) -> (N, 28, 28, 8).
    """
    _checks.choice("layer type", kind, KINDS)
    try:
        return _BUILDERS[kind](*args, **kwargs)
    except TypeError as err:
        if "positional argument" in str(err) or "unexpected keyword" in str(err):
            raise TypeError(f"layer({kind!r}, ...): {err}; see help(cnnlib.layer) for "
                            "the accepted arguments") from None
        raise
