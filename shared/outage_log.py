"""One warning when Redis goes away, one line when it answers again: never one line per retry.

A loop that retries while Redis is stopped (the monitor's consumer of each
model, the alert leader's lease) logged every attempt: a minute of outage made
~20 identical warnings per model, 1,000 a minute for 50 models, burying the
line that said what happened. The publisher already said it once
(``model_service.publisher``); :class:`OutageLog` does the same for the others.
The retries in between are logged at DEBUG.
"""

from __future__ import annotations

import logging


class OutageLog:
    """The state of one retrying loop's connection to Redis, and the lines it says about it."""

    def __init__(self, logger: logging.Logger, what: str) -> None:
        self._log = logger
        self._what = what
        self.down = False

    def failed(self, exc: BaseException, retry: str = "retrying") -> None:
        """A call failed because Redis is unreachable: a warning the first time, DEBUG after."""
        level = logging.DEBUG if self.down else logging.WARNING
        self._log.log(level, "%s: Redis unavailable (%s); %s", self._what, exc, retry)
        self.down = True

    def answered(self) -> None:
        """A call went through: if Redis was away, say once that it is back."""
        if self.down:
            self.down = False
            self._log.warning("%s: Redis answers again", self._what)
