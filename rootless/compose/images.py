"""The images of a project: ``compose build``, ``pull``, ``push`` and ``down --rmi``.

Planning is pure (which image each service needs, the command line that makes it);
each step then runs the engine's own verb (``rootless build``, ``pull``, ``push``,
``rmi``) as a child process, with this terminal for its progress and errors, as
podman-compose does with podman. A child per step keeps those verbs' forks into the
user namespace and their SQLite handles away from this process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple

from rootless.compose.to_run import image_name
from rootless.errors import ConfigError, ImageError

if TYPE_CHECKING:
    from rootless._paths import StoragePaths
    from rootless.compose.model import Project, Secret

RMI_CHOICES = ("all", "local")


PULL_CHOICES = ("always", "missing", "never")  # up --pull; pull --policy takes always, missing


class LocalImage(NamedTuple):
    id: str
    pulled: float  # when compose last pulled it, or else when the store got it


class Step(NamedTuple):
    service: str
    image: str
    argv: tuple[str, ...]  # the rootless command line, without the program
    inline: str | None = None  # build: the Containerfile's text, written to a file for -f
    optional: bool = False  # a failure is reported, not fatal (a pull before a build)
    secrets: tuple[Secret, ...] = ()  # build: the environment secrets, for its environment


def build_steps(project: Project, services: Sequence[str], *, no_cache: bool = False,
                pull: bool = False) -> list[Step]:  # fmt: skip
    """``rootless build`` of every service in ``services`` that has ``build:``."""
    steps = []
    for name in services:
        s = project.service(name)
        if s.build is None:
            continue
        b = s.build
        image = image_name(project, s)
        argv = ["build"]
        for tag in (image, *b.tags):
            argv += ["-t", tag]
        if b.dockerfile:
            argv += ["-f", os.path.join(b.context, b.dockerfile)]  # relative to the context
        if b.target:
            argv += ["--target", b.target]
        for key, value in b.args:
            argv += ["--build-arg", key if value is None else f"{key}={value}"]
        for key, label in b.labels:
            argv += ["--label", f"{key}={label}"]
        if b.network:
            argv += ["--network", "host" if b.network == "host" else "none"]
        env_secrets = []
        for used in b.secrets:
            secret = project.secret(used.source)
            if secret.file is not None:
                argv += ["--secret", f"id={used.target},src={secret.file}"]
            elif secret.environment is not None:
                env_secrets.append(secret)
                argv += ["--secret", f"id={used.target},env={secret.environment}"]
        for host in b.extra_hosts:
            argv += ["--add-host", host]
        if b.shm_size is not None:
            argv += ["--shm-size", str(b.shm_size)]
        for limit in b.ulimits:
            argv += ["--ulimit", limit]
        for agent in b.ssh:
            argv += ["--ssh", agent]
        argv += [*(["--no-cache"] if no_cache or b.no_cache else []),
                 *(["--pull"] if pull or b.pull else [])]  # fmt: skip
        steps.append(
            Step(name, image, (*argv, b.context), b.dockerfile_inline, secrets=tuple(env_secrets))
        )
    return steps


def policy_of(project: Project, service: str, override: str | None, default: str) -> str:
    """The pull policy that holds for ``service``: ``override`` (``--pull``, ``--policy``),
    else its ``pull_policy``, else ``default``."""
    if override is not None and override not in PULL_CHOICES:
        raise ConfigError(f'invalid pull policy "{override}"', hint="use always, missing or never")
    return override or project.service(service).pull_policy or default


def _wants_pull(policy: str, image: str, present: Mapping[str, LocalImage], now: float) -> bool:
    """Whether ``policy`` pulls ``image``; ``present``: the local images and when each was
    last pulled (or stored)."""
    from rootless.compose.model import refresh_seconds

    if policy == "always":
        return True
    if policy in ("never", "build"):
        return False
    if image not in present:
        return True
    max_age = refresh_seconds(policy)
    return max_age is not None and now - present[image].pulled > max_age


def up_pull_steps(
    project: Project,
    services: Sequence[str],
    present: Mapping[str, LocalImage],
    *,
    policy: str | None = None,
    build: bool = False,
    now: float = 0.0,
) -> list[Step]:
    """The pulls ``up`` and ``run`` make before creating anything (as Compose): by each
    service's pull policy (default ``missing``). A service with ``build:`` and an
    ``image:`` is pulled too, unless it is built anyway (``--build``, policy ``build``);
    its pull may fail (then it is built)."""
    seen: set[str] = set()
    steps = []
    for name in services:
        s = project.service(name)
        if s.image is None or s.image in seen or (build and s.build is not None):
            continue
        if _wants_pull(policy_of(project, name, policy, "missing"), s.image, present, now):
            seen.add(s.image)
            steps.append(Step(name, s.image, ("pull", s.image), optional=s.build is not None))
    return steps


def up_build_steps(
    project: Project,
    services: Sequence[str],
    present: Mapping[str, LocalImage],
    *,
    policy: str | None = None,
    build: bool = False,
) -> list[Step]:
    """The builds ``up`` makes after its pulls: every service with ``build:`` with
    ``build`` or pull policy ``build``, else those whose image is still missing."""
    return [
        step
        for step in build_steps(project, services)
        if build
        or policy_of(project, step.service, policy, "missing") == "build"
        or step.image not in present
    ]


def check_never(
    project: Project, services: Sequence[str], present: Mapping[str, LocalImage],
    *, policy: str | None = None,
) -> None:  # fmt: skip
    """A service that may not pull (policy ``never``) and cannot build needs its image
    in the store before anything is created."""
    for name in services:
        s = project.service(name)
        image = image_name(project, s)
        never = policy_of(project, name, policy, "missing") == "never"
        if never and s.build is None and image not in present:
            raise ImageError(
                f'the image {image} of service "{name}" is not in the local store, '
                "and its pull policy is never",
                hint=f"pull it first (rootless pull {image}), or use pull_policy: missing",
            )


def pull_steps(
    project: Project,
    services: Sequence[str],
    present: Mapping[str, LocalImage] | None = None,
    *,
    policy: str | None = None,
    now: float = 0.0,
    ignore_buildable: bool = False,
) -> list[Step]:
    """``rootless pull`` of each image a service names, by its pull policy (default:
    ``always``, as ``compose pull``; ``never`` and ``build`` skip it). A service with
    ``build:`` is pulled too, as Compose does (a failure is not fatal: it can be built),
    unless ``ignore_buildable``."""
    seen: set[str] = set()
    steps = []
    for name in services:
        s = project.service(name)
        buildable = s.build is not None
        if s.image is None or s.image in seen or (buildable and ignore_buildable):
            continue
        chosen = policy_of(project, name, policy, "always")
        if not _wants_pull(chosen, s.image, present or {}, now):
            continue
        seen.add(s.image)
        steps.append(Step(name, s.image, ("pull", s.image), optional=buildable))
    return steps


def push_steps(project: Project, services: Sequence[str]) -> list[Step]:
    """``rootless push`` of each built service that names its image (as Compose: an
    image named only ``PROJECT-SERVICE`` has nowhere to go)."""
    return [
        Step(name, s.image, ("push", s.image))
        for name in services
        if (s := project.service(name)).build is not None and s.image is not None
    ]


def rmi_images(project: Project, which: str) -> list[str]:
    """The images ``down --rmi`` removes: ``all`` those of every service, ``local`` those
    without an ``image:`` of their own (built as ``PROJECT-SERVICE``)."""
    if which not in RMI_CHOICES:
        raise ConfigError(f'invalid --rmi "{which}"', hint="use --rmi all or --rmi local")
    names = [image_name(project, s) for s in project.services if which == "all" or s.image is None]
    return list(dict.fromkeys(names))


def run_steps(steps: Sequence[Step], paths: StoragePaths, *, tls_verify: bool | None = None,
              quiet: bool = False, ignore_failures: bool = False) -> list[Step]:  # fmt: skip
    """Run each step; the first that fails stops the rest with an error naming it,
    unless the step is optional or ``ignore_failures``: the steps that failed so.
    Successful pulls are stamped (see :func:`present_images`)."""
    failed = []
    for step in steps:
        argv = list(step.argv)
        if tls_verify is not None and argv[0] in ("build", "pull", "push"):
            argv.insert(1, f"--tls-verify={str(tls_verify).lower()}")
        if quiet and argv[0] in ("build", "pull", "push"):
            argv.insert(1, "-q")
        code = _run_step(argv, step.inline, paths, _secrets_env(step))
        if code == 0:
            if argv[0] == "pull":
                _stamp_pull(step.image, paths)
            continue
        if step.optional or ignore_failures:
            failed.append(step)
            continue
        raise ImageError(
            f'cannot {argv[0]} the image {step.image} of service "{step.service}": '
            f"rootless {argv[0]} exited with code {code}",
            hint="its error is printed above",
        )
    return failed


def _secrets_env(step: Step) -> dict[str, str]:
    """The environment secrets' variables (also those from .env) for the build: the
    value goes through the child's environment, never its command line."""
    out = {}
    for secret in step.secrets:
        what = f'cannot build the image {step.image} of service "{step.service}"'
        what += f' with secret "{secret.key}"'
        out[secret.environment or ""] = secret.value_of(what).decode()
    return out


def _run_step(argv: list[str], inline: str | None, paths: StoragePaths,
              env: Mapping[str, str]) -> int:  # fmt: skip
    if inline is None:
        return _rootless(argv, paths, env)
    import tempfile

    with tempfile.NamedTemporaryFile("w", prefix="rootless-compose-", suffix=".Containerfile") as f:
        f.write(inline)
        f.flush()
        return _rootless([argv[0], "-f", f.name, *argv[1:]], paths, env)


_STAMPS = "compose-pulled.json"  # image name -> when a compose verb last pulled it


def present_images(images: Iterable[str], paths: StoragePaths) -> dict[str, LocalImage]:
    """Those of ``images`` in the local store, each with when it was last pulled by
    compose, or else stored (what ``daily``, ``weekly`` and ``every_`` go by)."""
    import json

    from rootless.engine.images import find_local, open_store

    wanted = list(dict.fromkeys(images))
    if not wanted:
        return {}
    store = open_store(paths)
    try:
        found = {name: find_local(store, name) for name in wanted}
    finally:
        store.close()
    try:
        stamps = json.loads((paths.data / _STAMPS).read_text())
    except (OSError, ValueError):
        stamps = {}
    return {
        name: LocalImage(record.id, max(record.recorded, float(stamps.get(name, 0))))
        for name, record in found.items()
        if record is not None
    }


def _stamp_pull(image: str, paths: StoragePaths) -> None:
    import json
    import time

    from rootless._atomic import atomic_write

    path = paths.data / _STAMPS
    try:
        stamps = json.loads(path.read_text())
    except (OSError, ValueError):
        stamps = {}
    stamps[image] = time.time()
    atomic_write(path, json.dumps(stamps, sort_keys=True).encode(), durable=False)


def remove_images(images: Sequence[str], paths: StoragePaths) -> list[str]:
    """``rootless rmi`` of those of ``images`` that exist; the ones removed."""
    from rootless.engine.images import find_local, open_store

    store = open_store(paths)
    try:
        present = [i for i in images if find_local(store, i) is not None]
    finally:
        store.close()
    if present and _rootless(["rmi", *present], paths) != 0:
        raise ImageError(
            f"cannot remove the images {', '.join(present)}", hint="its error is printed above"
        )
    return present


def _rootless(argv: list[str], paths: StoragePaths, more_env: Mapping[str, str] = {}) -> int:
    env = {**paths.child_env(), **more_env}
    sys.stdout.flush()
    sys.stderr.flush()
    return subprocess.run([sys.executable, "-m", "rootless", *argv], env=env).returncode
