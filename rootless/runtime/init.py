"""Stage 2: the container's PID 1 before exec.

Runs in the child forked inside the new PID namespace, already in the container's
user, mount, UTS, IPC, cgroup and (usually) network namespaces. It turns the rootfs
into the container's root, drops privileges as the spec says and execs the command.
Nothing here returns: success is an exec, failure is a message on the error pipe
and ``os._exit``. Every module this code uses must be imported at the top: after
pivot_root the Python sources are out of sight.
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import select
import signal
import socket
import stat
from typing import NoReturn

from rootless._record import Record
from rootless.errors import (
    CommandNotExecutable,
    CommandNotFound,
    ConfigError,
    ContainerStartError,
    RootlessError,
    SyscallError,
)
from rootless.runtime import capabilities as caps
from rootless.runtime.mounts import DEV_SYMLINKS, DEVICES, plan_mount
from rootless.runtime.securejoin import resolve_in_root
from rootless.runtime.spec import USER_ANNOTATION, Mount, Spec
from rootless.runtime.users import read_user_databases, resolve_user
from rootless.sys import mount as sysmount
from rootless.sys import net, process
from rootless.sys import seccomp as sysseccomp


class InitFds(Record):
    error_w: int  # CLOEXEC: closed by a successful exec
    alive_r: int  # EOF here means stage 1 (our parent) died
    tty_sock: int | None  # where the pty master is sent with -t
    stdin_null: bool  # without -i the container's stdin is /dev/null
    stdio: tuple[int, int, int] | None = None  # given fds for 0, 1, 2 (detached containers)
    gate_r: int | None = None  # wait for a byte here before running the command


def report_and_exit(error_w: int, err: BaseException) -> NoReturn:
    if isinstance(err, RootlessError):
        code, msg = err.exit_code, str(err)
    else:
        code, msg = 125, f"internal error in container init: {type(err).__name__}: {err}"
    try:
        os.write(error_w, f"{code}\n{msg}".encode())
    finally:
        os._exit(code)


def run_init(
    spec: Spec, fds: InitFds, seccomp_program: bytes | None, single_idmap: bool
) -> NoReturn:
    """A new container: set up its filesystem, then become its command."""
    try:
        _begin(fds)
        rootfs = os.path.realpath(spec.root.path)
        _prepare_rootfs(rootfs, spec)
        _pivot(rootfs)
        _mask_and_protect(spec)
        if spec.root.readonly:
            sysmount.bind_remount("/", sysmount.MS_RDONLY)
        if spec.hostname and spec.linux.has_namespace("uts"):
            process.sethostname(spec.hostname)
        if spec.linux.has_namespace("network"):
            net.link_up("lo")
        _become_command(spec, fds, seccomp_program, single_idmap)
    except BaseException as e:
        report_and_exit(fds.error_w, e)


def run_exec_init(
    spec: Spec, fds: InitFds, seccomp_program: bytes | None, single_idmap: bool
) -> NoReturn:
    """A process joining a running container (already in its namespaces, so its root)."""
    try:
        _begin(fds)
        _become_command(spec, fds, seccomp_program, single_idmap)
    except BaseException as e:
        report_and_exit(fds.error_w, e)


def _begin(fds: InitFds) -> None:
    process.set_pdeathsig(signal.SIGKILL)
    _check_parent(fds.alive_r)
    # The command starts with every signal at its default and none blocked: ignored
    # dispositions survive exec (Python ignores SIGPIPE, stage 1 ignores the ones the
    # supervisor forwards), and a shell may not trap a signal ignored on entry.
    for sig in signal.valid_signals():
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            with contextlib.suppress(OSError, ValueError):
                signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, ())


def _become_command(
    spec: Spec, fds: InitFds, seccomp_program: bytes | None, single_idmap: bool
) -> NoReturn:
    """Terminal, limits, user, credentials, seccomp, then exec."""
    if fds.gate_r is not None and os.read(fds.gate_r, 1) != b"G":
        os._exit(137)  # the supervisor died before the network was ready
    _setup_stdio(fds)
    _set_rlimits(spec)
    spec = _resolve_user(spec)
    _enter_cwd(spec.process.cwd)
    _switch_user(spec, single_idmap)
    process.set_pdeathsig(signal.SIGKILL)  # cleared by the uid change above
    _check_parent(fds.alive_r)
    process.close_fds_from(3, keep=frozenset({fds.error_w}))
    if spec.process.no_new_privileges:
        sysseccomp.set_no_new_privs()
    if seccomp_program is not None:
        sysseccomp.load_filter(seccomp_program)
    _exec(spec)


def _check_parent(alive_r: int) -> None:
    if select.select([alive_r], [], [], 0)[0]:
        os._exit(137)


def _prepare_rootfs(rootfs: str, spec: Spec) -> None:
    if not os.path.isdir(rootfs):
        raise ConfigError(f"rootfs {spec.root.path} is not a directory")
    sysmount.mount("", "/", None, sysmount.MS_REC | sysmount.MS_PRIVATE, None)
    if spec.root.overlay:
        sysmount.mount("overlay", rootfs, "overlay", 0, spec.root.overlay)
    sysmount.mount(rootfs, rootfs, None, sysmount.MS_BIND | sysmount.MS_REC, None)
    for mnt in spec.mounts:
        _mount_one(rootfs, mnt)
    dev = resolve_in_root(rootfs, "/dev")
    for name in DEVICES:
        target = os.path.join(dev, name)
        if not os.path.exists(target):
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o666))
        sysmount.mount(f"/dev/{name}", target, None, sysmount.MS_BIND, None)
    for src, link in DEV_SYMLINKS:
        with contextlib.suppress(FileExistsError):
            os.symlink(src, resolve_in_root(rootfs, link))


def _mount_one(rootfs: str, mnt: Mount) -> None:
    plan = plan_mount(mnt)
    target = resolve_in_root(rootfs, mnt.destination)
    if not target.startswith(rootfs):
        raise ContainerStartError(f"mount target {mnt.destination} escapes the rootfs")
    source_is_dir = True
    if plan.bind:
        try:
            source_is_dir = stat.S_ISDIR(os.stat(mnt.source).st_mode)
        except OSError as e:
            raise ConfigError(
                f"cannot bind mount {mnt.source} on {mnt.destination}: {e.strerror}",
                hint="check that the host path exists",
            ) from None
    try:
        _make_target(target, source_is_dir)
    except OSError as e:
        # makedirs reports a parent that is a file as EEXIST.
        why = (
            "a parent is not a directory"
            if e.errno in (errno.EEXIST, errno.ENOTDIR)
            else e.strerror
        )
        raise ConfigError(
            f"cannot make the mount point {mnt.destination} in the container: {why}",
            hint="mount on a container path whose parents are directories",
        ) from None
    try:
        sysmount.mount(plan.source, target, plan.fstype, plan.flags, plan.data)
    except SyscallError as e:
        if e.errno != errno.EPERM or plan.fstype not in ("proc", "sysfs"):
            raise
        # The kernel mounts a new proc or sysfs in a user namespace only where one is
        # already fully visible: not so in a container that masks parts of them.
        raise SyscallError(
            e.call,
            e.errno,
            path=e.path,
            hint=f"{plan.fstype} is partly masked here (in a container?); run the outer "
            "container with --security-opt unmask=ALL",
        ) from None
    if plan.bind and plan.remount_flags:
        sysmount.bind_remount(target, plan.remount_flags)
    if plan.propagation:
        sysmount.mount("", target, None, plan.propagation, None)


def _make_target(target: str, is_dir: bool) -> None:
    if os.path.lexists(target):
        return
    os.makedirs(os.path.dirname(target), exist_ok=True)
    # Containers started together on one --rootfs may make the same target at once.
    if is_dir:
        with contextlib.suppress(FileExistsError):
            os.mkdir(target, 0o755)
    else:
        os.close(os.open(target, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))


def _pivot(rootfs: str) -> None:
    # pivot_root(".", ".") stacks the old root on top of the new one; detaching it
    # leaves only the container's tree, with no directory needed for the old root.
    os.chdir(rootfs)
    sysmount.pivot_root(".", ".")
    sysmount.umount2(".", sysmount.MNT_DETACH)
    os.chdir("/")


def _mask_and_protect(spec: Spec) -> None:
    for path in spec.linux.masked_paths:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            continue
        if stat.S_ISDIR(st.st_mode):
            sysmount.mount("tmpfs", path, "tmpfs", sysmount.MS_RDONLY, "size=0k,mode=000")
        else:
            sysmount.mount("/dev/null", path, None, sysmount.MS_BIND, None)
    for path in spec.linux.readonly_paths:
        if not os.path.exists(path):
            continue
        sysmount.mount(path, path, None, sysmount.MS_BIND | sysmount.MS_REC, None)
        sysmount.bind_remount(
            path, sysmount.MS_RDONLY | sysmount.MS_NOSUID | sysmount.MS_NODEV | sysmount.MS_NOEXEC
        )


def _setup_stdio(fds: InitFds) -> None:
    if fds.stdio is not None:
        for target, fd in enumerate(fds.stdio):
            os.dup2(fd, target)
    if fds.tty_sock is not None:
        master, slave = os.openpty()
        os.setsid()
        process.set_controlling_tty(slave)
        for fd in (0, 1, 2):
            os.dup2(slave, fd)
        socket.send_fds(socket.socket(fileno=fds.tty_sock), [b"M"], [master])
        os.close(master)
        os.close(slave)
    elif fds.stdin_null:
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)


_RLIMITS = {name: getattr(resource, name) for name in dir(resource) if name.startswith("RLIMIT_")}


def _set_rlimits(spec: Spec) -> None:
    for rl in spec.process.rlimits:
        if rl.type not in _RLIMITS:
            raise ConfigError(f"unknown rlimit {rl.type}")
        try:
            resource.setrlimit(_RLIMITS[rl.type], (rl.soft, rl.hard))
        except (ValueError, OSError) as e:
            raise ConfigError(
                f"cannot set {rl.type} to {rl.soft}:{rl.hard}: {e}",
                hint="an unprivileged user cannot raise a hard limit above its own",
            ) from None


def _resolve_user(spec: Spec) -> Spec:
    """Resolve ``-u`` against the container's own /etc/passwd and /etc/group; set HOME."""
    process = spec.process
    wanted = spec.annotations.get(USER_ANNOTATION)
    # Without the annotation (a plain OCI config) the numeric IDs stand as given.
    resolved = resolve_user(wanted or str(process.user.uid), *read_user_databases())
    user = resolved.user._replace(umask=process.user.umask) if wanted else process.user
    env = process.env
    if not any(e.startswith("HOME=") for e in env):
        env = (*env, f"HOME={resolved.home}")
    return spec._replace(process=process._replace(user=user, env=env))


def _enter_cwd(cwd: str) -> None:
    if not cwd.startswith("/"):
        raise ConfigError(f"working directory {cwd} is not absolute")
    # /proc/self/fd/N and friends are magic links that can lead anywhere: refuse the
    # kernel's filesystems outright, whether named or reached through a symlink.
    for path in (os.path.normpath(cwd), resolve_in_root("/", cwd)):
        if path in ("/proc", "/sys") or path.startswith(("/proc/", "/sys/")):
            raise ConfigError(
                f"working directory {cwd} resolves into {path}, which is not allowed",
                hint="choose a directory of the container's own filesystem",
            )
    path = resolve_in_root("/", cwd)
    try:
        os.makedirs(path, 0o755, exist_ok=True)
        os.chdir(path)
    except OSError as e:
        raise ConfigError(f"cannot use working directory {cwd}: {e.strerror}") from None
    # A chdir through a leaked descriptor could land outside our root.
    try:
        os.getcwd()
    except FileNotFoundError:
        raise ConfigError(f"working directory {cwd} is outside the container") from None


def _switch_user(spec: Spec, single_idmap: bool) -> None:
    user = spec.process.user
    if not single_idmap:
        os.setgroups(list(user.additional_gids))
    elif user.additional_gids:
        raise ConfigError(
            "cannot set supplementary groups: only one ID is mapped",
            hint="give your user a subordinate ID range (sudo helpers/setup-host USER)",
        )
    c = spec.process.capabilities
    last = process.last_cap()
    keep = caps.mask(c.bounding, last)
    # Dropping from the bounding set needs CAP_SETPCAP, which the uid change clears.
    for n in range(last + 1):
        if not keep & (1 << n):
            process.capbset_drop(n)
    process.set_keepcaps(True)
    try:
        os.setresgid(user.gid, user.gid, user.gid)
        os.setresuid(user.uid, user.uid, user.uid)
    except OSError as e:
        raise ConfigError(
            f"cannot switch to user {user.uid}:{user.gid}: {e.strerror}",
            hint="the ID is not mapped; IDs above your subordinate range cannot be used",
        ) from None
    process.set_keepcaps(False)
    if user.umask is not None:
        os.umask(user.umask)
    process.capset(
        caps.mask(c.effective, last), caps.mask(c.permitted, last), caps.mask(c.inheritable, last)
    )
    process.ambient_clear()
    for name in c.ambient:
        process.ambient_raise(caps.CAP_NUMBER[caps.normalize(name)])


def _exec(spec: Spec) -> NoReturn:
    args = spec.process.args
    env = dict(e.split("=", 1) for e in spec.process.env if "=" in e)
    try:
        os.execvpe(args[0], list(args), env)
    except FileNotFoundError:
        raise CommandNotFound(
            f"executable file `{args[0]}` not found in $PATH: no such file or directory",
            hint="check the command and the image's PATH",
        ) from None
    except PermissionError:
        raise CommandNotExecutable(f"cannot execute `{args[0]}`: permission denied") from None
    except OSError as e:
        raise CommandNotExecutable(f"cannot execute `{args[0]}`: {e.strerror}") from None
