"""Everything a call into process PID depends on, checked from outside: ``gocall doctor``.

The process and where it lives (namespaces, its executable as it names it and as gocall
reads it), the binary (a Go release gocall knows, ``runtime.debugCallV2``, DWARF or
declared signatures, ``runtime.debugPinnerV1``), and every condition of ptrace
(process/permissions.py, the same checks that explain a refused attach in one line).
Nothing here stops, traces or writes to the process.
"""

from __future__ import annotations

from typing import NamedTuple

from .binary import GoBinary
from .binary.support import assess
from .errors import GocallError
from .guard import pending
from .process import namespaces
from .process.permissions import Check, ptrace_checks, status, tracers
from .runtime import layouts

__all__ = ["Check", "Report", "examine"]

_STATES = {"R": "running", "S": "sleeping", "D": "disk sleep", "T": "stopped", "t": "tracing stop", "Z": "zombie"}


class Report(NamedTuple):
    """What ``gocall doctor PID`` found."""

    pid: int
    nspid: list[int]  # the PID in each namespace from ours inwards
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return all(c.ok is not False for c in self.checks)

    def to_json(self) -> dict[str, object]:
        return {"pid": self.pid, "nspid": self.nspid, "ok": self.ok, "checks": [c.to_json() for c in self.checks]}


def examine(pid: int) -> Report:
    """Run every check on ``pid``."""
    st = status(pid)
    if st is None:
        return Report(pid, [], ptrace_checks(pid))  # says it does not exist, and where to look
    nspid = namespaces.nspids(pid, st)
    uid = st.get("Uid", "?").split()[1:2] or ["?"]
    state = st.get("State", "?")
    checks = [Check("process", state[:1] not in ("Z", "X"),
                    f"process {pid} ({st.get('Name', '?')}), {_STATES.get(state[:1], state)}, parent {st.get('PPid', '?')}, "
                    f"uid {uid[0]}, {st.get('Threads', '?')} threads", "")]
    checks += _namespaces(pid, nspid)
    checks += _binary(pid)
    checks += _guardians(pid, ptrace_checks(pid))
    return Report(pid, nspid, checks)


def _guardians(pid: int, checks: list[Check]) -> list[Check]:
    """Calls left to gocall's guardians (guard/pending.py): a thread one traces is not another
    debugger's, and gocall calls on the other threads meanwhile; each call is said."""
    held = pending.calls(pid)
    if not held:
        return checks
    if set(tracers(pid)) <= {p.tid for p in held}:
        checks = [Check("tracer", True, "no thread is traced, but by gocall's guardians (below)") if c.name == "tracer"
                  else c for c in checks]  # fmt: skip
    return checks + [Check("pending call", None, p.text) for p in held]


def _namespaces(pid: int, nspid: list[int]) -> list[Check]:
    out = []
    if len(nspid) > 1:
        out.append(Check("pid namespace", None, f"another PID namespace: PID {pid} here is {nspid[-1]} in its own "
                         f"(NSpid {' '.join(map(str, nspid))}); gocall takes the PID as seen here"))
    elif namespaces.same_namespace(pid, "pid") is False:
        out.append(Check("pid namespace", None, f"PID namespace of its own, created after it started (PID {pid} here too)"))
    else:
        out.append(Check("pid namespace", None, "same PID namespace as gocall"))
    mnt = namespaces.same_namespace(pid, "mnt")
    out.append(Check("mount namespace", None, "same mount namespace as gocall" if mnt else
                     f"another mount namespace: gocall reads its binary through /proc/{pid}/exe and its files "
                     f"through /proc/{pid}/root" if mnt is False else "mount namespace unreadable"))
    return out


def _source(binary: GoBinary) -> tuple[str, bool]:
    """Where signatures come from without DWARF (gosource/), and whether both the standard
    library's and the program's source were found."""
    from .gosource.source import GoSource

    source = GoSource(binary)
    return "no DWARF (-ldflags=-w or -s): " + source.describe(), source.complete


def _binary(pid: int) -> list[Check]:
    try:
        exe = namespaces.exe(pid)
    except OSError as e:
        return [Check("executable", False, f"/proc/{pid}/exe cannot be read: {e.strerror}",
                      "the ptrace checks below say why")]
    where = {"same file": "", "another file": "; that path here is another file",
             "not here": "; that path does not exist here", "deleted": "; deleted since it started"}[exe.here]
    out = [Check("executable", True, f"{exe.path} ({exe.size / 2**20:.1f} MiB){where}; read through /proc/{pid}/exe")]
    try:
        with GoBinary.of_process(pid) as binary:
            support = assess(binary)
            info = binary.buildinfo
            module = info.main.path if info is not None and info.main is not None else "?"
            out.append(Check("go", True, f"{binary.go_version}, module {module}"))
            release = binary.go_version_tuple[:2]
            known = release in layouts.known_releases()
            out.append(Check("release", known or support.dwarf,
                             f"go{release[0]}.{release[1]}: runtime layouts " + ("tabled" if known else
                             "read from DWARF" if support.dwarf else "unknown and no DWARF to read them from"),
                             "" if known or support.dwarf else "rebuild with Go 1.19 or 1.21-1.27, or keep DWARF"))
            signatures, complete = ("DWARF: function signatures known", True) if support.dwarf else _source(binary)
    except (GocallError, OSError) as e:
        out.append(Check("go", False, f"not a Go program gocall can read: {e}", "gocall calls into Go programs only"))
        return out
    out.append(Check("debugCallV2", support.refusal is None, "runtime.debugCallV2 is linked in"
                     if support.refusal is None else support.refusal, "" if support.refusal is None else
                     "rebuild it with Go 1.19 or later for linux/amd64"))
    out.append(Check("signatures", True if support.dwarf else None, signatures,
                     "" if complete else "gocall call PID --goroot DIR --source DIR ..., or --declare "
                     "'func main.F(a int) int' for what no source gives"))
    out.append(Check("debugPinnerV1", None, "runtime.debugPinnerV1: arguments allocated in the target are pinned"
                     if support.debug_pinner else "no runtime.debugPinnerV1 (Go < 1.23): arguments allocated in "
                     "the target are not pinned"))
    return out
