"""What a binary's DWARF answered, remembered on disk by the binary's build ID.

A cold ``gocall call`` spends most of its binary-reading time getting a few answers out of
DWARF: importing pyelftools, decompressing ``.debug_info`` (13 ms for Go 1.19's ``cmd/go``,
27 ms for 1.27's) and parsing the callee's DIEs. The answers (the package list, the
signatures, types and variables asked for, each type's runtime type offset, and the
functab index of each function name pclntab was searched for) are small and
never change for a given binary, so :class:`gocall.binary.dwarf.Dwarf` keeps them in one
file per binary and answers from it next time without touching DWARF.

* Where: ``$XDG_CACHE_HOME/gocall/index/`` (``~/.cache/gocall/index/``), one file per
  build ID (the Go build ID from ``.note.go.buildid``, else the GNU one): a rebuilt binary
  has a new ID, so entries are never stale. Binaries with neither are not cached.
* Format: a pickle stamped with :data:`FORMAT` and a hash of the modules that produce the
  answers (an entry made by another version of gocall's DWARF reader is ignored), read
  by an unpickler that only builds gocall's type classes and builtin containers.
* Safe: written to a temporary file then renamed (readers see a whole file or none;
  concurrent writers each leave a whole file); a file that cannot be read is ignored,
  and a cache directory that cannot be written only costs the next start its speed.
"""

from __future__ import annotations

import io
import logging
import os
import pickle
import sys
import zlib
from functools import cache
from typing import Any

__all__ = ["FORMAT", "IndexCache", "build_id"]

log = logging.getLogger("gocall.binary")

FORMAT = 1
# The modules whose code decides the answers: an edit to any of them invalidates every entry.
_PRODUCERS = ("dwarf.py", "dwarfindex.py", "gotypes.py", "cache.py", "pclntab.py")
# What an entry may contain (find_class refuses anything else).
_ALLOWED = {
    ("gocall.binary.gotypes", "GoType"), ("gocall.binary.gotypes", "Field"), ("gocall.binary.gotypes", "Kind"),
    ("gocall.binary.gotypes", "Param"), ("gocall.binary.gotypes", "Signature"),
    ("copyreg", "__newobj__"), ("copyreg", "_reconstructor"), ("builtins", "object"),
}  # fmt: skip


@cache  # once per process: a gocall server (cli/server.py) computes it before forking its commands
def _stamp() -> str:
    # CRC-32 rather than hashlib (whose import is 2.5 ms of a cold start): this tells versions
    # of gocall apart, it does not defend against anyone. The modules as they were when this process
    # first asked are the ones it runs: a server whose sources changed since is replaced anyway
    # (cli/handoff.py fingerprint).
    here = os.path.dirname(__file__)
    crc = zlib.crc32(str(FORMAT).encode())
    for name in _PRODUCERS:
        with open(os.path.join(here, name), "rb") as f:
            crc = zlib.crc32(f.read(), crc)
    return f"{FORMAT}-{crc:08x}"


def cache_dir() -> str:
    """``$XDG_CACHE_HOME/gocall/index`` (XDG base directories), else ``~/.cache/gocall/index``.

    (os.path, not pathlib: pathlib's import is 3.5 ms of a cold start.)"""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "gocall", "index")


def build_id(notes: dict[str, bytes]) -> str | None:
    """The Go build ID (``.note.go.buildid``), else the GNU build ID (``.note.gnu.build-id``),
    from the contents of those note sections; None if the binary has neither.

    An ELF note is namesz, descsz, type (4 bytes each), the name padded to 4, the descriptor.
    """
    for section, prefix in ((".note.go.buildid", "go:"), (".note.gnu.build-id", "gnu:")):
        note = notes.get(section)
        if note is None or len(note) < 12:
            continue
        namesz, descsz = int.from_bytes(note[0:4], "little"), int.from_bytes(note[4:8], "little")
        start = 12 + (namesz + 3) // 4 * 4
        desc = note[start : start + descsz]
        if desc:
            return prefix + desc.hex()
    return None


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a gocall index")
        return super().find_class(module, name)


class IndexCache:
    """The cache entry of one binary (by build ID)."""

    def __init__(self, key: str, directory: str | None = None) -> None:
        self.directory = directory or cache_dir()
        self.path = os.path.join(self.directory, key.replace(":", "-") + ".pickle")

    def load(self) -> dict[str, Any] | None:
        """The saved state, or None (no entry, another format or gocall, unreadable)."""
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except OSError:
            return None
        try:
            entry = _Unpickler(io.BytesIO(data)).load()
            if not isinstance(entry, dict) or entry.get("stamp") != _stamp() or not isinstance(entry.get("state"), dict):
                return None
            state: dict[str, Any] = entry["state"]
            return state
        except Exception as e:  # a damaged or foreign file: ignored, replaced on the next save
            log.debug("ignoring index cache %s: %s", self.path, e)
            return None

    def save(self, state: dict[str, Any]) -> None:
        """Write ``state`` atomically; failures (read-only home, deep type graphs) are logged only."""
        limit = sys.getrecursionlimit()
        try:
            sys.setrecursionlimit(max(limit, 20000))  # type graphs are walked recursively
            data = pickle.dumps({"stamp": _stamp(), "state": state}, protocol=pickle.HIGHEST_PROTOCOL)
            os.makedirs(self.directory, exist_ok=True)
            tmp = f"{self.path}.{os.getpid()}.tmp"  # one per writer: concurrent writers never share it
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.replace(tmp, self.path)
            except BaseException:
                os.unlink(tmp)
                raise
        except (OSError, RecursionError, pickle.PicklingError) as e:
            log.debug("not saving index cache %s: %s", self.path, e)
        finally:
            sys.setrecursionlimit(limit)
