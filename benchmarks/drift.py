"""Drift engine benchmark: the monitor's own detector vs a scipy loop, Alibi Detect, Evidently.

    .venv/bin/python benchmarks/drift.py [--quick] [--sliding-only] [--peers-venv PATH] [--no-peers]

The first rows of every case time the configuration the monitor runs: the
``DriftConfig`` built by ``monitor.reports.drift_config`` from
``MonitorSettings`` (the environment's ``DRIFTWATCH_*``; by default
Bonferroni at 0.05, every KS p-value reported as scipy's ``method='auto'``
computes it):

- "default warm": the detector kept as the monitor keeps it, in steady state:
  a stream of fresh windows (new data each, same size), timed after
  WARM_WINDOWS of them have filled the p-value cache; median of TIMED_WINDOWS.
- "1 thread": "default warm" with ``threads=1`` (``DRIFTWATCH_DRIFT_THREADS=1``;
  the default uses every core numba sees): what the threads buy on this machine.
- "default cold": the first window of a new size: p-value and critical-value
  caches cleared, a new detector (its reference preparation, done once at
  registration: the constructor and ``prepare()``, the multivariate test's
  null draws, is timed apart as "build") that was not told the size
  (``window_size=None``); the size's effect floors, KS critical value and
  multivariate threshold are in it.
- "first window": the first window the monitor's count windows test: the
  same, with the detector told the size (``DriftConfig.window_size``, as
  ``drift_config`` sets it from ``DRIFTWATCH_WINDOW_SIZE``), so ``prepare()``
  ("build") computed that size's floors, critical value and threshold; what
  is left are the window's own p-values (exact ones cached per statistic).

"Time windows" (``DRIFTWATCH_WINDOW_MODE=time``) hold a different number of
rows each: a stream of windows of distinct sizes (900-1,100 rows, every one
a new size), median per window after the first few, of the detector the
monitor builds for them (effect floors from a grid of sizes, rescaled:
``floor_sizes="grid"``) against the same detector with floors at each
window's exact size (what it did before: floors recomputed every window).

"Sliding" rows: one report of a sliding window, ``MonitorSettings`` with
``DRIFTWATCH_WINDOW_MODE=sliding`` (default sizes: 10,000 rows stepped by
1,000), stepped (``SlidingKS``) and tested whole, on the same windows; the
monitor's path is the one ``monitor.drift.sliding.incremental_pays`` picks
(see :func:`run_sliding`). ``--sliding-only`` runs these alone, at the
defaults and at other sizes. Before 2026-12-02 this row timed
``SlidingKS.step`` with ``p_values="drifted"``, which is not what the monitor
runs (it reports every p-value).

"drifted-only" is the same detector with ``p_values="drifted"`` (decision by
cached critical values, p-values for drifted features only), warm. "nulls in
k" is the default detector, warm, on the same windows with 5% of the values
of k features missing (NaN), the path of ``monitor/drift/missing.py``: each
such feature has its own sample size, so exact p-values are cached less.

Data in the form the monitor holds it: the reference float32 (as
``shared.model_metadata.Reference`` loads it; ``monitor.model_kinds.detector_reference``
passes it on), and each window float32 as the monitor hands it to
``DriftDetector.test``: the feature columns of its stored rows, which end
with the row's predicted class (``monitor.window_state.window_rows`` packs
them, ``split_window_rows`` splits them: a strided read-only view of the
stored bytes). Before 2026-12-02 this benchmark fed float64 arrays, which
the product never sees. The scipy loop and the peers get the same values,
float32 (peers as .npy files, run in their own virtualenv, built by
benchmarks/peers/setup.sh; missing venv -> peers are skipped with a message).
Ratios are peer time / ours from this one run.
Our decisions use scipy's method='auto' (exact up to 10k rows); Alibi
Detect always uses the asymptotic p-value, so its decisions are compared
with ours under ks_method="asymp".
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import ks_2samp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.drift import DriftConfig, DriftDetector, sliding
from monitor.drift.ks import ks_critical_h, ks_pvalue_h
from monitor.drift.sliding import incremental_pays
from monitor.monitor_settings import MonitorSettings
from monitor.reports import drift_config
from monitor.window_state import split_window_rows, window_rows
from monitor.windows import WindowPolicy

RUNNER = Path(__file__).resolve().parent / "peers" / "runner.py"
# Evidently runs ~100-1000x slower than ours: above this many values
# (F * (n_ref + n_win)) it would take minutes per case, so it is skipped with
# a message (--evidently-max-values raises the bound).
EVIDENTLY_MAX_VALUES = 64 * 220_000
SUMMARY: list[dict[str, object]] = []
WARM_WINDOWS = 20
TIMED_WINDOWS = 9


def as_monitor_window(x: np.ndarray) -> np.ndarray:
    """``x`` as the monitor hands a window to the detector: rows packed as the stream's
    float32 feature bytes plus the predicted class, sliced per row, split again."""
    features = x.astype(np.float32)
    packed = window_rows([r.tobytes() for r in features], np.zeros(len(features), dtype=np.int64))
    width = len(packed) // len(features)
    window, _ = split_window_rows([packed[i : i + width] for i in range(0, len(packed), width)], x.shape[1])
    return window


def make_data(
    f: int, n_ref: int, n_win: int, seed: int, n_windows: int = 1
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Normal features; the same 5% of them shifted by 0.2 sd in every window. The
    reference float32, the windows as the monitor holds them (see the module docstring)."""
    rng = np.random.default_rng(seed)
    ref = rng.normal(size=(n_ref, f)).astype(np.float32)
    shifted = rng.choice(f, max(1, f // 20), replace=False)
    wins = []
    for _ in range(n_windows):
        win = rng.normal(size=(n_win, f))
        win[:, shifted] += 0.2
        wins.append(as_monitor_window(win))
    return ref, wins


def best_of(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def peers(venv: Path | None, data_dir: str, args: list[str], timeout: float) -> dict[str, Any] | None:
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
        result: dict[str, Any] = json.loads(out.stdout)
        return result
    except subprocess.TimeoutExpired:
        print(f"    peers timed out after {timeout:.0f}s ({args})")
    except (subprocess.CalledProcessError, json.JSONDecodeError) as exc:
        print(f"    peers failed: {exc}")
    return None


def row(name: str, t: float | None, ours: float, agree: str | None) -> None:
    if t is None:
        print(f"    {name:<14} {'skipped':>10}")
        return
    print(f"    {name:<14} {t * 1e3:>10.1f} ms {t / ours:>9.1f}x   decisions: {agree}")


def agree(a: np.ndarray, b: np.ndarray) -> str:
    diff = int((a != b).sum())
    return "identical" if diff == 0 else f"{diff} feature(s) differ"


def clear_caches() -> None:
    """Forget every cached p-value and critical value: the state of a new window size.

    The compiled kernels are loaded first: numba compiles (or loads) them once
    per process, not once per window size.
    """
    ks_pvalue_h(7, 3, 5)
    ks_pvalue_h(4, 4, 2)
    ks_pvalue_h.cache_clear()
    ks_critical_h.cache_clear()


def time_default(
    ref: np.ndarray, wins: list[np.ndarray], names: list[str], config: DriftConfig
) -> tuple[float, float, float, np.ndarray]:
    """(build, cold, warm) seconds of the monitor's detector, and its decisions on wins[0].

    "build" is what the monitor pays once per model version when it registers
    (the constructor and ``prepare()``: the multivariate null's draws, and with
    ``config.window_size`` that size's floors and critical values); "cold" the
    first window after that (without ``window_size``: a new size, its critical
    values, p-value caches and effect floors)."""
    clear_caches()
    t0 = time.perf_counter()
    det = DriftDetector(ref, names, config)
    det.prepare()
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    first = det.test(wins[0])
    t_cold = time.perf_counter() - t0
    for w in wins[1 : 1 + WARM_WINDOWS]:
        det.test(w)
    times = []
    for w in wins[1 + WARM_WINDOWS :]:
        t0 = time.perf_counter()
        det.test(w)
        times.append(time.perf_counter() - t0)
    return t_build, t_cold, float(np.median(times)), np.array([x.drifted for x in first.features])


def time_missing(
    ref: np.ndarray, wins: list[np.ndarray], names: list[str], config: DriftConfig, columns: int
) -> float:
    """Warm median seconds of the default detector on the same windows with 5% of the values
    of ``columns`` features missing (NaN): the path of monitor/drift/missing.py."""
    rng = np.random.default_rng(columns)
    holed = []
    for w in wins:
        w = w.copy()
        mask = rng.random(w.shape) < 0.05
        mask[:, columns:] = False
        w[mask] = np.nan
        holed.append(w)
    det = DriftDetector(ref, names, config)
    det.prepare()
    for w in holed[: 1 + WARM_WINDOWS]:
        det.test(w)
    times = []
    for w in holed[1 + WARM_WINDOWS :]:
        t0 = time.perf_counter()
        det.test(w)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def run_case(
    f: int, n_ref: int, n_win: int, venv: Path | None, timeout: float, ev_max: int
) -> None:
    print(f"\nF={f}  reference={n_ref}  window={n_win}")
    ref, wins = make_data(f, n_ref, n_win, seed=f + n_ref + n_win, n_windows=1 + WARM_WINDOWS + TIMED_WINDOWS)
    win = wins[0]
    names = [f"f{i}" for i in range(f)]
    monitor_config = drift_config(MonitorSettings())
    config = monitor_config.model_copy(update={"window_size": None})  # cold: a size it was not told
    t_build, t_cold, t_warm, ours_dec = time_default(ref, wins, names, config)
    t_build_sized, t_first, _, first_dec = time_default(ref, wins, names,
                                                         monitor_config.model_copy(update={"window_size": n_win}))
    assert np.array_equal(first_dec, ours_dec)
    _, _, t_one, _ = time_default(ref, wins, names, config.model_copy(update={"threads": 1}))
    det = DriftDetector(ref, names, config.model_copy(update={"p_values": "drifted"}))
    det.test(win)
    repeat = 5 if n_win * f <= 10_000 * 64 else 2
    t_drifted = best_of(lambda: det.test(win), repeat)
    det_a = DriftDetector(ref, names, config.model_copy(update={"ks_method": "asymp"}))
    asymp_dec = np.array([x.drifted for x in det_a.test(win).features])

    def scipy_loop() -> np.ndarray:
        return np.array([ks_2samp(ref[:, i], win[:, i]).pvalue for i in range(f)])

    t0 = time.perf_counter()
    p_scipy = scipy_loop()
    t_scipy = time.perf_counter() - t0
    print(f"    monitor default: {config.correction} alpha={config.alpha} p_values={config.p_values} "
          f"ks_method={config.ks_method}; build {t_build * 1e3:.0f} ms ({t_build_sized * 1e3:.0f} ms told "
          f"the window size); drifted {int(ours_dec.sum())}")
    print(f"    {'default warm':<14} {t_warm * 1e3:>10.1f} ms {1.0:>9.1f}x")
    row("default cold", t_cold, t_warm, "same detector, caches cleared")
    row("first window", t_first, t_warm, "same, its size prepared in build (count windows)")
    row("1 thread", t_one, t_warm, "same config with DRIFTWATCH_DRIFT_THREADS=1, warm")
    row("drifted-only", t_drifted, t_warm, "same decisions")
    for label, columns in (("nulls in 4", 4), (f"nulls in {f}", f)):
        row(label, time_missing(ref, wins, names, config, columns), t_warm, "n/a, 5% NaN in such features")
    scipy_agree = agree(p_scipy < config.alpha / f, ours_dec)
    row("scipy loop", t_scipy, t_warm, scipy_agree)
    entry: dict[str, object] = {
        "case": f"F={f} ref={n_ref // 1000}k win={n_win // 1000}k", "ours": t_warm, "cold": t_cold,
        "first": t_first,
        "one_thread": t_one, "drifted": t_drifted, "scipy": t_scipy, "scipy_agree": scipy_agree,
    }
    SUMMARY.append(entry)
    if venv is None:
        return
    with tempfile.TemporaryDirectory() as tmp:
        np.save(os.path.join(tmp, "ref.npy"), ref)
        np.save(os.path.join(tmp, "win.npy"), win)
        res = peers(venv, tmp, ["--alpha", str(config.alpha), "--peers", "alibi", "--repeat", str(repeat)],
                    timeout) or {}
        al = res.get("alibi")
        if al:
            entry["alibi"] = al["time"]
            entry["alibi_agree"] = agree(np.array(al["p_values"]) < config.alpha / f, asymp_dec)
        row("alibi-detect", al and al["time"], t_warm,
            al and str(entry["alibi_agree"]) + " (vs ours asymp)")
        if al:
            print(f"    {'':<14} Alibi / default: warm {al['time'] / t_warm:.1f}x, cold {al['time'] / t_cold:.1f}x, "
                  f"first window {al['time'] / t_first:.1f}x")
        if ev_max <= 0:
            print(f"    {'evidently':<14} {'skipped':>10}   (--evidently-max-values 0)")
            return
        if f * (n_ref + n_win) > ev_max:
            print(f"    {'evidently':<14} {'skipped':>10}   (~{f * (n_ref + n_win) / ev_max:.0f}x the "
                  "largest case it runs in about a minute; --evidently-max-values to force)")
            return
        res = peers(venv, tmp, ["--alpha", str(config.alpha), "--peers", "evidently"], timeout) or {}
        ev = res.get("evidently")
        if ev:
            entry["evidently"] = ev["time"]
            entry["evidently_agree"] = agree(np.array(ev["p_values"]) < config.alpha / f, ours_dec)
        row("evidently", ev and ev["time"], t_warm, ev and str(entry["evidently_agree"]))


def run_time_windows(f: int, n_ref: int, n_windows: int = 24) -> None:
    """Per-window cost of time windows (distinct sizes, 900-1,100 rows): the monitor's detector
    for them (floors on a grid of sizes) against floors at every exact size, same windows."""
    print(f"\nTime windows: F={f} reference={n_ref}, {n_windows} windows of distinct sizes in 900-1100 rows")
    rng = np.random.default_rng(f + 3)
    ref = rng.normal(size=(n_ref, f)).astype(np.float32)
    sizes = rng.choice(np.arange(900, 1_101), size=n_windows, replace=False)
    wins = [as_monitor_window(rng.normal(size=(int(m), f))) for m in sizes]
    names = [f"f{i}" for i in range(f)]
    config = drift_config(MonitorSettings(DRIFTWATCH_WINDOW_MODE="time"))  # type: ignore[call-arg]
    results = {}
    for label, cfg in (("grid floors", config), ("exact floors", config.model_copy(update={"floor_sizes": "exact"}))):
        clear_caches()
        det = DriftDetector(ref, names, cfg)
        det.prepare()
        times = []
        for w in wins:
            t0 = time.perf_counter()
            det.test(w)
            times.append(time.perf_counter() - t0)
        skip = 4  # the first windows compute the grid's few sizes
        results[label] = (float(np.median(times[skip:])), det.floor_computations)
    t_grid, n_grid = results["grid floors"]
    t_exact, n_exact = results["exact floors"]
    print(f"    {'grid floors':<14} {t_grid * 1e3:>10.1f} ms {1.0:>9.1f}x   floor sizes computed: {n_grid}")
    row("exact floors", t_exact, t_grid, f"n/a; floor sizes computed: {n_exact}")
    SUMMARY.append({"case": f"time windows F={f} ref={n_ref // 1000}k win=0.9-1.1k", "ours": t_grid,
                    "ours_full": t_exact})


def sliding_settings(size: int | None = None, step: int | None = None) -> MonitorSettings:
    """``DRIFTWATCH_WINDOW_MODE=sliding`` with the monitor's default sizes, or the ones given."""
    env: dict[str, object] = {"DRIFTWATCH_WINDOW_MODE": "sliding"}
    if size is not None:
        env["DRIFTWATCH_SLIDING_SIZE"] = size
    if step is not None:
        env["DRIFTWATCH_WINDOW_SIZE"] = step
    return MonitorSettings(**env)  # type: ignore[arg-type]


def run_sliding(
    f: int, n_ref: int, settings: MonitorSettings, venv: Path | None, timeout: float, n_steps: int = 9
) -> None:
    """One report of a sliding window (``DRIFTWATCH_WINDOW_MODE=sliding``, sizes from ``settings``),
    both ways the monitor's reporter (``DriftReporter.report_window``) can make it, on the same
    windows: "stepped", the new step's numeric columns moved into the detector's ``SlidingKS``
    state, the steps' rows concatenated, ``detector.test_sliding``; "whole", the steps' rows
    concatenated, ``detector.test``. The monitor's path is the one ``incremental_pays`` picks
    for these sizes (the product's rule, called here); Alibi Detect recomputes each window.

    The detector is the monitor's: ``drift_config(settings)`` (every KS p-value, effect floors
    and the multivariate test at the window's size, prepared when built), with reference classes
    for the prediction-drift test; windows float32 as the monitor holds them. Each window is
    timed both ways in turn, after 3 warm-up windows; medians of ``n_steps``.
    """
    policy = WindowPolicy.from_settings(settings)
    m, step = policy.size, policy.step
    config = drift_config(settings)
    print(f"\nSliding: F={f} reference={n_ref} window={m} (DRIFTWATCH_SLIDING_SIZE), step of {step} new rows "
          f"(DRIFTWATCH_WINDOW_SIZE); p_values={config.p_values} correction={config.correction}")
    rng = np.random.default_rng(f + n_ref + m + step)
    ref = rng.normal(size=(n_ref, f)).astype(np.float32)
    ref_classes = rng.integers(0, 10, size=n_ref)
    shifted = rng.choice(f, max(1, f // 20), replace=False)
    warm = 3
    n_rows = m + (warm + n_steps) * step
    raw = rng.normal(size=(n_rows, f))
    raw[m:, shifted] += 0.2  # the stream drifts in 5% of the features after the first window
    stream = as_monitor_window(raw)
    classes = rng.integers(0, 10, size=n_rows)
    det = DriftDetector(ref, [f"f{i}" for i in range(f)], config, reference_classes=ref_classes, n_classes=10)
    det.prepare()
    steps = deque(stream[j : j + step] for j in range(0, m, step))
    step_classes = deque(classes[j : j + step] for j in range(0, m, step))
    state = det.sliding(np.concatenate(steps))
    assert state is not None
    t_inc, t_full, same = [], [], True
    for s in range(warm + n_steps):
        new = slice(m + s * step, m + (s + 1) * step)
        t0 = time.perf_counter()
        state.step(det.numeric_columns(stream[new]))
        steps.popleft()
        steps.append(stream[new])
        step_classes.popleft()
        step_classes.append(classes[new])
        features, window_classes = np.concatenate(steps), np.concatenate(step_classes)
        inc = det.test_sliding(state, features, window_classes)
        t1 = time.perf_counter()
        full = det.test(np.concatenate(steps), np.concatenate(step_classes))
        t2 = time.perf_counter()
        same &= [(x.statistic, x.p_value, x.drifted) for x in inc.features] == [
            (x.statistic, x.p_value, x.drifted) for x in full.features
        ] and inc.status == full.status
        if s >= warm:
            t_inc.append(t1 - t0)
            t_full.append(t2 - t1)
    t_step, t_whole = float(np.median(t_inc)), float(np.median(t_full))
    stepped = incremental_pays(det.reference_size, m, step)  # what the monitor's reporter does at these sizes
    t_ours = t_step if stepped else t_whole
    verdict = "identical statistics, p-values, decisions" if same else "REPORTS DIFFER"
    print(f"    monitor's path: {'stepped' if stepped else 'tested whole'} (incremental_pays: window >= "
          f"{sliding.INCREMENTAL_MIN_RATIO} x (reference + step) is {stepped})")
    print(f"    {'monitor':<14} {t_ours * 1e3:>10.1f} ms {1.0:>9.1f}x")
    row("stepped", t_step, t_ours, f"SlidingKS.step + test_sliding; {verdict} as whole")
    row("whole", t_whole, t_ours, "detector.test on the same window")
    print(f"    {'':<14} whole / stepped: {t_whole / t_step:.2f}x")
    entry: dict[str, object] = {
        "case": f"sliding F={f} ref={n_ref / 1000:g}k win={m / 1000:g}k step={step / 1000:g}k "
                f"({'stepped' if stepped else 'whole'})",
        "ours": t_ours, "ours_full": t_whole if stepped else t_step,
        "ours_full_agree": "identical" if same else "differ",
    }
    SUMMARY.append(entry)
    if venv is None:
        return
    with tempfile.TemporaryDirectory() as tmp:
        np.save(os.path.join(tmp, "ref.npy"), ref)
        np.save(os.path.join(tmp, "win.npy"), stream[:m])
        np.save(os.path.join(tmp, "stream.npy"), stream[: m + n_steps * step])
        res = peers(venv, tmp, ["--sliding", str(step), "--alpha", str(config.alpha)], timeout) or {}
        al = res.get("alibi_sliding")
        if al:
            entry["alibi"] = al["time_per_step"]
        row("alibi recomp", al and al["time_per_step"], t_ours, "n/a (timing only)")
        if al:
            print(f"    {'':<14} Alibi / whole: {al['time_per_step'] / t_whole:.1f}x, "
                  f"Alibi / stepped: {al['time_per_step'] / t_step:.1f}x")


def print_summary() -> None:
    """One markdown table of the whole run (times in ms; ratios = peer / ours)."""

    def ms(e: dict[str, object], key: str) -> str:
        t = e.get(key)
        return f"{t * 1e3:,.1f}" if isinstance(t, float) else "skipped"

    def cell(e: dict[str, object], key: str) -> str:
        t = e.get(key)
        if not isinstance(t, float):
            return "skipped"
        ours = e["ours"]
        assert isinstance(ours, float)
        verdict = e.get(f"{key}_agree")
        tail = "" if verdict is None else (" =" if verdict == "identical" else f" ({verdict})")
        return f"{t * 1e3:,.1f} ({t / ours:,.1f}x){tail}"

    def ratio(e: dict[str, object], key: str) -> str:
        al, ours = e.get("alibi"), e.get(key)
        return f"{al / ours:,.1f}x" if isinstance(al, float) and isinstance(ours, float) else "n/a"

    print("\n| case | default warm ms | default cold ms | first window ms | 1 thread warm ms | drifted-only ms "
          "| scipy loop | Alibi Detect | Evidently | Alibi / warm | Alibi / cold | Alibi / first | Alibi / 1 thread |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for e in SUMMARY:
        other = cell(e, "scipy") if "scipy" in e else cell(e, "ours_full")
        print(f"| {e['case']} | {ms(e, 'ours')} | {ms(e, 'cold')} | {ms(e, 'first')} | {ms(e, 'one_thread')} "
              f"| {ms(e, 'drifted')} | {other} | {cell(e, 'alibi')} | {cell(e, 'evidently')} | {ratio(e, 'ours')} "
              f"| {ratio(e, 'cold')} | {ratio(e, 'first')} | {ratio(e, 'one_thread')} |")
    print("(ms (peer time / default warm); '=' identical drift decisions; the sliding rows' 'default warm' "
          "is the monitor's path at those sizes (named in the case: stepped, or tested whole), their 'scipy loop' "
          "column the other path, same windows; the time-window rows' "
          "'default warm' is a window's median with grid floors, their 'scipy loop' with floors at each exact size)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="F=64 and 256, 10k x 1k and 10k x 10k, and the sliding case")
    ap.add_argument("--peers-venv", default=os.environ.get("DRIFTWATCH_PEERS_VENV", "/tmp/driftwatch-peers-venv"))
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--sliding-only", action="store_true", help="only the sliding rows (all of them, with --quick too)")
    ap.add_argument("--peer-timeout", type=float, default=600.0)
    ap.add_argument("--evidently-max-values", type=int, default=EVIDENTLY_MAX_VALUES)
    args = ap.parse_args()
    venv: Path | None = Path(args.peers_venv)
    if args.no_peers or not (Path(args.peers_venv) / "bin" / "python").exists():
        print(f"peers skipped: no venv at {args.peers_venv} (build it with bash benchmarks/peers/setup.sh)")
        venv = None
    from monitor.drift import _kernels

    print(f"engine: {'numba merge kernel' if _kernels.HAVE_NUMBA else 'numpy (numba not installed)'}; "
          f"{os.cpu_count()} CPUs visible")
    if args.quick:
        cases = [(f, 10_000, w) for f in (64, 256) for w in (1_000, 10_000)]
    else:
        cases = [(f, r, w) for f in (64, 256) for r in (10_000, 100_000) for w in (1_000, 10_000, 100_000)]
    for f, r, w in [] if args.sliding_only else cases:
        run_case(f, r, w, venv, args.peer_timeout, args.evidently_max_values)
    run_sliding(64, 10_000, sliding_settings(), venv, args.peer_timeout)  # the monitor's defaults
    run_sliding(256, 10_000, sliding_settings(), venv, args.peer_timeout)
    if args.sliding_only or not args.quick:  # sizes other than the defaults: where the step stops paying
        # Below the rule's line (tested whole), then above it (stepped: window >= 20 (reference + step)).
        for n_ref, size, step in ((1_000, 10_000, 1_000), (100_000, 10_000, 1_000), (10_000, 10_000, 5_000),
                                  (10_000, 2_000, 1_000), (10_000, 10_000, 100), (10_000, 100_000, 1_000),
                                  (1_000, 100_000, 5_000), (1_000, 50_000, 500), (1_000, 100_000, 1_000)):
            run_sliding(64, n_ref, sliding_settings(size, step), venv, args.peer_timeout)
    for f in () if args.sliding_only else (64, 256):
        run_time_windows(f, 10_000)
    print_summary()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
