"""Training data: scikit-learn's bundled digits, or a user's CSV.

Digits ships inside the scikit-learn wheel, so the default model trains with
no network access.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

DIGITS = "digits"


@dataclass(frozen=True, slots=True)
class Dataset:
    features: npt.NDArray[np.float32]
    labels: npt.NDArray[np.int64]
    feature_names: list[str]
    class_names: list[str]
    source: str
    label_column: str | None

    @property
    def sha256(self) -> str:
        digest = hashlib.sha256()
        digest.update(np.ascontiguousarray(self.features).tobytes())
        digest.update(np.ascontiguousarray(self.labels).tobytes())
        return digest.hexdigest()


def load_digits_dataset() -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return Dataset(
        features=bunch.data.astype(np.float32),
        labels=bunch.target.astype(np.int64),
        feature_names=[f"pixel_{r}_{c}" for r in range(8) for c in range(8)],
        class_names=[str(c) for c in bunch.target_names],
        source=DIGITS,
        label_column=None,
    )


def load_csv_dataset(path: Path, label_column: str) -> Dataset:
    """Every column but ``label_column`` is a numeric feature; labels may be any strings."""
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            raise ValueError(f"{path} is empty") from None
        if label_column not in header:
            raise ValueError(f"label column {label_column!r} not in {path} (columns: {header})")
        rows = list(reader)
    if not rows:
        raise ValueError(f"{path} has a header but no rows")
    label_at = header.index(label_column)
    feature_names = [name for i, name in enumerate(header) if i != label_at]
    table = np.array(rows, dtype=object)
    raw_labels = table[:, label_at].astype(str)
    try:
        features = np.delete(table, label_at, axis=1).astype(np.float32)
    except ValueError as exc:
        raise ValueError(f"{path}: feature columns must be numeric ({exc})") from exc
    if not np.isfinite(features).all():
        raise ValueError(f"{path}: features contain NaN or infinite values")
    class_names, labels = np.unique(raw_labels, return_inverse=True)
    if len(class_names) < 2:
        raise ValueError(f"{path}: need at least two classes in {label_column!r}")
    return Dataset(
        features=features,
        labels=labels.astype(np.int64),
        feature_names=feature_names,
        class_names=[str(c) for c in class_names],
        source=str(path),
        label_column=label_column,
    )


def load_dataset(source: str, label_column: str = "label") -> Dataset:
    if source == DIGITS:
        return load_digits_dataset()
    return load_csv_dataset(Path(source), label_column)


def categorical_mask(features: npt.NDArray[np.float32], max_levels: int = 10) -> list[bool]:
    """Integer-valued features with few levels are tested with chi-squared, not KS.

    Digits' pixels take 17 integer levels, so they stay numeric; a 0/1 flag or a
    small code column would be categorical.
    """
    integral = np.all(features == np.round(features), axis=0)
    levels = np.array([len(np.unique(col)) for col in features.T])
    return [bool(flag) for flag in integral & (levels <= max_levels) & (levels > 1)]
