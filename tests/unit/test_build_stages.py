"""Stage planning: target selection, skipped stages, dependencies, levels."""

from __future__ import annotations

import pytest

from rootless.build.dockerfile import parse
from rootless.build.stages import plan_build, target_index
from rootless.errors import BuildError

MULTI = """\
ARG BASE=debian:12
FROM ${BASE} AS deps
RUN fetch
FROM deps AS build
RUN make
FROM busybox AS docs
RUN mkdocs
FROM golang:1 AS tool
RUN go build
FROM scratch AS final
COPY --from=build /out /app
COPY --from=3 /tool /bin/tool
RUN --mount=type=bind,from=docs,target=/d true
COPY --from=alpine:3 /etc/os-release /
"""


def test_plan_for_last_stage() -> None:
    plan = plan_build(parse(MULTI))
    assert plan.target == 4
    assert [s.index for s in plan.stages] == [0, 1, 2, 3, 4]
    final = plan.stage(4)
    assert final.deps == (1, 2, 3) and final.images == ("alpine:3",) and final.is_scratch
    assert plan.stage(1).base_stage == 0 and plan.stage(1).base == "deps"
    assert plan.stage(0).base == "debian:12" and plan.stage(0).base_stage is None
    assert plan.levels == ((0, 2, 3), (1,), (4,))
    assert plan.order == (0, 2, 3, 1, 4)


def test_target_skips_unneeded_stages() -> None:
    plan = plan_build(parse(MULTI), target="BUILD")
    assert [s.index for s in plan.stages] == [0, 1]
    assert plan.levels == ((0,), (1,))


def test_from_substitution_can_name_a_stage() -> None:
    cf = parse("ARG SRC=one\nFROM busybox AS one\nFROM busybox AS two\nFROM ${SRC}\n")
    assert plan_build(cf).stage(2).base_stage == 0
    plan = plan_build(cf, build_args={"SRC": "two"})
    assert plan.stage(2).base_stage == 1
    assert [s.index for s in plan.stages] == [1, 2]


def test_from_later_stage_name_is_an_image() -> None:
    cf = parse("FROM later AS first\nFROM busybox AS later\n")
    plan = plan_build(cf, target="first")
    assert [s.index for s in plan.stages] == [0]
    assert plan.stage(0).base_stage is None and plan.stage(0).base == "later"


def test_unknown_target() -> None:
    with pytest.raises(BuildError) as info:
        target_index(parse("FROM a AS x\nFROM b AS y\n"), "z")
    assert info.value.message == "target stage 'z' is not in Containerfile (stages: x, y)"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("FROM a\nCOPY --from=5 x y\n", "Containerfile:2: --from=5: there is no stage 5"),
        (
            "FROM a AS me\nCOPY --from=me x y\n",
            "Containerfile:2: --from=me: a stage cannot copy from itself",
        ),
        (
            "FROM a\nCOPY --from=Builder x y\n",
            "Containerfile:2: --from=Builder: no stage has that name and it is not an image "
            "reference",
        ),
        (
            "FROM a AS x\nCOPY --from=y f g\nFROM b AS y\nCOPY --from=x f g\n",
            "Containerfile:1: circular dependency between stages",
        ),
    ],
)
def test_plan_errors(text: str, message: str) -> None:
    with pytest.raises(BuildError) as info:
        plan_build(parse(text), target="y" if "AS y" in text else None)
    assert info.value.message.startswith(message)


def test_unused_build_args_ignore_predefined_and_declared() -> None:
    cf = parse(
        "ARG G\nFROM a AS x\nARG USED\nFROM b AS skipped\nARG ONLY_SKIPPED\n"
        "FROM c\nCOPY --from=x a b\n"
    )
    plan = plan_build(
        cf,
        build_args={"G": "1", "USED": "1", "ONLY_SKIPPED": "1", "HTTP_PROXY": "p", "TYPO": "1"},
        predefined={"TARGETARCH": "amd64"},
    )
    assert plan.unused_build_args == ("ONLY_SKIPPED", "TYPO")
