"""Loading seccomp filters into real processes (no user namespace needed).

Each test runs a fresh ``python -c`` probe, because a filter can never be removed
from the process that loaded it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import ctypes, errno, json, os, subprocess, sys, threading
from rootless.runtime import seccomp as sc
from rootless.sys import seccomp as sysseccomp

libc = ctypes.CDLL(None, use_errno=True)
table = sc.syscall_table(sc.resolve_arch().name)
args = json.loads(sys.argv[1])
out = {}

def raw(name, *a):
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(table[name]), *[ctypes.c_long(x) for x in a])
    return errno.errorcode.get(ctypes.get_errno(), "ok") if r == -1 else r

# SETUP

def status():
    lines = open("/proc/self/status").read().splitlines()
    return {k: v.strip() for k, _, v in (l.partition(":") for l in lines)}

st = status()
out["Seccomp"], out["NoNewPrivs"] = st["Seccomp"], st["NoNewPrivs"]
# CHECKS
print(json.dumps(out))
"""

DEFAULT_SETUP = """
program = sc.default_program(cache_dir=args["cache"])
if args["load"]:
    sysseccomp.set_no_new_privs()
    sysseccomp.load_filter(program)
"""

DEFAULT_CHECKS = """
for name in ("keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd",
             "io_uring_setup", "clone3"):
    out[name] = raw(name, 0, 0, 0, 0, 0)
out["unshare"] = raw("unshare", 0)
# clone with CLONE_NEWUSER|SIGCHLD and no stack acts like fork if it is let through.
pid = raw("clone", 0x10000000 | 17, 0, 0, 0, 0)
if pid == 0:
    os._exit(0)
if isinstance(pid, int):
    os.waitpid(pid, 0)
out["clone_newuser"] = pid
path = os.path.join(args["cache"], "file")
with open(path, "w") as f:
    f.write("hello")
with open(path) as f:
    out["read_back"] = f.read()
out["getpid"] = os.getpid() == raw("getpid")
out["true"] = subprocess.run(["/bin/true"]).returncode
pid = os.fork()
if pid == 0:
    os.execv("/bin/sh", ["sh", "-c", "exit 7"])
out["fork_exec"] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
# glibc tries clone3 first for threads and must fall back to clone on ENOSYS.
seen = []
t = threading.Thread(target=lambda: seen.append(threading.get_native_id()))
t.start(); t.join()
out["thread"] = bool(seen) and seen[0] != threading.get_native_id()
"""


def probe(setup: str, checks: str, **args: Any) -> subprocess.CompletedProcess[str]:
    code = PROBE.replace("# SETUP", textwrap.dedent(setup)).replace(
        "# CHECKS", textwrap.dedent(checks)
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", code, json.dumps(args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def probe_json(setup: str, checks: str, **args: Any) -> dict[str, Any]:
    result = probe(setup, checks, **args)
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_default_filter_blocks_dangerous_calls_and_keeps_userland_working(
    tmp_path: Path,
) -> None:
    out = probe_json(DEFAULT_SETUP, DEFAULT_CHECKS, cache=str(tmp_path), load=True)
    assert out["Seccomp"] == "2"
    assert out["NoNewPrivs"] == "1"
    for name in ("keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd"):
        assert out[name] == "EPERM", name
    assert out["io_uring_setup"] == "EPERM"
    assert out["unshare"] == "EPERM"
    assert out["clone_newuser"] == "EPERM"
    assert out["clone3"] == "ENOSYS"
    assert out["read_back"] == "hello"
    assert out["getpid"] is True
    assert out["true"] == 0
    assert out["fork_exec"] == 7
    assert out["thread"] is True


def test_without_the_filter_the_same_probe_sees_the_kernel(tmp_path: Path) -> None:
    # The control run: the answers above come from the filter, not from the machine.
    out = probe_json(DEFAULT_SETUP, DEFAULT_CHECKS, cache=str(tmp_path), load=False)
    assert out["Seccomp"] == "0"
    assert out["unshare"] == 0
    assert out["clone3"] != "ENOSYS"
    assert out["keyctl"] != "EPERM"


CUSTOM_SETUP = """
profile = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [
        {"names": ["close"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EXDEV,
         "args": [{"index": 0, "value": 1000, "op": "SCMP_CMP_GE"},
                  {"index": 0, "value": 1 << 32, "op": "SCMP_CMP_LT"}]},
        {"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"},
    ],
}
sysseccomp.set_no_new_privs()
sysseccomp.load_filter(sc.compile_profile(sc.parse_profile(profile)))
"""


def test_custom_profile_with_argument_conditions(tmp_path: Path) -> None:
    checks = """
    out["close_999"] = raw("close", 999)
    out["close_1000"] = raw("close", 1000)
    out["close_2p32"] = raw("close", (1 << 32) + 1500)
    """
    out = probe_json(CUSTOM_SETUP, checks)
    assert out["Seccomp"] == "2"
    assert out["close_999"] == "EBADF"  # let through: the kernel answers
    assert out["close_1000"] == "EXDEV"  # the filter answers
    # The high word counts: 2**32+1500 is not < 2**32; the kernel sees fd 1500.
    assert out["close_2p32"] == "EBADF"


def test_kill_process_action_kills_with_sigsys() -> None:
    result = probe(CUSTOM_SETUP, 'raw("getppid")\nout["survived"] = True\n')
    assert result.returncode == -signal.SIGSYS
    assert "survived" not in result.stdout


def test_loading_without_no_new_privs_is_refused() -> None:
    setup = """
    try:
        sysseccomp.load_filter(sc.default_program(cache_dir=args["cache"]))
    except Exception as e:
        out["error"] = [type(e).__name__, e.errno, str(e)]
    """
    if os.geteuid() == 0:
        return  # CAP_SYS_ADMIN may load filters without no_new_privs
    out = probe_json(setup, "", cache="/nonexistent/cache")
    name, err, message = out["error"]
    assert (name, err) == ("SyscallError", 13)
    assert "set_no_new_privs" in message
    assert out["Seccomp"] == "0"


def test_a_program_the_kernel_rejects_is_a_syscall_error() -> None:
    setup = """
    sysseccomp.set_no_new_privs()
    bogus = bytes([0xFF, 0xFF, 0, 0, 0, 0, 0, 0])  # no such opcode
    for program in (bogus, b"", b"1234567"):
        try:
            sysseccomp.load_filter(program)
        except Exception as e:
            out.setdefault("errors", []).append([type(e).__name__, e.errno])
    """
    out = probe_json(setup, "")
    assert out["errors"] == [["SyscallError", 22]] * 3
    assert out["Seccomp"] == "0"
