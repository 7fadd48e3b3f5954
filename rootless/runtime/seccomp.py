"""Seccomp profiles: the shipped default, user files, and their compiler to classic BPF.

A profile is an OCI runtime-spec ``linux.seccomp`` object (``defaultAction``,
``defaultErrnoRet``, ``architectures``, ``syscalls``). :func:`parse_profile` checks one
into a :class:`SeccompProfile`; :func:`compile_profile` turns that into the
``struct sock_filter`` array the kernel loads (see ``rootless.sys.seccomp``).

The compiled program:

1. loads ``seccomp_data.arch`` and kills the process unless it is the target arch;
2. on x86_64 kills x32 calls (``nr >= 0x40000000``; ``nr == -1`` is let through,
   tracers use it to skip a call);
3. finds the call's number by binary search over ranges of numbers that share one
   outcome, so an allowlist of ~300 calls costs about 8 comparisons;
4. for calls with argument conditions tries the rules in profile order and returns
   the first whose conditions all hold, else the default action.

Numbers above the highest one in our table (calls newer than the table) get ENOSYS
instead of the default errno, so libc falls back as it would on an older kernel.

The default program is cached on disk by :func:`default_program`; a cache hit reads
four small files and imports neither json nor hashlib.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import struct
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rootless._record import Record
from rootless.errors import ConfigError

DATA_DIR = Path(__file__).parent / "data"
DEFAULT_PROFILE_PATH = DATA_DIR / "seccomp.json"
SYSCALL_TABLE_PATH = DATA_DIR / "syscalls.json"

# Return values from linux/seccomp.h; the low 16 bits carry the errno / trace message.
RET_KILL_PROCESS = 0x80000000
RET_KILL_THREAD = 0x00000000
RET_TRAP = 0x00030000
RET_ERRNO = 0x00050000
RET_TRACE = 0x7FF00000
RET_LOG = 0x7FFC0000
RET_ALLOW = 0x7FFF0000
RET_DATA = 0x0000FFFF

# Actions that take errnoRet as their data (TRACE passes it to the tracer as a message).
_ACTIONS_WITH_DATA = {"SCMP_ACT_ERRNO": RET_ERRNO, "SCMP_ACT_TRACE": RET_TRACE}
_ACTIONS = {
    "SCMP_ACT_ALLOW": RET_ALLOW,
    "SCMP_ACT_LOG": RET_LOG,
    "SCMP_ACT_TRAP": RET_TRAP,
    "SCMP_ACT_KILL": RET_KILL_THREAD,
    "SCMP_ACT_KILL_THREAD": RET_KILL_THREAD,
    "SCMP_ACT_KILL_PROCESS": RET_KILL_PROCESS,
    **_ACTIONS_WITH_DATA,
}

OPS = frozenset(
    {
        "SCMP_CMP_EQ",
        "SCMP_CMP_NE",
        "SCMP_CMP_LT",
        "SCMP_CMP_LE",
        "SCMP_CMP_GT",
        "SCMP_CMP_GE",
        "SCMP_CMP_MASKED_EQ",
    }
)

FILTER_FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": 1,
    "SECCOMP_FILTER_FLAG_LOG": 2,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4,
}

# Every arch name libseccomp knows; profiles written for Docker list several.
KNOWN_ARCHES = frozenset(
    {
        "SCMP_ARCH_NATIVE",
        "SCMP_ARCH_X86",
        "SCMP_ARCH_X86_64",
        "SCMP_ARCH_X32",
        "SCMP_ARCH_ARM",
        "SCMP_ARCH_AARCH64",
        "SCMP_ARCH_MIPS",
        "SCMP_ARCH_MIPS64",
        "SCMP_ARCH_MIPS64N32",
        "SCMP_ARCH_MIPSEL",
        "SCMP_ARCH_MIPSEL64",
        "SCMP_ARCH_MIPSEL64N32",
        "SCMP_ARCH_PPC",
        "SCMP_ARCH_PPC64",
        "SCMP_ARCH_PPC64LE",
        "SCMP_ARCH_S390",
        "SCMP_ARCH_S390X",
        "SCMP_ARCH_PARISC",
        "SCMP_ARCH_PARISC64",
        "SCMP_ARCH_RISCV64",
        "SCMP_ARCH_LOONGARCH64",
        "SCMP_ARCH_M68K",
        "SCMP_ARCH_SH",
        "SCMP_ARCH_SHEB",
    }
)


class Arch(Record):
    """A target the compiler knows: its AUDIT_ARCH_* value and syscall table key."""

    name: str  # key in syscalls.json, as os.uname().machine spells it
    scmp: str  # the profile's spelling
    audit: int
    x32_bit: int | None = None  # numbers with this bit set belong to the x32 ABI


ARCHES = {
    "x86_64": Arch("x86_64", "SCMP_ARCH_X86_64", 0xC000003E, x32_bit=0x40000000),
    "aarch64": Arch("aarch64", "SCMP_ARCH_AARCH64", 0xC00000B7),
}
_DOCKER_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}
_ARCH_ALIASES = {v: k for k, v in _DOCKER_ARCH.items()} | {a.scmp: a.name for a in ARCHES.values()}

MAX_ARGS_PER_RULE = 6
BPF_MAXINSNS = 4096


class ArgCondition(Record):
    """One OCI ``args`` entry: compare 64-bit syscall argument ``index``."""

    arg: int  # the OCI "index": which syscall argument (a NamedTuple cannot say index)
    value: int
    value_two: int
    op: str


class SyscallRule(Record):
    """One ``syscalls`` entry: its conditions are ANDed; ``ret`` is the SECCOMP_RET_* value.

    ``only_arches``/``skip_arches`` come from Docker's ``includes``/``excludes``.
    """

    names: tuple[str, ...]
    ret: int
    args: tuple[ArgCondition, ...] = ()
    only_arches: tuple[str, ...] = ()
    skip_arches: tuple[str, ...] = ()

    def applies_to(self, arch: Arch) -> bool:
        short = arch.scmp.removeprefix("SCMP_ARCH_").lower()
        names = {arch.name, short, _DOCKER_ARCH[arch.name]}
        if self.only_arches and not names & set(self.only_arches):
            return False
        return not names & set(self.skip_arches)


class SeccompProfile(Record):
    """A checked profile; ``source`` names where it came from, for messages."""

    default_ret: int
    architectures: tuple[str, ...]
    rules: tuple[SyscallRule, ...]
    flags: int = 0
    source: str = "the profile"


# --- parsing ------------------------------------------------------------------------------


def _fail(source: str, what: str, fix: str) -> ConfigError:
    return ConfigError(f"invalid seccomp profile {source}: {what}", hint=fix)


def _u64(value: Any, source: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**64:
        raise _fail(source, f"{where} is {value!r}", "use an integer from 0 to 2**64-1")
    return value


def _action(entry: Mapping[str, Any], key: str, errno_key: str, source: str, where: str) -> int:
    name = entry.get(key)
    if not isinstance(name, str) or name not in _ACTIONS:
        raise _fail(
            source,
            f"{where} has unknown action {name!r}",
            "use one of " + ", ".join(sorted(_ACTIONS)),
        )
    ret = _ACTIONS[name]
    if name in _ACTIONS_WITH_DATA:
        data = entry.get(errno_key, errno.EPERM if name == "SCMP_ACT_ERRNO" else 0)
        if isinstance(data, bool) or not isinstance(data, int) or not 0 <= data <= RET_DATA:
            raise _fail(source, f"{where} has {errno_key} {data!r}", "use an errno from 0 to 65535")
        ret |= data
    return ret


def _condition(arg: Any, source: str, where: str) -> ArgCondition:
    if not isinstance(arg, Mapping):
        raise _fail(
            source, f"{where} is not an object", 'write {"index": 0, "value": ..., "op": ...}'
        )
    index = arg.get("index")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= 5:
        raise _fail(source, f"{where} has index {index!r}", "syscall arguments are numbered 0 to 5")
    op = arg.get("op")
    if not isinstance(op, str) or op not in OPS:
        raise _fail(
            source, f"{where} has unknown op {op!r}", "use one of " + ", ".join(sorted(OPS))
        )
    return ArgCondition(
        arg=index,
        value=_u64(arg.get("value", 0), source, f"{where}.value"),
        value_two=_u64(arg.get("valueTwo", 0), source, f"{where}.valueTwo"),
        op=op,
    )


def _rule(entry: Any, i: int, source: str) -> SyscallRule | None:
    where = f"syscalls[{i}]"
    if not isinstance(entry, Mapping):
        raise _fail(source, f"{where} is not an object", 'write {"names": [...], "action": ...}')
    names = entry.get("names", [entry["name"]] if "name" in entry else None)
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        raise _fail(source, f"{where}.names is {names!r}", "give a non-empty list of syscall names")
    ret = _action(entry, "action", "errnoRet", source, where)
    args = entry.get("args") or []
    if not isinstance(args, list) or len(args) > MAX_ARGS_PER_RULE:
        raise _fail(
            source,
            f"{where}.args must be a list of at most {MAX_ARGS_PER_RULE} conditions",
            "split the rule into several rules for the same syscall (they are ORed)",
        )
    conds = tuple(_condition(a, source, f"{where}.args[{j}]") for j, a in enumerate(args))
    # Docker's profile format gates some rules on arches; capability and kernel gates
    # cannot be judged here, so such rules are left out (the stricter choice).
    includes, excludes = entry.get("includes") or {}, entry.get("excludes") or {}
    if not isinstance(includes, Mapping) or not isinstance(excludes, Mapping):
        raise _fail(source, f"{where}.includes/excludes is not an object", "remove it")
    if includes.get("caps") or includes.get("minKernel"):
        return None
    return SyscallRule(
        tuple(names),
        ret,
        conds,
        only_arches=tuple(includes.get("arches") or ()),
        skip_arches=tuple(excludes.get("arches") or ()),
    )


def parse_profile(data: Any, *, source: str = "the profile") -> SeccompProfile:
    """Check an OCI seccomp object and return it as a :class:`SeccompProfile`."""
    if not isinstance(data, Mapping):
        raise _fail(
            source, "the top level is not a JSON object", 'start with {"defaultAction": ...}'
        )
    if "defaultAction" not in data:
        raise _fail(source, "defaultAction is missing", 'add "defaultAction": "SCMP_ACT_ERRNO"')
    default_ret = _action(data, "defaultAction", "defaultErrnoRet", source, "defaultAction")
    arches = data.get("architectures") or []
    arch_map = data.get("archMap") or []
    if not isinstance(arches, list) or not isinstance(arch_map, list):
        raise _fail(source, "architectures/archMap is not a list", 'write ["SCMP_ARCH_X86_64"]')
    for entry in arch_map:
        if not isinstance(entry, Mapping):
            raise _fail(source, "an archMap entry is not an object", "remove archMap")
        arches = [*arches, entry.get("architecture"), *(entry.get("subArchitectures") or [])]
    for arch in arches:
        if not isinstance(arch, str) or arch not in KNOWN_ARCHES:
            raise _fail(
                source,
                f"unknown architecture {arch!r}",
                "use names such as SCMP_ARCH_X86_64 or SCMP_ARCH_AARCH64",
            )
    flags = 0
    for flag in data.get("flags") or []:
        if not isinstance(flag, str) or flag not in FILTER_FLAGS:
            raise _fail(source, f"unknown flag {flag!r}", "use one of " + ", ".join(FILTER_FLAGS))
        flags |= FILTER_FLAGS[flag]
    syscalls = data.get("syscalls") or []
    if not isinstance(syscalls, list):
        raise _fail(source, "syscalls is not a list", 'write "syscalls": [{"names": [...], ...}]')
    rules = tuple(r for i, e in enumerate(syscalls) if (r := _rule(e, i, source)) is not None)
    return SeccompProfile(default_ret, tuple(dict.fromkeys(arches)), rules, flags, source)


def _read_json(path: Path, what: str) -> Any:
    import json  # only when compiling: the cache-hit path never parses JSON

    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(
            f"cannot read {what} {path}: {e.strerror}",
            hint="check the path given to --security-opt seccomp=",
        ) from None
    try:
        return json.loads(text)
    except ValueError as e:
        raise ConfigError(
            f"invalid seccomp profile {path}: not valid JSON: {e}",
            hint="fix the JSON syntax at that line and column",
        ) from None


def load_profile_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check a ``--security-opt seccomp=FILE`` profile; return the OCI object.

    The object is returned as read so that it can be written into config.json;
    pass it to :func:`compile_profile`.
    """
    path = Path(path)
    data = _read_json(path, "seccomp profile")
    parse_profile(data, source=str(path))
    return dict(data)


@functools.cache
def _default_profile_data() -> dict[str, Any]:
    data: dict[str, Any] = _read_json(DEFAULT_PROFILE_PATH, "the default seccomp profile")
    return data


def default_profile() -> dict[str, Any]:
    """The shipped default profile as an OCI seccomp object (a fresh copy)."""
    import copy

    return copy.deepcopy(_default_profile_data())


@functools.cache
def syscall_table(arch: str) -> Mapping[str, int]:
    """Syscall name -> number for ``arch`` (generated by helpers/gen-syscall-tables)."""
    table: Mapping[str, int] = _read_json(SYSCALL_TABLE_PATH, "the syscall table")[arch]
    return table


def resolve_arch(arch: str | None = None) -> Arch:
    """The :class:`Arch` for a name (``x86_64``, ``arm64``, ``SCMP_ARCH_AARCH64``...)."""
    name = os.uname().machine if arch is None else arch
    name = _ARCH_ALIASES.get(name, name)
    if name not in ARCHES:
        raise ConfigError(
            f"cannot build a seccomp filter for architecture {name!r}: not supported",
            hint="run on x86_64 or aarch64, or use --security-opt seccomp=unconfined",
        )
    return ARCHES[name]


# --- the compiler -------------------------------------------------------------------------

# Classic BPF opcodes (linux/filter.h, linux/bpf_common.h).
LD_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
ALU_AND = 0x54  # BPF_ALU | BPF_AND | BPF_K
JA = 0x05  # BPF_JMP | BPF_JA
JEQ = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
JGT = 0x25  # BPF_JMP | BPF_JGT | BPF_K
JGE = 0x35  # BPF_JMP | BPF_JGE | BPF_K
RET = 0x06  # BPF_RET | BPF_K

# Offsets into struct seccomp_data; args are u64, little-endian on both arches.
OFF_NR = 0
OFF_ARCH = 4


def _arg_lo(index: int) -> int:
    return 16 + 8 * index


def _arg_hi(index: int) -> int:
    return 20 + 8 * index


Insn = tuple[int, int, int, int]  # code, jt, jf, k
_FAIL = -1  # placeholder jump target: "this rule does not match"

# A rule whose conditions are fixed up for one arch: (conditions, ret).
_Rule = tuple[tuple[ArgCondition, ...], int]
# What happens to one syscall number: a plain return value, or rules then a fallback.
_Handler = int | tuple[tuple[_Rule, ...], int]


def _jump(code: int, k: int, jt: int, jf: int) -> Insn:
    return (code, jt, jf, k)


def _condition_code(c: ArgCondition) -> list[Insn]:
    """Code that falls through when ``c`` holds and jumps to _FAIL when it does not.

    Jump offsets are relative to the next instruction; _FAIL is patched later.
    """
    hi, lo = c.value >> 32, c.value & 0xFFFFFFFF
    ld_hi, ld_lo = (LD_ABS, 0, 0, _arg_hi(c.arg)), (LD_ABS, 0, 0, _arg_lo(c.arg))
    if c.op == "SCMP_CMP_EQ":
        return [ld_hi, _jump(JEQ, hi, 0, _FAIL), ld_lo, _jump(JEQ, lo, 0, _FAIL)]
    if c.op == "SCMP_CMP_NE":
        return [ld_hi, _jump(JEQ, hi, 0, 2), ld_lo, _jump(JEQ, lo, _FAIL, 0)]
    if c.op == "SCMP_CMP_MASKED_EQ":
        want_hi, want_lo = c.value_two >> 32, c.value_two & 0xFFFFFFFF
        return [
            ld_hi,
            (ALU_AND, 0, 0, hi),
            _jump(JEQ, want_hi, 0, _FAIL),
            ld_lo,
            (ALU_AND, 0, 0, lo),
            _jump(JEQ, want_lo, 0, _FAIL),
        ]
    # Ordered compares: decide on the high word unless it is equal, then on the low word.
    if c.op in ("SCMP_CMP_GT", "SCMP_CMP_GE"):
        low = _jump(JGT if c.op == "SCMP_CMP_GT" else JGE, lo, 0, _FAIL)
        return [ld_hi, _jump(JGT, hi, 3, 0), _jump(JEQ, hi, 0, _FAIL), ld_lo, low]
    low = _jump(JGE if c.op == "SCMP_CMP_LT" else JGT, lo, _FAIL, 0)
    return [ld_hi, _jump(JGE, hi, 0, 3), _jump(JEQ, hi, 0, _FAIL), ld_lo, low]


def _rule_code(conds: tuple[ArgCondition, ...], ret: int) -> list[Insn]:
    code = [insn for c in conds for insn in _condition_code(c)]
    code.append((RET, 0, 0, ret))
    end = len(code)  # a failed condition goes on to whatever follows this rule
    out = []
    for pos, (op, jt, jf, k) in enumerate(code):
        jt = end - pos - 1 if jt == _FAIL else jt
        jf = end - pos - 1 if jf == _FAIL else jf
        out.append((op, jt, jf, k))
    return out


def _handler_code(handler: _Handler) -> list[Insn]:
    if isinstance(handler, int):
        return [(RET, 0, 0, handler)]
    rules, fallback = handler
    code = [insn for conds, ret in rules for insn in _rule_code(conds, ret)]
    code.append((RET, 0, 0, fallback))
    return code


def _search_code(ranges: Sequence[tuple[int, _Handler]]) -> list[Insn]:
    """Binary search over ``(first number, handler)`` ranges sorted by number."""
    if len(ranges) == 1:
        return _handler_code(ranges[0][1])
    mid = len(ranges) // 2
    low, high = _search_code(ranges[:mid]), _search_code(ranges[mid:])
    if len(low) <= 255:
        return [_jump(JGE, ranges[mid][0], len(low), 0), *low, *high]
    # Conditional jumps reach 255 instructions; JA takes a 32-bit offset.
    return [_jump(JGE, ranges[mid][0], 0, 1), (JA, 0, 0, len(low)), *low, *high]


def _handlers(profile: SeccompProfile, arch: Arch) -> dict[int, _Handler]:
    table = syscall_table(arch.name)
    rules_by_nr: dict[int, list[_Rule]] = {}
    for rule in profile.rules:
        if not rule.applies_to(arch):
            continue
        for name in rule.names:
            nr = table.get(name)
            if nr is not None:  # unknown on this arch: skipped, as Docker does
                rules_by_nr.setdefault(nr, []).append((rule.args, rule.ret))
    if profile.rules and not rules_by_nr:
        raise ConfigError(
            f"invalid seccomp profile {profile.source}: "
            f"none of its syscall names is known on {arch.name}",
            hint="check the spelling of the names (e.g. openat, not SYS_openat)",
        )
    handlers: dict[int, _Handler] = {}
    for nr, rules in rules_by_nr.items():
        kept: list[_Rule] = []
        for conds, ret in rules:
            if not conds:  # first match wins, so nothing after this rule is reachable
                handlers[nr] = ret if not kept else (tuple(kept), ret)
                break
            kept.append((conds, ret))
        else:
            handlers[nr] = (tuple(kept), profile.default_ret)
    return handlers


def _ranges(
    handlers: Mapping[int, _Handler], default: int, unknown: int, top: int
) -> list[tuple[int, _Handler]]:
    """Split 0..2**32-1 into ranges of numbers with equal outcome, merging neighbours."""
    ranges: list[tuple[int, _Handler]] = []

    def add(start: int, handler: _Handler) -> None:
        if not ranges or ranges[-1][1] != handler:
            ranges.append((start, handler))

    for nr in range(top + 1):
        add(nr, handlers.get(nr, default))
    add(top + 1, unknown)
    return ranges


def compile_profile(
    profile: SeccompProfile | Mapping[str, Any], arch: str | Arch | None = None
) -> bytes:
    """Compile ``profile`` for ``arch`` (default: this machine) to a sock_filter array."""
    if not isinstance(profile, SeccompProfile):
        profile = parse_profile(profile)
    target = arch if isinstance(arch, Arch) else resolve_arch(arch)
    if profile.architectures and not {target.scmp, "SCMP_ARCH_NATIVE"} & set(profile.architectures):
        raise ConfigError(
            f"invalid seccomp profile {profile.source}: it does not cover {target.scmp}",
            hint=f'add "{target.scmp}" to its architectures',
        )
    handlers = _handlers(profile, target)
    top = max(syscall_table(target.name).values())
    unknown = profile.default_ret
    if profile.default_ret not in (RET_ALLOW, RET_LOG):
        unknown = RET_ERRNO | errno.ENOSYS
    code: list[Insn] = [
        (LD_ABS, 0, 0, OFF_ARCH),
        _jump(JEQ, target.audit, 1, 0),
        (RET, 0, 0, RET_KILL_PROCESS),
        (LD_ABS, 0, 0, OFF_NR),
    ]
    if target.x32_bit is not None:
        code += [
            _jump(JGE, target.x32_bit, 0, 2),
            _jump(JEQ, 0xFFFFFFFF, 1, 0),
            (RET, 0, 0, RET_KILL_PROCESS),
        ]
    code += _search_code(_ranges(handlers, profile.default_ret, unknown, top))
    if len(code) > BPF_MAXINSNS:
        raise ConfigError(
            f"invalid seccomp profile {profile.source}: it compiles to {len(code)} "
            f"instructions, more than the kernel's {BPF_MAXINSNS}",
            hint="merge rules with the same action and conditions",
        )
    return b"".join(struct.pack("=HBBI", *insn) for insn in code)


# --- the cached default program -----------------------------------------------------------


def default_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/rootless/seccomp`` (``~/.cache/...`` without it)."""
    env = os.environ if env is None else env
    base = env.get("XDG_CACHE_HOME") or os.path.join(env.get("HOME") or "/", ".cache")
    return Path(base, "rootless", "seccomp")


def _cache_key(arch: Arch) -> str:
    # The program depends on the profile, the table and this compiler: their sizes and
    # mtimes name the entry (stat, not a hash of ~100 KB read on every start).
    crc = zlib.crc32(arch.name.encode())
    size = 0
    for path in (DEFAULT_PROFILE_PATH, SYSCALL_TABLE_PATH, Path(__file__)):
        st = path.stat()
        crc = zlib.crc32(f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}".encode(), crc)
        size += st.st_size
    return f"{crc:08x}{size:08x}"


def _valid_program(data: bytes) -> bool:
    return 0 < len(data) <= 8 * BPF_MAXINSNS and len(data) % 8 == 0


def default_program(
    arch: str | None = None, *, cache_dir: str | os.PathLike[str] | None = None
) -> bytes:
    """The compiled default profile, from the on-disk cache when it is current.

    A cache that cannot be written (read-only home) only costs a compile per start.
    """
    target = resolve_arch(arch)
    cache = default_cache_dir() if cache_dir is None else Path(cache_dir)
    path = cache / f"{target.name}-{_cache_key(target)}.bpf"
    try:
        cached = path.read_bytes()
    except OSError:
        cached = b""
    if _valid_program(cached):
        return cached
    program = compile_profile(parse_profile(_default_profile_data(), source="(default)"), target)
    with contextlib.suppress(OSError):
        _store(path, program)
    return program


def _store(path: Path, program: bytes) -> None:
    from rootless._atomic import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, program)
    # Entries for older profiles or compilers are dead weight now.
    for old in path.parent.glob(f"{path.name.split('-')[0]}-*.bpf"):
        if old != path:
            old.unlink(missing_ok=True)
