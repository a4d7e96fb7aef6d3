#!/usr/bin/env bash
# Build our images from this repository and load them into the kind nodes (no registry):
# the predictor (CPU), the trainer (CPU, and CUDA on the gpu profile) and the MLflow server.
# Base images and tags: cluster/versions.env.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

build() {
  local tag=$1 file=$2
  shift 2
  log "building $tag ($file)"
  docker build --file "$CLUSTER_DIR/images/$file" --tag "$tag" \
    --build-arg "PYTHON_IMAGE=$PYTHON_IMAGE" --build-arg "CUDA_IMAGE=$CUDA_IMAGE" \
    "$@" "$REPO_ROOT"
  # kind load copies the image into every node's containerd; pods use imagePullPolicy IfNotPresent
  kind load docker-image "$tag" --name "$CLUSTER_NAME"
}

build "$PREDICTOR_IMAGE" predictor.Dockerfile
build "$TRAINER_IMAGE" trainer.Dockerfile --target cpu
build "$MLFLOW_IMAGE" mlflow.Dockerfile
if [[ "$CLUSTER_PROFILE" == gpu ]]; then
  build "$TRAINER_GPU_IMAGE" trainer.Dockerfile --target gpu
fi
