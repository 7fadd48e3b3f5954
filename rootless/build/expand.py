"""Variable substitution in Containerfiles, with Docker's ARG and ENV scoping. Pure.

Substitution (:func:`expand_word`) follows BuildKit's shell lexer: ``$V``, ``${V}``,
``${V:-x}``, ``${V-x}``, ``${V:+x}``, ``${V+x}``, ``${V:?msg}``, ``${V?msg}``,
``${V#pat}``, ``${V##pat}``, ``${V%pat}``, ``${V%%pat}``; single quotes are literal,
double quotes allow ``$``; quotes are removed; the escape character makes the next
character literal. An unset variable expands to nothing.

Scoping (:func:`walk_stage`): an ARG before the first FROM is visible in FROM lines
only, unless the stage declares it again (``ARG NAME`` then inherits its value); an
ARG in a stage is visible after its declaration and not in later stages; ``--build-arg``
beats an ARG default; ENV always beats an ARG of the same name; ENV (not ARG) is
inherited by a stage built ``FROM`` another stage. The builder substitutes only in
ADD, COPY, ENV, EXPOSE, FROM, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR and ARG (and
the ``--chown``, ``--chmod``, ``--exclude``, ``--checksum`` and ``--mount`` values);
RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK and ONBUILD reach the shell or the image as
written.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import attrs

from rootless.build.dockerfile import (
    Add,
    Arg,
    Containerfile,
    Env,
    Expose,
    FileTransfer,
    From,
    Instruction,
    Label,
    Run,
    Stage,
    StopSignal,
    User,
    Volume,
    Workdir,
)
from rootless.errors import BuildError

#: Build args every RUN sees when given with ``--build-arg``, without an ARG line.
#: They stay out of cache keys and history, as in Docker.
PROXY_ARGS = frozenset(
    {
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "FTP_PROXY",
        "ftp_proxy",
        "NO_PROXY",
        "no_proxy",
        "ALL_PROXY",
        "all_proxy",
    }
)

_SPECIAL_PARAMS = "*#@?$!-"


# ---------------------------------------------------------------- substitution


class _Lexer:
    """One pass over one word; ``quotes`` is false for heredoc bodies (quotes literal)."""

    def __init__(self, text: str, env: Mapping[str, str], escape: str, quotes: bool) -> None:
        self.text = text
        self.env = env
        self.escape = escape
        self.quotes = quotes
        self.pos = 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def word(self, stop: str = "", raw_escapes: bool = False) -> str:
        out: list[str] = []
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if stop and ch == stop:
                self.pos += 1
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
            elif self.quotes and ch == "'":
                out.append(self.single_quoted())
            elif self.quotes and ch == '"':
                out.append(self.double_quoted())
            else:
                self.pos += 1
                if ch == self.escape:
                    nxt = self.peek()
                    if not nxt:
                        break
                    if raw_escapes or (not self.quotes and nxt not in ("$", "`", self.escape)):
                        out.append(ch)
                    ch = nxt
                    self.pos += 1
                out.append(ch)
        if stop:
            raise BuildError("syntax error: missing '}'")
        return "".join(out)

    def single_quoted(self) -> str:
        self.pos += 1
        end = self.text.find("'", self.pos)
        if end < 0:
            raise BuildError("unexpected end of text looking for the closing single quote")
        value = self.text[self.pos : end]
        self.pos = end + 1
        return value

    def double_quoted(self) -> str:
        self.pos += 1
        out: list[str] = []
        while True:
            ch = self.peek()
            if not ch:
                raise BuildError("unexpected end of text looking for the closing double quote")
            if ch == '"':
                self.pos += 1
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
                continue
            self.pos += 1
            if ch == self.escape:
                nxt = self.peek()
                if not nxt:
                    continue
                if nxt in ('"', "$", self.escape):
                    ch = nxt
                    self.pos += 1
            out.append(ch)

    def name(self) -> str:
        start = self.pos
        ch = self.peek()
        if ch.isdigit():
            while self.peek().isdigit():
                self.pos += 1
        elif ch and ch in _SPECIAL_PARAMS:
            self.pos += 1
        else:
            while self.peek() and (self.peek().isalnum() or self.peek() == "_"):
                self.pos += 1
        return self.text[start : self.pos]

    def dollar(self) -> str:
        self.pos += 1
        if self.peek() != "{":
            name = self.name()
            return self.env.get(name, "") if name else "$"
        self.pos += 1
        if not self.peek():
            raise BuildError("syntax error: missing '}'")
        if self.peek() in "{}:":
            raise BuildError("syntax error: bad substitution")
        name = self.name()
        op = self.peek()
        self.pos += 1
        if op == "}":
            return self.env.get(name, "")
        if not op:
            raise BuildError("syntax error: missing '}'")
        null_is_unset = op == ":"
        if null_is_unset:
            op = self.peek()
            self.pos += 1
            if op not in ("-", "+", "?"):
                raise BuildError(f"unsupported modifier (:{op}) in substitution")
        if op in ("#", "%") and self.peek() == op:
            op += op
            self.pos += 1
        if op not in ("-", "+", "?", "#", "##", "%", "%%"):
            raise BuildError(f"unsupported modifier ({op}) in substitution")
        word = self.word(stop="}", raw_escapes=op[0] in "#%")
        value = self.env.get(name)
        unset = value is None or (null_is_unset and value == "")
        if op == "-":
            return word if unset else str(value)
        if op == "+":
            return "" if unset else word
        if op == "?":
            if unset:
                default = (
                    "is not allowed to be empty" if value == "" else "is not allowed to be unset"
                )
                raise BuildError(f"{name}: {word or default}")
            return str(value)
        return _trim(value or "", op, word, self.escape)


def _glob_regex(pattern: str, escape: str, greedy: bool) -> str:
    star = ".*" if greedy else ".*?"
    parts: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == escape and i + 1 < len(pattern):
            i += 1
            parts.append(re.escape(pattern[i]))
        elif ch == "*":
            parts.append(star)
        elif ch == "?":
            parts.append(".")
        else:
            parts.append(re.escape(ch))
        i += 1
    return "".join(parts)


def _trim(value: str, op: str, pattern: str, escape: str) -> str:
    """``#``/``##`` strip the shortest/longest matching prefix, ``%``/``%%`` the suffix."""
    greedy = len(op) == 2
    body = _glob_regex(pattern, escape, greedy)
    if op[0] == "#":
        match = re.match(f"(?s:{body})", value)
        return value[match.end() :] if match else value
    # For a suffix, the shortest match starts as late as possible.
    starts = range(len(value) + 1) if greedy else range(len(value), -1, -1)
    for start in starts:
        if re.fullmatch(f"(?s:{body})", value[start:]):
            return value[:start]
    return value


def expand_word(word: str, env: Mapping[str, str], *, escape: str = "\\") -> str:
    """Substitute variables in ``word`` and remove its quotes, as Docker does."""
    return _Lexer(word, env, escape, quotes=True).word()


def expand_heredoc(text: str, env: Mapping[str, str], *, escape: str = "\\") -> str:
    """Substitute in a heredoc body: quotes stay, the escape char only escapes ``$ ` \\``."""
    return _Lexer(text, env, escape, quotes=False).word()


# ---------------------------------------------------------------- scope


def platform_args(target: str, build: str | None = None) -> dict[str, str]:
    """TARGETPLATFORM, TARGETOS, TARGETARCH, TARGETVARIANT and the BUILD* ones.

    ``target`` and ``build`` are ``os/arch[/variant]``; ``build`` defaults to ``target``.
    """
    args: dict[str, str] = {}
    for prefix, platform in (("TARGET", target), ("BUILD", build or target)):
        parts = platform.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise BuildError(
                f"invalid platform {platform!r}: use os/arch or os/arch/variant, like linux/amd64"
            )
        args[f"{prefix}PLATFORM"] = platform
        args[f"{prefix}OS"] = parts[0]
        args[f"{prefix}ARCH"] = parts[1]
        args[f"{prefix}VARIANT"] = parts[2] if len(parts) == 3 else ""
    return args


@attrs.frozen
class BuildScope:
    """What substitution needs across a build.

    ``globals`` holds the ARGs declared before the first FROM (value ``None`` when
    declared without default and not given); ``predefined`` the platform args.
    """

    filename: str
    escape: str
    build_args: Mapping[str, str]
    predefined: Mapping[str, str]
    globals: Mapping[str, str | None]

    def from_env(self) -> dict[str, str]:
        """The variables a FROM line sees."""
        env = dict(self.predefined)
        env.update((k, v) for k, v in self.globals.items() if v is not None)
        return env

    def proxies(self) -> tuple[tuple[str, str], ...]:
        return tuple((k, v) for k, v in self.build_args.items() if k in PROXY_ARGS)


def make_scope(
    containerfile: Containerfile,
    build_args: Mapping[str, str] | None = None,
    *,
    predefined: Mapping[str, str] | None = None,
) -> BuildScope:
    """Resolve the global ARGs of ``containerfile`` with ``build_args`` applied."""
    build_args = dict(build_args or {})
    predefined = dict(predefined or {})
    scope = BuildScope(containerfile.filename, containerfile.escape, build_args, predefined, {})
    values: dict[str, str | None] = {}
    for arg in containerfile.global_args:
        env = attrs.evolve(scope, globals=dict(values)).from_env()
        with _at(scope, arg):
            values.update(_arg_pairs(arg, env, scope, {}))
    return attrs.evolve(scope, globals=values)


def _arg_pairs(
    arg: Arg, env: Mapping[str, str], scope: BuildScope, inherited: Mapping[str, str | None]
) -> list[tuple[str, str | None]]:
    """Each ARG pair's name and value: build arg, else default, else inherited, else unset."""
    pairs: list[tuple[str, str | None]] = []
    for raw_name, default in arg.pairs:
        name = expand_word(raw_name, env, escape=scope.escape)
        value: str | None
        if name in scope.build_args:
            value = scope.build_args[name]
        elif default is not None:
            value = expand_word(default, env, escape=scope.escape)
        elif inherited.get(name) is not None:
            value = inherited[name]
        else:
            value = scope.predefined.get(name)
        pairs.append((name, value))
    return pairs


@contextlib.contextmanager
def _at(scope: BuildScope, ins: Instruction) -> Iterator[None]:
    """Give a substitution error the file and line of ``ins``."""
    try:
        yield
    except BuildError as exc:
        raise BuildError(f"{scope.filename}:{ins.line}: {exc.message}", hint=exc.hint) from None


def expand_from(stage: Stage, scope: BuildScope) -> From:
    """The stage's FROM with image and ``--platform`` substituted from the global scope."""
    env = scope.from_env()
    ins = stage.from_

    with _at(scope, ins):
        image = expand_word(ins.image, env, escape=scope.escape)
        if not image:
            raise BuildError(f"FROM {ins.image} names no image: it expands to an empty string")
        platform = ins.platform and expand_word(ins.platform, env, escape=scope.escape)
    return attrs.evolve(ins, image=image, platform=platform or None)


# ---------------------------------------------------------------- walking a stage


@attrs.frozen
class Step:
    """One instruction of a stage, substituted, with the variables in force before it.

    ``env`` is the ENV in force (base image first, in Docker's order); ``args`` the
    ARGs declared so far in this stage that have a value (what a RUN's cache key
    depends on); ``proxies`` the proxy build args, given to RUN but kept out of keys.
    """

    instruction: Instruction
    env: tuple[tuple[str, str], ...]
    args: tuple[tuple[str, str], ...]
    proxies: tuple[tuple[str, str], ...] = ()

    def run_env(self) -> tuple[str, ...]:
        """``NAME=value`` strings for a RUN: proxies, ARGs over them, ENV over both."""
        merged = dict(self.proxies)
        merged.update(self.args)
        merged.update(self.env)
        return tuple(f"{k}={v}" for k, v in merged.items())


def walk_stage(
    stage: Stage,
    scope: BuildScope,
    *,
    base_env: Sequence[str] = (),
    triggers: Sequence[Instruction] = (),
) -> Iterator[Step]:
    """Yield each instruction of ``stage`` substituted where Docker substitutes.

    ``base_env`` is the base image's (or parent stage's) ``Env`` list; ``triggers`` are
    the base image's ONBUILD instructions (see :func:`parse_instruction`), run first.
    ARG instructions come out with each name's resolved value (``None`` if unset).
    """
    env: dict[str, str] = {}
    for item in base_env:
        name, _, value = item.partition("=")
        env[name] = value
    args: dict[str, str | None] = {}
    proxies = scope.proxies()
    for ins in (*triggers, *stage.instructions):
        visible = {k: v for k, v in args.items() if v is not None}
        step = Step(ins, tuple(env.items()), tuple(visible.items()), proxies)
        visible.update(env)
        with _at(scope, ins):
            if isinstance(ins, Arg):
                pairs = _arg_pairs(ins, visible, scope, scope.globals)
                args.update(pairs)
                expanded: Instruction = attrs.evolve(ins, pairs=tuple(pairs))
            else:
                expanded = _expand(ins, visible, scope.escape)
        if isinstance(expanded, Env):
            env.update(expanded.pairs)
        yield attrs.evolve(step, instruction=expanded)


def _expand(ins: Instruction, env: Mapping[str, str], escape: str) -> Instruction:
    """``ins`` with variables substituted in the fields Docker substitutes."""

    def word(text: str) -> str:
        return expand_word(text, env, escape=escape)

    def maybe(text: str | None) -> str | None:
        return None if text is None else word(text)

    def pairs(items: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
        return tuple((word(k), word(v)) for k, v in items)

    if isinstance(ins, FileTransfer):
        heredocs = tuple(
            attrs.evolve(doc, content=expand_heredoc(doc.content, env, escape=escape))
            if doc.expand
            else doc
            for doc in ins.heredocs
        )
        fields: dict[str, Any] = {
            "sources": tuple(word(s) for s in ins.sources),
            "dest": word(ins.dest),
            "chown": maybe(ins.chown),
            "chmod": maybe(ins.chmod),
            "excludes": tuple(word(e) for e in ins.excludes),
            "heredocs": heredocs,
        }
        if isinstance(ins, Add):
            fields["checksum"] = maybe(ins.checksum)
        return attrs.evolve(ins, **fields)
    if isinstance(ins, Env | Label):
        return attrs.evolve(ins, pairs=pairs(ins.pairs))
    if isinstance(ins, Expose):
        return attrs.evolve(ins, ports=tuple(word(p) for p in ins.ports))
    if isinstance(ins, Volume):
        return attrs.evolve(ins, paths=tuple(word(p) for p in ins.paths))
    if isinstance(ins, User):
        return attrs.evolve(ins, user=word(ins.user))
    if isinstance(ins, Workdir):
        return attrs.evolve(ins, path=word(ins.path))
    if isinstance(ins, StopSignal):
        return attrs.evolve(ins, signal=word(ins.signal))
    if isinstance(ins, Run) and ins.mounts:
        mounts = tuple(
            attrs.evolve(
                m,
                target=maybe(m.target),
                source=maybe(m.source),
                options=tuple((k, word(v)) for k, v in m.options),
            )
            for m in ins.mounts
        )
        return attrs.evolve(ins, mounts=mounts)
    return ins
