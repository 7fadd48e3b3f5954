from __future__ import annotations

import textwrap

import pytest

from rootless.compose.files import load_project
from rootless.compose.model import (
    Build,
    Dependency,
    Healthcheck,
    Network,
    Port,
    ServiceNetwork,
    ServiceVolume,
    Volume,
)
from rootless.errors import ConfigError


def load(tmp_path, text, environ=None, **kw):
    (tmp_path / "compose.yaml").write_text(textwrap.dedent(text))
    return load_project(cwd=tmp_path, environ=environ or {"HOME": "/home/u"}, **kw)


def service(tmp_path, body, top="", **kw):
    text = "services:\n  s:\n" + textwrap.indent(textwrap.dedent(body), "    ") + top
    return load(tmp_path, text, **kw).project.service("s")


def error(tmp_path, text, **kw):
    with pytest.raises(ConfigError) as e:
        load(tmp_path, text, **kw)
    return e.value.message


def test_full_service(tmp_path):
    (tmp_path / "web.env").write_text("FROM_FILE=1\nOVER=file\n")
    s = service(
        tmp_path,
        """
        image: busybox
        build: {context: ./app, dockerfile: Containerfile, args: {V: "1"}, target: prod}
        command: sh -c 'echo "a b"'
        entrypoint: [/bin/tini, --]
        environment: {OVER: env, NUM: 5, FLAG: true, FROM_HOST: null}
        env_file: web.env
        ports: ["8080:80", "127.0.0.1:53:53/udp", "9000-9001:90-91", "[::1]::7"]
        expose: [3000, "4000/udp"]
        volumes: ["./data:/data:ro", "~/x:/x", "cache:/cache:nocopy", /anon]
        tmpfs: /run
        depends_on: {db: {condition: service_healthy, restart: true}}
        healthcheck:
          {test: "curl -f x", interval: 1m30s, timeout: 500ms, retries: 2, start_period: 2}
        restart: unless-stopped
        networks: {front: {aliases: [www]}, default: null}
        hostname: h
        working_dir: /w
        user: "1000:1000"
        cap_add: [NET_ADMIN]
        cap_drop: [ALL]
        read_only: true
        init: true
        stop_signal: SIGINT
        stop_grace_period: 1m
        labels: [a=1, b]
        deploy: {replicas: 3}
        profiles: [p]
        """,
        top="  db:\n    image: db\nvolumes:\n  cache: {}\nnetworks:\n  front: {}\n",
        environ={"HOME": "/home/u", "FROM_HOST": "h"},
    )
    d = str(tmp_path)
    assert s.image == "busybox"
    assert s.build == Build(f"{d}/app", "Containerfile", (("V", "1"),), "prod")
    assert s.command == ("sh", "-c", 'echo "a b"')
    assert s.entrypoint == ("/bin/tini", "--")
    assert s.environment == (
        ("FLAG", "true"),
        ("FROM_FILE", "1"),
        ("FROM_HOST", "h"),
        ("NUM", "5"),
        ("OVER", "env"),
    )
    assert s.env_file == (f"{d}/web.env",)
    assert s.ports == (
        Port(80, 8080),
        Port(53, 53, "127.0.0.1", "udp"),
        Port(90, 9000),
        Port(91, 9001),
        Port(7, None, "::1"),
    )
    assert s.expose == ("3000", "4000/udp")
    assert s.volumes == (
        ServiceVolume("bind", "/data", f"{d}/data", read_only=True),
        ServiceVolume("bind", "/x", "/home/u/x"),
        ServiceVolume("volume", "/cache", "cache", nocopy=True),
        ServiceVolume("volume", "/anon"),
    )
    assert s.tmpfs == ("/run",)
    assert s.depends_on == (Dependency("db", "service_healthy", restart=True),)
    assert s.healthcheck == Healthcheck(("CMD-SHELL", "curl -f x"), 90.0, 0.5, 2, 2.0)
    assert s.restart == "unless-stopped"
    assert s.networks == (ServiceNetwork("front", ("www",)), ServiceNetwork("default"))
    assert (s.hostname, s.working_dir, s.user) == ("h", "/w", "1000:1000")
    assert (s.cap_add, s.cap_drop, s.read_only, s.init) == (("NET_ADMIN",), ("ALL",), True, True)
    assert (s.stop_signal, s.stop_grace_period) == ("SIGINT", 60.0)
    assert s.labels == (("a", "1"), ("b", ""))
    assert (s.replicas, s.profiles) == (3, ("p",))


def test_defaults(tmp_path):
    loaded = load(tmp_path, "services:\n  web:\n    image: busybox\n")
    s = loaded.project.service("web")
    assert s.command is None and s.entrypoint is None
    assert s.networks == (ServiceNetwork("default"),)
    assert s.replicas == 1
    name = tmp_path.name.lower()
    assert loaded.project.networks == (Network("default", f"{name}_default"),)


def test_long_syntaxes(tmp_path):
    s = service(
        tmp_path,
        """
        image: i
        ports:
          - {target: 80, published: "8080", host_ip: 127.0.0.1, protocol: udp, mode: host}
          - target: 81
        volumes:
          - type: bind
            source: ./src
            target: /src
            read_only: true
            bind: {propagation: rshared, create_host_path: false}
          - {type: volume, source: data, target: /data, volume: {nocopy: true}}
          - {type: tmpfs, target: /tmp, tmpfs: {size: 64m, mode: "1777"}}
        depends_on: [db]
        env_file: [{path: missing.env, required: false}]
        healthcheck: {disable: true}
        command: [echo, 1]
        """,
        top="  db: {image: db}\nvolumes:\n  data:\n",
    )
    assert s.ports == (Port(80, 8080, "127.0.0.1", "udp"), Port(81))
    assert s.volumes == (
        ServiceVolume(
            "bind", "/src", f"{tmp_path}/src", True, create_host_path=False, propagation="rshared"
        ),
        ServiceVolume("volume", "/data", "data", nocopy=True),
        ServiceVolume("tmpfs", "/tmp", tmpfs_size=64 << 20, tmpfs_mode=0o1777),
    )
    assert s.depends_on == (Dependency("db"),)
    assert s.healthcheck == Healthcheck(("NONE",))
    assert s.command == ("echo", "1")


def test_top_level_resources(tmp_path):
    p = load(
        tmp_path,
        """
        name: proj
        services:
          a: {image: i, volumes: ["d:/d", "e:/e"], networks: [n, ext]}
        volumes:
          d:
          e: {external: true, name: shared}
        networks:
          n: {internal: true, labels: {k: v}}
          ext: {external: true}
        """,
    ).project
    assert p.volumes == (Volume("d", "proj_d"), Volume("e", "shared", external=True))
    assert p.networks == (
        Network("n", "proj_n", internal=True, labels=(("k", "v"),)),
        Network("ext", "ext", external=True),
    )


def test_interpolation_and_dotenv(tmp_path):
    (tmp_path / ".env").write_text("TAG=1.36\nPORT=8080\n")
    s = service(
        tmp_path,
        'image: "busybox:${TAG}"\nports: ["${PORT}:80"]\ncommand: echo $$HOME ${WHO:-me}\n',
        environ={"PORT": "9090"},
    )
    assert s.image == "busybox:1.36"
    assert s.ports == (Port(80, 9090),)  # the process environment wins over .env
    assert s.command == ("echo", "$HOME", "me")


def test_unknown_keys_warn_with_location(tmp_path):
    loaded = load(
        tmp_path,
        """
        version: "3.8"
        services:
          a:
            image: i
            colour: blue
            sysctls: {net.core.somaxconn: 1024}
            x-mine: ok
            deploy: {replicas: 2, resources: {reservations: {cpus: "1"}}}
        top: 1
        x-ext: fine
        """,
    )
    assert loaded.warnings == (
        "compose.yaml:2: version: obsolete, ignored",
        "compose.yaml:10: top: unknown key, ignored",
        "compose.yaml:6: services.a.colour: unknown key, ignored",
        "compose.yaml:7: services.a.sysctls: not supported by rootless, ignored",
        "compose.yaml:9: services.a.deploy.resources.reservations: not supported by rootless, "
        "ignored",
    )


def test_unset_variable_warns(tmp_path):
    loaded = load(tmp_path, "services:\n  a:\n    image: i${TAG}\n")
    assert loaded.warnings == (
        'compose.yaml:3: services.a.image: variable "TAG" is not set, using ""',
    )
    assert loaded.project.service("a").image == "i"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            'ports: ["80:abc"]',
            'compose.yaml:4: services.s.ports[0]: invalid port "80:abc": "abc" is not a port or a range of ports (1-65535)',  # noqa: E501
        ),
        (
            'ports: ["0:80"]',
            'compose.yaml:4: services.s.ports[0]: invalid port "0:80": "0" is not a port or a range of ports (1-65535)',  # noqa: E501
        ),
        (
            'ports: ["80/sctp"]',
            'compose.yaml:4: services.s.ports[0]: invalid port "80/sctp": protocol "sctp" is not tcp or udp',  # noqa: E501
        ),
        (
            'ports: ["1-3:1-2"]',
            'compose.yaml:4: services.s.ports[0]: invalid port "1-3:1-2": host range has 3 ports, container range 2',  # noqa: E501
        ),
        (
            "ports: [{published: 80}]",
            "compose.yaml:4: services.s.ports[0]: needs a target (the container port)",
        ),
        ("ports: 80", "compose.yaml:4: services.s.ports: must be a list, not a number"),
        (
            'volumes: ["data:/d"]',
            'compose.yaml:4: services.s.volumes[0]: volume "data" is not declared in the top-level volumes section',  # noqa: E501
        ),
        (
            'volumes: ["./x:rel"]',
            'compose.yaml:4: services.s.volumes[0]: container path "rel" is not absolute',
        ),
        (
            'volumes: ["./x:/y:bogus"]',
            'compose.yaml:4: services.s.volumes[0]: invalid volume "./x:/y:bogus": unknown mode "bogus"',  # noqa: E501
        ),
        (
            "volumes: [{type: nfs, target: /x}]",
            'compose.yaml:4: services.s.volumes[0].type: must be bind, volume or tmpfs, not "nfs"',
        ),
        (
            "depends_on: [nope]",
            'compose.yaml:4: services.s.depends_on[0]: depends on undefined service "nope"',
        ),
        (
            "depends_on: [s]",
            "compose.yaml:4: services.s.depends_on[0]: a service cannot depend on itself",
        ),
        (
            "depends_on: {t: {condition: service_ready}}",
            'compose.yaml:4: services.s.depends_on.t.condition: unknown condition "service_ready": use service_started, service_healthy, service_completed_successfully',  # noqa: E501
        ),
        (
            "networks: [back]",
            'compose.yaml:4: services.s.networks[0]: network "back" is not declared in the top-level networks section',  # noqa: E501
        ),
        (
            "restart: sometimes",
            'compose.yaml:4: services.s.restart: invalid restart policy "sometimes": unknown policy (use no, on-failure, on-failure:N (N restarts at most), always or unless-stopped)',  # noqa: E501
        ),
        (
            "stop_signal: SIGNOPE",
            'compose.yaml:4: services.s.stop_signal: invalid signal "SIGNOPE"',
        ),
        (
            "stop_grace_period: soon",
            'compose.yaml:4: services.s.stop_grace_period: invalid duration "soon": use a duration like 10s or 1m30s',  # noqa: E501
        ),
        (
            "healthcheck: {test: [RUN, x]}",
            'compose.yaml:4: services.s.healthcheck.test: use a string, ["CMD", ARG...], ["CMD-SHELL", "LINE"] or ["NONE"]',  # noqa: E501
        ),
        (
            "healthcheck: {retries: -1}",
            "compose.yaml:4: services.s.healthcheck.retries: must be a whole number of at least 0, not a number",  # noqa: E501
        ),
        (
            "read_only: maybe",
            'compose.yaml:4: services.s.read_only: must be true or false, not "maybe"',
        ),
        (
            'command: "echo \'open"',
            'compose.yaml:4: services.s.command: cannot split "echo \'open": No closing quotation',
        ),
        (
            "environment: [=x]",
            'compose.yaml:4: services.s.environment[0]: invalid environment entry "=x": use NAME=VALUE',  # noqa: E501
        ),
        (
            "cap_add: NET_ADMIN",
            "compose.yaml:4: services.s.cap_add: must be a list of strings, not a string",
        ),
        ("env_file: missing.env", None),
        (
            "container_name: c\ndeploy: {replicas: 2}",
            "compose.yaml:4: services.s.container_name: 2 replicas cannot share one container_name",
        ),
        (
            "image: ${NEED:?give an image}",
            "compose.yaml:4: services.s.image: required variable NEED is missing a value: give an image",  # noqa: E501
        ),
    ],
)
def test_errors_name_file_line_and_key(tmp_path, body, message):
    # the key under test is on line 4
    text = "services:\n  t: {image: t}\n  s:\n" + textwrap.indent(body, "    ") + "\n"
    if "image:" not in body:
        text += "    image: i\n"
    got = error(tmp_path, text)
    if message is None:
        assert (
            got
            == f"compose.yaml:4: services.s.env_file[0]: cannot read {tmp_path}/missing.env: No such file or directory"  # noqa: E501
        )
    else:
        assert got == message


def test_service_errors(tmp_path):
    assert error(tmp_path, "services:\n  a:\n    command: x\n") == (
        "compose.yaml:2: services.a: has neither an image nor a build section"
    )
    assert (
        error(tmp_path, "name: x\n")
        == "compose.yaml:1: no services: the file must define services:"
    )
    assert error(tmp_path, "services:\n  a b: {image: i}\n") == (
        "compose.yaml:2: services.a b: invalid service name: use letters, digits, '.', '_' and '-'"
    )


def test_cycle_refused_with_location(tmp_path):
    message = error(
        tmp_path,
        "services:\n  a: {image: i, depends_on: [b]}\n  b: {image: i, depends_on: [c]}\n"
        "  c: {image: i, depends_on: [a]}\n",
    )
    assert message == "compose.yaml:2: services.a.depends_on: dependency cycle: a -> b -> c -> a"


def test_secrets(tmp_path):
    s = service(
        tmp_path,
        "image: i\nsecrets: [pw, {source: pw, target: /etc/pw}]\n",
        top="secrets:\n  pw: {file: ./pw.txt}\n",
    )
    assert [(x.source, x.target) for x in s.secrets] == [
        ("pw", "/run/secrets/pw"),
        ("pw", "/etc/pw"),
    ]


def test_secret_owner_and_mode_are_warned_about(tmp_path):
    loaded = load(
        tmp_path,
        "services:\n  a:\n    image: i\n    secrets:\n      - {source: pw, mode: 0400}\n"
        "secrets:\n  pw: {file: ./pw.txt}\n",
    )
    assert loaded.warnings == (
        "compose.yaml:5: services.a.secrets[0].mode: not supported for secrets from a file, "
        "ignored",
    )
    assert loaded.project.secret("pw").file == f"{tmp_path}/pw.txt"
