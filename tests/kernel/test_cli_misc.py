"""`rootless unshare`, `rootless info`, --version and --help."""

from __future__ import annotations

import json
import os

from conftest import REPO_ROOT


def test_unshare_maps_the_subordinate_range(rootless, tmp_path):
    r = rootless("unshare", "sh", "-c", "id -u; cat /proc/self/uid_map; echo $ROOTLESS_UNSHARE")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "0"
    assert lines[1].split() == ["0", str(os.getuid()), "1"]
    assert lines[2].split()[0] == "1" and lines[2].split()[2] == "65536"
    assert lines[-1] == "1"


def test_unshare_can_chown_to_subordinate_ids(rootless, tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    r = rootless("unshare", "chown", "1000:1000", str(f))
    assert r.returncode == 0, r.stderr
    # On the host, container UID 1000 is subordinate ID start + 999.
    assert f.stat().st_uid > 100000 - 1


def test_unshare_passes_exit_codes_and_missing_commands(rootless):
    assert rootless("unshare", "sh", "-c", "exit 7").returncode == 7
    r = rootless("unshare", "no-such-cmd")
    assert r.returncode == 127 and "no-such-cmd" in r.stderr


def test_info_json(rootless):
    r = rootless("info", "--format", "json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["host"]["kernel"] == os.uname().release
    assert info["idmappings"]["mode"] == "subordinate"
    assert info["helpers"]["newuidmap"] == "/usr/bin/newuidmap"
    assert "slirp4netns" in info["network"]["backends"]
    assert info["storage"]["data"].startswith(str(rootless.data_home))
    # Kernel overlayfs works in user namespaces here (Linux >= 5.11).
    assert info["storage"]["driver"] == "overlay"
    r = rootless("info", "--format", "json", env={"ROOTLESS_STORAGE_DRIVER": "copy"})
    assert json.loads(r.stdout)["storage"]["driver"] == "copy"


def test_info_text(rootless):
    r = rootless("info")
    assert r.returncode == 0 and "kernel:" in r.stdout and "newuidmap:" in r.stdout


def test_version_and_help(rootless):
    r = rootless("--version")
    assert r.returncode == 0 and r.stdout.startswith("rootless version ")
    r = rootless("--help")
    assert r.returncode == 0 and "run" in r.stdout and "unshare" in r.stdout
    r = rootless("run", "--help")
    assert r.returncode == 0 and "--rootfs" in r.stdout


def test_bad_usage_is_125(rootless):
    assert rootless("run", "--no-such-flag").returncode == 125


def test_cli_start_does_not_import_heavy_modules(rootless):
    code = (
        "import sys; from rootless.cli import main; main(['info', '--format', 'json']);"
        "print([m for m in ('trio', 'httpx', 'pyroute2', 'rich') if m in sys.modules])"
    )
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=rootless.env,
        cwd=REPO_ROOT,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]"


def test_containers_run_inside_rootless_unshare(rootless, busybox_rootfs):
    """Nested: inside the user's namespace, the runtime maps IDs itself (builds do this)."""
    r = rootless(
        "unshare",
        "sh",
        "-c",
        f"{rootless.command()[0]} -m rootless run --rm --rootfs {busybox_rootfs} "
        "sh -c 'id -u; cat /proc/self/uid_map'",
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")
    assert lines[0] == "0"
    assert lines[1].split() == ["0", "0", "1"]
    assert lines[2].split() == ["1", "1", "65536"]
