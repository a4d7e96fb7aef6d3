#!/usr/bin/env bash
# Inside the trainer image (as mlops-lab-prepare): make the workspace project ready for a pipeline
# run in the cluster. The same project as on a laptop (`mlops-lab init`), with two differences
# that come from the environment, not from code:
#   DVC_S3_URL, DVC_S3_ENDPOINT   the DVC remote is S3 on MinIO instead of a local folder
#   TRAIN_OVERRIDES               params overrides, e.g. the gpu profile
#                                 "train.hidden=[512,256] train.batch_size=8192"
set -euo pipefail

mlops-lab init
cd "${MLOPS_LAB_WORKSPACE:?MLOPS_LAB_WORKSPACE must be set}/project"
if [[ -n "${DVC_S3_URL:-}" ]]; then
  dvc remote add --default --force s3 "$DVC_S3_URL"
  dvc remote modify s3 endpointurl "${DVC_S3_ENDPOINT:?DVC_S3_ENDPOINT must be set with DVC_S3_URL}"
fi
read -ra overrides <<<"${TRAIN_OVERRIDES:-}"
if ((${#overrides[@]})); then
  # the same writer as `mlops-lab pipeline --set`: params.yaml keeps its comments, DVC tracks it
  python -c 'import sys; from pathlib import Path; from reference.pipeline import write_overrides; write_overrides(Path("params.yaml"), sys.argv[1:])' "${overrides[@]}"
  echo "params overrides: ${overrides[*]}"
fi
