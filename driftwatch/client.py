"""``from driftwatch import Client``: log a model's predictions and labels from any Python code.

Why a client and not a plain HTTP call per prediction: the model serving the
answer must not wait for its monitoring. ``Client.log`` checks its arguments,
makes the ids, queues the rows in memory and returns (microseconds); a
background thread sends them in batches to the model service's
``POST /models/{name}/predictions`` (and ``/feedback``), retrying while the
service is away and counting what it had to drop (``client.stats``). See
:mod:`driftwatch.client_sender` for the guarantees.

Importing it loads numpy, httpx and orjson, never TensorFlow, FastAPI or
uvicorn (``tests/unit/driftwatch/test_client_imports.py``).

Examples
--------
>>> import numpy as np
>>> client = Client("http://127.0.0.1:9", flush_on_exit=False)  # nothing listens on port 9
>>> ids = client.log("my-model", np.zeros((3, 4)), np.array(["a", "b", "a"]))
>>> len(ids), len(ids[0])  # returned at once: Driftwatch ids, made here
(3, 32)
>>> client.close(timeout=0)  # gives up at once: nothing could be sent
False
>>> client.stats.abandoned_rows
3
"""

from __future__ import annotations

import atexit
import functools
import os
import weakref
from types import TracebackType

import httpx

from driftwatch.client_batches import feedback_block, prediction_block
from driftwatch.client_sender import ClientStats, Sender

__all__ = ["Client", "ClientStats"]


def _after_fork(ref: weakref.ref[Client]) -> None:
    client = ref()
    if client is not None:
        client._after_fork()


class Client:
    """Sends predictions and labels to a Driftwatch model service in the background.

    Parameters
    ----------
    url : str
        The model service, e.g. ``http://localhost:8000``.
    api_key : str, optional
        Sent as ``X-API-Key`` (the service's ``DRIFTWATCH_API_KEY``).
    batch_rows : int
        Rows per request at most (the service takes up to 1,024).
    max_queue_rows : int
        Rows held in memory at most; beyond, ``log`` drops and counts.
    linger_s : float
        How long a part-full batch waits for more rows under light traffic.
    timeout_s : float
        Per-request timeout.
    max_body_bytes : int
        Batches whose JSON is larger are split (the service refuses > 4 MiB).
    backoff_s, max_backoff_s : float
        First and largest wait between retries (exponential, full jitter).
    flush_on_exit : bool
        Register :meth:`close` with ``atexit`` (waiting up to ``exit_timeout_s``).
    transport : httpx.BaseTransport, optional
        For tests or custom networking.
    """

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        batch_rows: int = 500,
        max_queue_rows: int = 100_000,
        linger_s: float = 0.05,
        timeout_s: float = 10.0,
        max_body_bytes: int = 2 * 1024 * 1024,
        backoff_s: float = 0.2,
        max_backoff_s: float = 30.0,
        flush_on_exit: bool = True,
        exit_timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if batch_rows < 1 or max_queue_rows < 1:
            raise ValueError("batch_rows and max_queue_rows must be positive")
        self.url = url.rstrip("/")
        self._api_key = api_key
        self._timeout_s = timeout_s
        self._transport = transport
        self._options = {
            "max_queue_rows": max_queue_rows, "batch_rows": batch_rows, "max_body_bytes": max_body_bytes,
            "linger_s": linger_s, "backoff_s": backoff_s, "max_backoff_s": max_backoff_s,
        }
        self._sender = self._new_sender()
        self._exit_timeout_s = exit_timeout_s
        self._closed = False
        self._atexit = flush_on_exit
        if flush_on_exit:
            atexit.register(self._at_exit)
        os.register_at_fork(after_in_child=functools.partial(_after_fork, weakref.ref(self)))

    def _new_sender(self) -> Sender:
        headers = {"X-API-Key": self._api_key} if self._api_key else {}
        http = httpx.Client(base_url=self.url, headers=headers, timeout=self._timeout_s, transport=self._transport)
        return Sender(http, **self._options)  # type: ignore[arg-type]

    def _after_fork(self) -> None:
        """A forked child has neither the parent's thread nor a safe copy of its connections:
        it starts with its own, and an empty queue (the parent sends what it queued)."""
        self._sender = self._new_sender()

    def log(
        self,
        model: str,
        features: object,
        predictions: object,
        probabilities: object | None = None,
        ids: object | None = None,
        timestamps: object | None = None,
    ) -> list[str]:
        """Queue predictions of ``model``; returns their ids (made here when not given).

        ``features``: an (n, F) array (or one row), or a pandas DataFrame whose
        columns are the registered feature names (any order); NaN or None is
        a missing value. ``predictions``: n class labels as registered
        (strings, integers or booleans), or numbers for a regressor.
        ``probabilities``: (n, K), optional. ``ids``: your own ids (any
        strings; ids Driftwatch did not make need ``prediction_timestamps``
        when their labels come). ``timestamps``: when each prediction was
        made (epoch ms, datetime64 or aware datetimes; now by default).

        Never waits for the network; raises ``ValueError`` for arguments that
        cannot be sent (wrong shapes, infinite values).
        """
        block = prediction_block(model, features, predictions, probabilities, ids, timestamps)
        self._sender.put(block)
        return block.ids

    def feedback(
        self,
        model: str,
        ids: object,
        labels: object,
        timestamps: object | None = None,
        prediction_timestamps: object | None = None,
        predictions: object | None = None,
        version: str | None = None,
    ) -> int:
        """Queue true labels for predictions logged earlier; returns how many were queued.

        ``ids`` as :meth:`log` returned them (or your own, with
        ``prediction_timestamps``); ``labels`` as the model's classes.
        ``predictions`` (with ``prediction_timestamps``): the classes the model
        predicted, so each label carries its prediction and is counted without
        any state kept per prediction (required for a model registered with
        ``--label-join carried``); ``version``: the model version that made
        them (default: the current one).
        """
        block = feedback_block(model, ids, labels, timestamps, prediction_timestamps, predictions, version)
        return len(block) if self._sender.put(block) else 0

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Wait until every queued row was sent (or refused); False if ``timeout`` passed first."""
        return self._sender.flush(timeout)

    def close(self, timeout: float | None = 10.0) -> bool:
        """Send what is queued (waiting up to ``timeout``), then stop; later ``log`` calls drop.

        Returns whether everything queued was sent or refused in time.
        """
        if self._closed:
            return True
        self._closed = True
        if self._atexit:
            atexit.unregister(self._at_exit)
        try:
            return self._sender.close(timeout)
        finally:
            self._sender.http.close()

    def _at_exit(self) -> None:
        self.close(self._exit_timeout_s)

    @property
    def stats(self) -> ClientStats:
        """Counters: rows logged, sent, refused, dropped, abandoned; retries; failures by kind."""
        return self._sender.stats()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
