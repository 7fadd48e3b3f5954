from __future__ import annotations

import pytest

from rootless.container.imageconfig import merge_env, plan_command
from rootless.errors import ConfigError


@pytest.mark.parametrize(
    ("ep", "cmd", "flag", "args", "expected"),
    [
        (None, ["sh"], None, [], ("sh",)),
        (None, ["sh"], None, ["echo", "x"], ("echo", "x")),
        (["/init"], ["--serve"], None, [], ("/init", "--serve")),
        (["/init"], ["--serve"], None, ["--debug"], ("/init", "--debug")),
        (["/init"], ["--serve"], "/bin/other", [], ("/bin/other",)),
        (["/init"], ["--serve"], "/bin/other", ["a"], ("/bin/other", "a")),
        (["/init"], ["--serve"], "", ["ls"], ("ls",)),
    ],
)
def test_entrypoint_and_cmd_rules(ep, cmd, flag, args, expected):
    assert plan_command(ep, cmd, entrypoint=flag, args=args) == expected


def test_empty_command_is_an_error_with_the_fix():
    with pytest.raises(ConfigError, match="no command specified"):
        plan_command(None, None)


def test_merge_env_user_wins():
    got = merge_env(["PATH=/bin", "A=1", "EMPTY="], [("A", "2"), ("B", "3")])
    assert got == (("PATH", "/bin"), ("A", "2"), ("EMPTY", ""), ("B", "3"))
