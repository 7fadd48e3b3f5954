""".containerignore/.dockerignore rules and the context walk."""

from __future__ import annotations

from pathlib import Path

import pytest

from rootless.build.ignore import IgnoreMatcher, find_ignore_file, load_ignore, walk_context
from rootless.errors import BuildError


def matcher(*lines: str) -> IgnoreMatcher:
    return IgnoreMatcher.from_lines(lines)


@pytest.mark.parametrize(
    ("patterns", "path", "ignored"),
    [
        (["*.md"], "README.md", True),
        (["*.md"], "docs/README.md", False),
        (["*/*.md"], "docs/README.md", True),
        (["**/*.md"], "a/b/c.md", True),
        (["**/*.md"], "c.md", True),
        (["a/**/z"], "a/z", True),
        (["a/**/z"], "a/b/c/z", True),
        (["a/**"], "a/b/c", True),
        (["a/**"], "a", False),
        (["node_modules"], "node_modules/x/y.js", True),
        (["/build"], "build", True),
        (["./tmp/../build"], "build/out", True),
        (["te?t"], "test", True),
        (["te?t"], "te/t", False),
        (["[a-c]x"], "bx", True),
        (["[a-c]x"], "dx", False),
        (["[^a]x"], "ax", False),
        (["a\\*b"], "a*b", True),
        (["a\\*b"], "axb", False),
        (["file(1).txt"], "file(1).txt", True),
        (["*", "!keep"], "keep", False),
        (["*", "!keep"], "other", True),
        (["!keep", "*"], "keep", True),
        (["dir", "!dir/keep"], "dir/keep/sub/f", False),
        (["dir", "!dir/keep"], "dir/other", True),
        (["*.log", "!important.log", "important.log"], "important.log", True),
        (["# comment"], "# comment", False),
        ([" spaced "], "spaced", True),
        (["*"], "./a/../b", True),
    ],
)
def test_is_ignored(patterns: list[str], path: str, ignored: bool) -> None:
    assert matcher(*patterns).is_ignored(path) is ignored


def test_from_text_skips_comments_blank_lines_and_bom() -> None:
    m = IgnoreMatcher.from_text("\ufeff# comment\n\n*.tmp\n!keep.tmp\n")
    assert [(p.text, p.exclusion) for p in m.patterns] == [("*.tmp", False), ("keep.tmp", True)]
    assert m.has_exceptions


def test_invalid_pattern() -> None:
    with pytest.raises(BuildError, match=r"invalid ignore pattern '\[x'"):
        matcher("[x")


def test_may_include_below() -> None:
    m = matcher("vendor", "!vendor/keep/**", "!*/docs")
    assert m.may_include_below("vendor")
    assert m.may_include_below("other")  # "*/docs" could match other/docs
    assert not matcher("vendor", "!src/x").may_include_below("vendor")
    assert not matcher("vendor", "!vendor").may_include_below("vendor")
    assert matcher("vendor", "!**/keep").may_include_below("vendor")


def make_tree(root: Path, files: list[str]) -> None:
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name)


def test_walk_context_skips_excluded_dirs_and_keeps_exceptions(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        ["a.txt", "b.log", "keep.log", "dir/x", "dir/keep/y", "node_modules/m/i.js", "src/main.c"],
    )
    (tmp_path / "link").symlink_to("/etc")
    m = matcher("*.log", "!keep.log", "dir", "!dir/keep", "node_modules")
    assert list(walk_context(tmp_path, m)) == [
        "a.txt",
        "dir/keep",
        "dir/keep/y",
        "keep.log",
        "link",
        "src",
        "src/main.c",
    ]


def test_walk_context_does_not_enter_dirs_without_possible_exceptions(tmp_path: Path) -> None:
    make_tree(tmp_path, ["big/f", "big/sub/g", "ok"])
    asked: list[str] = []

    class Recording(IgnoreMatcher):
        def is_ignored(self, path: str) -> bool:
            asked.append(path)
            return super().is_ignored(path)

    patterns = matcher("big", "!ok").patterns
    assert list(walk_context(tmp_path, Recording(patterns))) == ["ok"]
    assert asked == ["big", "ok"]
    asked.clear()
    with_exception = matcher("big", "!big/sub").patterns
    assert list(walk_context(tmp_path, Recording(with_exception))) == ["big/sub", "big/sub/g", "ok"]
    assert "big/f" in asked


def test_containerignore_is_preferred(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_text("a\n")
    assert find_ignore_file(tmp_path) == tmp_path / ".dockerignore"
    (tmp_path / ".containerignore").write_text("b\n")
    assert find_ignore_file(tmp_path) == tmp_path / ".containerignore"
    m = load_ignore(tmp_path)
    assert m.is_ignored("b") and not m.is_ignored("a")
    cf = tmp_path / "app.Containerfile"
    (tmp_path / "app.Containerfile.dockerignore").write_text("c\n")
    assert find_ignore_file(tmp_path, cf) == tmp_path / "app.Containerfile.dockerignore"


def test_no_ignore_file(tmp_path: Path) -> None:
    assert find_ignore_file(tmp_path) is None
    assert load_ignore(tmp_path).patterns == ()
