"""Pure parts of running rootless nested in a rootless container (issue 8)."""

from __future__ import annotations

import pytest

from rootless.errors import ConfigError
from rootless.runtime.idmap import is_initial_map, nested_plan
from rootless.runtime.plan import RunRequest, parse_security_opts, plan_spec, unmasked
from rootless.runtime.spec import MASKED_PATHS, READONLY_PATHS


def test_initial_user_namespace_is_told_from_a_containers():
    assert is_initial_map("         0          0 4294967295\n")
    assert not is_initial_map("0 1000 1\n1 100000 65536\n")
    # In a rootless container, nested containers get every ID it has, one to one.
    plan = nested_plan("0 1000 1\n1 100000 65536\n", "0 1000 1\n1 100000 65536\n")
    assert plan.direct and not plan.single
    assert [(r.container_id, r.host_id, r.size) for r in plan.uid_map] == [(0, 0, 1), (1, 1, 65536)]


def test_unmask_all_paths_or_some_by_glob():
    assert unmasked(MASKED_PATHS, ("ALL",)) == ()
    assert unmasked(MASKED_PATHS, ()) == MASKED_PATHS
    left = unmasked(MASKED_PATHS, ("/proc/*", "/sys/firmware"))
    assert left and not any(p.startswith("/proc/") or p == "/sys/firmware" for p in left)


def test_unmask_reaches_the_spec():
    spec = plan_spec(RunRequest("/r", ("true",), unmask=("ALL",)), nested_plan("0 0 1", "0 0 1"),
                     container_id="c" * 64)  # fmt: skip
    assert spec.linux.masked_paths == () and spec.linux.readonly_paths == ()
    spec = plan_spec(RunRequest("/r", ("true",)), nested_plan("0 0 1", "0 0 1"),
                     container_id="c" * 64)  # fmt: skip
    assert spec.linux.masked_paths == MASKED_PATHS
    assert spec.linux.readonly_paths == READONLY_PATHS


def test_security_opt_unmask_parsing():
    assert parse_security_opts(["unmask=ALL"]) == ("default", True, ("ALL",))
    assert parse_security_opts(["unmask=/proc/kcore:/sys/*"])[2] == ("/proc/kcore", "/sys/*")
    with pytest.raises(ConfigError, match="unmask=ALL"):
        parse_security_opts(["unmask=proc"])
