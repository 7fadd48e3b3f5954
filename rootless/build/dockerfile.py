"""Containerfile (Dockerfile) parser: text in, a frozen attrs model out. Pure.

The rules follow BuildKit's Dockerfile frontend: parser directives only at the top,
comments only at the start of a line, the escape character continues a line (empty
and comment lines inside a continuation are skipped), heredocs on RUN, COPY and ADD,
flags (``--name[=value]``) before the arguments, JSON (exec) or plain forms.
Variables are *not* substituted here; :mod:`rootless.build.expand` does that with
Docker's ARG/ENV scoping, so the model keeps every argument as written.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, NoReturn, TypeVar

import attrs

from rootless.errors import BuildError

DEFAULT_FILENAME = "Containerfile"

# ---------------------------------------------------------------- model


@attrs.frozen
class Heredoc:
    """The body of ``<<NAME`` (or ``<<-NAME``, ``<<"NAME"``) attached to its instruction.

    ``expand`` is false when the delimiter was quoted; ``chomp`` (``<<-``) means leading
    tabs were already stripped from every line of ``content``.
    """

    name: str
    content: str
    expand: bool = True
    chomp: bool = False


@attrs.frozen
class Command:
    """A command as written: exec form (an argv) or shell form (one script string)."""

    args: tuple[str, ...]
    exec_form: bool

    @property
    def script(self) -> str:
        """The shell form's text (the argv joined by spaces for the exec form)."""
        return " ".join(self.args)


@attrs.frozen
class Mount:
    """One ``RUN --mount=...`` spec; keys not modelled here stay in ``options``."""

    type: str
    target: str | None = None
    source: str | None = None
    from_: str | None = None
    readonly: bool = False
    options: tuple[tuple[str, str], ...] = ()

    def option(self, key: str) -> str | None:
        for name, value in self.options:
            if name == key:
                return value
        return None


@attrs.frozen(kw_only=True)
class Instruction:
    """Fields every instruction has: where it is and how it was written."""

    keyword: ClassVar[str] = ""
    line: int
    end_line: int
    text: str


@attrs.frozen(kw_only=True)
class From(Instruction):
    keyword: ClassVar[str] = "FROM"
    image: str
    name: str | None = None
    platform: str | None = None


@attrs.frozen(kw_only=True)
class Run(Instruction):
    keyword: ClassVar[str] = "RUN"
    command: Command
    mounts: tuple[Mount, ...] = ()
    network: str | None = None
    security: str | None = None
    devices: tuple[str, ...] = ()
    heredocs: tuple[Heredoc, ...] = ()


@attrs.frozen(kw_only=True)
class Cmd(Instruction):
    keyword: ClassVar[str] = "CMD"
    command: Command


@attrs.frozen(kw_only=True)
class Entrypoint(Instruction):
    keyword: ClassVar[str] = "ENTRYPOINT"
    command: Command


@attrs.frozen(kw_only=True)
class FileTransfer(Instruction):
    """What COPY and ADD share; ``heredocs`` are inline files named by their delimiters."""

    sources: tuple[str, ...]
    dest: str
    from_: str | None = None
    chown: str | None = None
    chmod: str | None = None
    link: bool = False
    parents: bool = False
    excludes: tuple[str, ...] = ()
    heredocs: tuple[Heredoc, ...] = ()


@attrs.frozen(kw_only=True)
class Copy(FileTransfer):
    keyword: ClassVar[str] = "COPY"


@attrs.frozen(kw_only=True)
class Add(FileTransfer):
    """ADD: COPY plus URLs, tar extraction and ADD-only flags."""

    keyword: ClassVar[str] = "ADD"
    checksum: str | None = None
    keep_git_dir: bool = False
    unpack: bool | None = None


@attrs.frozen(kw_only=True)
class Env(Instruction):
    keyword: ClassVar[str] = "ENV"
    pairs: tuple[tuple[str, str], ...]


@attrs.frozen(kw_only=True)
class Arg(Instruction):
    """ARG; a pair's value is ``None`` when the ARG has no default."""

    keyword: ClassVar[str] = "ARG"
    pairs: tuple[tuple[str, str | None], ...]


@attrs.frozen(kw_only=True)
class Label(Instruction):
    keyword: ClassVar[str] = "LABEL"
    pairs: tuple[tuple[str, str], ...]


@attrs.frozen(kw_only=True)
class Expose(Instruction):
    keyword: ClassVar[str] = "EXPOSE"
    ports: tuple[str, ...]


@attrs.frozen(kw_only=True)
class User(Instruction):
    keyword: ClassVar[str] = "USER"
    user: str


@attrs.frozen(kw_only=True)
class Workdir(Instruction):
    keyword: ClassVar[str] = "WORKDIR"
    path: str


@attrs.frozen(kw_only=True)
class Volume(Instruction):
    keyword: ClassVar[str] = "VOLUME"
    paths: tuple[str, ...]


@attrs.frozen(kw_only=True)
class Shell(Instruction):
    keyword: ClassVar[str] = "SHELL"
    args: tuple[str, ...]


@attrs.frozen(kw_only=True)
class StopSignal(Instruction):
    keyword: ClassVar[str] = "STOPSIGNAL"
    signal: str


@attrs.frozen(kw_only=True)
class Healthcheck(Instruction):
    """HEALTHCHECK; ``command`` is ``None`` for ``HEALTHCHECK NONE``; durations in ns."""

    keyword: ClassVar[str] = "HEALTHCHECK"
    command: Command | None
    interval: int | None = None
    timeout: int | None = None
    start_period: int | None = None
    start_interval: int | None = None
    retries: int | None = None


@attrs.frozen(kw_only=True)
class Onbuild(Instruction):
    """ONBUILD; ``expression`` is the trigger text stored in the image config."""

    keyword: ClassVar[str] = "ONBUILD"
    trigger: Instruction
    expression: str


@attrs.frozen(kw_only=True)
class Maintainer(Instruction):
    """MAINTAINER (deprecated); Docker stores it as the image config's ``author``."""

    keyword: ClassVar[str] = "MAINTAINER"
    name: str


@attrs.frozen
class Stage:
    """One ``FROM`` and the instructions up to the next one."""

    index: int
    from_: From
    instructions: tuple[Instruction, ...]

    @property
    def name(self) -> str | None:
        return self.from_.name

    @property
    def label(self) -> str:
        """How to name the stage to a user: its name, else its index."""
        return self.from_.name if self.from_.name is not None else str(self.index)


@attrs.frozen
class Containerfile:
    filename: str
    escape: str
    syntax: str | None
    global_args: tuple[Arg, ...]
    stages: tuple[Stage, ...]

    def stage_by_name(self, name: str) -> Stage | None:
        wanted = name.lower()
        for stage in self.stages:
            if stage.name == wanted:
                return stage
        return None


# ---------------------------------------------------------------- lexing helpers

_I = TypeVar("_I", bound=Instruction)
_DIRECTIVE = re.compile(r"#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_KNOWN_DIRECTIVES = ("syntax", "escape", "check")
_HEREDOC = re.compile(r"(\d*)<<(-?)\s*([^<]*)$")
_STAGE_NAME = re.compile(r"[a-z][a-z0-9\-_.]*$")
_SIMPLE_FLAG = re.compile(r"\s*(--[^\s'\"\\]*)(?=\s|$)")
_WS = re.compile(r"[ \t\v\f\r]+")
_DURATION_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)")
_DURATION_UNIT_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}


def _fail(message: str) -> NoReturn:
    raise BuildError(message)


def split_words(text: str, escape: str = "\\") -> list[str]:
    """Split on whitespace outside quotes, keeping quotes and escapes in the words.

    This only finds word boundaries (as BuildKit does for ENV, LABEL and ARG); quote
    removal happens later, during variable substitution.
    """
    if escape not in text and "'" not in text and '"' not in text:
        return text.split()
    words: list[str] = []
    word: list[str] = []
    in_word = blank_ok = False
    quote = ""
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if quote:
            if ch == quote:
                quote = ""
            elif ch == escape and quote != "'":
                if i + 1 == n:
                    break
                word.append(ch)
                i += 1
                ch = text[i]
            word.append(ch)
        elif ch.isspace():
            if in_word and (blank_ok or word):
                words.append("".join(word))
            word, in_word, blank_ok = [], False, False
        else:
            in_word = True
            if ch in "'\"":
                quote, blank_ok = ch, True
            elif ch == escape:
                if i + 1 == n:
                    break
                word.append(ch)
                i += 1
                ch = text[i]
            word.append(ch)
        i += 1
    if in_word and (blank_ok or word):
        words.append("".join(word))
    return words


def _extract_flags(text: str) -> tuple[str, list[str]]:
    """Split leading ``--flag[=value]`` words (quotes removed) from the rest of a line."""
    flags: list[str] = []
    i, n = 0, len(text)
    while True:
        simple = _SIMPLE_FLAG.match(text, i)
        if simple is not None:
            # Most flags have no quotes or escapes: take the whole word at once.
            if simple[1] == "--":
                return text[simple.end() :].lstrip(), flags
            flags.append(simple[1])
            i = simple.end()
            continue
        while i < n and text[i].isspace():
            i += 1
        if not text.startswith("--", i):
            return text[i:], flags
        word: list[str] = []
        quote = ""
        start = i
        while i < n and (quote or not text[i].isspace()):
            ch = text[i]
            if quote and ch == quote:
                quote = ""
            elif not quote and ch in "'\"":
                quote = ch
            elif ch == "\\" and i + 1 < n:
                i += 1
                word.append(text[i])
            elif ch != "\\":
                word.append(ch)
            i += 1
        if text[start:i] == "--":
            return text[i:].lstrip(), flags
        flags.append("".join(word))


def _unquote(text: str) -> str:
    """Remove shell quotes and backslash escapes (for heredoc delimiters)."""
    out: list[str] = []
    quote = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == quote:
                quote = ""
            elif ch == "\\" and quote == '"' and i + 1 < len(text):
                i += 1
                out.append(text[i])
            else:
                out.append(ch)
        elif ch in "'\"":
            quote = ch
        elif ch == "\\" and i + 1 < len(text):
            i += 1
            out.append(text[i])
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def parse_heredoc_word(word: str) -> Heredoc | None:
    """``<<EOF``, ``<<-EOF``, ``<<"EOF"`` -> an empty :class:`Heredoc`; else ``None``."""
    match = _HEREDOC.match(word)
    if match is None or not match[3]:
        return None
    raw = match[3]
    name = _unquote(raw)
    if not name:
        return None
    return Heredoc(
        name=name, content="", expand=not any(q in raw for q in "'\""), chomp=bool(match[2])
    )


def _json_array(text: str) -> list[str] | None:
    """The argv of a JSON (exec) form, ``None`` if ``text`` is not JSON at all."""
    text = text.lstrip()
    if not text.startswith("["):
        return None
    import json  # only files using the exec form pay for it

    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        _fail('the JSON form must be an array of strings, like ["/bin/sh", "-c", "true"]')
    return value


def parse_duration(text: str) -> int:
    """A Go duration (``30s``, ``1m30s``, ``1.5h``, ``0``) in nanoseconds."""
    if text == "0":
        return 0
    if not text:
        _fail("invalid duration '': use a number and a unit, like 30s")
    pos, total = 0, 0.0
    while pos < len(text):
        match = _DURATION_PART.match(text, pos)
        if match is None or match[1] in ("", "."):
            _fail(f"invalid duration {text!r}: use a number and a unit, like 30s, 5m or 1h30m")
        total += float(match[1]) * _DURATION_UNIT_NS[match[2]]
        pos = match.end()
    return round(total)


def parse_mount(spec: str) -> Mount:
    """Parse a ``--mount`` value: comma-separated ``key=value`` fields (CSV quoting)."""
    if '"' in spec:
        import csv

        try:
            fields = next(csv.reader([spec]), [])
        except csv.Error as exc:
            _fail(f"invalid --mount {spec!r}: {exc}")
    else:
        fields = spec.split(",")
    kind, target, source, from_ = "bind", None, None, None
    readonly: bool | None = None
    options: list[tuple[str, str]] = []
    for field in fields:
        key, has_value, value = field.partition("=")
        key = key.strip().lower()
        if not key:
            continue
        if key in ("ro", "readonly", "rw", "readwrite"):
            flag = _parse_bool(value, f"--mount {key}") if has_value else True
            readonly = flag if key in ("ro", "readonly") else not flag
            continue
        if not has_value:
            _fail(f"invalid --mount field {field!r} in {spec!r}: expected key=value")
        if key == "type":
            kind = value
        elif key in ("target", "dst", "destination"):
            target = value
        elif key in ("source", "src"):
            source = value
        elif key == "from":
            from_ = value
        else:
            options.append((key, value))
    if kind not in ("bind", "cache", "tmpfs", "secret", "ssh"):
        _fail(f"invalid --mount type {kind!r}: use bind, cache, tmpfs, secret or ssh")
    if target is None and kind in ("bind", "cache", "tmpfs"):
        _fail(f"--mount type={kind} needs a target: add target=/path to {spec!r}")
    if readonly is None:
        readonly = kind == "bind"
    return Mount(kind, target, source, from_, readonly, tuple(options))


def _parse_bool(value: str, what: str) -> bool:
    if value in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if value in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    _fail(f"{what} expects true or false, not {value!r}")


# ---------------------------------------------------------------- flags

_STR, _BOOL, _LIST = "str", "bool", "list"
_COPY_FLAGS = {
    "from": _STR,
    "chown": _STR,
    "chmod": _STR,
    "link": _BOOL,
    "parents": _BOOL,
    "exclude": _LIST,
}
_FLAGS: dict[str, dict[str, str]] = {
    "from": {"platform": _STR},
    "run": {"mount": _LIST, "network": _STR, "security": _STR, "device": _LIST},
    "copy": _COPY_FLAGS,
    "add": {**_COPY_FLAGS, "checksum": _STR, "keep-git-dir": _BOOL, "unpack": _BOOL},
    "healthcheck": {
        "interval": _STR,
        "timeout": _STR,
        "start-period": _STR,
        "start-interval": _STR,
        "retries": _STR,
    },
}


def _parse_flags(keyword: str, words: list[str]) -> dict[str, str | bool | list[str]]:
    flags: dict[str, str | bool | list[str]] = {}
    if not words:
        return flags
    spec = _FLAGS.get(keyword, {})
    for word in words:
        name, has_value, value = word[2:].partition("=")
        kind = spec.get(name)
        if kind is None:
            known = ", ".join(f"--{f}" for f in spec) or "none"
            _fail(f"unknown flag --{name} for {keyword.upper()} (known flags: {known})")
        if kind == _LIST:
            if not has_value:
                _fail(f"flag --{name} needs a value")
            existing = flags.setdefault(name, [])
            assert isinstance(existing, list)
            existing.append(value)
            continue
        if name in flags:
            _fail(f"flag --{name} is given twice")
        if kind == _BOOL:
            flags[name] = _parse_bool(value, f"flag --{name}") if has_value else True
        elif not has_value:
            _fail(f"flag --{name} needs a value, like --{name}=VALUE")
        else:
            flags[name] = value
    return flags


def _str_flag(flags: Mapping[str, str | bool | list[str]], name: str) -> str | None:
    value = flags.get(name)
    return value if isinstance(value, str) else None


def _bool_flag(flags: Mapping[str, str | bool | list[str]], name: str) -> bool | None:
    value = flags.get(name)
    return value if isinstance(value, bool) else None


def _list_flag(flags: Mapping[str, str | bool | list[str]], name: str) -> tuple[str, ...]:
    value = flags.get(name)
    return tuple(value) if isinstance(value, list) else ()


# ---------------------------------------------------------------- instructions


@attrs.define
class _Raw:
    """An instruction's parts before its own argument parser runs."""

    keyword: str
    rest: str
    flags: dict[str, str | bool | list[str]]
    heredocs: tuple[Heredoc, ...]
    escape: str
    line: int
    end_line: int
    text: str

    def make(self, cls: type[_I], **fields: Any) -> _I:
        return cls(line=self.line, end_line=self.end_line, text=self.text, **fields)


def _needs(raw: _Raw, *, what: str) -> str:
    if not raw.rest:
        _fail(f"{raw.keyword.upper()} needs {what}")
    return raw.rest


def _command(raw: _Raw) -> Command:
    argv = _json_array(raw.rest)
    if argv is not None:
        return Command(tuple(argv), exec_form=True)
    return Command((_needs(raw, what="a command"),), exec_form=False)


def _from(raw: _Raw) -> Instruction:
    words = raw.rest.split()
    if len(words) == 3 and words[1].lower() == "as":
        name = words[2].lower()
        if not _STAGE_NAME.match(name):
            _fail(
                f"invalid stage name {words[2]!r}: a stage name starts with a letter and has "
                "only letters, digits, '-', '_' and '.'"
            )
    elif len(words) == 1:
        name = None
    else:
        _fail("FROM takes an image and optionally 'AS name': FROM IMAGE [AS NAME]")
    return raw.make(From, image=words[0], name=name, platform=_str_flag(raw.flags, "platform"))


def _run(raw: _Raw) -> Instruction:
    network = _str_flag(raw.flags, "network")
    if network is not None and network not in ("default", "none", "host"):
        _fail(f"invalid --network={network}: use default, none or host")
    security = _str_flag(raw.flags, "security")
    if security is not None and security not in ("sandbox", "insecure"):
        _fail(f"invalid --security={security}: use sandbox or insecure")
    return raw.make(
        Run,
        command=_command(raw),
        mounts=tuple(parse_mount(m) for m in _list_flag(raw.flags, "mount")),
        network=network,
        security=security,
        devices=_list_flag(raw.flags, "device"),
        heredocs=raw.heredocs,
    )


def _cmd(raw: _Raw) -> Instruction:
    return raw.make(Cmd, command=_command(raw))


def _entrypoint(raw: _Raw) -> Instruction:
    return raw.make(Entrypoint, command=_command(raw))


def _copy(raw: _Raw) -> Instruction:
    argv = _json_array(raw.rest)
    words = argv if argv is not None else raw.rest.split()
    sources = words[:-1]
    if raw.heredocs:
        sources = [w for w in sources if argv is not None or parse_heredoc_word(w) is None]
    if len(words) < 2:
        _fail(f"{raw.keyword.upper()} needs at least one source and a destination")
    common: dict[str, Any] = {
        "sources": tuple(sources),
        "dest": words[-1],
        "from_": _str_flag(raw.flags, "from"),
        "chown": _str_flag(raw.flags, "chown"),
        "chmod": _str_flag(raw.flags, "chmod"),
        "link": bool(_bool_flag(raw.flags, "link")),
        "parents": bool(_bool_flag(raw.flags, "parents")),
        "excludes": _list_flag(raw.flags, "exclude"),
        "heredocs": raw.heredocs,
    }
    if raw.keyword == "copy":
        return raw.make(Copy, **common)
    return raw.make(
        Add,
        checksum=_str_flag(raw.flags, "checksum"),
        keep_git_dir=bool(_bool_flag(raw.flags, "keep-git-dir")),
        unpack=_bool_flag(raw.flags, "unpack"),
        **common,
    )


def _name_values(raw: _Raw) -> tuple[tuple[str, str], ...]:
    keyword = raw.keyword.upper()
    words = split_words(raw.rest, raw.escape)
    if not words:
        _fail(f"{keyword} needs at least one NAME=VALUE")
    if "=" not in words[0]:
        # The legacy form: ``ENV NAME the rest of the line``.
        parts = _WS.split(raw.rest, maxsplit=1)
        if len(parts) < 2:
            _fail(f"{keyword} {parts[0]} needs a value: {keyword} {parts[0]}=VALUE")
        return ((parts[0], parts[1]),)
    pairs = []
    for word in words:
        name, has_value, value = word.partition("=")
        if not has_value:
            _fail(f"{keyword}: {word!r} is not NAME=VALUE (quote values that have spaces)")
        if not name:
            _fail(f"{keyword}: a name is empty in {word!r}")
        pairs.append((name, value))
    return tuple(pairs)


def _env(raw: _Raw) -> Instruction:
    return raw.make(Env, pairs=_name_values(raw))


def _label(raw: _Raw) -> Instruction:
    return raw.make(Label, pairs=_name_values(raw))


def _arg(raw: _Raw) -> Instruction:
    pairs: list[tuple[str, str | None]] = []
    for word in split_words(raw.rest, raw.escape):
        name, has_value, value = word.partition("=")
        if not name:
            _fail(f"ARG: a name is empty in {word!r}")
        pairs.append((name, value if has_value else None))
    if not pairs:
        _fail("ARG needs a name: ARG NAME or ARG NAME=DEFAULT")
    return raw.make(Arg, pairs=tuple(pairs))


def _expose(raw: _Raw) -> Instruction:
    return raw.make(Expose, ports=tuple(_needs(raw, what="a port").split()))


def _user(raw: _Raw) -> Instruction:
    return raw.make(User, user=_needs(raw, what="a user"))


def _workdir(raw: _Raw) -> Instruction:
    return raw.make(Workdir, path=_needs(raw, what="a path"))


def _volume(raw: _Raw) -> Instruction:
    argv = _json_array(raw.rest)
    paths = argv if argv is not None else _needs(raw, what="a path").split()
    if not paths or any(not p.strip() for p in paths):
        _fail("VOLUME needs non-empty paths")
    return raw.make(Volume, paths=tuple(paths))


def _shell(raw: _Raw) -> Instruction:
    argv = _json_array(raw.rest)
    if not argv:
        _fail('SHELL needs the JSON form with at least one item, like SHELL ["/bin/sh", "-c"]')
    return raw.make(Shell, args=tuple(argv))


def _stopsignal(raw: _Raw) -> Instruction:
    return raw.make(StopSignal, signal=_needs(raw, what="a signal"))


def _maintainer(raw: _Raw) -> Instruction:
    return raw.make(Maintainer, name=_needs(raw, what="a name"))


def _healthcheck(raw: _Raw) -> Instruction:
    kind, *more = _needs(raw, what="CMD or NONE").split(None, 1)
    rest = more[0] if more else ""
    command: Command | None
    if kind.upper() == "NONE":
        if rest:
            _fail("HEALTHCHECK NONE takes no arguments")
        command = None
    elif kind.upper() == "CMD":
        command = _command(attrs.evolve(raw, rest=rest))
    else:
        _fail(f"unknown HEALTHCHECK type {kind!r}: use HEALTHCHECK CMD ... or HEALTHCHECK NONE")
    durations: dict[str, int | None] = {}
    for flag in ("interval", "timeout", "start-period", "start-interval"):
        text = _str_flag(raw.flags, flag)
        value = None if text is None else parse_duration(text)
        if value is not None and (value < 0 or 0 < value < 1_000_000):
            _fail(f"HEALTHCHECK --{flag}={text} must be 0 or at least 1ms")
        durations[flag.replace("-", "_")] = value
    retries_text = _str_flag(raw.flags, "retries")
    retries = None
    if retries_text is not None:
        if not retries_text.isdigit():
            _fail(f"HEALTHCHECK --retries={retries_text} must be a whole number >= 0")
        retries = int(retries_text)
    return raw.make(Healthcheck, command=command, retries=retries, **durations)


def _onbuild(raw: _Raw) -> Instruction:
    expression = _needs(raw, what="an instruction")
    trigger = _instruction(expression, line=raw.line, escape=raw.escape)
    if isinstance(trigger, From | Onbuild | Maintainer):
        _fail(f"ONBUILD {trigger.keyword} is not allowed")
    return raw.make(Onbuild, trigger=trigger, expression=expression)


_PARSERS: dict[str, Callable[[_Raw], Instruction]] = {
    "from": _from,
    "run": _run,
    "cmd": _cmd,
    "entrypoint": _entrypoint,
    "copy": _copy,
    "add": _copy,
    "env": _env,
    "arg": _arg,
    "label": _label,
    "expose": _expose,
    "user": _user,
    "workdir": _workdir,
    "volume": _volume,
    "shell": _shell,
    "stopsignal": _stopsignal,
    "healthcheck": _healthcheck,
    "onbuild": _onbuild,
    "maintainer": _maintainer,
}
_HEREDOC_KEYWORDS = ("run", "copy", "add")


def _split_keyword(text: str) -> tuple[str, str]:
    parts = text.split(None, 1)
    keyword = parts[0].lower()
    if keyword not in _PARSERS:
        import difflib

        close = difflib.get_close_matches(keyword, list(_PARSERS), n=1)
        hint = f" (did you mean {close[0].upper()}?)" if close else ""
        _fail(f'unknown instruction "{parts[0]}"{hint}')
    return keyword, parts[1] if len(parts) > 1 else ""


class _Lines:
    """The file's lines and a cursor, so heredoc bodies can be read after their line."""

    def __init__(self, lines: list[str], pos: int) -> None:
        self.lines = lines
        self.pos = pos

    def read_bodies(self, heads: Sequence[Heredoc]) -> tuple[Heredoc, ...]:
        bodies = []
        for head in heads:
            body: list[str] = []
            while True:
                if self.pos >= len(self.lines):
                    _fail(
                        f'unterminated heredoc "{head.name}": no line "{head.name}" '
                        "closes it before the end of the file"
                    )
                line = self.lines[self.pos]
                self.pos += 1
                candidate = line.lstrip("\t") if head.chomp else line
                if candidate == head.name:
                    break
                body.append(candidate + "\n")
            bodies.append(attrs.evolve(head, content="".join(body)))
        return tuple(bodies)


def _instruction(text: str, *, line: int, escape: str, lines: _Lines | None = None) -> Instruction:
    """Parse one joined instruction line; ``lines`` supplies heredoc bodies if allowed."""
    text = text.strip()
    keyword, rest = _split_keyword(text)
    rest, flag_words = _extract_flags(rest)
    rest = rest.strip()
    heredocs: tuple[Heredoc, ...] = ()
    if (
        lines is not None
        and keyword in _HEREDOC_KEYWORDS
        and "<<" in rest
        and _json_array(rest) is None
    ):
        heads = [doc for doc in map(parse_heredoc_word, split_words(rest)) if doc is not None]
        heredocs = lines.read_bodies(heads)
    raw = _Raw(
        keyword=keyword,
        rest=rest,
        flags=_parse_flags(keyword, flag_words),
        heredocs=heredocs,
        escape=escape,
        line=line,
        end_line=line if lines is None else lines.pos,
        text=text,
    )
    return _PARSERS[keyword](raw)


# ---------------------------------------------------------------- file


def parse_instruction(
    text: str, *, filename: str = DEFAULT_FILENAME, line: int = 1, escape: str = "\\"
) -> Instruction:
    """Parse one instruction line, such as an ONBUILD trigger stored in an image."""
    try:
        return _instruction(text, line=line, escape=escape)
    except BuildError as exc:
        raise BuildError(f"{filename}:{line}: {exc.message}", hint=exc.hint) from None


def parse(text: str, *, filename: str = DEFAULT_FILENAME) -> Containerfile:
    """Parse a whole Containerfile; errors are :class:`BuildError` naming ``filename:line``."""
    raw_lines = text.split("\n")
    raw_lines = [ln[:-1] if ln.endswith("\r") else ln for ln in raw_lines]
    if raw_lines and raw_lines[0].startswith("\ufeff"):
        raw_lines[0] = raw_lines[0][1:]
    escape, syntax, first = _directives(raw_lines, filename)
    lines = _Lines(raw_lines, first)
    instructions: list[Instruction] = []
    n = len(raw_lines)
    while lines.pos < n:
        stripped = raw_lines[lines.pos].lstrip()
        lines.pos += 1
        start = lines.pos
        if stripped.startswith("#") or not stripped:
            continue
        joined, more = _trim_continuation(stripped, escape)
        while more and lines.pos < n:
            raw = raw_lines[lines.pos]
            lines.pos += 1
            if raw.lstrip().startswith("#") or not raw.strip():
                continue
            part, more = _trim_continuation(raw, escape)
            joined += part
        if not joined.strip():
            continue
        try:
            instructions.append(_instruction(joined, line=start, escape=escape, lines=lines))
        except BuildError as exc:
            raise BuildError(f"{filename}:{start}: {exc.message}", hint=exc.hint) from None
    return _assemble(instructions, filename=filename, escape=escape, syntax=syntax)


def _trim_continuation(line: str, escape: str) -> tuple[str, bool]:
    """Drop a trailing escape character (and blanks after it): the line continues."""
    body = line.rstrip(" \t")
    if body.endswith(escape):
        return body[:-1], True
    return line, False


def _directives(lines: Sequence[str], filename: str) -> tuple[str, str | None, int]:
    """Read parser directives at the top; return (escape, syntax, first line after them)."""
    seen: dict[str, str] = {}
    pos = 0
    while pos < len(lines):
        match = _DIRECTIVE.match(lines[pos].lstrip())
        if match is None or match[1].lower() not in _KNOWN_DIRECTIVES:
            break
        key = match[1].lower()
        pos += 1
        if key in seen:
            _fail(f"{filename}:{pos}: the {key} directive may be given only once")
        if key == "escape" and match[2] not in ("\\", "`"):
            _fail(f"{filename}:{pos}: invalid escape directive {match[2]!r}: use \\ or `")
        seen[key] = match[2]
    return seen.get("escape", "\\"), seen.get("syntax"), pos


def _assemble(
    instructions: Sequence[Instruction], *, filename: str, escape: str, syntax: str | None
) -> Containerfile:
    global_args: list[Arg] = []
    stages: list[Stage] = []
    current: list[Instruction] = []
    names: dict[str, int] = {}
    for ins in instructions:
        if isinstance(ins, From):
            if stages:
                stages[-1] = attrs.evolve(stages[-1], instructions=tuple(current))
            if ins.name is not None:
                if ins.name in names:
                    _fail(
                        f"{filename}:{ins.line}: duplicate stage name {ins.name!r}: "
                        f"already used on line {names[ins.name]}"
                    )
                names[ins.name] = ins.line
            stages.append(Stage(len(stages), ins, ()))
            current = []
        elif stages:
            current.append(ins)
        elif isinstance(ins, Arg):
            global_args.append(ins)
        else:
            _fail(
                f"{filename}:{ins.line}: {ins.keyword} before the first FROM: "
                "only ARG and comments may come before FROM"
            )
    if not stages:
        _fail(f"{filename}: no FROM instruction: a Containerfile needs at least one FROM")
    stages[-1] = attrs.evolve(stages[-1], instructions=tuple(current))
    return Containerfile(filename, escape, syntax, tuple(global_args), tuple(stages))
