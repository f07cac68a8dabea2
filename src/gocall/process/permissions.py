"""May gocall trace process PID, and if not, why not and what fixes it.

The kernel decides in ``kernel/ptrace.c`` ``__ptrace_may_access`` (same uid and gid as the
target, or CAP_SYS_PTRACE in the target's user namespace; a non-dumpable target needs the
capability too), then the LSMs: Yama (``security/yama/yama_lsm.c``: ``ptrace_scope`` 1 lets
a process trace only its descendants, 2 only with CAP_SYS_PTRACE, 3 nobody). ``ptrace_attach``
adds: one tracer at a time (``TracerPid``). A seccomp filter on gocall itself (a container's
profile) may refuse the ptrace system call before any of that is asked.

Every check reads /proc and changes nothing; the answer to "may I attach" is probed by
opening ``/proc/PID/mem``, which the kernel grants under the same PTRACE_MODE_ATTACH rules
(Yama included) as PTRACE_SEIZE, minus the one-tracer rule, which ``TracerPid`` tells. The
same checks make ``gocall doctor`` and the one-line diagnosis every command gives when an
attach is refused (:func:`attach_error`).
"""

from __future__ import annotations

import ctypes
import errno
import os
from typing import NamedTuple

from ..errors import AttachDenied, GocallError, TargetExited

__all__ = ["Check", "attach_error", "denial", "ptrace_checks", "refusal", "status", "tracers"]

CAP_SYS_PTRACE = 19  # include/uapi/linux/capability.h
_YAMA = "/proc/sys/kernel/yama/ptrace_scope"
_SECCOMP_MODES = {"0": "disabled", "1": "strict", "2": "filter"}


class Check(NamedTuple):
    """One thing a call depends on: ``ok`` True/False, or None when it only informs."""

    name: str
    ok: bool | None
    detail: str
    fix: str = ""

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail, "fix": self.fix}


def status(pid: int | str, tid: int | None = None) -> dict[str, str] | None:
    """``/proc/PID/status`` (or one task's) as a dict; None when the process is gone."""
    path = f"/proc/{pid}/status" if tid is None else f"/proc/{pid}/task/{tid}/status"
    try:
        with open(path) as f:
            return dict(line.rstrip("\n").partition(":\t")[::2] for line in f)
    except (FileNotFoundError, ProcessLookupError):
        return None


def comm(pid: int) -> str:
    """The command name of ``pid`` ("?" when it cannot be read)."""
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return "?"


def tracers(pid: int) -> dict[int, int]:
    """Thread id -> TracerPid, for each thread of ``pid`` that some process traces."""
    out: dict[int, int] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        tids = [str(pid)]
    for tid in tids:
        # Only the one field, found in the text: `gocall ps` reads every thread of every Go process.
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                text = f.read()
        except OSError:
            continue
        at = text.find("TracerPid:")
        if at >= 0 and (tracer := int(text[at + 10 : text.index("\n", at)])):
            out[int(tid)] = tracer
    return out


def yama_scope() -> int | None:
    """Yama's ``kernel.yama.ptrace_scope``; None when Yama is not in this kernel."""
    try:
        with open(_YAMA) as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def _has_cap_sys_ptrace(me: dict[str, str]) -> bool:
    return bool(int(me.get("CapEff", "0"), 16) >> CAP_SYS_PTRACE & 1)


def _uids(st: dict[str, str]) -> list[int]:
    return [int(u) for u in st.get("Uid", "").split()]


def _seccomp_allows_ptrace() -> bool:
    """Probe: PTRACE_PEEKDATA on ourselves (never our own tracee) fails with ESRCH when the
    system call is allowed; a seccomp filter refusing it answers EPERM (Docker's profile) or ENOSYS."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.restype = ctypes.c_long
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    if libc.ptrace(2, os.getpid(), 0, 0) == -1:  # PTRACE_PEEKDATA
        return ctypes.get_errno() not in (errno.EPERM, errno.ENOSYS, errno.EACCES)
    return True


def _mem_open_errno(pid: int) -> int:
    """0 if /proc/PID/mem opens (PTRACE_MODE_ATTACH granted), else the errno."""
    try:
        os.close(os.open(f"/proc/{pid}/mem", os.O_RDONLY | os.O_CLOEXEC))
    except OSError as e:
        return e.errno or errno.EPERM
    return 0


def _dumpable(pid: int, st: dict[str, str]) -> bool:
    """A non-dumpable process (setuid, prctl(PR_SET_DUMPABLE, 0)) has its /proc files owned by
    root whatever its uid (fs/proc/base.c task_dump_owner)."""
    try:
        owner = os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return True
    euid = _uids(st)[1] if len(_uids(st)) > 1 else owner
    return owner == euid


def _in_root_user_ns(me: dict[str, str]) -> bool:
    try:
        with open("/proc/self/uid_map") as f:
            return f.read().split() == ["0", "0", "4294967295"]
    except OSError:
        return True


def ptrace_checks(pid: int) -> list[Check]:
    """Every condition of PTRACE_SEIZE on ``pid``, in the order the kernel asks them."""
    me = status("self") or {}
    st = status(pid)
    if st is None:
        return [Check("process", False, f"process {pid} does not exist{_ns_note()}",
                      "give the PID as this PID namespace sees it: `gocall ps` lists the Go processes here")]
    name = st.get("Name", "?")
    checks: list[Check] = []
    # The ptrace system call itself.
    mode = me.get("Seccomp", "0")
    allowed = _seccomp_allows_ptrace()
    checks.append(Check(
        "seccomp", allowed,
        f"gocall's seccomp mode: {_SECCOMP_MODES.get(mode, mode)}; the ptrace system call is "
        + ("allowed" if allowed else "refused by the filter"),
        "" if allowed else "run gocall without the filter: `docker run --cap-add SYS_PTRACE` (Docker's default "
        "profile then allows ptrace) or `--security-opt seccomp=unconfined`; in Kubernetes "
        "`kubectl debug --profile=general`"))
    # Credentials: same uids, or CAP_SYS_PTRACE.
    cap = _has_cap_sys_ptrace(me)
    mine, theirs = _uids(me), _uids(st)
    same = bool(mine) and bool(theirs) and mine[0] == theirs[0] == theirs[1] == theirs[2]
    who = f"process {pid} ({name}) runs as uid {theirs[1] if len(theirs) > 1 else '?'}, gocall as uid {mine[0] if mine else '?'}"
    checks.append(Check("capability", cap or None,
                        "CAP_SYS_PTRACE in gocall's effective set" if cap else "no CAP_SYS_PTRACE in gocall's effective set",
                        "" if cap else "run gocall as root, or give it the capability: `docker run --cap-add SYS_PTRACE`, "
                        "`securityContext.capabilities.add: [SYS_PTRACE]`"))
    checks.append(Check("user", True if same or cap else False, who + (" (same user)" if same else ""),
                        "" if same or cap else "run gocall as root" if theirs[1:2] == [0] else
                        f"run gocall as root or as uid {theirs[1]}, the process's user"))
    if cap and not _in_root_user_ns(me):
        checks.append(Check("user namespace", None, "gocall runs in a user namespace: its CAP_SYS_PTRACE counts only "
                            "for processes of that namespace", "run gocall in the target's user namespace or the host's"))
    if not _dumpable(pid, st):
        checks.append(Check("dumpable", cap, f"process {pid} is not dumpable (setuid, or prctl(PR_SET_DUMPABLE, 0)): "
                            "only CAP_SYS_PTRACE may trace it", "" if cap else "run gocall as root"))
    # Yama.
    scope = yama_scope()
    if scope is None:
        checks.append(Check("yama", True, "Yama is not in this kernel: no ptrace_scope restriction"))
    else:
        ok = scope == 0 or (scope in (1, 2) and cap)
        what = {0: "classic ptrace permissions", 1: "only descendants, unless CAP_SYS_PTRACE",
                2: "only with CAP_SYS_PTRACE", 3: "no process may be traced"}.get(scope, "unknown")
        fix = ("" if ok else "the scope cannot be lowered without a reboot" if scope == 3 else
               "run gocall as root (CAP_SYS_PTRACE)" if scope == 2 else
               "run gocall as root, or `echo 0 | sudo tee /proc/sys/kernel/yama/ptrace_scope` "
               "(sysctl kernel.yama.ptrace_scope=0)")
        checks.append(Check("yama", ok, f"kernel.yama.ptrace_scope = {scope} ({what})", fix))
    # One tracer at a time.
    traced = tracers(pid)
    if traced:
        tid, tracer = next(iter(traced.items()))
        theirs_too = "" if len(traced) == 1 else f" (and {len(traced) - 1} more threads)"
        checks.append(Check("tracer", False, f"already traced by PID {tracer} ({comm(tracer)}): thread {tid}{theirs_too}",
                            f"detach that debugger or end it (`kill {tracer}`); one tracer at a time"))
    else:
        checks.append(Check("tracer", True, "no thread is traced by another process"))
    # The kernel's own answer, Yama included.
    err = _mem_open_errno(pid)
    explained = any(c.ok is False for c in checks)
    checks.append(Check("attach", err == 0, f"/proc/{pid}/mem opens (ptrace access granted)" if err == 0 else
                        f"the kernel refuses ptrace access to process {pid}: {os.strerror(err)}",
                        "" if err == 0 else "see the failed checks above" if explained else
                        "no check above explains it: an LSM (AppArmor, SELinux) may refuse it; in a container "
                        "`--security-opt apparmor=unconfined`, in Kubernetes `kubectl debug --profile=general`"))
    return checks


def _ns_note() -> str:
    me = status("self") or {}
    return " in this PID namespace" if len(me.get("NSpid", "").split()) > 1 else ""


def refusal(pid: int) -> Check:
    """The check that keeps gocall from attaching to ``pid`` (the kernel's own answer when no
    other check explains it), or a passed "attach" check when nothing does."""
    checks = ptrace_checks(pid)
    failed = [c for c in checks if c.ok is False]
    return next((c for c in failed if c.name != "attach"), failed[0] if failed else checks[-1])


def denial(pid: int) -> str:
    """Why gocall may not attach to ``pid``, in one line with the fix and a pointer to `gocall doctor`."""
    reason = refusal(pid)
    if reason.ok:  # every check passed, yet the kernel said no: raced with a change of the process
        text, fix = f"cannot attach to process {pid}: refused by the kernel", "try again"
    else:
        text, fix = f"cannot attach to process {pid}: {reason.detail}", reason.fix
    return f"{text} ({fix}; every check: gocall doctor {pid})" if fix else f"{text} (every check: gocall doctor {pid})"


def attach_error(pid: int, err: int, tid: int | None = None) -> GocallError:
    """The error for an attach refused with ``err``: TargetExited when the process is gone
    (ESRCH/ENOENT), else :class:`AttachDenied` carrying :func:`denial`'s line."""
    if err in (errno.ESRCH, errno.ENOENT) or status(pid) is None:
        return TargetExited(f"process {pid} does not exist{_ns_note()}",
                            hint=f"`gocall ps` lists the Go processes this user can see; every check: gocall doctor {pid}")
    return AttachDenied(pid, pid if tid is None else tid, err, denial(pid))
