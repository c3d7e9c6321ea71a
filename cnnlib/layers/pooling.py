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
        self._x = x                   # backward works out the winners; inference never pays
        return np.maximum(top, bottom, out=top)                           # (N, OH, OW, C)

    def _backward(self, dout):
        win = self._windows(self._x)
        top_left, top_right = win[:, :, 0, :, 0], win[:, :, 0, :, 1]      # (N, OH, OW, C) views
        bottom_left, bottom_right = win[:, :, 1, :, 0], win[:, :, 1, :, 1]
        # A tournament whose strict ">" keeps the earlier corner on a tie, so
        # exactly one input per window wins: the first maximum in row-major order.
        right_wins_top = top_right > top_left
        right_wins_bottom = bottom_right > bottom_left
        bottom_wins = np.maximum(bottom_left, bottom_right) > np.maximum(top_left, top_right)
        n, h, w, c = self._x.shape
        odd = h % 2 or w % 2               # only then are some inputs outside every window
        dx = (np.zeros if odd else np.empty)(self._x.shape, dtype=dout.dtype)  # (N, H, W, C)
        out = self._windows(dx)
        top = np.where(bottom_wins, 0, dout)                              # gradient kept by the top row
        bottom = dout - top
        np.multiply(top, ~right_wins_top, out=out[:, :, 0, :, 0])
        np.multiply(top, right_wins_top, out=out[:, :, 0, :, 1])
        np.multiply(bottom, ~right_wins_bottom, out=out[:, :, 1, :, 0])
        np.multiply(bottom, right_wins_bottom, out=out[:, :, 1, :, 1])
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
