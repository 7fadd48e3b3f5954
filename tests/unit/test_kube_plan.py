"""kube play's pure part: Pod and Deployment YAML -> RunOptions, warnings and errors."""

from __future__ import annotations

import textwrap

import pytest

from rootless.errors import ConfigError
from rootless.kube.plan import KubePlan, infra_options, plan_kube
from rootless.kube.source import parse_documents


def plan(text: str, configmaps: str = "") -> KubePlan:
    extra = parse_documents(textwrap.dedent(configmaps), "cm.yaml")
    return plan_kube(
        parse_documents(textwrap.dedent(text), "pod.yaml"), configmaps=extra, files_root="/run/k"
    )


POD = """
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  restartPolicy: OnFailure
  terminationGracePeriodSeconds: 5
  hostAliases:
  - ip: 127.0.0.1
    hostnames: [db, cache]
  securityContext: {runAsUser: 1000}
  containers:
  - name: app
    image: busybox
    command: [httpd, -f]
    args: [-p, "80"]
    env:
    - {name: MODE, value: prod}
    - {name: PORT, value: 80}
    workingDir: /srv
    imagePullPolicy: Never
    ports:
    - {containerPort: 80, hostPort: 8080}
    - {containerPort: 53, hostPort: 5353, protocol: UDP, hostIP: 127.0.0.1}
    - {containerPort: 9000}
    securityContext:
      runAsGroup: 100
      readOnlyRootFilesystem: true
      allowPrivilegeEscalation: true
      capabilities: {add: [NET_ADMIN], drop: [ALL]}
    volumeMounts:
    - {name: html, mountPath: /srv, readOnly: true}
    - {name: scratch, mountPath: /scratch}
    - {name: data, mountPath: /data}
    - {name: conf, mountPath: /etc/app.conf, subPath: app.conf}
  - name: sidecar
    image: busybox
    args: [sleep, "1000"]
    volumeMounts:
    - {name: scratch, mountPath: /shared}
  volumes:
  - name: html
    hostPath: {path: /home/u/html, type: DirectoryOrCreate}
  - name: scratch
    emptyDir: {}
  - name: data
    persistentVolumeClaim: {claimName: appdata}
  - name: conf
    hostPath: {path: /home/u/conf}
"""


def test_pod_becomes_infra_and_containers() -> None:
    result = plan(POD)
    assert result.warnings == ()
    (pod,) = result.pods
    assert pod.name == "web" and pod.hostname == "web" and pod.infra_name == "web_infra"
    assert pod.publish == ("8080:80/tcp", "127.0.0.1:5353:53/udp")  # 9000 has no hostPort
    assert pod.add_hosts == ("db:127.0.0.1", "cache:127.0.0.1")
    assert pod.volumes == ("web-scratch",)
    assert pod.host_dirs == ("/home/u/html",)
    app, sidecar = (c.options for c in pod.containers)
    assert app.name == "web-app" and sidecar.name == "web-sidecar"
    assert app.entrypoint == "httpd" and app.command == ("-f", "-p", "80")
    assert sidecar.entrypoint is None and sidecar.command == ("sleep", "1000")
    assert app.env == (("MODE", "prod"), ("PORT", "80"))
    assert app.workdir == "/srv" and app.pull == "never" and sidecar.pull == "missing"
    assert app.user == "1000:100" and sidecar.user == "1000"  # the pod's runAsUser
    assert app.read_only and not app.no_new_privileges and sidecar.no_new_privileges
    assert app.cap_add == ("NET_ADMIN",) and app.cap_drop == ("ALL",)
    assert app.hostname == "web" and app.network is not None
    assert app.network.mode == "container:web_infra" and app.network.publish == ()
    assert app.mounts is not None and app.mounts.mounts == (
        "type=bind,source=/home/u/html,target=/srv,ro",
        "type=volume,source=web-scratch,target=/scratch,volume-nocopy=true",
        "type=volume,source=appdata,target=/data",
        "type=bind,source=/home/u/conf/app.conf,target=/etc/app.conf",
    )
    assert app.extra["restart"] == "on-failure" and app.extra["stop_timeout"] == 5.0
    assert app.extra["kube"] == {"pod": "web", "container": "app"}
    assert app.extra["labels"] == {"app": "web"}

    infra = infra_options(pod, "/data/kube/web/infra", "/usr/bin/catatonit")
    assert infra.rootfs == "/data/kube/web/infra" and infra.command == ("/catatonit", "-P")
    assert infra.network is not None and infra.network.publish == pod.publish
    assert infra.network.add_hosts == pod.add_hosts
    assert infra.extra["kube"] == {"pod": "web", "infra": True}


def test_default_restart_is_always_and_never_restarts_not() -> None:
    base = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n"
    base += "  containers: [{name: c, image: i}]\n"
    assert plan(base).pods[0].containers[0].options.extra["restart"] == "always"
    never = base + "  restartPolicy: Never\n"
    assert "restart" not in plan(never).pods[0].containers[0].options.extra


def test_unknown_and_unsupported_fields_are_warned_about_with_their_line() -> None:
    result = plan(
        """
        apiVersion: v1
        kind: Pod
        metadata:
          name: p
          namespace: default
        spec:
          nodeSelector: {disk: ssd}
          containers:
          - name: c
            image: i
            resources: {limits: {memory: 1Gi}}
            resourcesEmpty: {}
            env:
            - name: FROM
              valueFrom: {fieldRef: {fieldPath: metadata.name}}
            securityContext: {privileged: true}
          volumes:
          - name: share
            nfs: {server: x, path: /}
        status: {phase: Running}
        ---
        apiVersion: batch/v1
        kind: Job
        metadata: {name: x}
        """
    )
    assert result.warnings == (
        "pod.yaml:24: kind: kind Job is not supported by kube play, skipped",
        "pod.yaml:8: spec.nodeSelector: not supported by kube play, ignored",
        'pod.yaml:20: spec.volumes[0].nfs: nfs volumes are not supported; "share" is not mounted',
        "pod.yaml:12: spec.containers[0].resources: not supported by kube play, ignored",
        "pod.yaml:17: spec.containers[0].securityContext.privileged: privileged containers are "
        "not supported, ignored",
        "pod.yaml:16: spec.containers[0].env[0].valueFrom.fieldRef: not supported by kube play, "
        "ignored",
    )
    assert plan_env(result) == ()


def plan_env(result: KubePlan) -> tuple[tuple[str, str], ...]:
    return result.pods[0].containers[0].options.env


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kind: Pod\nmetadata: {name: p}\nspec:\n  containers: []\n", "is required"),
        (
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: []\n",
            "pod.yaml:5: spec.containers: a pod needs at least one container",
        ),
        (
            "apiVersion: v1\nkind: Pod\nmetadata: {name: Bad_Name}\nspec: {}\n",
            'pod.yaml:3: metadata.name: "Bad_Name" is not a valid pod name',
        ),
        (
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
            "  - name: c\n    image: i\n    ports:\n    - containerPort: http\n",
            "pod.yaml:9: spec.containers[0].ports[0].containerPort: must be a whole number",
        ),
        (
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
            "  - name: c\n    image: i\n    volumeMounts:\n    - {name: nope, mountPath: /x}\n",
            'pod.yaml:9: spec.containers[0].volumeMounts[0].name: no volume "nope"',
        ),
        (
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
            "  - {name: c, image: i}\n  - {name: c, image: i}\n",
            'container name "c" is used twice',
        ),
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: [\n", "pod.yaml:5: invalid YAML"),
        ("- a\n- b\n", "pod.yaml:1: a document must be a mapping"),
    ],
)
def test_errors_name_file_line_and_path(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        plan(text)


DEPLOYMENT = """
apiVersion: apps/v1
kind: {kind}
metadata: {{name: web}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - name: c
        image: i
        volumeMounts: [{{name: scratch, mountPath: /s}}]
        futureField: 1
      volumes: [{{name: scratch, emptyDir: {{}}}}]
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec: {{ports: [{{port: 80}}]}}
"""


def test_one_replica_is_name_pod() -> None:
    result = plan(DEPLOYMENT.format(kind="Deployment", replicas=1))
    (pod,) = result.pods
    assert pod.name == "web-pod" and pod.labels == {"app": "web"}
    assert len(result.warnings) == 1  # futureField


@pytest.mark.parametrize("kind", ["Deployment", "ReplicaSet"])
def test_replicas_are_pods_of_their_own(kind: str) -> None:
    result = plan(DEPLOYMENT.format(kind=kind, replicas=3))
    assert [p.name for p in result.pods] == ["web-pod-0", "web-pod-1", "web-pod-2"]
    second = result.pods[1]
    assert second.infra_name == "web-pod-1_infra" and second.volumes == ("web-pod-1-scratch",)
    (c,) = second.containers
    assert c.options.name == "web-pod-1-c" and c.options.network is not None
    assert c.options.network.mode == "container:web-pod-1_infra"
    # the template is warned about once, not once per replica
    assert result.warnings == (
        "pod.yaml:15: spec.template.spec.containers[0].futureField: not supported by kube "
        "play, ignored",
    )
    assert plan(DEPLOYMENT.format(kind=kind, replicas=0)).pods == ()


def test_replicas_cannot_share_a_host_port() -> None:
    text = DEPLOYMENT.format(kind="Deployment", replicas=2).replace(
        "        futureField: 1\n", "        ports: [{containerPort: 80, hostPort: 8080}]\n"
    )
    with pytest.raises(ConfigError, match="2 replicas cannot all publish 8080:80/tcp"):
        plan(text)


def test_memory_empty_dir_is_a_tmpfs_unless_containers_share_it() -> None:
    text = """
    apiVersion: v1
    kind: Pod
    metadata: {name: p}
    spec:
      containers:
      - name: a
        image: i
        volumeMounts: [{name: mem, mountPath: /mem}, {name: both, mountPath: /both}]
      - name: b
        image: i
        volumeMounts: [{name: both, mountPath: /both}]
      volumes:
      - {name: mem, emptyDir: {medium: Memory}}
      - {name: both, emptyDir: {medium: Memory}}
    """
    result = plan(text)
    a = result.pods[0].containers[0].options
    assert a.mounts is not None and a.mounts.mounts == (
        "type=tmpfs,target=/mem",
        "type=volume,source=p-both,target=/both,volume-nocopy=true",
    )
    assert result.pods[0].volumes == ("p-both",)
    assert result.warnings == (
        "pod.yaml:15: spec.volumes[1].emptyDir.medium: Memory: kept on disk here, so that the "
        "containers mounting it share it",
    )
