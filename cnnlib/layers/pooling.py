"""2x2 pooling with stride 2, like the original project.

Shapes: ``(N, H, W, C) -> (N, H // 2, W // 2, C)``. The output-size formula for
a 2x2 window and stride 2 is ``OH = floor((H - 2) / 2) + 1 = H // 2``: with an
odd height or width the last row or column is dropped (Keras "valid" pooling)
and receives zero gradient.

The input is viewed (no copy) as ``(N, OH, 2, OW, 2, C)``: axes 2 and 4 index
the row and column inside a window, so every operation is a whole-array
operation on strided views, never a loop over pixels.
"""
import numpy as np

from .base import Layer

class _Pool2x2(Layer):
    def _compute_output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"{self.name}: input_shape must be (H, W, C), received {input_shape}")
        h, w, c = input_shape
        if h < 2 or w < 2:
            raise ValueError(f"{self.name}: needs an input of at least 2x2, received {h}x{w}")
        return (h // 2, w // 2, c)

    @staticmethod
    def _windows(x):
        """View (N, OH, 2, OW, 2, C) of the 2x2 windows; an odd last row/column is left out."""
        n, h, w, c = x.shape
        oh, ow = h // 2, w // 2
        view = x[:, :2 * oh, :2 * ow, :].reshape(n, oh, 2, ow, 2, c)    # (N, OH, 2, OW, 2, C)
        assert np.shares_memory(view, x)                                 # a view, never a copy
        return view


class MaxPool2D(_Pool2x2):
    """Maximum of each 2x2 window, stride 2.

    Backward routes each window's gradient to exactly one input: the first
    maximum in row-major order (top-left, top-right, bottom-left,
    bottom-right). The other three inputs of the window get zero.

    Input ``(N, H, W, C)``; output ``(N, H // 2, W // 2, C)``.
    """

    def _forward(self, x):
        win = self._windows(x)                                            # (N, OH, 2, OW, 2, C)
        top = np.maximum(win[:, :, 0, :, 0], win[:, :, 0, :, 1])          # (N, OH, OW, C)
        bottom = np.maximum(win[:, :, 1, :, 0], win[:, :, 1, :, 1])
        y = np.maximum(top, bottom, out=top)                              # (N, OH, OW, C)
        self._x, self._y = x, y        # backward finds the winners; inference never pays
        return y

    def _backward(self, dout):
        n, h, w, c = self._x.shape
        odd = h % 2 or w % 2               # only then are some inputs outside every window
        dx = (np.zeros if odd else np.empty)(self._x.shape, dtype=dout.dtype)  # (N, H, W, C)
        win, out = self._windows(self._x), self._windows(dx)
        # Visit the corners in row-major order; the first one equal to the maximum
        # takes what is left of the gradient, so each window routes it exactly once.
        rest = dout                                                       # (N, OH, OW, C), ours to reuse
        for i, j in ((0, 0), (0, 1), (1, 0)):
            corner = out[:, :, i, :, j]
            np.multiply(rest, win[:, :, i, :, j] == self._y, out=corner)
            rest -= corner
        out[:, :, 1, :, 1] = rest
        return dx

    def describe(self):
        return "MaxPool2D(2x2)"


class AvgPool2D(_Pool2x2):
    """Mean of each 2x2 window, stride 2; backward gives each input ``dout / 4``.

    Input ``(N, H, W, C)``; output ``(N, H // 2, W // 2, C)``.
    """

    def _forward(self, x):
        self._x_shape = x.shape
        win = self._windows(x)
        rows = win[:, :, 0] + win[:, :, 1]                                # (N, OH, OW, 2, C)
        y = rows[:, :, :, 0] + rows[:, :, :, 1]                           # (N, OH, OW, C)
        y *= y.dtype.type(0.25)
        return y

    def _backward(self, dout):
        n, h, w, c = self._x_shape
        odd = h % 2 or w % 2
        dx = (np.zeros if odd else np.empty)(self._x_shape, dtype=dout.dtype)   # (N, H, W, C)
        share = dout * dout.dtype.type(0.25)                              # (N, OH, OW, C)
        self._windows(dx)[...] = share[:, :, None, :, None, :]            # broadcast to 2x2
        return dx

    def describe(self):
        return "AvgPool2D(2x2)"
