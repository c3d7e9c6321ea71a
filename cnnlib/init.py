"""Weight initialisation: He for ReLU layers, Glorot for the others.

Why it matters: the original project gave every conv filter the same
starting values. Identical filters receive identical gradients, so they stay
identical forever (the symmetry is never broken). Drawing each weight
independently from a seeded ``numpy.random.Generator`` makes that impossible.

* He normal (He et al., 2015): ``W ~ N(0, 2 / fan_in)``, keeps the variance of
  ReLU activations roughly constant from layer to layer.
* Glorot uniform (Glorot & Bengio, 2010): ``W ~ U(-a, a)`` with
  ``a = sqrt(6 / (fan_in + fan_out))``, for tanh, sigmoid, softmax and linear.

Biases start at zero.
"""
import numbers

import numpy as np


def as_generator(rng):
    """Return a ``numpy.random.Generator`` from ``None``, an int seed or a Generator."""
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        if rng < 0:
            raise ValueError(f"seed/rng must be an integer >= 0, received {rng}")
        return np.random.default_rng(rng)
    if isinstance(rng, np.random.Generator):
        return rng
    raise TypeError("rng must be None, an integer seed or a numpy.random.Generator, "
                    f"received {rng!r}")


def he_normal(shape, fan_in, rng, dtype=np.float32):
    """Weights of ``shape`` drawn from ``N(0, 2 / fan_in)``."""
    std = np.sqrt(2.0 / fan_in)
    return (rng.standard_normal(shape) * std).astype(dtype)


def glorot_uniform(shape, fan_in, fan_out, rng, dtype=np.float32):
    """Weights of ``shape`` drawn from ``U(-a, a)``, ``a = sqrt(6 / (fan_in + fan_out))``."""
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(dtype)


def init_weights(shape, fan_in, fan_out, activation, rng, dtype=np.float32):
    """He normal when ``activation == "relu"``, Glorot uniform otherwise."""
    if activation == "relu":
        return he_normal(shape, fan_in, rng, dtype)
    return glorot_uniform(shape, fan_in, fan_out, rng, dtype)
