#!/usr/bin/env bash
# Build a separate virtualenv with the peer drift detectors (Alibi Detect,
# Evidently) for benchmarks/drift.py.
#
# Why a separate venv: alibi-detect 0.13 pins numpy<2 and pandas<3, and the
# two peers together pull ~1.5 GB (opencv, transformers, plotly). They must
# never land in the project's own environment. The benchmark hands them the
# same data as .npy files and runs benchmarks/peers/runner.py in this venv.
#
# Usage: bash benchmarks/peers/setup.sh   (DRIFTWATCH_PEERS_VENV overrides the path)
set -euo pipefail
VENV="${DRIFTWATCH_PEERS_VENV:-/tmp/driftwatch-peers-venv}"
PY="${PYTHON:-python3.11}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" install --quiet "alibi-detect>=0.12,<0.14" "evidently>=0.7,<0.8" "numpy<2" "pandas<3"
"$VENV/bin/python" - <<'PY'
import alibi_detect, evidently, numpy, scipy
print("peers venv ready:", "alibi-detect", alibi_detect.__version__,
      "evidently", evidently.__version__, "numpy", numpy.__version__, "scipy", scipy.__version__)
PY
echo "$VENV"
