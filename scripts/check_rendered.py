#!/usr/bin/env python3
"""Checks on the Helm chart's rendered manifests (issue 10): API and each worker pool are
separate Deployments with their own replicas; probes point at paths the binaries serve; the
migration hook Job exists; no Secret value appears in a ConfigMap; every BOARDS_* variable the
chart sets is documented in docs/configuration.md; workers get more time to stop than they
take to drain.

usage: check_rendered.py RENDERED.yaml VALUES.yaml [SECRET_VALUE...]
"""
import re
import sys
from pathlib import Path

import yaml

root = Path(__file__).resolve().parent.parent
rendered, values_file, secret_values = sys.argv[1], sys.argv[2], sys.argv[3:]
docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
values = yaml.safe_load(open(values_file)) or {}
chart_values = yaml.safe_load(open(root / "helm/boards/values.yaml"))
problems = []


def fail(msg):
    problems.append(msg)


def by_kind(kind):
    return [d for d in docs if d["kind"] == kind]


deployments = {d["metadata"]["name"]: d for d in by_kind("Deployment")}
pools = (values.get("workers") or {}).get("pools") or chart_values["workers"]["pools"]
api = [d for n, d in deployments.items() if n.endswith("-api")]
if len(api) != 1:
    fail(f"expected one API Deployment, found {list(deployments)}")
for pool in pools:
    name = [n for n in deployments if n.endswith(f"-worker-{pool['name']}")]
    if len(name) != 1:
        fail(f"pool {pool['name']}: expected its own Deployment, found {list(deployments)}")
        continue
    d = deployments[name[0]]
    keda = (pool.get("keda") or {}).get("enabled")
    if keda:
        if "replicas" in d["spec"]:
            fail(f"{name[0]}: KEDA scales it, yet replicas is set")
    elif d["spec"].get("replicas") != pool["replicas"]:
        fail(f"{name[0]}: replicas {d['spec'].get('replicas')} != {pool['replicas']}")
    env = {e["name"]: e.get("value") for c in d["spec"]["template"]["spec"]["containers"] for e in c.get("env", [])}
    if yaml.safe_load(env.get("BOARDS_WORKER_POOLS", "[]")) != pool["queues"]:
        fail(f"{name[0]}: BOARDS_WORKER_POOLS {env.get('BOARDS_WORKER_POOLS')} != {pool['queues']}")
    grace = d["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30)
    drain = (values.get("workers") or {}).get("shutdownGraceSeconds", chart_values["workers"]["shutdownGraceSeconds"])
    if grace <= drain:
        fail(f"{name[0]}: terminationGracePeriodSeconds {grace} <= the worker's drain {drain}")

# Probes: only paths the binaries serve.
served = set(re.findall(r'"(/[a-z]+)"', (root / "api/src/lib.rs").read_text())) | set(
    re.findall(r'"(/[a-z]+)"', (root / "worker/src/health.rs").read_text())
)
for d in deployments.values():
    for c in d["spec"]["template"]["spec"]["containers"]:
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            p = c.get(probe)
            if p and p.get("httpGet", {}).get("path") not in served:
                fail(f"{d['metadata']['name']}: {probe} path {p['httpGet']['path']} is not served ({sorted(served)})")
        if "readinessProbe" not in c or "livenessProbe" not in c:
            fail(f"{d['metadata']['name']}: liveness and readiness probes are required")

jobs = [j for j in by_kind("Job") if "migrate" in j["metadata"]["name"]]
if not jobs:
    fail("no migration Job")
for j in jobs:
    hooks = j["metadata"].get("annotations", {}).get("helm.sh/hook", "")
    if set(hooks.split(",")) != {"pre-install", "pre-upgrade"}:
        fail(f"{j['metadata']['name']}: hook is {hooks!r}, expected pre-install,pre-upgrade")
    args = j["spec"]["template"]["spec"]["containers"][0].get("args")
    if args != ["migrate"]:
        fail(f"{j['metadata']['name']}: args {args}, expected ['migrate']")

for cm in by_kind("ConfigMap"):
    text = yaml.safe_dump(cm.get("data", {}))
    for s in secret_values:
        if s and s in text:
            fail(f"ConfigMap {cm['metadata']['name']} contains a secret value")
    for key in cm.get("data", {}):
        if re.search(r"(URL|SECRET|PASSWORD|TOKEN|_KEY)$", key) and key.startswith("BOARDS_") and key not in (
            "BOARDS_STORAGE_S3_ENDPOINT_URL", "BOARDS_STORAGE_S3_CDN_BASE_URL", "BOARDS_STORAGE_LOCAL_PUBLIC_URL_BASE",
            "BOARDS_FAL_BASE_URL", "BOARDS_FAL_REST_URL", "BOARDS_REPLICATE_BASE_URL", "BOARDS_OPENAI_BASE_URL",
            "BOARDS_KIE_BASE_URL", "BOARDS_KIE_UPLOAD_URL", "BOARDS_AWS_ACCESS_KEY_ID",
        ):
            fail(f"ConfigMap {cm['metadata']['name']}: {key} looks secret; put it under `secrets`")

# Every BOARDS_* variable the chart sets is documented.
documented = set(re.findall(r"^\| `([A-Z0-9_]+)`", (root / "docs/configuration.md").read_text(), re.M))
set_by_chart = set()
for cm in by_kind("ConfigMap"):
    set_by_chart |= {k for k in cm.get("data", {}) if k.startswith("BOARDS_")}
for s in by_kind("Secret"):
    set_by_chart |= {k for k in (s.get("stringData") or {}) if k.startswith("BOARDS_")}
for d in deployments.values():
    for c in d["spec"]["template"]["spec"]["containers"]:
        set_by_chart |= {e["name"] for e in c.get("env", []) if e["name"].startswith("BOARDS_")}
for key in sorted(set_by_chart - documented):
    fail(f"{key} is set by the chart but not documented in docs/configuration.md")

if problems:
    print("\n".join(f"FAIL {p}" for p in problems))
    sys.exit(1)
print(f"rendered checks passed: {len(docs)} documents, {len(deployments)} Deployments, {len(set_by_chart)} BOARDS_* variables")
