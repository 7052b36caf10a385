"""``driftwatch.task.failures``: background tasks that raised and were restarted.

Both services run their long-lived work (the monitor's consumer and stats
loop, the alert notifier, the publisher's writer) under
:mod:`shared.supervision`; each failure is counted here, so an alert can
fire on a task that keeps dying even while ``/readyz`` looks fine between
restarts.
"""

from __future__ import annotations

from typing import cast

from opentelemetry.metrics import Counter, Meter

from shared.telemetry import attributes as attr
from shared.telemetry.catalogue import DRIFTWATCH_TASK_FAILURES, create_instrument

__all__ = ["DRIFTWATCH_TASK_FAILURES", "TaskFailureCounter"]


class TaskFailureCounter:
    """A :data:`shared.supervision.FailureListener` that counts failures per task and error type.

    >>> from opentelemetry.sdk.metrics import MeterProvider
    >>> count = TaskFailureCounter(MeterProvider().get_meter("doc"), model="digits-mlp")
    >>> count("monitor-worker", ValueError("bad window"))
    """

    def __init__(self, meter: Meter | None, *, model: str | None, counter: Counter | None = None) -> None:
        """``model``: the model of the tasks counted; None for a monitor's own tasks when it has no
        default model (the failures then carry no ``model``, rather than a model nobody watches)."""
        if counter is None:
            if meter is None:
                raise TypeError("TaskFailureCounter needs a meter or a counter")
            counter = cast(Counter, create_instrument(meter, DRIFTWATCH_TASK_FAILURES))
        self._counter = counter
        self._model = model

    def for_model(self, model: str) -> TaskFailureCounter:
        """The same counter, for another model's tasks (a monitor watching many models).

        >>> from opentelemetry.sdk.metrics import MeterProvider
        >>> count = TaskFailureCounter(MeterProvider().get_meter("doc"), model="digits-mlp")
        >>> count.for_model("fraud")("monitor-worker", ValueError("bad window"))
        """
        return TaskFailureCounter(None, model=model, counter=self._counter)

    def __call__(self, task: str, exc: BaseException) -> None:
        model = {attr.MODEL: self._model} if self._model is not None else {}
        self._counter.add(1, {**model, attr.TASK: task, attr.ERROR_TYPE: type(exc).__name__})
