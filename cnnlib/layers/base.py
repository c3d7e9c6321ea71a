"""The layer contract shared by every layer.

* ``forward(x)`` returns ``y`` and keeps what ``backward`` needs.
* ``backward(dout)`` returns ``dx = dL/dx`` and fills ``grads``.
* ``params`` and ``grads`` are dicts with the same keys (``"W"``, ``"b"``).
* ``input_shape`` / ``output_shape`` are per-sample shapes (no batch axis),
  known as soon as the layer is built, before any data flows.

The public ``forward``/``backward`` validate their arguments; the model calls
the unchecked ``_forward``/``_backward`` on its hot path after validating the
batch once at the model's entry. ``_backward(dout)`` owns ``dout`` and may
overwrite it, which saves a full-size temporary per layer.
"""
import copy

import numpy as np

from .. import _checks


class Layer:
    """Base class. Subclasses implement ``_compute_output_shape``, ``_forward``
    and ``_backward`` and, if they have weights, ``_init_params``."""

    #: registry of layer classes by name, used by ``Sequential.load``
    registry = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        Layer.registry[cls.__name__] = cls

    def __init__(self, input_shape=None, *, dtype=np.float32, name=None):
        self.dtype = _checks.float_dtype("dtype", dtype)
        self.name = name or type(self).__name__
        self.params = {}
        self.grads = {}
        self.input_shape = None
        self.output_shape = None
        #: False for the first layer of a model: its ``dx`` is never used.
        self.needs_input_grad = True
        self._output_cache_shape = None
        if input_shape is not None:
            self.build(input_shape)

    # ------------------------------------------------------------ shapes
    @property
    def built(self):
        return self.output_shape is not None

    def build(self, input_shape, rng=None):
        """Fix the per-sample ``input_shape``; compute ``output_shape``; create weights."""
        if isinstance(input_shape, (str, bytes)) or not hasattr(input_shape, "__len__"):
            raise TypeError(f"{self.name}: input_shape must be a tuple, received {input_shape!r}")
        input_shape = tuple(_checks.positive_int(f"{self.name} input_shape[{i}]", s)
                            for i, s in enumerate(input_shape))
        output_shape = self._compute_output_shape(input_shape)
        self.input_shape, self.output_shape = input_shape, output_shape
        if not self.params:
            self._init_params(rng)
        return self

    def _compute_output_shape(self, input_shape):
        return input_shape

    def _init_params(self, rng):
        """Create ``params`` (layers with weights override this)."""

    def reset_parameters(self, rng=None):
        """Draw fresh weights (He/Glorot) from ``rng`` (None, int seed or Generator)."""
        self.params = {}
        self.grads = {}
        if self.built:
            self._init_params(rng)

    def astype(self, dtype):
        """Convert parameters to ``dtype`` (float32 or float64) in place; returns self."""
        self.dtype = _checks.float_dtype("dtype", dtype)
        for key, value in self.params.items():
            self.params[key] = value.astype(self.dtype)
        self.grads = {}
        return self

    @property
    def n_params(self):
        return int(sum(p.size for p in self.params.values()))

    def _replica(self):
        """A copy sharing ``params`` (the same arrays) but with its own caches and
        ``grads``, so another thread can run a slice of the batch through it."""
        twin = copy.copy(self)
        twin.grads = {}
        if hasattr(self, "_buffers"):
            twin._buffers = {}
        if getattr(self, "activation", None) is not None:
            twin.activation = copy.copy(self.activation)
        return twin

    # ------------------------------------------------------------ passes
    def forward(self, x):
        """Validate ``x`` of shape ``(N, *input_shape)`` and return ``y`` of
        shape ``(N, *output_shape)``. Builds the layer from ``x`` if needed."""
        if not isinstance(x, np.ndarray):
            raise TypeError(f"{self.name}: x must be a numpy array, received {type(x).__name__}")
        if not self.built:
            if x.ndim < 2:
                raise ValueError(f"{self.name}: x must be a batch (N, ...) with at least 2 "
                                 f"dimensions, received shape {x.shape}")
            self.build(x.shape[1:])
        _checks.input_array(f"{self.name}: x", x, self.input_shape)
        if self.params and x.dtype != self.dtype:
            raise TypeError(f"{self.name}: x has dtype {x.dtype} but the layer's parameters are "
                            f"{self.dtype}; convert x with x.astype(np.{self.dtype}), or create "
                            f"the layer with dtype=np.{x.dtype} (or call layer.astype(np.{x.dtype}))")
        y = self._forward(x)
        self._output_cache_shape = y.shape
        return y

    def backward(self, dout):
        """Validate ``dout = dL/dy`` (shape of the last output) and return ``dx``."""
        if self._output_cache_shape is None:
            raise RuntimeError(f"{self.name}: call forward(x) before backward(dout)")
        if not isinstance(dout, np.ndarray) or dout.shape != self._output_cache_shape:
            got = dout.shape if isinstance(dout, np.ndarray) else type(dout).__name__
            raise ValueError(f"{self.name}: dout must have the shape of the last output "
                             f"{self._output_cache_shape}, received {got}")
        # The private passes may overwrite the gradient they are handed (the model
        # hands over arrays it no longer needs); a caller's array is never touched.
        return self._backward(dout.copy())

    def _forward(self, x):
        raise NotImplementedError

    def _backward(self, dout):
        raise NotImplementedError

    # ------------------------------------------------------------ description
    def get_config(self):
        """JSON-serialisable constructor arguments (used by ``save``)."""
        return {"name": self.name}

    def describe(self):
        """Short human description for ``summary()``."""
        return type(self).__name__

    def __repr__(self):
        shapes = f"{self.input_shape} -> {self.output_shape}" if self.built else "not built"
        return f"<{self.describe()}: {shapes}>"


class ActivatedLayer(Layer):
    """A layer with weights followed by an optional built-in activation.

    ``backward(dout)`` goes through the activation then the linear part.
    The model calls ``_backward_linear(dz)`` directly when the activation is
    a softmax fused with the cross-entropy loss (``dz = (p - y) / N``).
    """

    def __init__(self, activation=None, **kwargs):
        from .activations import make_activation
        self.activation = make_activation(activation)
        super().__init__(**kwargs)

    @property
    def activation_name(self):
        return None if self.activation is None else self.activation.kind

    def _forward(self, x):
        z = self._forward_linear(x)                # a fresh array we own
        return z if self.activation is None else self.activation._forward(z, inplace=True)

    def _backward(self, dout):
        dz = dout if self.activation is None else self.activation._backward(dout)
        return self._backward_linear(dz)
