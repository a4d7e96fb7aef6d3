#!/usr/bin/env bash
# Preflight for `make cluster-up`: every tool and setting the cluster needs, each failure with the
# command that fixes it. Checks everything, then fails once with the whole list.
#     cluster/scripts/preflight.sh           # the profile is gpu where nvidia-smi works, else cpu
#     CLUSTER_PROFILE=cpu cluster/scripts/preflight.sh
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

problems=()
problem() { problems+=("$1"); }

need() {
  local tool=$1 fix=$2
  command -v "$tool" >/dev/null 2>&1 || problem "$tool is not installed: $fix"
}

need docker "install Docker Engine: https://docs.docker.com/engine/install/"
need kind "install kind $KIND_VERSION: go install sigs.k8s.io/kind@$KIND_VERSION (or the release binary from https://kind.sigs.k8s.io)"
need kubectl "install kubectl: https://kubernetes.io/docs/tasks/tools/"
need helm "install Helm 3: https://helm.sh/docs/intro/install/"

if command -v docker >/dev/null 2>&1 && ! docker info >/dev/null 2>&1; then
  problem "docker cannot reach its daemon: start it (sudo systemctl start docker) and add yourself to the docker group (sudo usermod -aG docker \$USER, then log in again)"
fi
if command -v kind >/dev/null 2>&1; then
  have=$(kind version 2>/dev/null | awk '{print $2}')
  [[ "$have" == "$KIND_VERSION" ]] \
    || warn "kind is $have, the node image is pinned for $KIND_VERSION (cluster/versions.env): other releases may not start it"
fi

if [[ "$CLUSTER_PROFILE" == gpu ]]; then
  if ! command -v nvidia-smi >/dev/null 2>&1; then
    problem "nvidia-smi not found: install the NVIDIA driver (https://www.nvidia.com/drivers), or run the CPU profile: make cluster-up CLUSTER_PROFILE=cpu"
  elif ! nvidia-smi -L >/dev/null 2>&1; then
    problem "nvidia-smi fails: the driver is not loaded (reboot after installing it; check dmesg | grep -i nvidia)"
  fi
  if ! command -v nvidia-ctk >/dev/null 2>&1; then
    problem "nvidia-ctk not found: install the NVIDIA Container Toolkit (https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/install-guide.html)"
  fi
  toolkit_config=/etc/nvidia-container-runtime/config.toml
  if [[ ! -r "$toolkit_config" ]]; then
    problem "$toolkit_config is missing: install the NVIDIA Container Toolkit"
  elif ! grep -Eq '^[[:space:]]*accept-nvidia-visible-devices-as-volume-mounts[[:space:]]*=[[:space:]]*true' "$toolkit_config"; then
    problem "the toolkit ignores GPU requests made by volume mounts (how kind nodes ask for GPUs): sudo nvidia-ctk config --set accept-nvidia-visible-devices-as-volume-mounts=true --in-place && sudo systemctl restart docker"
  fi
  if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    runtime=$(docker info --format '{{.DefaultRuntime}}' 2>/dev/null || true)
    [[ "$runtime" == nvidia ]] \
      || problem "Docker's default runtime is '$runtime', not nvidia: sudo nvidia-ctk runtime configure --runtime=docker --set-as-default && sudo systemctl restart docker"
  fi
fi

if ((${#problems[@]})); then
  printf '\033[31m[cluster] preflight failed (%s profile):\033[0m\n' "$CLUSTER_PROFILE" >&2
  printf '  - %s\n' "${problems[@]}" >&2
  exit 1
fi
log "preflight ok ($CLUSTER_PROFILE profile): docker, kind, kubectl, helm$([[ $CLUSTER_PROFILE == gpu ]] && echo ', nvidia-smi, the toolkit and its config')"
