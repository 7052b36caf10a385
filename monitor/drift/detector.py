"""The drift detector: a reference prepared once, windows tested cheaply.

Why this shape: the monitor tests a new window every few seconds against a
reference that never changes, so everything reference-side (sorted columns,
prefix sums for Wasserstein, category counts, class counts) is computed in
``__init__`` and :meth:`DriftDetector.test` pays only for the window.

Decision rule. Every feature is one test (KS for numeric, chi-squared for
categorical); the family is corrected with Bonferroni (default),
Benjamini-Hochberg or not at all. A feature drifts when its test is
significant after the correction (adjusted p-value ``< alpha``) and, if
``min_effect_size`` is set, its effect size reaches it. The dataset drifts
when any feature does. Prediction drift (a chi-squared test of the
predicted-class counts) is a separate single test at ``alpha``: it is not in
the feature family, and it sets ``status="drift"`` but not ``dataset_drift``.

For Bonferroni and "none" the KS decision compares the lattice statistic with
a critical value cached per window size (:func:`monitor.drift.ks.ks_critical_h`),
exactly equivalent to comparing scipy's p-value with the per-test level, so
p-values are computed only for the features they are reported for.

Multivariate. Beside the per-feature family, one cross-moment test of the
numeric features together (:mod:`monitor.drift.correlation`) sees a change in
how features move together that no per-feature test can. Like prediction
drift it is a single test at ``alpha``, reported in ``multivariate_drift``:
it sets ``status="drift"`` but not ``dataset_drift``. Categorical features
are left out of it (their codes have no meaningful product; one-hot columns
would multiply its cost for interactions the chi-squared margins already
bound), and so are constant numeric columns.

Missing values (NaN) in the window or the reference take another path, see
:mod:`monitor.drift.missing`: every test on present values only, each
feature with its own sizes, a missing-rate test per feature with missing
values in the family, every p-value computed (sizes differ per feature, so
no critical value is shared). Windows and references without NaN never
enter it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict, Field, field_validator

from monitor.drift import _kernels
from monitor.drift._checks import FloatArray, as_2d_with_missing, as_window_2d_with_missing
from monitor.drift.chi2 import MIN_EXPECTED, CategoricalReference, chi2_homogeneity
from monitor.drift.corrections import Correction, adjust_pvalues, bh_reject
from monitor.drift.correlation import CALIBRATION_ROWS, MIN_ALPHA, CorrelationReference, draws_for
from monitor.drift.effect_size import jensen_shannon, wasserstein_sorted, wasserstein_std_scale
from monitor.drift.ks import (
    KSMethod,
    SortedReference,
    ks_critical_h,
    ks_kolmogorov_p,
    ks_lattice,
    ks_pvalues,
    ks_pvalues_sized,
)
from monitor.drift.missing import MissingRateTests, missing_rate_tests
from monitor.drift.reference_chunks import MIN_CHUNKS, ChunkFloors, chunk_floors, grid_size, rescaled
from monitor.drift.report import (
    NO_MISSING,
    DriftReport,
    FeatureDrift,
    MissingValues,
    MultivariateDrift,
    PredictionDrift,
)
from monitor.drift.sliding import SlidingKS

__all__ = ["DriftConfig", "DriftDetector"]


FLOOR_SIZES_KEPT = 16
"""Chunk sizes whose floors a detector keeps, those used last (sizes vary between windows)."""

NEAR_LEVEL = 10.0
"""``p_values="near-level"``: the p-value of a feature that is not drift but lies within this
factor above the per-test level (a near miss) is computed as scipy does; elsewhere Kolmogorov's
limit is reported, since the exact critical value has decided already."""

class DriftConfig(BaseModel):
    """Settings of a :class:`DriftDetector`.

    Invalid values raise ``pydantic.ValidationError``, a ``ValueError``.

    Attributes
    ----------
    alpha : float
        Family-wise (Bonferroni) or false-discovery (BH) level, in [``MIN_ALPHA``, 1): the
        multivariate test simulates ``max(1000, 1 / alpha)`` null windows per reference.
    correction : {"bonferroni", "fdr_bh", "none"}
    min_window_size : int
        Windows with fewer rows are "insufficient_data", not "no drift".
    min_effect_size : float or None
        A significant feature whose effect size is below this is not drift.
    ks_method : {"auto", "exact", "asymp"}
        KS p-value method, as scipy's ``ks_2samp``.
    p_values : {"near-level", "all", "drifted"}
        How KS p-values are reported. The decision never depends on this
        under Bonferroni or none: it compares the statistic with the exact
        critical value, computed once per window size. ``near-level``
        (default) reports every p-value: as scipy's ``ks_2samp`` computes it
        (``ks_method``) for a near miss (not significant, within a factor
        ``NEAR_LEVEL`` above the per-test level) and wherever the limit
        would contradict the exact decision, and elsewhere from
        Kolmogorov's limit with Stephens' correction (``method
        "kolmogorov"``, a few percent off, never on the wrong side of the
        level); ``all`` computes every one as scipy does (one exact
        p-value costs ~15 ms at 10k x 1k, cached per statistic); ``drifted``
        reports only those of drifted features. Under BH the p-values decide,
        so every one is computed as scipy does whatever this says.
    effect_floor : {"reference-chunks", "none"}
        ``reference-chunks`` (default): a significant feature (or multivariate
        statistic) is drift only when its effect size exceeds what the
        reference's own consecutive chunks of the window's size show
        (:mod:`monitor.drift.reference_chunks`): variation the reference
        already has (weekly seasonality in a time-ordered reference) is not
        drift. Needs ``MIN_CHUNKS`` chunks; smaller references get no floor.
    floor_sizes : {"exact", "grid"}
        ``exact`` (default): floors from chunks of the window's own size,
        computed once per size (count windows: one size). ``grid``: from the
        nearest size of a geometric grid, rescaled to the window's size
        (:func:`monitor.drift.reference_chunks.rescaled`): time windows hold a
        different number of rows each, and would otherwise pay for the floors
        (a walk of the reference, a product per chunk) on every window.
    window_size : int or None
        The size windows will have, if known (the monitor's count windows):
        :meth:`DriftDetector.prepare` computes its floors, critical value and
        multivariate threshold, so the first window does not wait for them.
    multivariate : bool
        Also run the cross-moment test of the numeric features together
        (needs two non-constant numeric features and two reference rows).
    threads : int or None
        Threads of the compiled KS kernel (None: every core numba sees).
        Reports do not depend on it: each feature is one thread's work.

    Examples
    --------
    >>> DriftConfig(alpha=0.01, correction="fdr_bh").correction
    'fdr_bh'
    >>> try:
    ...     DriftConfig(correction="holm")
    ... except ValueError:
    ...     print("refused")
    refused
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    alpha: float = Field(default=0.05, ge=MIN_ALPHA, lt=1.0)
    correction: Correction = "bonferroni"
    min_window_size: int = Field(default=30, ge=1)
    min_effect_size: float | None = Field(default=None, ge=0.0)
    ks_method: KSMethod = "auto"
    p_values: Literal["near-level", "all", "drifted"] = "near-level"
    effect_floor: Literal["reference-chunks", "none"] = "reference-chunks"
    floor_sizes: Literal["exact", "grid"] = "exact"
    window_size: int | None = Field(default=None, ge=1)
    multivariate: bool = True
    threads: int | None = Field(default=None, ge=1)

    @field_validator("alpha")
    @classmethod
    def _finite_alpha(cls, v: float) -> float:
        if not np.isfinite(v):
            raise ValueError("alpha must be finite")
        return v


@dataclass(slots=True)
class _FeatureTests:
    """Per-feature results while a window is decided: statistic, p-value (NaN: not computed),
    how the p-value was computed, effect size (NaN: not computed)."""

    stat: NDArray[np.float64]
    pval: NDArray[np.float64]
    method: list[str | None]
    effect: NDArray[np.float64]


class DriftDetector:
    """Test windows of features (and predicted classes) against a reference.

    Parameters
    ----------
    reference : ndarray, shape (n_ref, F)
        Reference features, finite floats, at least one row.
    feature_names : list of str, length F
        Distinct names, used in the report.
    config : DriftConfig, optional
    categorical : array of bool, shape (F,), optional
        Features to test with chi-squared instead of KS.
    reference_classes : array of int, shape (n_ref_pred,), optional
        Predicted classes on the reference, for prediction drift.
    n_classes : int, optional
        Number of classes; required with ``reference_classes``.

    Examples
    --------
    >>> rng = np.random.default_rng(7)
    >>> ref = rng.normal(size=(2000, 3))
    >>> det = DriftDetector(ref, ["a", "b", "c"])
    >>> win = rng.normal(size=(500, 3))
    >>> win[:, 2] += 0.5
    >>> report = det.test(win)
    >>> report.status, report.drifted_features
    ('drift', ['c'])
    >>> det.test(win[:10]).status
    'insufficient_data'
    """

    def __init__(
        self,
        reference: ArrayLike,
        feature_names: list[str],
        config: DriftConfig | None = None,
        categorical: ArrayLike | None = None,
        reference_classes: ArrayLike | None = None,
        n_classes: int | None = None,
    ) -> None:
        self.config = config if config is not None else DriftConfig()
        ref, ref_missing = as_2d_with_missing(reference, "reference")
        n_ref, n_feat = ref.shape
        if n_ref == 0:
            raise ValueError("reference must have at least one row")
        if n_feat == 0:
            raise ValueError("reference must have at least one feature column")
        names = list(feature_names)
        if len(names) != n_feat:
            raise ValueError(f"feature_names has {len(names)} names for {n_feat} columns")
        if len(set(names)) != len(names):
            raise ValueError("feature_names must be distinct")
        if categorical is None:
            cat = np.zeros(n_feat, dtype=bool)
        else:
            cat = np.asarray(categorical)
            if cat.dtype != np.bool_ or cat.shape != (n_feat,):
                raise ValueError(f"categorical must be a bool mask of shape ({n_feat},)")
        self.feature_names = names
        self.n_features = n_feat
        self.reference_size = n_ref
        self.categorical = cat.copy()
        self._num_idx: NDArray[np.intp] = np.flatnonzero(~cat)
        self._cat_idx: NDArray[np.intp] = np.flatnonzero(cat)
        self._num_ref: SortedReference | None = (
            SortedReference(ref[:, self._num_idx], with_wasserstein=True, threads=self.config.threads,
                            with_order=self.config.effect_floor == "reference-chunks" and not ref_missing)
            if self._num_idx.size
            else None
        )
        self._w1_scale = (
            wasserstein_std_scale(self._num_ref.std) if self._num_ref is not None else None
        )
        # Missing values per feature in the reference (NaN: a logged null).
        self._ref_has_missing = ref_missing
        self._ref_missing: NDArray[np.int64] = (
            np.isnan(ref).sum(axis=0).astype(np.int64) if ref_missing else np.zeros(n_feat, dtype=np.int64)
        )
        self._cat_ref: list[CategoricalReference | None] = []
        for f in self._cat_idx:
            present = ref[:, f] if not ref_missing else ref[~np.isnan(ref[:, f]), f]
            self._cat_ref.append(CategoricalReference(present) if present.size else None)
        self._correlation: CorrelationReference | None = None
        complete = ref[:, self._num_idx]
        if ref_missing:
            complete = complete[~np.isnan(complete).any(axis=1)]
        if self.config.multivariate and self._num_idx.size >= 2 and complete.shape[0] >= 2:
            alpha = self.config.alpha
            correlation = CorrelationReference(complete, alpha=alpha, n_draws=draws_for(alpha),
                                               threads=self.config.threads)
            self._correlation = correlation if correlation.applicable else None

        # The reference in its own row order, for the floors of each window size (a reference
        # with missing values gets none: its chunks' effects would mix in the missing rates).
        self._ordered: NDArray[np.float64] | None = (
            ref if self.config.effect_floor == "reference-chunks" and not ref_missing else None
        )
        self._floors: dict[int, ChunkFloors | None] = {}
        # Chunk sizes whose floors were computed (each a walk of the reference, a product per chunk).
        self.floor_computations = 0

        self.n_classes: int | None = None
        self._class_counts: NDArray[np.int64] | None = None
        if reference_classes is not None:
            if n_classes is None or int(n_classes) < 1:
                raise ValueError("n_classes (>= 1) is required with reference_classes")
            self.n_classes = int(n_classes)
            self._class_counts = self._count_classes(reference_classes, "reference_classes")
            if self._class_counts.sum() == 0:
                raise ValueError("reference_classes must not be empty")

    def prepare(self) -> None:
        """Compute now the reference-side state the first window would otherwise pay for.

        The multivariate test simulates its null from the reference (one set
        of draws serves every window of ``CALIBRATION_ROWS`` rows or more);
        the monitor calls this once per model version, when it builds the
        detector, so no window report waits for it. The compiled kernels are
        loaded here too (see :func:`monitor.drift._kernels.load`), and with
        ``config.window_size`` that size's effect floors, KS critical value and
        multivariate threshold (count windows: every window has that size).
        """
        _kernels.load()
        if self._correlation is not None:
            self._correlation.prepare()
        size = self.config.window_size
        if size is not None and size >= self.config.min_window_size:
            self._prepare_size(size)

    def _prepare_size(self, m: int) -> None:
        """What the first window of ``m`` rows would compute, computed now: its floors, the KS
        critical value (when the decision reads it, see :meth:`_significance`) and the
        multivariate test's threshold."""
        cfg = self.config
        self.floors(m)
        if (self._num_ref is not None and not self._ref_has_missing and cfg.correction != "fdr_bh"
                and cfg.p_values != "all"):
            level = cfg.alpha / self.n_features if cfg.correction == "bonferroni" else cfg.alpha
            ks_critical_h(self.reference_size, m, level, cfg.ks_method)
        if self._correlation is not None:
            self._correlation.threshold(m)

    def floors(self, m: int) -> ChunkFloors | None:
        """Effect-size floors for windows of ``m`` rows (None: no floor).

        ``floor_sizes="exact"``: from chunks of ``m`` rows, computed once per
        size. ``"grid"``: from chunks of :func:`~monitor.drift.reference_chunks.grid_size`
        rows, rescaled to ``m``; a window has floors exactly when it would at its
        own size (``MIN_CHUNKS`` chunks of ``m`` rows).
        """
        if self._ordered is None:
            return None
        if self.config.floor_sizes == "exact":
            return self._floors_at(self._ordered, m)
        n = self.reference_size
        if m < 1 or n // m < MIN_CHUNKS:
            return None
        base = self._floors_at(self._ordered, grid_size(m, n // MIN_CHUNKS))
        return None if base is None else rescaled(base, n, m)

    def _floors_at(self, ordered: NDArray[np.float64], size: int) -> ChunkFloors | None:
        """Floors of chunks of ``size`` rows, cached: the ``FLOOR_SIZES_KEPT`` sizes used last."""
        if size in self._floors:
            self._floors[size] = self._floors.pop(size)  # used last: kept longest
        else:
            if len(self._floors) >= FLOOR_SIZES_KEPT:
                self._floors.pop(next(iter(self._floors)))
            self._floors[size] = self._chunk_floors(ordered, size)
            self.floor_computations += 1
        return self._floors[size]

    def _chunk_floors(self, ordered: NDArray[np.float64], size: int) -> ChunkFloors | None:
        """:func:`chunk_floors` of chunks of ``size`` rows, every chunk's W1 and cross-moment
        statistic computed at once (one compiled walk, one batch of products) before the band."""
        n_chunks = self.reference_size // size
        if n_chunks < MIN_CHUNKS:  # no floors: nothing to compute (chunk_floors would say None)
            return None
        w1_all = self._num_ref.chunk_w1(size) if self._num_ref is not None else None
        mv_all = self._correlation.chunk_statistics(size, n_chunks) if self._correlation is not None else None

        def effects(index: int, chunk: NDArray[np.float64], r: float) -> NDArray[np.float64]:
            return self._chunk_effects(chunk, r, None if w1_all is None else w1_all[index])

        def multivariate(index: int, chunk: NDArray[np.float64], r: float) -> float:
            # The chunk's rows are the correlation reference's own (floors exist only
            # without missing values, so no row was dropped); against the rest: / (1 - r)**2.
            assert mv_all is not None
            return float(mv_all[index]) / (1.0 - r) ** 2

        return chunk_floors(ordered, size, effects, multivariate if mv_all is not None else None)

    def _chunk_effects(
        self, chunk: NDArray[np.float64], r: float, w1: NDArray[np.float64] | None = None
    ) -> NDArray[np.float64]:
        """Effect sizes of a reference chunk against the rest of the reference (see reference_chunks);
        ``w1``: the numeric features' raw W1 of the chunk against the reference, if known already."""
        effects = np.full(self.n_features, np.nan)
        if self._num_ref is not None:
            assert self._w1_scale is not None
            if w1 is None:
                w1 = self._num_ref.test_window(chunk[:, self._num_idx], wasserstein=True, checked=True)[1]
            assert w1 is not None
            effects[self._num_idx] = w1 / self._w1_scale / (1.0 - r)
        for f, cref in zip(self._cat_idx, self._cat_ref, strict=True):
            if cref is not None:  # always, without missing values in the reference
                counts = cref.window_counts(chunk[:, f])
                effects[f] = jensen_shannon(cref.counts - counts, counts)
        return effects

    def _count_classes(self, classes: ArrayLike, name: str) -> NDArray[np.int64]:
        assert self.n_classes is not None
        c = np.asarray(classes)
        if c.ndim != 1:
            raise ValueError(f"{name} must be 1-D, got shape {c.shape}")
        if (
            c.size
            and not np.issubdtype(c.dtype, np.integer)
            and (not np.all(np.isfinite(c)) or not np.all(c == np.round(c)))
        ):
            raise ValueError(f"{name} must hold integer class indices")
        ci = c.astype(np.int64)
        if ci.size and (ci.min() < 0 or ci.max() >= self.n_classes):
            raise ValueError(f"{name} has class indices outside [0, {self.n_classes})")
        return np.bincount(ci, minlength=self.n_classes).astype(np.int64)

    def _insufficient(self, m: int) -> DriftReport:
        cfg = self.config
        return DriftReport(
            status="insufficient_data",
            dataset_drift=False,
            drifted_share=0.0,
            n_drifted=0,
            n_features=self.n_features,
            alpha=cfg.alpha,
            correction=cfg.correction,
            min_effect_size=cfg.min_effect_size,
            reference_size=self.reference_size,
            window_size=m,
        )

    def _prepare(
        self, window: ArrayLike, window_classes: ArrayLike | None, keep_float32: bool = False
    ) -> tuple[FloatArray, int, NDArray[np.int64] | None, bool]:
        """The window as floats, its size, its class counts, and whether it or the
        reference has missing values (then :meth:`_test_missing` decides).

        ``keep_float32``: a float32 window stays float32 (see :meth:`test`); otherwise float64."""
        win, missing = (
            as_window_2d_with_missing(window, "window", self.n_features)
            if keep_float32
            else as_2d_with_missing(window, "window", self.n_features)
        )
        m = int(win.shape[0])
        classes_counts: NDArray[np.int64] | None = None
        if window_classes is not None and self._class_counts is not None:
            classes_counts = self._count_classes(window_classes, "window_classes")
            if int(classes_counts.sum()) != m:
                raise ValueError(
                    f"window_classes has {int(classes_counts.sum())} entries for {m} window rows"
                )
        return win, m, classes_counts, missing or self._ref_has_missing

    def test(self, window: ArrayLike, window_classes: ArrayLike | None = None) -> DriftReport:
        """Test one window; see the module docstring for the decision rule.

        Parameters
        ----------
        window : ndarray, shape (m, F)
            Features of the window: finite, or NaN for a missing value. A
            float32 array (the monitor's windows) is tested as it is, without
            an upcast copy: the report is the one of the same values as float64.
        window_classes : array of int, shape (m,), optional
            Predicted classes of the same rows (ignored when the detector has
            no reference classes).
        """
        win, m, classes_counts, missing = self._prepare(window, window_classes, keep_float32=True)
        if m < self.config.min_window_size or m == 0:
            return self._insufficient(m)
        if missing:
            return self._test_missing(np.asarray(win, dtype=np.float64), m, classes_counts)
        h = np.zeros(0, dtype=np.int64)
        w1: NDArray[np.float64] | None = None
        statistic: list[tuple[float, float]] = []
        if self._num_ref is not None:
            num = win if self._cat_idx.size == 0 else win[:, self._num_idx]
            # The cross-moment product runs beside the KS blocks, on the same threads (the
            # largest piece first: the caller takes it, helpers take the blocks).
            # The window's columns are standardised for it as the KS blocks transpose them.
            corr = self._correlation
            if corr is None:
                h, w1 = self._num_ref.test_window(num, checked=True)
            else:
                zt, fill = corr.window_rows(m)
                h, w1 = self._num_ref.test_window(
                    num, checked=True, transposed=fill,
                    alongside=[lambda: statistic.append(corr.standardised_statistic(zt))])
        return self._with_multivariate(self._decide(win, m, h, w1, classes_counts), win,
                                       statistic=statistic[0] if statistic else None)

    def numeric_columns(self, rows: ArrayLike) -> NDArray[np.float64]:
        """The numeric (KS) columns of (k, F) rows, as :class:`SlidingKS` steps take them."""
        arr, _ = as_2d_with_missing(rows, "rows", self.n_features)
        return arr if self._cat_idx.size == 0 else arr[:, self._num_idx]

    def sliding(self, window: ArrayLike) -> SlidingKS | None:
        """An incremental KS state of the numeric features for :meth:`test_sliding`.

        Step it with ``state.step(detector.numeric_columns(new_rows))``.
        ``None`` when the detector has no numeric feature, or its reference
        has missing values (windows are then tested whole, see :meth:`test_sliding`).
        """
        if self._num_ref is None or self._ref_has_missing:
            return None
        return SlidingKS(self._num_ref, self.numeric_columns(window))

    def test_sliding(
        self,
        sliding: SlidingKS | None,
        window: ArrayLike,
        window_classes: ArrayLike | None = None,
    ) -> DriftReport:
        """Test a sliding window whose KS state is kept incrementally.

        ``sliding`` (from :meth:`sliding`, then stepped) gives the exact KS
        statistics without sorting the window; ``window`` holds the same rows
        and serves the categorical tests. The Wasserstein effect size needs
        the sorted window values, so here it is computed only for the
        significant features (the only ones whose decision it can change);
        the other features report ``effect_size=None``. Statistics, p-values
        and decisions equal :meth:`test` on the same rows. A window (or
        reference) with missing values is tested whole, as :meth:`test`
        does: ``sliding`` is then not read.
        """
        win, m, classes_counts, missing = self._prepare(window, window_classes)
        if m < self.config.min_window_size or m == 0:
            return self._insufficient(m)
        if missing:
            return self._test_missing(np.asarray(win, dtype=np.float64), m, classes_counts)
        h = np.zeros(0, dtype=np.int64)
        if self._num_ref is not None:
            if sliding is None or sliding.m != m or sliding.reference is not self._num_ref:
                raise ValueError("sliding must come from this detector's sliding() with the window's size")
            h = sliding.statistic_h()
        return self._with_multivariate(self._decide(win, m, h, None, classes_counts), win)

    def _with_multivariate(
        self,
        report: DriftReport,
        win: FloatArray,
        floor_size: int | None = None,
        statistic: tuple[float, float] | None = None,
    ) -> DriftReport:
        """The report with the cross-moment test of the numeric features added (if it applies).

        ``floor_size``: the window size whose floors apply (the complete rows of a
        window with missing values are fewer; their own size's floors would be
        computed anew for each window). ``statistic``: the window's cross-moment
        statistic, if computed already (beside the KS tests, see :meth:`test`)."""
        if self._correlation is None:
            return report
        result = self._correlation.test(win if self._cat_idx.size == 0 else win[:, self._num_idx], checked=True,
                                        statistic=statistic)
        floors = self.floors(floor_size or int(win.shape[0]))
        floor = floors.multivariate if floors is not None else None
        drifted = result.drifted and (floor is None or result.statistic > floor)
        multivariate = MultivariateDrift(
            statistic=result.statistic,
            p_value=result.p_value,
            threshold=result.threshold,
            statistic_floor=floor,
            effect_size=result.effect_size,
            n_features=result.n_features,
            drifted=drifted,
        )
        status = "drift" if drifted else report.status
        return report.model_copy(update={"multivariate_drift": multivariate, "status": status})

    def _test_missing(
        self, win: NDArray[np.float64], m: int, classes_counts: NDArray[np.int64] | None
    ) -> DriftReport:
        """A window when it or the reference has NaN: see :mod:`monitor.drift.missing`."""
        cfg = self.config
        n_feat = self.n_features
        nan = np.isnan(win)
        win_missing = nan.sum(axis=0).astype(np.int64)
        insufficient = (m - win_missing < cfg.min_window_size) | (self._ref_missing == self.reference_size)
        rates = missing_rate_tests(self._ref_missing, self.reference_size, win_missing, m)
        n_tests = n_feat + int(rates.applies.sum())
        tests = _FeatureTests(
            stat=np.full(n_feat, np.nan), pval=np.full(n_feat, np.nan),
            method=[None] * n_feat, effect=np.full(n_feat, np.nan),
        )
        if self._num_ref is not None:
            level = cfg.alpha / n_tests if cfg.correction == "bonferroni" else cfg.alpha
            self._ks_missing(tests, win[:, self._num_idx], insufficient[self._num_idx], level)
        for f, cref in zip(self._cat_idx, self._cat_ref, strict=True):
            if cref is None or insufficient[f]:
                continue
            wc = cref.window_counts(win[~nan[:, f], f])
            tests.stat[f], tests.pval[f], _ = chi2_homogeneity(cref.counts, wc, MIN_EXPECTED)
            tests.method[f] = "chi2"
            tests.effect[f] = jensen_shannon(cref.counts, wc)

        # One family: every feature's distribution test (p = 1 where not run), then the
        # missing-rate tests that apply.
        family = np.concatenate([np.where(insufficient, 1.0, tests.pval), rates.p_value[rates.applies]])
        per_test_level: float | None
        if cfg.correction == "fdr_bh":
            adjusted = adjust_pvalues(family, "fdr_bh")
            rejected = np.sort(family[adjusted < cfg.alpha])
            per_test_level = cfg.alpha * rejected.size / n_tests if rejected.size else None
        else:
            factor = n_tests if cfg.correction == "bonferroni" else 1
            adjusted = np.minimum(family * factor, 1.0)
            per_test_level = cfg.alpha / factor
        significant = (adjusted < cfg.alpha)[:n_feat] & ~insufficient
        miss_adj = np.full(n_feat, np.nan)
        miss_adj[rates.applies] = adjusted[n_feat:]
        miss_significant = miss_adj < cfg.alpha
        padj = np.where(insufficient, np.nan, adjusted[:n_feat])

        drifted = significant.copy()
        miss_drifted = miss_significant.copy()
        if cfg.min_effect_size is not None:
            drifted &= np.nan_to_num(tests.effect, nan=-np.inf) >= cfg.min_effect_size
            miss_drifted &= np.nan_to_num(rates.effect, nan=-np.inf) >= cfg.min_effect_size
        # The window size's floors (a reference with missing values has none); a feature with
        # fewer present values would have a higher floor, so this one errs toward drift.
        floors = self.floors(m)
        if floors is not None:
            drifted &= ~(tests.effect <= floors.features)
        if cfg.p_values == "drifted" and cfg.correction != "fdr_bh":
            hidden = ~drifted & ~self.categorical  # as the fast path: KS p-values of drifted features only
            tests.pval[hidden], padj[hidden] = np.nan, np.nan
            for f in np.flatnonzero(hidden).tolist():
                tests.method[f] = None
        features = self._feature_reports(tests, padj, significant, drifted | miss_drifted, floors)
        features = [
            feature.model_copy(update={
                "insufficient_data": bool(insufficient[f]),
                "statistic": None if np.isnan(tests.stat[f]) else feature.statistic,
                "missing": self._missing_values(f, m, int(win_missing[f]), rates, miss_adj, miss_significant,
                                                miss_drifted),
            })
            for f, feature in enumerate(features)
        ]
        report = self._report(m, drifted | miss_drifted, features, self._prediction_drift(classes_counts),
                              per_test_level, n_tests, floors)
        complete = win[~nan[:, self._num_idx].any(axis=1)]
        rows = complete.shape[0]
        # Complete rows only; fewer than the whole window means a size of its own each time,
        # whose null simulation would cost ~0.1 s below CALIBRATION_ROWS (draws are shared above).
        if rows < max(2, cfg.min_window_size) or (rows < m and rows < CALIBRATION_ROWS):
            return report
        return self._with_multivariate(report, complete, floor_size=m)

    def _ks_missing(
        self, tests: _FeatureTests, num: NDArray[np.float64], insufficient: NDArray[np.bool_], level: float
    ) -> None:
        """KS statistics, p-values and W1 of the numeric features on their present values, in place.

        Each feature has its own sizes, so no critical value is shared: the
        p-values decide. With ``p_values="all"`` or BH every one is computed as
        scipy does; otherwise, as ``near-level`` does in the fast path,
        Kolmogorov's limit is kept where it lies beyond ``NEAR_LEVEL`` of
        ``level`` (a few percent off there, it cannot flip a decision) and
        scipy's value is computed for the rest.
        """
        assert self._num_ref is not None and self._w1_scale is not None
        cfg = self.config
        res = self._num_ref.test_missing(num)
        h = np.where(insufficient, -1, res.h)
        ok = h >= 0
        lcm = np.array([ks_lattice(int(a), int(b))[0] if t else 1
                        for a, b, t in zip(res.n, res.m, ok, strict=True)], dtype=np.float64)
        if cfg.p_values == "all" or cfg.correction == "fdr_bh":
            exact = ok
            p = np.full(h.size, np.nan)
            how: list[str | None] = [None] * h.size
        else:
            p = np.array([float(ks_kolmogorov_p(int(a), int(b), [v])[0]) if t else np.nan
                          for a, b, v, t in zip(res.n, res.m, h, ok, strict=True)])
            how = ["kolmogorov" if t else None for t in ok.tolist()]
            exact = ok & (p >= level / NEAR_LEVEL) & (p <= level * NEAR_LEVEL)
        if exact.any():
            p_exact, how_exact = ks_pvalues_sized(res.n[exact], res.m[exact], h[exact], cfg.ks_method)
            p[exact] = p_exact
            for i, method_used in zip(np.flatnonzero(exact).tolist(), how_exact, strict=True):
                how[i] = method_used
        idx = self._num_idx
        tests.stat[idx] = np.where(ok, h / lcm, np.nan)
        tests.pval[idx] = p
        for j, f in enumerate(idx.tolist()):
            tests.method[f] = how[j]
        assert res.w1 is not None
        tests.effect[idx] = np.where(ok, res.w1 / self._w1_scale, np.nan)

    def _missing_values(
        self,
        f: int,
        m: int,
        window_missing: int,
        rates: MissingRateTests,
        adjusted: NDArray[np.float64],
        significant: NDArray[np.bool_],
        drifted: NDArray[np.bool_],
    ) -> MissingValues:
        """Feature ``f``'s missing counts and shares, and its missing-rate test if it applies."""
        ref_missing = int(self._ref_missing[f])
        counts = {
            "window": window_missing,
            "window_share": window_missing / m,
            "reference": ref_missing,
            "reference_share": ref_missing / self.reference_size,
        }
        if not rates.applies[f]:
            return MissingValues(**counts)
        return MissingValues(
            **counts,
            test="fisher_exact",
            p_value=float(rates.p_value[f]),
            p_value_adjusted=float(adjusted[f]),
            effect_size=float(rates.effect[f]),
            significant=bool(significant[f]),
            drifted=bool(drifted[f]),
        )

    def _decide(
        self,
        win: FloatArray,
        m: int,
        h: NDArray[np.int64],
        w1: NDArray[np.float64] | None,
        classes_counts: NDArray[np.int64] | None,
    ) -> DriftReport:
        """The decision from the KS lattice statistics (and W1, or ``None`` for "significant only")."""
        cfg = self.config
        n_feat = self.n_features
        tests = self._feature_statistics(win, m, h, w1)
        significant, per_test_level = self._significance(tests, m, h)
        if w1 is None:
            self._significant_effect_sizes(tests, win, significant)

        known = ~np.isnan(tests.pval)
        padj = np.full(n_feat, np.nan)
        if cfg.correction == "bonferroni":
            padj[known] = np.minimum(tests.pval[known] * n_feat, 1.0)
        elif cfg.correction == "fdr_bh":
            padj = adjust_pvalues(tests.pval, "fdr_bh")
        else:
            padj = tests.pval.copy()

        drifted = significant.copy()
        if cfg.min_effect_size is not None:
            drifted &= np.nan_to_num(tests.effect, nan=-np.inf) >= cfg.min_effect_size
        floors = self.floors(m)
        if floors is not None:
            drifted &= ~(tests.effect <= floors.features)  # NaN (no floor, no effect size): no say

        features = self._feature_reports(tests, padj, significant, drifted, floors)
        prediction = self._prediction_drift(classes_counts)
        return self._report(m, drifted, features, prediction, per_test_level, n_feat, floors)

    def _report(
        self,
        m: int,
        drifted: NDArray[np.bool_],
        features: list[FeatureDrift],
        prediction: PredictionDrift | None,
        per_test_level: float | None,
        n_tests: int,
        floors: ChunkFloors | None,
    ) -> DriftReport:
        """The window's report from its per-feature verdicts (both paths: with and without nulls)."""
        cfg = self.config
        n_drifted = int(drifted.sum())
        return DriftReport(
            status="drift" if n_drifted or (prediction is not None and prediction.drifted) else "ok",
            dataset_drift=n_drifted > 0,
            drifted_share=n_drifted / self.n_features,
            n_drifted=n_drifted,
            n_features=self.n_features,
            alpha=cfg.alpha,
            correction=cfg.correction,
            per_test_level=per_test_level,
            n_tests=n_tests,
            min_effect_size=cfg.min_effect_size,
            floor_chunks=floors.n_chunks if floors is not None else None,
            reference_size=self.reference_size,
            window_size=m,
            drifted_features=[self.feature_names[f] for f in np.flatnonzero(drifted)],
            features=features,
            prediction_drift=prediction,
        )

    def _feature_reports(
        self,
        tests: _FeatureTests,
        padj: NDArray[np.float64],
        significant: NDArray[np.bool_],
        drifted: NDArray[np.bool_],
        floors: ChunkFloors | None = None,
    ) -> list[FeatureDrift]:
        """One :class:`FeatureDrift` per feature; a p-value not computed is ``None``."""
        floor = floors.features if floors is not None else np.full(self.n_features, np.nan)
        # Python lists, read per feature below: indexing numpy arrays element by element cost
        # more than validating the models (~1.5 ms of a warm window at 256 features).
        stat = tests.stat.tolist()
        pval = [None if math.isnan(p) else p for p in tests.pval.tolist()]
        known = (~np.isnan(tests.pval)).tolist()
        adj = padj.tolist()
        effect = [None if math.isnan(e) else e for e in tests.effect.tolist()]
        floor_l = [None if math.isnan(e) else e for e in floor.tolist()]
        is_ks = (~self.categorical).tolist()
        sig = significant.tolist()
        drift = drifted.tolist()
        return [
            FeatureDrift(
                name=self.feature_names[f],
                test="ks" if is_ks[f] else "chi2",
                statistic=stat[f],
                p_value=pval[f],
                p_value_adjusted=adj[f] if known[f] else None,
                p_value_method=tests.method[f],  # type: ignore[arg-type]
                effect_size=effect[f],
                effect_size_kind="wasserstein_norm" if is_ks[f] else "jensen_shannon",
                effect_floor=floor_l[f],
                significant=sig[f],
                drifted=drift[f],
                missing=NO_MISSING,
            )
            for f in range(self.n_features)
        ]

    def _feature_statistics(
        self,
        win: FloatArray,
        m: int,
        h: NDArray[np.int64],
        w1: NDArray[np.float64] | None,
    ) -> _FeatureTests:
        """KS statistics from the lattice counts (with W1 when given), chi-squared and
        Jensen-Shannon for the categorical features; KS p-values are left to :meth:`_significance`."""
        n_feat = self.n_features
        tests = _FeatureTests(
            stat=np.zeros(n_feat),
            pval=np.full(n_feat, np.nan),
            method=[None] * n_feat,
            effect=np.full(n_feat, np.nan),
        )
        if self._num_ref is not None:
            lcm = ks_lattice(self._num_ref.n, m)[0]
            tests.stat[self._num_idx] = h / lcm
            if w1 is not None:
                assert self._w1_scale is not None
                tests.effect[self._num_idx] = w1 / self._w1_scale
        for f, cref in zip(self._cat_idx, self._cat_ref, strict=True):
            assert cref is not None  # only a reference with missing values lacks one
            wc = cref.window_counts(win[:, f])
            s, p, _ = chi2_homogeneity(cref.counts, wc, MIN_EXPECTED)
            tests.stat[f], tests.pval[f], tests.method[f] = s, p, "chi2"
            tests.effect[f] = jensen_shannon(cref.counts, wc)
        return tests

    def _ks_pvalues(self, tests: _FeatureTests, m: int, features: NDArray[np.intp], h: NDArray[np.int64]) -> None:
        """Exact or asymptotic KS p-values of ``features`` (lattice counts ``h``), in place."""
        p_ks, how = ks_pvalues(self.reference_size, m, h, self.config.ks_method, self.config.threads)
        tests.pval[features] = p_ks
        for i, f in enumerate(features):
            tests.method[f] = how[i]

    def _significance(
        self, tests: _FeatureTests, m: int, h: NDArray[np.int64]
    ) -> tuple[NDArray[np.bool_], float | None]:
        """Which features are significant after the correction, and the per-test level.

        Without every p-value (Bonferroni or none, ``p_values="significant"``)
        the KS decision compares ``h`` with the critical count, and only the
        significant features get their p-value computed.
        """
        cfg = self.config
        n_feat = self.n_features
        ks_rows = self._num_idx
        need_all_p = cfg.p_values == "all" or cfg.correction == "fdr_bh"
        if need_all_p and ks_rows.size:
            self._ks_pvalues(tests, m, ks_rows, h)
        pval = tests.pval
        if cfg.correction == "fdr_bh":
            significant = bh_reject(pval, cfg.alpha)
            rejected = np.sort(pval[significant])
            return significant, (cfg.alpha * rejected.size / n_feat if rejected.size else None)
        level = cfg.alpha / n_feat if cfg.correction == "bonferroni" else cfg.alpha
        significant = np.zeros(n_feat, dtype=bool)
        cat = self.categorical
        significant[cat] = pval[cat] < level
        if ks_rows.size and need_all_p:
            # Every p-value is known: the critical value (a search over
            # ~10-20 exact p-values near the tail) would add nothing.
            significant[ks_rows] = pval[ks_rows] < level
        elif ks_rows.size:
            h_crit = ks_critical_h(self.reference_size, m, level, cfg.ks_method)
            significant[ks_rows] = h >= h_crit
            if cfg.p_values == "near-level":
                self._near_level_pvalues(tests, m, h, significant[ks_rows], level)
            else:
                todo = ks_rows[significant[ks_rows]]
                if todo.size:
                    self._ks_pvalues(tests, m, todo, h[significant[ks_rows]])
        return significant, level

    def _near_level_pvalues(
        self, tests: _FeatureTests, m: int, h: NDArray[np.int64], significant: NDArray[np.bool_], level: float
    ) -> None:
        """Every KS p-value: Kolmogorov's limit for all (vectorised), then scipy's value for the
        near misses (within ``NEAR_LEVEL`` above ``level``) and where the limit disagrees with
        the exact decision. A drifted feature keeps the limit: its decision is exact already,
        and its exact p-value (a new statistic every window, ~15 ms each at 10k x 1k) would
        cost more than the rest of the test."""
        ks_rows = self._num_idx
        approx = ks_kolmogorov_p(self.reference_size, m, h)
        tests.pval[ks_rows] = approx
        for f in ks_rows.tolist():
            tests.method[f] = "kolmogorov"
        near = ~significant & (approx <= level * NEAR_LEVEL)
        exact = near | ((approx < level) != significant)
        if exact.any():
            self._ks_pvalues(tests, m, ks_rows[exact], h[exact])

    def _significant_effect_sizes(
        self, tests: _FeatureTests, win: FloatArray, significant: NDArray[np.bool_]
    ) -> None:
        """Wasserstein effect sizes of the significant numeric features only (see :meth:`test_sliding`)."""
        ks_rows = self._num_idx
        if self._num_ref is None or not ks_rows.size:
            return
        assert self._num_ref.prefix is not None and self._w1_scale is not None
        for j in np.flatnonzero(significant[ks_rows]).tolist():
            col = np.sort(np.asarray(win[:, ks_rows[j]], dtype=np.float64))
            tests.effect[ks_rows[j]] = (
                wasserstein_sorted(
                    self._num_ref.sorted[j], self._num_ref.prefix[j], col,
                    shift=float(self._num_ref.mean[j]),
                )
                / self._w1_scale[j]
            )

    def _prediction_drift(self, classes_counts: NDArray[np.int64] | None) -> PredictionDrift | None:
        """Chi-squared of the window's predicted classes against the reference's, with Jensen-Shannon."""
        if classes_counts is None or self._class_counts is None:
            return None
        cfg = self.config
        s, p, dof = chi2_homogeneity(self._class_counts, classes_counts, MIN_EXPECTED)
        js = jensen_shannon(self._class_counts, classes_counts)
        pred_drift = p < cfg.alpha
        if cfg.min_effect_size is not None:
            pred_drift = pred_drift and js >= cfg.min_effect_size
        return PredictionDrift(
            statistic=s,
            p_value=p,
            dof=dof,
            effect_size=js,
            drifted=bool(pred_drift),
            window_class_counts=[int(c) for c in classes_counts],
        )
