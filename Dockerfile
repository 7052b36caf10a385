# Driftwatch: one image for the model service and the monitor (the command differs).
#
#   venv     base dependencies only (LiteRT, FastAPI, Redis, OpenTelemetry): no TensorFlow
#   trainer  venv + the `train` extra (TensorFlow, scikit-learn); trains the default model
#   slim     the venv without pip, setuptools and the dependencies' test suites
#   runtime  python:3.11-slim + the slim venv + the trained model, as a non-root user;
#            numba caches its compiled kernels under /tmp (the venv is read-only to it)
#
# Only the classic builder features are used (no BuildKit, no RUN --mount).
# Build args: TRAIN_EPOCHS (default 40) for a quicker image in tests.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS venv
ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
# Dependencies first, from pyproject.toml alone, so editing code does not
# re-download them: stub packages let `pip install .` resolve, then the real
# sources are installed over them without dependencies.
COPY pyproject.toml README.md* ./
RUN test -f README.md || echo "# Driftwatch" > README.md \
 && mkdir -p driftwatch shared model_service monitor \
 && touch driftwatch/__init__.py shared/__init__.py model_service/__init__.py monitor/__init__.py \
 && /opt/venv/bin/pip install . \
 && /opt/venv/bin/pip uninstall -y driftwatch \
 && rm -rf driftwatch shared model_service monitor build *.egg-info
COPY driftwatch ./driftwatch
COPY shared ./shared
COPY model_service ./model_service
COPY monitor ./monitor
RUN /opt/venv/bin/pip install --no-deps . && rm -rf build *.egg-info

FROM venv AS trainer
ARG TRAIN_EPOCHS=40
RUN /opt/venv/bin/pip install ".[train]"
ENV TF_CPP_MIN_LOG_LEVEL=2 CUDA_VISIBLE_DEVICES=""
RUN /opt/venv/bin/driftwatch train --out /models/default --epochs "${TRAIN_EPOCHS}" \
 && test -f /models/default/model.tflite

# What the runtime copies: the venv without what only installing needs (pip,
# setuptools, wheel: 27 MB) and without the test suites numpy, scipy, numba
# and llvmlite ship (65 MB). The bytecode stays: without it every start
# compiles scipy, numba and FastAPI again (measured: 3x slower imports).
FROM venv AS slim
RUN /opt/venv/bin/python -m pip uninstall -y -q pip setuptools wheel \
 && site=$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') \
 && for pkg in numpy scipy numba llvmlite; do find "$site/$pkg" -depth -type d -name tests -exec rm -rf {} +; done \
 && /opt/venv/bin/python -c 'import numpy, scipy.stats, numba, monitor.drift, model_service.runtime'

FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    DRIFTWATCH_HOST=0.0.0.0 \
    DRIFTWATCH_MODEL_DIR=/models/default \
    OTEL_SEMCONV_STABILITY_OPT_IN=http \
    NUMBA_CACHE_DIR=/tmp/numba-cache
RUN groupadd --system --gid 10001 driftwatch \
 && useradd --system --uid 10001 --gid driftwatch --home-dir /app --shell /usr/sbin/nologin driftwatch \
 && mkdir -p /app/var/spill && chown -R driftwatch:driftwatch /app
COPY --from=slim /opt/venv /opt/venv
COPY --from=trainer /models /models
WORKDIR /app
USER driftwatch
EXPOSE 8000 8001
CMD ["driftwatch", "serve"]
