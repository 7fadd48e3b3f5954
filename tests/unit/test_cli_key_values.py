"""--label/--opt KEY=VALUE parsing shared by network create and volume create."""

from __future__ import annotations

import pytest

from rootless.cli._common import key_values
from rootless.errors import ConfigError


def test_pairs_and_bare_keys() -> None:
    assert key_values(["a=1", "b=x=y", "c="], "label") == {"a": "1", "b": "x=y", "c": ""}
    assert key_values(["flag", "o=uid=1"], "opt", bare_keys=True) == {"flag": "", "o": "uid=1"}


@pytest.mark.parametrize(("item", "bare"), [("flag", False), ("=1", False), ("=1", True)])
def test_bad_pairs_name_the_flag(item: str, bare: bool) -> None:
    with pytest.raises(ConfigError, match=f'invalid --label "{item}"'):
        key_values([item], "label", bare_keys=bare)
