"""The simulated scenarios have the known answers the e2e tests rely on."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from driftwatch.cli.simulate import HOLDOUT_FILE, SHIFTED_FEATURES, Scenario, make_traffic, run_simulation
from driftwatch.local_processes import free_port

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


class _IngestOnly(BaseHTTPRequestHandler):
    """A model service without a model (``up --ingest-only``) and a monitor, on one port."""

    def _answer(self, code: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.startswith("/performance"):
            self._answer(200, {"labelled": 0})
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
