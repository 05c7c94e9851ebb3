# syntax=docker/dockerfile:1
# Serving image: onnxruntime + FastAPI only. TensorFlow is a training-time extra and never enters it.
FROM python:3.11-slim AS build
WORKDIR /src
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
COPY pyproject.toml README.md ./
COPY app ./app
COPY training ./training
RUN /opt/venv/bin/pip install --no-compile .

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MODELS_DIR=/srv/models \
    MODEL_VARIANT=lstm64 \
    ORT_INTRA_OP_THREADS=1 \
    ORT_INTER_OP_THREADS=1
RUN useradd --system --uid 10001 --no-create-home shelfcast
COPY --from=build /opt/venv /opt/venv
COPY models /srv/models
USER shelfcast
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]
CMD ["python", "-m", "app", "--host", "0.0.0.0", "--port", "8000"]
