"""Running containers: from a rootfs directory or from an image in the store."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rootless._empty import EMPTY_MAP
from rootless._paths import StoragePaths
from rootless._record import Record
from rootless.errors import ConfigError, ImageError
from rootless.runtime.spec import Rlimit

if TYPE_CHECKING:
    import threading

    from rootless.container.records import ContainerRecord, ContainerStore
    from rootless.engine.network import NetworkRequest
    from rootless.image.store import ImageRecord, Store
    from rootless.runtime.launch import LaunchOptions
    from rootless.runtime.plan import RunRequest
    from rootless.runtime.spec import Mount, Spec
    from rootless.volumes import MountRequest


class RunOptions(Record):
    """What ``rootless run`` was asked, parsed but not yet planned."""

    command: tuple[str, ...] = ()
    image: str | None = None
    rootfs: str | None = None
    name: str | None = None
    rm: bool = False
    interactive: bool = False
    tty: bool = False
    env: tuple[tuple[str, str], ...] = ()
    workdir: str | None = None
    user: str | None = None
    hostname: str | None = None
    entrypoint: str | None = None
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    seccomp: str | None = "default"  # "default", None (unconfined) or a profile path
    no_new_privileges: bool = True
    unmask: tuple[str, ...] = ()  # --security-opt unmask=: ALL or paths to leave unmasked
    read_only: bool = False
    read_only_tmpfs: bool = False  # with read_only: tmpfs on /tmp, /var/tmp, /run
    secrets: tuple[str, ...] = ()  # --secret NAME[,target=...]
    devices: tuple[str, ...] = ()  # --device HOST[:CTR][:rwm] or a CDI name
    timeout: float | None = None  # --timeout: kill after this many seconds
    cidfile: str | None = None  # --cidfile: write the ID here; refused if it exists
    mounts: MountRequest | None = None  # -v, --mount, --tmpfs
    userns: str | None = None  # --userns: None (the default map) or "keep-id"
    network: NetworkRequest | None = None  # --network, -p, -P, --dns*, --add-host
    ulimits: tuple[Rlimit, ...] = ()
    shm_size: int | None = None  # --shm-size: bytes of /dev/shm (None: 64 MiB)
    pull: str = "missing"  # missing, always, never, newer
    tls_verify: bool | None = None
    detach: bool = False
    init: bool = False  # --init: a reaper as PID 1 that forwards signals
    limits: Mapping[str, str] = EMPTY_MAP  # --memory, --cpus, --pids-limit as given
    # kept in the record for the supervisor: restart policy, healthcheck, log options
    extra: Mapping[str, Any] = EMPTY_MAP


def seccomp_for(choice: str | None) -> tuple[str | dict[str, object] | None, bytes | None]:
    """The spec's seccomp entry and the compiled program for it."""
    from rootless.runtime import seccomp as sc

    if choice is None:
        return None, None
    if choice == "default":
        return "default", sc.default_program()
    profile = sc.load_profile_file(choice)
    return profile, sc.compile_profile(profile, os.uname().machine)


class Prepared(Record):
    """A created container: its record, its spec, and how to launch it."""

    record: ContainerRecord
    spec: Spec
    launch: LaunchOptions
    containers: ContainerStore


def containers_store(paths: StoragePaths | None = None) -> ContainerStore:
    """The user's container records (``paths`` default: from the environment)."""
    from rootless.container.records import ContainerStore

    data = (paths or StoragePaths.from_env()).data
    return ContainerStore(data / "containers", events=data)


def create(opts: RunOptions, paths: StoragePaths | None = None) -> Prepared:
    """Create a container (record, directory, config.json) without starting it."""
    from rootless.cli._common import warn
    from rootless.engine.network import NetworkRequest
    from rootless.runtime import spec as specmod
    from rootless.runtime.idmap import keep_id_user, plan_for_userns
    from rootless.runtime.launch import LaunchOptions
    from rootless.runtime.plan import RunRequest, plan_spec

    paths = paths or StoragePaths.from_env()
    net = opts.network or NetworkRequest()
    if opts.cidfile is not None and os.path.lexists(opts.cidfile):
        raise ConfigError(
            f"cannot write the container ID to {opts.cidfile}: the file exists",
            hint="remove it first, or choose another --cidfile",
        )
    if opts.limits:
        refuse_limits(opts.limits)
    idmap = plan_for_userns(opts.userns)
    if idmap.warning:
        warn(idmap.warning)
    seccomp, program = seccomp_for(opts.seccomp)
    request = RunRequest(
        rootfs="",
        args=opts.command,
        env=opts.env,
        workdir=opts.workdir or "/",
        user=opts.user or keep_id_user(opts.userns),  # keep-id: the user's UID:GID
        hostname=opts.hostname,
        terminal=opts.tty,
        cap_add=opts.cap_add,
        cap_drop=opts.cap_drop,
        seccomp=seccomp,
        no_new_privileges=opts.no_new_privileges,
        unmask=opts.unmask,
        read_only=opts.read_only,
        network="host" if net.mode.split(":")[0] == "host" else "private",
        ulimits=opts.ulimits,
        shm_size=opts.shm_size,
    )
    options = {
        "rm": opts.rm,
        "interactive": opts.interactive,
        "tty": opts.tty,
        "seccomp": "default" if opts.seccomp == "default" else opts.seccomp and "profile",
        **({"secrets": [s.split(",")[0] for s in opts.secrets]} if opts.secrets else {}),
        **opts.extra,
    }
    containers = containers_store(paths)
    if opts.rootfs is not None:
        if not opts.command:
            raise ConfigError(
                "no command given", hint="usage: rootless run --rootfs DIR CMD [ARG...]"
            )
        rootfs = _check_rootfs(opts.rootfs)
        record = containers.create(
            name=opts.name,
            image="",
            image_id="",
            command=opts.command,
            options=_health_options(options, None),
        )
        request = request._replace(rootfs=rootfs)
        image_volumes: tuple[str, ...] = ()
        image_layers: list[Path] = []
        image_exposed: tuple[str, ...] = ()
    else:
        record, request, image_volumes, image_layers, image_exposed = _create_from_image(
            opts, request, options, containers, paths
        )
    try:
        from rootless.volumes import MountRequest, container_mounts

        mounts = container_mounts(
            opts.mounts or MountRequest(),
            cid=record.id,
            paths=paths,
            image_volumes=image_volumes,
            image_layers=image_layers,
        )
        from rootless.engine.network import plan_network

        netplan = plan_network(
            net,
            cdir=containers.container_dir(record.id),
            hostname=opts.hostname or record.id[:12],
            names=(record.name,),
            exposed=image_exposed,
        )
        containers.update(record.id, options={**record.options, **netplan.options})
        record = containers.get(record.id)
        extra_mounts: tuple[Mount, ...] = ()
        extra_env: tuple[tuple[str, str], ...] = ()
        if opts.devices:  # imported only when asked: the start path stays short
            from rootless.devices import cdi_dirs, plan_devices

            devices = plan_devices(opts.devices, cdi_dirs(os.environ))
            extra_mounts, extra_env = tuple(devices.mounts), tuple(devices.env)
        if opts.secrets:
            from rootless.secrets import secret_mounts

            extra_mounts += tuple(secret_mounts(opts.secrets, cid=record.id, paths=paths))
        scratch = read_only_tmpfs(mounts) if opts.read_only and opts.read_only_tmpfs else ()
        request = request._replace(
            volumes=(*scratch, *mounts, *netplan.mounts, *extra_mounts),
            env=(*extra_env, *request.env),
        )
        if opts.init:
            request = with_init(request)
        spec = plan_spec(request, idmap, container_id=record.id)
        specmod.save(
            spec,
            containers.container_dir(record.id) / "config.json",
            expand_default_seccomp=False,
            durable=not opts.rm,  # gone when it exits: a crash cannot need it
        )
        if opts.cidfile is not None:
            write_cidfile(opts.cidfile, record.id)
    except BaseException:
        remove(record, containers, volumes=True, paths=paths)
        raise
    return Prepared(record, spec, LaunchOptions(idmap, opts.interactive, program), containers)


def seccomp_from_spec(spec: Spec, choice: str | None) -> bytes | None:
    """The compiled filter for a saved spec: the cached default, or its own profile."""
    from rootless.runtime import seccomp as sc

    if choice == "default":
        return sc.default_program()
    if spec.linux.seccomp is None or choice is None:
        return None
    return sc.compile_profile(dict(spec.linux.seccomp), os.uname().machine)  # type: ignore[arg-type]


def run(opts: RunOptions, paths: StoragePaths | None = None) -> int:
    """Run a container in the foreground (or detached with ``opts.detach``); its exit code."""
    from rootless.runtime.launch import Started, run_foreground

    paths = paths or StoragePaths.from_env()
    if "pod" in opts.extra and opts.network is not None:  # joins its infra's network
        from rootless.engine.pods import start_infra_of

        start_infra_of({"pod": opts.extra["pod"], "network": opts.network.mode}, paths)
    prepared = create(opts, paths)
    record, containers = prepared.record, prepared.containers
    if opts.detach:
        from rootless.supervise.monitor import spawn_monitor

        spawn_monitor(record.id, paths)
        print(record.id)
        return 0
    from rootless.engine.network import NetworkAttachment

    network = NetworkAttachment(containers.get(record.id).options)
    # SIGTERM (systemd stopping the unit) gets the same grace period as `stop`.
    launch = prepared.launch._replace(stop_timeout=float(opts.extra.get("stop_timeout", 10)))
    if network.needed:
        launch = launch._replace(before_exec=network.attach)
    sdnotify = opts.extra.get("sdnotify") or ("conmon" if os.environ.get("NOTIFY_SOCKET") else None)
    deadline = Deadline(opts.timeout)
    health_waiter = None
    if sdnotify == "healthy":
        from rootless.supervise.healthwait import HealthWaiter

        health_waiter = HealthWaiter(record.id, paths)
    try:

        def started(s: Started) -> None:
            containers.mark_running(record.id, s.init_pid, monitor=os.getpid())
            deadline.arm(s.init_pid)
            if sdnotify is not None:
                from rootless.systemd.notify import Notifier

                Notifier(sdnotify).started()
            if health_waiter is not None:
                health_waiter.start()

        from rootless.engine.heldns import join_held

        spec = join_held(network.prepare(prepared.spec), launch.idmap)
        code = run_foreground(spec, launch, on_started=started)
        containers.mark_exited(record.id, code)
        if deadline.disarm():
            import sys

            print(
                f"Error: container {record.id[:12]} timed out after {opts.timeout:g} seconds "
                "and was killed",
                file=sys.stderr,
            )
            return TIMEOUT_EXIT_CODE
        return code
    finally:
        deadline.disarm()
        if health_waiter is not None:
            health_waiter.stop()
        network.stop()
        if opts.rm:
            remove(record, containers, volumes=True, paths=paths)


TIMEOUT_EXIT_CODE = 124  # as coreutils timeout: not a code a killed container reports


class Deadline:
    """``--timeout``: SIGKILL to the container's PID 1 (through a pidfd, so never to a
    reused PID) from a timer thread; the thread is joined before anything forks again."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.fired = False  # set by the timer thread; read after it is joined
        self.timer: threading.Timer | None = None
        self.pidfd = -1

    def arm(self, pid: int) -> None:
        import threading

        if self.seconds is None:
            return
        try:
            self.pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            return  # the command already ended: nothing left to time
        self.timer = threading.Timer(self.seconds, self._kill)
        self.timer.daemon = True
        self.timer.start()

    def _kill(self) -> None:
        import contextlib
        import signal

        self.fired = True
        with contextlib.suppress(ProcessLookupError):  # it ended on its own just now
            signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)

    def disarm(self) -> bool:
        """Stop the timer; whether it fired."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer.join()
            self.timer = None
        if self.pidfd >= 0:
            os.close(self.pidfd)
            self.pidfd = -1
        return self.fired


def read_only_tmpfs(mounts: tuple[Mount, ...]) -> tuple[Mount, ...]:
    """``--read-only-tmpfs``: writable scratch directories, as Podman, where no mount is."""
    from rootless.runtime.spec import Mount

    taken = {m.destination for m in mounts}
    return tuple(
        Mount(path, "tmpfs", "tmpfs", ("rw", "nosuid", "nodev", mode))
        for path, mode in (("/tmp", "mode=1777"), ("/var/tmp", "mode=1777"), ("/run", "mode=755"))
        if path not in taken
    )


def write_cidfile(path: str, cid: str) -> None:
    """Write the ID; O_EXCL so two runs never share a file (as Podman, no overwrite)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    except OSError as e:
        raise ConfigError(f"cannot write the container ID to {path}: {e.strerror}") from None
    with os.fdopen(fd, "w") as f:
        f.write(cid)


def remove(
    record: ContainerRecord,
    containers: ContainerStore,
    *,
    volumes: bool = False,
    paths: StoragePaths | None = None,
) -> None:
    """Delete a container's files and record (it must not be running); with ``volumes``
    also its anonymous volumes (what ``--rm`` and ``rm -v`` do)."""
    remove_container_files(containers.container_dir(record.id))
    if record.options.get("secrets"):
        from rootless.secrets import remove_container_secrets

        remove_container_secrets(paths or StoragePaths.from_env(), record.id)
    containers.delete(record.id)
    if volumes:
        from rootless.volumes import remove_anonymous_volumes

        remove_anonymous_volumes(record.id, paths or StoragePaths.from_env())


INIT_PATH = "/run/rootless-init"
INIT_CANDIDATES = ("/usr/libexec/podman/catatonit", "/usr/bin/catatonit")


def with_init(request: RunRequest) -> RunRequest:
    """``--init``: Debian's catatonit, bound read-only into the container, runs as PID 1,
    reaps zombies and forwards signals to the command (which then can be stopped even
    when it installs no handler)."""
    from rootless.runtime.spec import Mount

    binary = next((p for p in INIT_CANDIDATES if os.access(p, os.X_OK)), None)
    if binary is None:
        raise ConfigError(
            "--init needs catatonit, which is not installed",
            hint="sudo apt-get install catatonit",
        )
    mount = Mount(INIT_PATH, "bind", binary, ("bind", "ro", "nosuid", "nodev"))
    return request._replace(
        args=(INIT_PATH, "--", *request.args), volumes=(*request.volumes, mount)
    )


def refuse_limits(limits: Mapping[str, str], what: str | None = None) -> None:
    """Resource limits need a delegated cgroup v2 subtree; never ignore one silently.
    ``what`` names the limits in the message (default: their flags)."""
    from rootless.hostinfo import cgroup_info

    info = cgroup_info()
    flags = what or ", ".join(f"--{k}" for k in limits)
    if info["version"] != "v2":
        raise ConfigError(
            f"cannot apply {flags}: this host runs cgroups {info['version']}, and rootless "
            "resource limits need the unified cgroup v2 hierarchy",
            hint="boot with systemd.unified_cgroup_hierarchy=1, then delegate controllers to "
            "users (a systemd drop-in for user@.service with Delegate=yes)",
        )
    if not info["delegated"]:
        raise ConfigError(
            f"cannot apply {flags}: no cgroup v2 subtree is delegated to your user",
            hint="delegate controllers to users: a systemd drop-in for user@.service with "
            "Delegate=memory pids cpu, then log in again",
        )
    raise ConfigError(
        f"cannot apply {flags}: resource limits through a delegated cgroup are not implemented yet",
        hint="run without the limit",
    )


def _check_rootfs(rootfs: str) -> str:
    path = os.path.abspath(rootfs)
    if not os.path.isdir(path):
        raise ConfigError(
            f"rootfs {rootfs} does not exist or is not a directory",
            hint="give --rootfs a directory holding the container's files",
        )
    return path


def _ensure_image(opts: RunOptions, paths: StoragePaths):  # type: ignore[no-untyped-def]
    from rootless.engine.images import find_local, open_store

    assert opts.image is not None
    store = open_store(paths)
    record = find_local(store, opts.image)
    if opts.pull not in ("missing", "always", "never", "newer"):
        raise ConfigError(
            f'invalid --pull policy "{opts.pull}"', hint="use missing, always or never"
        )
    if record is None and opts.pull == "never":
        raise ImageError(
            f"{opts.image}: image not known", hint=f"pull it first: rootless pull {opts.image}"
        )
    if record is None or opts.pull == "always":
        # SQLite must not be used across fork: close before the pull's child opens it.
        store.close()
        _pull_in_userns(opts, paths)
        store = open_store(paths)
        record = find_local(store, opts.image)
        if record is None:  # the pull printed its error already
            raise ImageError(f"cannot pull {opts.image}")
    return store, record


def _pull_in_userns(opts: RunOptions, paths: StoragePaths) -> None:
    from rootless.runtime.userns import run_in_userns

    def job() -> int:
        import trio

        from rootless.cli._common import progress_for
        from rootless.engine.images import open_store, pull

        assert opts.image is not None
        store = open_store(paths)
        trio.run(
            lambda: pull(
                opts.image or "", store, tls_verify=opts.tls_verify, progress=progress_for(False)
            )
        )
        return 0

    code = run_in_userns(job)
    if code != 0:
        raise _AlreadyReported(code)


class _AlreadyReported(ImageError):
    """The child that failed printed the error; only its exit code is left."""

    def __init__(self, code: int) -> None:
        super().__init__("")
        self.exit_code = code


def _health_options(
    options: dict[str, Any], image_health: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Replace the --health-* flags in ``options`` by the healthcheck to run, if any."""
    options = dict(options)
    flags = dict(options.pop("health_flags", None) or {})
    if flags or image_health:
        from rootless.supervise.health import health_config

        disabled = bool(flags.pop("disabled", False))
        health = health_config(image_health, **flags, disabled=disabled)
        if health is not None:
            options["health"] = health.to_json()
    if options.get("health_on_failure") and "health" not in options:
        raise ConfigError(
            "--health-on-failure needs a healthcheck, and the container has none",
            hint="add --health-cmd (or use an image with a HEALTHCHECK)",
        )
    if options.get("sdnotify") == "healthy" and "health" not in options:
        raise ConfigError(
            "--sdnotify=healthy needs a healthcheck, and the container has none",
            hint="add --health-cmd, or use --sdnotify=conmon",
        )
    return options


def _create_from_image(
    opts: RunOptions,
    request: RunRequest,
    options: dict[str, Any],
    containers: ContainerStore,
    paths: StoragePaths,
) -> tuple[ContainerRecord, RunRequest, tuple[str, ...], list[Path], tuple[str, ...]]:
    """The record and request of a container from an image, with the image's VOLUMEs
    and layer directories (base first)."""
    from rootless.container.imageconfig import merge_env, plan_command
    from rootless.engine.storage import storage_driver
    from rootless.image.rootfs import plan_overlay

    store, image = _ensure_image(opts, paths)
    cfg = store.image_config(image).config
    argv = plan_command(cfg.entrypoint, cfg.cmd, entrypoint=opts.entrypoint, args=opts.command)
    options = _health_options(
        {**options, "stop_signal": options.get("stop_signal") or cfg.stop_signal},
        cfg.healthcheck,
    )
    record = containers.create(
        name=opts.name, image=opts.image or "", image_id=image.id, command=argv, options=options
    )
    cdir = containers.container_dir(record.id)
    upper, work, merged = (cdir / n for n in ("upper", "work", "merged"))
    for d in (upper, work, merged):
        d.mkdir()
    lowers = [store.layer_dir(layer.diff_id) for layer in image.layers]
    overlay_options: str | None = None
    if storage_driver(paths) == "overlay":
        overlay_options = plan_overlay(lowers, upper, work, merged).options
    else:
        copy_layers(store, image, merged)
    return (
        record,
        request._replace(
            rootfs=str(merged),
            overlay=overlay_options,
            args=argv,
            env=merge_env(cfg.env, request.env),
            workdir=opts.workdir or cfg.working_dir or "/",
            user=request.user or cfg.user or None,
        ),
        cfg.volumes,
        lowers,
        cfg.exposed_ports,
    )


def copy_layers(store: Store, image: ImageRecord, target: Path) -> None:
    """The copy driver: the image's layers applied onto ``target``, in the user namespace."""
    from rootless.image.rootfs import CopyLayer, materialise
    from rootless.runtime.userns import run_in_userns

    layers = [
        CopyLayer(store.layer_dir(x.diff_id), store.layer_info(x.diff_id).opaque_dirs)
        for x in image.layers
    ]

    def job() -> int:
        materialise(layers, target)
        return 0

    store.close()  # no SQLite across the fork
    if run_in_userns(job) != 0:
        raise ImageError(f"cannot copy the layers of {image.id} into {target}")


def remove_container_files(cdir: Path) -> None:
    """Remove a container's directory.

    Usually everything in it is the user's own (container root is the user): then a
    plain removal does, and the fork into the user namespace (two setuid helper execs)
    is only paid when the container left files of other container users behind.
    """
    import shutil

    from rootless.runtime.userns import run_in_userns

    if not cdir.exists():
        return
    try:
        _rmtree_own(cdir)
        return
    except OSError:
        pass  # files of other container users: remove them as root of the namespace

    def job() -> int:
        shutil.rmtree(cdir)
        return 0

    run_in_userns(job)


def _rmtree_own(path: Path) -> None:
    """rmtree that first opens up the directories of ours that overlayfs leaves with
    mode 000 (its work dir); fails on anything owned by another ID."""
    import shutil
    import stat

    uid = os.getuid()
    for top, dirs, _ in os.walk(path):
        for name in dirs:
            st = os.lstat(os.path.join(top, name))
            if st.st_uid == uid and stat.S_IMODE(st.st_mode) & 0o700 != 0o700:
                os.chmod(os.path.join(top, name), 0o700)
    shutil.rmtree(path)
