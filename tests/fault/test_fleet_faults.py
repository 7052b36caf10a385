"""Many models on each monitor, as real processes: a replica SIGKILLed mid-stream loses and double-counts
nothing for any model.

Three models (the trained digits model, the default, and two registered 4-feature
models the monitors discover from the registry) get the same events in every
run, a poison entry each. Every run is compared, model by model, with one
uninterrupted monitor (the harness and what it compares:
``tests/fault/stream_runs.py``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import redis

from driftwatch.local_processes import LocalRedisServer
from shared.model_metadata import ModelMetadata, Reference
from tests.fault.procs import Service, wait_live
from tests.fault.stream_runs import (
    ModelEvents,
    check_baseline,
    compare,
    fill,
    kill_mid_stream,
    model_events,
    snapshots,
    start_monitor,
    wait_done,
)
from tests.integration.monitor.helpers import small_model

pytestmark = [pytest.mark.fault, pytest.mark.timeout(300)]

N_PRED = 3_000
N_FEEDBACK = 1_500
WINDOW = 500
DEFAULT = "digits-mlp"
OTHERS = ("churn", "fraud")


@pytest.fixture(scope="module")
def server() -> Iterator[LocalRedisServer]:
    with LocalRedisServer() as srv:
        yield srv


@pytest.fixture(scope="module")
def events(model_dir: Path) -> dict[str, ModelEvents]:
    with np.load(model_dir / "holdout.npz") as holdout:
        x, labels = holdout["features"], holdout["labels"]
    sizes = {"n_predictions": N_PRED, "n_feedback": N_FEEDBACK}
    out = {DEFAULT: model_events(ModelMetadata.load(model_dir), Reference.load(model_dir), x, labels, seed=7,
                                 **sizes)}
    for i, name in enumerate(OTHERS):
        metadata, reference = small_model(name, "1", seed=i + 2)
        rng = np.random.default_rng(i)
        out[name] = model_events(metadata, reference, rng.normal(size=(2_000, 4)), rng.integers(0, 2, 2_000),
                                 seed=i + 11, **sizes)
    return out


def database(server: LocalRedisServer, db: int) -> str:
    return f"redis://127.0.0.1:{server.port}/{db}"


def monitor(url: str, tmp_path: Path, name: str) -> Service:
    return start_monitor(url, tmp_path, name, WINDOW, DRIFTWATCH_MODEL_NAME=DEFAULT,
                         DRIFTWATCH_DISCOVERY_INTERVAL_S="0.2")


def watches_every_model(service: Service, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            models = httpx.get(f"{service.url}/readyz", timeout=5).json().get("models", {})
        except httpx.HTTPError:
            models = {}
        if set(models) == {DEFAULT, *OTHERS}:
            return
        time.sleep(0.1)
    raise AssertionError(f"{service.log.stem} does not watch every model:\n{service.tail()}")


@pytest.fixture(scope="module")
def baseline(server: LocalRedisServer, events: dict[str, ModelEvents],
             tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """One monitor watching every model, never interrupted."""
    url = database(server, 1)
    fill(url, events)
    service = monitor(url, tmp_path_factory.mktemp("baseline"), "base")
    client = redis.Redis.from_url(url)
    try:
        wait_live(service)
        wait_done(client, events, WINDOW)
    finally:
        service.stop()
        client.close()
    snaps = snapshots(url, events)
    check_baseline(snaps, events)
    return snaps


def test_a_monitor_of_many_models_sigkilled_and_restarted_counts_like_an_uninterrupted_run(
    server: LocalRedisServer, events: dict[str, ModelEvents], baseline: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    url = database(server, 2)
    fill(url, events, publish=False)
    client = redis.Redis.from_url(url)
    first = monitor(url, tmp_path, "solo")
    again = None
    try:
        wait_live(first)
        killed_at = kill_mid_stream(url, client, events, first)
        again = monitor(url, tmp_path, "solo")  # the same consumer name: its pending entries come first
        wait_live(again)
        wait_done(client, events, WINDOW)
    finally:
        first.stop()
        if again is not None:
            again.stop()
        client.close()
    compare("SIGKILL + restart", baseline, snapshots(url, events), killed_at, same_order=True)


def test_replicas_of_many_models_with_one_sigkilled_give_the_single_monitor_counts(
    server: LocalRedisServer, events: dict[str, ModelEvents], baseline: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    url = database(server, 3)
    fill(url, events, publish=False)
    client = redis.Redis.from_url(url)
    services = [monitor(url, tmp_path, f"replica-{i}") for i in range(2)]
    try:
        for service in services:
            wait_live(service)
            watches_every_model(service)
        killed_at = kill_mid_stream(url, client, events, services[0])
        wait_done(client, events, WINDOW)
    finally:
        for service in services:
            service.stop()
        client.close()
    compare("2 replicas, one SIGKILLed", baseline, snapshots(url, events), killed_at, same_order=False)
