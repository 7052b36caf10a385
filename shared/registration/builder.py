"""From reference columns, in chunks, to a model version's metadata and reference sample.

One pass over the reference, chunk by chunk (:meth:`ReferenceBuilder.add`):

- the values are checked (numeric features, no infinities, probabilities in
  [0, 1], a prediction on every row) and the first bad one is named by column
  and 0-based row;
- a bounded uniform sample is kept (:mod:`shared.registration.sample`);
- every numeric value goes to a per-column spill (:mod:`shared.registration.column_spill`)
  and the distinct class labels are counted.

:meth:`ReferenceBuilder.finish` then decides the label kind and class names
over the whole file, and summarises each feature one column at a time: count
and missing are exact counts; min, max and the quantiles are exact over the
float32 values (the precision events carry; quantiles by ``numpy.quantile``'s
default linear method); the mean is summed in float64. Categorical features
(``auto``) are detected over the whole file with the trainer's rule.

The content hash (``data.sha256``) covers the parsed values in file order, so
the same data gives the same hash from a CSV or a Parquet file, in any chunking.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from shared.model_metadata import (
    DataSummary,
    FeatureSummary,
    LabelKind,
    ModelMetadata,
    Reference,
    ReferenceSummary,
)
from shared.registration.column_spill import ColumnSpill
from shared.registration.errors import RegistrationError
from shared.registration.labels import (
    canonical_label,
    label_kind_of,
    label_text,
    neutral_label,
    sorted_class_names,
)
from shared.registration.sample import BottomKSample
from shared.registration.spec import MAX_CLASSES, RegistrationSpec

QUANTILE_LEVELS = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
MAX_CATEGORICAL_LEVELS = 10  # the trainer's rule (driftwatch.trainer.datasets.categorical_mask)
PROBABILITY_TOLERANCE = 1e-6
REFERENCE = "reference"


def few_integer_levels(sorted_values: npt.NDArray[np.float32], max_levels: int = MAX_CATEGORICAL_LEVELS) -> bool:
    """Integer-valued with 2 to ``max_levels`` distinct values: tested with chi-squared, not KS.

    >>> few_integer_levels(np.array([0, 0, 1, 2], np.float32)), few_integer_levels(np.array([0, 0.5], np.float32))
    (True, False)
    """
    if sorted_values.size == 0 or not np.array_equal(sorted_values, np.round(sorted_values)):
        return False
    levels = 1 + int(np.count_nonzero(np.diff(sorted_values)))
    return 1 < levels <= max_levels


def summarise(name: str, values: npt.NDArray[np.float32]) -> tuple[FeatureSummary, npt.NDArray[np.float32]]:
    """Exact summaries of one column's values (NaN = missing), and its sorted present values."""
    present = np.sort(values[~np.isnan(values)])
    missing = int(values.size - present.size)
    if present.size == 0:
        return FeatureSummary(name=name, count=0, missing=missing, quantiles=[None] * len(QUANTILE_LEVELS)), present
    quantiles = np.quantile(present.astype(np.float64), QUANTILE_LEVELS)
    return FeatureSummary(
        name=name,
        count=int(present.size),
        missing=missing,
        min=float(present[0]),
        max=float(present[-1]),
        mean=float(np.sum(present, dtype=np.float64) / present.size),
        quantiles=[float(q) for q in quantiles],
    ), present


def prediction_agreement(reference: Reference) -> float | None:
    """The share of reference rows whose prediction is their most probable class (None without both).

    Near 1 for ``predict`` and ``predict_proba`` of one model (a custom decision threshold moves
    some rows); far below, the probability columns are almost surely not in class order, and the
    label-free accuracy estimate would be computed on the wrong classes without any error.

    >>> ref = Reference(features=np.zeros((4, 1), np.float32), predicted_classes=np.array([0, 1, 1, 0]),
    ...                 probabilities=np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.1, 0.9]], np.float32),
    ...                 labels=np.zeros(0, np.int64))
    >>> prediction_agreement(ref)
    0.75
    """
    probabilities, predicted = reference.probabilities, reference.predicted_classes
    if predicted.size == 0 or probabilities.ndim != 2 or probabilities.shape[1] < 2:
        return None
    return float(np.mean(probabilities.argmax(axis=1) == predicted))


class ReferenceBuilder:
    """Feed it chunks of columns (:meth:`add`), then :meth:`finish`.

    A chunk maps column names to arrays of one length: numeric columns
    (features, probabilities, a regressor's prediction) as floats with NaN for
    a missing value, class-label columns as text with ``""`` for a missing one.
    ``spill_dir``: where the columns' values wait for their exact summaries
    (a temporary directory for a large file; None keeps them in memory).
    """

    def __init__(self, spec: RegistrationSpec, spill_dir: Path | None = None) -> None:
        self.spec = spec
        self.rows = 0
        self._numeric = [*spec.feature_names]
        if spec.task == "regression" and spec.prediction_column is not None:
            self._numeric.append(spec.prediction_column)
        self._spill = ColumnSpill(len(self._numeric), spill_dir)
        self._sample = BottomKSample(spec.sample_rows, spec.sample_seed)
        self._label_counts: dict[str, dict[str, int]] = {c: {} for c in spec.text_columns}
        self._hashes = {part: hashlib.sha256() for part in ("features", "prediction", "probabilities", "label")}

    # -- one chunk -----------------------------------------------------------
    def add(self, chunk: Mapping[str, np.ndarray]) -> None:
        n = self._length(chunk)
        if n == 0:
            return
        spec = self.spec
        features = self._numbers(chunk, n, spec.feature_names, allow_missing=True)
        sampled: dict[str, np.ndarray] = {"features": features}
        self._hashes["features"].update(features.tobytes())
        numeric = features
        if spec.prediction_column is not None:
            if spec.task == "regression":
                values = self._numbers(chunk, n, [spec.prediction_column], allow_missing=False)
                numeric = np.concatenate([features, values], axis=1)
                sampled["prediction"] = values[:, 0]
                self._hashes["prediction"].update(values.tobytes())
            else:
                sampled["prediction"] = self._labels(chunk, spec.prediction_column, allow_missing=False)
        if spec.probability_columns:
            probabilities = self._numbers(chunk, n, spec.probability_columns, allow_missing=False)
            self._check_probabilities(probabilities)
            sampled["probabilities"] = probabilities
            self._hashes["probabilities"].update(probabilities.tobytes())
        if spec.label_column is not None:
            sampled["label"] = self._labels(chunk, spec.label_column, allow_missing=True)
        self._spill.append(numeric)
        self._sample.add(sampled)
        self.rows += n

    def _length(self, chunk: Mapping[str, np.ndarray]) -> int:
        missing = [c for c in self.spec.columns if c not in chunk]
        if missing:
            shown = ", ".join(list(chunk)[:20])
            raise RegistrationError((REFERENCE, missing[0]), f"no such column (the reference has: {shown})")
        lengths = {c: len(chunk[c]) for c in self.spec.columns}
        if len(set(lengths.values())) > 1:
            first = self.spec.columns[0]
            odd = next(c for c, n in lengths.items() if n != lengths[first])
            raise RegistrationError(
                (REFERENCE, odd), f"{lengths[odd]} values where {first!r} has {lengths[first]}: lengths differ"
            )
        return lengths[self.spec.columns[0]]

    def _numbers(self, chunk: Mapping[str, np.ndarray], n: int, names: list[str], allow_missing: bool) -> np.ndarray:
        """The columns as one float32 block; the first value that cannot be one is named."""
        block64 = np.empty((n, len(names)), dtype=np.float64)
        for j, name in enumerate(names):
            try:
                block64[:, j] = np.asarray(chunk[name], dtype=np.float64)
            except (TypeError, ValueError, OverflowError):
                raise self._not_a_number(name, chunk[name]) from None
        with np.errstate(over="ignore"):  # beyond float32: inf, refused just below
            block = block64.astype(np.float32)
        bad = np.isinf(block) if allow_missing else ~np.isfinite(block)
        if bad.any():
            row, j = np.argwhere(bad)[0]
            value = block64[row, j]
            what = "missing" if np.isnan(value) else f"{value!r} is not a finite float32"
            raise RegistrationError((REFERENCE, names[j], self.rows + int(row)), what)
        return block

    def _not_a_number(self, name: str, values: np.ndarray) -> RegistrationError:
        """The first value of a column that is no number (a slow look, on the error path only)."""
        for row, value in enumerate(np.asarray(values, dtype=object).tolist()):
            try:
                float(value if value is not None else "nan")
            except (TypeError, ValueError, OverflowError):
                shown = repr(value)[:80]
                return RegistrationError((REFERENCE, name, self.rows + row), f"{shown} is not a number")
        return RegistrationError((REFERENCE, name), "not a numeric column")

    def _labels(self, chunk: Mapping[str, np.ndarray], name: str, allow_missing: bool) -> np.ndarray:
        try:
            raw = np.asarray(chunk[name])
        except ValueError:  # ragged lists
            raw = np.zeros((0, 0))
        if raw.ndim != 1:
            raise RegistrationError((REFERENCE, name), "expected one label (a string, number or boolean) per row")
        # Text ("" = missing) from a file; JSON values (None = missing) from a request body.
        texts = self._label_texts(name, raw) if raw.dtype == object else raw.astype(str)
        if not allow_missing and (texts == "").any():
            row = int(np.flatnonzero(texts == "")[0])
            raise RegistrationError((REFERENCE, name, self.rows + row), "missing (every row needs a prediction)")
        unique, counts = np.unique(texts[texts != ""], return_counts=True)
        seen = self._label_counts[name]
        for text, count in zip(unique.tolist(), counts.tolist(), strict=True):
            seen[text] = seen.get(text, 0) + count
        if len(seen) > MAX_CLASSES:
            hint = "; is it a regressor (task regression)?" if name == self.spec.prediction_column else ""
            raise RegistrationError((REFERENCE, name), f"more than {MAX_CLASSES} distinct labels{hint}")
        self._hash_labels(name, texts)
        return texts

    def _label_texts(self, name: str, raw: np.ndarray) -> np.ndarray:
        texts = []
        for row, value in enumerate(raw.tolist()):
            try:
                texts.append(label_text(value))
            except ValueError as exc:
                raise RegistrationError((REFERENCE, name, self.rows + row), str(exc)) from None
        return np.array(texts, dtype=str)

    def _hash_labels(self, name: str, texts: np.ndarray) -> None:
        """Labels enter the content hash spelled as their kind will (``True``, ``true`` and a boolean
        are one label; ``1.0`` and ``1`` too), so JSON, CSV and Parquet of the same data hash alike."""
        unique, inverse = np.unique(texts, return_inverse=True)
        spelled = np.array([neutral_label(t) for t in unique.tolist()] or [""], dtype=str)[inverse.reshape(-1)]
        self._hashes["prediction" if name == self.spec.prediction_column else "label"].update(
            ("\x1f".join(spelled.tolist()) + "\x1f").encode()  # each label ends in \x1f: chunking changes nothing
        )

    def _check_probabilities(self, block: np.ndarray) -> None:
        bad = (block < -PROBABILITY_TOLERANCE) | (block > 1 + PROBABILITY_TOLERANCE)
        if bad.any():
            row, j = np.argwhere(bad)[0]
            raise RegistrationError(
                (REFERENCE, self.spec.probability_columns[j], self.rows + int(row)),
                f"{float(block[row, j])!r} is not a probability in [0, 1]",
            )

    # -- the whole file --------------------------------------------------------
    def finish(self, name: str, version: str, created_at: str | None = None) -> tuple[ModelMetadata, Reference]:
        """The version's metadata and reference sample; the spill is released."""
        try:
            return self._finish(name, version, created_at)
        finally:
            self._spill.close()

    def _finish(self, name: str, version: str, created_at: str | None) -> tuple[ModelMetadata, Reference]:
        spec = self.spec
        if self.rows == 0:
            raise RegistrationError((REFERENCE,), "no rows")
        kind, class_names = self._classes()
        sample = self._sample.result()
        k = len(sample["features"])
        predicted_classes = np.zeros(0, np.int64)
        predicted_values = np.zeros(0, np.float32)
        if spec.task == "regression":
            if "prediction" in sample:
                predicted_values = sample["prediction"].astype(np.float32)
        elif "prediction" in sample:
            predicted_classes = self._class_indexes(sample["prediction"], kind, class_names, spec.prediction_column)
        elif "probabilities" in sample:  # the model's choice is its most probable class
            predicted_classes = sample["probabilities"].argmax(axis=1).astype(np.int64)
        labels = np.zeros(0, np.int64)
        if "label" in sample:
            labels = self._class_indexes(sample["label"], kind, class_names, spec.label_column)
        probabilities = sample.get("probabilities", np.zeros((k, 0), np.float32)).astype(np.float32)
        summary, categorical = self._summaries(k)
        metadata = ModelMetadata(
            name=name,
            version=version,
            feature_names=spec.feature_names,
            class_names=class_names,
            categorical=categorical,
            task=spec.task,
            label_kind=kind,
            has_probabilities=bool(spec.probability_columns),
            label_join=spec.label_join,
            training=None,
            data=DataSummary(source=spec.source, sha256=spec.sha256 or self._sha256(), label_column=spec.label_column),
            reference_summary=summary,
            created_at=created_at or datetime.now(UTC).isoformat(timespec="seconds"),
        )
        reference = Reference(
            features=sample["features"],
            predicted_classes=predicted_classes,
            probabilities=probabilities,
            labels=labels,
            predicted_values=predicted_values,
            labelled_features=sample["features"] if labels.size else np.zeros((0, 0), np.float32),
        )
        return metadata, reference

    def _classes(self) -> tuple[LabelKind, list[str]]:
        """The label kind and class names: declared, or from every label seen."""
        spec = self.spec
        if spec.task == "regression":
            return "integer", []
        seen = [t for counts in self._label_counts.values() for t in counts]
        if spec.class_names is not None:
            kind = spec.label_kind or label_kind_of(spec.class_names)
            try:
                names = [canonical_label(t, kind) for t in spec.class_names]
            except ValueError as exc:
                raise RegistrationError(("metadata", "class_names"), f"{exc} (label_kind {kind})") from None
            if len(set(names)) != len(names):
                raise RegistrationError(("metadata", "class_names"), f"a class is named twice: {names}")
            declared = set(names)
            for column, counts in self._label_counts.items():  # every label in the file, not only the sample's
                for text in counts:
                    if self._canonical(text, kind, column) not in declared:
                        raise RegistrationError(
                            (REFERENCE, column), f"{text!r} is not one of class_names {names[:10]}"
                        )
        else:
            kind = spec.label_kind or label_kind_of(seen)
            names = []
            for column, counts in self._label_counts.items():
                for text in counts:
                    names.append(self._canonical(text, kind, column))
            names = sorted_class_names(names, kind)
            k = len(spec.probability_columns)
            if k and len(names) != k:
                raise RegistrationError(
                    ("metadata", "class_names"),
                    f"{k} probability columns but {len(names)} classes seen ({names[:10]}): give class_names "
                    "in the probability columns' order",
                )
            if not k and len(names) < 2:
                raise RegistrationError(("metadata", "class_names"), f"{len(names)} classes seen: give class_names")
        k = len(spec.probability_columns)
        if k and len(names) != k:
            raise RegistrationError(
                ("metadata", "probability_columns"), f"{k} probability columns for {len(names)} class_names"
            )
        return kind, names

    def _canonical(self, text: str, kind: LabelKind, column: str) -> str:
        try:
            return canonical_label(text, kind)
        except ValueError as exc:
            raise RegistrationError((REFERENCE, column), f"{exc}: labels here are {kind}") from None

    def _class_indexes(
        self, texts: np.ndarray, kind: LabelKind, class_names: list[str], column: str | None
    ) -> npt.NDArray[np.int64]:
        """Label texts as indexes into ``class_names``; -1 where a label is missing."""
        assert column is not None
        index = {n: i for i, n in enumerate(class_names)}
        unique, inverse = np.unique(texts, return_inverse=True)
        codes = np.empty(len(unique), dtype=np.int64)
        for i, text in enumerate(unique.tolist()):
            if text == "":
                codes[i] = -1
                continue
            canonical = self._canonical(text, kind, column)
            if canonical not in index:
                raise RegistrationError((REFERENCE, column), f"{text!r} is not one of class_names {class_names[:10]}")
            codes[i] = index[canonical]
        return codes[inverse.reshape(-1)]

    def _summaries(self, sample_rows: int) -> tuple[ReferenceSummary, list[bool]]:
        spec = self.spec
        features: list[FeatureSummary] = []
        integer_levels: list[bool] = []
        for j, name in enumerate(spec.feature_names):
            summary, present = summarise(name, self._spill.column(j))
            features.append(summary)
            integer_levels.append(few_integer_levels(present))
        prediction = None
        if len(self._numeric) > len(spec.feature_names):
            prediction, _ = summarise(self._numeric[-1], self._spill.column(len(spec.feature_names)))
        computed = ReferenceSummary(
            rows=self.rows, sample_rows=sample_rows, sample_seed=spec.sample_seed,
            quantile_levels=list(QUANTILE_LEVELS), features=features, prediction=prediction,
        )
        if spec.categorical == "auto":
            categorical = integer_levels
        elif spec.categorical == "none":
            categorical = [False] * len(spec.feature_names)
        else:
            unknown = sorted(set(spec.categorical) - set(spec.feature_names))
            if unknown:
                raise RegistrationError(("metadata", "categorical"), f"not features: {unknown[:10]}")
            categorical = [n in spec.categorical for n in spec.feature_names]
        declared = spec.reference_summary
        if declared is not None:  # the columns are a sample of a file summarised where it was read
            if [f.name for f in declared.features] != spec.feature_names:
                loc = ("metadata", "reference_summary", "features")
                raise RegistrationError(loc, "names differ from feature_names")
            return declared.model_copy(update={"sample_rows": sample_rows}), categorical
        return computed, categorical

    def _sha256(self) -> str:
        combined = hashlib.sha256()
        for part in ("features", "prediction", "probabilities", "label"):
            combined.update(self._hashes[part].digest())
        return combined.hexdigest()
