# syntax=docker/dockerfile:1
# The trainer image: the pipeline stages (`python -m reference <stage>`, `mlops-lab pipeline`),
# DVC with its S3 remote, git. Two targets from one file:
#   --target cpu   python slim base, torch's CPU build           mlops-lab/trainer:0.1.0
#   --target gpu   NVIDIA CUDA base, PyPI's CUDA build of torch  mlops-lab/trainer:0.1.0-cuda
# Non-root, multi-stage, pinned bases (PYTHON_IMAGE, CUDA_IMAGE from cluster/versions.env).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-base-ubuntu24.04

# ------------------------------------------------------------------------------------ cpu
FROM ${PYTHON_IMAGE} AS cpu-build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
COPY requirements/constraints.txt /src/requirements/constraints.txt
COPY cluster/images/constraints.txt /src/cluster/images/constraints.txt
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch==2.13.0"
COPY pyproject.toml README.md /src/
COPY reference /src/reference
RUN pip install -c /src/requirements/constraints.txt -c /src/cluster/images/constraints.txt /src dvc-s3

FROM ${PYTHON_IMAGE} AS cpu
# git: the workspace project is a git + DVC repository
RUN apt-get update && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*
COPY --from=cpu-build /opt/venv /opt/venv
COPY cluster/images/prepare-workspace.sh /usr/local/bin/mlops-lab-prepare
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 HOME=/tmp DVC_NO_ANALYTICS=1 \
    MLFLOW_DISABLE_TELEMETRY=true MLOPS_LAB_WORKSPACE=/workspace
USER 10001:10001
WORKDIR /workspace
ENTRYPOINT ["mlops-lab"]
CMD ["--help"]

# ------------------------------------------------------------------------------------ gpu
FROM ${CUDA_IMAGE} AS gpu-base
# the CUDA base flavour: the CUDA runtime and the driver-capability settings, no compilers;
# torch's wheels bring the CUDA libraries they were built with
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv git \
    && rm -rf /var/lib/apt/lists/*

FROM gpu-base AS gpu-build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PATH=/opt/venv/bin:$PATH
RUN python3 -m venv /opt/venv
COPY requirements/constraints.txt /src/requirements/constraints.txt
COPY cluster/images/constraints.txt /src/cluster/images/constraints.txt
COPY pyproject.toml README.md /src/
COPY reference /src/reference
RUN pip install -c /src/requirements/constraints.txt -c /src/cluster/images/constraints.txt /src dvc-s3

FROM gpu-base AS gpu
COPY --from=gpu-build /opt/venv /opt/venv
COPY cluster/images/prepare-workspace.sh /usr/local/bin/mlops-lab-prepare
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 HOME=/tmp DVC_NO_ANALYTICS=1 \
    MLFLOW_DISABLE_TELEMETRY=true MLOPS_LAB_WORKSPACE=/workspace \
    NVIDIA_VISIBLE_DEVICES=all NVIDIA_DRIVER_CAPABILITIES=compute,utility
USER 10001:10001
WORKDIR /workspace
ENTRYPOINT ["mlops-lab"]
CMD ["--help"]
