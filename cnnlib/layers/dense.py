"""Fully connected layer.

Forward::

    Z = X W + b          X (N, n_in), W (n_in, n_out), b (n_out,) -> Z (N, n_out)

Backward, from ``dZ = dL/dZ`` (N, n_out)::

    dW = X^T dZ          (n_in, n_out)
    db = sum_n dZ[n]     (n_out,)       one entry per unit, summed over the batch only
    dX = dZ W^T          (N, n_in)
"""
import numpy as np

from .. import _checks
from ..init import as_generator, init_weights
from .base import ActivatedLayer


class Dense(ActivatedLayer):
    """``y = activation(x @ W + b)``.

    Args:
        units: number of output units ``n_out``.
        input_dim: ``n_in``; optional, inferred from the previous layer.
        activation: ``"relu"``, ``"tanh"``, ``"sigmoid"``, ``"softmax"`` or ``None``.
        rng: ``None``, an int seed or a ``numpy.random.Generator`` for the weights.
        dtype: ``np.float32`` (default) or ``np.float64``.

    Input shape ``(N, n_in)``; output shape ``(N, units)``.
    """

    def __init__(self, units, input_dim=None, *, activation=None, rng=None,
                 dtype=np.float32, name=None):
        self.units = _checks.positive_int("units", units)
        self._rng = rng
        input_shape = None if input_dim is None else (_checks.positive_int("input_dim", input_dim),)
        super().__init__(activation=activation, input_shape=input_shape, dtype=dtype, name=name)

    def _compute_output_shape(self, input_shape):
        if len(input_shape) != 1:
            raise ValueError(f"{self.name}: Dense needs inputs of shape (N, n_in), received a "
                             f"per-sample shape {input_shape}; add a Flatten layer first")
        return (self.units,)

    def _init_params(self, rng):
        rng = as_generator(self._rng if rng is None else rng)
        n_in = self.input_shape[0]
        self.params = {
            "W": init_weights((n_in, self.units), n_in, self.units, self.activation_name,
                              rng, self.dtype),
            "b": np.zeros(self.units, dtype=self.dtype),
        }

    def _forward_linear(self, x):
        self._x = x                                         # (N, n_in)
        return x @ self.params["W"] + self.params["b"]      # (N, n_out)

    def _backward_linear(self, dz):
        self.grads["W"] = self._x.T @ dz                    # (n_in, n_out)
        self.grads["b"] = dz.sum(axis=0)                    # (n_out,)
        if not self.needs_input_grad:
            return None
        return dz @ self.params["W"].T                      # (N, n_in)

    def get_config(self):
        return {"units": self.units, "input_dim": self.input_shape[0] if self.built else None,
                "activation": self.activation_name, "name": self.name}

    def describe(self):
        act = f", {self.activation_name}" if self.activation else ""
        return f"Dense({self.units}{act})"
