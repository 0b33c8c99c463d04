# The MLflow tracking server of infra/k8s/mlflow: MLflow with the PostgreSQL driver (backend store) and
# boto3 (S3-compatible artifact store, MinIO), run as a non-root user. Build it from the repository root:
#   docker build -f infra/docker/mlflow.Dockerfile -t segpipe-mlflow:3.17.2 .
FROM python:3.10.13-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN python -m pip install --no-cache-dir mlflow==3.17.2 psycopg2-binary==2.9.13 boto3==1.44.8 \
    && groupadd --gid 10001 mlflow \
    && useradd --uid 10001 --gid mlflow --create-home --shell /usr/sbin/nologin mlflow

USER 10001:10001
WORKDIR /home/mlflow
EXPOSE 5000
ENTRYPOINT ["mlflow"]
CMD ["server", "--host", "0.0.0.0", "--port", "5000"]
