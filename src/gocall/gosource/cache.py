"""Signatures read from Go source, remembered on disk for the next start.

Deriving one costs 20-40 ms of a cold ``gocall call`` (loading tree-sitter, reading the
package's files, parsing the declaring file and those of the types it names), for an answer
that only changes when the binary or the source does. They are kept in binary/cache.py's
format (one pickle per key, written atomically, read by an unpickler that builds only
gocall's type classes) under a key made of the binary's build ID, where the source was
looked for (``--goroot``, ``--source``) and a CRC of gosource's own modules; each entry
lists the source files read while deriving it, with their size and modification time, and
is used only while every one of them is unchanged. Written once, when the process is
released (Process.close), not per answer.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..binary.cache import IndexCache, build_id
from ..binary.gotypes import Signature

if TYPE_CHECKING:
    from ..binary import GoBinary

__all__ = ["SourceCache"]

_NOTES = (".note.go.buildid", ".note.gnu.build-id")
_PRODUCERS = ("cache.py", "files.py", "goroot.py", "source.py", "types.py")
FileStamp = tuple[str, int, int]  # path, size, st_mtime_ns


def stamp(path: str) -> FileStamp | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return path, st.st_size, st.st_mtime_ns


class SourceCache:
    """The derived signatures of one binary, for one choice of source locations."""

    def __init__(self, binary: GoBinary, goroot: str | None, sources: Sequence[str]) -> None:
        notes = {n: data for n in _NOTES if (data := binary.section_data(n)) is not None}
        key = build_id(notes)
        self._cache: IndexCache | None = None
        if key is not None:
            here = os.path.dirname(__file__)
            crc = zlib.crc32("\0".join([goroot or "", *sources]).encode())
            for name in _PRODUCERS:
                with open(os.path.join(here, name), "rb") as f:
                    crc = zlib.crc32(f.read(), crc)
            self._cache = IndexCache(f"{key}-source-{crc:08x}")
        self._entries: dict[str, tuple[Signature, list[FileStamp]]] | None = None
        self._dirty = False
        self._packages: list[str] | None = None

    def _load(self) -> dict[str, tuple[Signature, list[FileStamp]]]:
        if self._entries is None:
            state: dict[str, Any] | None = self._cache.load() if self._cache is not None else None
            entries = state.get("signatures") if state is not None else None
            self._entries = entries if isinstance(entries, dict) else {}
            packages = state.get("packages") if state is not None else None
            self._packages = packages if isinstance(packages, list) else None
        return self._entries

    def packages(self) -> list[str] | None:
        """The binary's package paths, as :meth:`put_packages` was given them (the binary's own
        facts: valid while its build ID is)."""
        self._load()
        return self._packages

    def put_packages(self, paths: list[str]) -> None:
        self._load()
        self._packages = paths
        self._dirty = self._cache is not None

    def get(self, name: str) -> Signature | None:
        """The signature derived before, if every file it was read from is unchanged."""
        entry = self._load().get(name)
        if entry is None:
            return None
        sig, files = entry
        return sig if all(stamp(f[0]) == f for f in files) else None

    def put(self, name: str, sig: Signature, files: list[str]) -> None:
        """Remember ``sig``, derived from ``files``, until :meth:`save`."""
        if self._cache is None:
            return
        stamps = [s for f in files if (s := stamp(f)) is not None]
        self._load()[name] = (sig, stamps)
        self._dirty = True

    def save(self) -> None:
        """Write what was derived since the last save (Process.close does)."""
        if self._cache is not None and self._dirty:
            self._cache.save({"signatures": self._entries, "packages": self._packages})
            self._dirty = False
