"""Variable substitution and Docker's ARG/ENV scoping."""

from __future__ import annotations

import pytest

from rootless.build.dockerfile import (
    Arg,
    Copy,
    Env,
    Expose,
    Label,
    Run,
    User,
    Volume,
    Workdir,
    parse,
)
from rootless.build.expand import (
    Step,
    expand_from,
    expand_heredoc,
    expand_word,
    make_scope,
    platform_args,
    walk_stage,
)
from rootless.errors import BuildError

ENV = {"A": "alpha", "E": "", "P": "dir/sub/file.tar.gz"}


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("$A", "alpha"),
        ("${A}", "alpha"),
        ("x${A}y", "xalphay"),
        ("$A-$A", "alpha-alpha"),
        ("$UNSET", ""),
        ("${UNSET:-def}", "def"),
        ("${E:-def}", "def"),
        ("${E-def}", ""),
        ("${UNSET-def}", "def"),
        ("${A:-def}", "alpha"),
        ("${A:+set}", "set"),
        ("${E:+set}", ""),
        ("${E+set}", "set"),
        ("${UNSET+set}", ""),
        ("${UNSET:-$A}", "alpha"),
        ("${UNSET:-${E:-deep}}", "deep"),
        ("\\$A", "$A"),
        ("'$A'", "$A"),
        ('"$A b"', "alpha b"),
        ('"\\$A \\" \\x"', '$A " \\x'),
        ("a\\ b", "a b"),
        ("$", "$"),
        ("a$", "a$"),
        ("$1x", "x"),
        ("${P#*/}", "sub/file.tar.gz"),
        ("${P##*/}", "file.tar.gz"),
        ("${P%.*}", "dir/sub/file.tar"),
        ("${P%%.*}", "dir/sub/file"),
        ("${UNSET:-'q u'}", "q u"),
    ],
)
def test_expand_word(word: str, expected: str) -> None:
    assert expand_word(word, ENV) == expected


def test_backtick_escape() -> None:
    assert expand_word("`$A c:\\dir", ENV, escape="`") == "$A c:\\dir"


@pytest.mark.parametrize(
    ("word", "message"),
    [
        ("${A", "syntax error: missing '}'"),
        ("${}", "syntax error: bad substitution"),
        ("${A:x}", "unsupported modifier (:x) in substitution"),
        ("${A/x/y}", "unsupported modifier (/) in substitution"),
        ("${UNSET:?must be given}", "UNSET: must be given"),
        ("${UNSET?}", "UNSET: is not allowed to be unset"),
        ("${E:?}", "E: is not allowed to be empty"),
        ("'open", "unexpected end of text looking for the closing single quote"),
        ('"open', "unexpected end of text looking for the closing double quote"),
    ],
)
def test_expand_errors(word: str, message: str) -> None:
    with pytest.raises(BuildError) as info:
        expand_word(word, ENV)
    assert info.value.message == message


def test_heredoc_keeps_quotes() -> None:
    assert expand_heredoc("echo \"$A\" '$A' \\$A \\n\n", ENV) == "echo \"alpha\" 'alpha' $A \\n\n"


def test_platform_args() -> None:
    args = platform_args("linux/arm64/v8", "linux/amd64")
    assert args == {
        "TARGETPLATFORM": "linux/arm64/v8",
        "TARGETOS": "linux",
        "TARGETARCH": "arm64",
        "TARGETVARIANT": "v8",
        "BUILDPLATFORM": "linux/amd64",
        "BUILDOS": "linux",
        "BUILDARCH": "amd64",
        "BUILDVARIANT": "",
    }
    with pytest.raises(BuildError, match="invalid platform 'linux'"):
        platform_args("linux")


# ------------------------------------------------------------- scoping


def steps(
    text: str, build_args: dict[str, str] | None = None, stage: int = 0, **kw: object
) -> list[Step]:
    cf = parse(text)
    scope = make_scope(cf, build_args, predefined=platform_args("linux/amd64"))
    return list(walk_stage(cf.stages[stage], scope, **kw))  # type: ignore[arg-type]


def test_from_uses_global_args_with_defaults_and_build_args() -> None:
    cf = parse(
        "ARG TAG=1.36\nARG REPO\nFROM ${REPO:-busybox}:$TAG AS a\n"
        "FROM --platform=$TARGETPLATFORM x\n"
    )
    scope = make_scope(cf, predefined=platform_args("linux/arm64"))
    assert expand_from(cf.stages[0], scope).image == "busybox:1.36"
    assert expand_from(cf.stages[1], scope).platform == "linux/arm64"
    scope = make_scope(cf, {"TAG": "musl", "REPO": "reg/bb"})
    assert expand_from(cf.stages[0], scope).image == "reg/bb:musl"


def test_global_args_see_earlier_global_args() -> None:
    cf = parse("ARG V=1\nARG IMG=base:$V\nFROM $IMG\n")
    assert expand_from(cf.stages[0], make_scope(cf)).image == "base:1"
    assert expand_from(cf.stages[0], make_scope(cf, {"V": "2"})).image == "base:2"


def test_from_that_expands_to_nothing() -> None:
    cf = parse("ARG X\nFROM $X\n")
    with pytest.raises(BuildError) as info:
        expand_from(cf.stages[0], make_scope(cf))
    assert (
        info.value.message
        == "Containerfile:2: FROM $X names no image: it expands to an empty string"
    )


def test_global_arg_not_visible_in_stage_until_redeclared() -> None:
    out = steps("ARG V=g\nFROM s\nWORKDIR /$V\nARG V\nWORKDIR /$V\n")
    first, arg, second = out
    assert isinstance(first.instruction, Workdir) and first.instruction.path == "/"
    assert isinstance(arg.instruction, Arg) and arg.instruction.pairs == (("V", "g"),)
    assert isinstance(second.instruction, Workdir) and second.instruction.path == "/g"
    assert second.args == (("V", "g"),)


def test_build_arg_overrides_default_and_global() -> None:
    out = steps("ARG V=g\nFROM s\nARG V=local\nUSER $V\n", {"V": "cli"})
    assert isinstance(out[1].instruction, User) and out[1].instruction.user == "cli"
    out = steps("ARG V=g\nFROM s\nARG V=local\nUSER $V\n")
    assert isinstance(out[1].instruction, User) and out[1].instruction.user == "local"


def test_arg_without_value_is_unset() -> None:
    out = steps("FROM s\nARG V\nUSER ${V-unset}\nRUN x\n")
    assert isinstance(out[1].instruction, User) and out[1].instruction.user == "unset"
    assert out[2].args == ()


def test_args_do_not_cross_stages_but_env_is_passed_by_caller() -> None:
    text = "FROM s AS a\nARG V=1\nENV E=e\nFROM a\nUSER $V-$E\n"
    out = steps(text, stage=1, base_env=("E=e",))
    assert isinstance(out[0].instruction, User) and out[0].instruction.user == "-e"


def test_env_overrides_arg_whatever_the_order() -> None:
    out = steps("FROM s\nARG V=arg\nENV V=env\nUSER $V\n", {"V": "cli"})
    assert isinstance(out[2].instruction, User) and out[2].instruction.user == "env"
    out = steps("FROM s\nENV V=env\nARG V=arg\nUSER $V\n")
    assert isinstance(out[2].instruction, User) and out[2].instruction.user == "env"


def test_env_pairs_in_one_instruction_see_the_old_values() -> None:
    out = steps("FROM s\nENV abc=hello\nENV abc=bye def=$abc\nENV ghi=$abc\n")
    second, third = out[1].instruction, out[2].instruction
    assert isinstance(second, Env) and second.pairs == (("abc", "bye"), ("def", "hello"))
    assert isinstance(third, Env) and third.pairs == (("ghi", "bye"),)
    assert out[2].env == (("abc", "bye"), ("def", "hello"))


def test_env_keeps_base_order_and_replaces_in_place() -> None:
    out = steps("FROM s\nENV PATH=/x:$PATH NEW=1\nRUN true\n", base_env=("PATH=/bin", "HOME=/root"))
    assert out[1].env == (("PATH", "/x:/bin"), ("HOME", "/root"), ("NEW", "1"))


def test_env_quotes_and_legacy_form() -> None:
    out = steps("FROM s\nENV A=\"a b\" B='$x' C=c\\ d\nENV L the  rest\n")
    assert isinstance(out[0].instruction, Env)
    assert out[0].instruction.pairs == (("A", "a b"), ("B", "$x"), ("C", "c d"))
    assert isinstance(out[1].instruction, Env) and out[1].instruction.pairs == (("L", "the  rest"),)


def test_run_is_not_expanded_but_sees_args_env_and_proxies() -> None:
    out = steps(
        "FROM s\nARG V=1\nENV E=2\nRUN echo $V $E\n",
        {"V": "cli", "HTTP_PROXY": "http://p:3128", "UNUSED": "x"},
        base_env=("PATH=/bin",),
    )
    run = out[2]
    assert isinstance(run.instruction, Run) and run.instruction.command.script == "echo $V $E"
    assert run.args == (("V", "cli"),)
    assert run.proxies == (("HTTP_PROXY", "http://p:3128"),)
    assert run.run_env() == ("HTTP_PROXY=http://p:3128", "V=cli", "PATH=/bin", "E=2")


def test_platform_args_only_inside_stage_when_declared() -> None:
    out = steps("FROM s\nUSER x$TARGETARCH\nARG TARGETARCH TARGETOS\nUSER $TARGETOS/$TARGETARCH\n")
    assert isinstance(out[0].instruction, User) and out[0].instruction.user == "x"
    assert isinstance(out[2].instruction, User) and out[2].instruction.user == "linux/amd64"


def test_where_substitution_applies() -> None:
    text = (
        "FROM s\nARG D=/dst V=7\n"
        "COPY --chown=$V:$V --chmod=${M:-644} --from=$V src/$V <<f$V ${D}/\nbody $V\nf$V\n"
        'LABEL k$V="v $V"\nEXPOSE $V/tcp\nVOLUME $D/v\nWORKDIR $D\n'
        "RUN --mount=type=cache,target=$D/c,id=c$V echo $V\nCMD echo $V\n"
    )
    copy, label, expose, volume, workdir, run, cmd = (s.instruction for s in steps(text)[1:])
    assert isinstance(copy, Copy)
    assert (copy.chown, copy.chmod, copy.from_, copy.sources, copy.dest) == (
        "7:7",
        "644",
        "$V",
        ("src/7",),
        "/dst/",
    )
    assert copy.heredocs[0].content == "body 7\n"
    assert isinstance(label, Label) and label.pairs == (("k7", "v 7"),)
    assert isinstance(expose, Expose) and expose.ports == ("7/tcp",)
    assert isinstance(volume, Volume) and volume.paths == ("/dst/v",)
    assert isinstance(workdir, Workdir) and workdir.path == "/dst"
    assert isinstance(run, Run) and run.mounts[0].target == "/dst/c"
    assert run.mounts[0].option("id") == "c7" and run.command.script == "echo $V"
    assert cmd.text == "CMD echo $V"


def test_quoted_heredoc_in_copy_is_not_expanded() -> None:
    out = steps("FROM s\nARG V=1\nCOPY <<'EOF' /f\n$V\nEOF\n")
    copy = out[1].instruction
    assert isinstance(copy, Copy) and copy.heredocs[0].content == "$V\n"


def test_onbuild_triggers_run_first() -> None:
    from rootless.build.dockerfile import parse_instruction

    trigger = parse_instruction("ENV FROM_TRIGGER=1", filename="base")
    out = steps("FROM s\nUSER $FROM_TRIGGER\n", triggers=(trigger,))
    assert isinstance(out[1].instruction, User) and out[1].instruction.user == "1"


def test_substitution_error_names_file_and_line() -> None:
    with pytest.raises(BuildError) as info:
        steps("FROM s\n\nUSER ${NAME:?set --build-arg NAME}\n")
    assert info.value.message == "Containerfile:3: NAME: set --build-arg NAME"
