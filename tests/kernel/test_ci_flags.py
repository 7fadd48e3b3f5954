"""CI-runner flags: --timeout, --cidfile, --read-only-tmpfs, unbuffered output, the recipe."""

from __future__ import annotations

import os
import subprocess
import time

from conftest import ok


def test_timeout_kills_at_the_deadline(rootless, busybox_rootfs, find_processes_with_token):
    token = "ci-timeout-4b1e"
    start = time.monotonic()
    r = rootless(
        "run", "--rm", "--timeout", "1", "--rootfs", str(busybox_rootfs),
        "sh", "-c", f"echo started; exec sleep 30 # {token}",
    )  # fmt: skip
    elapsed = time.monotonic() - start
    assert r.returncode == 124, (r.stdout, r.stderr)
    assert r.stdout == "started\n"
    assert "timed out after 1 seconds" in r.stderr
    assert 1 <= elapsed < 10
    assert find_processes_with_token(token, wait=2) == []


def test_timeout_not_reached_passes_exit_code(rootless, busybox_rootfs):
    r = rootless(
        "run", "--rm", "--timeout", "20", "--rootfs", str(busybox_rootfs), "sh", "-c", "exit 7"
    )
    assert r.returncode == 7
    assert "timed out" not in r.stderr


def test_timeout_of_a_detached_or_created_container(rootless, busybox_rootfs):
    rootfs = str(busybox_rootfs)
    started = time.monotonic()
    ok(rootless("run", "-d", "--name", "t1", "--restart", "always", "--timeout", "1",
                "--rootfs", rootfs, "sleep", "60"))  # fmt: skip
    ok(rootless("create", "--name", "t2", "--timeout", "1", "--rootfs", rootfs, "sleep", "60"))
    ok(rootless("start", "t2"))
    # killed by the monitor at the deadline; the restart policy does not bring it back
    assert ok(rootless("wait", "t1", "t2", timeout=30)).split() == ["137", "137"]
    assert time.monotonic() - started < 20
    assert ok(rootless("inspect", "--format", "{{.RestartCount}}", "t1")).strip() == "0"
    r = rootless("run", "--rm", "--timeout", "-1", "--rootfs", rootfs, "true")
    assert r.returncode == 125 and "invalid --timeout -1" in r.stderr
    ok(rootless("rm", "t1", "t2"))


def test_cidfile_written_and_never_overwritten(rootless, busybox_rootfs, tmp_path):
    cidfile = tmp_path / "cid"
    ok(
        rootless(
            "run", "--name", "c", "--cidfile", str(cidfile), "--rootfs", str(busybox_rootfs), "true"
        )
    )
    cid = cidfile.read_text()
    assert len(cid) == 64 and ok(rootless("ps", "-a", "-q", "--no-trunc")).split() == [cid]
    r = rootless("run", "--rm", "--cidfile", str(cidfile), "--rootfs", str(busybox_rootfs), "true")
    assert r.returncode == 125
    assert "exists" in r.stderr
    assert cidfile.read_text() == cid
    assert ok(rootless("ps", "-a", "-q", "--no-trunc")).split() == [cid]


def test_read_only_tmpfs(rootless, busybox_rootfs):
    script = (
        "for d in /tmp /var/tmp /run; do touch $d/f && echo $d ok; done; "
        "touch /etc/f 2>/dev/null || echo etc read-only"
    )
    out = ok(
        rootless(
            "run", "--rm", "--read-only", "--read-only-tmpfs", "--rootfs", str(busybox_rootfs),
            "sh", "-c", script,
        )
    )  # fmt: skip
    assert out.splitlines() == ["/tmp ok", "/var/tmp ok", "/run ok", "etc read-only"]
    out = ok(
        rootless("run", "--rm", "--read-only", "--rootfs", str(busybox_rootfs),
                 "sh", "-c", "touch /tmp/f 2>/dev/null || echo tmp read-only")
    )  # fmt: skip
    assert out == "tmp read-only\n"
    assert list(busybox_rootfs.joinpath("tmp").iterdir()) == []


def test_output_is_streamed_before_the_command_ends(rootless, busybox_rootfs):
    """Foreground output goes straight to our pipe: the first line arrives while the
    container still sleeps."""
    proc = subprocess.Popen(
        rootless.command("run", "--rm", "--rootfs", str(busybox_rootfs),
                         "sh", "-c", "echo first; sleep 5; echo second"),
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, env=rootless.env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        start = time.monotonic()
        line = proc.stdout.readline()
        assert line == b"first\n"
        assert time.monotonic() - start < 4
        assert proc.poll() is None  # still running
        assert proc.stdout.read() == b"second\n"
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
        proc.wait()


def test_hardened_recipe_runs_a_command(rootless, busybox_rootfs, tmp_path):
    """The recipe from docs/ci.md, verbatim but for the rootfs."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "build.sh").write_text("echo built from $(pwd) as $(id -u)\n")
    out = ok(
        rootless(
            "run", "--rm", "--network", "none", "--read-only", "--read-only-tmpfs",
            "--cap-drop", "all", "--security-opt", "no-new-privileges", "--userns=keep-id",
            "-v", f"{work}:/src:ro", "-w", "/src", "--timeout", "600",
            "--rootfs", str(busybox_rootfs),
            "sh", "-c",
            "sh build.sh; touch /src/x 2>/dev/null || echo src read-only; "
            "grep -c . /proc/net/dev; grep CapEff /proc/self/status; "
            "grep NoNewPrivs /proc/self/status; touch /tmp/scratch && echo tmp ok",
        )
    )  # fmt: skip
    lines = out.splitlines()
    assert lines[0] == f"built from /src as {os.getuid()}"
    assert lines[1] == "src read-only"
    assert lines[2] == "3"  # two header lines and lo: no other interface
    assert lines[3].split() == ["CapEff:", "0000000000000000"]
    assert lines[4].split() == ["NoNewPrivs:", "1"]
    assert lines[5] == "tmp ok"
