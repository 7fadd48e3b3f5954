""".containerignore / .dockerignore: Docker's pattern rules, compiled once.

A pattern is a Go ``filepath.Match`` pattern (``*``, ``?``, ``[...]``, ``\\`` escapes)
plus ``**`` for any number of directories. Patterns are cleaned (``./a/../b`` is
``b``) and a leading ``/`` is dropped, so every pattern is relative to the context.
A pattern that matches a directory matches everything below it. ``!pattern``
re-includes what an earlier pattern excluded; the last pattern that matches wins.
Lines starting with ``#`` are comments; blank lines are skipped.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import attrs

from rootless.errors import BuildError

IGNORE_FILES = (".containerignore", ".dockerignore")
_REGEX_SPECIAL = ".+()|{}$"


@attrs.frozen
class IgnorePattern:
    text: str
    exclusion: bool
    regex: re.Pattern[str] = attrs.field(eq=False, repr=False)


def _translate(pattern: str) -> str:
    """Regex source for a whole-path match of one cleaned pattern."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if i + 1 < n and pattern[i + 1] == "*":
                i += 2
                if i < n and pattern[i] == "/":
                    i += 1
                # "**" at the end matches everything; elsewhere any number of dirs.
                out.append(".*" if i >= n else "(?:.*/)?")
                continue
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\":
            i += 1
            out.append(re.escape(pattern[i]) if i < n else re.escape("\\"))
        elif ch in _REGEX_SPECIAL:
            out.append("\\" + ch)
        else:
            # Character classes ("[a-z]", "[^a]") pass through as in Docker.
            out.append(ch)
        i += 1
    return "".join(out)


def compile_pattern(line: str) -> IgnorePattern | None:
    """One ignore-file line as a pattern, ``None`` for comments and blank lines."""
    if line.startswith("#"):
        return None
    text = line.strip()
    if not text:
        return None
    exclusion = text.startswith("!")
    if exclusion:
        text = text[1:].strip()
    if text:
        text = posixpath.normpath(text)
        if len(text) > 1 and text.startswith("/"):
            text = text.lstrip("/")
    try:
        regex = re.compile(f"(?s:{_translate(text)})\\Z")
    except re.error as exc:
        raise BuildError(f"invalid ignore pattern {line.strip()!r}: {exc}") from None
    return IgnorePattern(text, exclusion, regex)


def _clean(path: str) -> str:
    path = posixpath.normpath(path.replace(os.sep, "/")).lstrip("/")
    return "." if path in ("", ".") else path


@attrs.frozen
class IgnoreMatcher:
    """The compiled patterns of one ignore file."""

    patterns: tuple[IgnorePattern, ...] = ()

    @classmethod
    def from_lines(cls, lines: Iterable[str]) -> IgnoreMatcher:
        compiled = (compile_pattern(line) for line in lines)
        return cls(tuple(p for p in compiled if p is not None))

    @classmethod
    def from_text(cls, text: str) -> IgnoreMatcher:
        return cls.from_lines(text.removeprefix("\ufeff").splitlines())

    @property
    def has_exceptions(self) -> bool:
        return any(p.exclusion for p in self.patterns)

    def is_ignored(self, path: str, *also: str) -> bool:
        """True when ``path`` (relative to the context) is left out of the build. A
        pattern matches when it matches ``path`` or one of the ``also`` paths (the same
        entry named from elsewhere, as ``COPY --exclude`` names it below a source)."""
        candidates: list[str] = []
        for one in (path, *also):
            parts = _clean(one).split("/")
            candidates += ["/".join(parts[: i + 1]) for i in range(len(parts))]
        ignored = False
        for pattern in self.patterns:
            # Only a pattern that could flip the current answer needs testing.
            if pattern.exclusion != ignored:
                continue
            if any(pattern.regex.match(c) for c in candidates):
                ignored = not pattern.exclusion
        return ignored

    def may_include_below(self, directory: str) -> bool:
        """Whether an exception could re-include something inside ``directory``."""
        parts = _clean(directory).split("/")
        for pattern in self.patterns:
            if pattern.exclusion and _could_match_below(pattern.text, parts):
                return True
        return False


def _could_match_below(pattern: str, parts: list[str]) -> bool:
    """Could ``pattern`` match a path (or a parent) strictly inside ``parts``?"""
    components = pattern.split("/")
    for i, component in enumerate(components):
        if "**" in component:
            return True
        if i == len(parts):
            return True
        if not re.fullmatch(_translate(component), parts[i]):
            return False
    return False


def find_ignore_file(context: Path, containerfile: Path | None = None) -> Path | None:
    """The ignore file that applies: ``<containerfile>.containerignore`` or
    ``<containerfile>.dockerignore`` beside the Containerfile first, then
    ``.containerignore`` before ``.dockerignore`` in the context."""
    candidates: list[Path] = []
    if containerfile is not None:
        candidates += [containerfile.with_name(containerfile.name + n) for n in IGNORE_FILES]
    candidates += [context / name for name in IGNORE_FILES]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return None


def load_ignore(context: Path, containerfile: Path | None = None) -> IgnoreMatcher:
    """Read the ignore file that applies to ``context`` (no file: nothing ignored)."""
    path = find_ignore_file(context, containerfile)
    if path is None:
        return IgnoreMatcher()
    return IgnoreMatcher.from_text(path.read_text(encoding="utf-8", errors="surrogateescape"))


def walk_context(context: Path, matcher: IgnoreMatcher) -> Iterator[str]:
    """Yield the relative paths (``a/b``) of everything the build may use, sorted.

    Directories come before their contents; symlinks are not followed; an ignored
    directory is not entered unless an exception could re-include something in it.
    """
    return _walk(str(context), "", matcher)


def _walk(directory: str, rel_dir: str, matcher: IgnoreMatcher) -> Iterator[str]:
    with os.scandir(directory) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
        is_dir = entry.is_dir(follow_symlinks=False)
        if not matcher.is_ignored(rel):
            yield rel
            if is_dir:
                yield from _walk(entry.path, rel, matcher)
        elif is_dir and matcher.may_include_below(rel):
            yield from _walk(entry.path, rel, matcher)
