"""2x2 pooling with stride 2, like the original project.

Shapes: ``(N, H, W, C) -> (N, H // 2, W // 2, C)``. The output-size formula for
a 2x2 window and stride 2 is ``OH = floor((H - 2) / 2) + 1 = H // 2``: with an
odd height or width the last row or column is dropped (Keras "valid" pooling)
and receives zero gradient.

Each 2x2 window is split into its four corners, read as strided views of the
input (``x[:, di::2, dj::2]`` for ``di, dj`` in 0, 1), so the work is four
whole-array operations, never a loop over pixels.
"""
import numpy as np

from .base import Layer

#: the four corners of a 2x2 window, in row-major order (the tie-break order)
OFFSETS = ((0, 0), (0, 1), (1, 0), (1, 1))


class _Pool2x2(Layer):
    def _compute_output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"{self.name}: input_shape must be (H, W, C), received {input_shape}")
        h, w, c = input_shape
        if h < 2 or w < 2:
            raise ValueError(f"{self.name}: needs an input of at least 2x2, received {h}x{w}")
        return (h // 2, w // 2, c)

    def _corners(self, x):
        """Four views (N, OH, OW, C), one per window corner."""
        oh, ow = x.shape[1] // 2, x.shape[2] // 2
        return [x[:, di:2 * oh:2, dj:2 * ow:2, :] for di, dj in OFFSETS]


class MaxPool2D(_Pool2x2):
    """Maximum of each 2x2 window, stride 2.

    Backward routes each window's gradient to exactly one input: the first
    maximum in row-major order (top-left, top-right, bottom-left,
    bottom-right). The other three inputs of the window get zero.

    Input ``(N, H, W, C)``; output ``(N, H // 2, W // 2, C)``.
    """

    def _forward(self, x):
        a, b, c, d = self._corners(x)
        y = np.maximum(np.maximum(a, b), np.maximum(c, d))   # (N, OH, OW, C)
        self._x, self._y = x, y
        return y

    def _backward(self, dout):
        dx = np.zeros_like(self._x)                          # (N, H, W, C)
        taken = np.zeros(dout.shape, dtype=bool)             # window already routed?
        oh, ow = dout.shape[1], dout.shape[2]
        for (di, dj), corner in zip(OFFSETS, self._corners(self._x)):
            winner = (corner == self._y) & ~taken            # (N, OH, OW, C)
            taken |= winner
            dx[:, di:2 * oh:2, dj:2 * ow:2, :] = dout * winner
        return dx

    def describe(self):
        return "MaxPool2D(2x2)"


class AvgPool2D(_Pool2x2):
    """Mean of each 2x2 window, stride 2; backward gives each input ``dout / 4``.

    Input ``(N, H, W, C)``; output ``(N, H // 2, W // 2, C)``.
    """

    def _forward(self, x):
        n, h, w, c = x.shape
        oh, ow = h // 2, w // 2
        self._x_shape = x.shape
        win = x[:, :2 * oh, :2 * ow, :].reshape(n, oh, 2, ow, 2, c)   # (N, OH, 2, OW, 2, C)
        return win.mean(axis=(2, 4), dtype=x.dtype)                    # (N, OH, OW, C)

    def _backward(self, dout):
        oh, ow = dout.shape[1], dout.shape[2]
        dx = np.zeros(self._x_shape, dtype=dout.dtype)                # (N, H, W, C)
        share = dout * dout.dtype.type(0.25)                           # (N, OH, OW, C)
        for di, dj in OFFSETS:
            dx[:, di:2 * oh:2, dj:2 * ow:2, :] = share
        return dx

    def describe(self):
        return "AvgPool2D(2x2)"
