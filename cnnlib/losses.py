"""Softmax + cross-entropy, fused and computed with log-sum-exp.

For logits ``z`` (N, K) and integer labels ``y`` (N,)::

    log p[n, k] = z[n, k] - logsumexp(z[n])
    logsumexp(z[n]) = m + log sum_k exp(z[n, k] - m),   m = max_k z[n, k]
    L = -(1 / N) sum_n log p[n, y[n]]
    dL/dz = (p - onehot(y)) / N                          (N, K)

Subtracting ``m`` keeps every exponent <= 0, so nothing overflows, and the
log of a tiny probability is never taken: this is what fixes the original's
"exploding numbers".
"""
import numpy as np

from . import _checks


def log_softmax(z):
    """Row-wise ``log softmax`` of ``z`` (N, K), stable for any finite ``z``."""
    shifted = z - z.max(axis=1, keepdims=True)                   # (N, K), max 0 per row
    with np.errstate(under="ignore"):                            # exp(-1e4) -> 0 is fine
        return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax_cross_entropy(logits, labels):
    """Mean cross-entropy of ``softmax(logits)`` against integer ``labels``.

    Args:
        logits: (N, K) float array.
        labels: (N,) integers in ``[0, K)``.

    Returns:
        ``(loss, dlogits, probs)``: the mean loss (a Python float), its gradient
        ``(p - onehot(labels)) / N`` of shape (N, K) in the dtype of ``logits``,
        and the probabilities ``p`` (N, K).
    """
    _checks.input_array("logits", logits, (None,), check_finite=False)
    n, k = logits.shape
    labels = _checks.labels_array("labels", labels, n, k)
    logp = log_softmax(logits)                                   # (N, K)
    rows = np.arange(n)
    loss = -float(logp[rows, labels].mean(dtype=np.float64))
    with np.errstate(under="ignore"):
        probs = np.exp(logp)                                     # (N, K)
    dlogits = probs.copy()
    dlogits[rows, labels] -= 1
    dlogits /= n
    return loss, dlogits, probs
