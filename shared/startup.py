"""A service start-up refused for a reason a person must fix, said in one line.

uvicorn logs an exception raised in the app's start-up (its lifespan) as the
whole traceback, some 40 lines through Starlette's and FastAPI's lifespan
wrappers, with the one line that matters last: a model directory without a
model, or a name+version Redis holds as another model, read as a crash. A
start-up that raises :class:`StartupRefused` is logged as its message alone
(:func:`shared.log_context.service_logging` installs the filter); any other
exception keeps its traceback, as a bug should. uvicorn still exits with its
start-up failure code (3), which ``driftwatch up`` does not restart.
"""

from __future__ import annotations

import logging
import sys


class StartupRefused(RuntimeError):
    """The service cannot start until a person changes something; the message says what."""


class StartupRefusalFilter(logging.Filter):
    """On uvicorn's general logger: its start-up failure record, while a :class:`StartupRefused`
    is being handled, becomes that exception's message instead of its traceback.

    uvicorn logs the traceback text Starlette formatted, from inside Starlette's
    ``except`` block, so the exception is the one being handled as the record is made.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        refused = sys.exc_info()[1]
        if isinstance(refused, StartupRefused) and record.levelno >= logging.ERROR:
            record.msg, record.args = f"start-up refused: {refused}", ()
        return True
