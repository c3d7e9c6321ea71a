"""Flatten: ``(N, H, W, C) -> (N, H*W*C)``, row-major (C fastest, like Keras).

It has no parameters; backward only restores the shape.
"""
import math

import numpy as np

from .. import _checks
from .base import Layer


class Flatten(Layer):
    """Reshape each sample to a vector.

    Args:
        input_shape: optional per-sample shape, e.g. ``(H, W, C)``.
        size: optional expected ``H*W*C``, checked when the layer is built (the
            original API asked for it).

    Input shape ``(N, *input_shape)``; output shape ``(N, prod(input_shape))``.
    """

    def __init__(self, input_shape=None, *, size=None, dtype=np.float32, name=None):
        self.size = None if size is None else _checks.positive_int("size", size)
        super().__init__(input_shape, dtype=dtype, name=name)

    def _compute_output_shape(self, input_shape):
        size = math.prod(input_shape)
        if self.size is not None and size != self.size:
            raise ValueError(f"{self.name}: output size {self.size} does not match the input "
                             f"shape {input_shape}, whose H*W*C is {size}")
        return (size,)

    def get_config(self):
        return {"size": self.size, "name": self.name}

    def _forward(self, x):
        self._shape = x.shape                               # (N, H, W, C)
        return x.reshape(x.shape[0], -1)                    # (N, H*W*C)

    def _backward(self, dout):
        return dout.reshape(self._shape)                    # (N, H, W, C)
