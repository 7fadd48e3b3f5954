"""build --ssh, RUN --mount=type=ssh planning, --add-host's /etc/hosts, --shm-size (pure)."""

from __future__ import annotations

import socket

import pytest

from rootless.build.dockerfile import parse_mount
from rootless.build.run import hosts_text
from rootless.build.sshagent import (
    AgentMount,
    SshAgent,
    agent_env,
    check_agent,
    parse_ssh,
    plan_agents,
)
from rootless.errors import BuildError
from rootless.runtime.mounts import default_mounts
from rootless.runtime.plan import RunRequest, plan_spec


def test_parse_ssh_forms():
    env = {"SSH_AUTH_SOCK": "/tmp/ssh-x/agent.1"}
    assert parse_ssh("default", env) == SshAgent("default", "/tmp/ssh-x/agent.1")
    assert parse_ssh("git", env) == SshAgent("git", "/tmp/ssh-x/agent.1")
    assert parse_ssh("git=/run/a.sock", {}) == SshAgent("git", "/run/a.sock")


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("default", {}, "cannot use --ssh default: SSH_AUTH_SOCK is not set"),
        ("=x", {}, "invalid --ssh '=x': expected default or ID=SOCKET"),
        ("git=a,b", {}, "invalid --ssh 'git=a,b': one agent socket per id"),
        ("git=", {}, "invalid --ssh 'git=': no socket after ="),
    ],
)
def test_parse_ssh_errors(text, env, message):
    with pytest.raises(BuildError) as e:
        parse_ssh(text, env)
    assert e.value.message.startswith(message)


def test_check_agent_takes_sockets_and_refuses_key_files(tmp_path, monkeypatch):
    sock = socket.socket(socket.AF_UNIX)
    monkeypatch.chdir(tmp_path)
    with sock:
        sock.bind("agent.sock")
        assert check_agent(SshAgent("default", "agent.sock")) == SshAgent(
            "default", str(tmp_path / "agent.sock")
        )
    (tmp_path / "id_ed25519").write_text("key")
    with pytest.raises(BuildError) as e:
        check_agent(SshAgent("git", "id_ed25519"))
    assert "it is a file (a private key?)" in e.value.message
    assert e.value.hint is not None and "ssh-add" in e.value.hint
    with pytest.raises(BuildError) as e:
        check_agent(SshAgent("git", "missing.sock"))
    assert "No such file" in e.value.message
    with pytest.raises(BuildError, match="not a socket"):
        check_agent(SshAgent("git", str(tmp_path)))


def test_plan_agents_targets_ids_owners_and_required():
    mounts = [
        parse_mount("type=cache,target=/c"),
        parse_mount("type=ssh"),
        parse_mount("type=ssh,id=git,target=sock,uid=1000,gid=100,mode=0660"),
        parse_mount("type=ssh,id=absent"),
        parse_mount("type=ssh,id=other"),
    ]
    agents = {
        "default": SshAgent("default", "/a.sock"),
        "git": SshAgent("git", "/g.sock"),
        "other": SshAgent("other", "/o.sock"),
    }
    planned = plan_agents(mounts, "/src", agents)
    assert planned == [
        AgentMount("/run/buildkit/ssh_agent.0", "/a.sock"),
        AgentMount("/src/sock", "/g.sock", 1000, 100, 0o660),
        # the absent optional one is skipped but counted
        AgentMount("/run/buildkit/ssh_agent.3", "/o.sock"),
    ]
    assert agent_env(planned, ["PATH=/bin"]) == (
        "PATH=/bin",
        "SSH_AUTH_SOCK=/run/buildkit/ssh_agent.0",
    )
    assert agent_env(planned, ["SSH_AUTH_SOCK=/mine"]) == ("SSH_AUTH_SOCK=/mine",)
    assert agent_env([], ["PATH=/bin"]) == ("PATH=/bin",)
    with pytest.raises(BuildError) as e:
        plan_agents([parse_mount("type=ssh,required=true")], "/", {})
    assert e.value.message == "the ssh agent 'default' is required but not given"
    assert e.value.hint == "add --ssh default (default: the agent of $SSH_AUTH_SOCK)"


def test_hosts_text_puts_the_entries_first_and_keeps_the_base():
    base = "127.0.0.1\tlocalhost\n10.0.0.1\tbuildhost\n"
    text = hosts_text([("db", "10.0.0.5"), ("gw", "host-gateway")], "host", base)
    assert text == "10.0.0.5\tdb\n127.0.0.1\tgw\n127.0.0.1\tlocalhost\n10.0.0.1\tbuildhost\n"
    # no base file: the localhost lines
    assert hosts_text([("db", "fd00::5")], "private", None).splitlines()[:3] == [
        "fd00::5\tdb",
        "127.0.0.1\tlocalhost localhost.localdomain localhost4 localhost4.localdomain4",
        "::1\tlocalhost localhost.localdomain localhost6 localhost6.localdomain6",
    ]
    with pytest.raises(BuildError, match="host-gateway with --network none"):
        hosts_text([("gw", "host-gateway")], "private", base)


def test_shm_size_sets_the_dev_shm_tmpfs():
    def shm(mounts):
        return next(m for m in mounts if m.destination == "/dev/shm").options

    assert "size=65536k" in shm(default_mounts(own_network=True))
    assert "size=1048576" in shm(default_mounts(own_network=True, shm_size=1 << 20))
    from rootless.runtime.idmap import IDMapPlan

    spec = plan_spec(
        RunRequest(rootfs="/r", args=("true",), shm_size=1 << 30),
        IDMapPlan(uid_map=(), gid_map=(), single=True),
        container_id="c" * 64,
    )
    assert "size=1073741824" in shm(spec.mounts)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--shm-size", "lots"], 'invalid --shm-size "lots"'),
        (["--ulimit", "nofile=2:1"], 'invalid ulimit "nofile=2:1": soft limit above hard limit'),
        (["--add-host", "db"], 'invalid --add-host "db": expected NAME:IP'),
        (["--ssh", "x=/nonexistent.sock"], "cannot use the ssh agent 'x' at /nonexistent.sock"),
    ],
)
def test_cli_flags_are_checked_before_the_build(flags, message, tmp_path):
    import argparse

    from rootless.cli import build
    from rootless.errors import RootlessError

    p = argparse.ArgumentParser()
    build.add_arguments(p)
    with pytest.raises(RootlessError) as e:
        build.main(p.parse_args([*flags, str(tmp_path)]))
    assert e.value.message.startswith(message)
