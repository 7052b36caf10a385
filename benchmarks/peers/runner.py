"""Run the peer drift detectors on .npy data; print times and per-feature p-values as JSON.

Runs inside the peers' own virtualenv (see setup.sh), never the project's:
alibi-detect pins numpy<2. Usage:

    python runner.py DATA_DIR --alpha 0.05 --peers alibi,evidently [--repeat 1]

DATA_DIR holds ref.npy (n_ref, F) and win.npy (n_win, F); for the sliding
comparison also stream.npy, with --sliding STEP (Alibi Detect recomputes the
whole window after each step of STEP rows).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
logging.disable(logging.WARNING)


def run_alibi(ref: np.ndarray, win: np.ndarray, alpha: float, repeat: int) -> dict:
    from alibi_detect.cd import KSDrift

    det = KSDrift(ref, p_val=alpha, correction="bonferroni")
    best = float("inf")
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = det.predict(win, drift_type="batch", return_p_val=True)
        best = min(best, time.perf_counter() - t)
    assert out is not None
    p = np.asarray(out["data"]["p_val"], dtype=np.float64)
    return {"time": best, "p_values": p.tolist(), "drift": bool(out["data"]["is_drift"])}


def run_evidently(ref: np.ndarray, win: np.ndarray, alpha: float, repeat: int) -> dict:
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    f = ref.shape[1]
    cols = [f"f{i}" for i in range(f)]
    definition = DataDefinition(numerical_columns=cols)
    best = float("inf")
    snap = None
    for _ in range(repeat):
        t = time.perf_counter()
        ref_ds = Dataset.from_pandas(pd.DataFrame(ref, columns=cols), data_definition=definition)
        win_ds = Dataset.from_pandas(pd.DataFrame(win, columns=cols), data_definition=definition)
        report = Report([DataDriftPreset(method="ks", threshold=alpha / f)])
        snap = report.run(current_data=win_ds, reference_data=ref_ds)
        best = min(best, time.perf_counter() - t)
    assert snap is not None
    p = [float("nan")] * f
    for metric in snap.dict()["metrics"]:
        config = metric.get("config", {})
        if str(config.get("type", "")).endswith("ValueDrift") and config.get("column") in cols:
            p[cols.index(config["column"])] = float(metric["value"])
    return {"time": best, "p_values": p}


def run_alibi_sliding(ref: np.ndarray, stream: np.ndarray, m: int, step: int, alpha: float) -> dict:
    from alibi_detect.cd import KSDrift

    det = KSDrift(ref, p_val=alpha, correction="bonferroni")
    steps = (stream.shape[0] - m) // step
    times = []
    for s in range(1, steps + 1):
        t = time.perf_counter()
        det.predict(stream[s * step : s * step + m], drift_type="batch")
        times.append(time.perf_counter() - t)
    # Median per step, as for ours (the machine is shared: one slow step is noise).
    return {"time_per_step": float(np.median(times)), "steps": steps}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir")
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--peers", default="alibi,evidently")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--sliding", type=int, default=0, help="step size; window = win.npy rows")
    args = ap.parse_args()
    ref = np.load(os.path.join(args.data_dir, "ref.npy"))
    result: dict = {}
    if args.sliding:
        stream = np.load(os.path.join(args.data_dir, "stream.npy"))
        m = int(np.load(os.path.join(args.data_dir, "win.npy"), mmap_mode="r").shape[0])
        result["alibi_sliding"] = run_alibi_sliding(ref, stream, m, args.sliding, args.alpha)
    else:
        win = np.load(os.path.join(args.data_dir, "win.npy"))
        for peer in args.peers.split(","):
            if peer == "alibi":
                result["alibi"] = run_alibi(ref, win, args.alpha, args.repeat)
            elif peer == "evidently":
                result["evidently"] = run_evidently(ref, win, args.alpha, args.repeat)
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
