#!/usr/bin/env bash
# The pipeline's post-deploy check of one environment (docs/deploy.md, "Pipeline"):
#   1. the Locust smoke (loadtests, `smoke` shape, loadtests/thresholds.yaml) against the release,
#      reached through `kubectl port-forward` on loopback (loadtests refuses other targets);
#   2. no PartnerApiErrorBudgetBurn alert firing for the namespace (Prometheus via port-forward).
# Either failing exits non-zero; the caller then runs `helm rollback`.
# Needs: KUBECONFIG for the cluster, NAMESPACE, LOADTEST_PARTNER_KEYS_FILE (keys made once per
# environment with `python -m gateway.api_keys create`, kept as a CI secret file), and optionally
# PROMETHEUS_SVC (namespace/service, default monitoring/prometheus-operated).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${NAMESPACE:?}" "${LOADTEST_PARTNER_KEYS_FILE:?}"
KUBECTL=${KUBECTL:-.venv/k8s-tools/bin/kubectl}
RELEASE=${RELEASE:-mes-edge}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

forward() { "$KUBECTL" -n "$1" port-forward "$2" "$3" >"$work/pf-$3.log" 2>&1 & pids+=($!); }
forward "$NAMESPACE" "svc/$RELEASE-gateway-external" 8080:80
forward "$NAMESPACE" "svc/$RELEASE-gateway-internal" 8081:8081
forward "$NAMESPACE" "deploy/$RELEASE-gateway" 9901:9901
prom=${PROMETHEUS_SVC:-monitoring/prometheus-operated}
forward "${prom%%/*}" "svc/${prom##*/}" 9090:9090

# the environment's key store + pepper, so loadtests finds the CI keys valid and creates none
"$KUBECTL" -n "$NAMESPACE" get secret mes-edge-api-keys -o jsonpath='{.data.api-keys\.json}' | base64 -d >"$work/api-keys.json"
GATEWAY_API_KEY_PEPPER=$("$KUBECTL" -n "$NAMESPACE" get secret mes-edge-gateway -o jsonpath='{.data.api-key-pepper}' | base64 -d)
export GATEWAY_API_KEY_PEPPER LOADTEST_PARTNER_KEYS_FILE

.venv/bin/python -m loadtests --shape smoke --key-store "$work/api-keys.json" --reports reports/"$NAMESPACE"

firing=$(curl -fsS --get http://127.0.0.1:9090/api/v1/query \
  --data-urlencode "query=ALERTS{alertname=\"PartnerApiErrorBudgetBurn\",alertstate=\"firing\",namespace=\"$NAMESPACE\"}" \
  | .venv/bin/python -c 'import json,sys; print(len(json.load(sys.stdin)["data"]["result"]))')
if [[ $firing != 0 ]]; then
  echo "PartnerApiErrorBudgetBurn is firing in $NAMESPACE" >&2
  exit 1
fi
echo "smoke and burn-rate check passed for $NAMESPACE"
