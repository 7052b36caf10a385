"""The simulated scenarios have the known answers the e2e tests rely on."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from rich.console import Console

from driftwatch.cli.simulate import (
    DIGITS_PLAN,
    HOLDOUT_FILE,
    SHIFTED_FEATURES,
    Scenario,
    make_traffic,
    run_simulation,
    scenario_plan,
)
from driftwatch.local_processes import free_port
from shared.model_metadata import DataSummary, ModelMetadata

X = np.random.default_rng(0).integers(0, 17, (360, 64)).astype(np.float32)  # distinct rows
Y = np.arange(360) % 10


def test_zero_rows_is_empty_traffic() -> None:
    traffic = make_traffic(Scenario.none, X, Y, 0, seed=0, window=300)
    assert traffic.features.shape == (0, 64) and traffic.labels.shape == (0,)


@pytest.mark.parametrize("scenario", [Scenario.none, Scenario.covariate_shift])
def test_no_window_repeats_a_row(scenario: Scenario) -> None:
    traffic = make_traffic(scenario, X, Y, 900, seed=1, window=300)
    for start in range(0, 900, 300):
        rows = traffic.features[start : start + 300]
        assert len(np.unique(rows, axis=0)) == 300


def test_covariate_shift_moves_only_the_shifted_features() -> None:
    plain = make_traffic(Scenario.none, X, Y, 300, seed=2, window=300)
    shifted = make_traffic(Scenario.covariate_shift, X, Y, 300, seed=2, window=300)
    changed = np.flatnonzero((plain.features != shifted.features).any(axis=0))
    assert set(changed.tolist()) <= set(SHIFTED_FEATURES)
    assert (shifted.features <= 16).all()


def test_label_shift_favours_zeros_and_ones() -> None:
    traffic = make_traffic(Scenario.label_shift, X, Y, 2000, seed=3)
    assert np.isin(traffic.labels, [0, 1]).mean() > 0.5


def _csv_metadata(n_features: int, n_classes: int, categorical: tuple[int, ...] = ()) -> ModelMetadata:
    """A model ``driftwatch train --data some.csv`` wrote: named after its file, not digits."""
    return ModelMetadata(
        name="wine",
        version="1",
        feature_names=[f"f{i}" for i in range(n_features)],
        class_names=[str(c) for c in range(n_classes)],
        categorical=[i in categorical for i in range(n_features)],
        data=DataSummary(source="/tmp/wine.csv", sha256="0" * 64, label_column="target"),
        created_at="2026-12-02",
    )


def test_covariate_shift_of_a_csv_model_moves_its_first_numeric_features_by_their_spread() -> None:
    """A CSV model of 13 features made covariate-shift raise IndexError (the digits pixels 2..21), and
    a wider one had those columns cut to 16 (the pixel maximum): wine's proline (~750) became 16."""
    rng = np.random.default_rng(4)
    x = (rng.normal(size=(36, 13)) * np.arange(1, 14) * 100 + 500).astype(np.float32)
    y = np.arange(36) % 3
    plan = scenario_plan(x, y, _csv_metadata(13, 3, categorical=(0,)))
    assert plan.shifted == [1, 2, 3]  # the first fifth (rounded up) of the 12 numeric features
    plain = make_traffic(Scenario.none, x, y, 300, seed=2, window=300, plan=plan)
    shifted = make_traffic(Scenario.covariate_shift, x, y, 300, seed=2, window=300, plan=plan)
    moved = (shifted.features - plain.features).mean(axis=0)
    np.testing.assert_allclose(moved[plan.shifted], x[:, plan.shifted].std(axis=0), rtol=1e-4)
    assert np.flatnonzero(moved).tolist() == plan.shifted
    assert "f1, f2, f3" in plan.describe


def test_label_shift_of_a_binary_model_favours_one_class() -> None:
    """Favouring classes 0 and 1 of a binary model changed nothing: the scenario sent unshifted traffic."""
    y = np.arange(400) % 2
    x = np.random.default_rng(5).normal(size=(400, 30)).astype(np.float32)
    traffic = make_traffic(Scenario.label_shift, x, y, 2000, seed=3, plan=scenario_plan(x, y, _csv_metadata(30, 2)))
    assert (traffic.labels == 0).mean() > 0.8


def test_the_digits_demo_keeps_its_pixels_plan() -> None:
    assert scenario_plan(X, Y, None) is DIGITS_PLAN
    digits = _csv_metadata(64, 10).model_copy(update={"data": DataSummary(source="digits", sha256="0" * 64)})
    assert scenario_plan(X, Y, digits) is DIGITS_PLAN


class _IngestOnly(BaseHTTPRequestHandler):
    """A model service without a model (``up --ingest-only``) and a monitor, on one port."""

    def _answer(self, code: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    served: ClassVar[dict[str, object] | None] = None  # GET /model: what a model service serving a model answers

    def do_GET(self) -> None:
        if self.path.startswith("/performance"):
            self._answer(200, {"labelled": 0})
        elif self.path == "/model":
            self._answer(404, {"detail": "no model"}) if self.served is None else self._answer(200, self.served)
        else:
            self._answer(200, {"size": 10, "filled": 0, "window": 0})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["content-length"]))
        self._answer(404, {"detail": "no model served: this model service only logs registered models"})

    def log_message(self, *args: object) -> None:
        pass


def test_a_service_that_refuses_or_is_away_is_named_without_a_traceback(tmp_path: Path) -> None:
    np.savez(tmp_path / HOLDOUT_FILE, features=X, labels=Y)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _IngestOnly)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        console = Console(record=True, width=200)
        assert run_simulation(Scenario.none, 20, tmp_path, url, url, 10, 0, console) == 1
        text = console.export_text()
        assert "/predict answered 404: no model served" in text and "Traceback" not in text
        away = f"http://127.0.0.1:{free_port()}"
        console = Console(record=True, width=200)
        assert run_simulation(Scenario.none, 20, tmp_path, away, away, 10, 0, console) == 1
        assert f"cannot reach {away}" in console.export_text()
    finally:
        server.shutdown()
        server.server_close()


def test_a_held_out_sample_smaller_than_the_window_is_said(tmp_path: Path) -> None:
    """Wine's 36 held-out rows in windows of 300 repeat: --scenario none then showed drift, unexplained."""
    np.savez(tmp_path / HOLDOUT_FILE, features=X[:6], labels=Y[:6])  # the fake monitor's windows hold 10
    server = ThreadingHTTPServer(("127.0.0.1", 0), _IngestOnly)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        console = Console(record=True, width=300)
        run_simulation(Scenario.none, 20, tmp_path, url, url, 10, 0, console)
        text = console.export_text()
        assert "The held-out sample has 6 rows, fewer than a window of 10" in text
        assert "--window-size 6 or less" in text
    finally:
        server.shutdown()
        server.server_close()


class _ServesDigits(_IngestOnly):
    served: ClassVar[dict[str, object] | None] = {
        "name": "digits-mlp",
        "version": "1",
        "feature_names": [f"pixel_{i}" for i in range(64)],
    }


def test_a_held_out_sample_of_another_model_is_refused_before_any_traffic(tmp_path: Path) -> None:
    """The host's models/default held a CSV model while the compose stack served its image's
    digits model: every batch was a 422 of 20 list-length errors. Now: why, and what to run."""
    x = np.random.default_rng(6).normal(size=(36, 13)).astype(np.float32)
    np.savez(tmp_path / HOLDOUT_FILE, features=x, labels=np.arange(36) % 3)
    _csv_metadata(13, 3).save(tmp_path)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ServesDigits)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        console = Console(record=True, width=400)
        assert run_simulation(Scenario.none, 20, tmp_path, url, url, 10, 0, console) == 2
        text = console.export_text()
        assert f"{url} serves digits-mlp v1 (64 features), but {tmp_path} holds wine v1 (13 features)" in text
        assert "docker compose exec model-service driftwatch simulate" in text
    finally:
        server.shutdown()
        server.server_close()
