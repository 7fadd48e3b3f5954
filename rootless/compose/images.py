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
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from rootless.compose.to_run import image_name
from rootless.errors import ConfigError, ImageError

if TYPE_CHECKING:
    from rootless._paths import StoragePaths
    from rootless.compose.model import Project

RMI_CHOICES = ("all", "local")


class Step(NamedTuple):
    service: str
    image: str
    argv: tuple[str, ...]  # the rootless command line, without the program


def build_steps(project: Project, services: Sequence[str], *, no_cache: bool = False,
                pull: bool = False) -> list[Step]:  # fmt: skip
    """``rootless build`` of every service in ``services`` that has ``build:``."""
    steps = []
    for name in services:
        s = project.service(name)
        if s.build is None:
            continue
        b = s.build
        argv = ["build", "-t", image_name(project, s)]
        if b.dockerfile:
            argv += ["-f", os.path.join(b.context, b.dockerfile)]  # relative to the context
        if b.target:
            argv += ["--target", b.target]
        for key, value in b.args:
            argv += ["--build-arg", key if value is None else f"{key}={value}"]
        argv += [*(["--no-cache"] if no_cache else []), *(["--pull"] if pull else [])]
        steps.append(Step(name, image_name(project, s), (*argv, b.context)))
    return steps


def missing_steps(steps: Sequence[Step], paths: StoragePaths) -> list[Step]:
    """Those of ``steps`` whose image is not in the local store (``up`` builds them)."""
    if not steps:
        return []
    from rootless.engine.images import find_local, open_store

    store = open_store(paths)
    try:
        return [step for step in steps if find_local(store, step.image) is None]
    finally:
        store.close()


def pull_steps(project: Project, services: Sequence[str]) -> list[Step]:
    """``rootless pull`` of each image a service runs without building it."""
    seen: set[str] = set()
    steps = []
    for name in services:
        s = project.service(name)
        if s.build is not None or s.image is None or s.image in seen:
            continue
        seen.add(s.image)
        steps.append(Step(name, s.image, ("pull", s.image)))
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
              quiet: bool = False) -> None:  # fmt: skip
    """Run each step; the first that fails stops the rest with an error naming it."""
    for step in steps:
        argv = list(step.argv)
        if tls_verify is not None and argv[0] in ("build", "pull", "push"):
            argv.insert(1, f"--tls-verify={str(tls_verify).lower()}")
        if quiet and argv[0] in ("build", "pull", "push"):
            argv.insert(1, "-q")
        code = _rootless(argv, paths)
        if code != 0:
            raise ImageError(
                f'cannot {argv[0]} the image {step.image} of service "{step.service}": '
                f"rootless {argv[0]} exited with code {code}",
                hint="its error is printed above",
            )


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


def _rootless(argv: list[str], paths: StoragePaths) -> int:
    env = paths.child_env()
    sys.stdout.flush()
    sys.stderr.flush()
    return subprocess.run([sys.executable, "-m", "rootless", *argv], env=env).returncode
