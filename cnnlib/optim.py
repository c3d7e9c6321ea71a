"""Optimisers behind one small interface.

``optimizer.step(layers)`` updates every ``layer.params[key]`` in place from
``layer.grads[key]``. The learning rate ``lr`` is a plain attribute, so it can
be changed between steps (the notebook's widget does that).

Update rules for a parameter ``w`` with gradient ``g`` (``wd`` = weight decay,
added to ``g`` as ``wd * w`` for weights ``"W"`` only, never for biases):

* SGD:       ``w -= lr * g``
* Momentum:  ``v = mu * v - lr * g``;  ``w += v``;  Nesterov: ``w += mu * v - lr * g``
* Adam:      ``m = b1 m + (1 - b1) g``;  ``v = b2 v + (1 - b2) g^2``;
             ``w -= lr_t * m / (sqrt(v) + eps)`` with ``lr_t = lr sqrt(1 - b2^t) / (1 - b1^t)``,
             the bias corrections folded into the step size (as Keras does; the same as
             ``lr * m_hat / (sqrt(v_hat) + eps)`` up to where ``eps`` sits)
"""
import math

import numpy as np

from . import _checks


class Optimizer:
    """Base class: subclasses implement ``_update(w, g, state)``."""
    name = "optimizer"

    def __init__(self, lr=0.01, weight_decay=0.0):
        self.lr = _checks.positive_float("lr", lr)
        self.weight_decay = _checks.non_negative_float("weight_decay", weight_decay)
        self._state = {}
        self.iterations = 0

    def step(self, layers):
        """Apply one update to every parameter of ``layers`` (an iterable of
        layers, or a ``Sequential``), from the gradients in their ``grads``."""
        layers = getattr(layers, "trainable_layers", layers)
        self.iterations += 1
        for layer in layers:
            for key, w in layer.params.items():
                g = layer.grads.get(key)
                if g is None:
                    raise RuntimeError(f"{layer.name} has no gradient for {key!r}; run a "
                                       "backward pass (model.compute_gradients) before step()")
                if self.weight_decay and key == "W":
                    g = g + self.weight_decay * w
                state = self._state.setdefault(id(w), {})
                self._update(w, g, state)

    def _update(self, w, g, state):
        raise NotImplementedError

    def get_config(self):
        return {"name": self.name, "lr": self.lr, "weight_decay": self.weight_decay}

    def __repr__(self):
        args = ", ".join(f"{k}={v}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Plain stochastic gradient descent, the original project's rule."""
    name = "sgd"

    def _update(self, w, g, state):
        w -= self.lr * g


class Momentum(Optimizer):
    """SGD with (heavy-ball or Nesterov) momentum ``mu``."""
    name = "momentum"

    def __init__(self, lr=0.01, momentum=0.9, nesterov=False, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        self.momentum = _checks.non_negative_float("momentum", momentum)
        if self.momentum >= 1:
            raise ValueError(f"momentum must be in [0, 1), received {momentum!r}")
        self.nesterov = bool(nesterov)

    def _update(self, w, g, state):
        v = state.get("v")
        if v is None:
            v = state["v"] = np.zeros_like(w)
        v *= self.momentum
        v -= self.lr * g
        if self.nesterov:
            w += self.momentum * v - self.lr * g
        else:
            w += v

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with bias correction."""
    name = "adam"

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-7, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        for arg, value in (("beta1", beta1), ("beta2", beta2)):
            if not 0 <= _checks.non_negative_float(arg, value) < 1:
                raise ValueError(f"{arg} must be in [0, 1), received {value!r}")
        self.beta1, self.beta2 = float(beta1), float(beta2)
        self.eps = _checks.positive_float("eps", eps)

    def _update(self, w, g, state):
        if "m" not in state:
            state["m"], state["v"], state["t"] = np.zeros_like(w), np.zeros_like(w), 0
        state["t"] += 1
        m, v, t = state["m"], state["v"], state["t"]
        m *= self.beta1
        m += (1 - self.beta1) * g
        v *= self.beta2
        v += (1 - self.beta2) * (g * g)
        # Fold both bias corrections into the step size: one scalar, no extra arrays.
        # (a Python float, so float32 arrays are not upcast to float64)
        step = self.lr * math.sqrt(1 - self.beta2 ** t) / (1 - self.beta1 ** t)
        w -= step * m / (np.sqrt(v) + self.eps)

    def get_config(self):
        return {**super().get_config(), "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}


OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "adam": Adam}


def get_optimizer(name, **hyperparameters):
    """``get_optimizer("adam", lr=1e-3)`` -> an ``Adam`` instance.

    ``name`` is ``"sgd"``, ``"momentum"`` or ``"adam"``; an ``Optimizer`` instance
    is returned unchanged.
    """
    if isinstance(name, Optimizer):
        return name
    _checks.choice("optimizer", name, tuple(OPTIMIZERS))
    try:
        return OPTIMIZERS[name](**hyperparameters)
    except TypeError as err:
        raise TypeError(f"optimizer {name!r}: {err}") from None
