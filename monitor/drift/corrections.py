"""Multiple-testing corrections across features.

Why: with 64 features tested at 5% each, a window without any drift raises
at least one false alarm with probability ``1 - 0.95**64 = 96%``. Bonferroni
(the default) bounds the family-wise error: the dataset is called drifted
only when some feature's p-value is below ``alpha / F``. Benjamini-Hochberg
bounds the expected share of false discoveries instead, which keeps more
power when many features shift together.

A feature is *significant* when its adjusted p-value is ``< alpha`` (strict,
as Alibi Detect and Evidently decide), which is the same as its raw p-value
being below the per-test level that the correction implies.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np
from numpy.typing import ArrayLike, NDArray

from monitor.drift._checks import check_alpha

__all__ = ["Correction", "adjust_pvalues", "bh_reject", "bonferroni_level", "reject"]

Correction = Literal["bonferroni", "fdr_bh", "none"]
CORRECTIONS: tuple[str, ...] = get_args(Correction)


def _check(correction: str) -> None:
    if correction not in CORRECTIONS:
        raise ValueError(f"correction must be one of {CORRECTIONS}, got {correction!r}")


def _as_p(p_values: ArrayLike) -> NDArray[np.float64]:
    p = np.asarray(p_values, dtype=np.float64).ravel()
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError("p-values must lie in [0, 1] and not be NaN")
    return p


def bonferroni_level(alpha: float, n_tests: int) -> float:
    """Per-test level ``alpha / n_tests`` of the Bonferroni correction."""
    check_alpha(alpha)
    if n_tests < 1:
        raise ValueError(f"n_tests must be >= 1, got {n_tests}")
    return alpha / n_tests


def adjust_pvalues(p_values: ArrayLike, correction: Correction) -> NDArray[np.float64]:
    """Adjusted p-values, comparable to ``alpha`` directly.

    ``bonferroni``: ``min(1, p * F)``. ``fdr_bh``: the Benjamini-Hochberg
    step-up values ``min_{j >= i} p_(j) F / j`` (as statsmodels'
    ``multipletests(method='fdr_bh')``). ``none``: unchanged.

    Examples
    --------
    >>> adjust_pvalues([0.01, 0.04, 0.03, 0.5], "fdr_bh").round(4).tolist()
    [0.04, 0.0533, 0.0533, 0.5]
    >>> adjust_pvalues([0.01, 0.3], "bonferroni").tolist()
    [0.02, 0.6]
    """
    _check(correction)
    p = _as_p(p_values)
    n = p.size
    if n == 0 or correction == "none":
        return p.copy()
    if correction == "bonferroni":
        return np.minimum(p * n, 1.0)
    order = np.argsort(p, kind="stable")
    ranked = p[order] * n / np.arange(1, n + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(n, dtype=np.float64)
    out[order] = np.minimum(ranked, 1.0)
    return out


def bh_reject(p_values: ArrayLike, alpha: float) -> NDArray[np.bool_]:
    """Benjamini-Hochberg step-up rejections at FDR level ``alpha``.

    Rejects the ``k`` smallest p-values, ``k`` the largest rank with
    ``p_(k) < k * alpha / F``.

    Examples
    --------
    >>> bh_reject([0.01, 0.04, 0.03, 0.5], 0.05).tolist()
    [True, False, False, False]
    """
    check_alpha(alpha)
    # Decided on the adjusted values the report shows, so a report never lists an
    # adjusted p-value below alpha on a feature it did not reject: comparing
    # p_(k) with k * alpha / F instead disagreed with them by rounding at the
    # boundary. The adjusted values are the step-up minima, so this is the same
    # rule up to that rounding.
    return adjust_pvalues(p_values, "fdr_bh") < alpha


def reject(p_values: ArrayLike, alpha: float, correction: Correction) -> NDArray[np.bool_]:
    """Which tests are significant after ``correction`` at level ``alpha``.

    Examples
    --------
    >>> reject([0.001, 0.02, 0.9], 0.05, "bonferroni").tolist()
    [True, False, False]
    >>> reject([0.001, 0.02, 0.9], 0.05, "none").tolist()
    [True, True, False]
    """
    _check(correction)
    check_alpha(alpha)
    p = _as_p(p_values)
    if correction == "fdr_bh":
        return bh_reject(p, alpha)
    if correction == "bonferroni":
        return p < bonferroni_level(alpha, max(p.size, 1))
    return p < alpha
