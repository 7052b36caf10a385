"""Argument checks shared by the drift modules.

Why a module of its own: every public entry point of the engine refuses bad
input with a ``ValueError`` naming the argument at fault (the monitor turns
these into 422 answers), and the wording should be the same everywhere.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["as_2d_with_missing", "as_finite_2d", "check_alpha"]


def check_alpha(alpha: float, name: str = "alpha") -> float:
    """Return ``alpha`` as a float after checking ``0 < alpha < 1``."""
    a = float(alpha)
    if not (0.0 < a < 1.0):
        raise ValueError(f"{name} must lie strictly between 0 and 1, got {alpha!r}")
    return a


def _as_2d(x: ArrayLike, name: str, n_features: int | None) -> NDArray[np.float64]:
    arr = np.asarray(x, dtype=np.float64)
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
    arr = _as_2d(x, name, n_features)
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
    arr = _as_2d(x, name, n_features)
    if np.isfinite(arr).all():
        return arr, False
    if np.isinf(arr).any():
        raise ValueError(f"{name} contains infinite values")
    return arr, True
