"""Replay a data set's windows through the peer detectors; print per-window alarms as JSON.

Runs in the peers' virtualenv (see setup.sh). ``python detection_runner.py DATA_DIR``
where DATA_DIR was written by datasets.py. Each detector is fitted on
``reference.npy`` and tests ``stream.npy`` window by window, in time order;
wall time covers fitting and every window. Configurations, as a user would
pick them:

- ``evidently``: ``DataDriftPreset()`` defaults (per column: KS / chi-squared
  for references up to 1,000 rows, otherwise normed Wasserstein / Jensen-
  Shannon distance at 0.1; the data set drifts when at least half its
  columns do);
- ``alibi``: ``KSDrift(p_val=0.05, correction="bonferroni")`` on every column;
- ``nannyml_univariate``: ``UnivariateDriftCalculator`` defaults (Jensen-
  Shannon distance, thresholds from the reference's own chunks); a window
  alarms when any column alerts;
- ``nannyml_multivariate``: ``DataReconstructionDriftCalculator`` defaults
  (PCA reconstruction error, threshold from the reference's chunks).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")  # NannyML phones home otherwise
logging.disable(logging.WARNING)


def windows(stream: np.ndarray, size: int) -> list[np.ndarray]:
    return [stream[s : s + size] for s in range(0, len(stream), size)]


def frame(x: np.ndarray, names: list[str], categorical: list[bool]):
    import pandas as pd

    df = pd.DataFrame(x, columns=names)
    for name, cat in zip(names, categorical, strict=True):
        if cat:
            df[name] = df[name].astype(np.int64).astype(str)
    return df


def run_evidently(ref: np.ndarray, wins: list[np.ndarray], names: list[str], cat: list[bool]) -> list[bool]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(
        numerical_columns=[n for n, c in zip(names, cat, strict=True) if not c],
        categorical_columns=[n for n, c in zip(names, cat, strict=True) if c],
    )
    ref_ds = Dataset.from_pandas(frame(ref, names, cat), data_definition=definition)
    flags = []
    for w in wins:
        snap = Report([DataDriftPreset()]).run(
            current_data=Dataset.from_pandas(frame(w, names, cat), data_definition=definition),
            reference_data=ref_ds,
        )
        share = next(m["value"]["share"] for m in snap.dict()["metrics"]
                     if str(m.get("metric_name", "")).startswith("DriftedColumnsCount"))
        flags.append(bool(share >= 0.5))
    return flags


def run_alibi(ref: np.ndarray, wins: list[np.ndarray], names: list[str], cat: list[bool]) -> list[bool]:
    from alibi_detect.cd import KSDrift

    det = KSDrift(ref, p_val=0.05, correction="bonferroni")
    return [bool(det.predict(w, drift_type="batch")["data"]["is_drift"]) for w in wins]


def _nannyml_frames(ref: np.ndarray, stream: np.ndarray, names: list[str], cat: list[bool]):
    return frame(ref, names, cat), frame(stream, names, cat)


def run_nannyml_univariate(ref: np.ndarray, stream: np.ndarray, size: int, names: list[str],
                           cat: list[bool]) -> list[bool]:
    import nannyml as nml

    ref_df, ana_df = _nannyml_frames(ref, stream, names, cat)
    calc = nml.UnivariateDriftCalculator(
        column_names=names, treat_as_categorical=[n for n, c in zip(names, cat, strict=True) if c],
        chunk_size=size,
    )
    calc.fit(ref_df)
    df = calc.calculate(ana_df).filter(period="analysis").to_df()
    alerts = df[[c for c in df.columns if c[-1] == "alert"]]
    return [bool(v) for v in alerts.any(axis=1)]


def run_nannyml_multivariate(ref: np.ndarray, stream: np.ndarray, size: int, names: list[str],
                             cat: list[bool]) -> list[bool]:
    import nannyml as nml

    ref_df, ana_df = _nannyml_frames(ref, stream, names, cat)
    calc = nml.DataReconstructionDriftCalculator(column_names=names, chunk_size=size)
    calc.fit(ref_df)
    df = calc.calculate(ana_df).filter(period="analysis").to_df()
    return [bool(v) for v in df[("reconstruction_error", "alert")]]


def main() -> int:
    data_dir = sys.argv[1]
    only = sys.argv[2].split(",") if len(sys.argv) > 2 else None
    with open(os.path.join(data_dir, "meta.json")) as fh:
        meta = json.load(fh)
    ref = np.load(os.path.join(data_dir, "reference.npy"))
    stream = np.load(os.path.join(data_dir, "stream.npy"))
    size, names, cat = meta["window"], meta["features"], meta["categorical"]
    wins = windows(stream, size)
    runs = {
        "evidently": lambda: run_evidently(ref, wins, names, cat),
        "alibi": lambda: run_alibi(ref, wins, names, cat),
        "nannyml_univariate": lambda: run_nannyml_univariate(ref, stream, size, names, cat),
        "nannyml_multivariate": lambda: run_nannyml_multivariate(ref, stream, size, names, cat),
    }
    out = {}
    for name, fn in runs.items():
        if only and name not in only:
            continue
        t0 = time.perf_counter()
        try:
            flags = fn()
        except Exception as exc:  # report a peer's failure, keep the others
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        out[name] = {"flags": flags, "time": time.perf_counter() - t0}
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
