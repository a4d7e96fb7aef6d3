#!/usr/bin/env bash
# `make cluster-down`: delete the kind cluster and everything in it (volumes included).
# Host settings (the NVIDIA toolkit's config, Docker's runtime) are left as they are.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

command -v kind >/dev/null 2>&1 || die "kind is not installed: nothing to tear down"
if kind get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME"; then
  kind delete cluster --name "$CLUSTER_NAME"
  log "cluster $CLUSTER_NAME deleted"
else
  log "no kind cluster named $CLUSTER_NAME: nothing to do"
fi
