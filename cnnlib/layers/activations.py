"""Element-wise activations and the row-wise softmax, each numerically stable.

=========  ==========================  ===============================
name       forward ``y = f(z)``        backward ``dz = dout * f'(z)``
=========  ==========================  ===============================
relu       ``max(z, 0)``               ``dout * (y > 0)``
tanh       ``tanh(z)``                 ``dout * (1 - y**2)``
sigmoid    ``1 / (1 + exp(-z))``       ``dout * y * (1 - y)``
softmax    ``exp(z_i) / sum_j exp(z_j)``  ``y * (dout - sum_j dout_j y_j)``
=========  ==========================  ===============================

Shapes: any ``(N, ...)`` in, the same shape out. Softmax normalises each row
of an ``(N, K)`` array separately (the original normalised the whole batch).
"""
import numpy as np

from .. import _checks
from .base import Layer

ACTIVATIONS = ("relu", "tanh", "sigmoid", "softmax")


def sigmoid(z):
    """Stable logistic function: only ``exp(-|z|)`` is ever computed, so no
    overflow for any finite ``z``."""
    with np.errstate(under="ignore"):            # exp(-1e4) -> 0 is the right answer
        e = np.exp(-np.abs(z))                   # (same as z), in (0, 1]
    return np.where(z >= 0, 1.0, e) / (1.0 + e)


def softmax(z):
    """Softmax over the last axis of ``z`` (N, K): one distribution per row (or,
    for an image, per pixel over its channels). Subtracting the maximum leaves the
    result unchanged and keeps every exponent <= 0, so ``exp`` cannot overflow."""
    shifted = z - z.max(axis=-1, keepdims=True)  # (N, K)
    with np.errstate(under="ignore"):
        e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


class ReLU(Layer):
    """``y = max(z, 0)``. Shape ``(N, ...) -> (N, ...)``."""
    kind = "relu"

    def _forward(self, z, inplace=False):
        # inplace: a layer with a built-in ReLU owns z, so it may be overwritten
        self._y = np.maximum(z, 0, out=z if inplace else None)
        return self._y

    def _backward(self, dout):
        return np.multiply(dout, self._y > 0, out=dout)


class Tanh(Layer):
    """``y = tanh(z)``, ``dy/dz = 1 - y**2``. Shape ``(N, ...) -> (N, ...)``."""
    kind = "tanh"

    def _forward(self, z, inplace=False):
        self._y = np.tanh(z, out=z if inplace else None)
        return self._y

    def _backward(self, dout):
        dout *= 1 - self._y * self._y
        return dout


class Sigmoid(Layer):
    """``y = 1 / (1 + exp(-z))``, ``dy/dz = y (1 - y)``. Shape ``(N, ...) -> (N, ...)``."""
    kind = "sigmoid"

    def _forward(self, z, inplace=False):
        self._y = sigmoid(z).astype(z.dtype, copy=False)
        return self._y

    def _backward(self, dout):
        dout *= self._y * (1 - self._y)
        return dout


class Softmax(Layer):
    """Row-wise softmax. Shape ``(N, K) -> (N, K)``.

    Backward uses the Jacobian ``dy_i/dz_j = y_i (delta_ij - y_j)`` without
    building it: ``dz = y * (dout - sum_j dout_j y_j)``. With cross-entropy the
    model skips this and uses the fused gradient ``(p - onehot(y)) / N``.
    """
    kind = "softmax"

    def _compute_output_shape(self, input_shape):
        if len(input_shape) != 1:
            raise ValueError(f"{self.name}: softmax needs (N, K) inputs, received a "
                             f"per-sample shape {input_shape}; add a Flatten layer first")
        return input_shape

    def _forward(self, z, inplace=False):
        self.logits = z                                  # (N, K), used by the fused loss
        self._y = softmax(z)
        return self._y

    def _backward(self, dout):
        y = self._y
        return y * (dout - (dout * y).sum(axis=-1, keepdims=True))


_CLASSES = {"relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid, "softmax": Softmax}


def make_activation(activation):
    """Activation layer for a name (``"relu"``, ``"tanh"``, ``"sigmoid"``,
    ``"softmax"``), or ``None`` for ``None``/``"linear"``."""
    if activation is None or activation == "linear":
        return None
    _checks.choice("activation", activation, ACTIVATIONS + ("linear",))
    return _CLASSES[activation]()
