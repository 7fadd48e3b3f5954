"""unshare(2) and setns(2)."""

from __future__ import annotations

from rootless.sys._libc import call

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

NAMESPACE_FLAGS = {
    "mount": CLONE_NEWNS,
    "cgroup": CLONE_NEWCGROUP,
    "uts": CLONE_NEWUTS,
    "ipc": CLONE_NEWIPC,
    "user": CLONE_NEWUSER,
    "pid": CLONE_NEWPID,
    "network": CLONE_NEWNET,
}


def unshare(flags: int) -> None:
    hint = None
    if flags & CLONE_NEWUSER:
        hint = (
            "check that unprivileged user namespaces are enabled (sysctl user.max_user_namespaces)"
        )
    call("unshare", flags, hint=hint)


def setns(fd: int, nstype: int = 0, *, path: str | None = None) -> None:
    call("setns", fd, nstype, path=path)
