"""join_held: a container joins the held user namespace only when it is the right one."""

from __future__ import annotations

import os

import pytest

from rootless._procfs import process_start_time
from rootless.engine.heldns import HOLDER_ENV, join_held
from rootless.runtime.idmap import IDMapPlan, IDRange
from rootless.runtime.spec import Linux, Namespace, Process, Root, Spec

# This test process is in the initial user namespace: its map is the identity.
IDENTITY = IDMapPlan((IDRange(0, 0, 4294967295),), (IDRange(0, 0, 4294967295),), single=False)
SUBUID = IDMapPlan((IDRange(0, 1000, 1), IDRange(1, 100000, 65536)), (IDRange(0, 1000, 1),), False)
SPEC = Spec(Process(args=("true",)), Root("/rootfs"))


@pytest.fixture
def holder_is_me(monkeypatch: pytest.MonkeyPatch) -> str:
    pid = os.getpid()
    monkeypatch.setenv(HOLDER_ENV, f"{pid}:{process_start_time(pid)}")
    return f"/proc/{pid}/ns/user"


def user_paths(spec: Spec) -> list[str | None]:
    return [n.path for n in spec.linux.namespaces if n.type == "user"]


def test_joins_a_live_holder_with_the_same_map(holder_is_me: str) -> None:
    joined = join_held(SPEC, IDENTITY)
    assert user_paths(joined) == [holder_is_me]
    others = [n for n in joined.linux.namespaces if n.type != "user"]
    assert others == [n for n in SPEC.linux.namespaces if n.type != "user"]


def test_another_map_is_not_joined(holder_is_me: str) -> None:
    assert join_held(SPEC, SUBUID) == SPEC


def test_a_reused_pid_is_not_joined(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(HOLDER_ENV, f"{os.getpid()}:1")
    assert join_held(SPEC, IDENTITY) == SPEC


@pytest.mark.parametrize("value", ["", "garbage", "999999999:1"])
def test_no_or_bad_holder_changes_nothing(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(HOLDER_ENV, value)
    assert join_held(SPEC, IDENTITY) == SPEC


def test_a_spec_that_joins_another_user_namespace_is_left_alone(holder_is_me: str) -> None:
    spec = SPEC._replace(linux=Linux(namespaces=(Namespace("user", "/proc/1/ns/user"),)))
    assert join_held(spec, IDENTITY) == spec
    host_userns = SPEC._replace(linux=Linux(namespaces=(Namespace("mount"),)))
    assert join_held(host_userns, IDENTITY) == host_userns
