#!/usr/bin/env bash
# `make cluster-up`: a kind cluster running the reference on KServe, with MLflow + MinIO,
# Prometheus/Grafana and the pipeline on Argo; the machine's NVIDIA GPU in the worker node where
# there is one. Idempotent: re-running it upgrades what is there. Versions: cluster/versions.env.
#     cluster/scripts/up.sh                       # gpu profile where nvidia-smi works, else cpu
#     CLUSTER_PROFILE=cpu cluster/scripts/up.sh   # no GPU: the same manifests, overlay cpu
# Secrets come from the environment (a random value where unset), never from the repository:
#     MINIO_ROOT_PASSWORD  MLOPS_LAB_S3_SECRET_KEY  MLFLOW_DB_PASSWORD  GRAFANA_ADMIN_PASSWORD
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

"$CLUSTER_DIR/scripts/preflight.sh"

# --------------------------------------------------------------------------------- the cluster
if kind get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME"; then
  log "kind cluster $CLUSTER_NAME exists: reusing it"
else
  log "creating kind cluster $CLUSTER_NAME ($CLUSTER_PROFILE profile, $KIND_NODE_IMAGE)"
  kind create cluster --name "$CLUSTER_NAME" --image "$KIND_NODE_IMAGE" \
    --config "$CLUSTER_DIR/kind/$CLUSTER_PROFILE.yaml" --wait 120s
fi

# ------------------------------------------------------------------------ the GPU in the node
setup_gpu_node() {
  local node="$CLUSTER_NAME-worker"
  log "GPU node $node: NVIDIA Container Toolkit $NVIDIA_CTK_VERSION, containerd runtime 'nvidia'"
  # The toolkit inside the node is pinned: 1.18+ breaks the /proc/driver/nvidia step below
  # (NVIDIA/nvkind#61). Without it containerd has no `nvidia` runtime (k8s-device-plugin#479).
  docker exec "$node" bash -euc "
    if ! dpkg -s nvidia-container-toolkit 2>/dev/null | grep -q '^Version: $NVIDIA_CTK_VERSION\$'; then
      apt-get update -qq && apt-get install -y -qq gpg curl >/dev/null
      curl -fsSL https://nvidia.github.io/libnvidia-container/gpgkey \
        | gpg --dearmor --yes -o /usr/share/keyrings/nvidia-container-toolkit-keyring.gpg
      curl -fsSL https://nvidia.github.io/libnvidia-container/stable/deb/nvidia-container-toolkit.list \
        | sed 's#deb https://#deb [signed-by=/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg] https://#g' \
        > /etc/apt/sources.list.d/nvidia-container-toolkit.list
      apt-get update -qq
      apt-get install -y -qq nvidia-container-toolkit=$NVIDIA_CTK_VERSION nvidia-container-toolkit-base=$NVIDIA_CTK_VERSION \
        libnvidia-container-tools=$NVIDIA_CTK_VERSION libnvidia-container1=$NVIDIA_CTK_VERSION >/dev/null
    fi
    nvidia-ctk runtime configure --runtime=containerd --config-source=command >/dev/null
    systemctl restart containerd
    # The driver recreates device nodes on demand unless ModifyDeviceFiles is 0; mask it so the
    # node keeps only the devices it was given (what nvkind does; newer toolkits do it themselves).
    if grep -q '^ModifyDeviceFiles: 1' /proc/driver/nvidia/params 2>/dev/null; then
      umount -R /proc/driver/nvidia 2>/dev/null || true
      cp /proc/driver/nvidia/params /root/gpu-params
      sed -i 's/^ModifyDeviceFiles: 1\$/ModifyDeviceFiles: 0/' /root/gpu-params
      mount --bind /root/gpu-params /proc/driver/nvidia/params
    fi
    nvidia-smi -L
  " || die "the GPU is not usable inside $node: see 'nvidia-smi not found' in docs/cluster.md (NVIDIA/nvkind#31)"

  kube apply -f - <<'YAML'
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata:
  name: nvidia
handler: nvidia
YAML
  log "NVIDIA device plugin $NVIDIA_DEVICE_PLUGIN_VERSION"
  helm_ upgrade --install nvidia-device-plugin nvidia-device-plugin \
    --repo https://nvidia.github.io/k8s-device-plugin --version "$NVIDIA_DEVICE_PLUGIN_VERSION" \
    --namespace nvidia-device-plugin --create-namespace \
    -f "$CLUSTER_DIR/helm/nvidia-device-plugin.yaml" --wait --timeout 5m
  log "waiting for the worker to advertise nvidia.com/gpu"
  for _ in $(seq 60); do
    gpus=$(kube get node "$node" -o jsonpath='{.status.allocatable.nvidia\.com/gpu}')
    [[ -n "$gpus" && "$gpus" != 0 ]] && { log "$node: nvidia.com/gpu = $gpus"; return 0; }
    sleep 5
  done
  die "$node advertises no nvidia.com/gpu: kubectl -n nvidia-device-plugin logs ds/nvidia-device-plugin (docs/cluster.md, troubleshooting)"
}
if [[ "$CLUSTER_PROFILE" == gpu ]]; then setup_gpu_node; fi

# ------------------------------------------------------------- namespaces and Secrets from env
kube apply -f "$CLUSTER_DIR/manifests/base/namespace/namespace.yaml"
for ns in minio monitoring; do
  kube create namespace "$ns" --dry-run=client -o yaml | kube apply -f - >/dev/null
done

# Create once: a re-run keeps the existing values (rotating them would strand MinIO and Postgres).
ensure_secret() {
  local ns=$1 name=$2
  shift 2
  if kube -n "$ns" get secret "$name" >/dev/null 2>&1; then
    return 0
  fi
  kube -n "$ns" create secret generic "$name" "$@" >/dev/null
  log "secret $ns/$name created"
}
s3_key="${MLOPS_LAB_S3_SECRET_KEY:-$(random_secret)}"
ensure_secret minio minio-root --from-literal=rootUser=admin \
  --from-literal=rootPassword="${MINIO_ROOT_PASSWORD:-$(random_secret)}"
ensure_secret minio minio-user --from-literal=secretKey="$s3_key"
ensure_secret "$APP_NS" s3-credentials --from-literal=AWS_ACCESS_KEY_ID=mlops-lab \
  --from-literal=AWS_SECRET_ACCESS_KEY="$s3_key"
ensure_secret "$APP_NS" mlflow-db --from-literal=POSTGRES_USER=mlflow \
  --from-literal=POSTGRES_PASSWORD="${MLFLOW_DB_PASSWORD:-$(random_secret)}"
ensure_secret monitoring grafana-admin --from-literal=admin-user=admin \
  --from-literal=admin-password="${GRAFANA_ADMIN_PASSWORD:-$(random_secret)}"

# ------------------------------------------------------------------------------- cert-manager
log "cert-manager $CERT_MANAGER_VERSION"
helm_ upgrade --install cert-manager oci://quay.io/jetstack/charts/cert-manager \
  --version "$CERT_MANAGER_VERSION" --namespace cert-manager --create-namespace \
  -f "$CLUSTER_DIR/helm/cert-manager.yaml" --wait --timeout 5m
# KServe's install creates Certificates: its webhook races cert-manager's if we don't wait for
# the webhook to *answer* (kserve#5037), not merely for the pod to run.
wait_webhook cert-manager 'apiVersion: cert-manager.io/v1
kind: Issuer
metadata: {name: webhook-probe, namespace: cert-manager}
spec: {selfSigned: {}}'

# ------------------------------------------------------------------- Knative Serving + Kourier
log "Knative Serving $KNATIVE_SERVING_VERSION with Kourier $KNATIVE_KOURIER_VERSION"
kn=https://github.com/knative/serving/releases/download/$KNATIVE_SERVING_VERSION
kube apply -f "$kn/serving-crds.yaml"
kube wait --for=condition=Established crd --all --timeout=120s
kube apply -f "$kn/serving-core.yaml"
kube apply -f "https://github.com/knative/net-kourier/releases/download/$KNATIVE_KOURIER_VERSION/kourier.yaml"
kube -n knative-serving patch configmap/config-network --type merge \
  -p '{"data":{"ingress-class":"kourier.ingress.networking.knative.dev"}}'
# The champion keeps one replica (minReplicas 1); the GPU variant starts at zero and scales to
# zero (initial-scale 0 needs this switch), so it takes the one GPU only while it serves.
kube -n knative-serving patch configmap/config-autoscaler --type merge \
  -p '{"data":{"allow-zero-initial-scale":"true"}}'
# Pod fields Knative refuses by default and our InferenceServices use: emptyDir volumes, the
# nvidia RuntimeClass (GPU variant), node selectors and tolerations (managed GPU pools); and
# secure defaults so its queue-proxy passes Pod Security "restricted".
kube -n knative-serving patch configmap/config-features --type merge -p '{"data":{
  "secure-pod-defaults":"enabled",
  "kubernetes.podspec-emptydir":"enabled",
  "kubernetes.podspec-runtimeclassname":"enabled",
  "kubernetes.podspec-nodeselector":"enabled",
  "kubernetes.podspec-tolerations":"enabled"}}'
wait_deployments knative-serving
wait_deployments kourier-system

# ------------------------------------------------------------------------------------ KServe
log "KServe $KSERVE_VERSION (Knative mode)"
helm_ upgrade --install kserve-crd oci://ghcr.io/kserve/charts/kserve-crd \
  --version "$KSERVE_VERSION" --namespace kserve --create-namespace --wait
helm_ upgrade --install kserve oci://ghcr.io/kserve/charts/kserve-resources \
  --version "$KSERVE_VERSION" --namespace kserve \
  -f "$CLUSTER_DIR/helm/kserve.yaml" --wait --timeout 10m
wait_deployments kserve
wait_webhook kserve "apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: webhook-probe, namespace: $APP_NS}
spec:
  predictor:
    containers: [{name: kserve-container, image: $PREDICTOR_IMAGE}]"

# ---------------------------------------------------------------------------------- storage
log "MinIO chart $MINIO_CHART_VERSION"
helm_ upgrade --install minio minio --repo https://charts.min.io --version "$MINIO_CHART_VERSION" \
  --namespace minio -f "$CLUSTER_DIR/helm/minio.yaml" --wait --timeout 10m

# ------------------------------------------------------------------------------- monitoring
log "kube-prometheus-stack $KUBE_PROMETHEUS_STACK_VERSION"
helm_ upgrade --install kube-prometheus-stack kube-prometheus-stack \
  --repo https://prometheus-community.github.io/helm-charts --version "$KUBE_PROMETHEUS_STACK_VERSION" \
  --namespace monitoring -f "$CLUSTER_DIR/helm/kube-prometheus-stack.yaml" --wait --timeout 10m

# --------------------------------------------------------------------------------- pipeline
log "Argo Workflows chart $ARGO_WORKFLOWS_CHART_VERSION"
helm_ upgrade --install argo-workflows argo-workflows --repo https://argoproj.github.io/argo-helm \
  --version "$ARGO_WORKFLOWS_CHART_VERSION" --namespace argo --create-namespace \
  -f "$CLUSTER_DIR/helm/argo-workflows.yaml" --wait --timeout 10m

# ----------------------------------------------------------------- our images and manifests
"$CLUSTER_DIR/scripts/images.sh"
log "applying cluster/manifests/overlays/$CLUSTER_PROFILE"
kube apply --server-side --force-conflicts -k "$CLUSTER_DIR/manifests/overlays/$CLUSTER_PROFILE"
kube -n "$APP_NS" rollout status deployment/mlflow-db --timeout=300s
kube -n "$APP_NS" rollout status deployment/mlflow --timeout=300s

log "ready. Next: docs/cluster.md (train, serve, canary), or cluster/smoke.sh for all of it"
log "Grafana: kubectl -n monitoring port-forward svc/kube-prometheus-stack-grafana 3000:80 (user admin; password: kubectl -n monitoring get secret grafana-admin -o jsonpath='{.data.admin-password}' | base64 -d)"
