"""Serving benchmark: what the model service costs per request, against /livez in the same run.

    .venv/bin/python benchmarks/serve.py [--model-dir DIR] [--duration 3] [--rounds 2]
                                         [--connections 1,32] [--otel on|off] [--profile PHASE[@CONNS]]
                                         [--compare-micro-batch] [--pin]

Starts a private ``redis-server`` and two model services the way production
does (``driftwatch serve``: uvicorn, one worker, no access log, log level
warning, telemetry on unless ``--otel off``): one with publishing on, one with
``DRIFTWATCH_PUBLISH_ENABLED=false``. Trains the digits model into a temp dir
when ``--model-dir`` is not given (~10 s). Drives them with ``wrk`` (installed
with apt-get if missing) on loopback, one wrk thread, at each connection count:

    livez          GET /livez (the floor: the HTTP stack and nothing else)
    predict-off    POST /predict, one sample, publishing off
    predict-on     POST /predict, one sample, every prediction queued for Redis
    batch32-on     POST /predict, 32 samples, publishing on

Servers run with the production defaults (micro-batching on);
``--compare-micro-batch`` adds predict phases against servers with
``DRIFTWATCH_MICRO_BATCH=false`` and prints the gain. ``--profile`` samples the
server with py-spy (``pip install py-spy`` into the venv) during one phase and
writes collapsed stacks.

Phases are interleaved over ``--rounds`` and the best round of each is shown
(the machine is shared: compare ratios from one run, never absolute figures
across runs); the median over rounds of the logging on/off ratio is printed
too. ``--pin`` pins the servers to CPU 0 and this script, ``wrk`` and
``redis-server`` to the others. Pinned on this 2-core machine, 32
connections gained (batch32 +15%, predict +3%: wrk no longer takes the
server's core), but at 1 connection the on/off ratio fell (rounds 0.83-0.92
pinned, 0.91-0.98 unpinned on 2026-11-24): Redis shares wrk's core, and
while it writes a batch the one connection waits. Unpinned is the default.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import psutil
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from driftwatch.local_processes import LocalRedisServer, free_port  # noqa: E402
from shared.keys import Keys  # noqa: E402
from shared.model_metadata import ModelMetadata  # noqa: E402

LUA = ROOT / "benchmarks" / "wrk" / "requests.lua"
BATCH_ROWS = 32


@dataclass(frozen=True)
class Phase:
    name: str
    server: str  # "on" | "off": which server (publishing on or off)
    method: str
    path: str
    rows: int = 0  # 0: no body; 1: {"features": ...}; n: {"instances": [...]}

    @property
    def publishes(self) -> bool:
        return self.server.startswith("on") and self.rows > 0


PHASES = (
    Phase("livez", "on", "GET", "/livez"),
    Phase("predict-off", "off", "POST", "/predict", 1),
    Phase("predict-on", "on", "POST", "/predict", 1),
    Phase("batch32-on", "on", "POST", "/predict", BATCH_ROWS),
)
NO_BATCH_PHASES = (  # with --compare-micro-batch: the same against servers with DRIFTWATCH_MICRO_BATCH=false
    Phase("predict-off-nomb", "off-nomb", "POST", "/predict", 1),
    Phase("predict-on-nomb", "on-nomb", "POST", "/predict", 1),
)


@dataclass
class Result:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    cpu_s: float
    errors: int
    stream_note: str = ""
    stream_failed: bool = False

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_per_req_us(self) -> float:
        return self.cpu_s / max(self.requests, 1) * 1e6


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    ps: psutil.Process = field(init=False)

    def __post_init__(self) -> None:
        self.ps = psutil.Process(self.process.pid)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu(self) -> float:
        t = self.ps.cpu_times()
        return float(t.user + t.system)

    def readyz(self) -> dict[str, object]:
        try:
            with urllib.request.urlopen(self.url + "/readyz", timeout=5) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return json.loads(exc.read())

    def wait_drained(self, timeout_s: float = 30.0) -> dict[str, object]:
        """Wait until the publish queue (and any spill file) is empty; returns the last /readyz body."""
        deadline = time.monotonic() + timeout_s
        while True:
            state = self.readyz()
            detail = state.get("publisher")
            spilled = detail.get("spill_pending", 0) if isinstance(detail, dict) else 0
            if (not state.get("events_queued") and not spilled) or time.monotonic() > deadline:
                return state
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def pin_load_generator() -> set[int] | None:
    """Move this process (and so wrk and redis-server, its children) off the first CPU; return it for the servers."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    os.sched_setaffinity(0, cpus[1:])
    return {cpus[0]}


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk not found: installing it with apt-get (Debian package 'wrk')")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run([*sudo, "apt-get", "install", "-y", "wrk"], check=True, stdout=subprocess.DEVNULL)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is still missing after apt-get install")
    return found


@contextlib.contextmanager
def trained_model(model_dir: Path | None) -> Iterator[Path]:
    if model_dir is not None:
        yield model_dir
        return
    with tempfile.TemporaryDirectory(prefix="driftwatch-bench-model-") as tmp:
        out = Path(tmp) / "model"
        print("training the digits model into a temp dir (~10 s) ...", flush=True)
        code = (
            "import sys; from pathlib import Path\n"
            "from driftwatch.trainer.datasets import load_dataset\n"
            "from driftwatch.trainer.train import TrainConfig, train\n"
            "train(load_dataset('digits'), Path(sys.argv[1]), TrainConfig(epochs=15, seed=0))\n"
        )
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        subprocess.run([sys.executable, "-c", code, str(out)], check=True, cwd=ROOT, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        yield out


def start_server(name: str, model_dir: Path, redis_url: str, publish: bool, otel: bool, log_dir: Path,
                 micro_batch: bool = True) -> Server:
    port = free_port()
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "DRIFTWATCH_MODEL_DIR": str(model_dir),
        "DRIFTWATCH_PUBLISH_ENABLED": "true" if publish else "false",
        "DRIFTWATCH_MICRO_BATCH": "true" if micro_batch else "false",  # true: the production default
        "DRIFTWATCH_STREAM_MAXLEN": "10000000",
        "DRIFTWATCH_SPILL_DIR": str(log_dir / f"spill-{name}"),
        # The production default: telemetry on, OTLP over gRPC. The endpoint is a
        # loopback port nothing listens on, so no one else's Collector gets our data;
        # the exporter runs in its own thread every 60 s and never blocks a request.
        "OTEL_SDK_DISABLED": "false" if otel else "true",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}",
        "OTEL_SEMCONV_STABILITY_OPT_IN": "http",
    }
    env.pop("DRIFTWATCH_API_KEY", None)
    log = (log_dir / f"server-{name}.log").open("wb")
    cmd = [sys.executable, "-m", "driftwatch.cli.main", "serve", "--model-dir", str(model_dir),
           "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(cmd, cwd=log_dir, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = Server(name, port, process)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server {name} exited at start; see {log.name}")
        with contextlib.suppress(OSError, ValueError):
            if server.readyz().get("ready"):
                return server
        time.sleep(0.1)
    server.stop()
    raise SystemExit(f"server {name} not ready after 60 s; see {log.name}")


def write_bodies(model_dir: Path, out_dir: Path) -> dict[int, Path]:
    """Request bodies from the model's held-out rows: 256 single-sample bodies, 32 batches."""
    rows = np.load(model_dir / "holdout.npz")["features"].astype(np.float32)
    files: dict[int, Path] = {}
    single = out_dir / "single.jsonl"
    single.write_bytes(b"\n".join(orjson.dumps({"features": rows[i % len(rows)].tolist()}) for i in range(256)))
    files[1] = single
    batch = out_dir / "batch.jsonl"
    batch.write_bytes(
        b"\n".join(
            orjson.dumps({"instances": rows[(np.arange(BATCH_ROWS) + j * BATCH_ROWS) % len(rows)].tolist()})
            for j in range(32)
        )
    )
    files[BATCH_ROWS] = batch
    return files


def run_wrk(wrk: str, server: Server, phase: Phase, connections: int, seconds: float,
            bodies: dict[int, Path]) -> dict[str, int]:
    args = [wrk, "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s", "-s", str(LUA),
            server.url, "--", phase.method, phase.path]
    if phase.rows:
        args.append(str(bodies[phase.rows]))
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    for line in out.splitlines():
        if line.startswith("WRKJSON "):
            return json.loads(line[len("WRKJSON "):])
    raise RuntimeError(f"wrk printed no summary:\n{out}")


def measure(wrk: str, server: Server, phase: Phase, connections: int, seconds: float,
            bodies: dict[int, Path], stream: redis.Redis, stream_key: str,
            profile: Path | None = None) -> Result:
    before = server.readyz() if phase.publishes else {}
    if phase.publishes:
        stream.delete(stream_key)
    spy = None
    if profile is not None:
        spy = subprocess.Popen(
            [str(Path(sys.executable).parent / "py-spy"), "record", "-p", str(server.process.pid), "-r", "250",
             "-d", str(int(seconds)), "--format", "raw", "-o", str(profile), "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
    cpu0 = server.cpu()
    summary = run_wrk(wrk, server, phase, connections, seconds, bodies)
    after = server.wait_drained() if phase.publishes else {}
    cpu1 = server.cpu()
    if spy is not None:
        spy.wait(timeout=60)
    errors = sum(summary[k] for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts"))
    result = Result(
        requests=summary["requests"],
        seconds=summary["duration_us"] / 1e6,
        p50_ms=summary["p50_us"] / 1e3,
        p99_ms=summary["p99_us"] / 1e3,
        cpu_s=cpu1 - cpu0,
        errors=errors,
    )
    if phase.publishes:
        result.stream_note = check_stream(phase, connections, result, before, after, stream, stream_key)
    return result


def _int(state: dict[str, object], key: str) -> int:
    value = state.get(key, 0)
    return int(value) if isinstance(value, int | float | str) else 0


def check_stream(phase: Phase, connections: int, result: Result, before: dict[str, object],
                 after: dict[str, object], stream: redis.Redis, stream_key: str) -> str:
    """Every prediction answered must be on the stream; wrk abandons at most one
    request per connection at the deadline (answered by the server, not counted by wrk)."""
    xlen = int(stream.xlen(stream_key))
    published = _int(after, "events_published") - _int(before, "events_published")
    dropped = _int(after, "events_dropped") - _int(before, "events_dropped")
    answered = result.requests * phase.rows
    in_flight = xlen - answered
    ok = xlen == published and dropped == 0 and 0 <= in_flight <= connections * phase.rows
    note = f"XLEN {xlen} = {answered} answered + {in_flight} in flight at stop; dropped {dropped}"
    if not ok:
        detail = after.get("publisher")
        reasons = ""
        if isinstance(detail, dict):
            reasons = ", ".join(f"{k} {detail.get(k)}" for k in
                                ("dropped_queue_full", "dropped_spill_full", "spilled", "replayed") if k in detail)
        note = f"FAILED: {note}; published {published}" + (f" ({reasons}, cumulative)" if reasons else "")
        result.stream_failed = True
    return note


def check_ids(server: Server, model_dir: Path, stream: redis.Redis, stream_key: str) -> str:
    """Exact check: every id answered to us is on the stream, once."""
    stream.delete(stream_key)
    rows = np.load(model_dir / "holdout.npz")["features"].astype(np.float32)
    ids: list[str] = []

    def post(body: dict[str, object]) -> dict[str, object]:
        request = urllib.request.Request(server.url + "/predict", data=orjson.dumps(body),
                                         headers={"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as response:
            return orjson.loads(response.read())

    for i in range(50):
        ids.append(str(post({"features": rows[i].tolist()})["prediction_id"]))
    for j in range(2):
        answer = post({"instances": rows[j * BATCH_ROWS:(j + 1) * BATCH_ROWS].tolist()})
        ids += [str(p["prediction_id"]) for p in answer["predictions"]]  # type: ignore[attr-defined]
    server.wait_drained()
    on_stream = [fields[b"id"].decode() for _, fields in stream.xrange(stream_key)]
    if sorted(on_stream) != sorted(ids):
        raise SystemExit(f"id check FAILED: {len(ids)} answered, {len(on_stream)} on the stream")
    stream.delete(stream_key)
    return f"{len(ids)} ids answered, the same {len(on_stream)} on the stream"


def tensorflow_mapped(pid: int) -> list[str]:
    """Shared objects of TensorFlow in the process's memory map (LiteRT's own are not TF)."""
    found = set()
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            path = line.split(maxsplit=5)[-1].strip() if line.count(" ") >= 5 else ""
            if "/site-packages/tensorflow/" in path or "libtensorflow" in path or "/site-packages/keras/" in path:
                found.add(path)
    return sorted(found)


def litert_mapped(pid: int) -> bool:
    with open(f"/proc/{pid}/maps") as maps:
        return any("ai_edge_litert" in line for line in maps)


def memory(pid: int) -> tuple[float, float]:
    """(RSS, peak RSS) in MiB."""
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def print_table(results: dict[tuple[str, int], Result], connections: list[int],
                phases: list[Phase]) -> dict[str, float]:
    header = (f"{'phase':<12} {'conns':>5} {'req/s':>8} {'rows/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
              f"{'CPU us/req':>10} {'x livez':>7} {'p99 x livez':>11} {'CPU x livez':>11}")
    print(header)
    print("-" * len(header))
    ratios: dict[str, float] = {}
    for c in connections:
        base = results[("livez", c)]
        for phase in phases:
            r = results[(phase.name, c)]
            x = r.rps / base.rps
            p99x = r.p99_ms / base.p99_ms if base.p99_ms else float("nan")
            cpux = r.cpu_per_req_us / base.cpu_per_req_us if base.cpu_per_req_us else float("nan")
            rows = r.rps * max(phase.rows, 1)
            err = f"  ERRORS {r.errors}" if r.errors else ""
            print(f"{phase.name:<12} {c:>5} {r.rps:>8.0f} {rows:>8.0f} {r.p50_ms:>7.2f} {r.p99_ms:>7.2f} "
                  f"{r.cpu_per_req_us:>10.0f} {x:>7.2f} {p99x:>11.2f} {cpux:>11.2f}{err}")
            ratios[f"{phase.name}/livez@{c}"] = x
            ratios[f"{phase.name}/livez p99@{c}"] = p99x
        on, off = results[("predict-on", c)], results[("predict-off", c)]
        ratios[f"on/off@{c}"] = on.rps / off.rps
        if ("predict-on-nomb", c) in results:
            on_nomb, off_nomb = results[("predict-on-nomb", c)], results[("predict-off-nomb", c)]
            ratios[f"on-nomb/off-nomb@{c}"] = on_nomb.rps / off_nomb.rps
            ratios[f"micro-batch gain on@{c}"] = on.rps / on_nomb.rps
            ratios[f"micro-batch gain off@{c}"] = off.rps / off_nomb.rps
            print(f"micro-batching @{c}: predict-on {on.rps / on_nomb.rps:.2f}x, "
                  f"predict-off {off.rps / off_nomb.rps:.2f}x the same without it")
        print()
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per load phase")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds; the best round is shown")
    parser.add_argument("--connections", default="1,32")
    parser.add_argument("--otel", choices=("on", "off"), default="on", help="telemetry (production default: on)")
    parser.add_argument("--phases", default=",".join(p.name for p in PHASES))
    parser.add_argument("--profile", default=None,
                        help="PHASE[@CONNS]: py-spy record the server during that phase (last round)")
    parser.add_argument("--compare-micro-batch", action="store_true",
                        help="also run the predict phases against servers with micro-batching off")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--pin", action="store_true", help="servers on CPU 0, wrk and redis-server on the others")
    args = parser.parse_args()

    wrk = ensure_wrk()
    server_cpus = pin_load_generator() if args.pin else None
    connections = [int(c) for c in args.connections.split(",")]
    chosen = set(args.phases.split(",")) | {"livez"}
    phases = [p for p in PHASES if p.name in chosen]
    if args.compare_micro_batch:
        phases += NO_BATCH_PHASES
    profile_phase, _, profile_conns = (args.profile or "").partition("@")
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="driftwatch-bench-")))
        model_dir = stack.enter_context(trained_model(args.model_dir)).resolve()
        keys = Keys(ModelMetadata.load(model_dir).name)
        redis_server = stack.enter_context(LocalRedisServer())
        stream = redis.Redis.from_url(redis_server.url)
        stack.callback(stream.close)
        otel = args.otel == "on"
        servers = {
            "on": start_server("on", model_dir, redis_server.url, True, otel, work),
            "off": start_server("off", model_dir, redis_server.url, False, otel, work),
        }
        if args.compare_micro_batch:
            servers["on-nomb"] = start_server("on-nomb", model_dir, redis_server.url, True, otel, work, False)
            servers["off-nomb"] = start_server("off-nomb", model_dir, redis_server.url, False, otel, work, False)
        for server in servers.values():
            stack.callback(server.stop)
            if server_cpus is not None:
                os.sched_setaffinity(server.process.pid, server_cpus)
        bodies = write_bodies(model_dir, work)
        pinning = "no CPU pinning"
        if server_cpus is not None:
            pinning = f"servers on CPU {sorted(server_cpus)}, wrk and redis on CPU {sorted(os.sched_getaffinity(0))}"
        print(f"model {model_dir}; redis {redis_server.url}; telemetry {args.otel}; "
              f"{args.duration:g} s per phase, {args.rounds} round(s), wrk -t1; {pinning}")
        for phase in phases:  # warm-up: imports, allocations, interpreter resizes
            run_wrk(wrk, servers[phase.server], phase, max(connections), 1, bodies)
            servers[phase.server].wait_drained()

        best: dict[tuple[str, int], Result] = {}
        notes: dict[tuple[str, int], str] = {}
        all_rounds: dict[tuple[str, int], list[float]] = {}
        for round_no in range(args.rounds):
            for c in connections:
                for phase in phases:
                    profile = None
                    if (phase.name == profile_phase and round_no == args.rounds - 1
                            and (not profile_conns or int(profile_conns) == c)):
                        profile = Path(f"profile-{phase.name}-c{c}.txt").resolve()
                    r = measure(wrk, servers[phase.server], phase, c, args.duration, bodies, stream,
                                keys.predictions, profile)
                    key = (phase.name, c)
                    all_rounds.setdefault(key, []).append(r.rps)
                    if key not in best or r.rps > best[key].rps:
                        best[key] = r
                    if r.stream_note:
                        notes[key] = r.stream_note if not notes.get(key, "").startswith("FAILED") else notes[key]
                    if profile is not None:
                        print(f"  profile of {phase.name} c={c}: {profile}")

        ids_note = check_ids(servers["on"], model_dir, stream, keys.predictions)
        print()
        if {p.name for p in PHASES} <= chosen:
            ratios = print_table(best, connections, phases)
        else:
            ratios = {}
            for key, r in best.items():
                print(f"{key[0]:<12} c={key[1]:<3} {r.rps:8.0f} req/s  p50 {r.p50_ms:.2f} ms  "
                      f"p99 {r.p99_ms:.2f} ms  CPU {r.cpu_per_req_us:.0f} us/req")
        spread = {f"{k[0]}@{k[1]}": [round(v) for v in vs] for k, vs in all_rounds.items()}
        print("req/s per round:", ", ".join(f"{k} {v}" for k, v in spread.items()))
        for c in connections:
            on_rounds, off_rounds = all_rounds.get(("predict-on", c)), all_rounds.get(("predict-off", c))
            if on_rounds and off_rounds:
                paired = [on / off for on, off in zip(on_rounds, off_rounds, strict=True)]
                print(f"predict-on / predict-off @{c}, median of the rounds' ratios: {statistics.median(paired):.2f} "
                      f"(rounds {', '.join(f'{r:.2f}' for r in paired)})")
        stream_failures = 0
        for key, note in notes.items():
            print(f"stream after {key[0]} c={key[1]}: {note}")
            stream_failures += note.startswith("FAILED")
        print(f"stream ids: {ids_note}")
        for name, server in servers.items():
            rss, peak = memory(server.process.pid)
            tf = tensorflow_mapped(server.process.pid)
            print(f"server {name}: RSS {rss:.0f} MiB (peak {peak:.0f} MiB); "
                  f"LiteRT mapped: {litert_mapped(server.process.pid)}; "
                  f"TensorFlow mapped: {'YES ' + tf[0] if tf else 'no'}")
        if ratios:
            checks = []
            for c in connections:
                checks.append((f"predict-on / predict-off >= 0.90 @{c}", ratios[f"on/off@{c}"], 0.90, True))
                checks.append((f"predict-on / livez >= 0.60 @{c}", ratios[f"predict-on/livez@{c}"], 0.60, True))
            if 32 in connections:
                checks.append(("predict-on p99 / livez p99 < 2 @32", ratios["predict-on/livez p99@32"], 2.0, False))
            print()
            for label, value, bound, at_least in checks:
                ok = value >= bound if at_least else value < bound
                print(f"{'PASS' if ok else 'FAIL'}  {label}: {value:.2f}")
        if args.json:
            args.json.write_text(json.dumps(
                {f"{k[0]}@{k[1]}": {**vars(v), "rps": v.rps, "cpu_per_req_us": v.cpu_per_req_us}
                 for k, v in best.items()} | {"ratios": ratios}, indent=1, default=str))
        if stream_failures:
            print(f"FAIL  the stream missed events in {stream_failures} phase(s) (see above)")
        if statistics.mean(r.errors for r in best.values()):
            raise SystemExit("some requests failed (see ERRORS above)")


if __name__ == "__main__":
    main()
