"""What numba's weight buys in the image: the image with it against the one without.

    .venv/bin/python benchmarks/image_numba.py [--with driftwatch:local] [--without driftwatch:lean]

Both images come from the same Dockerfile (the second built with
``--build-arg NUMBA=0``: no numba, no llvmlite). Each runs, as the deployments
do (read-only root file system, only /tmp writable), the monitor's detector
(``drift_config`` of the default ``MonitorSettings``) on fresh windows of one
size: WARM windows first (kernels compiled, p-value caches filled), then
ROUNDS rounds of a few timed windows in each container in turn, so that both
see the same load on a shared machine. Printed: each image's size, its
engine, the median and the fastest warm milliseconds per window, and the
ratio without / with numba from this one run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from statistics import median

IN_IMAGE = """
import json, sys, time
import numpy as np
from monitor.drift import DriftDetector
from monitor.drift._kernels import HAVE_NUMBA
from monitor.monitor_settings import MonitorSettings
from monitor.reports import drift_config

F, N, M, WARM = {features}, {ref}, {window}, {warm}
rng = np.random.default_rng(0)
detector = DriftDetector(rng.normal(size=(N, F)), [f"f{{i}}" for i in range(F)], drift_config(MonitorSettings()))
detector.prepare()
for _ in range(WARM):
    detector.test(rng.normal(size=(M, F)))
print(json.dumps({{"numba": HAVE_NUMBA}}), flush=True)
for line in sys.stdin:  # one line per round: how many windows to time
    times = []
    for _ in range(int(line)):
        window = rng.normal(size=(M, F))
        t0 = time.perf_counter()
        detector.test(window)
        times.append(time.perf_counter() - t0)
    print(json.dumps(times), flush=True)
"""


class Container:
    """One image running the detector, timing windows when asked."""

    def __init__(self, image: str, code: str) -> None:
        self.image = image
        self.mb = int(docker("image", "inspect", image, "--format", "{{.Size}}").strip()) / 1e6
        self.proc = subprocess.Popen(
            ["docker", "run", "--rm", "-i", "--read-only", "--tmpfs", "/tmp", image, "python", "-c", code],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.numba = bool(json.loads(self.readline())["numba"])
        self.times: list[float] = []

    def readline(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.image} stopped (exit {self.proc.wait()})")
        return line

    def run(self, windows: int) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{windows}\n")
        self.proc.stdin.flush()
        self.times += json.loads(self.readline())

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True, timeout=1800).stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--with", dest="with_numba", default="driftwatch:local")
    ap.add_argument("--without", dest="without_numba", default="driftwatch:lean")
    ap.add_argument("--features", type=int, default=64)
    ap.add_argument("--ref", type=int, default=10_000)
    ap.add_argument("--window", type=int, default=1_000)
    ap.add_argument("--warm", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--per-round", type=int, default=5)
    args = ap.parse_args()
    code = IN_IMAGE.format(features=args.features, ref=args.ref, window=args.window, warm=args.warm)
    fast, slow = Container(args.with_numba, code), Container(args.without_numba, code)
    try:
        for _ in range(args.rounds):
            fast.run(args.per_round)
            slow.run(args.per_round)
    finally:
        fast.close()
        slow.close()
    print(f"F={args.features}, {args.ref} x {args.window}, {args.rounds} x {args.per_round} warm windows each, "
          "interleaved")  # fmt: skip
    print(f"{'image':24s} {'MB':>6s} {'engine':>6s} {'median ms':>10s} {'fastest ms':>11s}")
    for c in (fast, slow):
        engine = "numba" if c.numba else "numpy"
        print(f"{c.image:24s} {c.mb:6.0f} {engine:>6s} {1e3 * median(c.times):10.1f} {1e3 * min(c.times):11.1f}")
    print(
        f"without numba: {median(slow.times) / median(fast.times):.1f}x the median time per window "
        f"({min(slow.times) / min(fast.times):.1f}x the fastest), {fast.mb - slow.mb:.0f} MB less image"
    )


if __name__ == "__main__":
    main()
