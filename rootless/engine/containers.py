"""Running containers: from a rootfs directory or from an image in the store."""

from __future__ import annotations

import os
import platform
import shutil
from collections.abc import Sequence
from pathlib import Path

import attrs

from rootless._paths import StoragePaths
from rootless.errors import ConfigError, ImageError
from rootless.runtime.mounts import parse_volume
from rootless.runtime.spec import Mount, Rlimit


@attrs.frozen
class RunOptions:
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
    read_only: bool = False
    volumes: tuple[Mount, ...] = ()
    network: str = "private"
    ulimits: tuple[Rlimit, ...] = ()
    pull: str = "missing"  # missing, always, never, newer
    tls_verify: bool | None = None


def seccomp_for(choice: str | None) -> tuple[str | dict[str, object] | None, bytes | None]:
    """The spec's seccomp entry and the compiled program for it."""
    from rootless.runtime import seccomp as sc

    if choice is None:
        return None, None
    if choice == "default":
        return "default", sc.default_program()
    profile = sc.load_profile_file(choice)
    return profile, sc.compile_profile(profile, platform.machine())


def run(opts: RunOptions, paths: StoragePaths | None = None) -> int:
    """Run a container in the foreground; its exit code."""
    from rootless.cli._common import warn
    from rootless.runtime.idmap import current_user_plan
    from rootless.runtime.launch import LaunchOptions, run_foreground
    from rootless.runtime.plan import RunRequest, plan_spec

    paths = paths or StoragePaths.from_env()
    idmap = current_user_plan()
    if idmap.warning:
        warn(idmap.warning)
    seccomp, program = seccomp_for(opts.seccomp)
    request = RunRequest(
        rootfs="",
        args=opts.command,
        env=opts.env,
        workdir=opts.workdir or "/",
        user=opts.user,
        hostname=opts.hostname,
        terminal=opts.tty,
        cap_add=opts.cap_add,
        cap_drop=opts.cap_drop,
        seccomp=seccomp,
        no_new_privileges=opts.no_new_privileges,
        read_only=opts.read_only,
        volumes=opts.volumes,
        network=opts.network,
        ulimits=opts.ulimits,
    )
    launch = LaunchOptions(idmap, opts.interactive, program)
    if opts.rootfs is not None:
        if not opts.command:
            raise ConfigError(
                "no command given", hint="usage: rootless run --rootfs DIR CMD [ARG...]"
            )
        request = attrs.evolve(request, rootfs=_check_rootfs(opts.rootfs))
        spec = plan_spec(request, idmap, container_id=os.urandom(32).hex())
        return run_foreground(spec, launch)
    return _run_image(opts, request, launch, paths)


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
        _pull_in_userns(opts, paths)
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


def _run_image(opts, request, launch, paths) -> int:  # type: ignore[no-untyped-def]
    from rootless.container.imageconfig import merge_env, plan_command
    from rootless.container.records import ContainerStore
    from rootless.image.rootfs import plan_overlay
    from rootless.runtime import spec as specmod
    from rootless.runtime.launch import Started, run_foreground
    from rootless.runtime.plan import plan_spec

    store, image = _ensure_image(opts, paths)
    cfg = store.image_config(image).config
    argv = plan_command(cfg.entrypoint, cfg.cmd, entrypoint=opts.entrypoint, args=opts.command)
    containers = ContainerStore(paths.data / "containers")
    record = containers.create(
        name=opts.name,
        image=opts.image or "",
        image_id=image.id,
        command=argv,
        options={"rm": opts.rm},
    )
    cdir = containers.container_dir(record.id)
    try:
        upper, work, merged = (cdir / n for n in ("upper", "work", "merged"))
        for d in (upper, work, merged):
            d.mkdir()
        lowers = [store.layer_dir(layer.diff_id) for layer in image.layers]
        overlay = plan_overlay(lowers, upper, work, merged)
        request = attrs.evolve(
            request,
            rootfs=str(merged),
            overlay=overlay.options,
            args=argv,
            env=merge_env(cfg.env, request.env),
            workdir=opts.workdir or cfg.working_dir or "/",
            user=opts.user or cfg.user or None,
        )
        spec = plan_spec(request, launch.idmap, container_id=record.id)
        if not opts.rm:
            specmod.save(spec, cdir / "config.json")

        def started(s: Started) -> None:
            containers.mark_running(record.id, s.init_pid)

        code = run_foreground(spec, launch, on_started=started)
        containers.mark_exited(record.id, code)
        return code
    finally:
        if opts.rm:
            remove_container_files(cdir)
            containers.delete(record.id)


def remove_container_files(cdir: Path) -> None:
    """Remove a container's directory; its writable layer holds subordinate-ID files."""
    from rootless.runtime.userns import run_in_userns

    if not cdir.exists():
        return

    def job() -> int:
        shutil.rmtree(cdir)
        return 0

    run_in_userns(job)


def parse_volumes(specs: Sequence[str]) -> tuple[Mount, ...]:
    return tuple(parse_volume(v) for v in specs)
