"""Which model (and version) a log line is about, on every line logged while working for it.

One monitor watches many models in one process, and most of its lines come
from code shared by all of them (the consumer, the reporter, the supervisor
of their loops). A line such as ``window 3: drift`` or ``1 entries
dead-lettered`` is useless among 50 models unless it names one, and naming it
in each format string is easy to forget. So the model is bound once, where a
model's worker starts (:meth:`monitor.assembly.MonitorParts.start`): asyncio
tasks copy the context they are created in, so every line logged by that
model's loops, and by what they call, carries it. Code that works on one
version (a window's report, a batch of one version's events) binds both.

Each log record gets ``model`` and ``model_version`` attributes (None outside
a model's work) for structured handlers, and ``model_tag`` (``"[churn v3] "``,
``"[churn] "`` or ``""``) for text formats: :data:`LOG_FORMAT` (the services'
format) shows it before the message. The record factory that adds them is
installed by :func:`install` (the CLI's logging set-up and every monitor call
it), once per process.

Which service a line comes from matters too: ``driftwatch up`` runs the model
service and the monitor side by side on one terminal, and uvicorn's own lines
(``Started server process``, ``Uvicorn running on ...``) name neither. So each
record also gets ``service`` (``"model_service"``, ``"monitor"``; None in a
process that is not one) and ``service_tag`` for text formats, and
:func:`service_logging` is the services' one logging configuration: our
format on stderr for every logger, uvicorn's included (uvicorn is started
with ``log_config=None``, so it keeps no handler or format of its own).
"""

from __future__ import annotations

import logging
import logging.config
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

LOG_FORMAT = "%(asctime)s %(service_tag)s%(levelname)s %(name)s: %(model_tag)s%(message)s"

UVICORN_GENERAL_LOGGER = "uvicorn.error"
"""uvicorn's general logger: "Started server process" comes from it at INFO, so a line
named ``uvicorn.error`` read as an error; records from it are named ``uvicorn``."""

_bound: ContextVar[tuple[str | None, str | None]] = ContextVar("driftwatch_log_model", default=(None, None))
_installed = False
_service: str | None = None


def model_tag(model: str | None, version: str | None) -> str:
    """How a text line names its model.

    >>> model_tag("churn", "3"), model_tag("churn", None), model_tag(None, None)
    ('[churn v3] ', '[churn] ', '')
    """
    if model is None:
        return ""
    return f"[{model} v{version}] " if version is not None else f"[{model}] "


@contextmanager
def bound_model(model: str, version: str | None = None) -> Iterator[None]:
    """Lines logged inside (and by tasks created inside) are about ``model`` (``version``)."""
    token = _bound.set((model, version))
    try:
        yield
    finally:
        _bound.reset(token)


def install(service: str | None = None) -> None:
    """Give every log record of this process ``model``, ``model_version``, ``model_tag``,
    ``service`` and ``service_tag``; ``service`` names the process's service from now on
    (a later call without one keeps it).

    Idempotent; wraps whatever record factory was installed before.
    """
    global _installed, _service
    if service is not None:
        _service = service
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if record.name == UVICORN_GENERAL_LOGGER:
            record.name = "uvicorn"
        model, version = _bound.get()
        record.model = model
        record.model_version = version
        record.model_tag = model_tag(model, version)
        record.service = _service
        record.service_tag = f"{_service} " if _service is not None else ""
        return record

    logging.setLogRecordFactory(factory)
    _installed = True


def service_logging(service: str, level: str) -> None:
    """Log every line of this process, uvicorn's included, to stderr in :data:`LOG_FORMAT`, naming ``service``.

    Run uvicorn with ``log_config=None`` after this (its own configuration would give its
    loggers a handler and format of their own); ``log_level`` there still sets their level.
    """
    install(service)
    logging.config.dictConfig({
        "version": 1,
        "disable_existing_loggers": False,  # the modules imported so far have their loggers already
        "formatters": {"driftwatch": {"format": LOG_FORMAT}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "driftwatch"},
        },
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        # Its lines reach the root's handler, as ours do.
        "loggers": {"uvicorn": {"handlers": [], "propagate": True}},
    })
    from shared.startup import StartupRefusalFilter  # its module imports nothing of ours

    general = logging.getLogger(UVICORN_GENERAL_LOGGER)
    if not any(isinstance(f, StartupRefusalFilter) for f in general.filters):
        general.addFilter(StartupRefusalFilter())  # a refused start-up is one line, not a traceback
