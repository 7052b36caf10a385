"""Label-free accuracy estimates on windows whose accuracy really falls, against the peers.

    .venv/bin/python benchmarks/estimate.py [--model-dir DIR] [--peers-venv PATH] [--windows 20]

Windows of 1,000 predictions whose realised accuracy drops by roughly 5 to 30
points, and unshifted ones:

- digits: the model ``driftwatch train`` makes (trained here, seeded, unless
  ``--model-dir`` names one), on its held-out test rows with Gaussian pixel
  noise, occluded 3x3 / 4x4 image regions, dimmed intensity and rotation;
- census (tabular): NannyML's Massachusetts census data (loaded in the peers'
  venv), a gradient-boosted classifier trained on half the 2015 rows, its
  reference on a quarter, windows from the last quarter, from 2018 (real
  drift), from hard subpopulations, and with a corrupted or shifted feature.

Every estimate sees what the monitor keeps per window (the histogram of
top-class confidence in percent buckets) and the reference's probabilities
and labels. Methods: the constant reference accuracy; Driftwatch's estimate
(``monitor.estimate``: difference of confidences, DoC); a per-bucket
(isotonic) calibration of confidence on the reference, the refinement tried
and measured against it; ATC (average thresholded confidence); NannyML CBPE
(every class's probability, peers' venv, same windows).
Prints the mean absolute error per scenario and overall, on unshifted and
shifted windows.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.estimate import AccuracyEstimator
from monitor.window_state import CONFIDENCE_BUCKETS

PEERS = Path(__file__).resolve().parent / "peers"
WINDOW = 1000


@dataclass
class Scenario:
    name: str
    kind: str  # "none" or "shift"
    proba: list[np.ndarray]  # per window (WINDOW, K)
    labels: list[np.ndarray]


def histogram(conf: np.ndarray) -> np.ndarray:
    idx = np.minimum((conf * CONFIDENCE_BUCKETS).astype(np.int64), CONFIDENCE_BUCKETS - 1)
    return np.bincount(idx, minlength=CONFIDENCE_BUCKETS)


def isotonic_by_bucket(conf: np.ndarray, correct: np.ndarray) -> np.ndarray:
    """Reference accuracy per confidence bucket, made non-decreasing (pool adjacent violators);
    empty buckets take the nearest filled bucket above (or the last)."""
    b = np.minimum((conf * CONFIDENCE_BUCKETS).astype(np.int64), CONFIDENCE_BUCKETS - 1)
    n = np.bincount(b, minlength=CONFIDENCE_BUCKETS).astype(np.float64)
    k = np.bincount(b, weights=correct.astype(np.float64), minlength=CONFIDENCE_BUCKETS)
    filled = np.flatnonzero(n)
    blocks: list[list[float]] = []  # [hits, rows, buckets]
    for hits, rows in zip(k[filled].tolist(), n[filled].tolist(), strict=True):
        blocks.append([hits, rows, 1.0])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            h2, r2, c2 = blocks.pop()
            blocks[-1][0] += h2
            blocks[-1][1] += r2
            blocks[-1][2] += c2
    fit = np.concatenate([np.full(int(c), h / r) for h, r, c in blocks])
    where = np.clip(np.searchsorted(filled, np.arange(CONFIDENCE_BUCKETS)), 0, filled.size - 1)
    return fit[where]


def atc_threshold(conf: np.ndarray, correct: np.ndarray) -> float:
    """ATC (Garg et al., 2022): the confidence above which as many reference rows lie as are correct."""
    return float(np.quantile(conf, 1.0 - correct.mean()))


# --- digits -----------------------------------------------------------------------------------
def corrupt_digits(x: np.ndarray, kind: str, level: float, rng: np.random.Generator) -> np.ndarray:
    from scipy import ndimage

    img = x.reshape(-1, 8, 8).copy()
    if kind == "noise":
        img = np.clip(img + rng.normal(0, level, img.shape), 0, 16)
    elif kind == "occlusion":
        k = int(level)
        for im in img:
            r, c = rng.integers(0, 9 - k, size=2)
            im[r : r + k, c : c + k] = 0
    elif kind == "dim":
        img = img * level
    elif kind == "rotation":
        for i in range(len(img)):
            angle = level * (1 if rng.random() < 0.5 else -1)
            img[i] = np.clip(ndimage.rotate(img[i], angle, reshape=False, order=1), 0, 16)
    return img.reshape(len(x), 64)


Labelled = tuple[np.ndarray, np.ndarray, list[Scenario]]
"""Reference probabilities, reference labels, and the scenarios' windows."""


def digits(model_dir: Path | None, n_windows: int, rng: np.random.Generator) -> Labelled:
    import keras

    if model_dir is None:
        from driftwatch.trainer.datasets import load_dataset
        from driftwatch.trainer.train import TrainConfig, train

        model_dir = Path(tempfile.mkdtemp(prefix="dw-estimate-"))
        train(load_dataset("digits"), model_dir, TrainConfig(epochs=15, seed=0))
    model = keras.models.load_model(model_dir / "model.keras")
    ref = np.load(model_dir / "reference.npz")
    hold = np.load(model_dir / "holdout.npz")
    x, y = hold["features"].astype(np.float32), hold["labels"].astype(np.int64)

    def predict(a: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict(a.astype(np.float32), verbose=0, batch_size=1024), dtype=np.float64)

    # Severities picked for drops of about 5 to 30 points (pixels are 0-16).
    specs = [("none", "none", 0.0), ("noise sd 1", "noise", 1.0), ("noise sd 1.6", "noise", 1.6),
             ("occlusion 2x2", "occlusion", 2), ("occlusion 3x3", "occlusion", 3),
             ("dim x0.5", "dim", 0.5), ("dim x0.4", "dim", 0.4),
             ("rotation 6 deg", "rotation", 6.0), ("rotation 10 deg", "rotation", 10.0)]
    scenarios = []
    for name, kind, level in specs:
        probs, labels = [], []
        for _ in range(n_windows):
            idx = rng.integers(0, len(x), WINDOW)
            xw = x[idx] if kind == "none" else corrupt_digits(x[idx], kind, level, rng)
            probs.append(predict(xw))
            labels.append(y[idx])
        scenarios.append(Scenario(f"digits {name}", "none" if kind == "none" else "shift", probs, labels))
    return ref["probabilities"].astype(np.float64), ref["labels"].astype(np.int64), scenarios


# --- census -----------------------------------------------------------------------------------
def census(data_dir: Path, n_windows: int, rng: np.random.Generator) -> Labelled:
    from sklearn.ensemble import HistGradientBoostingClassifier

    meta = json.loads((data_dir / "meta.json").read_text())
    x15, y15 = np.load(data_dir / "x_2015.npy"), np.load(data_dir / "y_2015.npy")
    x18, y18 = np.load(data_dir / "x_2018.npy"), np.load(data_dir / "y_2018.npy")
    order = rng.permutation(len(x15))
    tr, rf, te = np.split(order, [len(order) // 2, 3 * len(order) // 4])
    cat = np.array(meta["categorical"], dtype=bool)
    clf = HistGradientBoostingClassifier(categorical_features=cat, random_state=0, max_iter=200)
    clf.fit(x15[tr], y15[tr])
    names = meta["features"]
    age, schl = names.index("AGEP"), names.index("SCHL")
    xt, yt = x15[te], y15[te]
    hard = (xt[:, age] >= 50) & (xt[:, age] <= 70)  # employment hardest to call near retirement
    specs: list[tuple[str, str, Callable[[], tuple[np.ndarray, np.ndarray]]]] = []

    def draw(pool_x: np.ndarray, pool_y: np.ndarray) -> Callable[[], tuple[np.ndarray, np.ndarray]]:
        return lambda: (lambda i: (pool_x[i], pool_y[i]))(rng.integers(0, len(pool_x), WINDOW))

    def corrupt(fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[], tuple[np.ndarray, np.ndarray]]:
        def make() -> tuple[np.ndarray, np.ndarray]:
            xw, yw = draw(xt, yt)()
            return fn(xw.copy()), yw
        return make

    def shuffle_schl(a: np.ndarray) -> np.ndarray:
        a[:, schl] = rng.permutation(a[:, schl])
        return a

    def older(a: np.ndarray) -> np.ndarray:
        a[:, age] = a[:, age] + 20
        return a

    specs = [
        ("none (2015 held out)", "none", draw(xt, yt)),
        ("2018 (real drift)", "shift", draw(x18, y18)),
        ("subpopulation: ages 50-70", "shift", draw(xt[hard], yt[hard])),
        ("corrupted: education shuffled", "shift", corrupt(shuffle_schl)),
        ("shifted: age +20 years", "shift", corrupt(older)),
    ]
    scenarios = []
    for name, kind, make in specs:
        probs, labels = [], []
        for _ in range(n_windows):
            xw, yw = make()
            probs.append(clf.predict_proba(xw))
            labels.append(yw.astype(np.int64))
        scenarios.append(Scenario(f"census {name}", kind, probs, labels))
    return clf.predict_proba(x15[rf]), y15[rf].astype(np.int64), scenarios


# --- estimates --------------------------------------------------------------------------------
def estimates(ref_p: np.ndarray, ref_y: np.ndarray, scenarios: list[Scenario]) -> dict[str, list[np.ndarray]]:
    conf_ref = ref_p.max(axis=1)
    correct = ref_p.argmax(axis=1) == ref_y
    ours = AccuracyEstimator.fit(conf_ref, correct)
    by_bucket = isotonic_by_bucket(conf_ref, correct)
    t_atc = atc_threshold(conf_ref, correct)
    out: dict[str, list[np.ndarray]] = {"constant": [], "Driftwatch (DoC)": [], "per-bucket calibration": [],
                                        "ATC": []}
    for sc in scenarios:
        hists = [histogram(p.max(axis=1)) for p in sc.proba]
        out["constant"].append(np.full(len(hists), correct.mean()))
        values = [ours.estimate(h) for h in hists]
        out["Driftwatch (DoC)"].append(np.array([v.value for v in values if v is not None]))
        out["per-bucket calibration"].append(np.array([h @ by_bucket / h.sum() for h in hists]))
        out["ATC"].append(np.array([(p.max(axis=1) > t_atc).mean() for p in sc.proba]))
    return out


def cbpe(venv: Path, ref_p: np.ndarray, ref_y: np.ndarray, scenarios: list[Scenario]) -> list[np.ndarray] | None:
    if not (venv / "bin" / "python").exists():
        print(f"NannyML CBPE skipped: no peers' venv at {venv}")
        return None
    with tempfile.TemporaryDirectory() as tmp:
        np.save(os.path.join(tmp, "ref_proba.npy"), ref_p)
        np.save(os.path.join(tmp, "ref_labels.npy"), ref_y)
        np.save(os.path.join(tmp, "proba.npy"), np.concatenate([p for sc in scenarios for p in sc.proba]))
        Path(tmp, "meta.json").write_text(json.dumps({"window": WINDOW}))
        out = subprocess.run([str(venv / "bin" / "python"), str(PEERS / "estimate_runner.py"), tmp],
                             capture_output=True, text=True, check=True)
    values = np.array(json.loads(out.stdout)["cbpe"])
    counts = np.cumsum([0] + [len(sc.proba) for sc in scenarios])
    return [values[counts[i] : counts[i + 1]] for i in range(len(scenarios))]


def report(
    title: str, scenarios: list[Scenario], est: dict[str, list[np.ndarray]], ref_acc: float
) -> dict[str, list[float]]:
    methods = list(est)
    print(f"\n### {title} (reference accuracy {ref_acc:.3f}; MAE per scenario, windows of {WINDOW})\n")
    print("| scenario | realised accuracy | drop | " + " | ".join(methods) + " |")
    print("| --- | ---: | ---: | " + " | ".join("---:" for _ in methods) + " |")
    errors: dict[str, list[float]] = {m: [] for m in methods}
    for i, sc in enumerate(scenarios):
        real = np.array([(p.argmax(axis=1) == y).mean() for p, y in zip(sc.proba, sc.labels, strict=True)])
        cells = []
        for m in methods:
            err = np.abs(est[m][i] - real)
            errors[m].extend(err.tolist())
            cells.append(f"{err.mean():.3f}")
        print(f"| {sc.name} | {real.mean():.3f} | {ref_acc - real.mean():+.3f} | " + " | ".join(cells) + " |")
    return errors


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model-dir", type=Path)
    ap.add_argument("--peers-venv", type=Path, default=Path(os.environ.get("DRIFTWATCH_PEERS_VENV",
                                                                             "/tmp/driftwatch-peers-venv")))
    ap.add_argument("--windows", type=int, default=20, help="windows per scenario")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    sets = []
    t0 = time.perf_counter()
    sets.append(("digits", *digits(args.model_dir, args.windows, rng)))
    if (args.peers_venv / "bin" / "python").exists():
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([str(args.peers_venv / "bin" / "python"), str(PEERS / "datasets.py"), tmp,
                            "--census-labelled"], check=True, capture_output=True)
            sets.append(("census", *census(Path(tmp) / "census_labelled", args.windows, rng)))
    else:
        print("census skipped: its data loads in the peers' venv (bash benchmarks/peers/setup.sh)")
    print(f"(scenarios built in {time.perf_counter() - t0:.0f} s)")
    totals: dict[str, dict[str, list[float]]] = {"none": {}, "shift": {}}
    for name, ref_p, ref_y, scenarios in sets:
        est = estimates(ref_p, ref_y, scenarios)
        peer = cbpe(args.peers_venv, ref_p, ref_y, scenarios)
        if peer is not None:
            est["NannyML CBPE"] = peer
        ref_acc = float((ref_p.argmax(axis=1) == ref_y).mean())
        errors = report(name, scenarios, est, ref_acc)
        for m, errs in errors.items():
            for kind in ("none", "shift"):
                picked = [e for sc, chunk in zip(scenarios, np.array_split(errs, len(scenarios)), strict=True)
                          if sc.kind == kind for e in chunk]
                totals[kind].setdefault(m, []).extend(picked)
    print("\n### Overall MAE (all data sets)\n")
    methods = list(totals["shift"])
    print("| windows | " + " | ".join(methods) + " |")
    print("| --- | " + " | ".join("---:" for _ in methods) + " |")
    for kind, label in (("none", "unshifted"), ("shift", "shifted (accuracy falls)")):
        print(f"| {label} | " + " | ".join(f"{np.mean(totals[kind][m]):.3f}" for m in methods) + " |")
    shift_const = np.mean(totals["shift"]["constant"])
    print(f"\nGoal: MAE <= 0.03, and <= half the constant baseline's on shifted windows ({shift_const / 2:.3f}).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
