"""kube play's pure part: Pod and Deployment YAML -> RunOptions, warnings and errors."""

from __future__ import annotations

import textwrap

import pytest

from rootless.engine.podplan import infra_options, new_record
from rootless.errors import ConfigError
from rootless.kube.plan import KubePlan, plan_kube, pod_spec
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
    assert app.extra["pod"] == {"name": "web"} and app.extra["kube"] == {"container": "app"}
    assert app.extra["labels"] == {"app": "web"}

    spec = pod_spec(pod)
    record = new_record(spec, "f00", 1.0)
    assert record.infra == "web_infra" and record.hostname == "web"
    infra = infra_options(record, "/data/pods/web/infra", "/usr/bin/catatonit", spec.add_hosts)
    assert infra.name == "web_infra" and infra.hostname == "web"
    assert infra.rootfs == "/data/pods/web/infra" and infra.command == ("/catatonit", "-P")
    assert infra.network is not None and infra.network.publish == pod.publish
    assert infra.network.add_hosts == pod.add_hosts
    assert infra.extra["pod"] == {"name": "web", "infra": True}


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


CONFIGURED = """
apiVersion: v1
kind: Pod
metadata: {name: app}
spec:
  initContainers:
  - name: setup
    image: i
    command: [sh, -c, "echo ready > /work/flag"]
    volumeMounts: [{name: work, mountPath: /work}]
    livenessProbe: {exec: {command: [true]}}
  containers:
  - name: main
    image: i
    envFrom:
    - configMapRef: {name: settings}
    - secretRef: {name: creds}
      prefix: DB_
    - configMapRef: {name: absent, optional: true}
    env:
    - {name: MODE, value: dev}
    - name: LEVEL
      valueFrom: {configMapKeyRef: {name: settings, key: level}}
    - name: TOKEN
      valueFrom: {secretKeyRef: {name: creds, key: password}}
    - name: NOPE
      valueFrom: {secretKeyRef: {name: creds, key: nope, optional: true}}
    volumeMounts:
    - {name: work, mountPath: /work}
    - {name: conf, mountPath: /etc/app}
    - {name: keys, mountPath: /keys, readOnly: false}
    - {name: conf, mountPath: /etc/one.conf, subPath: app.conf}
    livenessProbe:
      exec: {command: [cat, /work/flag]}
      periodSeconds: 2
      timeoutSeconds: 5
      failureThreshold: 4
      initialDelaySeconds: 3
    readinessProbe:
      httpGet: {path: /, port: 80}
    startupProbe:
      exec: {command: ["true"]}
  volumes:
  - {name: work, emptyDir: {}}
  - name: conf
    configMap:
      name: settings
      items: [{key: app.conf, path: app.conf}, {key: level, path: sub/level, mode: 0600}]
  - name: keys
    secret: {secretName: creds, defaultMode: 0400}
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
data: {password: czNjcjN0, user: YWRtaW4=}
stringData: {user: root}
"""

SETTINGS = """
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data:
  MODE: prod
  level: debug
  app.conf: "port=80\\n"
"""


def test_config_maps_and_secrets_feed_env_and_volumes() -> None:
    result = plan(CONFIGURED, SETTINGS)
    (pod,) = result.pods
    (main,) = pod.containers
    assert main.options.env == (
        ("MODE", "dev"),  # env wins over envFrom, keeping its place
        ("level", "debug"),
        ("app.conf", "port=80\n"),
        ("DB_password", "s3cr3t"),
        ("DB_user", "root"),  # stringData wins over data
        ("LEVEL", "debug"),
        ("TOKEN", "s3cr3t"),
    )
    assert pod.files_dir == "/run/k/app"
    conf, keys = pod.config_volumes
    assert conf.directory == "/run/k/app/conf" and keys.directory == "/run/k/app/keys"
    assert [(f.path, f.data, f.mode) for f in conf.files] == [
        ("app.conf", b"port=80\n", 0o644),
        ("sub/level", b"debug", 0o600),
    ]
    assert [(f.path, f.data, f.mode) for f in keys.files] == [
        ("password", b"s3cr3t", 0o400),
        ("user", b"root", 0o400),
    ]
    assert main.options.mounts is not None and main.options.mounts.mounts == (
        "type=volume,source=app-work,target=/work,volume-nocopy=true",
        "type=bind,source=/run/k/app/conf,target=/etc/app,ro",
        "type=bind,source=/run/k/app/keys,target=/keys,ro",  # read-only whatever is asked
        "type=bind,source=/run/k/app/conf/app.conf,target=/etc/one.conf,ro",
    )
    assert main.options.extra["health_flags"] == {
        "cmd": '["CMD", "cat", "/work/flag"]',
        "interval": "2s",
        "timeout": "5s",
        "retries": 4,
        "start_period": "3s",
        "disabled": False,
    }
    (setup,) = pod.init_containers
    assert setup.options.name == "app-setup" and "restart" not in setup.options.extra
    assert setup.options.extra["pod"] == {"name": "app", "init": True}
    assert "health_flags" not in setup.options.extra
    assert result.warnings == (
        "pod.yaml:11: spec.initContainers[0].livenessProbe: not supported by kube play, ignored",
        "pod.yaml:39: spec.containers[0].readinessProbe: httpGet probes are not run by kube "
        "play (only exec), ignored",
        "pod.yaml:41: spec.containers[0].startupProbe: a container has one healthcheck, made "
        "from its first exec probe; this one is ignored",
    )
    # kube down reads the file without the --configmap files
    lenient = plan_kube(
        parse_documents(textwrap.dedent(CONFIGURED), "pod.yaml"), files_root="/r", lenient=True
    )
    assert [p.name for p in lenient.pods] == ["app"]


def test_probe_defaults_are_kubernetes() -> None:
    text = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
        "  - {name: c, image: i, readinessProbe: {exec: {command: [ls]}}}\n"
    )
    extra = plan(text).pods[0].containers[0].options.extra
    flags = extra["health_flags"]
    assert (flags["interval"], flags["timeout"], flags["retries"]) == ("10s", "1s", 3)
    assert flags["start_period"] is None
    assert "health_on_failure" not in extra  # a readiness probe only reports
    liveness = plan(text.replace("readinessProbe", "livenessProbe"))
    assert liveness.pods[0].containers[0].options.extra["health_on_failure"] == "restart"


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        (
            "env: [{name: A, valueFrom: {configMapKeyRef: {name: gone, key: k}}}]",
            'pod.yaml:8: spec.containers[0].env[0].valueFrom.configMapKeyRef: no ConfigMap "gone" '
            "in the file or the --configmap files; add a ConfigMap document, or say optional: true",
        ),
        (
            "env: [{name: A, valueFrom: {configMapKeyRef: {name: settings, key: k}}}]",
            'configMapKeyRef.key: ConfigMap "settings" has no key "k"; its keys: MODE, app.conf, '
            "level",
        ),
        (
            "envFrom: [{secretRef: {name: gone}}]",
            'spec.containers[0].envFrom[0].secretRef: no Secret "gone"',
        ),
        ("envFrom: [{prefix: X}]", "spec.containers[0].envFrom[0]: needs one of configMapRef"),
        (
            "livenessProbe: {exec: {command: []}}",
            "livenessProbe.exec.command: an exec probe needs a command",
        ),
        (
            "livenessProbe: {exec: {command: [ls]}, periodSeconds: 0}",
            "livenessProbe.periodSeconds: must be between 1 and",
        ),
    ],
)
def test_missing_config_and_bad_probes_are_errors(snippet: str, message: str) -> None:
    text = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
        f"  - name: c\n    image: i\n    {snippet}\n"
    )
    with pytest.raises(ConfigError) as info:
        plan(text, SETTINGS)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("volume", "message"),
    [
        ("configMap: {name: gone}", 'spec.volumes[0].configMap: no ConfigMap "gone"'),
        (
            "secret: {secretName: s, items: [{key: nope, path: x}]}",
            'spec.volumes[0].secret.items[0].key: Secret "s" has no key "nope"',
        ),
        (
            "secret: {secretName: s, items: [{key: k, path: ../x}]}",
            'items[0].path: "../x" must be a relative path',
        ),
    ],
)
def test_bad_config_volumes_are_errors(volume: str, message: str) -> None:
    text = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, "
        f"image: i}}]\n  volumes:\n  - name: v\n    {volume}\n---\n"
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {k: v}\n"
    )
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        plan(text)


def test_optional_config_volume_is_empty_and_bad_base64_is_an_error() -> None:
    text = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, "
        "image: i}]\n  volumes:\n  - {name: v, configMap: {name: gone, optional: true}}\n"
    )
    (volume,) = plan(text).pods[0].config_volumes
    assert volume.files == ()
    bad = "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {k: not-base64!}\n"
    with pytest.raises(ConfigError, match=r"pod\.yaml:4: data\.k: is not valid base64"):
        plan(bad)
    with pytest.raises(ConfigError, match="--configmap files hold ConfigMaps and Secrets, not Pod"):
        plan(SETTINGS, text)
