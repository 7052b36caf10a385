#!/usr/bin/env bash
# Run the compose end-to-end test (tests/e2e/test_compose.py) on a machine
# without Docker: ../shared/containers/docker-up.sh starts a local engine and
# builds stand-ins for python:3.11-slim and redis:7-alpine (~70 s the first
# time). With a Docker engine already at hand, only the pytest line is needed.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! docker info >/dev/null 2>&1; then
  eval "$(../shared/containers/docker-up.sh)"
fi
DRIFTWATCH_COMPOSE_E2E=1 exec .venv/bin/pytest -q -m docker tests/e2e/test_compose.py tests/e2e/test_image.py "$@"
