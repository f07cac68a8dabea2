"""Where a process lives: its PID and mount namespaces, its executable's path, its container.

A process in a container is seen from the host (or a sibling container sharing its PID
namespace) under another PID than it sees itself: ``NSpid`` in /proc/PID/status lists its
PID in each namespace from ours inwards (``fs/proc/array.c``). Its executable's path names
a file in *its* mount namespace, which need not exist in ours, or may have been deleted or
replaced since it started; ``/proc/PID/exe`` opens the very file it runs in every case
(``proc_exe_link``), so gocall reads binaries through it and never through the path. The
container is named by the cgroup path (``/proc/PID/cgroup``) the runtime put it in.
"""

from __future__ import annotations

import os
import re
from typing import NamedTuple

__all__ = ["Exe", "container", "container_of", "exe", "host_tid", "nspids", "same_namespace"]

# Container ids in cgroup paths: docker-<id>.scope, /docker/<id>, cri-containerd-<id>.scope,
# crio-<id>.scope, libpod-<id>.scope, /kubepods/.../pod<uid>/<id>, /lxc/<name>.
_CONTAINER = re.compile(r"(?:(docker|cri-containerd|crio|libpod|containerd)[-/])?([0-9a-f]{64})(?:\.scope)?$")
_POD = re.compile(r"pod([0-9a-f]{8}[-_](?:[0-9a-f]{4}[-_]){3}[0-9a-f]{12})")
_RUNTIME = re.compile(r"\b(docker|cri-containerd|crio|libpod|containerd)\b")


def nspids(pid: int, status: dict[str, str] | None = None) -> list[int]:
    """``pid`` in each PID namespace from ours inwards: [pid] when it lives in ours."""
    if status is None:
        from .permissions import status as read_status

        status = read_status(pid) or {}
    return [int(n) for n in status.get("NSpid", str(pid)).split()]


def same_namespace(pid: int, kind: str) -> bool | None:
    """Whether ``pid`` shares our namespace of ``kind`` ("pid", "mnt", "user"...); None if unreadable."""
    try:
        return os.readlink(f"/proc/self/ns/{kind}") == os.readlink(f"/proc/{pid}/ns/{kind}")
    except OSError:
        return None


class Exe(NamedTuple):
    """The executable of a process as it names it, and what that path is here."""

    path: str  # as the process's mount namespace names it, " (deleted)" taken off
    here: str  # "same file", "another file", "not here", "deleted"
    size: int  # bytes, read through /proc/PID/exe


def exe(pid: int) -> Exe:
    """Raises OSError when /proc/PID/exe cannot be read (gone, or not ours to read)."""
    link = os.readlink(f"/proc/{pid}/exe")
    st = os.stat(f"/proc/{pid}/exe")
    path = link.removesuffix(" (deleted)")
    if link.endswith(" (deleted)"):
        return Exe(path, "deleted", st.st_size)
    try:
        mine = os.stat(path)
    except OSError:
        return Exe(path, "not here", st.st_size)
    same = (mine.st_dev, mine.st_ino) == (st.st_dev, st.st_ino)
    return Exe(path, "same file" if same else "another file", st.st_size)


def container(pid: int) -> str:
    """The container of ``pid`` from its cgroup path: ``docker:0123456789ab``,
    ``k8s:pod/<uid>:0123456789ab``, the path itself for other cgroups, "" at the root."""
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            return container_of(f.read())
    except OSError:
        return ""


def container_of(cgroup: str) -> str:
    """:func:`container` from the text of a /proc/PID/cgroup file."""
    lines = cgroup.splitlines()
    # cgroup v2's "0::/path" first; else the first v1 hierarchy with a path.
    paths = [line.split(":", 2)[2] for line in lines if line.count(":") >= 2]
    path = next((p for p in paths if p not in ("/", "")), "")
    if not path:
        return ""
    for part in reversed(path.split("/")):
        m = _CONTAINER.search(part)
        if m is not None:
            pod = _POD.search(path)
            if pod is not None or "kubepods" in path:
                return f"k8s:pod/{pod[1].replace('_', '-') if pod else '?'}:{m[2][:12]}"
            runtime = m[1] or (r[1] if (r := _RUNTIME.search(path)) else "container")
            return f"{runtime}:{m[2][:12]}"
    return path


def host_tid(pid: int, tid: int) -> int | None:
    """Thread ``tid`` of process ``pid`` as the process numbers it (``m.procid`` is what
    gettid() said there) as this PID namespace numbers it; None when no thread has it now.
    The same number when the process lives in our PID namespace."""
    if len(nspids(pid)) == 1:
        return tid
    from .permissions import status

    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for task in tasks:
        st = status(pid, int(task))
        if st is not None and nspids(int(task), st)[-1] == tid:
            return int(task)
    return None
