"""Which stages a build target needs, what each depends on, and what may run at once. Pure.

A stage depends on another stage when its FROM names it (an earlier stage, after
global ARG substitution), when ``COPY --from`` or ``ADD --from`` names it or gives
its index, or when ``RUN --mount=from=`` does. A ``--from`` value that names no
stage is an image reference (``COPY --from=busybox:1.36 ...``), as in Docker.
``--from`` values are taken literally: Docker does not substitute variables in them.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from rootless.build.dockerfile import Arg, Containerfile, FileTransfer, Run, Stage
from rootless.build.expand import PROXY_ARGS, BuildScope, expand_from, make_scope
from rootless.errors import BuildError, ImageError
from rootless.image.reference import parse_reference

SCRATCH = "scratch"


@attrs.frozen
class StagePlan:
    """One stage the target needs.

    ``base`` is the substituted FROM image (or the parent stage's name);
    ``base_stage`` the parent stage's index when FROM names a stage; ``deps`` every
    stage index this stage needs first; ``images`` the images it reads with
    ``--from`` (not stages).
    """

    index: int
    name: str | None
    base: str
    platform: str | None
    base_stage: int | None
    deps: tuple[int, ...]
    images: tuple[str, ...]

    @property
    def is_scratch(self) -> bool:
        return self.base_stage is None and self.base.lower() == SCRATCH


@attrs.frozen
class BuildPlan:
    """The stages to build for a target, in file order, and their concurrency levels.

    Each level lists stage indices whose dependencies are all in earlier levels, so
    one level's stages can build at the same time; ``order`` is the levels flattened.
    """

    target: int
    stages: tuple[StagePlan, ...]
    levels: tuple[tuple[int, ...], ...]
    scope: BuildScope
    unused_build_args: tuple[str, ...]

    @property
    def order(self) -> tuple[int, ...]:
        return tuple(i for level in self.levels for i in level)

    def stage(self, index: int) -> StagePlan:
        for plan in self.stages:
            if plan.index == index:
                return plan
        raise KeyError(index)


def target_index(containerfile: Containerfile, target: str | None) -> int:
    """The index of stage ``target`` (by name, any case); the last stage if ``None``."""
    if target is None:
        return len(containerfile.stages) - 1
    stage = containerfile.stage_by_name(target)
    if stage is None:
        names = [s.name for s in containerfile.stages if s.name is not None]
        known = ", ".join(names) if names else "none; name one with FROM IMAGE AS NAME"
        raise BuildError(
            f"target stage {target!r} is not in {containerfile.filename} (stages: {known})"
        )
    return stage.index


def _stage_ref(containerfile: Containerfile, ref: str, user: Stage, line: int) -> int | None:
    """The stage index ``--from=ref`` names, or ``None`` when it is an image."""
    where = f"{containerfile.filename}:{line}"
    if ref.isdigit():
        index = int(ref)
        if index >= len(containerfile.stages):
            raise BuildError(
                f"{where}: --from={ref}: there is no stage {index} "
                f"(stages are numbered 0 to {len(containerfile.stages) - 1})"
            )
    else:
        stage = containerfile.stage_by_name(ref)
        if stage is None:
            try:
                parse_reference(ref)
            except ImageError as exc:
                raise BuildError(
                    f"{where}: --from={ref}: no stage has that name and it is not an image "
                    f"reference ({exc.message})"
                ) from None
            return None
        index = stage.index
    if index == user.index:
        raise BuildError(f"{where}: --from={ref}: a stage cannot copy from itself")
    return index


def _direct_deps(
    containerfile: Containerfile, stage: Stage, scope: BuildScope
) -> tuple[StagePlan, list[str]]:
    """Plan one stage; also return the ARG names it declares."""
    resolved = expand_from(stage, scope)
    base_stage = None
    parent = containerfile.stage_by_name(resolved.image)
    if parent is not None and parent.index < stage.index:
        base_stage = parent.index
    deps: set[int] = set() if base_stage is None else {base_stage}
    images: list[str] = []
    declared: list[str] = []
    for ins in stage.instructions:
        refs: list[str] = []
        if isinstance(ins, FileTransfer) and ins.from_ is not None:
            refs.append(ins.from_)
        elif isinstance(ins, Run):
            refs += [m.from_ for m in ins.mounts if m.from_ is not None]
        elif isinstance(ins, Arg):
            declared += [name for name, _ in ins.pairs]
        for ref in refs:
            index = _stage_ref(containerfile, ref, stage, ins.line)
            if index is None:
                if ref not in images:
                    images.append(ref)
            else:
                deps.add(index)
    plan = StagePlan(
        index=stage.index,
        name=stage.name,
        base=resolved.image,
        platform=resolved.platform,
        base_stage=base_stage,
        deps=tuple(sorted(deps)),
        images=tuple(images),
    )
    return plan, declared


def plan_build(
    containerfile: Containerfile,
    *,
    target: str | None = None,
    build_args: Mapping[str, str] | None = None,
    predefined: Mapping[str, str] | None = None,
) -> BuildPlan:
    """Plan a build of ``target``: the needed stages, their deps and levels.

    Stages the target does not need (directly or through others) are left out.
    Raises :class:`BuildError` for an unknown target, a bad ``--from`` or a cycle.
    """
    scope = make_scope(containerfile, build_args, predefined=predefined)
    goal = target_index(containerfile, target)
    plans: dict[int, StagePlan] = {}
    declared = {name for arg in containerfile.global_args for name, _ in arg.pairs}
    pending = [goal]
    while pending:
        index = pending.pop()
        if index in plans:
            continue
        plan, names = _direct_deps(containerfile, containerfile.stages[index], scope)
        plans[index] = plan
        declared.update(names)
        pending += [d for d in plan.deps if d not in plans]
    levels = _levels(containerfile, plans)
    unused = sorted(
        name
        for name in scope.build_args
        if name not in declared and name not in PROXY_ARGS and name not in scope.predefined
    )
    return BuildPlan(
        target=goal,
        stages=tuple(plans[i] for i in sorted(plans)),
        levels=levels,
        scope=scope,
        unused_build_args=tuple(unused),
    )


def _levels(
    containerfile: Containerfile, plans: Mapping[int, StagePlan]
) -> tuple[tuple[int, ...], ...]:
    done: set[int] = set()
    levels: list[tuple[int, ...]] = []
    remaining = set(plans)
    while remaining:
        ready = tuple(sorted(i for i in remaining if done.issuperset(plans[i].deps)))
        if not ready:
            stuck = containerfile.stages[min(remaining)]
            raise BuildError(
                f"{containerfile.filename}:{stuck.from_.line}: circular dependency between "
                f"stages: stage {stuck.label} needs a stage that needs it"
            )
        levels.append(ready)
        done.update(ready)
        remaining.difference_update(ready)
    return tuple(levels)
