# The segpipe pipeline image: the pinned stack of requirements.lock and this project, run as a non-root
# user. Every component of a compiled Kubeflow pipeline (`segpipe compile --image ...`) and the
# multi-worker Trainer's TFJob (infra/k8s/training) run in it. Build it from the repository root:
#   docker build -f infra/docker/pipeline.Dockerfile -t segpipe:0.1.0 .
FROM python:3.10.13-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_USE_LEGACY_KERAS=1

RUN groupadd --gid 10001 segpipe \
    && useradd --uid 10001 --gid segpipe --create-home --shell /usr/sbin/nologin segpipe

WORKDIR /opt/segpipe

# The locked stack first: this layer is rebuilt only when the lock changes.
COPY requirements.lock ./
RUN python -m pip install --no-cache-dir pip==24.3.1 \
    && python -m pip install --no-cache-dir --requirement requirements.lock

COPY pyproject.toml README.md ./
COPY components ./components
COPY pipeline ./pipeline
COPY schemas ./schemas
RUN python -m pip install --no-cache-dir --no-deps --no-build-isolation . \
    && python -m pip check \
    && rm -rf build ./*.egg-info

USER 10001:10001
WORKDIR /home/segpipe
CMD ["segpipe", "--help"]
