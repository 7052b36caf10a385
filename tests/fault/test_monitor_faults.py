"""Monitors as real processes under faults: SIGKILL mid-stream and restart, replicas with one
SIGKILLed, a poison entry in every run.

Every run consumes the same events (pre-filled streams, in its own Redis
database) and is compared with an uninterrupted single-monitor run (the
harness and what it compares: ``tests/fault/stream_runs.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis

from driftwatch.local_processes import LocalRedisServer
from shared.model_metadata import ModelMetadata, Reference
from tests.fault.procs import wait_live
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

pytestmark = [pytest.mark.fault, pytest.mark.timeout(150)]

WINDOW = 500


@pytest.fixture(scope="module")
def server() -> Iterator[LocalRedisServer]:
    with LocalRedisServer() as srv:
        yield srv


@pytest.fixture(scope="module")
def events(model_dir: Path) -> dict[str, ModelEvents]:
    """The same events for every run: 6,000 predictions of the digits model, labels for half of them."""
    metadata = ModelMetadata.load(model_dir)
    with np.load(model_dir / "holdout.npz") as holdout:
        x, labels = holdout["features"], holdout["labels"]
    return {metadata.name: model_events(metadata, Reference.load(model_dir), x, labels,
                                        n_predictions=6_000, n_feedback=3_000, seed=7)}


def database(server: LocalRedisServer, db: int) -> str:
    return f"redis://127.0.0.1:{server.port}/{db}"


@pytest.fixture(scope="module")
def baseline(server: LocalRedisServer, events: dict[str, ModelEvents],
             tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """One monitor, never interrupted."""
    url = database(server, 1)
    fill(url, events)
    service = start_monitor(url, tmp_path_factory.mktemp("baseline"), "base", WINDOW)
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


def test_monitor_sigkilled_mid_stream_and_restarted_counts_like_an_uninterrupted_run(
    server: LocalRedisServer, events: dict[str, ModelEvents], baseline: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    url = database(server, 2)
    fill(url, events, publish=False)
    client = redis.Redis.from_url(url)
    first = start_monitor(url, tmp_path, "solo", WINDOW)
    again = None
    try:
        wait_live(first)
        killed_at = kill_mid_stream(url, client, events, first)
        again = start_monitor(url, tmp_path, "solo", WINDOW)  # the same consumer name: its pending entries first
        wait_live(again)
        wait_done(client, events, WINDOW)
    finally:
        first.stop()
        if again is not None:
            again.stop()
        client.close()
    compare("monitor SIGKILL + restart", baseline, snapshots(url, events), killed_at, same_order=True)


@pytest.mark.parametrize("replicas", [2, 3])
def test_replicas_with_one_sigkilled_give_the_single_monitor_counts(
    replicas: int, server: LocalRedisServer, events: dict[str, ModelEvents], baseline: dict[str, dict[str, Any]],
    tmp_path: Path,
) -> None:
    url = database(server, 2 + replicas)
    fill(url, events, publish=False)
    client = redis.Redis.from_url(url)
    services = [start_monitor(url, tmp_path, f"replica-{i}", WINDOW) for i in range(replicas)]
    try:
        for service in services:
            wait_live(service)
        killed_at = kill_mid_stream(url, client, events, services[0])
        wait_done(client, events, WINDOW)
    finally:
        for service in services:
            service.stop()
        client.close()
    compare(f"{replicas} replicas, one SIGKILLed", baseline, snapshots(url, events), killed_at, same_order=False)
