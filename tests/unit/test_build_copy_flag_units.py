"""COPY/ADD --parents, --exclude and --checksum, git sources, and cache mount sharing."""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

import attrs
import pytest
import trio
import trio.testing

from rootless.build.cachemounts import cache_key, lease_caches, sharing_of, try_lock
from rootless.build.context import (
    Placement,
    SourceRoot,
    copy_items,
    digest_items,
    resolve_sources,
    split_pivot,
)
from rootless.build.dockerfile import parse, parse_mount
from rootless.build.executor import _checksum_of
from rootless.build.expand import make_scope, walk_stage
from rootless.build.ignore import IgnoreMatcher
from rootless.build.remote import (
    git_unsupported,
    is_git_url,
    parse_checksum,
    verify_checksum,
)
from rootless.cli.build import _not_a_directory
from rootless.errors import BuildError

ME = Placement((os.getuid(), os.getgid()))


@pytest.fixture
def context(tmp_path: Path) -> SourceRoot:
    ctx = tmp_path / "ctx"
    for rel, text in {
        "apps/web/package.json": "web\n",
        "apps/web/src/main.js": "main\n",
        "apps/web/README.md": "readme\n",
        "apps/api/package.json": "api\n",
        "libs/util/package.json": "util\n",
        "top.txt": "top\n",
        "notes.md": "notes\n",
        "ignored.log": "log\n",
    }.items():
        (ctx / rel).parent.mkdir(parents=True, exist_ok=True)
        (ctx / rel).write_text(text)
    return SourceRoot(ctx, IgnoreMatcher.from_text("*.log\n"))


def files_under(root: Path) -> list[str]:
    return sorted(
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() or p.is_symlink()
    )


# -- parsing ---------------------------------------------------------------------------


def test_flags_parse_and_substitute():
    cf = parse(
        "FROM scratch\n"
        "ARG EXT=md SUM\n"
        "COPY --parents --exclude=*.$EXT --exclude=tmp/ apps/*/package.json /app/\n"
        "ADD --checksum=sha256:${SUM} --exclude=x f /f\n"
    )
    steps = list(walk_stage(cf.stages[0], make_scope(cf, {"SUM": "ab" * 32}), base_env=()))
    copy, add = steps[1].instruction, steps[2].instruction
    assert copy.parents and copy.excludes == ("*.md", "tmp/")
    assert add.checksum == "sha256:" + "ab" * 32 and add.excludes == ("x",)


def test_pivot_splits_the_kept_part():
    assert split_pivot("apps/*/package.json") == ("", "apps/*/package.json")
    assert split_pivot("./apps/./web/*.json") == ("apps", "./apps/web/*.json")
    assert split_pivot("a/b/./c") == ("a/b", "a/b/c")
    assert split_pivot("./x") == ("", "./x")


# -- --parents ---------------------------------------------------------------------------


def test_parents_keeps_paths_below_the_context(context, tmp_path):
    root = tmp_path / "rootfs"
    root.mkdir()
    items = resolve_sources(
        context, ["apps/*/package.json", "libs/util/package.json", "top.txt"], parents=True
    )
    assert [i.name for i in items] == [
        "apps/api/package.json",
        "apps/web/package.json",
        "libs/util/package.json",
        "top.txt",
    ]
    copy_items(context, items, str(root), "/app/", ME, parents=True)
    assert files_under(root / "app") == [
        "apps/api/package.json",
        "apps/web/package.json",
        "libs/util/package.json",
        "top.txt",
    ]
    # A directory keeps its own path too (without --parents its contents go to /app).
    copy_items(
        context,
        resolve_sources(context, ["apps/web/src"], parents=True),
        str(root),
        "/d/",
        ME,
        parents=True,
    )
    assert files_under(root / "d") == ["apps/web/src/main.js"]


def test_parents_pivot_keeps_only_what_follows_it(context, tmp_path):
    root = tmp_path / "rootfs"
    root.mkdir()
    items = resolve_sources(context, ["apps/./*/package.json"], parents=True)
    copy_items(context, items, str(root), "/p/", ME, parents=True)
    assert files_under(root / "p") == ["api/package.json", "web/package.json"]
    with pytest.raises(BuildError, match="climbs above"):
        resolve_sources(context, ["apps/./../top.txt"], parents=True)


def test_parents_changes_the_digest(context):
    plain = digest_items(context, resolve_sources(context, ["apps/web/package.json"]))
    kept = digest_items(context, resolve_sources(context, ["apps/web/package.json"], parents=True))
    assert plain != kept


# -- --exclude ---------------------------------------------------------------------------


def test_exclude_leaves_out_matches_below_the_root_and_below_a_copied_dir(context, tmp_path):
    excluding = attrs.evolve(context, excludes=IgnoreMatcher.from_lines(["*.md", "src"]))
    root = tmp_path / "rootfs"
    root.mkdir()
    # A glob at the top: notes.md matches "*.md" relative to the context.
    top = resolve_sources(excluding, ["*"])
    assert "notes.md" not in [i.rel for i in top] and "top.txt" in [i.rel for i in top]
    # Below a copied directory, patterns match the path below it too.
    copy_items(excluding, resolve_sources(excluding, ["apps/web"]), str(root), "/w", ME)
    assert files_under(root / "w") == ["package.json"]
    # The ignore file still applies, and an excluded file changes no digest.
    assert "ignored.log" not in [i.rel for i in top]
    items = resolve_sources(excluding, ["apps/web"])
    before = digest_items(excluding, items)
    (context.path / "apps/web/README.md").write_text("changed\n")
    assert digest_items(excluding, items) == before
    assert digest_items(context, resolve_sources(context, ["apps/web"])) != before


def test_exclude_with_negation_and_double_star(context, tmp_path):
    excluding = attrs.evolve(
        context, excludes=IgnoreMatcher.from_lines(["**/package.json", "!apps/api/package.json"])
    )
    root = tmp_path / "rootfs"
    root.mkdir()
    copy_items(excluding, resolve_sources(excluding, ["apps"]), str(root), "/a", ME)
    assert files_under(root / "a") == ["api/package.json", "web/README.md", "web/src/main.js"]


def test_excluding_a_named_source_copies_nothing_but_a_missing_one_fails(context):
    excluding = attrs.evolve(context, excludes=IgnoreMatcher.from_lines(["top.txt"]))
    assert resolve_sources(excluding, ["top.txt"]) == []
    with pytest.raises(BuildError, match="not in the build context"):
        resolve_sources(excluding, ["absent.txt"])


# -- --checksum ----------------------------------------------------------------------------


def test_parse_checksum():
    digest = hashlib.sha256(b"x").hexdigest()
    assert parse_checksum(f"sha256:{digest.upper()}") == ("sha256", digest)
    assert parse_checksum("sha512:" + "0" * 128) == ("sha512", "0" * 128)
    for bad in ("sha256:abc", "md5:" + "0" * 32, "0" * 64, "sha256:" + "g" * 64):
        with pytest.raises(BuildError, match="invalid --checksum"):
            parse_checksum(bad)


def test_verify_checksum_names_the_source_and_both_digests(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"content\n")
    good = hashlib.sha256(b"content\n").hexdigest()
    verify_checksum(str(f), ("sha256", good), source="f")
    with pytest.raises(BuildError) as info:
        verify_checksum(str(f), ("sha256", "0" * 64), source="data/f")
    message = info.value.message
    assert "data/f" in message and f"sha256:{'0' * 64}" in message and good in message


def test_checksum_needs_one_url_or_context_file():
    def add(line: str):
        return parse(f"FROM scratch\n{line}\n").stages[0].instructions[0]

    good = "sha256:" + "a" * 64
    assert _checksum_of(add(f"ADD --checksum={good} f /f")) == ("sha256", "a" * 64)
    assert _checksum_of(add("ADD f /f")) is None
    for line in (f"ADD --checksum={good} a b /d/", f"ADD --checksum={good} --from=s f /f"):
        with pytest.raises(BuildError, match="exactly one source"):
            _checksum_of(add(line))


# -- git -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "https://github.com/a/b.git",
        "https://example.com/r.git#main:sub",
        "git://example.com/r",
        "git@github.com:a/b.git",
        "github.com/a/b",
    ],
)
def test_git_urls_are_recognised(text):
    assert is_git_url(text)


@pytest.mark.parametrize("text", ["https://example.com/a.tar.gz", "dir.git", "./github.com"])
def test_other_sources_are_not_git(text):
    assert not is_git_url(text)


def test_git_context_and_url_context_errors_name_the_fix():
    with pytest.raises(BuildError) as info:
        _not_a_directory("https://github.com/a/b.git#v1")
    assert "git sources are not supported" in info.value.message
    assert "git clone --branch v1 https://github.com/a/b.git DIR" in (info.value.hint or "")
    with pytest.raises(BuildError) as info:
        _not_a_directory("https://example.com/ctx.tar.gz")
    assert "rootless build -" in (info.value.hint or "")
    with pytest.raises(BuildError, match="is not a directory"):
        _not_a_directory("no-such-dir")
    assert "COPY DIR" in (git_unsupported("git@h:a/b.git", what="an ADD source").hint or "")


# -- cache sharing ---------------------------------------------------------------------------


def cache(spec: str):
    # Owned by the test's user: only root may give a new directory to someone else.
    return parse_mount(f"type=cache,{spec},uid={os.getuid()},gid={os.getgid()}")


def test_sharing_modes_are_checked():
    assert sharing_of(cache("target=/c")) == "shared"
    assert sharing_of(cache("target=/c,sharing=locked")) == "locked"
    with pytest.raises(BuildError, match="sharing=shared, private or locked"):
        sharing_of(cache("target=/c,sharing=exclusive"))
    with pytest.raises(BuildError, match="needs from="):
        sharing_of(cache("target=/c,source=/x"))


def no_view(ref: str):
    raise AssertionError(f"no view expected, asked for {ref}")


def lease(root: Path, spec: str):
    m = cache(spec)
    return lease_caches([m], [m.target], root, no_view), cache_key(m, m.target)


async def test_locked_waits_for_the_holder_and_private_takes_a_fresh_dir(tmp_path):
    root = tmp_path / "caches"
    events: list[str] = []
    release = trio.Event()
    dirs: dict[str, Path] = {}

    async def user(name: str, sharing: str, until: trio.Event | None = None) -> None:
        cm, key = lease(root, f"target=/c,id=x,sharing={sharing}")
        async with cm as caches:
            dirs[name] = caches[key]
            events.append(f"{name} in")
            if until is not None:
                await until.wait()
            events.append(f"{name} out")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(user, "first", "locked", release)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(user, "second", "locked")
        await trio.sleep(0.3)  # the second polls for the lock meanwhile
        assert events == ["first in"]
        await user("private", "private")  # does not wait: a directory of its own
        assert dirs["private"] != dirs["first"]
        release.set()
    assert events == [
        "first in",
        "private in",
        "private out",
        "first out",
        "second in",
        "second out",
    ]
    assert dirs["second"] == dirs["first"]


async def test_private_reuses_the_dir_when_free_and_shared_users_share(tmp_path):
    root = tmp_path / "caches"
    a, key = lease(root, "target=/c,id=y")
    b, _ = lease(root, "target=/c,id=y,sharing=shared")
    async with a as one, b as two:
        assert one[key] == two[key]
        p, _ = lease(root, "target=/c,id=y,sharing=private")
        async with p as three:
            assert three[key] != one[key]
    p, _ = lease(root, "target=/c,id=y,sharing=private")
    async with p as four:
        assert four[key] == one[key]


def test_lock_is_released_when_closed(tmp_path):
    fd = try_lock(tmp_path / "l", exclusive=True)
    assert fd is not None
    assert try_lock(tmp_path / "l", exclusive=False) is None
    os.close(fd)
    again = try_lock(tmp_path / "l", exclusive=False)
    assert again is not None
    os.close(again)


async def test_cache_from_seeds_a_new_dir_only(tmp_path):
    seed = tmp_path / "stage"
    (seed / "deps").mkdir(parents=True)
    (seed / "deps" / "lib.txt").write_text("seeded\n")
    (seed / "deps" / "link").symlink_to("lib.txt")

    @contextlib.contextmanager
    def view(ref: str):
        assert ref == "build"
        yield seed

    m = cache("target=/c,from=build,source=/deps,mode=0700")
    async with lease_caches([m], [m.target], tmp_path / "caches", view) as caches:
        path = caches[cache_key(m, m.target)]
        assert (path / "lib.txt").read_text() == "seeded\n"
        assert os.readlink(path / "link") == "lib.txt"
        assert path.stat().st_mode & 0o777 == 0o700
        (path / "lib.txt").write_text("used\n")
    async with lease_caches([m], [m.target], tmp_path / "caches", view) as caches:
        assert (caches[cache_key(m, m.target)] / "lib.txt").read_text() == "used\n"
