#!/usr/bin/env python3
"""The chart's wiring, run for real (issue 10): takes the rendered migrate Job and the API and
worker Deployments, resolves their environment exactly as Kubernetes would (ConfigMap, then
Secret, then the container's own `env`), points the service URLs at the local PostgreSQL,
Redis and RabbitMQ, and starts the same binaries with the same arguments: the migration must
succeed, `/ready` must answer 200 on the API and every worker, and one generation must complete.

usage: chart_wiring.py RENDERED.yaml BIN_DIR
Only 127.0.0.1 is contacted.
"""
import base64
import hashlib
import hmac
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

import yaml

rendered, bin_dir = sys.argv[1], sys.argv[2]
docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
config_maps = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
secrets = {d["metadata"]["name"]: d.get("stringData", {}) for d in docs if d["kind"] == "Secret"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


tag = uuid.uuid4().hex[:10]
database = f"boards_chart_{tag}"
admin = os.environ.get("BOARDS_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
storage = tempfile.mkdtemp(prefix="boards-chart-")
local = {
    # The service URLs the cluster would give, pointed at this machine's services.
    "BOARDS_DATABASE_URL": admin.rsplit("/", 1)[0] + "/" + database,
    "BOARDS_REDIS_URL": "redis://127.0.0.1:6379",
    "BOARDS_AMQP_URL": "amqp://guest:guest@127.0.0.1:5672/%2f",
    # Isolation from other runs on the same services, and a writable folder for /data/storage.
    "BOARDS_AMQP_PREFIX": f"chart-{tag}",
    "BOARDS_REDIS_CHANNEL_PREFIX": f"chart-{tag}:",
    "BOARDS_STORAGE_LOCAL_BASE_PATH": storage,
}


def container_env(container):
    env = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update({k: str(v) for k, v in config_maps[source["configMapRef"]["name"]].items() if k.isupper()})
        if "secretRef" in source:
            env.update(secrets.get(source["secretRef"]["name"], {}))
    for e in container.get("env", []):
        env[e["name"]] = e["value"]
    env.update(local)
    return env


def workload(kind, suffix):
    return [d for d in docs if d["kind"] == kind and d["metadata"]["name"].endswith(suffix)]


procs = []


def start(binary, args, env, log):
    full = {k: v for k, v in os.environ.items() if not k.startswith("BOARDS_")}
    full.update(env)
    p = subprocess.Popen([os.path.join(bin_dir, binary), *args], env=full, stdout=log, stderr=subprocess.STDOUT)
    procs.append(p)
    return p


def wait_ready(url, what, within=60):
    deadline = time.time() + within
    last = None
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=3) as r:
                if r.status == 200:
                    return
        except Exception as e:  # noqa: BLE001 - any failure means not ready yet
            last = e
        time.sleep(0.5)
    raise SystemExit(f"{what}: {url} never answered 200 ({last})")


def jwt(secret, sub):
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = {"iss": "boards", "aud": "boards-api", "sub": sub, "email": f"{sub}@example.com", "exp": int(time.time()) + 600}
    body = b64(json.dumps(claims).encode())
    sig = b64(hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest())
    return f"{head}.{body}.{sig}"


def gql(base, token, query, variables):
    req = urllib.request.Request(
        f"{base}/graphql",
        data=json.dumps({"query": query, "variables": variables}).encode(),
        headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        out = json.load(r)
    if out.get("errors"):
        raise SystemExit(f"GraphQL error: {out['errors']}")
    return out["data"]


logs = tempfile.mkdtemp(prefix="boards-chart-logs-")
try:
    subprocess.run(["psql", admin, "-q", "-c", f'CREATE DATABASE "{database}"'], check=True)
    # 1. The migrate Job.
    (job,) = workload("Job", "-migrate")
    c = job["spec"]["template"]["spec"]["containers"][0]
    with open(os.path.join(logs, "migrate.log"), "w") as log:
        p = start("boards-api", c["args"], container_env(c), log)
        if p.wait(timeout=120) != 0:
            raise SystemExit(f"the migration failed:\n{open(os.path.join(logs, 'migrate.log')).read()}")
    print("   migrate Job: ok")
    # 2. The API Deployment.
    (api,) = workload("Deployment", "-api")
    c = api["spec"]["template"]["spec"]["containers"][0]
    api_env = container_env(c)
    api_port = free_port()
    api_env["BOARDS_API_PORT"] = str(api_port)
    api_env["BOARDS_API_HOST"] = "127.0.0.1"
    probe = c["readinessProbe"]["httpGet"]["path"]
    start("boards-api", c.get("args", []), api_env, open(os.path.join(logs, "api.log"), "w"))
    base = f"http://127.0.0.1:{api_port}"
    wait_ready(base + probe, "API")
    print(f"   API Deployment: {probe} 200")
    # 3. Every worker pool's Deployment.
    for w in workload("Deployment", "") :
        name = w["metadata"]["name"]
        if "-worker-" not in name:
            continue
        c = w["spec"]["template"]["spec"]["containers"][0]
        env = container_env(c)
        port = free_port()
        env["BOARDS_WORKER_HEALTH_PORT"] = str(port)
        env["BOARDS_WORKER_HEALTH_HOST"] = "127.0.0.1"
        probe = c["readinessProbe"]["httpGet"]["path"]
        start("boards-worker", c.get("args", []), env, open(os.path.join(logs, f"{name}.log"), "w"))
        wait_ready(f"http://127.0.0.1:{port}{probe}", name)
        print(f"   {name}: {probe} 200 (pools {env.get('BOARDS_WORKER_POOLS')})")
    # 4. One generation, as a user of the configured auth provider.
    token = None
    if api_env.get("BOARDS_AUTH_PROVIDER") == "jwt":
        token = jwt(api_env["BOARDS_JWT_SECRET"], "chart-user")
    board = gql(base, token, 'mutation { createBoard(input: {title: "chart"}) { id } }', {})["createBoard"]["id"]
    gen = gql(
        base,
        token,
        "mutation($i: CreateGenerationInput!) { createGeneration(input: $i) { id } }",
        {"i": {"boardId": board, "generatorName": "local-echo", "artifactType": "TEXT", "inputParams": {"prompt": "wired"}}},
    )["createGeneration"]["id"]
    deadline = time.time() + 60
    while True:
        status = gql(base, token, "query($id: UUID!) { generation(id: $id) { status errorMessage } }", {"id": gen})["generation"]
        if status["status"] == "COMPLETED":
            break
        if status["status"] in ("FAILED", "CANCELLED") or time.time() > deadline:
            raise SystemExit(f"the generation did not complete: {status}")
        time.sleep(0.3)
    print("   one generation completed")
except BaseException:
    for f in sorted(os.listdir(logs)):
        print(f"--- {f} (last lines)")
        print("".join(line[:400] + "\n" if len(line) > 400 else line for line in open(os.path.join(logs, f)).readlines()[-15:]))
    raise
finally:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
    subprocess.run(["psql", admin, "-q", "-c", f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'], check=False)
    # The run's queues (`chart-<tag>.*`), where this machine's broker can be managed.
    if shutil.which("rabbitmqctl"):
        listed = subprocess.run(
            ["rabbitmqctl", "-q", "list_queues", "name"], capture_output=True, text=True, check=False
        ).stdout.split()
        for queue in listed:
            if queue.startswith(local["BOARDS_AMQP_PREFIX"] + "."):
                subprocess.run(["rabbitmqctl", "-q", "delete_queue", queue], capture_output=True, check=False)
    shutil.rmtree(storage, ignore_errors=True)
    shutil.rmtree(logs, ignore_errors=True)
