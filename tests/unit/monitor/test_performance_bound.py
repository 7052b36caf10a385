"""Which drift reports' class-mix bound the performance report takes for an ingest window."""

import orjson
import pytest

from monitor.performance_report import accuracy_bound


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
