"""``rootless login`` / ``logout`` through the CLI against docker-registry with htpasswd."""

from __future__ import annotations

import base64
import json
import os
import pty
import re
import select
import signal
import stat
import time
from pathlib import Path

from tests.conftest import REPO_ROOT, RootlessCLI
from tests.registry.conftest import PASSWORD, USER


def _cli(tmp_path: Path) -> RootlessCLI:
    # Login needs no namespaces, so this runs as any user (not the kernel-marked fixture).
    return RootlessCLI(tmp_path / "xdg")


def _auth_json(cli: RootlessCLI) -> Path:
    return cli.runtime_dir / "containers" / "auth.json"


def _token(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def test_login_saves_podman_auth_json(basic_registry: str, tmp_path: Path) -> None:
    cli = _cli(tmp_path)
    result = cli("login", "--tls-verify=false", "-u", USER, "-p", PASSWORD, basic_registry)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Login Succeeded!\n"
    assert result.stderr.startswith("WARN: --password on the command line is visible")
    path = _auth_json(cli)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {
        "auths": {basic_registry: {"auth": _token(USER, PASSWORD)}}
    }


def test_wrong_password_saves_nothing(basic_registry: str, tmp_path: Path) -> None:
    cli = _cli(tmp_path)
    result = cli("login", "--tls-verify=false", "-u", USER, "-p", "wrong", basic_registry)
    assert result.returncode == 125
    assert result.stdout == ""
    assert result.stderr.splitlines()[-1] == (
        f"Error: cannot log in to {basic_registry}: unauthorized: {basic_registry} rejected "
        f'the credentials of user "{USER}" (UNAUTHORIZED: authentication required); '
        f"check the password and run: rootless login {basic_registry}"
    )
    assert not _auth_json(cli).exists()


def test_password_stdin_then_logout(basic_registry: str, tmp_path: Path) -> None:
    cli = _cli(tmp_path)
    other = {"auths": {"quay.io": {"auth": _token("q", "pw")}}}
    _auth_json(cli).parent.mkdir()
    _auth_json(cli).write_text(json.dumps(other))
    login = ("login", "--tls-verify=false", "-u", USER, "--password-stdin", basic_registry)
    result = cli(*login, input=PASSWORD + "\n")
    assert (result.returncode, result.stdout, result.stderr) == (0, "Login Succeeded!\n", "")
    saved = json.loads(_auth_json(cli).read_text())["auths"]
    assert saved == {
        "quay.io": other["auths"]["quay.io"],
        basic_registry: {"auth": _token(USER, PASSWORD)},
    }

    result = cli("logout", basic_registry)
    assert (result.returncode, result.stdout) == (
        0,
        f"Removed login credentials for {basic_registry}\n",
    )
    assert json.loads(_auth_json(cli).read_text()) == other

    result = cli("logout", basic_registry)
    assert result.returncode == 125
    assert result.stderr == (
        f"Error: cannot log out of {basic_registry}: not logged in (in {_auth_json(cli)})\n"
    )

    result = cli("logout", "--all")
    assert result.returncode == 0
    assert json.loads(_auth_json(cli).read_text()) == {"auths": {}}


def test_missing_user_without_a_terminal(basic_registry: str, tmp_path: Path) -> None:
    cli = _cli(tmp_path)
    result = cli("login", "--tls-verify=false", basic_registry)
    assert result.returncode == 125
    assert result.stderr == (
        f"Error: cannot log in to {basic_registry}: no user name given and standard input is "
        "not a terminal to ask for it; pass -u USER and -p PASSWORD or --password-stdin\n"
    )
    result = cli("login", "--password-stdin", basic_registry, input=PASSWORD)
    assert result.returncode == 125
    assert result.stderr == (
        f"Error: cannot log in to {basic_registry}: --password-stdin needs a user name; "
        "pass -u USER\n"
    )


def test_authfile_flag(basic_registry: str, tmp_path: Path) -> None:
    cli = _cli(tmp_path)
    authfile = tmp_path / "elsewhere" / "auth.json"
    args = ("-u", USER, "--password-stdin", "--authfile", str(authfile), basic_registry)
    result = cli("login", "--tls-verify=false", *args, input=PASSWORD)
    assert result.returncode == 0, result.stderr
    assert json.loads(authfile.read_text())["auths"] == {
        basic_registry: {"auth": _token(USER, PASSWORD)}
    }
    assert not _auth_json(cli).exists()
    assert cli("logout", "--authfile", str(authfile), basic_registry).returncode == 0
    assert json.loads(authfile.read_text()) == {"auths": {}}


def test_tls_verify_from_registries_conf(basic_registry: str, tmp_path: Path) -> None:
    cli = _cli(tmp_path)
    login = ("login", "-u", USER, "--password-stdin", basic_registry)
    # TLS is verified by default, and this registry speaks plain http.
    result = cli(*login, input=PASSWORD)
    assert result.returncode == 125
    # The line in _ssl.c differs between Python builds.
    assert re.sub(r"_ssl\.c:\d+", "_ssl.c:N", result.stderr) == (
        f"Error: cannot connect to registry {basic_registry}: TLS failed: [SSL: "
        "WRONG_VERSION_NUMBER] wrong version number (_ssl.c:N); for a registry without "
        "TLS pass --tls-verify=false, or set insecure = true for it in registries.conf\n"
    )
    assert not _auth_json(cli).exists()

    conf = cli.config_home / "containers" / "registries.conf"
    conf.parent.mkdir()
    conf.write_text(f'[[registry]]\nlocation = "{basic_registry}"\ninsecure = true\n')
    result = cli(*login, input=PASSWORD)
    assert result.returncode == 0, result.stderr
    assert _auth_json(cli).exists()
    # An explicit flag wins over registries.conf.
    result = cli(*login, "--tls-verify=true", input=PASSWORD)
    assert result.returncode == 125


def _read_until(fd: int, text: bytes, timeout: float = 20) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while text not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"no {text!r} in {seen!r}"
        if select.select([fd], [], [], left)[0]:
            try:
                chunk = os.read(fd, 1024)
            except OSError:  # EIO: the child closed the terminal
                chunk = b""
            assert chunk, f"no {text!r} in {seen!r}"
            seen += chunk
    return seen


def test_prompts_on_a_terminal(basic_registry: str, tmp_path: Path) -> None:
    cli = _cli(tmp_path)
    argv = cli.command("login", "--tls-verify=false", basic_registry)
    pid, fd = pty.fork()
    if pid == 0:  # the child: its controlling terminal is the pty
        os.chdir(REPO_ROOT)
        os.execve(argv[0], argv, cli.env)
    try:
        _read_until(fd, b"Username: ")
        os.write(fd, USER.encode() + b"\n")
        _read_until(fd, b"Password: ")
        os.write(fd, PASSWORD.encode() + b"\n")
        out = _read_until(fd, b"Login Succeeded!")
        assert PASSWORD.encode() not in out  # not echoed
        _, status = os.waitpid(pid, 0)
        pid = 0
    finally:
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0
    assert json.loads(_auth_json(cli).read_text()) == {
        "auths": {basic_registry: {"auth": _token(USER, PASSWORD)}}
    }
