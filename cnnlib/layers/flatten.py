"""Flatten: ``(N, H, W, C) -> (N, H*W*C)``, row-major (C fastest, like Keras).

It has no parameters; backward only restores the shape.
"""
import math

from .base import Layer


class Flatten(Layer):
    """Reshape each sample to a vector.

    Input shape ``(N, *input_shape)``; output shape ``(N, prod(input_shape))``.
    """

    def _compute_output_shape(self, input_shape):
        return (math.prod(input_shape),)

    def _forward(self, x):
        self._shape = x.shape                               # (N, H, W, C)
        return x.reshape(x.shape[0], -1)                    # (N, H*W*C)

    def _backward(self, dout):
        return dout.reshape(self._shape)                    # (N, H, W, C)
