# syntax=docker/dockerfile:1
# The predictor image: reference/serve (KServe's ModelServer with our guard and prediction
# metrics), torch's CPU build. Multi-stage (no compilers or pip caches in the result), non-root,
# pinned base (PYTHON_IMAGE from cluster/versions.env; cluster/scripts/images.sh passes it).
#   docker build -f cluster/images/predictor.Dockerfile -t mlops-lab/predictor:0.1.0 .
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
COPY requirements/constraints.txt /src/requirements/constraints.txt
# The CPU build from PyTorch's own index: PyPI's Linux wheel is the CUDA build, gigabytes of
# libraries a CPU predictor never loads. Same version as the lock (2.13.0+cpu satisfies ==2.13.0).
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch==2.13.0"
COPY pyproject.toml README.md /src/
COPY reference /src/reference
RUN pip install -c /src/requirements/constraints.txt /src

FROM ${PYTHON_IMAGE}
COPY --from=build /opt/venv /opt/venv
# The model is downloaded into the workspace at load: an emptyDir in the pod, the root
# filesystem stays read-only. HOME=/tmp for libraries that write a cache (also an emptyDir).
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 HOME=/tmp \
    MLFLOW_DISABLE_TELEMETRY=true MLOPS_LAB_WORKSPACE=/workspace
USER 10001:10001
EXPOSE 8080
# 0.0.0.0 on purpose inside a pod (the laptop default is 127.0.0.1); the model URI comes from
# the InferenceService's args (default: the registry's champion).
ENTRYPOINT ["python", "-m", "reference.serve"]
CMD ["--host", "0.0.0.0", "--port", "8080"]
