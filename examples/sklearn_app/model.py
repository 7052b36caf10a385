"""The example's model: scikit-learn's bundled breast-cancer data, a logistic regression.

Everything the app and the register step share: the data (no download), the
feature and class names, training, and the reference file Driftwatch is
registered with. The pipeline imputes missing values (NaN) itself, so the
app can serve rows with nulls; Driftwatch is given the rows as they came,
nulls included, and counts them as nulls.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

NAME = "breast-cancer"
VERSION = "1"
SEED = 0


def load() -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Features (569 x 30), labels (0/1), feature names (snake_case) and class names."""
    data = load_breast_cancer()
    names = [str(n).replace(" ", "_") for n in data.feature_names]
    return data.data, data.target, names, [str(c) for c in data.target_names]


def classifier() -> Pipeline:
    return make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression(max_iter=1000, random_state=SEED))


def train(x: np.ndarray, y: np.ndarray) -> Pipeline:
    return classifier().fit(x, y)


def write_reference(path: Path) -> Path:
    """The reference file for ``driftwatch register``: every row with a prediction made
    without it (5-fold cross-validation), the class probabilities and the true label."""
    x, y, names, classes = load()
    probabilities = cross_val_predict(classifier(), x, y, cv=5, method="predict_proba")
    predicted = probabilities.argmax(axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow([*names, "prediction", *(f"p_{c}" for c in classes), "label"])
        for row, p, probs, label in zip(x.tolist(), predicted, probabilities.tolist(), y, strict=True):
            out.writerow([*row, classes[p], *probs, classes[label]])
    return path


if __name__ == "__main__":
    import sys

    target = Path(sys.argv[1] if len(sys.argv) > 1 else "reference.csv")
    print(write_reference(target))
