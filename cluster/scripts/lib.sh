#!/usr/bin/env bash
# Shared by the cluster scripts: versions, logging, and waits that don't race.
# Sourced, never run: `source "$(dirname "$0")/lib.sh"`.

CLUSTER_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPO_ROOT="$(cd "$CLUSTER_DIR/.." && pwd)"
export CLUSTER_DIR REPO_ROOT
# shellcheck source-path=SCRIPTDIR source=../versions.env
source "$CLUSTER_DIR/versions.env"

CLUSTER_NAME="${CLUSTER_NAME:-mlops-lab}"
# gpu (default where nvidia-smi works) or cpu; `make cluster-up CLUSTER_PROFILE=cpu` forces it.
if [[ -z "${CLUSTER_PROFILE:-}" ]]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    CLUSTER_PROFILE=gpu
  else
    CLUSTER_PROFILE=cpu
  fi
fi
APP_NS=mlops-lab
export CLUSTER_NAME CLUSTER_PROFILE APP_NS

log() { printf '\033[1m[cluster]\033[0m %s\n' "$*"; }
warn() { printf '\033[33m[cluster] warning:\033[0m %s\n' "$*" >&2; }
die() {
  printf '\033[31m[cluster] error:\033[0m %s\n' "$*" >&2
  exit 1
}

kube() { kubectl --context "kind-$CLUSTER_NAME" "$@"; }
helm_() { helm --kube-context "kind-$CLUSTER_NAME" "$@"; }

# Wait until every Deployment in a namespace is Available. `kubectl wait` on pods races with pods
# that do not exist yet; Deployments exist as soon as the install returns.
wait_deployments() {
  local ns=$1 timeout=${2:-300s}
  log "waiting for deployments in $ns (up to $timeout)"
  kube -n "$ns" wait deployment --all --for=condition=Available --timeout="$timeout"
}

# A webhook is ready when the API server can call it, not when its pod runs: retry a server-side
# dry run of an object that the webhook validates until it is accepted (cert-manager, kserve#5037).
wait_webhook() {
  local what=$1 manifest=$2 tries=${3:-60}
  log "waiting for the $what webhook to answer"
  for ((i = 1; i <= tries; i++)); do
    if kube apply --dry-run=server -f - <<<"$manifest" >/dev/null 2>&1; then
      return 0
    fi
    sleep 5
  done
  die "the $what webhook did not answer after $((tries * 5)) s: kubectl -n $what get pods,events"
}

# A random secret value for a local cluster (an environment variable overrides it).
random_secret() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
