"""Variants of the monitor's label-free accuracy estimate (kNN-5 agreement), against it, on the same windows.

    nice -n 10 .venv/bin/python benchmarks/estimate_variants.py [--model-dir DIR] [--peers-venv PATH]
        [--windows 20] [--seeds 1 0]

Why: ``monitor.agreement`` estimates a window's accuracy as the reference's
moved by the change in how often the served model's class is a 5-nearest-
neighbour vote's among the labelled reference rows (GDE-style). Its mean
absolute error on windows losing 5 to 30 points was 0.039 in
``benchmarks/estimate.py``, short of the goal of 0.03. This script measures
refinements of the vote that RESULTS.md records as tried and not kept, so
that the table there can be regenerated. They were measured with the
held-out reference rows as the only neighbours, as the monitor had them
then, and still are here: the training rows the monitor now adds as
neighbours (``Reference.feature_labels``) are what brought the estimate
under the goal, and are left out so that the table stays the one recorded.

What: the windows of ``benchmarks/estimate.py``'s own ``digits()`` and
``census()`` (the same trained digits model, ``--model-dir``), built once per
``--seeds`` value with that rng seed (estimate.py uses seed 0; the first seed
given decides, the others confirm: RESULTS.md's rule). Every variant uses
the monitor's surrogate (the same standardised reference rows, offset left-
one-out or out-of-bag on the reference) and is capped by the class-mix bound
as the monitor's estimate is (DoC, for comparison, is not). The baseline row
is the monitor's own estimate (``Surrogate.estimate``, capped).

Prints, per seed, the mean absolute error of each variant on unshifted,
shifted in the issue's range (drop 5-30 points), label-shifted and shifted
beyond the range windows, and on the scenarios where the variants differ
most, with each in-range MAE as a difference to the baseline's; then the
summary table RESULTS.md shows (in range on every seed, the rest on the
last).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import estimate as bench

from monitor import agreement, class_mix
from monitor.estimate import AccuracyEstimator

KMAX = 10
"""Nearest neighbours kept per row: the largest vote any variant takes."""

HALVES, HALVES_SEED = 8, 123
"""Feature-half ensemble: members, and the seed drawing their features."""

BAGS, BAGS_SEED = [(0.5, 3), (0.5, 5), (0.63, 5), (0.8, 5)], 99
"""Bagged ensembles (share of reference rows, neighbours), 10 members each, drawn in this order."""

FOCUS = ["digits occlusion 3x3", "digits dim x0.4", "census shifted: age +20 years", "digits rotation 6 deg"]
"""In-range scenarios shown apart: where the variants trade against each other."""


def vote_scores(near: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """(m, K) votes of each row's neighbours ``near`` (nearest first), each weighing 1 plus a small
    rank weight: the monitor's vote, whose argmax breaks ties by the nearer neighbours."""
    m, k = near.shape
    rank = 1.0 + 1e-3 * (k - np.arange(k))
    cells = (np.arange(m)[:, None] * n_classes + labels[near]).ravel()
    return np.bincount(cells, weights=np.tile(rank, m), minlength=m * n_classes).reshape(m, n_classes)


def nearest(dist: np.ndarray, k: int) -> np.ndarray:
    """Each row's ``k`` smallest columns of ``dist``, nearest first."""
    near = np.argpartition(dist, k - 1, axis=1)[:, :k]
    return np.take_along_axis(near, np.take_along_axis(dist, near, axis=1).argsort(axis=1), axis=1)


def squared_distances(z: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """(m, n) squared Euclidean distances between standardised rows."""
    return np.maximum(np.einsum("ij,ij->i", z, z)[:, None] - 2.0 * z @ ref.T + np.einsum("ij,ij->i", ref, ref), 0.0)


def three_way(f: np.ndarray, g: np.ndarray, h: np.ndarray, n_classes: int) -> float:
    """f's accuracy from the pairwise agreements of three classifiers (Platanios et al., 2014),
    errors assumed independent and spread evenly over the other classes: with
    ``A = (K agree - 1) / (K - 1) = e_f e_g`` and ``e = (K accuracy - 1) / (K - 1)``,
    ``e_f = sqrt(A_fg A_fh / A_gh)``."""
    def excess(a: np.ndarray, b: np.ndarray) -> float:
        return max((float((a == b).mean()) * n_classes - 1) / (n_classes - 1), 1e-6)

    e = np.sqrt(excess(f, g) * excess(f, h) / excess(g, h))
    return float((1 + (n_classes - 1) * e) / n_classes)


@dataclass
class Rows:
    """What the variants read of a set of rows (the reference's left-one-out, or a window's)."""

    served: np.ndarray  # (m,) the served model's class
    confidence: np.ndarray  # (m,) its top-class probability
    near: np.ndarray  # (m, KMAX) nearest reference rows, nearest first
    fifth: np.ndarray  # (m,) distance to the 5th nearest
    halves: np.ndarray  # (HALVES, m) kNN-5 votes on random halves of the features
    centroid: np.ndarray  # (m,) nearest class centroid
    dist: np.ndarray  # (m, n) squared distances to the reference rows (the bagged members' votes)

    def vote(self, labels: np.ndarray, n_classes: int, k: int) -> np.ndarray:
        """The k-nearest-neighbour vote."""
        return vote_scores(self.near[:, :k], labels, n_classes).argmax(axis=1)

    def agrees(self, labels: np.ndarray, n_classes: int, k: int) -> np.ndarray:
        """1.0 where the served class is the kNN-k vote."""
        return (self.vote(labels, n_classes, k) == self.served).astype(np.float64)


class ReferenceSide:
    """One data set's reference: the monitor's surrogate and bound, and the reference-side values
    every variant's offset needs (left-one-out on the surrogate's rows)."""

    def __init__(self, ref_x: np.ndarray, ref_p: np.ndarray, ref_y: np.ndarray) -> None:
        k = ref_p.shape[1]
        reference = bench.monitor_reference(ref_x, ref_p, ref_y)
        surrogate = agreement.from_reference(reference, k)
        bound = class_mix.from_reference(reference, k)
        assert surrogate is not None and bound is not None
        self.s, self.bound, self.k = surrogate, bound, k
        self.doc = AccuracyEstimator.fit(ref_p.max(axis=1), ref_p.argmax(axis=1) == ref_y)
        rows = bench.surrogate_rows(len(ref_y))
        z, y = surrogate.standardised, surrogate.labels
        self.correct = (ref_p[rows].argmax(axis=1) == y).astype(np.float64)
        self.accuracy = surrogate.reference_accuracy
        n_features = z.shape[1]
        g = np.random.default_rng(HALVES_SEED)
        self.halves = [np.sort(g.permutation(n_features)[: n_features // 2]) for _ in range(HALVES)]
        present = np.bincount(y, minlength=k)
        self.centroids = np.stack([z[y == c].mean(axis=0) if present[c] else np.zeros(n_features) for c in range(k)])
        self.absent = present == 0
        dist = squared_distances(z, z)
        np.fill_diagonal(dist, np.inf)  # left one out: no row votes for itself
        near = nearest(dist, KMAX)
        halves = np.stack([self.half_votes(z, i, exclude_self=True) for i in range(HALVES)])
        # Each row's own class centroid without it (left one out); the others' as they are.
        cd = squared_distances(z, self.centroids)
        own = self.centroids[y] - (z - self.centroids[y]) / np.maximum(present[y] - 1, 1)[:, None]
        cd[np.arange(len(y)), y] = ((z - own) ** 2).sum(axis=1)
        cd[:, self.absent] = np.inf
        self.rows = Rows(ref_p[rows].argmax(axis=1), ref_p[rows].max(axis=1), near,
                         np.sqrt(np.take_along_axis(dist, near[:, 4:5], axis=1)[:, 0]), halves, cd.argmin(axis=1), dist)
        self.quintiles = np.quantile(self.rows.fifth, [0.2, 0.4, 0.6, 0.8])
        self.far = float(np.quantile(self.rows.fifth, 0.99))
        g = np.random.default_rng(BAGS_SEED)
        n = len(y)
        self.bags = {c: [np.sort(g.choice(n, int(c[0] * n), replace=False)) for _ in range(10)] for c in BAGS}
        self.bag_agreement = {c: self.out_of_bag(c) for c in BAGS}

    def half_votes(self, z: np.ndarray, i: int, exclude_self: bool = False) -> np.ndarray:
        """kNN-5 vote on the i-th random half of the features."""
        cols = self.halves[i]
        dist = squared_distances(z[:, cols], self.s.standardised[:, cols])
        if exclude_self:
            np.fill_diagonal(dist, np.inf)
        return vote_scores(nearest(dist, 5), self.s.labels, self.k).argmax(axis=1)

    def out_of_bag(self, bag: tuple[float, int]) -> float:
        """The reference's agreement with a bagged ensemble: each row voted by the members not holding it."""
        n = len(self.s.labels)
        hits, counts = np.zeros(n), np.zeros(n)
        for member in self.bags[bag]:
            oob = np.setdiff1d(np.arange(n), member)
            near = nearest(self.rows.dist[np.ix_(oob, member)], bag[1])
            hits[oob] += vote_scores(near, self.s.labels[member], self.k).argmax(axis=1) == self.rows.served[oob]
            counts[oob] += 1
        held = counts > 0
        return float((hits[held] / counts[held]).mean())

    def window(self, x: np.ndarray, proba: np.ndarray) -> Rows:
        """A window's rows as the variants read them."""
        z = self.s.scale.apply(x)
        dist = squared_distances(z, self.s.standardised)
        near = nearest(dist, KMAX)
        cd = squared_distances(z, self.centroids)
        cd[:, self.absent] = np.inf
        return Rows(proba.argmax(axis=1), proba.max(axis=1), near,
                    np.sqrt(np.take_along_axis(dist, near[:, 4:5], axis=1)[:, 0]),
                    np.stack([self.half_votes(z, i) for i in range(HALVES)]), cd.argmin(axis=1), dist)


# --- variants: each the window's accuracy, uncapped (the caller caps it by the class-mix bound) ---
Variant = Callable[[ReferenceSide, Rows], float]


def knn(k: int) -> Variant:
    """GDE with a kNN-k vote: accuracy_ref + agreement_window - agreement_ref."""
    def estimate(r: ReferenceSide, w: Rows) -> float:
        s = r.s
        return r.accuracy + w.agrees(s.labels, s.n_classes, k).mean() - r.rows.agrees(s.labels, s.n_classes, k).mean()
    estimate.__doc__ = knn.__doc__
    return estimate


def per_class_offset(r: ReferenceSide, w: Rows) -> float:
    """Offsets (accuracy - agreement) per predicted class on the reference, weighed by the window's
    predicted mix (a class the reference never predicts takes the overall offset)."""
    s = r.s
    a_r, a_w = r.rows.agrees(s.labels, s.n_classes, 5), w.agrees(s.labels, s.n_classes, 5)
    n_r = np.bincount(r.rows.served, minlength=s.n_classes)
    gap = np.bincount(r.rows.served, weights=r.correct - a_r, minlength=s.n_classes)
    offset = np.where(n_r > 0, gap / np.maximum(n_r, 1), r.accuracy - a_r.mean())
    return float(a_w.mean() + np.bincount(w.served, minlength=s.n_classes) / len(w.served) @ offset)


def distance_quintiles(r: ReferenceSide, w: Rows) -> float:
    """Offsets per quintile of the 5th neighbour's distance (the reference's left-one-out quintiles),
    weighed by the window's rows in each: far rows get the offset of the reference's far rows."""
    s = r.s
    a_r, a_w = r.rows.agrees(s.labels, s.n_classes, 5), w.agrees(s.labels, s.n_classes, 5)
    b_r, b_w = np.searchsorted(r.quintiles, r.rows.fifth), np.searchsorted(r.quintiles, w.fifth)
    offset = np.bincount(b_r, weights=r.correct - a_r, minlength=5) / np.bincount(b_r, minlength=5)
    return float(a_w.mean() + np.bincount(b_w, minlength=5) / len(b_w) @ offset)


def far_rows_by_doc(r: ReferenceSide, w: Rows) -> float:
    """Rows beyond the reference's 99th percentile of that distance (no neighbour to vote) by their
    confidence plus the reference's accuracy - mean confidence; the rest by agreement plus the
    offset of the reference's rows within it."""
    s = r.s
    a_r, a_w = r.rows.agrees(s.labels, s.n_classes, 5), w.agrees(s.labels, s.n_classes, 5)
    far, within = w.fifth > r.far, r.rows.fifth <= r.far
    offset_agree = (r.correct[within] - a_r[within]).mean()
    offset_conf = r.accuracy - r.rows.confidence.mean()
    total = a_w[~far].sum() + offset_agree * (~far).sum() + (w.confidence[far] + offset_conf).sum()
    return float(total / len(w.served))


def soft(k: int) -> Variant:
    """Soft agreement: the (rank-weighted) share of the k neighbours voting the served class."""
    def share(rows: Rows, r: ReferenceSide) -> float:
        scores = vote_scores(rows.near[:, :k], r.s.labels, r.s.n_classes)
        return float((scores[np.arange(len(rows.served)), rows.served] / scores.sum(axis=1)).mean())

    def estimate(r: ReferenceSide, w: Rows) -> float:
        return r.accuracy + share(w, r) - share(r.rows, r)
    estimate.__doc__ = soft.__doc__
    return estimate


def feature_halves(r: ReferenceSide, w: Rows) -> float:
    """Mean agreement with kNN-5 votes on random halves of the features: members that err less
    like the served model where one half of the features misleads."""
    return float(r.accuracy + (w.halves == w.served).mean() - (r.rows.halves == r.rows.served).mean())


def bagged(bag: tuple[float, int]) -> Variant:
    """Mean agreement with kNN votes on random subsets of the reference rows (out-of-bag offset)."""
    def estimate(r: ReferenceSide, w: Rows) -> float:
        labels = r.s.labels
        agree = np.mean([(vote_scores(nearest(w.dist[:, m], bag[1]), labels[m], r.k).argmax(axis=1) == w.served).mean()
                         for m in r.bags[bag]])
        return float(r.accuracy + agree - r.bag_agreement[bag])
    estimate.__doc__ = bagged.__doc__
    return estimate


def slope_undone(r: ReferenceSide, w: Rows) -> float:
    """GDE's slope undone: a drop d moves agreement by d (a - (1 - a)/(K - 1)) for a surrogate of
    accuracy a (its left-one-out accuracy on the reference), so divide the change by it."""
    s = r.s
    a = float((r.rows.vote(s.labels, s.n_classes, 5) == s.labels).mean())
    change = w.agrees(s.labels, s.n_classes, 5).mean() - r.rows.agrees(s.labels, s.n_classes, 5).mean()
    return float(r.accuracy + change / (a - (1 - a) / (s.n_classes - 1)))


def three_way_agreement(k: int) -> Variant:
    """Three-way agreement of the served model, the kNN-k vote and the nearest class centroid: does
    not assume the surrogate kept its accuracy; the reference's value is the offset."""
    def estimate(r: ReferenceSide, w: Rows) -> float:
        s = r.s
        window = three_way(w.served, w.vote(s.labels, s.n_classes, k), w.centroid, s.n_classes)
        ref = three_way(r.rows.served, r.rows.vote(s.labels, s.n_classes, k), r.rows.centroid, s.n_classes)
        return r.accuracy + window - ref
    estimate.__doc__ = three_way_agreement.__doc__
    return estimate


def centroid(r: ReferenceSide, w: Rows) -> float:
    """GDE with the nearest class centroid (left one out on the reference) instead of kNN."""
    return float(r.accuracy + (w.centroid == w.served).mean() - (r.rows.centroid == r.rows.served).mean())


def surrogate_change(r: ReferenceSide, w: Rows, k: int) -> float:
    """How much accuracy the three-way estimate says the kNN-k vote itself lost (window - reference)."""
    s = r.s
    window = three_way(w.vote(s.labels, s.n_classes, k), w.served, w.centroid, s.n_classes)
    ref = three_way(r.rows.vote(s.labels, s.n_classes, k), r.rows.served, r.rows.centroid, s.n_classes)
    return window - ref


VARIANTS: dict[str, Variant] = {
    "k=3": knn(3), "k=10": knn(10),
    "offset per predicted class": per_class_offset,
    "offset per distance quintile": distance_quintiles,
    "far rows by DoC": far_rows_by_doc,
    "soft agreement, k=5": soft(5), "soft agreement, k=10": soft(10),
    "feature-half ensemble": feature_halves,
    **{f"bagged {frac:.0%} of rows, k={k}": bagged((frac, k)) for frac, k in BAGS},
    "GDE's slope undone": slope_undone,
    "three-way, k=3": three_way_agreement(3), "three-way, k=10": three_way_agreement(10),
    "nearest class centroid": centroid,
}
"""Variants capped by the class-mix bound, in table order after the baseline."""

BASELINE = "k=5, the monitor's"

COMBINED: dict[str, tuple[str, ...]] = {
    "median: k=5, feature halves, three-way k=3": (BASELINE, "feature-half ensemble", "three-way, k=3"),
    "median: k=5, feature halves, three-way k=10": (BASELINE, "feature-half ensemble", "three-way, k=10"),
    "median: k=5, feature halves, distance quintiles": (BASELINE, "feature-half ensemble",
                                                        "offset per distance quintile"),
    "median: k=3, 5, 10": ("k=3", BASELINE, "k=10"),
    "median of five": (BASELINE, "feature-half ensemble", "three-way, k=3", "offset per distance quintile",
                       "offset per predicted class"),
}
"""Per-window medians of capped estimates."""

PICK = "k=3 or k=10, whichever lost less (three-way)"
DOC = "DoC (confidence, uncapped, for comparison)"


def window_estimates(r: ReferenceSide, x: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Every estimate of one window."""
    w = r.window(x, proba)
    cap = r.bound.bound(x, np.bincount(w.served, minlength=r.k))
    fitted = r.doc.estimate(bench.histogram(w.confidence))
    out = {DOC: fitted.value if fitted is not None else float("nan"),
           BASELINE: min(r.s.estimate(x, w.served).value, cap)}
    out.update({name: min(fn(r, w), cap) for name, fn in VARIANTS.items()})
    out[PICK] = out["k=3"] if surrogate_change(r, w, 3) >= surrogate_change(r, w, 10) else out["k=10"]
    out.update({name: float(np.median([out[m] for m in parts])) for name, parts in COMBINED.items()})
    return out


def measure(sets: list[tuple[str, *bench.Labelled]]) -> dict[str, dict]:
    """Mean absolute error per estimate, by kind of window (estimate.py's grading) and by scenario,
    and on unshifted scenarios the signed mean error (the reference offset's sampling error)."""
    by_kind: dict[str, dict[str, list[float]]] = {kind: {} for kind in bench.KINDS}
    by_scenario: dict[str, dict[str, float]] = {}
    bias: dict[str, dict[str, float]] = {}  # unshifted scenarios' signed mean error (estimate - realised)
    for _, ref_x, ref_p, ref_y, _training, scenarios in sets:  # held-out neighbours only (module doc)
        r = ReferenceSide(ref_x, ref_p, ref_y)
        ref_acc = float((ref_p.argmax(axis=1) == ref_y).mean())
        for sc in scenarios:
            kind = bench.grade(sc, ref_acc)
            signed: dict[str, list[float]] = {}
            for p, x, y in zip(sc.proba, sc.features, sc.labels, strict=True):
                real = float((p.argmax(axis=1) == y).mean())
                for m, v in window_estimates(r, x, p).items():
                    signed.setdefault(m, []).append(v - real)
            by_scenario[sc.name] = {m: float(np.abs(e).mean()) for m, e in signed.items()}
            if kind == "none":
                bias[sc.name] = {m: float(np.mean(e)) for m, e in signed.items()}
            for m, e in signed.items():
                by_kind[kind].setdefault(m, []).extend(np.abs(e).tolist())
    return {"kind": {k: {m: float(np.mean(e)) for m, e in d.items()} for k, d in by_kind.items() if d},
            "scenario": by_scenario, "bias": bias}


def table(header: list[str], rows: list[list[str]]) -> None:
    print("| " + " | ".join(header) + " |")
    print("| --- | " + " | ".join("---:" for _ in header[1:]) + " |")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model-dir", type=Path, help="trained digits model (default: train one, seeded)")
    ap.add_argument("--peers-venv", type=Path, default=Path(os.environ.get("DRIFTWATCH_PEERS_VENV",
                                                                             "/tmp/driftwatch-peers-venv")),
                    help="venv loading the census data (benchmarks/peers/setup.sh)")
    ap.add_argument("--windows", type=int, default=20, help="windows per scenario")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 0],
                    help="rng seeds of the windows: the first decides, the others confirm (estimate.py: 0)")
    args = ap.parse_args()
    model_dir = bench.digits_model(args.model_dir)
    results = {}
    for seed in args.seeds:
        t0 = time.perf_counter()
        sets = bench.scenario_sets(model_dir, args.peers_venv, args.windows, np.random.default_rng(seed))
        t1 = time.perf_counter()
        results[seed] = measure(sets)
        print(f"\n#### Seed {seed} (windows built in {t1 - t0:.0f} s, estimated in {time.perf_counter() - t1:.0f} s; "
              f"MAE, {args.windows} windows per scenario)\n")
        kinds, scen = results[seed]["kind"], results[seed]["scenario"]
        base = kinds["shift"][BASELINE]
        focus = [f for f in FOCUS if f in scen]
        table(["estimate", *(bench.KINDS[k] for k in kinds), "in range - k=5", *focus],
              [[m, *(f"{kinds[k][m]:.3f}" for k in kinds), f"{kinds['shift'][m] - base:+.3f}",
                *(f"{scen[f][m]:.3f}" for f in focus)] for m in kinds["shift"]])
        print("\nSigned mean error (estimate - realised) on unshifted windows: " + "; ".join(
            f"{name}: k=3 {b['k=3']:+.3f}, k=5 {b[BASELINE]:+.3f}, k=10 {b['k=10']:+.3f}"
            for name, b in results[seed]["bias"].items()))
    last = args.seeds[-1]
    kinds, scen = results[last]["kind"], results[last]["scenario"]
    focus = [f for f in FOCUS[:3] if f in scen]
    print(f"\n#### Summary (in range on every seed, the rest on seed {last})\n")
    table(["estimate", *(f"in range, seed {s}" for s in args.seeds), *(f"- k=5, seed {s}" for s in args.seeds),
           f"unshifted, seed {last}", f"label shift, seed {last}", *(f"{f}, seed {last}" for f in focus)],
          [[m, *(f"{results[s]['kind']['shift'][m]:.3f}" for s in args.seeds),
            *(f"{results[s]['kind']['shift'][m] - results[s]['kind']['shift'][BASELINE]:+.3f}" for s in args.seeds),
            f"{kinds['none'][m]:.3f}", f"{kinds['labels'][m]:.3f}", *(f"{scen[f][m]:.3f}" for f in focus)]
           for m in kinds["shift"]])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
