"""2-D convolution (cross-correlation, as in every deep-learning library), stride 1.

Shapes (batch-first NHWC)::

    x (N, H, W, C_in), W (KH, KW, C_in, C_out), b (C_out,) -> z (N, OH, OW, C_out)

Output size, with ``P_total`` rows of padding (stride 1)::

    OH = H + P_total - KH + 1        "valid": P_total = 0      -> OH = H - KH + 1
                                     "same":  P_total = KH - 1 -> OH = H

Forward (one output element)::

    z[n, i, j, o] = b[o] + sum_{p, q, c} xp[n, i + p, j + q, c] * W[p, q, c, o]

Backward, from ``dz`` (N, OH, OW, C_out)::

    dW[p, q, c, o] = sum_{n, i, j} xp[n, i + p, j + q, c] * dz[n, i, j, o]
    db[o]          = sum_{n, i, j} dz[n, i, j, o]
    dxp[n, r, s, c] = sum_{p, q, o} dz[n, r - p, s - q, o] * W[p, q, c, o]

The last line is a "full" convolution of ``dz`` with the flipped filters;
``dx`` is ``dxp`` with the padding cut off. The fast version computes the
forward pass, ``dW`` and ``db`` with one matrix product each on the im2col
matrix (a column of ones carries the bias), and ``dxp`` with one small product
per kernel offset, added onto its shifted window; ``conv2d_forward_naive`` and
``conv2d_backward_naive`` spell out the sums with loops and serve as the
oracle for tests and the notebook.
"""
import numpy as np

from .. import _checks
from ..im2col import im2col, same_padding
from ..init import as_generator, init_weights
from .base import ActivatedLayer

PADDINGS = ("same", "valid")


def _pads(kernel_h, kernel_w, padding):
    """((top, bottom), (left, right)) for a padding mode."""
    if padding == "valid":
        return (0, 0), (0, 0)
    return same_padding(kernel_h), same_padding(kernel_w)


# ---------------------------------------------------------------- naive oracle
def conv2d_forward_naive(x, W, b, padding="valid"):
    """Loop-by-loop convolution, the definition written out.

    x (N, H, W, C_in), W (KH, KW, C_in, C_out), b (C_out,) -> (N, OH, OW, C_out).
    Slow; for tests and teaching only.
    """
    kh, kw, _, c_out = W.shape
    (top, bottom), (left, right) = _pads(kh, kw, padding)
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    n, hp, wp, _ = xp.shape
    oh, ow = hp - kh + 1, wp - kw + 1
    z = np.empty((n, oh, ow, c_out), dtype=np.result_type(x, W))
    for s in range(n):
        for i in range(oh):
            for j in range(ow):
                window = xp[s, i:i + kh, j:j + kw, :]                 # (KH, KW, C_in)
                for o in range(c_out):
                    z[s, i, j, o] = np.sum(window * W[:, :, :, o]) + b[o]
    return z


def conv2d_backward_naive(dz, x, W, padding="valid"):
    """Loop-by-loop gradients ``(dx, dW, db)`` of ``conv2d_forward_naive``.

    dz (N, OH, OW, C_out) -> dx (N, H, W, C_in), dW like W, db (C_out,).
    Each output element ``z[s, i, j, o]`` read the window at ``(i, j)``; its
    gradient flows back to exactly the inputs and weights that window used.
    """
    kh, kw, _, c_out = W.shape
    (top, bottom), (left, right) = _pads(kh, kw, padding)
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    dxp = np.zeros_like(xp)
    dW = np.zeros_like(W)
    n, oh, ow, _ = dz.shape
    for s in range(n):
        for i in range(oh):
            for j in range(ow):
                for o in range(c_out):
                    g = dz[s, i, j, o]
                    dW[:, :, :, o] += g * xp[s, i:i + kh, j:j + kw, :]
                    dxp[s, i:i + kh, j:j + kw, :] += g * W[:, :, :, o]
    db = dz.sum(axis=(0, 1, 2))
    dx = dxp[:, top:top + x.shape[1], left:left + x.shape[2], :]
    return dx, dW, db


# ---------------------------------------------------------------- layer
class Conv2D(ActivatedLayer):
    """Stride-1 2-D convolution with an optional built-in activation.

    Args:
        filters: number of output channels ``C_out``.
        kernel_size: ``KH`` or ``(KH, KW)``; odd or even.
        input_shape: optional per-sample ``(H, W, C_in)``; else set by the model.
        padding: ``"valid"`` (default, no padding) or ``"same"`` (output keeps
            ``H x W``; an even kernel gets its extra row/column at the
            bottom/right, like TensorFlow).
        activation: ``"relu"``, ``"tanh"``, ``"sigmoid"``, ``"softmax"`` or ``None``.
        in_channels: optional ``C_in``; checked against the input when the layer is built.
        rng: ``None``, an int seed or a ``numpy.random.Generator``.
        dtype: ``np.float32`` (default) or ``np.float64``.

    Input shape ``(N, H, W, C_in)``; output ``(N, OH, OW, C_out)`` (see module doc).
    Parameters: ``W`` (KH, KW, C_in, C_out), ``b`` (C_out,).
    """

    def __init__(self, filters, kernel_size, input_shape=None, *, padding="valid",
                 activation=None, in_channels=None, rng=None, dtype=np.float32, name=None):
        self.filters = _checks.positive_int("filters", filters)
        self.in_channels = None if in_channels is None else \
            _checks.positive_int("in_channels", in_channels)
        if isinstance(kernel_size, (tuple, list)):
            self.kernel_size = _checks.shape_tuple("kernel_size", kernel_size, 2)
        else:
            k = _checks.positive_int("kernel_size", kernel_size)
            self.kernel_size = (k, k)
        self.padding = _checks.choice("padding", padding, PADDINGS)
        self._rng = rng
        self._buffers = {}
        super().__init__(activation=activation, input_shape=input_shape, dtype=dtype, name=name)

    def _compute_output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"{self.name}: input_shape must be (H, W, C), received {input_shape}")
        h, w, c = input_shape
        if self.in_channels is not None and c != self.in_channels:
            raise ValueError(f"{self.name}: the filters have depth {self.in_channels}, but the "
                             f"input has {c} channels (input shape {input_shape})")
        kh, kw = self.kernel_size
        if self.padding == "same":
            return (h, w, self.filters)
        if kh > h or kw > w:
            raise ValueError(f"{self.name}: kernel_size {self.kernel_size} is larger than the "
                             f"input {h}x{w} with padding 'valid'; use padding='same' or a "
                             "smaller kernel")
        return (h - kh + 1, w - kw + 1, self.filters)

    def _init_params(self, rng):
        rng = as_generator(self._rng if rng is None else rng)
        kh, kw = self.kernel_size
        c_in = self.input_shape[2]
        shape = (kh, kw, c_in, self.filters)
        self.params = {
            "W": init_weights(shape, kh * kw * c_in, kh * kw * self.filters,
                              self.activation_name, rng, self.dtype),
            "b": np.zeros(self.filters, dtype=self.dtype),
        }

    def _buffer(self, key, shape, dtype, zero=False):
        """A scratch array reused across batches of the same shape (no page faults,
        no allocator churn on the hot path)."""
        buf = self._buffers.get(key)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = (np.zeros if zero else np.empty)(shape, dtype=dtype)
            self._buffers[key] = buf
        return buf

    def _cols_buffer(self, key, shape, ones_at, dtype):
        """im2col matrix with one extra row/column of ones, so the bias is added by
        the same matrix product: ``[cols, 1] @ [[W], [b]] = cols @ W + b``."""
        old = self._buffers.get(key)
        buf = self._buffer(key, shape, dtype)
        if buf is not old:                  # newly allocated: write the ones once
            buf[ones_at] = 1
        return buf

    def _forward_linear(self, x):
        kh, kw = self.kernel_size
        n, h, w, c = x.shape
        (top, bottom), (left, right) = _pads(kh, kw, self.padding)
        hp, wp = h + top + bottom, w + left + right
        oh, ow = hp - kh + 1, wp - kw + 1
        k = kh * kw * c
        Wb = np.concatenate([self.params["W"].reshape(k, self.filters),      # (K, C_out)
                             self.params["b"][None, :]])                      # (K+1, C_out)
        # Few input channels (the first layer): build cols transposed, (K+1, N*OH*OW),
        # so every copy moves whole image rows instead of 1-float pieces.
        self._channels_first = c < 4
        if self._channels_first:
            xt = x.transpose(3, 0, 1, 2)                                      # (C, N, H, W) view
            if hp != h or wp != w:
                xp = self._buffer("padded_t", (c, n, hp, wp), x.dtype, zero=True)
                xp[:, :, top:top + h, left:left + w] = xt
            else:
                xp = xt
            cols = self._cols_buffer("cols_t", (k + 1, n * oh * ow), k, x.dtype)
            grid = cols[:k].reshape(kh, kw, c, n, oh, ow)                      # view
            for i in range(kh):
                for j in range(kw):
                    grid[i, j] = xp[:, :, i:i + oh, j:j + ow]
            z = cols.T @ Wb                                                   # (N*OH*OW, C_out)
        else:
            if hp != h or wp != w:
                # Borders of this buffer are zero once and stay zero; only the interior is copied.
                xp = self._buffer("padded", (n, hp, wp, c), x.dtype, zero=True)
                xp[:, top:top + h, left:left + w, :] = x
            else:
                xp = x
            cols = self._cols_buffer("cols", (n * oh * ow, k + 1), (slice(None), k), x.dtype)
            im2col(xp, kh, kw, out=cols[:, :k])                               # (N*OH*OW, K)
            z = cols @ Wb                                                     # (N*OH*OW, C_out)
        self._cols, self._x_shape, self._padded_shape = cols, x.shape, (n, hp, wp, c)
        return z.reshape(n, oh, ow, self.filters)                             # (N, OH, OW, C_out)

    def _backward_linear(self, dz):
        kh, kw = self.kernel_size
        n, h, w, c = self._x_shape
        k = kh * kw * c
        dz2 = dz.reshape(-1, self.filters)                                    # (N*OH*OW, C_out)
        # One product gives dW and, from the row of ones, db = sum of dz.
        g = self._cols @ dz2 if self._channels_first else self._cols.T @ dz2  # (K+1, C_out)
        self.grads["W"] = g[:k].reshape(self.params["W"].shape)               # (KH, KW, C_in, C_out)
        self.grads["b"] = g[k].copy()                                         # (C_out,)
        if not self.needs_input_grad:
            return None                                                       # first layer: dx unused
        (top, _), (left, _) = _pads(kh, kw, self.padding)
        _, hp, wp, _ = self._padded_shape
        oh, ow = hp - kh + 1, wp - kw + 1
        if self._channels_first:
            dcols = self.params["W"].reshape(k, self.filters) @ dz2.T         # (K, N*OH*OW)
            grid = dcols.reshape(kh, kw, c, n, oh, ow)
            dxp = np.zeros((c, n, hp, wp), dtype=dz.dtype)                    # (C, N, Hp, Wp)
            for i in range(kh):
                for j in range(kw):
                    dxp[:, :, i:i + oh, j:j + ow] += grid[i, j]
            return dxp[:, :, top:top + h, left:left + w].transpose(1, 2, 3, 0).copy()
        # col2im, one kernel offset at a time: each product is a contiguous
        # (N*OH*OW, C_in) block, added onto the input positions it came from.
        W = self.params["W"]
        dxp = np.zeros(self._padded_shape, dtype=dz.dtype)                    # (N, Hp, Wp, C)
        for i in range(kh):
            for j in range(kw):
                dxp[:, i:i + oh, j:j + ow, :] += (dz2 @ W[i, j].T).reshape(n, oh, ow, c)
        if hp == h and wp == w:
            return dxp
        return dxp[:, top:top + h, left:left + w, :].copy()                   # (N, H, W, C_in)

    def get_config(self):
        return {"filters": self.filters, "kernel_size": list(self.kernel_size),
                "input_shape": list(self.input_shape) if self.built else None,
                "padding": self.padding, "activation": self.activation_name,
                "in_channels": self.in_channels, "name": self.name}

    def describe(self):
        act = f", {self.activation_name}" if self.activation else ""
        kh, kw = self.kernel_size
        return f"Conv2D({self.filters}, {kh}x{kw}, {self.padding}{act})"
