"""Many models on one monitor: 50 models x 64 features at 1,000 events/s in total, against 1 model at the same rate.

    .venv/bin/python benchmarks/fleet.py [--models 50] [--features 64] [--rate 1000] [--seconds 120] [--window 200]

Two runs in one invocation, each on a private redis-server (a free port) with
one real monitor process (``python -m driftwatch.cli monitor``, alerts on,
telemetry off): first ONE model taking the whole rate, then ``--models``
models sharing it (rate / models events/s each). Every model has
``--features`` float32 features and 10 classes; events are standard normal
rows (no drift), a quarter of them get a label 1 s later. This process
writes the events as the model services would: every 50 ms, one pipelined
batch of XADDs (each model's events of that tick), stamped with the time
written.

Reported per run:

- lag: the monitor's undelivered entries (XINFO GROUPS ``lag``, summed over
  every model's streams), sampled each second: median and max, and the time
  to drain after the producer stops;
- close -> report: for each window, from its last event's timestamp to its
  report's ``computed_at``: what the monitor adds (read, ingest, test,
  store), p50 / p99 / max, apart for each model's first window (its
  detector is built then, about 0.25 s at 64 features, unless the monitor's
  warm-up at discovery got there first);
- event -> report: for each event, from its timestamp to the report of its
  window, p50 / p99: this also holds the time the window takes to fill,
  ``window`` / per-model rate, which is 50x longer with 50 models at the
  same total rate (10 s at 20 events/s per model vs 0.2 s);
- Redis memory (``used_memory`` after the run, minus before registration)
  and the streams' share of it (``MEMORY USAGE``); the monitor's CPU
  seconds per 1,000 events and its peak RSS.

The ratios (many / one) are what to compare across machines; the absolute
figures depend on the machine (here 2 cores, shared) and the producer runs
in this process, on the same cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import httpx
import numpy as np
import redis.asyncio as aioredis

from driftwatch.local_processes import LocalRedisServer, free_port, wait_for_http
from shared.events import encode_feedback, encode_predictions
from shared.ids import new_prediction_ids
from shared.keys import CONSUMER_GROUP, Keys
from shared.model_metadata import DataSummary, ModelMetadata, Reference
from shared.registry import register_model

N_CLASSES = 10
TICK_S = 0.05
LABEL_SHARE = 0.25
LABEL_DELAY_S = 1.0
VERSION = "1"


@dataclass
class RunResult:
    models: int
    events: int
    seconds: float
    lag_median: float
    lag_max: int
    drain_s: float
    reports: int
    close_to_report_p50_ms: float
    close_to_report_p99_ms: float
    close_to_report_max_ms: float
    first_close_to_report_p50_ms: float
    first_close_to_report_max_ms: float
    event_to_report_p50_s: float
    event_to_report_p99_s: float
    redis_memory_mb: float
    stream_memory_mb: float
    monitor_cpu_s_per_1k: float
    monitor_rss_mb: float


def model_names(n: int) -> list[str]:
    return [f"bench-{i:03d}" for i in range(n)]


def metadata_of(name: str, features: int) -> ModelMetadata:
    return ModelMetadata(
        name=name, version=VERSION, feature_names=[f"f{i}" for i in range(features)],
        class_names=[str(c) for c in range(N_CLASSES)], categorical=[False] * features,
        data=DataSummary(source="benchmarks/fleet.py", sha256=f"{features:064x}"),
        created_at="2026-01-01T00:00:00+00:00",
    )


def reference_of(features: int, seed: int) -> Reference:
    rng = np.random.default_rng(seed)
    classes = rng.integers(0, N_CLASSES, 1_000).astype(np.int64)
    return Reference(
        features=rng.normal(size=(1_000, features)).astype(np.float32), predicted_classes=classes,
        probabilities=np.eye(N_CLASSES, dtype=np.float32)[classes], labels=classes,
    )


class Producer:
    """Writes every model's events at the total rate, a pipelined batch per tick; remembers each event's time."""

    def __init__(self, client: aioredis.Redis, names: list[str], features: int, rate: float) -> None:
        self.client = client
        self.names = names
        self.features = features
        self.rate = rate
        self.rng = np.random.default_rng(0)
        self.stamps: dict[str, list[int]] = {n: [] for n in names}  # per model, in stream order
        self.labels_due: list[tuple[float, str, list[str], np.ndarray]] = []
        self.written = 0

    def _split(self, n: int) -> np.ndarray:
        """How many of ``n`` events each model gets this tick (round robin, carried over ticks)."""
        counts = np.full(len(self.names), n // len(self.names))
        extra = n % len(self.names)
        start = self.written % len(self.names)
        counts[(start + np.arange(extra)) % len(self.names)] += 1
        return counts

    async def tick(self, n: int) -> None:
        now_ms = int(time.time() * 1000)
        async with self.client.pipeline(transaction=False) as pipe:
            for name, k in zip(self.names, self._split(n), strict=True):
                if k == 0:
                    continue
                x = self.rng.normal(size=(k, self.features)).astype(np.float32)
                classes = self.rng.integers(0, N_CLASSES, k).astype(np.int64)
                ids = new_prediction_ids(int(k), now_ms)
                entries = encode_predictions(ids, now_ms, name, VERSION, x, classes,
                                             np.eye(N_CLASSES, dtype=np.float32)[classes])
                stream = Keys(name).predictions
                for fields in entries:
                    pipe.xadd(stream, fields)
                self.stamps[name] += [now_ms] * int(k)
                labelled = self.rng.random(k) < LABEL_SHARE
                if labelled.any():
                    chosen = [i for i, keep in zip(ids, labelled, strict=True) if keep]
                    self.labels_due.append((time.monotonic() + LABEL_DELAY_S, name, chosen, classes[labelled]))
            due = [d for d in self.labels_due if d[0] <= time.monotonic()]
            self.labels_due = [d for d in self.labels_due if d[0] > time.monotonic()]
            for _, name, ids, labels in due:
                stream = Keys(name).feedback
                for pid, label in zip(ids, labels.tolist(), strict=True):
                    pipe.xadd(stream, encode_feedback(pid, int(label), now_ms))
            await pipe.execute()
        self.written += n


async def total_lag(client: aioredis.Redis, names: list[str]) -> tuple[int, int]:
    """Undelivered entries and entries delivered but not acked, over every model's streams."""
    async with client.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.xinfo_groups(Keys(name).predictions)
            pipe.xinfo_groups(Keys(name).feedback)
        replies = await pipe.execute()
    lag = pending = 0
    for groups in replies:
        for g in groups:
            if g["name"] in (CONSUMER_GROUP, CONSUMER_GROUP.encode()):
                lag += int(g.get("lag") or 0)
                pending += int(g["pending"])
    return lag, pending


def proc_stats(pid: int) -> tuple[float, float]:
    """CPU seconds (user + system) and peak RSS (MB) of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    peak = next((int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                 if line.startswith("VmHWM:")), 0)
    return cpu, peak / 1024


def start_monitor(
    url: str, default: str, window: int, workdir: Path, profile: Path | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = os.environ | {
        "REDIS_URL": url, "DRIFTWATCH_MODEL_NAME": default, "DRIFTWATCH_WINDOW_SIZE": str(window),
        "DRIFTWATCH_CONSUMER_NAME": "bench", "OTEL_SDK_DISABLED": "true",
    }
    log = (workdir / f"monitor-{port}.log").open("ab")
    profiler = ["-m", "cProfile", "-o", str(profile)] if profile is not None else []
    process = subprocess.Popen(
        [sys.executable, *profiler, "-m", "driftwatch.cli", "monitor", "--port", str(port), "--log-level", "warning"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    return process, f"http://127.0.0.1:{port}"


async def wait_watching(
    url: str, client: aioredis.Redis, names: list[str], process: subprocess.Popen[bytes]
) -> None:
    """Until the monitor watches every model and each model's consumer group exists."""
    wait_for_http(f"{url}/readyz", 120, processes=[process])
    streams = [Keys(n).predictions for n in names] + [Keys(n).feedback for n in names]
    async with httpx.AsyncClient() as http:
        for _ in range(1200):
            watched = len((await http.get(f"{url}/readyz")).json().get("models", {}))
            if watched == len(names) and await client.exists(*streams) == len(streams):
                return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"the monitor does not watch {len(names)} models")


async def report_delays(
    client: aioredis.Redis, producer: Producer, window: int
) -> tuple[list[float], list[float], list[float]]:
    """Close -> report (ms) of each model's first window (its detector built cold, unless the
    monitor's warm-up got there first) and of the others; event -> report (s) of every event."""
    first: list[float] = []
    close: list[float] = []
    event: list[float] = []
    for name in producer.names:
        stamps = np.asarray(producer.stamps[name], dtype=np.int64)
        for raw in (await client.hgetall(Keys(name, VERSION).drift_reports)).values():
            report = json.loads(raw)
            computed = datetime.fromisoformat(report["computed_at"]).timestamp() * 1000
            end = datetime.fromisoformat(report["window_end"]).timestamp() * 1000
            w = int(report["window"])
            (first if w == 0 else close).append(computed - end)
            members = stamps[w * window:(w + 1) * window]  # one consumer: windows follow stream order
            event.extend(((computed - members) / 1000).tolist())
    return first, close, event


async def run(
    n_models: int, features: int, rate: float, seconds: float, window: int, workdir: Path, profile: Path | None = None
) -> RunResult:
    names = model_names(n_models)
    with LocalRedisServer() as server:
        client = aioredis.Redis.from_url(server.url)
        before = int((await client.info("memory"))["used_memory"])
        for i, name in enumerate(names):
            await register_model(client, Keys(name), metadata_of(name, features), reference_of(features, i))
        process, url = start_monitor(server.url, names[0], window, workdir, profile)
        try:
            await wait_watching(url, client, names, process)
            cpu_before, _ = proc_stats(process.pid)
            producer = Producer(client, names, features, rate)
            lags: list[int] = []
            started = time.monotonic()
            next_tick, next_sample = started, started
            carry = 0.0
            while (now := time.monotonic()) - started < seconds:
                if now >= next_sample:
                    lags.append((await total_lag(client, names))[0])
                    next_sample += 1.0
                carry += rate * TICK_S
                await producer.tick(int(carry))
                carry -= int(carry)
                next_tick += TICK_S
                await asyncio.sleep(max(0.0, next_tick - time.monotonic()))
            elapsed = time.monotonic() - started
            stopped = time.monotonic()
            while sum(await total_lag(client, names)) > 0:
                if time.monotonic() - stopped > 300:
                    raise RuntimeError("the monitor did not drain in 300 s")
                await asyncio.sleep(0.1)
            drain = time.monotonic() - stopped
            await asyncio.sleep(2.0)  # the last windows' reports
            cpu_after, rss = proc_stats(process.pid)
            first, close, event = await report_delays(client, producer, window)
            memory = int((await client.info("memory"))["used_memory"]) - before
            streams = 0
            for name in names:
                for key in (Keys(name).predictions, Keys(name).feedback):
                    streams += int(await client.memory_usage(key, samples=0) or 0)
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=60)
            await client.aclose()
    return RunResult(
        models=n_models, events=producer.written, seconds=round(elapsed, 1),
        lag_median=float(np.median(lags)), lag_max=int(max(lags)), drain_s=round(drain, 2),
        reports=len(first) + len(close),
        close_to_report_p50_ms=round(float(np.percentile(close, 50)), 1),
        close_to_report_p99_ms=round(float(np.percentile(close, 99)), 1),
        close_to_report_max_ms=round(float(max(close)), 1),
        first_close_to_report_p50_ms=round(float(np.percentile(first, 50)), 1),
        first_close_to_report_max_ms=round(float(max(first)), 1),
        event_to_report_p50_s=round(float(np.percentile(event, 50)), 2),
        event_to_report_p99_s=round(float(np.percentile(event, 99)), 2),
        redis_memory_mb=round(memory / 1e6, 1), stream_memory_mb=round(streams / 1e6, 1),
        monitor_cpu_s_per_1k=round((cpu_after - cpu_before) / producer.written * 1000, 3),
        monitor_rss_mb=round(rss, 1),
    )


def table(results: list[RunResult]) -> str:
    one, many = results
    rows = [
        ("events written (in s)", f"{one.events} ({one.seconds})", f"{many.events} ({many.seconds})", None),
        ("lag, median / max (entries)", f"{one.lag_median:.0f} / {one.lag_max}",
         f"{many.lag_median:.0f} / {many.lag_max}", None),
        ("drain after the producer stops (s)", f"{one.drain_s}", f"{many.drain_s}", None),
        ("windows reported", f"{one.reports}", f"{many.reports}", None),
        ("close -> report p50 (ms)", f"{one.close_to_report_p50_ms}", f"{many.close_to_report_p50_ms}",
         many.close_to_report_p50_ms / one.close_to_report_p50_ms),
        ("close -> report p99 (ms)", f"{one.close_to_report_p99_ms}", f"{many.close_to_report_p99_ms}",
         many.close_to_report_p99_ms / one.close_to_report_p99_ms),
        ("close -> report max (ms)", f"{one.close_to_report_max_ms}", f"{many.close_to_report_max_ms}", None),
        ("first window: close -> report p50 / max (ms)",
         f"{one.first_close_to_report_p50_ms} / {one.first_close_to_report_max_ms}",
         f"{many.first_close_to_report_p50_ms} / {many.first_close_to_report_max_ms}", None),
        ("event -> report p50 / p99 (s)", f"{one.event_to_report_p50_s} / {one.event_to_report_p99_s}",
         f"{many.event_to_report_p50_s} / {many.event_to_report_p99_s}", None),
        ("Redis memory after the run (MB)", f"{one.redis_memory_mb}", f"{many.redis_memory_mb}",
         many.redis_memory_mb / one.redis_memory_mb),
        ("  of which streams (MB)", f"{one.stream_memory_mb}", f"{many.stream_memory_mb}", None),
        ("monitor CPU s per 1,000 events", f"{one.monitor_cpu_s_per_1k}", f"{many.monitor_cpu_s_per_1k}",
         many.monitor_cpu_s_per_1k / one.monitor_cpu_s_per_1k),
        ("monitor peak RSS (MB)", f"{one.monitor_rss_mb}", f"{many.monitor_rss_mb}",
         many.monitor_rss_mb / one.monitor_rss_mb),
    ]
    lines = [f"| | 1 model | {many.models} models | ratio |", "| --- | --- | --- | --- |"]
    lines += [f"| {a} | {b} | {c} | {'' if r is None else f'{r:.2f}x'} |" for a, b, c, r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--rate", type=float, default=1_000.0, help="events/s in total")
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--window", type=int, default=200, help="DRIFTWATCH_WINDOW_SIZE")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--profile", type=Path, help="run the many-model monitor under cProfile, stats written here")
    parser.add_argument("--only-many", action="store_true", help="skip the one-model run (with --profile, say)")
    args = parser.parse_args()
    workdir = Path(os.environ.get("TMPDIR", "/tmp"))
    results = []
    for n in (args.models,) if args.only_many else (1, args.models):
        print(f"running {n} model(s): {args.rate:.0f} events/s for {args.seconds:.0f} s ...", flush=True)
        profile = args.profile if n == args.models else None
        results.append(asyncio.run(run(n, args.features, args.rate, args.seconds, args.window, workdir, profile)))
        print(json.dumps(asdict(results[-1])), flush=True)
    if len(results) == 2:
        print(table(results))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))


if __name__ == "__main__":
    main()
