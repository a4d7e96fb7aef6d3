#!/usr/bin/env bash
# The cluster tier end to end, on a machine with Docker and an NVIDIA GPU:
#   cluster up -> nvidia-smi inside a pod -> train on the GPU -> serve on KServe -> a canary step
#   (10% to a second version, then rolled back) -> tear down.
#     cluster/smoke.sh                  # or: make cluster-smoke
#     KEEP_CLUSTER=1 cluster/smoke.sh   # leave the cluster up to look around
# Its expected output is in docs/cluster.md ("The smoke test"). About 20-30 minutes, most of it
# image builds and chart installs on the first run.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=scripts/lib.sh
source "$(dirname "$0")/scripts/lib.sh"

[[ "$CLUSTER_PROFILE" == gpu ]] \
  || die "no usable GPU (nvidia-smi -L fails): the smoke test is for a GPU machine; for a CPU-only cluster use make cluster-up CLUSTER_PROFILE=cpu"
MLOPS_LAB="${MLOPS_LAB:-$REPO_ROOT/.venv/bin/mlops-lab}"
[[ -x "$MLOPS_LAB" ]] || die "$MLOPS_LAB not found: run make setup first"

forward_pid=""
cleanup() {
  [[ -n "$forward_pid" ]] && kill "$forward_pid" 2>/dev/null
  if [[ "${KEEP_CLUSTER:-0}" == 1 ]]; then
    log "KEEP_CLUSTER=1: the cluster stays (make cluster-down removes it)"
  else
    "$CLUSTER_DIR/scripts/down.sh"
  fi
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1/6 cluster up ($CLUSTER_PROFILE)"
"$CLUSTER_DIR/scripts/up.sh"

step "2/6 nvidia-smi inside a pod"
# in `default`: no quota there, so the pod waits for the GPU instead of being refused
kube delete pod gpu-smoke --ignore-not-found >/dev/null
kube apply -f - <<YAML
apiVersion: v1
kind: Pod
metadata: {name: gpu-smoke, namespace: default}
spec:
  restartPolicy: Never
  runtimeClassName: nvidia
  securityContext: {runAsNonRoot: true, runAsUser: 10001, seccompProfile: {type: RuntimeDefault}}
  containers:
    - name: smi
      image: $CUDA_IMAGE
      command: [nvidia-smi, -L]
      resources: {limits: {nvidia.com/gpu: "1", cpu: 100m, memory: 64Mi}}
      securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
YAML
kube wait pod/gpu-smoke --for=jsonpath='{.status.phase}'=Succeeded --timeout=600s
kube logs gpu-smoke
kube delete pod gpu-smoke >/dev/null

step "3/6 train on the GPU (the Job from overlays/gpu: gpu params profile, nvidia.com/gpu: 1)"
kube -n "$APP_NS" patch job train --type merge -p '{"spec":{"suspend":false}}'
kube -n "$APP_NS" wait job/train --for=condition=Complete --timeout=45m \
  || { kube -n "$APP_NS" logs job/train --tail=50; die "training failed"; }
kube -n "$APP_NS" logs job/train | grep -E "device|decision|champion|pipeline done" || true

step "4/6 serve: the champion on KServe"
kube -n "$APP_NS" wait inferenceservice/flight-delay --for=condition=Ready --timeout=15m
host=$(kube -n "$APP_NS" get inferenceservice flight-delay -o jsonpath='{.status.url}' | sed 's#^https\?://##')
kube -n kourier-system port-forward svc/kourier 8081:80 >/dev/null 2>&1 &
forward_pid=$!
sleep 3
payload='{"instances": [{"carrier": "UA", "origin": "EWR", "dest": "IAH", "hour": 5, "weekday": 1,
  "distance": 1400, "month": 1, "temp": 39.0, "dewp": 28.0, "humid": 64.4, "wind_dir": 260,
  "wind_speed": 12.7, "precip": 0, "pressure": 1011.9, "visib": 10}]}'
predict() {
  curl -fsS -H "Host: $host" -H 'Content-Type: application/json' \
    "http://127.0.0.1:8081/v1/models/flight-delay:predict" -d "$payload"
}
predict
echo

step "5/6 a canary: a second version (the pipeline on Argo) gets 10% of the traffic"
kube create -f - <<YAML
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: flight-delay-pipeline-, namespace: $APP_NS}
spec:
  workflowTemplateRef: {name: flight-delay-pipeline}
YAML
kube -n "$APP_NS" wait workflow --all --for=condition=Completed --timeout=45m
kube -n "$APP_NS" get workflows
"$MLOPS_LAB" deploy --target kind --model-uri models:/flight-delay/2 --canary 10
kube -n "$APP_NS" wait inferenceservice/flight-delay --for=condition=Ready --timeout=15m
kube -n "$APP_NS" get inferenceservice flight-delay
for _ in $(seq 50); do predict | grep -o '"model_version":"[0-9]*"'; done | sort | uniq -c

step "6/6 roll back: all traffic to the last version rolled out"
"$MLOPS_LAB" deploy --target kind --rollback
sleep 10
kube -n "$APP_NS" get inferenceservice flight-delay
for _ in $(seq 20); do predict | grep -o '"model_version":"[0-9]*"'; done | sort | uniq -c

log "smoke test passed"
