"""Arrow record batches (a Parquet file, a CSV read by pyarrow, a Parquet body) as builder chunks.

pyarrow is optional (the ``register`` extra): it is imported by the callers
that need it, and passed in here as already-read batches.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from shared.registration.errors import RegistrationError
from shared.registration.spec import RegistrationSpec


def chunk_from_arrow(batch: Any, spec: RegistrationSpec) -> dict[str, np.ndarray]:
    """A ``pyarrow.RecordBatch`` or ``Table`` as the columns a :class:`ReferenceBuilder` takes:
    numbers as float64 (null = NaN), class labels as text (null = ``""``)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    names = set(batch.schema.names)
    chunk: dict[str, np.ndarray] = {}
    text = set(spec.text_columns)
    for name in spec.columns:
        if name not in names:
            shown = ", ".join(batch.schema.names[:20])
            raise RegistrationError(("reference", name), f"no such column (the reference has: {shown})")
        column = batch.column(name)
        try:
            if name in text:
                column = pc.fill_null(pc.cast(column, pa.string()), "")
                chunk[name] = np.asarray(column.to_numpy(zero_copy_only=False), dtype=str)
            else:
                chunk[name] = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            kind = "text" if name in text else "a number"
            raise RegistrationError(
                ("reference", name), f"cannot read {column.type} values as {kind}: {str(exc)[:200]}"
            ) from None
    return chunk
