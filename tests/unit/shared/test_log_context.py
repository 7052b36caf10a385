"""Log records name their service and model; uvicorn's general logger is not called an error."""

from __future__ import annotations

import logging

from shared import log_context


def test_uvicorns_general_lines_are_named_uvicorn_not_uvicorn_error() -> None:
    """uvicorn logs "Started server process" at INFO on a logger named ``uvicorn.error``.

    The record factory is asked directly: whichever handlers and propagation other
    tests left on uvicorn's loggers, every record of the process is made by it.
    """
    log_context.install()
    make = logging.getLogRecordFactory()
    general = make("uvicorn.error", logging.INFO, __file__, 1, "Started server process [1]", None, None)
    access = make("uvicorn.access", logging.INFO, __file__, 1, "GET / 200", None, None)
    assert (general.name, access.name) == ("uvicorn", "uvicorn.access")
