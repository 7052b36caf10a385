"""Drift engine benchmark: ours vs a scipy loop vs Alibi Detect vs Evidently, one run.

    .venv/bin/python benchmarks/drift.py [--quick] [--peers-venv PATH] [--no-peers]

Same data for everyone (peers get it as .npy files and run in their own
virtualenv, built by benchmarks/peers/setup.sh; missing venv -> peers are
skipped with a message). Prints time, ratio to ours and whether the
per-feature drift decisions (Bonferroni, alpha = 0.05) agree. Compare ratios
from one run, never absolute times across runs (the machine is shared).

"ours" is DriftDetector.test with p_values="drifted" (the decision via cached
critical values; p-values only for drifted features); "ours+p" reports every
p-value as well. Our decisions use scipy's method='auto' (exact up to 10k
rows); Alibi Detect always uses the asymptotic p-value, so its decisions are
compared with ours under ks_method="asymp".
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.stats import ks_2samp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.drift import DriftConfig, DriftDetector
from monitor.drift.ks import SortedReference
from monitor.drift.sliding import SlidingKS

ALPHA = 0.05
RUNNER = Path(__file__).resolve().parent / "peers" / "runner.py"


def make_data(f: int, n_ref: int, n_win: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Normal features; 5% of them shifted by 0.2 std in the window."""
    rng = np.random.default_rng(seed)
    ref = rng.normal(size=(n_ref, f))
    win = rng.normal(size=(n_win, f))
    shifted = rng.choice(f, max(1, f // 20), replace=False)
    win[:, shifted] += 0.2
    return ref, win


def best_of(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def peers(venv: Path | None, data_dir: str, args: list[str], timeout: float) -> dict | None:
    if venv is None:
        return None
    try:
        out = subprocess.run(
            [str(venv / "bin" / "python"), str(RUNNER), data_dir, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )
        return json.loads(out.stdout)  # type: ignore[no-any-return]
    except subprocess.TimeoutExpired:
        print(f"    peers timed out after {timeout:.0f}s ({args})")
    except (subprocess.CalledProcessError, json.JSONDecodeError) as exc:
        print(f"    peers failed: {exc}")
    return None


def row(name: str, t: float | None, ours: float, agree: str) -> None:
    if t is None:
        print(f"    {name:<12} {'skipped':>10}")
        return
    print(f"    {name:<12} {t * 1e3:>10.1f} ms {t / ours:>9.1f}x   decisions: {agree}")


def agree(a: np.ndarray, b: np.ndarray) -> str:
    diff = int((a != b).sum())
    return "identical" if diff == 0 else f"{diff} feature(s) differ"


def run_case(f: int, n_ref: int, n_win: int, venv: Path | None, timeout: float) -> None:
    print(f"\nF={f}  reference={n_ref}  window={n_win}")
    ref, win = make_data(f, n_ref, n_win, seed=f + n_ref + n_win)
    names = [f"f{i}" for i in range(f)]
    det = DriftDetector(ref, names, DriftConfig(alpha=ALPHA, p_values="drifted"))
    det_p = DriftDetector(ref, names, DriftConfig(alpha=ALPHA, p_values="all"))
    det_a = DriftDetector(ref, names, DriftConfig(alpha=ALPHA, p_values="drifted", ks_method="asymp"))
    det.test(win[:50])  # nothing to warm but imports; critical values are per window size
    repeat = 3 if n_win * f <= 10_000 * 64 else 1
    t0 = time.perf_counter()
    first = det.test(win)  # includes the one-off critical value for this window size
    t_first = time.perf_counter() - t0
    t_ours = best_of(lambda: det.test(win), repeat)
    ours_dec = np.array([x.drifted for x in first.features])
    t_ours_p = best_of(lambda: det_p.test(win), 1)
    asymp_dec = np.array([x.drifted for x in det_a.test(win).features])

    def scipy_loop() -> np.ndarray:
        return np.array([ks_2samp(ref[:, i], win[:, i]).pvalue for i in range(f)])

    t0 = time.perf_counter()
    p_scipy = scipy_loop()
    t_scipy = time.perf_counter() - t0
    print(f"    {'ours':<12} {t_ours * 1e3:>10.1f} ms {1.0:>9.1f}x   "
          f"(first window {t_first * 1e3:.0f} ms incl. critical value; drifted {int(ours_dec.sum())})")
    row("ours+p", t_ours_p, t_ours, "same detector")
    row("scipy loop", t_scipy, t_ours, agree(p_scipy < ALPHA / f, ours_dec))
    if venv is None:
        return
    with tempfile.TemporaryDirectory() as tmp:
        np.save(os.path.join(tmp, "ref.npy"), ref)
        np.save(os.path.join(tmp, "win.npy"), win)
        res = peers(venv, tmp, ["--alpha", str(ALPHA), "--peers", "alibi"], timeout) or {}
        al = res.get("alibi")
        row("alibi-detect", al and al["time"], t_ours,
            al and agree(np.array(al["p_values"]) < ALPHA / f, asymp_dec) + " (vs ours asymp)")
        res = peers(venv, tmp, ["--alpha", str(ALPHA), "--peers", "evidently"], timeout) or {}
        ev = res.get("evidently")
        row("evidently", ev and ev["time"], t_ours,
            ev and agree(np.array(ev["p_values"]) < ALPHA / f, ours_dec))


def run_sliding(f: int, n_ref: int, m: int, step: int, venv: Path | None, timeout: float) -> None:
    print(f"\nSliding: F={f} reference={n_ref} window={m}, step of {step} new rows")
    rng = np.random.default_rng(1)
    ref = rng.normal(size=(n_ref, f))
    n_steps = 5
    stream = rng.normal(size=(m + n_steps * step, f))
    sref = SortedReference(ref)
    sk = SlidingKS(sref, stream[:m])
    t0 = time.perf_counter()
    for s in range(1, n_steps + 1):
        sk.step(stream[m + (s - 1) * step : m + s * step])
        sk.drifted(ALPHA)
    t_ours = (time.perf_counter() - t0) / n_steps
    det = DriftDetector(ref, [f"f{i}" for i in range(f)], DriftConfig(p_values="drifted"))
    t_full = best_of(lambda: det.test(stream[-m:]), 2)
    print(f"    {'ours step':<12} {t_ours * 1e3:>10.1f} ms {1.0:>9.1f}x")
    row("ours full", t_full, t_ours, "recompute with DriftDetector.test")
    if venv is None:
        return
    with tempfile.TemporaryDirectory() as tmp:
        np.save(os.path.join(tmp, "ref.npy"), ref)
        np.save(os.path.join(tmp, "win.npy"), stream[:m])
        np.save(os.path.join(tmp, "stream.npy"), stream)
        res = peers(venv, tmp, ["--sliding", str(step)], timeout) or {}
        al = res.get("alibi_sliding")
        row("alibi recomp", al and al["time_per_step"], t_ours, "n/a (timing only)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="F=64, 10k x 10k and the sliding case")
    ap.add_argument("--peers-venv", default=os.environ.get("DRIFTWATCH_PEERS_VENV", "/tmp/driftwatch-peers-venv"))
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--peer-timeout", type=float, default=600.0)
    args = ap.parse_args()
    venv: Path | None = Path(args.peers_venv)
    if args.no_peers or not (venv / "bin" / "python").exists():
        print(f"peers skipped: no venv at {venv} (build it with bash benchmarks/peers/setup.sh)")
        venv = None
    if args.quick:
        cases = [(64, 10_000, 10_000)]
    else:
        cases = [(f, r, w) for f in (64, 256) for r in (10_000, 100_000) for w in (1_000, 10_000, 100_000)]
    for f, r, w in cases:
        run_case(f, r, w, venv, args.peer_timeout)
    run_sliding(64, 10_000, 10_000, 1_000, venv, args.peer_timeout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
