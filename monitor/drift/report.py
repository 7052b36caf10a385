"""Result models of one drift test, JSON-serialisable (pydantic v2).

Why pydantic: the monitor stores reports in Redis and serves them over HTTP;
``model_dump(mode="json")`` gives that form directly and the schema doubles
as API documentation.

Statistics are ``None`` (null) where they were not computed: every one of
them when the window was too small (``status="insufficient_data"``), and the
KS p-values of features that did not drift when the detector was configured
with ``p_values="drifted"`` (they are not needed for the decision, see
:mod:`monitor.drift.ks`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["DriftReport", "FeatureDrift", "MultivariateDrift", "PredictionDrift"]

TestName = Literal["ks", "chi2"]
EffectKind = Literal["wasserstein_norm", "psi", "jensen_shannon"]
Status = Literal["ok", "drift", "insufficient_data", "error"]


class FeatureDrift(BaseModel):
    """One feature's test against the reference.

    ``significant`` is the test's verdict after the multiple-testing
    correction; ``drifted`` additionally requires ``effect_size >=
    min_effect_size`` when that is configured.
    """

    model_config = ConfigDict(frozen=True)

    name: str
    test: TestName
    statistic: float | None = None
    p_value: float | None = None
    p_value_adjusted: float | None = None
    p_value_method: Literal["exact", "asymp", "kolmogorov", "chi2"] | None = None
    """How ``p_value`` was computed: scipy's exact or asymptotic KS distribution, Kolmogorov's
    limit with Stephens' correction (far from the decision level, see ``DriftConfig.p_values``),
    or chi-squared."""
    effect_size: float | None = None
    effect_size_kind: EffectKind
    significant: bool = False
    drifted: bool = False


class PredictionDrift(BaseModel):
    """Chi-squared test of the window's predicted-class counts against the reference's."""

    model_config = ConfigDict(frozen=True)

    test: Literal["chi2"] = "chi2"
    statistic: float | None = None
    p_value: float | None = None
    dof: int | None = None
    effect_size: float | None = None
    effect_size_kind: EffectKind = "jensen_shannon"
    drifted: bool = False
    window_class_counts: list[int] | None = None


class MultivariateDrift(BaseModel):
    """The cross-moment test of the numeric features taken together (:mod:`monitor.drift.correlation`).

    It sees a change in how features move together that leaves every
    feature's own distribution, and so every KS test, unchanged. A single
    test at ``alpha`` (not in the per-feature family). ``threshold`` is the
    statistic's critical value for this window size; ``effect_size`` the
    root-mean-square change of the pairwise cross-moments of standardised
    features (correlation units); ``n_features`` the numeric, non-constant
    features it used.
    """

    model_config = ConfigDict(frozen=True)

    test: Literal["cross_moment"] = "cross_moment"
    statistic: float
    p_value: float
    threshold: float
    effect_size: float
    effect_size_kind: Literal["rms_correlation_change"] = "rms_correlation_change"
    n_features: int
    drifted: bool = False


class DriftReport(BaseModel):
    """Outcome of :meth:`monitor.drift.DriftDetector.test` for one window.

    ``status`` is ``"drift"`` when the dataset drifted, the predictions
    did or the multivariate test did, ``"ok"`` when none did, and ``"insufficient_data"`` when the
    window was smaller than ``min_window_size`` (never read that as "no
    drift"). ``"error"`` is set by the monitor for a window it could not
    test (:class:`monitor.reports.WindowDriftReport` says why); a detector
    never returns it. ``dataset_drift`` is true when any feature drifted after the
    correction; ``drifted_share`` is ``n_drifted / n_features``.
    ``per_test_level`` is the raw p-value threshold each test was held to
    (``alpha / n_features`` for Bonferroni, ``alpha`` for none, and the
    largest Benjamini-Hochberg threshold that rejected, or ``None``).
    """

    model_config = ConfigDict(frozen=True)

    status: Status
    dataset_drift: bool
    drifted_share: float
    n_drifted: int
    n_features: int
    alpha: float
    correction: str
    per_test_level: float | None = None
    min_effect_size: float | None = None
    reference_size: int
    window_size: int
    drifted_features: list[str] = []
    features: list[FeatureDrift] = []
    prediction_drift: PredictionDrift | None = None
    multivariate_drift: MultivariateDrift | None = None
