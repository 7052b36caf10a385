# Driftwatch: one image for the model service and the monitor (the command differs).
#
#   venv     base dependencies only (LiteRT, FastAPI, Redis, OpenTelemetry): no TensorFlow
#   trainer  venv + the `train` extra (TensorFlow, scikit-learn); trains the default model
#   slim     the venv cut down by scripts/slim_venv.sh (no pip, no test suites, no
#            LiteRT accelerators, stripped shared objects), then checked by
#            scripts/image_smoke.py (imports, KS kernels, LiteRT inference)
#   runtime  python:3.11-slim + the slim venv + the trained model, as a non-root user;
#            numba caches its compiled kernels under /tmp (the venv is read-only to it)
#
# Only the classic builder features are used (no BuildKit, no RUN --mount).
# Build args: TRAIN_EPOCHS (default 40) for a quicker image in tests; NUMBA=0
# for an image without numba and llvmlite (175 MB less; the drift engine runs
# its numpy kernels, 6-18x slower per window: README, "Deploying").

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

# What the runtime copies: the venv without what only installing needs, the
# dependencies' test suites, LiteRT's GPU/NPU parts, symbol tables and debug
# info (scripts/slim_venv.sh says why each is safe). binutils (strip) stays in
# this stage. The smoke runs the services' code paths on the result.
FROM venv AS slim
ARG NUMBA=1
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends binutils \
 && rm -rf /var/lib/apt/lists/*
COPY scripts/slim_venv.sh scripts/image_smoke.py /usr/local/lib/driftwatch-build/
RUN NUMBA="${NUMBA}" sh /usr/local/lib/driftwatch-build/slim_venv.sh
COPY --from=trainer /models /models
RUN NUMBA_CACHE_DIR=/tmp/numba-smoke /opt/venv/bin/python /usr/local/lib/driftwatch-build/image_smoke.py \
      --model-dir /models/default --numba "${NUMBA}" \
 && rm -rf /tmp/numba-smoke

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
