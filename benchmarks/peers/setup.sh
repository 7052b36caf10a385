#!/usr/bin/env bash
# Build a separate virtualenv with the peer drift detectors (Alibi Detect,
# Evidently, NannyML) for benchmarks/drift.py, benchmarks/detection.py and
# benchmarks/estimate.py, plus popmon for the flight-delay data it ships.
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
# NannyML imports statsmodels without declaring it, and reads its bundled data
# sets with pyarrow, also undeclared (below 21: later ones need numpy 2); popmon is installed for
# the real data set it ships (flight_delays.csv.gz), not as a detector.
"$VENV/bin/pip" install --quiet "alibi-detect>=0.12,<0.14" "evidently>=0.7,<0.8" \
  "nannyml>=0.13,<0.14" "statsmodels>=0.14" "pyarrow>=14,<21" "popmon>=1.4" "numpy<2" "pandas<3"
"$VENV/bin/python" - <<'PY'
import alibi_detect, evidently, nannyml, numpy, popmon, scipy, statsmodels
print("peers venv ready:", "alibi-detect", alibi_detect.__version__,
      "evidently", evidently.__version__, "nannyml", nannyml.__version__,
      "popmon", popmon.__version__, "statsmodels", statsmodels.__version__,
      "numpy", numpy.__version__, "scipy", scipy.__version__)
PY
echo "$VENV"
