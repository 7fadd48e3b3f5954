from __future__ import annotations

import pytest

from rootless.compose.interpolate import interpolate, parse_env_file
from rootless.errors import ConfigError

ENV = {"SET": "value", "EMPTY": "", "B": "bee"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", "plain"),
        ("$SET", "value"),
        ("${SET}", "value"),
        ("a${SET}b$SET.c", "avalueb" + "value.c"),
        ("${UNSET:-dflt}", "dflt"),
        ("${EMPTY:-dflt}", "dflt"),
        ("${EMPTY-dflt}", ""),
        ("${UNSET-dflt}", "dflt"),
        ("${SET:-dflt}", "value"),
        ("${SET:+alt}", "alt"),
        ("${EMPTY:+alt}", ""),
        ("${EMPTY+alt}", "alt"),
        ("${UNSET+alt}", ""),
        ("${UNSET:-${B}}", "bee"),
        ("${UNSET:-x${UNSET2:-${B}}y}", "xbeey"),
        ("$$SET", "$SET"),
        ("$${SET}", "${SET}"),
        ("cost: $$5", "cost: $5"),
        ("${UNSET:-a:b-c}", "a:b-c"),
        ("${SET?boom}", "value"),
        ("${EMPTY?boom}", ""),
        ("$(echo no)", None),
    ],
)
def test_forms(text, expected):
    if expected is None:
        with pytest.raises(ConfigError):
            interpolate(text, ENV)
    else:
        assert interpolate(text, ENV) == expected


def test_never_runs_a_shell():
    # command substitution and backticks are plain text or errors, never executed
    assert interpolate("`id`", ENV) == "`id`"
    with pytest.raises(ConfigError, match=r'"\$" at offset 0 is not followed'):
        interpolate("$(id)", ENV)


def test_unset_reports_missing_and_gives_empty():
    missing: list[str] = []
    assert interpolate("a${NOPE}b$NOPE2", ENV, missing.append) == "ab"
    assert missing == ["NOPE", "NOPE2"]


def test_defaults_do_not_report_missing():
    missing: list[str] = []
    interpolate("${NOPE:-x}${NOPE-y}${NOPE:+z}", ENV, missing.append)
    assert missing == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${NEED:?set it please}", "required variable NEED is missing a value: set it please"),
        ("${EMPTY:?}", "required variable EMPTY is missing a value"),
        ("${NEED?gone}", "required variable NEED is missing a value: gone"),
        ("${OPEN", 'invalid interpolation "${OPEN": "${" is not closed by "}"'),
        ("${}", 'invalid interpolation "${}": "${}" does not start with a variable name'),
        ("${1A}", 'invalid interpolation "${1A}": "${1A}" does not start with a variable name'),
        ("${A/x}", 'invalid interpolation "${A/x}": "${A/x}": unknown operator "/x"'),
        (
            "ends with $",
            'invalid interpolation "ends with $": "$" at offset 10 is not followed by a variable name or "{"',  # noqa: E501
        ),
    ],
)
def test_errors(text, message):
    with pytest.raises(ConfigError) as e:
        interpolate(text, ENV)
    assert e.value.message == message


def test_env_file_syntax():
    text = "\n".join(
        [
            "# comment",
            "",
            "A=1",
            "export B = two words ",
            "C='single $A ${x'",
            'D="double\\n$A \\"q\\" \\$A"',
            "E=${A}-${HOSTVAR:-d} # trailing comment",
            "F=a#b",
            "BARE",
            "G=",
        ]
    )
    assert parse_env_file(text, file=".env", env={"HOSTVAR": "h"}) == [
        ("A", "1"),
        ("B", "two words"),
        ("C", "single $A ${x"),
        ("D", 'double\n1 "q" $A'),
        ("E", "1-h"),
        ("F", "a#b"),
        ("BARE", None),
        ("G", ""),
    ]


def test_env_file_errors_name_file_and_line():
    with pytest.raises(ConfigError) as e:
        parse_env_file("A=1\nbad key=2\n", file="x.env")
    assert e.value.message == 'x.env:2: invalid variable name "bad key"'
    with pytest.raises(ConfigError) as e:
        parse_env_file("A=1\nB=${NEED:?needed}\n", file="x.env")
    assert e.value.message == "x.env:2: B: required variable NEED is missing a value: needed"
    with pytest.raises(ConfigError) as e:
        parse_env_file("A='open\n", file="x.env")
    assert e.value.message == "x.env:1: A: single quote is not closed"
