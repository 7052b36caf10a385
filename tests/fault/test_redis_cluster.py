"""Driftwatch on a real Redis Cluster, through a master failover under traffic.

Three masters and three replicas of Debian's redis-server (``redis-cli --cluster
create``). Three models whose keys hash to three different masters, each with
its own model service; two monitor replicas for the model whose master fails
over, one for each of the others. Under traffic, the failing master's replica
takes over (``CLUSTER FAILOVER``) and the old master is killed. Every answered
prediction must be counted exactly once, and every window reported once with
its full size, for every model.

Every key of a model carries the model's hash tag and every script receives
its keys in ``KEYS``, so a model's state lives in one slot and each script runs
on that slot's master: that is what makes this work (``shared/redis_scripts.py``).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import redis
from redis.cluster import key_slot

from driftwatch.local_cluster import LocalRedisCluster
from shared.keys import Keys
from tests.fault.procs import Load, Service, start, wait_live

pytestmark = [pytest.mark.fault, pytest.mark.timeout(600)]

WINDOW = 50
PER_MODEL = 400  # answered predictions per model before the load stops (at least)


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalRedisCluster]:
    with LocalRedisCluster() as c:
        yield c


def model_on_each_master(cluster: LocalRedisCluster) -> list[str]:
    """Model names whose hash tags fall on three different masters."""
    chosen: dict[int, str] = {}
    for i in range(1000):
        name = f"cluster-model-{i}"
        master = cluster.master_of_slot(key_slot(Keys(name).predictions.encode()))
        chosen.setdefault(master, name)
        if len(chosen) == 3:
            return list(chosen.values())
    raise AssertionError("no three models on three masters")


def copy_model(model_dir: Path, name: str, into: Path) -> Path:
    """The trained digits model under another name (same network, same reference)."""
    target = into / name
    shutil.copytree(model_dir, target)
    meta = json.loads((target / "metadata.json").read_text())
    meta["name"] = name
    (target / "metadata.json").write_text(json.dumps(meta))
    return target


def counted(client: redis.RedisCluster, keys: Keys) -> int:
    return int(client.get(keys.for_version("1").ingested) or 0)


def reported_windows(client: redis.RedisCluster, keys: Keys) -> dict[int, int]:
    """window index -> the size its report says it had (version 1's series)."""
    reports = client.hgetall(keys.for_version("1").drift_reports)
    return {int(w): json.loads(r)["window_size"] for w, r in reports.items()}


def test_failover_under_traffic_counts_every_prediction_once_for_every_model(
    cluster: LocalRedisCluster, model_dir: Path, tmp_path: Path
) -> None:
    names = model_on_each_master(cluster)
    victim_model = names[0]
    env = {"REDIS_URL": cluster.url}
    monitor_env = {**env, "DRIFTWATCH_WINDOW_SIZE": str(WINDOW), "DRIFTWATCH_READ_BLOCK_MS": "100",
                   "DRIFTWATCH_CLAIM_IDLE_MS": "1000", "DRIFTWATCH_ALERTS_ENABLED": "false"}  # fmt: skip
    services: list[Service] = []
    loads: dict[str, Load] = {}
    with np.load(model_dir / "holdout.npz") as holdout:
        rows = holdout["features"].astype(np.float32)
    try:
        for name in names:
            directory = copy_model(model_dir, name, tmp_path)
            service = start("serve", {**env, "DRIFTWATCH_SPILL_DIR": str(tmp_path / f"spill-{name}")},
                            tmp_path, f"serve-{name}", "--model-dir", str(directory))  # fmt: skip
            services.append(service)
            loads[name] = Load(service.url, rows, threads=1)
            for replica in range(2 if name == victim_model else 1):
                consumer = f"{name}-monitor-{replica}"
                replica_env = {**monitor_env, "DRIFTWATCH_MODEL_NAME": name, "DRIFTWATCH_CONSUMER_NAME": consumer}
                services.append(start("monitor", replica_env, tmp_path, consumer))
        for service in services:
            wait_live(service, timeout_s=120)
        client = cluster.client()
        for load in loads.values():
            load.start()
        # Fail over once the victim's model is well into its traffic and its monitors count.
        deadline = time.monotonic() + 120
        while counted(client, Keys(victim_model)) < PER_MODEL // 3:
            assert time.monotonic() < deadline, "\n".join(s.tail() for s in services)
            time.sleep(0.05)
        victim_master = cluster.master_of_slot(key_slot(Keys(victim_model).predictions.encode()))
        new_master = cluster.failover(victim_master)
        print(f"\nfailover of {victim_model}'s master {victim_master} -> {new_master} "
              f"at {len(loads[victim_model].answered)} answered")
        deadline = time.monotonic() + 180
        while min(len(load.answered) for load in loads.values()) < PER_MODEL:
            assert time.monotonic() < deadline, {n: len(load.answered) for n, load in loads.items()}
            time.sleep(0.1)
        for load in loads.values():
            load.stop()

        client = cluster.client()  # the old one may still point at the killed master
        for name in names:
            keys = Keys(name)
            answered = len(loads[name].answered)
            assert len(set(loads[name].answered)) == answered
            full_windows = answered // WINDOW
            deadline = time.monotonic() + 120
            while (counted(client, keys), len(reported_windows(client, keys))) != (answered, full_windows):
                assert time.monotonic() < deadline, (name, counted(client, keys), answered,
                                                     sorted(reported_windows(client, keys)))  # fmt: skip
                time.sleep(0.2)
            windows = reported_windows(client, keys)
            print(f"{name}: answered={answered} counted={counted(client, keys)} windows={len(windows)} "
                  f"failed requests={len(loads[name].failed)}")
            assert sorted(windows) == list(range(full_windows))
            assert set(windows.values()) == {WINDOW}
            assert loads[name].failed == []  # /predict never waits on Redis
    finally:
        for load in loads.values():
            load.stop()
        for service in services:
            service.stop()
