"""Which drift reports' class-mix bound and agreement estimate the performance report takes for an
ingest window, and which estimate it shows."""

import orjson
import pytest

from monitor.estimate import AccuracyEstimator
from monitor.performance_report import accuracy_bound, window_estimate


@pytest.mark.parametrize(
    ("report", "window", "expected"),
    [
        ({"window": 4, "window_first": 4, "accuracy_bound": 0.7}, 4, 0.7),  # a count window: its own
        ({"window": 4, "window_first": 2, "accuracy_bound": 0.7}, 4, None),  # sliding: spans windows 2-4
        ({"window": 5, "window_first": 5, "accuracy_bound": 0.7}, 4, None),  # another window's report
        ({"window": 4, "window_first": 4}, 4, None),  # reported before the bound existed
        ({"window": 4, "window_first": 4, "accuracy_bound": None}, 4, None),  # no labelled reference
    ],
)
def test_only_a_report_of_exactly_that_window_gives_its_bound(
    report: dict[str, object], window: int, expected: float | None
) -> None:
    assert accuracy_bound(orjson.dumps(report), window) == expected


def test_no_report_yet_gives_no_bound() -> None:
    assert accuracy_bound(None, 3) is None


CALIBRATION = AccuracyEstimator(reference_accuracy=0.9, reference_confidence=0.9, reference_size=1_000)
CONFIDENT = {b"94": b"100"}  # 100 predictions at 0.945 confidence: DoC 0.945


@pytest.mark.parametrize(
    ("report", "method", "value"),
    [
        ({"window": 4, "window_first": 4, "agreement_accuracy": 0.6, "agreement_interval": [0.55, 0.65],
          "accuracy_bound": 0.8}, "agreement", 0.6),  # agreement, below the bound
        ({"window": 4, "window_first": 4, "agreement_accuracy": 0.85, "agreement_interval": [0.8, 0.9],
          "accuracy_bound": 0.7}, "agreement-capped", 0.7),  # agreement above the window's own bound
        ({"window": 4, "window_first": 2, "agreement_accuracy": 0.6, "agreement_interval": [0.55, 0.65]},
         "doc", 0.945),  # a sliding report spans several ingest windows: not this one's
        ({"window": 4, "window_first": 4, "accuracy_bound": 0.8}, "doc-capped", 0.8),  # stored before agreement
        ({"window": 4, "window_first": 4, "agreement_accuracy": None, "agreement_interval": None,
          "accuracy_bound": 0.99}, "doc", 0.945),  # no surrogate; the bound does not bite
    ],
)
def test_the_estimate_is_agreement_where_the_windows_report_has_it_else_doc(
    report: dict[str, object], method: str, value: float
) -> None:
    estimate, used, _ = window_estimate(orjson.dumps(report), 4, CALIBRATION, CONFIDENT)
    assert used == method and estimate is not None and estimate.value == pytest.approx(value)
    if method == "agreement":
        assert (estimate.low, estimate.high) == (0.55, 0.65)
    if method == "agreement-capped":  # it ends at the bound, keeping the width below it
        assert (estimate.low, estimate.high) == pytest.approx((0.65, 0.7))


def test_no_probabilities_and_no_agreement_give_no_estimate() -> None:
    assert window_estimate(None, 4, None, {})[:2] == (None, None)
