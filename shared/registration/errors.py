"""The one error a registration raises for bad input: it names the field at fault."""

from __future__ import annotations


class RegistrationError(ValueError):
    """Bad reference data or spec. ``loc`` names the field: ``("reference", "age", 17)`` is
    row 17 of column ``age``, ``("metadata", "class_names")`` a spec field. The monitor
    answers it with a 422 whose ``loc`` is ``("body", *loc)``; the CLI prints it."""

    def __init__(self, loc: tuple[str | int, ...], msg: str) -> None:
        self.loc = loc
        self.msg = msg
        super().__init__(f"{'.'.join(str(p) for p in loc)}: {msg}")
