"""NannyML CBPE on the same windows as benchmarks/estimate.py; prints estimated accuracies as JSON.

Runs in the peers' virtualenv: ``python estimate_runner.py DATA_DIR``. DATA_DIR
holds ``ref_proba.npy`` (n, K), ``ref_labels.npy`` (n,), ``proba.npy``
(windows x size, K) and ``meta.json`` (``{"window": size, "scenarios":
[name, ...]}``, one block of windows per scenario, the same count each).
CBPE is fitted once on the reference and estimates accuracy per chunk of
``size`` rows. Binary problems (K = 2) use the binary estimator on the
positive class's probability.
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
os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")
logging.disable(logging.WARNING)


def main() -> int:
    import nannyml as nml
    import pandas as pd

    data = sys.argv[1]
    with open(os.path.join(data, "meta.json")) as fh:
        meta = json.load(fh)
    ref_p = np.load(os.path.join(data, "ref_proba.npy"))
    ref_y = np.load(os.path.join(data, "ref_labels.npy"))
    proba = np.load(os.path.join(data, "proba.npy"))
    k = ref_p.shape[1]

    def frame(p: np.ndarray, y: np.ndarray | None) -> pd.DataFrame:
        df = pd.DataFrame({f"p{c}": p[:, c] for c in range(k)})
        df["y_pred"] = p.argmax(axis=1)
        if y is not None:
            df["y_true"] = y
        return df

    t0 = time.perf_counter()
    if k == 2:
        est = nml.CBPE(problem_type="classification_binary", y_pred_proba="p1", y_pred="y_pred",
                       y_true="y_true", metrics=["accuracy"], chunk_size=meta["window"])
    else:
        est = nml.CBPE(problem_type="classification_multiclass", y_pred_proba={c: f"p{c}" for c in range(k)},
                       y_pred="y_pred", y_true="y_true", metrics=["accuracy"], chunk_size=meta["window"])
    est.fit(frame(ref_p, ref_y))
    df = est.estimate(frame(proba, None)).filter(period="analysis").to_df()
    values = [float(v) for v in df[("accuracy", "value")]]
    json.dump({"cbpe": values, "time": time.perf_counter() - t0}, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
