"""Optimisers against hand-written reference updates (3 steps, tiny parameters)."""
import math

import numpy as np
import pytest

from cnnlib import SGD, Adam, Dense, Momentum, get_optimizer
from cnnlib.optim import Optimizer

W0 = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])
B0 = np.array([0.1, -0.2, 0.3])
# gradient per step (different each step, some entries negative)
GRADS_W = [np.array([[0.3, -0.6, 0.9], [-1.2, 0.4, 0.05]]),
           np.array([[-0.5, 0.2, 0.7], [0.8, -0.3, 1.1]]),
           np.array([[0.25, 0.25, -1.5], [0.6, 0.9, -0.4]])]
GRADS_B = [np.array([0.2, -0.1, 0.4]), np.array([-0.3, 0.5, 0.1]), np.array([0.7, -0.2, -0.6])]


def tiny_layer(dtype=np.float64):
    lay = Dense(3, 2, dtype=dtype, rng=0)
    lay.params["W"][...] = W0
    lay.params["b"][...] = B0
    return lay


def run(optimizer, steps=3, dtype=np.float64):
    lay = tiny_layer(dtype)
    history = []
    for t in range(steps):
        lay.grads["W"] = GRADS_W[t].astype(dtype)
        lay.grads["b"] = GRADS_B[t].astype(dtype)
        optimizer.step([lay])
        history.append({k: v.copy() for k, v in lay.params.items()})
    return history


def assert_history(history, reference):
    for t, (got, want) in enumerate(zip(history, reference)):
        for key in ("W", "b"):
            np.testing.assert_allclose(got[key], want[key], rtol=1e-6, atol=1e-6,
                                       err_msg=f"step {t + 1}, {key}")


# ------------------------------------------------------------------ references
def reference_sgd(lr, weight_decay=0.0):
    w, b, out = W0.copy(), B0.copy(), []
    for t in range(3):
        w = w - lr * (GRADS_W[t] + weight_decay * w)
        b = b - lr * GRADS_B[t]
        out.append({"W": w, "b": b})
    return out


def reference_momentum(lr, mu, nesterov):
    params = {"W": W0.copy(), "b": B0.copy()}
    velocity = {"W": np.zeros_like(W0), "b": np.zeros_like(B0)}
    grads = {"W": GRADS_W, "b": GRADS_B}
    out = []
    for t in range(3):
        for key in params:
            g = grads[key][t]
            velocity[key] = mu * velocity[key] - lr * g
            if nesterov:
                params[key] = params[key] + mu * velocity[key] - lr * g
            else:
                params[key] = params[key] + velocity[key]
        out.append({k: v.copy() for k, v in params.items()})
    return out


def reference_adam(lr, beta1, beta2, eps, lrs=None):
    """Adam with bias-corrected moments, Kingma & Ba (2015).

    ``eps`` is added to ``sqrt(v)`` after folding both bias corrections into the
    step size (the paper's "epsilon hat", section 2, and what Keras does)::

        lr_t = lr * sqrt(1 - beta2**t) / (1 - beta1**t);  w -= lr_t * m / (sqrt(v) + eps)

    which equals Algorithm 1, ``lr * m_hat / (sqrt(v_hat) + eps')``, with
    ``eps' = eps / sqrt(1 - beta2**t)``. ``lrs`` optionally gives the rate per step.
    """
    lrs = lrs or [lr] * 3
    params = {"W": W0.copy(), "b": B0.copy()}
    m = {"W": np.zeros_like(W0), "b": np.zeros_like(B0)}
    v = {"W": np.zeros_like(W0), "b": np.zeros_like(B0)}
    grads = {"W": GRADS_W, "b": GRADS_B}
    out = []
    for t in range(1, 4):
        for key in params:
            g = grads[key][t - 1]
            m[key] = beta1 * m[key] + (1 - beta1) * g
            v[key] = beta2 * v[key] + (1 - beta2) * g * g
            lr_t = lrs[t - 1] * math.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
            params[key] = params[key] - lr_t * m[key] / (np.sqrt(v[key]) + eps)
        out.append({k: v_.copy() for k, v_ in params.items()})
    return out


def reference_adam_algorithm1(lr, beta1, beta2, eps):
    """Algorithm 1 of the paper: ``w -= lr * m_hat / (sqrt(v_hat) + eps)``."""
    params = {"W": W0.copy(), "b": B0.copy()}
    m = {"W": np.zeros_like(W0), "b": np.zeros_like(B0)}
    v = {"W": np.zeros_like(W0), "b": np.zeros_like(B0)}
    grads = {"W": GRADS_W, "b": GRADS_B}
    out = []
    for t in range(1, 4):
        for key in params:
            g = grads[key][t - 1]
            m[key] = beta1 * m[key] + (1 - beta1) * g
            v[key] = beta2 * v[key] + (1 - beta2) * g * g
            m_hat = m[key] / (1 - beta1 ** t)
            v_hat = v[key] / (1 - beta2 ** t)
            params[key] = params[key] - lr * m_hat / (np.sqrt(v_hat) + eps)
        out.append({k: v_.copy() for k, v_ in params.items()})
    return out


# ------------------------------------------------------------------ update rules
@pytest.mark.parametrize("lr", [0.1, 0.5])
def test_sgd_matches_reference(lr):
    assert_history(run(SGD(lr=lr)), reference_sgd(lr))


@pytest.mark.parametrize("nesterov", [False, True], ids=["classic", "nesterov"])
@pytest.mark.parametrize("mu", [0.9, 0.5])
def test_momentum_matches_reference(nesterov, mu):
    history = run(Momentum(lr=0.1, momentum=mu, nesterov=nesterov))
    assert_history(history, reference_momentum(0.1, mu, nesterov))
    # the two variants really differ
    other = reference_momentum(0.1, mu, not nesterov)
    assert np.abs(history[-1]["W"] - other[-1]["W"]).max() > 1e-3


def test_momentum_zero_is_sgd():
    assert_history(run(Momentum(lr=0.2, momentum=0.0)), reference_sgd(0.2))


@pytest.mark.parametrize("lr,beta1,beta2,eps", [(0.1, 0.9, 0.999, 1e-7),
                                                (0.01, 0.8, 0.99, 1e-7),
                                                (0.1, 0.9, 0.999, 1e-3)])
def test_adam_matches_reference(lr, beta1, beta2, eps):
    history = run(Adam(lr=lr, beta1=beta1, beta2=beta2, eps=eps))
    assert_history(history, reference_adam(lr, beta1, beta2, eps))
    # the first Adam step moves every entry by about lr (m_hat / sqrt(v_hat) = sign(g))
    first = run(Adam(lr=lr, beta1=beta1, beta2=beta2, eps=1e-12), steps=1)[0]
    np.testing.assert_allclose(np.abs(first["W"] - W0), lr, rtol=1e-6)


def test_adam_with_tiny_eps_matches_algorithm_1():
    """Where eps does not matter, both ways of writing Adam agree."""
    history = run(Adam(lr=0.1, eps=1e-12))
    assert_history(history, reference_adam_algorithm1(0.1, 0.9, 0.999, 1e-12))


def test_adam_default_hyperparameters():
    opt = Adam()
    assert (opt.lr, opt.beta1, opt.beta2) == (0.001, 0.9, 0.999)
    assert 0 < opt.eps <= 1e-7


@pytest.mark.parametrize("make", [lambda: SGD(lr=0.1), lambda: Momentum(lr=0.1),
                                  lambda: Adam(lr=0.1)], ids=["sgd", "momentum", "adam"])
def test_float32_parameters_stay_float32(make):
    history = run(make(), dtype=np.float32)
    assert all(p.dtype == np.float32 for h in history for p in h.values())


# ------------------------------------------------------------------ weight decay
@pytest.mark.parametrize("make", [
    lambda: SGD(lr=0.1, weight_decay=0.5),
    lambda: Momentum(lr=0.1, momentum=0.9, weight_decay=0.5),
    lambda: Adam(lr=0.1, weight_decay=0.5),
], ids=["sgd", "momentum", "adam"])
def test_weight_decay_applies_to_weights_not_biases(make):
    lay = tiny_layer()
    lay.grads = {"W": np.zeros_like(W0), "b": np.zeros_like(B0)}
    make().step([lay])
    np.testing.assert_array_equal(lay.params["b"], B0)                 # untouched
    # every weight shrinks toward 0 (the decay term is wd * w)
    assert np.all(np.abs(lay.params["W"]) < np.abs(W0))
    assert np.all(np.sign(lay.params["W"]) == np.sign(W0))


def test_sgd_weight_decay_matches_reference():
    assert_history(run(SGD(lr=0.1, weight_decay=0.01)), reference_sgd(0.1, 0.01))


def test_without_weight_decay_zero_gradient_changes_nothing():
    lay = tiny_layer()
    lay.grads = {"W": np.zeros_like(W0), "b": np.zeros_like(B0)}
    for opt in (SGD(lr=0.1), Momentum(lr=0.1), Adam(lr=0.1)):
        opt.step([lay])
    np.testing.assert_array_equal(lay.params["W"], W0)
    np.testing.assert_array_equal(lay.params["b"], B0)


# ------------------------------------------------------------------ learning rate
def test_sgd_learning_rate_change_takes_effect():
    opt = SGD(lr=0.1)
    lay = tiny_layer()
    lay.grads = {"W": GRADS_W[0].copy(), "b": GRADS_B[0].copy()}
    opt.step([lay])
    np.testing.assert_allclose(lay.params["W"], W0 - 0.1 * GRADS_W[0], rtol=1e-12)
    opt.lr = 0.01
    before = lay.params["W"].copy()
    opt.step([lay])
    np.testing.assert_allclose(lay.params["W"] - before, -0.01 * GRADS_W[0], rtol=1e-10)


@pytest.mark.parametrize("name", ["momentum", "adam"])
def test_learning_rate_change_takes_effect(name):
    """Changing ``lr`` after the first step gives the reference that uses the
    new rate from step 2 on (same state, different step size)."""
    def steps(lrs):
        opt = get_optimizer(name, lr=lrs[0])
        lay = tiny_layer()
        for t, lr in enumerate(lrs):
            opt.lr = lr
            lay.grads = {"W": GRADS_W[t].copy(), "b": GRADS_B[t].copy()}
            opt.step([lay])
        return lay.params["W"].copy()

    changed = steps([0.1, 0.001, 0.001])
    constant = steps([0.1, 0.1, 0.1])
    assert np.abs(changed - constant).max() > 1e-2
    # reference with the changing rate
    if name == "momentum":
        w, v = W0.copy(), np.zeros_like(W0)
        for t, lr in enumerate([0.1, 0.001, 0.001]):
            v = 0.9 * v - lr * GRADS_W[t]
            w = w + v
    else:
        w = reference_adam(None, 0.9, 0.999, 1e-7, lrs=[0.1, 0.001, 0.001])[-1]["W"]
    np.testing.assert_allclose(changed, w, rtol=1e-6, atol=1e-6)


# ------------------------------------------------------------------ get_optimizer
def test_get_optimizer_by_name():
    adam = get_optimizer("adam", lr=1e-3)
    assert isinstance(adam, Adam) and adam.lr == pytest.approx(1e-3)
    sgd = get_optimizer("sgd", lr=0.05, weight_decay=1e-4)
    assert isinstance(sgd, SGD) and (sgd.lr, sgd.weight_decay) == (0.05, 1e-4)
    nesterov = get_optimizer("momentum", lr=0.01, momentum=0.8, nesterov=True)
    assert isinstance(nesterov, Momentum) and nesterov.nesterov and nesterov.momentum == 0.8
    assert get_optimizer(adam) is adam                       # an instance passes through
    assert isinstance(adam, Optimizer)
    assert "lr=0.001" in repr(adam)


def test_state_is_kept_per_parameter():
    """Two layers stepped by one Momentum optimizer keep separate velocities."""
    opt = Momentum(lr=0.1, momentum=0.9)
    a, b = tiny_layer(), tiny_layer()
    for t in range(3):
        a.grads = {"W": GRADS_W[t].copy(), "b": GRADS_B[t].copy()}
        b.grads = {"W": -GRADS_W[t], "b": -GRADS_B[t]}
        opt.step([a, b])
    ref = reference_momentum(0.1, 0.9, False)[-1]
    np.testing.assert_allclose(a.params["W"], ref["W"], rtol=1e-12)
    np.testing.assert_allclose(b.params["W"], 2 * W0 - ref["W"], rtol=1e-12)
    assert opt.iterations == 3
    assert math.isclose(opt.lr, 0.1)
