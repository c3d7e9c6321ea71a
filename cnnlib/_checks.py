"""Argument checks shared by every public entry point.

Each helper raises ``TypeError`` or ``ValueError`` whose message names the
argument, echoes the value received and says what is allowed, so that a
mistake never surfaces as a broadcasting traceback from deep inside NumPy.
"""
import numbers

import numpy as np


def positive_int(name, value, *, allow_zero=False):
    """Return ``value`` as an ``int`` after checking it is a positive integer."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, received {value!r} "
                        f"of type {type(value).__name__}")
    value = int(value)
    low = 0 if allow_zero else 1
    if value < low:
        raise ValueError(f"{name} must be >= {low}, received {value}")
    return value


def _finite_float(name, value, low, inclusive):
    """``value`` as a finite float above ``low`` (or equal to it when ``inclusive``)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, received {value!r} "
                        f"of type {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value) or value < low or (value == low and not inclusive):
        bound = ">=" if inclusive else ">"
        raise ValueError(f"{name} must be a finite number {bound} {low:g}, received {value!r}")
    return value


def positive_float(name, value):
    """Return ``value`` as a finite ``float`` > 0."""
    return _finite_float(name, value, 0.0, inclusive=False)


def non_negative_float(name, value):
    """Return ``value`` as a finite ``float`` >= 0."""
    return _finite_float(name, value, 0.0, inclusive=True)


def choice(name, value, allowed):
    """Check that ``value`` is one of ``allowed`` (strings compared exactly)."""
    if not isinstance(value, str) or value not in allowed:
        options = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{name} must be one of {options}, received {value!r}")
    return value


def shape_tuple(name, value, length):
    """Check a shape given as a tuple/list of ``length`` positive integers."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
        raise TypeError(f"{name} must be a tuple of {length} positive integers, "
                        f"received {value!r}")
    if len(value) != length:
        raise ValueError(f"{name} must have {length} entries, received {tuple(value)!r} "
                         f"with {len(value)}")
    return tuple(positive_int(f"{name}[{i}]", v) for i, v in enumerate(value))


def float_dtype(name, dtype):
    """Return ``np.dtype(dtype)`` after checking it is float32 or float64."""
    try:
        dt = np.dtype(dtype)
    except TypeError as err:
        raise TypeError(f"{name} must be float32 or float64, received {dtype!r}") from err
    if dt not in (np.float32, np.float64):
        raise TypeError(f"{name} must be float32 or float64, received {dt}")
    return dt


def input_array(name, x, sample_shape, *, check_finite=True):
    """Check a batch array ``x`` of shape ``(N, *sample_shape)``.

    ``sample_shape`` may contain ``None`` for "any size". The array must be a
    floating NumPy array (integers are rejected: scale images to [0, 1] first)
    and, if ``check_finite``, free of NaN and infinity.
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, received {type(x).__name__}")
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} must be a float32 or float64 array, received dtype {x.dtype}"
                        " (convert with x.astype(np.float32), scaling images to [0, 1])")
    expected = (None,) + tuple(sample_shape)
    shown = "(N, " + ", ".join("?" if s is None else str(s) for s in sample_shape) + ")"
    if x.ndim != len(expected):
        raise ValueError(f"{name} must have {len(expected)} dimensions {shown}, "
                         f"received shape {x.shape}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one sample, received shape {x.shape}")
    for got, want in zip(x.shape[1:], sample_shape):
        if want is not None and got != want:
            raise ValueError(f"{name} must have shape {shown}, received shape {x.shape}")
    if check_finite and not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinity; received shape {x.shape}")
    return x


def labels_array(name, y, n_samples, n_classes):
    """Check integer class labels of shape ``(N,)`` with values in ``[0, n_classes)``."""
    y = np.asarray(y)
    if y.dtype.kind not in "iu":
        raise TypeError(f"{name} must be integer class labels, received dtype {y.dtype}")
    if y.shape != (n_samples,):
        raise ValueError(f"{name} must have shape ({n_samples},), received shape {y.shape}")
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        bad = y[(y < 0) | (y >= n_classes)][0]
        raise ValueError(f"{name} must lie in [0, {n_classes - 1}], received a label {bad}")
    return y
