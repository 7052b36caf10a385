"""Reading a reference file in chunks: CSV (pyarrow if installed, else the standard library) or Parquet.

Memory stays bounded whatever the file's size: chunks of about
``chunk_rows`` rows go to the :class:`~shared.registration.ReferenceBuilder`
one at a time. Parquet needs pyarrow (``pip install 'driftwatch[register]'``);
CSV reads without it, about ten times slower.

A cell counts as missing when it is empty or one of :data:`NULL_TOKENS`, in
both CSV readers (pyarrow's own default list is longer; one list keeps them alike).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import numpy as np

from shared.registration.arrow import chunk_from_arrow
from shared.registration.errors import RegistrationError
from shared.registration.spec import RegistrationSpec

NULL_TOKENS = ("", "NA", "N/A", "NaN", "nan", "null", "NULL", "None")
CHUNK_ROWS = 20_000
PARQUET_SUFFIXES = (".parquet", ".pq")


def is_parquet(path: Path) -> bool:
    return path.suffix.lower() in PARQUET_SUFFIXES


def has_pyarrow() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def _needs_pyarrow(path: Path) -> RegistrationError:
    return RegistrationError((str(path),), "reading Parquet needs pyarrow: pip install 'driftwatch[register]'")


def column_names(path: Path) -> list[str]:
    """The file's columns, in order (a CSV's header; a Parquet file's schema)."""
    if is_parquet(path):
        if not has_pyarrow():
            raise _needs_pyarrow(path)
        import pyarrow.parquet as pq

        return list(pq.ParquetFile(path).schema_arrow.names)
    with path.open(newline="") as handle:
        header = next(csv.reader(handle), None)
    if not header:
        raise RegistrationError((str(path),), "empty file: no header row")
    return header


def read_chunks(path: Path, spec: RegistrationSpec, chunk_rows: int = CHUNK_ROWS) -> Iterator[dict[str, np.ndarray]]:
    """The columns the registration reads, chunk by chunk."""
    if is_parquet(path):
        if not has_pyarrow():
            raise _needs_pyarrow(path)
        yield from _parquet_chunks(path, spec, chunk_rows)
    elif has_pyarrow():
        yield from _arrow_csv_chunks(path, spec, chunk_rows)
    else:
        yield from _stdlib_csv_chunks(path, spec, chunk_rows)


def _parquet_chunks(path: Path, spec: RegistrationSpec, chunk_rows: int) -> Iterator[dict[str, np.ndarray]]:
    import pyarrow.parquet as pq

    # pre_buffer (the default) kept every row group read so far in memory: 1.3 GB after 800k rows here.
    with pq.ParquetFile(path, pre_buffer=False) as parquet:
        missing = [c for c in spec.columns if c not in parquet.schema_arrow.names]
        if missing:
            raise RegistrationError(("reference", missing[0]), f"no such column in {path}")
        for batch in parquet.iter_batches(batch_size=chunk_rows, columns=spec.columns):
            yield chunk_from_arrow(batch, spec)


def _arrow_csv_chunks(path: Path, spec: RegistrationSpec, chunk_rows: int) -> Iterator[dict[str, np.ndarray]]:
    import pyarrow as pa
    from pyarrow import csv as pacsv

    header = column_names(path)
    missing = [c for c in spec.columns if c not in header]
    if missing:
        raise RegistrationError(("reference", missing[0]), f"no such column in {path} (columns: {header[:20]})")
    text = set(spec.text_columns)
    convert = pacsv.ConvertOptions(
        include_columns=spec.columns,
        column_types={c: pa.string() if c in text else pa.float64() for c in spec.columns},
        null_values=list(NULL_TOKENS),
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )
    # Blocks of about chunk_rows rows (a CSV cell of a float is ~10 bytes), between 1 and 64 MiB.
    read = pacsv.ReadOptions(block_size=max(1 << 20, min(64 << 20, chunk_rows * len(header) * 10)))
    try:
        reader = pacsv.open_csv(path, read_options=read, convert_options=convert)
        for batch in reader:
            yield chunk_from_arrow(batch, spec)
    except pa.ArrowInvalid as exc:  # e.g. "In CSV column #3: Row #17: CSV conversion error to double: ..."
        raise RegistrationError((str(path),), str(exc)[:300]) from None


def _stdlib_csv_chunks(path: Path, spec: RegistrationSpec, chunk_rows: int) -> Iterator[dict[str, np.ndarray]]:
    text = set(spec.text_columns)
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header:
            raise RegistrationError((str(path),), "empty file: no header row")
        missing = [c for c in spec.columns if c not in header]
        if missing:
            raise RegistrationError(("reference", missing[0]), f"no such column in {path} (columns: {header[:20]})")
        at = {c: header.index(c) for c in spec.columns}
        first_line = 2
        while rows := list(islice(reader, chunk_rows)):
            ragged = next((i for i, row in enumerate(rows) if len(row) != len(header)), None)
            if ragged is not None:
                fields = len(rows[ragged])
                raise RegistrationError(
                    (str(path),), f"line {first_line + ragged}: {fields} fields, the header has {len(header)}"
                )
            table = np.array(rows, dtype=str)
            chunk: dict[str, np.ndarray] = {}
            for name, j in at.items():
                cells = table[:, j]
                missing_cell = np.isin(cells, NULL_TOKENS)
                if name in text:
                    chunk[name] = np.where(missing_cell, "", cells)
                    continue
                try:
                    chunk[name] = np.where(missing_cell, "nan", cells).astype(np.float64)
                except ValueError:
                    chunk[name] = cells  # not numbers: the builder names the first bad cell
            first_line += len(rows)
            yield chunk
