"""``--format`` as Podman and Docker take it: ``json``, ``table`` or a Go template.

The template language is the subset people use with ``ps``, ``inspect`` and
``images``: fields (``{{.Names}}``, ``{{.State.Status}}``, ``{{.}}``), pipelines
(``{{.Names | upper}}``), ``{{range .X}}...{{end}}``, the functions ``json``,
``index``, ``join``, ``lower``, ``upper`` and ``printf``, string and number
literals, ``{{-``/``-}}`` trimming, and the escapes ``\\t`` and ``\\n`` written
literally on the command line. A leading ``table`` adds a header row made from
the field names (``.CreatedAt`` -> ``CREATED AT``) unless the caller names it.

Output goes through the equivalent of Go's tabwriter as Podman configures it
(minimum cell width 12, padding 2): tab-separated cells line up in columns.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rootless._record import Record
from rootless.errors import ConfigError

_MIN_WIDTH = 12
_PADDING = 2

_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.DOTALL)
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|`[^`]*`|\||[^\s|"`]+')
_NUMBER = re.compile(r"-?\d+")
_WORD_BREAK = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_VERB = re.compile(r"%([-+# 0]*)(\d+)?(?:\.(\d+))?([a-zA-Z%])")


class _Arg(Record):
    kind: str  # "field", "literal" or "func"
    value: Any  # field path (tuple of names), literal value, or function name


class _Text(Record):
    text: str


class _Action(Record):
    pipeline: tuple[tuple[_Arg, ...], ...]
    source: str


class _Range(Record):
    pipeline: tuple[tuple[_Arg, ...], ...]
    source: str
    body: list[_Node]


_Node = _Text | _Action | _Range


def _error(message: str, hint: str | None = None) -> ConfigError:
    return ConfigError(f"invalid --format: {message}", hint=hint)


# Values -----------------------------------------------------------------------


def _text(value: Any) -> str:
    """A value as Go's template prints it."""
    if isinstance(value, str):
        return value
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e21 else repr(value)
    if isinstance(value, list | tuple):
        return "[" + " ".join(_text(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{_text(value[k])}" for k in sorted(value)) + "]"
    return str(value)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def _index(value: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(value, Mapping):
            value = value.get(key)
        elif isinstance(value, list | tuple) and isinstance(key, int):
            if not -len(value) <= key < len(value):
                raise _error(f"index {key} out of range (length {len(value)})")
            value = value[key]
        else:
            raise _error(f"cannot index {_text(value)!r} with {key!r}")
    return value


def _join(value: Any, sep: str) -> str:
    if not isinstance(value, list | tuple):
        return _text(value)
    return sep.join(_text(v) for v in value)


def _printf(fmt: str, *args: Any) -> str:
    """Go's fmt verbs: %s %v %d %q %f %x with flags, width and precision."""
    out: list[str] = []
    pos = 0
    queue = list(args)
    for m in _VERB.finditer(fmt):
        out.append(fmt[pos : m.start()])
        pos = m.end()
        flags, width, precision, verb = m.groups()
        if verb == "%":
            out.append("%")
            continue
        if not queue:
            raise _error(f'printf "{fmt}": missing argument for %{verb}')
        value = queue.pop(0)
        spec = f"%{flags}{width or ''}{'.' + precision if precision is not None else ''}"
        if verb in "sv":
            out.append((spec + "s") % _text(value))
        elif verb == "q":
            out.append((spec + "s") % _json(_text(value)))
        elif verb in "dfeEgGxXo":
            try:
                out.append((spec + verb) % value)
            except TypeError:
                raise _error(
                    f'printf "{fmt}": %{verb} needs a number, not {_text(value)!r}'
                ) from None
        else:
            raise _error(f'printf "{fmt}": unsupported verb %{verb}')
    out.append(fmt[pos:])
    return "".join(out)


_FUNCS: dict[str, Callable[..., Any]] = {
    "json": _json,
    "index": _index,
    "join": _join,
    "lower": lambda v: _text(v).lower(),
    "upper": lambda v: _text(v).upper(),
    "printf": _printf,
}


# Parsing ----------------------------------------------------------------------


def _parse_arg(token: str, first: bool, source: str) -> _Arg:
    if token == ".":
        return _Arg("field", ())
    if token.startswith("."):
        return _Arg("field", tuple(token[1:].split(".")))
    if token.startswith('"'):
        return _Arg("literal", json.loads(token, strict=False))
    if token.startswith("`"):
        return _Arg("literal", token[1:-1])
    if _NUMBER.fullmatch(token):
        return _Arg("literal", int(token))
    if token in ("true", "false"):
        return _Arg("literal", token == "true")
    if first and token in _FUNCS:
        return _Arg("func", token)
    if first and token.isidentifier():
        raise _error(
            f'unknown function "{token}" in {{{{{source}}}}}',
            hint=f"functions: {', '.join(sorted(_FUNCS))}",
        )
    raise _error(f'cannot read "{token}" in {{{{{source}}}}}')


def _parse_pipeline(source: str) -> tuple[tuple[_Arg, ...], ...]:
    tokens = _TOKEN.findall(source)
    commands: list[list[str]] = [[]]
    for token in tokens:
        if token == "|":
            commands.append([])
        else:
            commands[-1].append(token)
    if any(not c for c in commands):
        raise _error(f"empty command in {{{{{source}}}}}")
    return tuple(
        tuple(_parse_arg(t, i == 0, source) for i, t in enumerate(cmd)) for cmd in commands
    )


def _parse(template: str) -> list[_Node]:
    root: list[_Node] = []
    stack: list[list[_Node]] = [root]
    pos = 0
    trim_next = False
    for m in _ACTION.finditer(template):
        text = template[pos : m.start()]
        if trim_next:
            text = text.lstrip()
        if m[1]:
            text = text.rstrip()
        if text:
            stack[-1].append(_Text(text))
        pos = m.end()
        trim_next = bool(m[3])
        source = m[2].strip()
        keyword, _, rest = source.partition(" ")
        if keyword == "range":
            node = _Range(_parse_pipeline(rest), source, [])
            stack[-1].append(node)
            stack.append(node.body)
        elif keyword == "end":
            if len(stack) == 1:
                raise _error("{{end}} without {{range}}")
            stack.pop()
        elif keyword in ("if", "else", "with", "define", "template", "block"):
            raise _error(
                f'"{keyword}" is not supported in templates here',
                hint="use fields, range, and the functions json, index, join, lower, upper, printf",
            )
        elif not source:
            raise _error("empty action {{}}")
        else:
            stack[-1].append(_Action(_parse_pipeline(source), source))
    text = template[pos:]
    if "{{" in text:
        raise _error(f'unclosed action in "{template}"')
    if trim_next:
        text = text.lstrip()
    if text:
        stack[-1].append(_Text(text))
    if len(stack) > 1:
        raise _error("{{range}} without {{end}}")
    return root


# Execution --------------------------------------------------------------------


def _field(dot: Any, path: tuple[str, ...], source: str, top: Any) -> Any:
    value = dot
    for depth, name in enumerate(path):
        if not isinstance(value, Mapping):
            raise _error(f'cannot take field "{name}" of {_text(value)!r} in {{{{{source}}}}}')
        if name in value:
            value = value[name]
        elif depth == 0 and dot is top:
            raise _error(
                f'no field "{name}" in {{{{{source}}}}}',
                hint=f"fields: {', '.join(str(k) for k in value)}",
            )
        else:
            return "<no value>"  # a missing key of a nested map, as Go prints it
    return value


def _eval(pipeline: tuple[tuple[_Arg, ...], ...], source: str, dot: Any, top: Any) -> Any:
    result: Any = None
    for n, command in enumerate(pipeline):
        head, args = command[0], command[1:]
        values = [_value(a, source, dot, top) for a in args]
        if n > 0:
            values.append(result)
        if head.kind == "func":
            try:
                result = _FUNCS[head.value](*values)
            except TypeError:
                raise _error(
                    f'wrong number of arguments for "{head.value}" in {{{{{source}}}}}'
                ) from None
        elif values:
            raise _error(f"{{{{{source}}}}}: only a function can take arguments")
        else:
            result = _value(head, source, dot, top)
    return result


def _value(arg: _Arg, source: str, dot: Any, top: Any) -> Any:
    if arg.kind == "field":
        return _field(dot, arg.value, source, top)
    return arg.value


def _execute(nodes: list[_Node], dot: Any, top: Any, out: list[str]) -> None:
    for node in nodes:
        if isinstance(node, _Text):
            out.append(node.text)
        elif isinstance(node, _Action):
            out.append(_text(_eval(node.pipeline, node.source, dot, top)))
        else:
            items = _eval(node.pipeline, node.source, dot, top)
            if isinstance(items, Mapping):
                items = [items[k] for k in sorted(items)]
            elif items is None:
                items = []
            elif not isinstance(items, list | tuple):
                raise _error(f"cannot range over {_text(items)!r} in {{{{{node.source}}}}}")
            for item in items:
                _execute(node.body, item, top, out)


def header_for(name: str) -> str:
    """Podman's column header for a field: ``CreatedAt`` -> ``CREATED AT``."""
    return _WORD_BREAK.sub(" ", name).upper()


def _headers(nodes: list[_Node], names: Mapping[str, str]) -> str:
    out: list[str] = []
    for node in nodes:
        if isinstance(node, _Text):
            out.append(node.text)
            continue
        fields = [a.value for cmd in node.pipeline for a in cmd if a.kind == "field" and a.value]
        if fields:
            path = fields[0]
            out.append(names.get(".".join(path)) or header_for(path[-1]))
    return "".join(out)


def _align(text: str) -> str:
    """Go's tabwriter (minwidth 12, padding 2): tab-terminated cells padded per column block."""
    rows = [line.split("\t") for line in text.split("\n")]
    widths: list[list[int]] = [[0] * (len(r) - 1) for r in rows]

    def block(first: int, last: int, col: int) -> None:
        i = first
        while i < last:
            if len(rows[i]) - 1 <= col:
                i += 1
                continue
            j = i
            width = _MIN_WIDTH
            while j < last and len(rows[j]) - 1 > col:
                width = max(width, len(rows[j][col]) + _PADDING)
                j += 1
            for k in range(i, j):
                widths[k][col] = width
            block(i, j, col + 1)
            i = j

    block(0, len(rows), 0)
    return "\n".join(
        "".join(cell.ljust(w) for cell, w in zip(r, ws, strict=False)) + r[-1]
        for r, ws in zip(rows, widths, strict=True)
    )


def render(
    items: Sequence[Mapping[str, Any]],
    fmt: str | None,
    *,
    columns: Sequence[str],
    headers: Mapping[str, str] | None = None,
) -> str:
    """The text to print for ``items`` (each a mapping of field -> value).

    ``fmt`` is the ``--format`` value: None, ``""`` or ``table`` for a table of
    ``columns``; ``json`` for a JSON array; or a template (``table`` + template for
    a table with headers). ``headers`` names columns whose header is not the
    field name spelled out (``{"ID": "CONTAINER ID"}``).
    """
    spec = (fmt or "").strip()
    if spec == "json":
        return json.dumps(list(items), indent=4, ensure_ascii=False, default=str) + "\n"
    if spec in ("", "table"):
        template, table = "\t".join("{{." + c + "}}" for c in columns), True
    else:
        template = (fmt or "").replace("\\t", "\t").replace("\\n", "\n")
        table = template.lstrip().startswith("table")
        if table:
            template = template.lstrip()[len("table") :].lstrip(" ")
    nodes = _parse(template)
    lines: list[str] = []
    if table:
        lines.append(_headers(nodes, headers or {}) + "\n")
    for item in items:
        out: list[str] = []
        _execute(nodes, item, item, out)
        text = "".join(out)
        lines.append(text if text.endswith("\n") else text + "\n")
    return _align("".join(lines))
