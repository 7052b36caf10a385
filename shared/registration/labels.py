"""Class labels: their kind (string, integer, boolean), their text and their order.

A label reaches a registration as text (a CSV cell, an Arrow string cast, a
JSON value turned to text by :func:`label_text`). Its kind is decided over
every label seen, not per chunk: a column whose first chunk holds ``1, 2`` and
whose last holds ``n/a`` is a string column. Texts are then made canonical, so
``1``, ``1.0`` and ``+1`` are one integer class ``"1"`` and ``True``/``TRUE``
one boolean class ``"true"``, which is how the event path spells them.

>>> label_kind_of(["1", "0", "2.0"]), canonical_label("2.0", "integer")
('integer', '2')
>>> label_kind_of(["True", "false"]), sorted_class_names(["true", "false"], "boolean")
('boolean', ['false', 'true'])
>>> sorted_class_names(["10", "9", "-1"], "integer")
['-1', '9', '10']
>>> label_kind_of(["yes", "1"])
'string'
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from shared.model_metadata import LabelKind

_INTEGER = re.compile(r"[+-]?\d+(\.0*)?")
_BOOLEAN = frozenset({"true", "false"})


def label_text(value: object) -> str:
    """A JSON (or Python) label as text; ``""`` for a missing one.

    >>> [label_text(v) for v in (True, 3, 2.0, "b", None)]
    ['true', '3', '2.0', 'b', '']
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if not isinstance(value, str | int | float):
        raise ValueError(f"{type(value).__name__} is not a label (a string, number or boolean)")
    return str(value)


def label_kind_of(texts: Iterable[str]) -> LabelKind:
    """The kind every one of ``texts`` fits: integer, else boolean, else string."""
    values = [t for t in texts if t != ""]
    if values and all(_INTEGER.fullmatch(t) for t in values):
        return "integer"
    if values and all(t.lower() in _BOOLEAN for t in values):
        return "boolean"
    return "string"


def canonical_label(text: str, kind: LabelKind) -> str:
    """The one spelling of a label of ``kind`` (raises ValueError if it is not of that kind)."""
    if kind == "integer":
        if not _INTEGER.fullmatch(text):
            raise ValueError(f"{text!r} is not an integer label")
        return str(int(text.split(".", 1)[0]))
    if kind == "boolean":
        if text.lower() not in _BOOLEAN:
            raise ValueError(f"{text!r} is not a boolean label (true or false)")
        return text.lower()
    return text


def sorted_class_names(canonical: Iterable[str], kind: LabelKind) -> list[str]:
    """Classes in the order scikit-learn's ``classes_`` (``np.unique``) gives them, which
    is the order of ``predict_proba``'s columns: numeric for integers, false before true."""
    unique = set(canonical)
    if kind == "integer":
        return sorted(unique, key=int)
    return sorted(unique)


def neutral_label(text: str) -> str:
    """A label spelled as its own kind would spell it, before the column's kind is known.

    >>> [neutral_label(t) for t in ("True", "1.0", "+7", "Yes")]
    ['true', '1', '7', 'Yes']
    """
    if _INTEGER.fullmatch(text):
        return canonical_label(text, "integer")
    return text.lower() if text.lower() in _BOOLEAN else text
