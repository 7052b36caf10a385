"""Training data: scikit-learn's bundled digits, or a user's CSV.

Digits ships inside the scikit-learn wheel, so the default model trains with
no network access.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
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
    # Per feature: tested with chi-squared. None: detect from the data (categorical_mask).
    categorical: list[bool] | None = None

    @property
    def default_model_name(self) -> str:
        """``digits-mlp`` for the bundled digits, else the CSV file's name without suffix
        (``my.csv`` -> ``my``): two datasets never share a name by default."""
        return "digits-mlp" if self.source == DIGITS else Path(self.source).stem

    def new_version(self, now: datetime | None = None) -> str:
        """A version for one training run: UTC time to the second, then the data hash's
        first 8 hex digits (``20261201-185530-3fa2c1d0``). Each run gets its own (a
        retrained model is another model even on the same data), versions sort by age,
        and the suffix shows at a glance which runs share their data.

        >>> import numpy as np
        >>> ds = Dataset(np.zeros((2, 1), np.float32), np.array([0, 1]), ["a"], ["x", "y"], "data/my.csv", "y")
        >>> ds.new_version(datetime(2026, 12, 1, 18, 55, 30, tzinfo=UTC))[:15], ds.default_model_name
        ('20261201-185530', 'my')
        """
        stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%d-%H%M%S")
        return f"{stamp}-{self.sha256[:8]}"

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
        # Pixel intensities are ordinal: KS, not chi-squared, even where an edge
        # pixel takes few values (chi-squared ignores the order and flagged an
        # unshifted held-out sample on pixel_7_1, where KS gave p = 0.999).
        categorical=[False] * 64,
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


AUTO = "auto"
NONE = "none"


def load_dataset(source: str, label_column: str = "label", categorical: str = AUTO) -> Dataset:
    """``categorical``: ``auto`` (the dataset's own declaration, else detected),
    ``none``, or comma-separated feature names."""
    dataset = load_digits_dataset() if source == DIGITS else load_csv_dataset(Path(source), label_column)
    if categorical == AUTO:
        return dataset
    names = set() if categorical == NONE else {c.strip() for c in categorical.split(",") if c.strip()}
    unknown = names - set(dataset.feature_names)
    if unknown:
        raise ValueError(f"--categorical names unknown features: {sorted(unknown)}")
    return dataclasses.replace(dataset, categorical=[n in names for n in dataset.feature_names])


def categorical_mask(features: npt.NDArray[np.float32], max_levels: int = 10) -> list[bool]:
    """Detection for data that declares nothing: integer-valued features with few
    levels are tested with chi-squared, not KS.

    A guess: a small code column is nominal, but so looks an ordinal count with
    few values, for which KS is the better test. Datasets that know (digits)
    declare it, and ``driftwatch train --categorical`` overrides it.
    """
    integral = np.all(features == np.round(features), axis=0)
    levels = np.array([len(np.unique(col)) for col in features.T])
    return [bool(flag) for flag in integral & (levels <= max_levels) & (levels > 1)]
