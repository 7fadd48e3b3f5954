"""kube generate|play|down for real: generated YAML is valid Kubernetes and plays back
the container it came from; a pod's containers share localhost and emptyDir volumes."""

from __future__ import annotations

import json
import time
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from conftest import fetch_until_up, ok

from tests.docker_registry import free_port


@pytest.fixture
def image(rootless, image):  # type: ignore[no-untyped-def]
    yield image
    rootless("rm", "-af")


def validate(text: str) -> list[dict]:  # type: ignore[type-arg]
    docs = [d for d in yaml.safe_load_all(text) if d]
    for doc in docs:
        kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)
    return docs


def env_of(rootless, name):  # type: ignore[no-untyped-def]
    return json.loads(ok(rootless("inspect", name)))[0]["Config"]["Env"]


def test_generate_validates_and_play_reproduces_the_containers(
    rootless, image, tmp_path, find_processes_with_token
):  # type: ignore[no-untyped-def]
    html = tmp_path / "html"
    html.mkdir()
    (html / "index.html").write_text("hello from web\n")
    port = free_port()
    ok(rootless("run", "-d", "--name", "web", "-e", "GREETING=hi", "-w", "/srv",
                "-p", f"{port}:80", "-v", f"{html}:/srv:ro", image,
                "httpd", "-f", "-p", "80", "-h", "/srv"))  # fmt: skip
    ok(rootless("run", "-d", "--name", "job", "-e", "GREETING=hi", "-w", "/tmp", image,
                "sh", "-c", 'echo "$GREETING from $(pwd) as $(id -u)"'))  # fmt: skip
    assert ok(rootless("wait", "job")).strip() == "0"
    job_output = ok(rootless("logs", "job"))
    assert job_output == "hi from /tmp as 0\n"
    assert fetch_until_up(f"http://127.0.0.1:{port}/") == b"hello from web\n"
    web_env = env_of(rootless, "web")

    web_yaml = ok(rootless("kube", "generate", "web"))
    (pod,) = validate(web_yaml)
    assert pod["kind"] == "Pod" and pod["metadata"]["name"] == "web-pod"
    deploy, svc = validate(ok(rootless("kube", "generate", "--type", "deployment", "-s", "web")))
    assert (deploy["kind"], svc["kind"]) == ("Deployment", "Service")
    job_file = tmp_path / "job.yaml"
    ok(rootless("kube", "generate", "-f", str(job_file), "job"))
    validate(job_file.read_text())

    ok(rootless("rm", "-f", "web", "job"))  # frees the port for the pod
    web_file = tmp_path / "web.yaml"
    web_file.write_text(web_yaml)
    try:
        r = rootless("kube", "play", str(web_file))
        ok(r)
        assert "WARN" not in r.stderr  # what generate writes, play understands
        assert "web-pod-web" in r.stdout
        assert fetch_until_up(f"http://127.0.0.1:{port}/") == b"hello from web\n"
        played_env = env_of(rootless, "web-pod-web")
        assert "GREETING=hi" in played_env
        drop = ("HOSTNAME=",)  # the pod's hostname is the pod's name
        assert sorted(e for e in played_env if not e.startswith(drop)) == sorted(
            e for e in web_env if not e.startswith(drop)
        )
        assert ok(rootless("exec", "web-pod-web", "pwd")).strip() == "/srv"

        ok(rootless("kube", "play", str(job_file)))
        assert ok(rootless("wait", "job-pod-job")).strip() == "0"
        assert ok(rootless("logs", "job-pod-job")) == job_output

        again = rootless("kube", "play", str(web_file))
        assert again.returncode == 125 and "pod web-pod exists already" in again.stderr
    finally:
        down = rootless("kube", "down", str(web_file))
        down_job = rootless("kube", "down", str(job_file))
    assert ok(down).strip() == "web-pod"
    assert ok(down_job).strip() == "job-pod"
    assert ok(rootless("ps", "-aq")).strip() == ""
    assert not (rootless.data_home / "rootless" / "kube").exists()
    assert find_processes_with_token(str(rootless.runtime_dir), wait=5) == []


POD = """
apiVersion: v1
kind: Pod
metadata:
  name: shared
spec:
  restartPolicy: Never
  hostAliases:
  - ip: 127.0.0.1
    hostnames: [web]
  containers:
  - name: writer
    image: {image}
    command: [sh, -c, "echo from-writer > /data/index.html; echo on-host > /out/note; sleep 1000"]
    volumeMounts:
    - {{name: scratch, mountPath: /data}}
    - {{name: out, mountPath: /out}}
  - name: web
    image: {image}
    args: [httpd, -f, -p, "8000", -h, /data]
    volumeMounts:
    - {{name: scratch, mountPath: /data, readOnly: true}}
  - name: probe
    image: {image}
    command:
    - sh
    - -c
    - for i in $(seq 100); do wget -qO- http://web:8000/ && exit 0; sleep 0.1; done; exit 1
    futureField: 1
  volumes:
  - name: scratch
    emptyDir: {{}}
  - name: out
    hostPath: {{path: {out}, type: DirectoryOrCreate}}
"""


def test_pod_containers_share_localhost_and_empty_dir(
    rootless, image, tmp_path, find_processes_with_token
):  # type: ignore[no-untyped-def]
    out = tmp_path / "made-by-play"
    file = tmp_path / "pod.yaml"
    file.write_text(POD.format(image=image, out=out))
    try:
        r = rootless("kube", "play", str(file))
        ok(r)
        assert f"{file}:29: spec.containers[2].futureField: not supported" in r.stderr
        assert ok(rootless("wait", "shared-probe")).strip() == "0"
        assert ok(rootless("logs", "shared-probe")) == "from-writer\n"
        assert (out / "note").read_text() == "on-host\n"
        assert "shared-scratch" in ok(rootless("volume", "ls", "-q"))
        assert ok(rootless("exec", "shared-web", "hostname")).strip() == "shared"
    finally:
        down = rootless("kube", "down", str(file))
    assert ok(down).strip() == "shared"
    assert ok(rootless("ps", "-aq")).strip() == ""
    assert ok(rootless("volume", "ls", "-q")).strip() == ""
    assert find_processes_with_token(str(rootless.runtime_dir), wait=5) == []


def test_compose_project_becomes_one_pod(rootless, image, tmp_path):  # type: ignore[no-untyped-def]
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "compose.yaml").write_text(
        f"services:\n"
        f"  web:\n    image: {image}\n    command: sleep 1000\n    stop_grace_period: 1s\n"
        f"  worker:\n    image: {image}\n    command: sleep 1000\n    stop_grace_period: 1s\n"
        f"    environment: {{ROLE: w}}\n"
    )
    compose = ("compose", "-f", str(proj / "compose.yaml"), "-p", "demo")
    try:
        ok(rootless(*compose, "up", "-d"))
        (pod,) = validate(ok(rootless("kube", "generate", "demo")))
    finally:
        ok(rootless(*compose, "down", timeout=60))
    assert pod["metadata"]["name"] == "demo"
    spec = pod["spec"]
    assert [c["name"] for c in spec["containers"]] == ["web", "worker"]
    assert spec["hostAliases"] == [{"ip": "127.0.0.1", "hostnames": ["web", "worker"]}]
    assert spec["containers"][1]["env"] == [{"name": "ROLE", "value": "w"}]
    assert spec["terminationGracePeriodSeconds"] == 1


def test_bad_yaml_and_unknown_names_are_errors(rootless, tmp_path: Path):  # type: ignore[no-untyped-def]
    file = tmp_path / "bad.yaml"
    file.write_text("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers: 3\n")
    r = rootless("kube", "play", str(file))
    assert r.returncode == 125
    assert f"{file}:6: spec.containers: must be a list" in r.stderr
    r = rootless("kube", "generate", "nothing-here")
    assert (
        r.returncode == 125
        and 'no container, pod or compose project named "nothing-here"' in r.stderr
    )


def until(check, deadline: float = 60):  # type: ignore[no-untyped-def]
    """Poll ``check`` until it returns something true; that value."""
    end = time.monotonic() + deadline
    while not (found := check()):
        assert time.monotonic() < end, "timed out"
        time.sleep(0.2)
    return found


REPLICAS = """
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - {{name: c, image: {image}, command: [sleep, "1000"]}}
"""


def test_replicas_are_pods_and_down_removes_them_all(
    rootless, image, tmp_path, find_processes_with_token
):  # type: ignore[no-untyped-def]
    file = tmp_path / "deploy.yaml"
    file.write_text(REPLICAS.format(image=image))
    try:
        r = ok(rootless("kube", "play", str(file)))
        assert "web-pod-0-c" in r and "web-pod-1-c" in r
        names = set(ok(rootless("ps", "--format", "{{.Names}}")).split())
        assert names == {"web-pod-0_infra", "web-pod-0-c", "web-pod-1_infra", "web-pod-1-c"}
        # each replica has its own infra container, so its own network and hostname
        assert ok(rootless("exec", "web-pod-1-c", "hostname")).strip() == "web-pod-1"
    finally:
        down = rootless("kube", "down", str(file))
    assert ok(down).split() == ["web-pod-0", "web-pod-1"]
    assert ok(rootless("ps", "-aq")).strip() == ""
    assert find_processes_with_token(str(rootless.runtime_dir), wait=5) == []


CONFIGURED = """
apiVersion: v1
kind: ConfigMap
metadata: {{name: settings}}
data:
  GREETING: hello
  app.conf: "port=80"
---
apiVersion: v1
kind: Pod
metadata: {{name: app}}
spec:
  restartPolicy: Never
  securityContext: {{runAsUser: 1000}}
  containers:
  - name: main
    image: {image}
    command:
    - sh
    - -c
    - >-
      echo "$GREETING/$CONF_GREETING/$USERNAME";
      cat /etc/app/app.conf; echo;
      cat /keys/password; echo;
      stat -c %a /keys/password;
      touch /keys/x 2>/dev/null || echo read-only
    envFrom:
    - {{configMapRef: {{name: settings}}, prefix: CONF_}}
    env:
    - name: GREETING
      valueFrom: {{configMapKeyRef: {{name: settings, key: GREETING}}}}
    - name: USERNAME
      valueFrom: {{secretKeyRef: {{name: creds, key: user}}}}
    volumeMounts:
    - {{name: conf, mountPath: /etc/app}}
    - {{name: keys, mountPath: /keys}}
  volumes:
  - {{name: conf, configMap: {{name: settings}}}}
  - name: keys
    secret: {{secretName: creds, items: [{{key: password, path: password}}], defaultMode: 0444}}
"""

SECRET = """
apiVersion: v1
kind: Secret
metadata: {name: creds}
data: {password: dG9wLXNlY3JldC12YWx1ZQ==}
stringData: {user: alice}
"""


def test_config_maps_and_secrets_become_env_and_read_only_files(rootless, image, tmp_path):  # type: ignore[no-untyped-def]
    file, secret = tmp_path / "app.yaml", tmp_path / "secret.yaml"
    file.write_text(CONFIGURED.format(image=image))
    secret.write_text(SECRET)
    missing = rootless("kube", "play", str(file))
    assert missing.returncode == 125 and 'no Secret "creds" in the file' in missing.stderr
    try:
        ok(rootless("kube", "play", "--configmap", str(secret), str(file)))
        assert ok(rootless("wait", "app-main")).strip() == "0"
        assert ok(rootless("logs", "app-main")).splitlines() == [
            "hello/hello/alice",
            "port=80",
            "top-secret-value",  # readable by user 1000
            "444",
            "read-only",
        ]
        inspect = ok(rootless("inspect", "app-main"))
        assert "top-secret-value" not in inspect and "dG9wLXNlY3JldC12YWx1ZQ" not in inspect
        assert "USERNAME=alice" in json.loads(inspect)[0]["Config"]["Env"]
    finally:
        down = rootless("kube", "down", str(file))
    assert ok(down).strip() == "app"
    assert not (rootless.runtime_dir / "rootless" / "kube").exists()


INIT = """
apiVersion: v1
kind: Pod
metadata: {{name: boot}}
spec:
  terminationGracePeriodSeconds: 1
  initContainers:
  - name: first
    image: {image}
    command: [sh, -c, "echo prepared > /work/flag"]
    volumeMounts: [{{name: work, mountPath: /work}}]
  - name: second
    image: {image}
    command: [sh, -c, "{second}"]
    volumeMounts: [{{name: work, mountPath: /work}}]
  containers:
  - name: main
    image: {image}
    command: [sh, -c, "cat /work/flag; sleep 1000"]
    volumeMounts: [{{name: work, mountPath: /work}}]
    livenessProbe:
      exec: {{command: [test, -s, /work/flag]}}
      periodSeconds: 1
      failureThreshold: 2
  volumes:
  - {{name: work, emptyDir: {{}}}}
"""


def test_init_containers_run_first_and_a_failing_one_stops_play(
    rootless, image, tmp_path, find_processes_with_token
):  # type: ignore[no-untyped-def]
    file = tmp_path / "boot.yaml"
    file.write_text(INIT.format(image=image, second="echo more >> /work/flag"))
    try:
        ok(rootless("kube", "play", str(file)))
        assert until(lambda: ok(rootless("logs", "boot-main"))) == "prepared\nmore\n"
        assert ok(rootless("logs", "boot-first")) == ""  # init containers stay, exited

        def health() -> str:
            state = json.loads(ok(rootless("inspect", "boot-main")))[0]["State"]
            return str((state["Health"] or {}).get("Status"))

        assert until(lambda: health() == "healthy")
    finally:
        down = rootless("kube", "down", str(file))
    assert ok(down).strip() == "boot"

    file.write_text(INIT.format(image=image, second="echo cannot prepare; exit 3"))
    r = rootless("kube", "play", str(file))
    assert r.returncode == 125
    assert (
        'init container second of pod boot exited with code 3, after printing "cannot prepare"'
        in r.stderr
    )
    assert ok(rootless("ps", "-aq")).strip() == ""  # the pod is removed again
    assert ok(rootless("volume", "ls", "-q")).strip() == ""
    assert find_processes_with_token(str(rootless.runtime_dir), wait=5) == []
