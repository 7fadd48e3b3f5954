"""Pure parsing of -v, --mount, --tmpfs and --userns=keep-id maps."""

from __future__ import annotations

import pytest

from rootless.errors import ConfigError, IDMapError
from rootless.runtime.idmap import (
    IDMapPlan,
    IDRange,
    parse_userns,
    plan_idmap,
    plan_keep_id,
)
from rootless.runtime.mounts import plan_mount
from rootless.runtime.spec import Mount
from rootless.sys import mount as m
from rootless.volumes.parse import (
    MountSpec,
    parse_mount_flag,
    parse_tmpfs_flag,
    parse_volume_flag,
    plan_mounts,
    to_runtime_mount,
)
from rootless.volumes.store import parse_options


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/data", MountSpec("volume", "/data", None, ())),
        ("/data:ro", MountSpec("volume", "/data", None, ("ro",))),
        ("/data/:nocopy", MountSpec("volume", "/data", None, (), copy=False)),
        ("vol:/data", MountSpec("volume", "/data", "vol", ())),
        ("my.vol_1:/data:ro,z", MountSpec("volume", "/data", "my.vol_1", ("ro", "z"))),
        ("vol:/data:nocopy", MountSpec("volume", "/data", "vol", (), copy=False)),
        ("/host:/ctr", MountSpec("bind", "/ctr", "/host", ())),
        ("/host/../h2:/ctr//x:ro,Z", MountSpec("bind", "/ctr/x", "/h2", ("ro", "Z"))),
        ("./rel:/ctr:rslave", MountSpec("bind", "/ctr", "/work/rel", ("rslave",))),
    ],
)
def test_volume_flag(text, expected):
    assert parse_volume_flag(text, cwd="/work") == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "invalid volume"),
        ("a:b:c:d", "invalid volume"),
        (":/ctr", "invalid volume"),
        ("vol", "is not absolute"),
        ("/host:ctr", 'unknown option "ctr"'),
        ("/host:/", "cannot mount over the container's root"),
        ("bad name:/x", "neither an absolute path nor a volume name"),
        ("_vol:/x", "neither an absolute path nor a volume name"),
        ("/host:/ctr:nocopy", 'unknown option "nocopy"'),
        ("vol:/ctr:U", "U (chown the source"),
        ("vol:/ctr:size=1", 'unknown option "size=1"'),
    ],
)
def test_volume_flag_errors(text, message):
    with pytest.raises(ConfigError) as info:
        parse_volume_flag(text)
    assert message in str(info.value)


def test_readonly_is_the_last_word():
    assert parse_volume_flag("/h:/c:ro").readonly
    assert not parse_volume_flag("/h:/c:ro,rw").readonly
    assert not parse_volume_flag("/h:/c").readonly


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "type=bind,source=/h,target=/c",
            MountSpec("bind", "/c", "/h", ("rbind",)),
        ),
        (
            "type=bind,src=/h,dst=/c,ro,bind-propagation=rslave",
            MountSpec("bind", "/c", "/h", ("rbind", "ro", "rslave")),
        ),
        (
            "type=bind,source=/h,destination=/c,readonly=false,bind-nonrecursive",
            MountSpec("bind", "/c", "/h", ("bind", "rw")),
        ),
        ("type=volume,source=v,target=/c", MountSpec("volume", "/c", "v", ())),
        ("source=v,target=/c,readonly", MountSpec("volume", "/c", "v", ("ro",))),
        ("type=volume,target=/c", MountSpec("volume", "/c", None, ())),
        (
            "type=volume,target=/c,volume-nocopy=true",
            MountSpec("volume", "/c", None, (), copy=False),
        ),
        (
            "type=tmpfs,target=/t,tmpfs-size=64m,tmpfs-mode=1777",
            MountSpec("tmpfs", "/t", None, ("rw", "nosuid", "nodev", "size=67108864", "mode=1777")),
        ),
        ("type=tmpfs,dst=/t,ro", MountSpec("tmpfs", "/t", None, ("rw", "nosuid", "nodev", "ro"))),
        (
            "type=bind,source=./x/../y,target=/c,z,relabel=shared",
            MountSpec("bind", "/c", "/w/y", ("rbind",)),
        ),
    ],
)
def test_mount_flag(text, expected):
    assert parse_mount_flag(text, cwd="/w") == expected


def test_mount_flag_rejects_a_bare_relative_bind_source():
    with pytest.raises(ConfigError, match="is not a path"):
        parse_mount_flag("type=bind,source=rel,target=/c")
    assert parse_mount_flag("type=bind,source=./rel,target=/c", cwd="/w").source == "/w/rel"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("type=nfs,target=/c", 'type "nfs" is not supported'),
        ("type=bind,source=/h", "no target"),
        ("type=bind,target=/c", "needs source"),
        ("type=tmpfs,source=/x,target=/c", "takes no source"),
        ("type=volume,target=/c,tmpfs-size=1m", "tmpfs-size is only for type=tmpfs"),
        ("type=tmpfs,target=/c,bind-propagation=rslave", "only for type=bind"),
        ("type=bind,source=/h,target=/c,bind-propagation=weird", "bind-propagation"),
        ("type=bind,source=/h,target=/c,ro=maybe", "is not true or false"),
        ("type=tmpfs,target=/c,tmpfs-mode=999", "not an octal permission"),
        ("type=tmpfs,target=/c,tmpfs-size=lots", "invalid tmpfs-size"),
        ("type=volume,target=/c,colour=blue", 'unknown key "colour"'),
        ("type=volume,source=a b,target=/c", "neither an absolute path nor a volume name"),
    ],
)
def test_mount_flag_errors(text, message):
    with pytest.raises(ConfigError) as info:
        parse_mount_flag(text)
    assert message in str(info.value)


def test_tmpfs_flag_defaults_and_overrides():
    assert parse_tmpfs_flag("/run") == MountSpec(
        "tmpfs", "/run", None, ("rw", "noexec", "nosuid", "nodev")
    )
    spec = parse_tmpfs_flag("/run:size=64m,mode=1777,exec")
    call = plan_mount(to_runtime_mount(spec))
    assert call.fstype == "tmpfs"
    assert call.data == "size=64m,mode=1777"
    assert call.flags == m.MS_NOSUID | m.MS_NODEV  # exec cleared the default noexec


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("run", "is not absolute"),
        ("/run:tmpcopyup", 'unknown option "tmpcopyup"'),
        ("/run:colour=red", 'unknown option "colour=red"'),
        ("/run:mode=rwx", "not an octal permission"),
        ("/run:uid=bob", "is not a number"),
    ],
)
def test_tmpfs_flag_errors(text, message):
    with pytest.raises(ConfigError) as info:
        parse_tmpfs_flag(text)
    assert message in str(info.value)


def test_plan_mounts_adds_image_volumes_not_covered_and_orders_parents_first():
    specs = plan_mounts(
        ["/data/logs", "named:/cache"],
        ["type=tmpfs,target=/tmp"],
        [],
        image_volumes=["/data", "/cache", "/var/lib/x/"],
    )
    assert [(s.kind, s.target, s.source) for s in specs] == [
        ("volume", "/cache", "named"),
        ("tmpfs", "/tmp", None),
        ("volume", "/data", None),
        ("volume", "/data/logs", None),
        ("volume", "/var/lib/x", None),
    ]


def test_plan_mounts_refuses_two_mounts_on_one_path():
    with pytest.raises(ConfigError, match="duplicate mount destination /data"):
        plan_mounts(["v:/data"], [], ["/data/"])


def test_runtime_mounts():
    assert to_runtime_mount(parse_volume_flag("/h:/c:ro")) == Mount(
        "/c", "bind", "/h", ("rbind", "ro")
    )
    assert to_runtime_mount(parse_mount_flag("type=bind,src=/h,dst=/c,bind-nonrecursive")) == Mount(
        "/c", "bind", "/h", ("bind",)
    )
    vol = to_runtime_mount(parse_volume_flag("v:/c:ro"), "/vols/v/_data")
    assert vol == Mount("/c", "bind", "/vols/v/_data", ("rbind", "nosuid", "nodev", "ro"))
    call = plan_mount(vol)
    assert call.bind and call.remount_flags == m.MS_NOSUID | m.MS_NODEV | m.MS_RDONLY


def test_volume_create_options():
    assert parse_options({}) == (None, None)
    assert parse_options({"o": "uid=1000,gid=100"}) == (1000, 100)
    with pytest.raises(ConfigError, match='unsupported volume option "type"'):
        parse_options({"type": "tmpfs"})
    with pytest.raises(ConfigError, match='unsupported volume mount option "size=1m"'):
        parse_options({"o": "size=1m"})


# --- --userns=keep-id ------------------------------------------------------------

SUBIDS = "ana:100000:65536\n"


def _base() -> IDMapPlan:
    return plan_idmap(1000, 1000, "ana", SUBIDS, SUBIDS)


def test_keep_id_map_is_podmans():
    plan = plan_keep_id(_base(), 1000, 1000, 1000, 1001)
    assert plan.uid_map == (
        IDRange(0, 100000, 1000),
        IDRange(1000, 1000, 1),
        IDRange(1001, 101000, 64536),
    )
    assert plan.gid_map == (
        IDRange(0, 100000, 1001),
        IDRange(1001, 1000, 1),
        IDRange(1002, 101001, 64535),
    )
    assert plan.size == 65537 and not plan.single


def test_keep_id_across_several_subordinate_ranges_and_above_them():
    text = "ana:100000:10\nana:500000:10\n"
    base = plan_idmap(1000, 1000, "ana", text, text)
    plan = plan_keep_id(base, 1000, 1000, 15, 30)
    assert plan.uid_map == (
        IDRange(0, 100000, 10),
        IDRange(10, 500000, 5),
        IDRange(15, 1000, 1),
        IDRange(16, 500005, 5),
    )
    # Above every subordinate ID: a gap, then the user.
    assert plan.gid_map == (IDRange(0, 100000, 10), IDRange(10, 500000, 10), IDRange(30, 1000, 1))
    # At a boundary between two ranges.
    assert plan_keep_id(base, 1000, 1000, 10, 0).uid_map == (
        IDRange(0, 100000, 10),
        IDRange(10, 1000, 1),
        IDRange(11, 500000, 10),
    )
    assert plan_keep_id(base, 1000, 1000, 10, 0).gid_map == (
        IDRange(0, 1000, 1),
        IDRange(1, 100000, 10),
        IDRange(11, 500000, 10),
    )


def test_keep_id_needs_a_subordinate_range():
    single = plan_idmap(1000, 1000, "ana", "", "")
    with pytest.raises(IDMapError, match="no subordinate ID range"):
        plan_keep_id(single, 1000, 1000, 1000, 1000)


def test_parse_userns():
    assert parse_userns(None) is None
    assert parse_userns("host") is None
    assert parse_userns("keep-id", 1000, 1001) == (1000, 1001)
    assert parse_userns("keep-id:uid=200,gid=210", 1000, 1001) == (200, 210)
    assert parse_userns("keep-id:gid=5", 1000, 1001) == (1000, 5)
    with pytest.raises(ConfigError, match='unsupported --userns "auto"'):
        parse_userns("auto")
    with pytest.raises(ConfigError, match='unknown option "size=9"'):
        parse_userns("keep-id:size=9")
