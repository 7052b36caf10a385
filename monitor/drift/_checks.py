"""Argument checks shared by the drift modules.

Why a module of its own: every public entry point of the engine refuses bad
input with a ``ValueError`` naming the argument at fault (the monitor turns
these into 422 answers), and the wording should be the same everywhere.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["FloatArray", "as_2d_with_missing", "as_finite_2d", "as_window_2d_with_missing", "check_alpha"]

FloatArray = NDArray[np.float32] | NDArray[np.float64]
"""A window as the detector's KS path takes it: float32 as the monitor's stream carries it, or float64."""


def check_alpha(alpha: float, name: str = "alpha") -> float:
    """Return ``alpha`` as a float after checking ``0 < alpha < 1``."""
    a = float(alpha)
    if not (0.0 < a < 1.0):
        raise ValueError(f"{name} must lie strictly between 0 and 1, got {alpha!r}")
    return a


def _as_2d(x: ArrayLike, name: str, n_features: int | None, keep_float32: bool = False) -> FloatArray:
    arr: FloatArray = (
        np.asarray(x)
        if keep_float32 and isinstance(x, np.ndarray) and x.dtype == np.float32
        else np.asarray(x, dtype=np.float64)
    )
    if arr.ndim == 1 and n_features == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (rows, features), got shape {arr.shape}")
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(
            f"{name} has {arr.shape[1]} feature columns, expected {n_features}"
        )
    return arr


def as_finite_2d(x: ArrayLike, name: str, n_features: int | None = None) -> NDArray[np.float64]:
    """Return ``x`` as a 2-D float64 array, refusing NaN/inf and a wrong width.

    A 1-D input is accepted only when ``n_features == 1`` is implied by the
    caller passing ``n_features=1``; it is then read as one column.
    """
    arr = np.asarray(_as_2d(x, name, n_features), dtype=np.float64)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def as_2d_with_missing(
    x: ArrayLike, name: str, n_features: int | None = None
) -> tuple[NDArray[np.float64], bool]:
    """As :func:`as_finite_2d`, but NaN is a missing value: returns the array and
    whether it holds any. Infinite values are still refused.

    One ``isfinite`` pass decides the common case (nothing missing); only a
    non-finite array pays the second pass that tells NaN from infinity.

    >>> as_2d_with_missing([[1.0, float("nan")]], "rows")[1]
    True
    """
    arr, missing = as_window_2d_with_missing(x, name, n_features)
    return np.asarray(arr, dtype=np.float64), missing


def as_window_2d_with_missing(
    x: ArrayLike, name: str, n_features: int | None = None
) -> tuple[FloatArray, bool]:
    """As :func:`as_2d_with_missing`, but a float32 array stays float32, uncopied.

    Why: the monitor's windows are float32 (the stream carries float32
    feature bytes); an upcast copy doubles the bytes every later pass reads
    (transpose, sort) for no change in any value (each float32 is a float64
    exactly), so the detector's KS path takes them as they come. Anything
    else is converted to float64 as before.

    >>> w, missing = as_window_2d_with_missing(np.zeros((2, 3), dtype=np.float32), "window", 3)
    >>> w.dtype, missing
    (dtype('float32'), False)
    >>> as_window_2d_with_missing([[1, 2]], "window")[0].dtype
    dtype('float64')
    """
    arr = _as_2d(x, name, n_features, keep_float32=True)
    if np.isfinite(arr).all():
        return arr, False
    if np.isinf(arr).any():
        raise ValueError(f"{name} contains infinite values")
    return arr, True
