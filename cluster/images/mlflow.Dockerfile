# syntax=docker/dockerfile:1
# The MLflow tracking server of the cluster tier: the lock's MLflow plus the Postgres driver
# (backend store) and boto3 (artifacts on MinIO, proxied by the server so clients need no S3
# credentials). Non-root, multi-stage, pinned base (PYTHON_IMAGE from cluster/versions.env).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
COPY requirements/constraints.txt /src/lock.txt
COPY cluster/images/constraints.txt /src/cluster.txt
RUN pip install -c /src/lock.txt -c /src/cluster.txt mlflow boto3 psycopg2-binary

FROM ${PYTHON_IMAGE}
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 HOME=/tmp MLFLOW_DISABLE_TELEMETRY=true
USER 10001:10001
EXPOSE 5000
ENTRYPOINT ["mlflow", "server"]
