"""Label-free accuracy estimates on windows whose accuracy really falls, against the peers.

    .venv/bin/python benchmarks/estimate.py [--model-dir DIR] [--peers-venv PATH] [--windows 20]

Windows of 1,000 predictions whose realised accuracy drops by roughly 5 to 30
points, unshifted ones, and label-shifted ones (the class mix moves, what each
class looks like does not, so accuracy stays):

- digits: the model ``driftwatch train`` makes (trained here, seeded, unless
  ``--model-dir`` names one), on its held-out test rows with Gaussian pixel
  noise, occluded 2x2 / 3x3 image regions, dimmed intensity and rotation;
  label shift: classes 0-4 three times as common;
- census (tabular): NannyML's Massachusetts census data (loaded in the peers'
  venv), a gradient-boosted classifier trained on half the 2015 rows, its
  reference on a quarter, windows from the last quarter, from 2018 (real
  drift), from hard subpopulations, and with a corrupted or shifted feature;
  label shift: employed people twice as common.

The reference is the held-out labelled sample: its features, probabilities
and labels (for digits, the features are re-read from the trainer's split:
``reference.npz`` keeps training rows for the drift tests). Methods:

- the constant reference accuracy;
- Driftwatch's estimate (``monitor.estimate``: difference of confidences,
  DoC), from the histogram of top-class confidence the monitor keeps;
- a per-bucket (isotonic) calibration of confidence, ATC (average
  thresholded confidence), and DoC on temperature-scaled probabilities
  (the temperature fitted on the reference);
- importance weighting (IW): the reference's correctness weighted by a
  density ratio window/reference from a domain classifier (L2 logistic
  regression, window vs reference rows) on standardised features, or on the
  log probability vectors; weights clipped at 20 (``monitor.class_mix``). The monitor holds a
  window's rows when it tests it for drift (``monitor/reports.py``), so the
  features' version would be computable there; its cost per window is
  printed as a multiple of DoC's;
- the mean of IW (features) and DoC;
- DoC capped by the class mix: at most ``1 - TV(predicted class mix,
  expected class mix)``, a bound on accuracy if the window's true labels
  have the expected mix: the reference's, or the IW-reweighted reference's
  less the TV two samples of it show by chance (``monitor.class_mix``, as
  the monitor computes it: on at most ``MAX_REFERENCE_ROWS`` reference rows;
  the monitor's estimate);
- NannyML CBPE (every class's probability, peers' venv, same windows).

Prints the mean absolute error per scenario and overall, on unshifted,
shifted and label-shifted windows.
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

from monitor import class_mix
from monitor.class_mix import ClassMixBound
from monitor.estimate import AccuracyEstimator
from monitor.window_state import CONFIDENCE_BUCKETS
from shared.model_metadata import Reference

PEERS = Path(__file__).resolve().parent / "peers"
WINDOW = 1000


@dataclass
class Scenario:
    name: str
    kind: str  # "none", "shift" (accuracy falls) or "labels" (the class mix moves, accuracy stays)
    proba: list[np.ndarray]  # per window (WINDOW, K)
    labels: list[np.ndarray]
    features: list[np.ndarray]  # per window (WINDOW, F): what the monitor holds when it reports drift


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


Labelled = tuple[np.ndarray, np.ndarray, np.ndarray, list[Scenario]]
"""Reference features, probabilities and labels (the same held-out rows), and the scenarios' windows."""


def digits(model_dir: Path | None, n_windows: int, rng: np.random.Generator) -> Labelled:
    import keras

    from driftwatch.trainer.datasets import load_dataset
    from driftwatch.trainer.train import TrainConfig, split_indices, train

    if model_dir is None:
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
    # Label shift: classes 0-4 three times as common; what each class looks like does not change.
    skew = np.where(y < 5, 3.0, 1.0) / np.where(y < 5, 3.0, 1.0).sum()
    specs.append(("label shift: classes 0-4 x3", "labels", 0.0))
    scenarios = []
    for name, kind, level in specs:
        probs, labels, feats = [], [], []
        for _ in range(n_windows):
            idx = rng.choice(len(x), WINDOW, p=skew) if kind == "labels" else rng.integers(0, len(x), WINDOW)
            xw = x[idx] if kind in ("none", "labels") else corrupt_digits(x[idx], kind, level, rng)
            probs.append(predict(xw))
            labels.append(y[idx])
            feats.append(xw.astype(np.float64))
        grade = kind if kind in ("none", "labels") else "shift"
        scenarios.append(Scenario(f"digits {name}", grade, probs, labels, feats))
    # The reference's probabilities and labels are of the held-out reference split; its features
    # (reference.npz's are training rows, for the drift tests) are re-read from the same split.
    data = load_dataset("digits")
    seed = json.loads((model_dir / "metadata.json").read_text())["training"]["seed"]
    ref_x = data.features[split_indices(data.labels, seed).reference].astype(np.float64)
    return ref_x, ref["probabilities"].astype(np.float64), ref["labels"].astype(np.int64), scenarios


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

    def employed_x2() -> tuple[np.ndarray, np.ndarray]:
        weight = np.where(yt == 1, 2.0, 1.0)
        i = rng.choice(len(xt), WINDOW, p=weight / weight.sum())
        return xt[i], yt[i]

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
        ("label shift: employed x2", "labels", employed_x2),
    ]
    scenarios = []
    for name, kind, make in specs:
        probs, labels, feats = [], [], []
        for _ in range(n_windows):
            xw, yw = make()
            probs.append(clf.predict_proba(xw))
            labels.append(yw.astype(np.int64))
            feats.append(xw.astype(np.float64))
        scenarios.append(Scenario(f"census {name}", kind, probs, labels, feats))
    return x15[rf].astype(np.float64), clf.predict_proba(x15[rf]), y15[rf].astype(np.int64), scenarios


# --- estimates ---------------------------------------------------------------------------------
def temperature(proba: np.ndarray, labels: np.ndarray) -> float:
    """Temperature scaling (Guo et al., 2017): the T minimising the reference's NLL (grid search)."""
    logp = np.log(np.clip(proba, 1e-12, 1.0))
    grid = np.exp(np.linspace(np.log(0.2), np.log(5.0), 200))
    return float(grid[int(np.argmin([-np.log(softmax(logp / t))[np.arange(len(labels)), labels].mean()
                                     for t in grid]))])


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def class_mix_gap(proba: np.ndarray, expected: np.ndarray) -> float:
    """Total variation between the window's predicted class mix and the mix its true labels are
    expected to have: a lower bound on the window's error rate if that expectation holds (each
    wrong prediction moves at most one row's mass between classes)."""
    predicted = np.bincount(proba.argmax(axis=1), minlength=len(expected)) / len(proba)
    return float(0.5 * np.abs(predicted - expected).sum())


METHODS = ["constant", "Driftwatch (DoC)", "per-bucket calibration", "ATC", "temperature-scaled DoC",
           "IW (features)", "IW (probabilities)", "mean of IW and DoC", "DoC capped by reference class mix",
           "DoC capped by reweighted class mix"]
"""Estimates compared, in table order (NannyML CBPE is added from the peers' venv)."""


def estimates(
    ref_x: np.ndarray, ref_p: np.ndarray, ref_y: np.ndarray, scenarios: list[Scenario]
) -> tuple[dict[str, list[np.ndarray]], dict[str, float]]:
    """Every method's estimate per window, and each method's seconds per window."""
    conf_ref = ref_p.max(axis=1)
    correct = ref_p.argmax(axis=1) == ref_y
    hits = correct.astype(np.float64)
    ours = AccuracyEstimator.fit(conf_ref, correct)
    by_bucket = isotonic_by_bucket(conf_ref, correct)
    t_atc = atc_threshold(conf_ref, correct)
    t_scale = temperature(ref_p, ref_y)
    ts_ref = softmax(np.log(np.clip(ref_p, 1e-12, 1.0)) / t_scale).max(axis=1).mean()
    log_ref = np.log(np.clip(ref_p, 1e-6, 1.0))
    k = ref_p.shape[1]
    prior = np.bincount(ref_y, minlength=k) / len(ref_y)
    by_features = ClassMixBound.fit(ref_x, ref_y, k)  # its weights are the IW columns'
    monitors = class_mix.from_reference(  # the monitor's bound: at most MAX_REFERENCE_ROWS rows
        Reference(features=ref_x.astype(np.float32), predicted_classes=ref_p.argmax(axis=1),
                  probabilities=ref_p.astype(np.float32), labels=ref_y, labelled_features=ref_x.astype(np.float32)),
        k,
    )
    assert monitors is not None
    by_probabilities = ClassMixBound.fit(log_ref, ref_y, k)
    out: dict[str, list[np.ndarray]] = {m: [] for m in METHODS}
    seconds = {"Driftwatch (DoC)": 0.0, "IW (features)": 0.0, "IW (probabilities)": 0.0}
    n = 0
    for sc in scenarios:
        cells: dict[str, list[float]] = {m: [] for m in METHODS}
        for p, x in zip(sc.proba, sc.features, strict=True):
            n += 1
            t0 = time.perf_counter()
            h = histogram(p.max(axis=1))
            fitted = ours.estimate(h)
            assert fitted is not None
            doc = fitted.value
            t1 = time.perf_counter()
            ratio = by_features.weights(x)
            iw = float(ratio @ hits / ratio.sum())
            t2 = time.perf_counter()
            ratio_p = by_probabilities.weights(np.log(np.clip(p, 1e-6, 1.0)))
            iw_p = float(ratio_p @ hits / ratio_p.sum())
            t3 = time.perf_counter()
            for m, spent in zip(seconds, (t1 - t0, t2 - t1, t3 - t2), strict=True):
                seconds[m] += spent
            ts_conf = softmax(np.log(np.clip(p, 1e-12, 1.0)) / t_scale).max(axis=1).mean()
            predicted = np.bincount(p.argmax(axis=1), minlength=k)
            row = {
                "constant": float(correct.mean()),
                "Driftwatch (DoC)": doc,
                "per-bucket calibration": float(h @ by_bucket / h.sum()),
                "ATC": float((p.max(axis=1) > t_atc).mean()),
                "temperature-scaled DoC": float(correct.mean() + ts_conf - ts_ref),
                "IW (features)": iw,
                "IW (probabilities)": iw_p,
                "mean of IW and DoC": (iw + doc) / 2,
                "DoC capped by reference class mix": min(doc, 1.0 - class_mix_gap(p, prior)),
                "DoC capped by reweighted class mix": min(doc, monitors.bound(x, predicted)),
            }
            for m in METHODS:
                cells[m].append(row[m])
        for m in METHODS:
            out[m].append(np.array(cells[m]))
    return out, {m: seconds[m] / n for m in ("Driftwatch (DoC)", "IW (features)", "IW (probabilities)")}


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
    kinds = {"none": "unshifted", "shift": "shifted (accuracy falls)", "labels": "label shift (accuracy stays)"}
    totals: dict[str, dict[str, list[float]]] = {kind: {} for kind in kinds}
    for name, ref_x, ref_p, ref_y, scenarios in sets:
        est, seconds = estimates(ref_x, ref_p, ref_y, scenarios)
        doc_s = seconds["Driftwatch (DoC)"]
        print(f"\n{name}: seconds per window, as a multiple of DoC's ({doc_s * 1e6:.0f} us): "
              + ", ".join(f"{m} {s / doc_s:.0f}x" for m, s in seconds.items() if m != "Driftwatch (DoC)"))
        peer = cbpe(args.peers_venv, ref_p, ref_y, scenarios)
        if peer is not None:
            est["NannyML CBPE"] = peer
        ref_acc = float((ref_p.argmax(axis=1) == ref_y).mean())
        errors = report(name, scenarios, est, ref_acc)
        for m, errs in errors.items():
            for kind in kinds:
                picked = [e for sc, chunk in zip(scenarios, np.array_split(errs, len(scenarios)), strict=True)
                          if sc.kind == kind for e in chunk]
                totals[kind].setdefault(m, []).extend(picked)
    print("\n### Overall MAE (all data sets)\n")
    methods = list(totals["shift"])
    print("| windows | " + " | ".join(methods) + " |")
    print("| --- | " + " | ".join("---:" for _ in methods) + " |")
    for kind, label in kinds.items():
        print(f"| {label} | " + " | ".join(f"{np.mean(totals[kind][m]):.3f}" for m in methods) + " |")
    shift_const = np.mean(totals["shift"]["constant"])
    print(f"\nGoal: MAE <= 0.03, and <= half the constant baseline's on shifted windows ({shift_const / 2:.3f}).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
