"""The seccomp compiler, run through a small classic-BPF interpreter.

The interpreter checks what the kernel's checker checks (forward jumps inside the
program, aligned loads inside seccomp_data, a return at the end of every path) and
then executes the program, so each test asks what the kernel would answer.
"""

from __future__ import annotations

import errno
import json
import struct
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from rootless.errors import ConfigError
from rootless.runtime import seccomp as sc

AUDIT = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
ALLOW = sc.RET_ALLOW
EPERM = sc.RET_ERRNO | errno.EPERM
ENOSYS = sc.RET_ERRNO | errno.ENOSYS
KILL = sc.RET_KILL_PROCESS
U64 = 2**64 - 1
ROOT = Path(__file__).resolve().parents[2]


def decode(program: bytes) -> list[tuple[int, int, int, int]]:
    assert program and len(program) % 8 == 0 and len(program) // 8 <= sc.BPF_MAXINSNS
    return [tuple(i) for i in struct.iter_unpack("=HBBI", program)]


def run(program: bytes, nr: int, *, arch: str = "x86_64", args: Sequence[int] = ()) -> int:
    """Execute ``program`` on one seccomp_data like the kernel does; return its verdict."""
    insns = decode(program)
    full = list(args) + [0] * (6 - len(args))
    data = struct.pack("<IIQ6Q", nr & 0xFFFFFFFF, AUDIT.get(arch, 0x40000003), 0, *full)
    a, pc = 0, 0
    while True:
        assert 0 <= pc < len(insns), "fell off the end of the program"
        code, jt, jf, k = insns[pc]
        pc += 1
        if code == sc.LD_ABS:
            assert k % 4 == 0 and k + 4 <= len(data)
            a = struct.unpack_from("<I", data, k)[0]
        elif code == sc.ALU_AND:
            a &= k
        elif code == sc.JA:
            pc += k
        elif code in (sc.JEQ, sc.JGT, sc.JGE):
            hit = {sc.JEQ: a == k, sc.JGT: a > k, sc.JGE: a >= k}[code]
            pc += jt if hit else jf
        elif code == sc.RET:
            return k
        else:
            raise AssertionError(f"unexpected opcode {code:#x} at {pc - 1}")


def holds(cond: Mapping[str, Any], args: Sequence[int]) -> bool:
    x, v, v2 = args[cond["index"]], cond["value"], cond.get("valueTwo", 0)
    return bool(
        {
            "SCMP_CMP_EQ": x == v,
            "SCMP_CMP_NE": x != v,
            "SCMP_CMP_LT": x < v,
            "SCMP_CMP_LE": x <= v,
            "SCMP_CMP_GT": x > v,
            "SCMP_CMP_GE": x >= v,
            "SCMP_CMP_MASKED_EQ": x & v == v2,
        }[cond["op"]]
    )


def ret_of(entry: Mapping[str, Any], action: str, errno_key: str) -> int:
    base = {
        "SCMP_ACT_ALLOW": ALLOW,
        "SCMP_ACT_ERRNO": sc.RET_ERRNO,
        "SCMP_ACT_KILL": sc.RET_KILL_THREAD,
        "SCMP_ACT_KILL_THREAD": sc.RET_KILL_THREAD,
        "SCMP_ACT_KILL_PROCESS": KILL,
        "SCMP_ACT_TRAP": sc.RET_TRAP,
        "SCMP_ACT_LOG": sc.RET_LOG,
    }[entry[action]]
    if entry[action] == "SCMP_ACT_ERRNO":
        base |= entry.get(errno_key, errno.EPERM)
    return base


def reference(profile: Mapping[str, Any], arch: str, nr: int, args: Sequence[int]) -> int:
    """What the profile means, evaluated directly: the first matching rule decides."""
    table = sc.syscall_table(arch)
    full = list(args) + [0] * (6 - len(args))
    for entry in profile["syscalls"]:
        if nr in {table.get(n) for n in entry["names"]} and all(
            holds(c, full) for c in entry.get("args", [])
        ):
            return ret_of(entry, "action", "errnoRet")
    if nr > max(table.values()):
        return ENOSYS
    return ret_of(profile, "defaultAction", "defaultErrnoRet")


def nr(name: str, arch: str = "x86_64") -> int:
    return sc.syscall_table(arch)[name]


@pytest.fixture(scope="module")
def default() -> dict[str, bytes]:
    return {arch: sc.compile_profile(sc.default_profile(), arch) for arch in AUDIT}


# --- the default profile ------------------------------------------------------------------

BLOCKED = [
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "perf_event_open",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "reboot",
    "open_by_handle_at",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "mount",
    "umount2",
    "pivot_root",
    "unshare",
    "setns",
    "swapon",
    "swapoff",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsmount",
    "fspick",
    "mount_setattr",
    "settimeofday",
    "clock_settime",
    "acct",
    "lookup_dcookie",
    "quotactl",
    "fanotify_init",
    "add_key",
]
ALLOWED = [
    "read",
    "write",
    "openat",
    "close",
    "fstat",
    "newfstatat",
    "statx",
    "openat2",
    "faccessat2",
    "close_range",
    "epoll_pwait2",
    "futex_waitv",
    "rseq",
    "execve",
    "exit_group",
    "mmap",
    "brk",
    "rt_sigaction",
    "getpid",
    "wait4",
    "chown",
    "fchownat",
    "setuid",
    "setgid",
    "setgroups",
    "capset",
    "socket",
    "connect",
    "getrandom",
    "prctl",
]


@pytest.mark.parametrize("arch", sorted(AUDIT))
def test_default_blocks_dangerous_calls_with_eperm(default: dict[str, bytes], arch: str) -> None:
    table = sc.syscall_table(arch)
    for name in BLOCKED:
        if name in table:
            assert run(default[arch], table[name], arch=arch) == EPERM, name


@pytest.mark.parametrize("arch", sorted(AUDIT))
def test_default_allows_ordinary_userland(default: dict[str, bytes], arch: str) -> None:
    table = sc.syscall_table(arch)
    assert len(set(ALLOWED) & set(table)) > 25
    for name in set(ALLOWED) & set(table):
        assert run(default[arch], table[name], arch=arch) == ALLOW, name


@pytest.mark.parametrize("arch", sorted(AUDIT))
def test_default_clone3_gives_enosys_so_libc_falls_back(
    default: dict[str, bytes], arch: str
) -> None:
    assert run(default[arch], nr("clone3", arch), arch=arch) == ENOSYS


@pytest.mark.parametrize("arch", sorted(AUDIT))
def test_default_clone_refuses_namespace_flags(default: dict[str, bytes], arch: str) -> None:
    clone = nr("clone", arch)
    threads = 0x3D0F00  # what glibc's pthread_create passes
    assert run(default[arch], clone, arch=arch, args=[threads]) == ALLOW
    assert run(default[arch], clone, arch=arch, args=[0x01200011]) == ALLOW  # fork()
    for flag in (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000):
        assert run(default[arch], clone, arch=arch, args=[threads | flag]) == EPERM, hex(flag)


def test_default_personality_only_harmless_values(default: dict[str, bytes]) -> None:
    pers = nr("personality")
    for value in (0, 8, 0x20000, 0x20008, 0xFFFFFFFF):
        assert run(default["x86_64"], pers, args=[value]) == ALLOW, hex(value)
    for value in (0x0040000, 0x0400000, 0x1_00000000, 0xFFFFFFFF_FFFFFFFF):
        assert run(default["x86_64"], pers, args=[value]) == EPERM, hex(value)


def test_wrong_arch_kills_the_process(default: dict[str, bytes]) -> None:
    assert run(default["x86_64"], 0, arch="aarch64") == KILL
    assert run(default["aarch64"], 0, arch="x86_64") == KILL
    assert run(default["x86_64"], 0, arch="i386") == KILL


def test_x32_calls_are_killed_but_minus_one_is_not(default: dict[str, bytes]) -> None:
    assert run(default["x86_64"], 0x40000000 + nr("read")) == KILL
    assert run(default["x86_64"], 0x7FFFFFFF) == KILL
    assert run(default["x86_64"], -1) == ENOSYS  # a tracer's "skip this call"
    assert run(default["aarch64"], 0x40000000, arch="aarch64") == ENOSYS


def test_calls_newer_than_the_table_get_enosys(default: dict[str, bytes]) -> None:
    top = max(sc.syscall_table("x86_64").values())
    assert run(default["x86_64"], top + 1) == ENOSYS
    assert run(default["x86_64"], 0x3FFFFFFF) == ENOSYS


@pytest.mark.parametrize("arch", sorted(AUDIT))
def test_default_program_matches_the_profile_for_every_number(
    default: dict[str, bytes], arch: str
) -> None:
    profile = sc.default_profile()
    samples = [[0], [0x3D0F00], [0x10000000], [8], [0x40000], [U64], [0xFFFFFFFF]]
    for n in range(max(sc.syscall_table(arch).values()) + 3):
        for args in samples:
            assert run(default[arch], n, arch=arch, args=args) == reference(
                profile, arch, n, args
            ), (n, args)


def test_default_profile_is_compact(default: dict[str, bytes]) -> None:
    # Ranges of equal outcome are merged: a few hundred calls, far below 4096.
    assert len(default["x86_64"]) // 8 < 300


def test_default_profile_names_are_known_somewhere() -> None:
    known = set(sc.syscall_table("x86_64")) | set(sc.syscall_table("aarch64"))
    for entry in sc.default_profile()["syscalls"]:
        assert set(entry["names"]) <= known, set(entry["names"]) - known


# --- argument conditions ------------------------------------------------------------------

INTERESTING = [0, 1, 2**31, 2**32 - 1, 2**32, 2**32 + 7, 2**40, 2**63, U64 - 1, U64]


@pytest.mark.parametrize("op", sorted(sc.OPS))
@pytest.mark.parametrize("value", [0, 7, 2**32 - 1, 2**32, 2**32 + 7, U64])
def test_64bit_comparisons(op: str, value: int) -> None:
    cond = {"index": 2, "value": value, "valueTwo": value & 0xFFFF0000_0000FFFF, "op": op}
    profile = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["ioctl"], "action": "SCMP_ACT_ALLOW", "args": [cond]}],
    }
    program = sc.compile_profile(profile, "x86_64")
    for x in [*INTERESTING, value - 1 if value else 0, value, min(value + 1, U64)]:
        want = ALLOW if holds(cond, [0, 0, x]) else EPERM
        assert run(program, nr("ioctl"), args=[0, 0, x]) == want, (op, value, x)


def test_conditions_are_anded_and_rules_ored_in_order() -> None:
    profile = {
        "defaultAction": "SCMP_ACT_KILL_PROCESS",
        "syscalls": [
            {
                "names": ["write"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": 5,
                "args": [
                    {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                    {"index": 2, "value": 100, "op": "SCMP_CMP_GT"},
                ],
            },
            {
                "names": ["write"],
                "action": "SCMP_ACT_ALLOW",
                "args": [{"index": 0, "value": 3, "op": "SCMP_CMP_LE"}],
            },
            {"names": ["write"], "action": "SCMP_ACT_LOG"},
            {"names": ["write"], "action": "SCMP_ACT_TRAP"},  # unreachable: LOG matched first
        ],
    }
    program = sc.compile_profile(profile, "x86_64")
    w = nr("write")
    assert run(program, w, args=[1, 0, 101]) == sc.RET_ERRNO | 5
    assert run(program, w, args=[1, 0, 100]) == ALLOW
    assert run(program, w, args=[2, 0, 101]) == ALLOW
    assert run(program, w, args=[4, 0, 101]) == sc.RET_LOG
    assert run(program, nr("read")) == KILL


@pytest.mark.parametrize(
    ("action", "ret"),
    [
        ("SCMP_ACT_KILL", sc.RET_KILL_THREAD),
        ("SCMP_ACT_KILL_THREAD", sc.RET_KILL_THREAD),
        ("SCMP_ACT_KILL_PROCESS", sc.RET_KILL_PROCESS),
        ("SCMP_ACT_TRAP", sc.RET_TRAP),
        ("SCMP_ACT_LOG", sc.RET_LOG),
        ("SCMP_ACT_ALLOW", sc.RET_ALLOW),
        ("SCMP_ACT_ERRNO", sc.RET_ERRNO | errno.EPERM),
    ],
)
def test_actions(action: str, ret: int) -> None:
    profile = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["read"], "action": action}],
    }
    program = sc.compile_profile(profile, "aarch64")
    assert run(program, nr("read", "aarch64"), arch="aarch64") == ret
    assert run(program, nr("write", "aarch64"), arch="aarch64") == ALLOW
    # With an allowing default, calls newer than the table are allowed too.
    assert run(program, 1000, arch="aarch64") == ALLOW


def test_long_programs_jump_past_255_instructions() -> None:
    names = sorted(sc.syscall_table("x86_64"), key=lambda n: nr(n))[:120]
    conds = [{"index": i, "value": i + 1, "op": "SCMP_CMP_NE"} for i in range(6)]
    profile = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "syscalls": [
            {"names": [n], "action": "SCMP_ACT_ERRNO", "errnoRet": 100 + i, "args": conds}
            for i, n in enumerate(names)
        ],
    }
    program = sc.compile_profile(profile, "x86_64")
    insns = decode(program)
    assert len(insns) > 2000
    assert any(code == sc.JA for code, *_ in insns), "no far jump was needed?"
    for args in ([0] * 6, [1, 2, 3, 4, 5, 6], [9, 9, 9, 9, 9, 9]):
        for n in [*names, "ioctl", "keyctl"]:
            got = run(program, nr(n), args=args)
            assert got == reference(profile, "x86_64", nr(n), args), (n, args)


def test_too_many_instructions_is_a_config_error() -> None:
    conds = [{"index": i, "value": 1, "op": "SCMP_CMP_GT"} for i in range(6)]
    rule = {"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": conds}
    profile = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [rule] * 200}
    with pytest.raises(ConfigError, match="more than the kernel's 4096"):
        sc.compile_profile(profile, "x86_64")


# --- parsing and user files ---------------------------------------------------------------


def write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "profile.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_load_profile_file_round_trip(tmp_path: Path) -> None:
    data = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["mkdir", "mkdirat", "no_such_call"], "action": "SCMP_ACT_ERRNO"}],
    }
    loaded = sc.load_profile_file(write(tmp_path, data))
    assert loaded == data
    program = sc.compile_profile(loaded, "x86_64")
    assert run(program, nr("mkdirat")) == EPERM
    assert run(program, nr("mkdir")) == EPERM
    assert run(program, nr("rmdir")) == ALLOW


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{not json", "not valid JSON"),
        ([], "top level is not a JSON object"),
        ({"syscalls": []}, "defaultAction is missing"),
        ({"defaultAction": "SCMP_ACT_NOPE"}, "unknown action 'SCMP_ACT_NOPE'"),
        ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["x86"]}, "unknown architecture"),
        (
            {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": "read", "action": "X"}]},
            r"syscalls\[0\].names",
        ),
        (
            {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "X"}]},
            r"syscalls\[0\] has unknown action 'X'",
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [
                    {
                        "names": ["read"],
                        "action": "SCMP_ACT_ERRNO",
                        "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}],
                    }
                ],
            },
            "index 6",
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [
                    {
                        "names": ["read"],
                        "action": "SCMP_ACT_ERRNO",
                        "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_IN"}],
                    }
                ],
            },
            "unknown op 'SCMP_CMP_IN'",
        ),
        (
            {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": -1},
            "defaultErrnoRet -1",
        ),
        ({"defaultAction": ["SCMP_ACT_ALLOW"]}, "unknown action"),
        ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": "SCMP_ARCH_X86_64"}, "not a list"),
        ({"defaultAction": "SCMP_ACT_ALLOW", "flags": [["x"]]}, "unknown flag"),
        (
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [
                    {"names": ["read"], "action": "SCMP_ACT_LOG", "args": [{"index": 0, "op": []}]}
                ],
            },
            "unknown op",
        ),
    ],
)
def test_bad_profiles_are_config_errors_naming_the_file(
    tmp_path: Path, data: Any, message: str
) -> None:
    path = write(tmp_path, data)
    with pytest.raises(ConfigError, match=message) as info:
        sc.load_profile_file(path)
    assert str(path) in str(info.value)
    assert info.value.hint


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read seccomp profile .*No such file"):
        sc.load_profile_file(tmp_path / "nope.json")


def test_profile_whose_names_all_are_unknown_is_reported(tmp_path: Path) -> None:
    data = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["SYS_read"], "action": "SCMP_ACT_ALLOW"}],
    }
    profile = sc.load_profile_file(write(tmp_path, data))
    with pytest.raises(ConfigError, match="none of its syscall names is known on x86_64"):
        sc.compile_profile(sc.parse_profile(profile, source="p.json"), "x86_64")


def test_profile_for_another_arch_is_refused() -> None:
    profile = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_AARCH64"]}
    with pytest.raises(ConfigError, match="does not cover SCMP_ARCH_X86_64"):
        sc.compile_profile(profile, "x86_64")
    assert run(sc.compile_profile(profile, "arm64"), 0, arch="aarch64") == ALLOW


def test_unsupported_arch() -> None:
    with pytest.raises(ConfigError, match="architecture 'riscv64'"):
        sc.compile_profile({"defaultAction": "SCMP_ACT_ALLOW"}, "riscv64")


def test_docker_style_includes_and_excludes() -> None:
    profile = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
        "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
            {
                "names": ["mount"],
                "action": "SCMP_ACT_ALLOW",
                "includes": {"caps": ["CAP_SYS_ADMIN"]},
            },
            {"names": ["write"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm64"]}},
            {"names": ["close"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": ["amd64"]}},
        ],
    }
    x86 = sc.compile_profile(profile, "x86_64")
    assert [run(x86, nr(n)) for n in ("read", "mount", "write", "close")] == [
        ALLOW,
        EPERM,
        EPERM,
        EPERM,
    ]
    arm = sc.compile_profile({**profile, "archMap": []}, "aarch64")
    got = [run(arm, nr(n, "aarch64"), arch="aarch64") for n in ("read", "write", "close")]
    assert got == [ALLOW, ALLOW, ALLOW]


def test_flags_are_parsed() -> None:
    profile = sc.parse_profile(
        {"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG"]}
    )
    assert profile.flags == 2
    with pytest.raises(ConfigError, match="unknown flag"):
        sc.parse_profile({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["NOPE"]})


def test_default_profile_is_a_fresh_copy() -> None:
    a = sc.default_profile()
    a["syscalls"].clear()
    assert sc.default_profile()["syscalls"]


# --- the on-disk cache --------------------------------------------------------------------


def test_default_program_is_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = sc.default_program("x86_64", cache_dir=tmp_path)
    assert first == sc.compile_profile(sc.default_profile(), "x86_64")
    [entry] = tmp_path.glob("x86_64-*.bpf")
    assert entry.read_bytes() == first

    def no_compile(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("compiled although the cache is current")

    monkeypatch.setattr(sc, "compile_profile", no_compile)
    assert sc.default_program("x86_64", cache_dir=tmp_path) == first


def test_broken_and_stale_cache_entries_are_replaced(tmp_path: Path) -> None:
    good = sc.default_program("aarch64", cache_dir=tmp_path)
    [entry] = tmp_path.glob("aarch64-*.bpf")
    entry.write_bytes(b"\x00" * 5)
    (tmp_path / "aarch64-0000000000000000.bpf").write_bytes(good)  # an older compiler's
    assert sc.default_program("aarch64", cache_dir=tmp_path) == good
    assert [p.name for p in tmp_path.glob("aarch64-*.bpf")] == [entry.name]
    assert entry.read_bytes() == good


def test_unwritable_cache_still_gives_a_program(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    program = sc.default_program("x86_64", cache_dir=blocker / "sub")
    assert program == sc.compile_profile(sc.default_profile(), "x86_64")


def test_cache_dir_follows_xdg() -> None:
    assert sc.default_cache_dir({"XDG_CACHE_HOME": "/c"}) == Path("/c/rootless/seccomp")
    assert sc.default_cache_dir({"HOME": "/h"}) == Path("/h/.cache/rootless/seccomp")


def test_cache_hit_does_not_import_json(tmp_path: Path) -> None:
    sc.default_program(cache_dir=tmp_path)
    code = (
        "import sys\n"
        "before = {'json', 'hashlib'} & set(sys.modules)\n"
        "from rootless.runtime.seccomp import default_program\n"
        f"default_program(cache_dir={str(tmp_path)!r})\n"
        "print(sorted({'json', 'hashlib'} & set(sys.modules) - before))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
