"""What this host offers a rootless user: gathered for ``rootless info``."""

from __future__ import annotations

import os
import platform
import pwd
import shutil
from typing import Any

from rootless import __version__


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def cgroup_info(root: str = "/sys/fs/cgroup") -> dict[str, Any]:
    """cgroup version and whether this user was delegated a v2 subtree."""
    unified = os.path.exists(os.path.join(root, "cgroup.controllers"))
    hybrid = os.path.isdir(os.path.join(root, "unified"))
    version = "v2" if unified else ("hybrid" if hybrid else "v1")
    own = _read("/proc/self/cgroup") or ""
    v2_path = next(
        (line.split("::", 1)[1] for line in own.splitlines() if line.startswith("0::")), ""
    )
    base = root if unified else os.path.join(root, "unified")
    delegated = bool(v2_path) and os.access(os.path.join(base, v2_path.lstrip("/")), os.W_OK)
    return {"version": version, "delegated": delegated}


def collect() -> dict[str, Any]:
    from rootless._paths import StoragePaths
    from rootless.engine.storage import storage_driver
    from rootless.runtime.idmap import current_user_plan

    uid = os.getuid()
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = str(uid)
    plan = current_user_plan()
    paths = StoragePaths.from_env()
    helpers = {
        name: shutil.which(name)
        for name in ("newuidmap", "newgidmap", "slirp4netns", "pasta", "fuse-overlayfs")
    }
    uname = os.uname()
    return {
        "version": __version__,
        "host": {
            "kernel": uname.release,
            "arch": platform.machine(),
            "os": _os_name(),
            "user": user,
            "uid": uid,
            "userns_max": _read("/proc/sys/user/max_user_namespaces"),
            "cgroups": cgroup_info(),
        },
        "idmappings": {
            "mode": "single" if plan.single else "subordinate",
            "uidmap": [[r.container_id, r.host_id, r.size] for r in plan.uid_map],
            "gidmap": [[r.container_id, r.host_id, r.size] for r in plan.gid_map],
            "warning": plan.warning,
        },
        "helpers": helpers,
        "network": {
            "backends": [b for b in ("slirp4netns", "pasta") if helpers[b]],
            "tun": os.access("/dev/net/tun", os.R_OK | os.W_OK),
        },
        "storage": {
            "data": str(paths.data),
            "runtime": str(paths.runtime),
            "config": str(paths.config),
            "driver": storage_driver(paths),
        },
    }


def _os_name() -> str:
    text = _read("/etc/os-release") or ""
    for line in text.splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return platform.system()


def render_text(info: dict[str, Any], indent: int = 0) -> str:
    lines = []
    for key, value in info.items():
        pad = "  " * indent
        if isinstance(value, dict):
            lines.append(f"{pad}{key}:")
            lines.append(render_text(value, indent + 1))
        elif isinstance(value, list):
            lines.append(f"{pad}{key}: {', '.join(map(str, value)) if value else '-'}")
        else:
            lines.append(f"{pad}{key}: {'-' if value is None else value}")
    return "\n".join(lines)


def _git_commit(package_dir: str) -> str:
    """The commit of the checkout ``package_dir`` lives in ('' when not a git checkout):
    read from ``.git`` directly, as running git would cost a process per call."""
    git = os.path.join(os.path.dirname(package_dir), ".git")
    if os.path.isfile(git):  # a worktree: "gitdir: PATH"
        git = (_read(git) or "").partition("gitdir:")[2].strip()
    head = (_read(os.path.join(git, "HEAD")) or "").strip()
    if not head.startswith("ref: "):
        return head
    ref = head[5:]
    for base in (git, (_read(os.path.join(git, "commondir")) or "").strip()):
        base = os.path.join(git, base) if base else git
        if value := _read(os.path.join(base, ref)):
            return value.strip()
        for line in (_read(os.path.join(base, "packed-refs")) or "").splitlines():
            if line.endswith(" " + ref):
                return line.split()[0]
    return ""


_GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "i686": "386", "armv7l": "arm"}


def version_info() -> dict[str, dict[str, Any]]:
    """What ``rootless version`` shows, in the shape of ``podman version --format json``."""
    import time

    import rootless

    machine = platform.machine()
    package_dir = os.path.dirname(rootless.__file__)
    built = int(os.stat(rootless.__file__).st_mtime)
    return {
        "Client": {
            "Version": __version__,
            "PythonVersion": platform.python_version(),
            "GitCommit": _git_commit(package_dir),
            "BuiltTime": time.strftime("%a %b %d %H:%M:%S %Y", time.localtime(built)),
            "Built": built,
            "OsArch": f"{platform.system().lower()}/{_GO_ARCH.get(machine, machine)}",
            "Os": _os_name(),
            "Kernel": platform.release(),
        }
    }
