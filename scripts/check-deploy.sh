#!/usr/bin/env bash
# Checks docker/ and helm/ without a container engine or a cluster (issue 10, TOOLS.md):
# hadolint on the Dockerfile, offline `docker compose config`, `helm lint --strict` and
# `helm template` with the default values and a production-like values file, the rendered
# manifests against the Kubernetes schemas (`kubernetes-validate --strict`; CRD kinds are
# listed and skipped: their schemas are not in it), scripts/check_rendered.py, and
# scripts/chart_wiring.py (the rendered Job and Deployments run locally against the services).
set -euo pipefail
cd "$(dirname "$0")/.."
tools=${TOOLS_DIR:-.cache/tools}
scripts/install-deploy-tools.sh "$tools"
bin=$(cd "$tools/bin" && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export HELM_CACHE_HOME=$scratch/helm/cache HELM_CONFIG_HOME=$scratch/helm/config HELM_DATA_HOME=$scratch/helm/data
export PYTHONPATH="$(cd "$tools/deploy-py" && pwd)${PYTHONPATH:+:$PYTHONPATH}"
k8s_version=${KUBERNETES_VERSION:-1.30.0}

echo "== hadolint docker/Dockerfile"
"$bin/hadolint" docker/Dockerfile
echo "== docker compose config (docker/compose.yml, with its defaults and with docker/.env.example)"
"$bin/docker-compose" -f docker/compose.yml config -q
"$bin/docker-compose" -f docker/compose.yml --env-file docker/.env.example config -q

chart=helm/boards
sentinels=(sentinel-db-password sentinel-jwt-secret-of-at-least-32-chars sentinel-fal-key)
secret_args=(--set "secrets.BOARDS_DATABASE_URL=postgres://boards:${sentinels[0]}@db:5432/boards"
  --set "secrets.BOARDS_REDIS_URL=redis://redis:6379" --set "secrets.BOARDS_AMQP_URL=amqp://u:p@mq:5672/%2f"
  --set "secrets.BOARDS_JWT_SECRET=${sentinels[1]}" --set "secrets.FAL_KEY=${sentinels[2]}")
for case in default production; do
  if [ "$case" = default ]; then
    values=$chart/values.yaml
    args=()
  else
    values=$chart/ci/production-values.yaml
    args=(-f "$values")
  fi
  echo "== helm lint --strict ($case values)"
  "$bin/helm" lint --strict "$chart" "${args[@]}"
  echo "== helm template ($case values)"
  "$bin/helm" template boards "$chart" "${args[@]}" "${secret_args[@]}" > "$scratch/$case.yaml"
  python3 - "$scratch/$case.yaml" "$scratch/$case-core.yaml" <<'PY'
import sys, yaml
crd = {"ScaledObject", "TriggerAuthentication", "ServiceMonitor", "PrometheusRule"}
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
skipped = sorted({d["kind"] for d in docs if d["kind"] in crd})
yaml.safe_dump_all([d for d in docs if d["kind"] not in crd], open(sys.argv[2], "w"))
print(f"   {len(docs)} documents; CRD kinds not schema-checked: {', '.join(skipped) or 'none'}")
PY
  echo "== kubernetes-validate --strict -k $k8s_version ($case values)"
  "$bin/kubernetes-validate" --strict -k "$k8s_version" --quiet "$scratch/$case-core.yaml"
  echo "== rendered checks ($case values)"
  python3 scripts/check_rendered.py "$scratch/$case.yaml" "$values" "${sentinels[@]}"
done
if [ "${BOARDS_SKIP_CHART_WIRING:-}" != 1 ]; then
  echo "== the chart's wiring, run for real (default values; binaries from target/debug)"
  # The workspace's feature set, the one `cargo test --workspace` builds with, so the tests reuse
  # these binaries instead of building api, worker and shared a second time.
  cargo build -q --workspace --bins
  python3 scripts/chart_wiring.py "$scratch/default.yaml" target/debug
fi
echo "deploy checks passed"
