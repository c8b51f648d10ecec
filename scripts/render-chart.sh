#!/usr/bin/env bash
# Renders the chart into deploy/kustomize/base/rendered/mes-edge.yaml (the overlays' base) with the
# pinned helm. Extra arguments go to `helm template` (e.g. --set image.digest=sha256:…).
set -euo pipefail
cd "$(dirname "$0")/.."
HELM=${HELM:-.venv/k8s-tools/bin/helm}
out=${RENDER_OUT:-deploy/kustomize/base/rendered}
mkdir -p "$out"
"$HELM" template mes-edge deploy/helm/mes-edge --namespace mes-edge "$@" \
  2> >(grep -v "symbolic link" >&2) > "$out/mes-edge.yaml"   # helm notes the symlinked files/
