"""Registering a model Driftwatch did not train: from reference columns to metadata and a reference sample.

The CLI (``driftwatch register``, reading a CSV/Parquet file in chunks) and the
monitor (``PUT /models/{name}/versions/{version}``, reading a JSON or Parquet
body) both feed columns to one :class:`~shared.registration.builder.ReferenceBuilder`,
so a reference gives the same metadata and sample whichever way it came in.
"""

from shared.registration.builder import ReferenceBuilder
from shared.registration.errors import RegistrationError
from shared.registration.spec import RegistrationSpec

__all__ = ["ReferenceBuilder", "RegistrationError", "RegistrationSpec"]
