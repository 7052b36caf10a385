"""Numbers as JSON writes them, for the bodies pydantic validates in its lax (Python) mode.

Lax mode reads ``true`` as 1 and ``"10"`` as 10: an alert rule with ``"value": true``
or ``"for": {"windows": true}`` was stored as a threshold of 1, where every other
body answers such a field with a 422 naming it. These take a JSON number only:
``JsonInt`` also takes ``6.0`` (JSON Schema's ``integer`` does), never ``6.5``.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, StrictFloat, StrictInt


def _integral(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


JsonInt = Annotated[StrictInt, BeforeValidator(_integral)]
JsonFloat = StrictFloat
