"""Finite-difference gradient checks, shared by the tests and the notebooks.

Centred differences: ``df/dx_i ~ (f(x + h e_i) - f(x - h e_i)) / (2 h)``, with
a truncation error of order ``h**2`` and a rounding error of order
``eps * |f| / h``; ``h = 1e-5`` balances the two in float64. Run them in
float64: in float32 the rounding error of ``f`` swamps the difference.
"""
import numpy as np


def numerical_gradient(f, x, h=1e-5):
    """Centred-difference gradient of the scalar function ``f()`` w.r.t. array ``x``.

    ``x`` is perturbed in place (and restored), so ``f`` must read it; returns
    an array shaped like ``x``.
    """
    grad = np.zeros_like(x, dtype=np.float64)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    if not np.shares_memory(flat, x):
        raise ValueError("x must be contiguous so it can be perturbed in place")
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        f_plus = f()
        flat[i] = old - h
        f_minus = f()
        flat[i] = old
        gflat[i] = (f_plus - f_minus) / (2 * h)
    return grad


def rel_error(a, b):
    """Max relative error ``max|a - b| / max(max|a|, max|b|)`` (0 when both are 0).

    Measured against the largest entry rather than entry by entry, so that
    entries which are zero up to rounding do not blow up the ratio.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    scale = max(np.abs(a).max(initial=0.0), np.abs(b).max(initial=0.0))
    return 0.0 if scale == 0 else float(np.abs(a - b).max() / scale)


def check_layer(layer, x, seed=0, h=1e-5):
    """Gradient-check ``layer`` at input ``x`` (float64 advised).

    Uses the scalar ``L = sum(forward(x) * r)`` for a fixed random ``r``, so
    ``dL/dy = r``. Returns ``{"x": err, "W": err, ...}`` of ``rel_error``
    between ``backward`` and finite differences.
    """
    rng = np.random.default_rng(seed)
    r = rng.standard_normal(layer.forward(x).shape)

    def loss():
        return float(np.sum(layer.forward(x) * r))

    layer.forward(x)
    dx = layer.backward(r.astype(x.dtype))
    errors = {"x": rel_error(dx, numerical_gradient(loss, x, h))}
    analytic = {k: g.copy() for k, g in layer.grads.items()}
    for key, w in layer.params.items():
        errors[key] = rel_error(analytic[key], numerical_gradient(loss, w, h))
    return errors
