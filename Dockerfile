# syntax=docker/dockerfile:1
# Serving image: onnxruntime + FastAPI only. TensorFlow is the [train] extra and never enters it: the builder
# installs the base package (`pip install .`, no extras). scripts/image_install_check.sh repeats this builder's
# install outside Docker and tests/test_container.py checks it (no TensorFlow, /healthz, a real forecast).
#
#   docker build -t shelfcast:0.1.0 .
#   docker run --rm -p 8000:8000 -e MODEL_VARIANT=lstm64 shelfcast:0.1.0
#
# The base is pinned to a patch release; pin its digest too (python:3.11.x-slim-bookworm@sha256:...) where
# builds must be reproducible. Both stages use the same base so the venv's interpreter link stays valid.
FROM python:3.11.17-slim-bookworm AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# ---- builder: the package and its serving dependencies into /opt/venv; models made world-readable ----
FROM base AS build
WORKDIR /src
RUN python -m venv /opt/venv
# pyproject.toml names README.md as the readme, so the build needs it. setuptools packages app* and training*;
# training/ is harmless here (its TensorFlow imports are never made by the service).
COPY pyproject.toml README.md ./
COPY app ./app
COPY training ./training
RUN /opt/venv/bin/pip install --no-cache-dir .
# Published models may be 0600 in a working tree; the service runs as a non-root user and only reads them.
COPY models /srv/models
RUN chmod -R a=rX /srv/models

# ---- runtime: the venv and the models, nothing else ----
FROM base AS runtime
# The service is configured by environment variables only (app/settings.py); these are its image defaults.
# onnxruntime's thread pools are set explicitly: in a container it would size them from the host's cores.
# BATCH_THREADS: a large batch's slices run on this many threads at once (match the cores a replica gets).
ENV PATH=/opt/venv/bin:$PATH \
    MODELS_DIR=/srv/models \
    MODEL_VARIANT=lstm64 \
    ORT_INTRA_OP_THREADS=1 \
    ORT_INTER_OP_THREADS=1 \
    BATCH_THREADS=2 \
    LOG_LEVEL=info
RUN groupadd --system --gid 10001 shelfcast \
    && useradd --system --no-log-init --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin shelfcast
COPY --from=build /opt/venv /opt/venv
COPY --from=build /srv/models /srv/models
# Numeric, so a runtime can check it is not root (e.g. Kubernetes runAsNonRoot).
USER 10001:10001
EXPOSE 8000
# No curl in slim images: the venv's python asks /healthz (exit 0 on 200, 1 on anything else or no answer).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]
# One uvicorn worker per container: `python -m app` validates the configuration, loads the model once (exit 2
# with a one-line reason if it cannot) and serves in a single process. Scale with replicas, not workers; each
# replica uses one core per small forecast and up to BATCH_THREADS cores on a large batch. Exec form: python is
# PID 1 and gets the SIGTERM of `docker stop` directly, and uvicorn shuts down gracefully on it.
CMD ["python", "-m", "app", "--host", "0.0.0.0", "--port", "8000"]
