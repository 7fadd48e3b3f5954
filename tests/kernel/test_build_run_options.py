"""`rootless build --add-host/--shm-size/--ulimit/--ssh` and RUN --mount=type=ssh, for real."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time

import pytest
from test_build_mounts import base, build, image_id, layer_members  # noqa: F401

pytestmark = pytest.mark.kernel

# Connects to $SSH_AUTH_SOCK, sends its stdin, prints the answer: busybox has no
# unix-socket client.
# Connects to $SSH_AUTH_SOCK, sends its stdin, prints one ssh-agent message of the
# answer (the agent closes at EOF without answering, so no shutdown): busybox has no
# unix-socket client.
UXCAT = r"""
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
int main(void) {
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    const char *p = getenv("SSH_AUTH_SOCK");
    unsigned char buf[65536];
    size_t got = 0, want = 4;
    ssize_t n;
    if (!p) return 2;
    strncpy(a.sun_path, p, sizeof a.sun_path - 1);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) return 3;
    while ((n = read(0, buf, sizeof buf)) > 0) write(s, buf, n);
    while (got < want && (n = read(s, buf + got, sizeof buf - got)) > 0) {
        got += n;
        if (got >= 4) want = 4 + ((size_t)buf[0] << 24 | buf[1] << 16 | buf[2] << 8 | buf[3]);
    }
    write(1, buf, got);
    return got == want ? 0 : 4;
}
"""
# SSH2_AGENTC_REQUEST_IDENTITIES; the answer lists the keys with their comments.
LIST_KEYS = r"printf '\000\000\000\001\013' | /tools/uxcat"


def test_add_host_shm_size_and_ulimit_reach_run_not_the_image(rootless, base, tmp_path):  # noqa: F811
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Containerfile").write_text(
        f"FROM {base}\n"
        "RUN grep -E 'myhost|other|localhost' /etc/hosts | sed 's/^/hosts: /'; "
        "df -k /dev/shm | tail -1 | awk '{print \"shm: \" $2}'; "
        'echo "nofile: $(ulimit -n) $(ulimit -Hn)"; '
        "echo done > /ran\n"
    )
    r = build(
        rootless, ctx, "-t", "opts",
        "--add-host", "myhost:10.1.2.3", "--add-host", "other:fd00::7",
        "--shm-size", "96m", "--ulimit", "nofile=512:1024",
    )  # fmt: skip
    image_id(r)
    out = r.stdout
    assert "hosts: 10.1.2.3\tmyhost" in out
    assert "hosts: fd00::7\tother" in out
    assert "localhost" in out.split("hosts: 10.1.2.3")[1]  # the rest of the file is kept
    assert "shm: 98304" in out
    assert "nofile: 512 1024" in out
    # the image holds the RUN's file, not the entries
    for layer in layer_members(rootless, "opts", tmp_path):
        assert "etc/hosts" not in layer
    script = "cat /ran; grep -c myhost /etc/hosts; true"
    got = rootless("run", "--rm", "opts", "sh", "-c", script)
    assert got.stdout.split() == ["done", "0"], got.stderr
    # the flags are not in the cache key (as in Podman); without them, the defaults
    assert image_id(build(rootless, ctx, "-t", "plain")) == image_id(r)
    r = build(rootless, ctx, "--no-cache", "-t", "plain")
    image_id(r)
    assert "hosts: 10.1.2.3" not in r.stdout
    assert "shm: 65536" in r.stdout
    assert "nofile: 512 " not in r.stdout


def test_add_host_with_network_none_uses_the_image_file(rootless, base, tmp_path):  # noqa: F811
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Containerfile").write_text(f"FROM {base}\nRUN sed 's/^/hosts: /' /etc/hosts\n")
    r = build(rootless, ctx, "--network", "none", "--add-host", "db:10.9.9.9")
    image_id(r)
    assert "hosts: 10.9.9.9\tdb" in r.stdout
    bad = build(rootless, ctx, "--no-cache", "--network", "none", "--add-host", "db:host-gateway")
    assert bad.returncode != 0
    assert "host-gateway" in bad.stderr and "--network host" in bad.stderr


@pytest.fixture
def uxcat(tmp_path):
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to make a static unix-socket client")
    tools = tmp_path / "ctx" / "tools"
    tools.mkdir(parents=True)
    (tmp_path / "uxcat.c").write_text(UXCAT)
    subprocess.run(
        ["gcc", "-static", "-O1", "-o", str(tools / "uxcat"), str(tmp_path / "uxcat.c")],
        check=True,
    )
    return tools.parent


@pytest.fixture
def agent(tmp_path):
    """A real ssh-agent holding one key with the comment ``rltest-key``; its socket."""
    if shutil.which("ssh-agent") is None:
        pytest.skip("ssh-agent is not installed (openssh-client)")
    sockdir = tmp_path / "agent"
    sockdir.mkdir(mode=0o700)
    sock = sockdir / "agent.sock"
    proc = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not sock.exists():
            assert time.monotonic() < deadline, "ssh-agent did not start"
            time.sleep(0.05)
        key = tmp_path / "id_ed25519"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "rltest-key", "-f", str(key)],
            check=True,
        )
        env = {**os.environ, "SSH_AUTH_SOCK": str(sock)}
        subprocess.run(["ssh-add", "-q", str(key)], env=env, check=True)
        yield sock
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def test_ssh_mount_reaches_the_agent_and_leaves_no_trace(rootless, base, uxcat, agent, tmp_path):  # noqa: F811
    ctx = uxcat
    (ctx / "Containerfile").write_text(
        f"FROM {base}\n"
        "RUN --mount=type=bind,source=tools,target=/tools --mount=type=ssh "
        f'echo "sock=$SSH_AUTH_SOCK"; {LIST_KEYS} | grep -q rltest-key && echo agent-ok-root\n'
        "USER 1000\n"
        "RUN --mount=type=bind,source=tools,target=/tools "
        "--mount=type=ssh,id=deploy,target=/home/agent.sock,uid=1000 "
        f'echo "sock=$SSH_AUTH_SOCK"; {LIST_KEYS} | grep -q rltest-key && echo agent-ok-1000\n'
        "RUN --mount=type=bind,source=tools,target=/tools --mount=type=ssh,id=deploy "
        f"{LIST_KEYS} >/dev/null && echo mode-ignored || echo agent-refused-1000\n"
    )
    # default: $SSH_AUTH_SOCK; deploy: the socket's path
    r = rootless(
        "build", "--tls-verify=false", "-t", "sshimg", "--ssh", "default",
        "--ssh", f"deploy={agent}", str(ctx), timeout=120,
        env={"SSH_AUTH_SOCK": str(agent)},
    )  # fmt: skip
    image_id(r)
    assert "sock=/run/buildkit/ssh_agent.0" in r.stdout
    assert "\nagent-ok-root\n" in r.stdout
    assert "sock=/home/agent.sock" in r.stdout
    assert "\nagent-ok-1000\n" in r.stdout
    assert "\nagent-refused-1000\n" in r.stdout  # 0600, owned by 0
    config = json.loads(rootless("image", "inspect", "sshimg").stdout)[0]["Config"]
    assert not any("SSH_AUTH_SOCK" in e for e in config.get("Env") or [])
    history = rootless("history", "--no-trunc", "sshimg").stdout
    assert str(agent) not in history
    for layer in layer_members(rootless, "sshimg", tmp_path):
        assert not any(name.startswith(("run/buildkit", "home/agent")) for name in layer)
    # the agent is not in the cache key: another socket path is a cache hit
    link = tmp_path / "other.sock"
    link.symlink_to(agent)
    again = rootless(
        "build", "--tls-verify=false", "--ssh", f"default={link}", "--ssh", f"deploy={agent}",
        str(ctx), timeout=120,
    )  # fmt: skip
    assert image_id(again) == image_id(r)
    assert "\nagent-ok" not in again.stdout


def test_ssh_errors(rootless, base, tmp_path):  # noqa: F811
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Containerfile").write_text(
        f"FROM {base}\nRUN --mount=type=ssh echo optional-skipped; "
        'test -z "$SSH_AUTH_SOCK" && echo no-sock\n'
        "RUN --mount=type=ssh,id=git,required=true true\n"
    )
    r = build(rootless, ctx, "-t", "sshfail")
    assert r.returncode != 0
    assert "\noptional-skipped\nno-sock\n" in r.stdout
    assert "Containerfile:3" in r.stderr
    assert "the ssh agent 'git' is required but not given" in r.stderr
    assert "--ssh git=SOCKET" in r.stderr
    assert rootless("image", "inspect", "sshfail").returncode != 0
    key = tmp_path / "id_rsa"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    r = build(rootless, ctx, "--ssh", f"git={key}")
    assert r.returncode != 0
    assert "it is a file (a private key?)" in r.stderr and "ssh-add" in r.stderr
    r = rootless("build", "--ssh", "default", str(ctx), env={"SSH_AUTH_SOCK": ""})
    assert r.returncode != 0 and "SSH_AUTH_SOCK is not set" in r.stderr


def test_compose_build_keys_reach_the_run_steps(rootless, base, uxcat, agent):  # noqa: F811
    inline = (
        f"FROM {base}\n"
        "RUN --mount=type=bind,source=tools,target=/tools --mount=type=ssh,required=true "
        "grep db /etc/hosts > /hosts; df -k /dev/shm | tail -1 | awk '{print $$2}' > /shm; "
        f"ulimit -n > /nofile; {LIST_KEYS} | grep -c rltest-key > /keys\n"
    )
    (uxcat / "compose.yaml").write_text(
        json.dumps(
            {
                "services": {
                    "app": {
                        "build": {
                            "context": ".",
                            "dockerfile_inline": inline,
                            "extra_hosts": {"db": "10.0.0.5"},
                            "shm_size": "32m",
                            "ulimits": {"nofile": {"soft": 256, "hard": 512}},
                            "ssh": ["default"],
                        }
                    }
                }
            }
        )
    )
    r = rootless(
        "compose", "-f", str(uxcat / "compose.yaml"), "-p", "cb", "build",
        env={"SSH_AUTH_SOCK": str(agent)}, timeout=180,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr + r.stdout
    assert "ignored" not in r.stderr
    got = rootless("run", "--rm", "cb-app", "cat", "/hosts", "/shm", "/nofile", "/keys")
    assert got.stdout.splitlines() == ["10.0.0.5\tdb", "32768", "256", "1"], got.stderr
