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

__all__ = ["NO_MISSING", "DriftReport", "FeatureDrift", "MissingValues", "MultivariateDrift", "PredictionDrift"]

TestName = Literal["ks", "chi2"]
EffectKind = Literal["wasserstein_norm", "psi", "jensen_shannon"]
Status = Literal["ok", "drift", "insufficient_data", "error"]


class MissingValues(BaseModel):
    """One feature's missing values (NaN, a logged null) in the window and the reference,
    and the test of a change in its missing rate (:mod:`monitor.drift.missing`).

    ``test`` is ``None`` when no value is missing on either side (or none is
    present): then there is nothing to test and the test is not in the
    correction's family. ``effect_size`` is ``|window_share - reference_share|``.
    """

    model_config = ConfigDict(frozen=True)

    window: int
    window_share: float
    reference: int
    reference_share: float
    test: Literal["fisher_exact"] | None = None
    p_value: float | None = None
    p_value_adjusted: float | None = None
    effect_size: float | None = None
    effect_size_kind: Literal["share_difference"] = "share_difference"
    significant: bool = False
    drifted: bool = False


NO_MISSING = MissingValues(window=0, window_share=0.0, reference=0, reference_share=0.0)
"""What every feature of a window and reference without any NaN reports (one shared instance)."""


class FeatureDrift(BaseModel):
    """One feature's test against the reference.

    ``significant`` is the verdict of the distribution test (KS or
    chi-squared, on the present values) after the multiple-testing
    correction; ``drifted`` is true when that test is significant (and
    ``effect_size >= min_effect_size`` when that is configured) or when the
    missing rate changed (``missing.drifted``). ``insufficient_data``: the
    window had fewer than ``min_window_size`` present values of this feature
    (or the reference none), so its distribution was not tested (never read
    that as "no drift").
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
    effect_floor: float | None = None
    """The effect size the reference's own chunks of this window's size reach (mean + 3 sd,
    see ``DriftConfig.effect_floor``): a significant feature at or below it is not drift."""
    significant: bool = False
    drifted: bool = False
    insufficient_data: bool = False
    missing: MissingValues | None = None


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
    statistic_floor: float | None = None
    """The statistic the reference's own chunks reach (mean + 3 sd): at or below it, not drift."""
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
    (``alpha / n_tests`` for Bonferroni, ``alpha`` for none, and the
    largest Benjamini-Hochberg threshold that rejected, or ``None``).
    ``n_tests`` is the size of the correction's family: one distribution
    test per feature plus one missing-rate test per feature with missing
    values (see :mod:`monitor.drift.missing`).
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
    n_tests: int | None = None
    min_effect_size: float | None = None
    floor_chunks: int | None = None
    """How many reference chunks of the window's size set the effect floors (None: no floors,
    the reference holds too few of them or ``DriftConfig.effect_floor="none"``)."""
    reference_size: int
    window_size: int
    drifted_features: list[str] = []
    features: list[FeatureDrift] = []
    prediction_drift: PredictionDrift | None = None
    multivariate_drift: MultivariateDrift | None = None
