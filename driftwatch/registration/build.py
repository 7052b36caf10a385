"""A reference file to a model version's metadata and reference sample, in bounded memory."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from driftwatch.registration.files import CHUNK_ROWS, column_names, read_chunks
from shared.model_metadata import ModelMetadata, Reference
from shared.registration import ReferenceBuilder, RegistrationSpec


@dataclass(frozen=True, slots=True)
class Registration:
    metadata: ModelMetadata
    reference: Reference


def default_features(path: Path, roles: list[str]) -> list[str]:
    """Every column of the file that has no other role, in file order."""
    taken = set(roles)
    return [c for c in column_names(path) if c not in taken]


def build_from_file(
    path: Path, spec: RegistrationSpec, name: str, version: str, chunk_rows: int = CHUNK_ROWS
) -> Registration:
    """Read ``path`` once, chunk by chunk; the columns wait for their exact summaries in a temporary
    directory (4 bytes a value, removed at the end), so memory is a chunk plus one column."""
    with tempfile.TemporaryDirectory(prefix="driftwatch-register-") as spill:
        builder = ReferenceBuilder(spec, spill_dir=Path(spill))
        for chunk in read_chunks(path, spec, chunk_rows):
            builder.add(chunk)
        metadata, reference = builder.finish(name, version)
    return Registration(metadata, reference)
