"""Log records name their service and model; uvicorn's general logger is not called an error."""

from __future__ import annotations

import logging

import pytest

from shared import log_context


def test_uvicorns_general_lines_are_named_uvicorn_not_uvicorn_error(caplog: pytest.LogCaptureFixture) -> None:
    """uvicorn logs "Started server process" at INFO on a logger named ``uvicorn.error``."""
    log_context.install()
    with caplog.at_level(logging.INFO):
        logging.getLogger("uvicorn.error").info("Started server process [1]")
        logging.getLogger("uvicorn.access").info("GET / 200")
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        ("uvicorn", "Started server process [1]"),
        ("uvicorn.access", "GET / 200"),
    ]
