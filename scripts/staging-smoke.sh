#!/usr/bin/env bash
# The pipeline's post-deploy check of one environment (docs/deploy.md, "Pipeline"):
#   1. the Locust smoke (loadtests, `smoke` shape, loadtests/thresholds.yaml) against the release,
#      reached through `kubectl port-forward` on loopback (loadtests refuses other targets);
#   2. scripts/burn_rate_check.py: Prometheus (via port-forward) scrapes this namespace's gateways, and
#      PartnerApiErrorBudgetBurn neither fires for the namespace during a bake window (BAKE_SECONDS,
#      default 300) nor is still pending at its end.
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
listening() {  # the port-forward on 127.0.0.1:$1 accepts connections (30 s at most)
  for _ in $(seq 60); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.5
  done
  echo "port-forward to 127.0.0.1:$1 did not come up:" >&2; cat "$work"/pf-"$1"*.log >&2; return 1
}
forward "$NAMESPACE" "svc/$RELEASE-gateway-external" 8080:80
forward "$NAMESPACE" "svc/$RELEASE-gateway-internal" 8081:8081
forward "$NAMESPACE" "deploy/$RELEASE-gateway" 9901:9901
prom=${PROMETHEUS_SVC:-monitoring/prometheus-operated}
forward "${prom%%/*}" "svc/${prom##*/}" 9090:9090
for port in 8080 8081 9901 9090; do listening "$port"; done

# the environment's key store + pepper, so loadtests finds the CI keys valid and creates none
"$KUBECTL" -n "$NAMESPACE" get secret mes-edge-api-keys -o jsonpath='{.data.api-keys\.json}' | base64 -d >"$work/api-keys.json"
GATEWAY_API_KEY_PEPPER=$("$KUBECTL" -n "$NAMESPACE" get secret mes-edge-gateway -o jsonpath='{.data.api-key-pepper}' | base64 -d)
export GATEWAY_API_KEY_PEPPER LOADTEST_PARTNER_KEYS_FILE

.venv/bin/python -m loadtests --shape smoke --key-store "$work/api-keys.json" --reports reports/"$NAMESPACE"

.venv/bin/python scripts/burn_rate_check.py --prometheus http://127.0.0.1:9090 --namespace "$NAMESPACE" \
  --bake "${BAKE_SECONDS:-300}"
echo "smoke and burn-rate check passed for $NAMESPACE"
