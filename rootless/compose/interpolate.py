"""Variable interpolation in compose files and ``.env`` files (pure; never runs a shell).

The forms are Compose's: ``$V`` and ``${V}``; ``${V:-d}`` (d when V is unset or
empty), ``${V-d}`` (d when unset); ``${V:?err}`` and ``${V?err}`` (an error naming
V when empty/unset); ``${V:+x}`` and ``${V+x}`` (x when V is set and non-empty /
set); ``$$`` is a literal ``$``. Defaults may themselves hold variables
(``${A:-${B}}``). Any other ``$`` is an error, so mistakes do not pass silently.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from rootless._empty import EMPTY_MAP
from rootless.errors import ConfigError

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")

Missing = Callable[[str], None]


def interpolate(text: str, env: Mapping[str, str], missing: Missing | None = None) -> str:
    """``text`` with its variables replaced from ``env``.

    ``missing(name)`` is called for each variable that is unset and has no default
    (it becomes ""); errors are ConfigErrors whose message quotes ``text``.
    """
    return _Expander(text, env, missing).expand(text)


class _Expander:
    def __init__(self, whole: str, env: Mapping[str, str], missing: Missing | None) -> None:
        self.whole = whole
        self.env = env
        self.missing = missing

    def bad(self, why: str) -> ConfigError:
        return ConfigError(
            f'invalid interpolation "{self.whole}": {why}', hint="write $$ for a literal $"
        )

    def expand(self, text: str) -> str:
        out: list[str] = []
        i = 0
        while (j := text.find("$", i)) >= 0:
            out.append(text[i:j])
            nxt = text[j + 1 : j + 2]
            if nxt == "$":
                out.append("$")
                i = j + 2
            elif nxt == "{":
                end = _closing_brace(text, j + 2)
                if end < 0:
                    raise self.bad('"${" is not closed by "}"')
                out.append(self.braced(text[j + 2 : end]))
                i = end + 1
            elif m := _NAME.match(text, j + 1):
                out.append(self.plain(m[0]))
                i = m.end()
            else:
                raise self.bad(f'"$" at offset {j} is not followed by a variable name or "{{"')
        out.append(text[i:])
        return "".join(out)

    def plain(self, name: str) -> str:
        value = self.env.get(name)
        if value is None:
            if self.missing is not None:
                self.missing(name)
            return ""
        return value

    def braced(self, body: str) -> str:
        m = _NAME.match(body)
        if m is None:
            raise self.bad(f'"${{{body}}}" does not start with a variable name')
        name, rest = m[0], body[m.end() :]
        if not rest:
            return self.plain(name)
        value = self.env.get(name)
        colon = rest.startswith(":")
        op, arg = rest[1 if colon else 0 : 2 if colon else 1], rest[2 if colon else 1 :]
        present = value is not None and (value != "" or not colon)
        if op == "-":
            return value if present and value is not None else self.expand(arg)
        if op == "+":
            return self.expand(arg) if present else ""
        if op == "?":
            if present and value is not None:
                return value
            why = self.expand(arg)
            raise ConfigError(
                f"required variable {name} is missing a value" + (f": {why}" if why else ""),
                hint=f"set {name} in the environment or in .env",
            )
        raise self.bad(f'"${{{body}}}": unknown operator "{rest[:2]}"')


def _closing_brace(text: str, start: int) -> int:
    """Index of the ``}`` that closes a ``${`` whose body starts at ``start``; -1 if none."""
    depth = 1
    i = start
    while i < len(text):
        if text.startswith("$$", i):
            i += 2
            continue
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def parse_env_file(
    text: str, *, file: str, env: Mapping[str, str] = EMPTY_MAP, interpolate_values: bool = True
) -> list[tuple[str, str | None]]:
    """``KEY=VALUE`` lines of a ``.env`` or ``env_file`` in order.

    ``#`` starts a comment line (and an inline comment after a space in an unquoted
    value); ``export`` in front is allowed; ``'single'`` quotes are literal,
    ``"double"`` quotes take ``\\n``, ``\\t``, ``\\"`` and ``\\\\``. Unquoted and
    double-quoted values are interpolated from earlier keys of the file, then ``env``.
    A bare ``KEY`` gives ``(KEY, None)``: take it from the environment.
    """
    out: list[tuple[str, str | None]] = []
    seen: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not _ENV_KEY.fullmatch(key):
            raise ConfigError(
                f'{file}:{number}: invalid variable name "{key}"', hint="use KEY=VALUE"
            )
        if not sep:
            out.append((key, None))
            continue
        try:
            parsed = _env_value(value.strip(), {**env, **seen}, interpolate_values)
        except ConfigError as e:
            raise ConfigError(f"{file}:{number}: {key}: {e.message}", hint=e.hint) from None
        seen[key] = parsed
        out.append((key, parsed))
    return out


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "\\$"}


def _env_value(value: str, env: Mapping[str, str], expand: bool) -> str:
    if value[:1] == "'":
        end = value.find("'", 1)
        if end < 0:
            raise ConfigError("single quote is not closed")
        return value[1:end]
    if value[:1] == '"':
        chars: list[str] = []
        i = 1
        while i < len(value) and value[i] != '"':
            if value[i] == "\\" and i + 1 < len(value):
                chars.append(_ESCAPES.get(value[i + 1], "\\" + value[i + 1]))
                i += 2
                continue
            chars.append(value[i])
            i += 1
        if i >= len(value):
            raise ConfigError("double quote is not closed")
        return _expand_env("".join(chars), env, expand)
    hash_at = value.find(" #")
    if hash_at >= 0:
        value = value[:hash_at].rstrip()
    return _expand_env(value, env, expand)


def _expand_env(value: str, env: Mapping[str, str], expand: bool) -> str:
    if not expand:
        return value.replace("\\$", "$")
    return interpolate(value.replace("\\$", "$$"), env)
