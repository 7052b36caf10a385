"""Set-up of the ``>>>`` examples collected from the packages (``--doctest-modules``).

Examples that show what a recorder exports build their own in-memory
OpenTelemetry reader, so they run with the SDK enabled; ``tests/conftest.py``
disables it for the apps the other tests start.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _sdk_enabled_in_examples(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if type(request.node).__name__ == "DoctestItem":
        monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
