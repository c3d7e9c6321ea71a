"""Patch extraction for convolution (batch-first NHWC, stride 1).

``im2col`` turns every ``KH x KW x C`` window of a padded batch into one row of
a matrix, so that a whole convolution becomes a single matrix product that
BLAS runs at full speed::

    cols (N*OH*OW, KH*KW*C) @ W.reshape(KH*KW*C, C_out) -> (N*OH*OW, C_out)

``col2im`` is its adjoint: it adds each row's entries back to the input
positions they were read from. It loops over the ``KH*KW`` kernel offsets
(9 for a 3x3 kernel), never over samples or pixels.
"""
import numpy as np
from numpy.lib.stride_tricks import as_strided


def same_padding(kernel_size):
    """Padding ``(before, after)`` that keeps the size for stride 1.

    The total is ``kernel_size - 1``. For an even kernel it cannot be split
    evenly; like TensorFlow we put the extra row/column after (bottom/right).
    """
    total = kernel_size - 1
    return total // 2, total - total // 2


def windows(x_padded, kernel_h, kernel_w):
    """Read-only strided view of all windows, no copy.

    x_padded: (N, Hp, Wp, C) -> view (N, OH, OW, KH, KW, C),
    with ``OH = Hp - KH + 1`` and ``OW = Wp - KW + 1``.
    """
    n, hp, wp, c = x_padded.shape
    s_n, s_h, s_w, s_c = x_padded.strides
    shape = (n, hp - kernel_h + 1, wp - kernel_w + 1, kernel_h, kernel_w, c)
    strides = (s_n, s_h, s_w, s_h, s_w, s_c)
    return as_strided(x_padded, shape=shape, strides=strides, writeable=False)


def im2col(x_padded, kernel_h, kernel_w, out=None):
    """Copy every window into one row.

    x_padded: (N, Hp, Wp, C) -> cols (N*OH*OW, KH*KW*C).
    ``out``, if given, is a reusable C-contiguous buffer of that shape and dtype.
    """
    view = windows(x_padded, kernel_h, kernel_w)          # (N, OH, OW, KH, KW, C)
    n, oh, ow, kh, kw, c = view.shape
    if out is None:
        out = np.empty((n * oh * ow, kh * kw * c), dtype=x_padded.dtype)
    target = out.reshape(view.shape)                      # (N, OH, OW, KH, KW, C)
    if not np.shares_memory(target, out):                 # reshape had to copy: unusable
        raise ValueError("out must be reshapeable to (N, OH, OW, KH, KW, C) without a copy")
    np.copyto(target, view)
    return out


def col2im(cols, padded_shape, kernel_h, kernel_w, out=None):
    """Adjoint of ``im2col``: scatter-add rows back onto the padded input.

    cols: (N*OH*OW, KH*KW*C) -> (N, Hp, Wp, C), where ``padded_shape`` is
    ``(N, Hp, Wp, C)``. Overlapping windows add up, as the chain rule asks.
    """
    n, hp, wp, c = padded_shape
    oh, ow = hp - kernel_h + 1, wp - kernel_w + 1
    patches = cols.reshape(n, oh, ow, kernel_h, kernel_w, c)  # (N, OH, OW, KH, KW, C)
    if out is None:
        out = np.zeros(padded_shape, dtype=cols.dtype)
    else:
        out.fill(0)
    for i in range(kernel_h):
        for j in range(kernel_w):
            out[:, i:i + oh, j:j + ow, :] += patches[:, :, :, i, j, :]
    return out
