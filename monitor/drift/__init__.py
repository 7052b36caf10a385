"""Statistical drift engine: pure numpy/scipy, no I/O.

Public API::

    from monitor.drift import (
        DriftConfig, DriftDetector, DriftReport, FeatureDrift, MultivariateDrift, PredictionDrift,
    )

One test per module: :mod:`.ks` (vectorised two-sample KS, scipy-identical),
:mod:`.chi2` (categorical and predicted classes), :mod:`.correlation`
(the multivariate cross-moment test), :mod:`.corrections`
(Bonferroni, Benjamini-Hochberg), :mod:`.effect_size` (normalised
Wasserstein, Jensen-Shannon, PSI), :mod:`.sliding` (incremental sliding-window
KS), :mod:`.detector` (the decision) and :mod:`.report` (pydantic results).
"""

from monitor.drift.detector import DriftConfig, DriftDetector
from monitor.drift.report import DriftReport, FeatureDrift, MultivariateDrift, PredictionDrift

__all__ = [
    "DriftConfig",
    "DriftDetector",
    "DriftReport",
    "FeatureDrift",
    "MultivariateDrift",
    "PredictionDrift",
]
