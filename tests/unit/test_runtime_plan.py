"""Pure planning code of the runtime: id maps, capabilities, mounts, spec, users, env."""

from __future__ import annotations

import json
import os
import resource

import pytest

from rootless.errors import ConfigError
from rootless.runtime import capabilities as caps
from rootless.runtime import mounts, spec
from rootless.runtime.idmap import IDRange, parse_subid, plan_idmap
from rootless.runtime.plan import RunRequest, parse_env_lines, parse_ulimit, plan_spec
from rootless.runtime.securejoin import resolve_in_root
from rootless.runtime.users import resolve_user
from rootless.sys import mount as m

SUBUID = "# comment\nana:100000:65536\nbob:200000:1000\n1001:300000:10\nana:500000:5\n"


def test_parse_subid_by_name_and_uid():
    assert parse_subid(SUBUID, "ana", 1000) == [(100000, 65536), (500000, 5)]
    assert parse_subid(SUBUID, "carl", 1001) == [(300000, 10)]
    assert parse_subid(SUBUID, "dora", 1002) == []


def test_plan_idmap_with_ranges():
    plan = plan_idmap(1000, 1000, "ana", SUBUID, SUBUID)
    assert not plan.single and plan.warning is None
    assert plan.uid_map == (
        IDRange(0, 1000, 1),
        IDRange(1, 100000, 65536),
        IDRange(65537, 500000, 5),
    )
    assert plan.size == 65542


def test_plan_idmap_without_range_warns_with_the_fix():
    plan = plan_idmap(1002, 1002, "dora", SUBUID, SUBUID)
    assert plan.single
    assert plan.uid_map == (IDRange(0, 1002, 1),)
    assert (
        plan.warning and "/etc/subuid" in plan.warning and "usermod --add-subuids" in plan.warning
    )


def test_default_capabilities_match_podman():
    assert caps.plan_capabilities() == tuple(
        f"CAP_{c}" for c in caps.CAPABILITIES if c in caps.DEFAULT_CAPABILITIES
    )
    assert caps.mask(caps.plan_capabilities()) == 0x800405FB


def test_cap_add_drop_rules():
    assert "CAP_NET_ADMIN" in caps.plan_capabilities(add=["net_admin"])
    assert "CAP_CHOWN" not in caps.plan_capabilities(drop=["CAP_CHOWN"])
    assert caps.plan_capabilities(drop=["ALL"], add=["NET_RAW"]) == ("CAP_NET_RAW",)
    assert len(caps.plan_capabilities(add=["all"])) == len(caps.CAPABILITIES)
    with pytest.raises(ConfigError, match='unknown capability "CAP_FLY"'):
        caps.plan_capabilities(add=["CAP_FLY"])


def test_mask_ignores_caps_newer_than_kernel():
    assert caps.mask(["CAP_CHECKPOINT_RESTORE", "CAP_CHOWN"], last_cap=39) == 1


def test_plan_mount_bind_readonly_needs_a_remount():
    call = mounts.plan_mount(spec.Mount("/data", "bind", "/host", ("rbind", "ro", "nosuid", "z")))
    assert call.bind and call.flags == m.MS_BIND | m.MS_REC
    assert call.remount_flags == m.MS_RDONLY | m.MS_NOSUID


def test_plan_mount_filesystem_keeps_data_options():
    call = mounts.plan_mount(
        spec.Mount("/dev", "tmpfs", "tmpfs", ("nosuid", "mode=755", "size=1k"))
    )
    assert not call.bind and call.fstype == "tmpfs"
    assert call.flags == m.MS_NOSUID and call.data == "mode=755,size=1k"


def test_plan_mount_rejects_data_on_bind():
    with pytest.raises(ConfigError, match="unsupported option 'size=1k'"):
        mounts.plan_mount(spec.Mount("/x", "bind", "/y", ("size=1k",)))


def test_default_mounts_bind_sys_for_host_network():
    own = {mt.destination: mt for mt in mounts.default_mounts(own_network=True)}
    host = {mt.destination: mt for mt in mounts.default_mounts(own_network=False)}
    assert own["/sys"].type == "sysfs"
    assert host["/sys"].type == "bind" and "ro" in host["/sys"].options


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/a:/b", spec.Mount("/b", "bind", "/a", ("rbind",))),
        ("/a:/b:ro,Z", spec.Mount("/b", "bind", "/a", ("rbind", "ro", "Z"))),
    ],
)
def test_parse_volume(text, expected):
    assert mounts.parse_volume(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("/a", "invalid volume"),
        ("rel:/b", "not absolute"),
        ("/a:b", "not absolute"),
        ("/a:/b:bogus", 'unknown option "bogus"'),
    ],
)
def test_parse_volume_errors(text, message):
    with pytest.raises(ConfigError, match=message):
        mounts.parse_volume(text)


def _plan(**kw):  # type: ignore[no-untyped-def]
    idmap = plan_idmap(1000, 1000, "ana", SUBUID, SUBUID)
    return plan_spec(RunRequest(rootfs="/r", args=("sh",), **kw), idmap, container_id="ab" * 32)


def test_plan_spec_defaults():
    s = _plan()
    assert s.hostname == "abababababab"
    assert s.linux.has_namespace("network") and s.linux.has_namespace("user")
    assert "container=rootless" in s.process.env and "HOSTNAME=abababababab" in s.process.env
    assert s.process.capabilities.effective == caps.plan_capabilities()
    assert s.process.no_new_privileges
    assert [mt.destination for mt in s.mounts][:2] == ["/proc", "/dev"]
    assert s.linux.uid_mappings[1] == spec.IDMapping(1, 100000, 65536)


def test_plan_spec_host_network_and_user_annotation():
    s = _plan(network="host", user="app:extra")
    assert not s.linux.has_namespace("network")
    assert s.annotations[spec.USER_ANNOTATION] == "app:extra"
    # The exec clears these for a non-root user, as it has no ambient capabilities.
    assert s.process.capabilities.bounding == caps.plan_capabilities()
    assert s.process.capabilities.ambient == ()


def test_plan_spec_rejects_unknown_network():
    with pytest.raises(ConfigError, match='network mode "bridge" is not supported'):
        _plan(network="bridge")


def test_spec_json_round_trip(tmp_path):
    s = _plan(
        env=(("A", "1"),),
        volumes=(spec.Mount("/d", "bind", "/h", ("rbind", "ro")),),
        seccomp=None,
        ulimits=(spec.Rlimit("RLIMIT_NOFILE", 10, 20),),
    )
    spec.save(s, tmp_path / "config.json")
    data = json.loads((tmp_path / "config.json").read_text())
    assert data["ociVersion"] == spec.OCI_VERSION
    assert data["process"]["noNewPrivileges"] is True
    assert data["linux"]["uidMappings"][0] == {"containerID": 0, "hostID": 1000, "size": 1}
    assert spec.load(tmp_path / "config.json") == s


def test_overlay_root_round_trips_as_an_annotation(tmp_path):
    s = _plan()
    s = spec.Spec(
        process=s.process,
        root=spec.Root("/merged", overlay="lowerdir=/l,upperdir=/u,workdir=/w,userxattr"),
        linux=spec.Linux(seccomp=None),
        annotations={"a": "b"},
    )
    data = spec.to_dict(s)
    assert data["annotations"][spec.OVERLAY_ANNOTATION].startswith("lowerdir=/l")
    assert spec.from_dict(data) == s


def test_spec_with_default_seccomp_writes_the_profile():
    data = spec.to_dict(_plan())
    assert data["linux"]["seccomp"]["defaultAction"] == "SCMP_ACT_ERRNO"


def test_spec_load_errors_name_the_file(tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text("{")
    with pytest.raises(ConfigError, match=r"config\.json is not valid JSON"):
        spec.load(bad)
    bad.write_text('{"process": {}}')
    with pytest.raises(ConfigError, match="invalid OCI runtime config"):
        spec.load(bad)


PASSWD = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\n"
GROUP = "root:x:0:\napp:x:1001:\nextra:x:2000:app,bob\nother:x:3000:bob\n"


@pytest.mark.parametrize(
    ("text", "uid", "gid", "extra", "home"),
    [
        ("app", 1000, 1001, (2000,), "/home/app"),
        ("1000", 1000, 1001, (2000,), "/home/app"),
        ("app:other", 1000, 3000, (), "/home/app"),
        ("4242", 4242, 0, (), "/"),
        ("4242:77", 4242, 77, (), "/"),
        ("root", 0, 0, (), "/root"),
    ],
)
def test_resolve_user(text, uid, gid, extra, home):
    r = resolve_user(text, PASSWD, GROUP)
    assert (r.user.uid, r.user.gid, r.user.additional_gids, r.home) == (uid, gid, extra, home)


def test_resolve_user_unknown_names():
    with pytest.raises(ConfigError, match="unable to find user nobody"):
        resolve_user("nobody", PASSWD, GROUP)
    with pytest.raises(ConfigError, match="unable to find group wheel"):
        resolve_user("app:wheel", PASSWD, GROUP)


def test_parse_env_lines():
    got = parse_env_lines(["A=1", "B", "C", "# c", "", "D=x=y"], {"B": "host"})
    assert got == [("A", "1"), ("B", "host"), ("D", "x=y")]
    with pytest.raises(ConfigError, match="invalid environment variable"):
        parse_env_lines(["=x"], {})


def test_parse_ulimit():
    assert parse_ulimit("nofile=10:20") == spec.Rlimit("RLIMIT_NOFILE", 10, 20)
    assert parse_ulimit("core=-1").soft == resource.RLIM_INFINITY
    for bad in ("nofile", "bogus=1", "nofile=a", "nofile=5:4"):
        with pytest.raises(ConfigError, match="invalid ulimit"):
            parse_ulimit(bad)


def test_resolve_in_root_clamps_symlinks(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "abs").symlink_to("/etc")
    (root / "up").symlink_to("../../../../")
    (root / "loop").symlink_to("loop")
    r = str(root)
    assert resolve_in_root(r, "/abs/passwd") == os.path.join(r, "etc/passwd")
    assert resolve_in_root(r, "/up/etc") == os.path.join(r, "etc")
    assert resolve_in_root(r, "/../../x") == os.path.join(r, "x")
    assert resolve_in_root(r, "/missing/dir") == os.path.join(r, "missing/dir")
    with pytest.raises(ConfigError, match="too many levels of symbolic links"):
        resolve_in_root(r, "/loop")


def test_nested_plan_is_an_identity_map_of_the_whole_namespace():
    from rootless.runtime.idmap import nested_plan

    plan = nested_plan(
        "         0       1001          1\n         1     100000      65536\n",
        "         0       1001          1\n         1     100000      65536\n",
    )
    assert plan.direct and not plan.single
    assert plan.uid_map == (IDRange(0, 0, 1), IDRange(1, 1, 65536))


def test_default_seccomp_can_be_written_by_name():
    s = _plan()
    data = spec.to_dict(s, expand_default_seccomp=False)
    assert "seccomp" not in data["linux"]
    assert data["annotations"][spec.SECCOMP_ANNOTATION] == "default"
    back = spec.from_dict(data)
    assert back.linux.seccomp == "default"
    assert spec.SECCOMP_ANNOTATION not in back.annotations
