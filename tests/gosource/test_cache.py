"""Signatures derived from Go source are kept on disk (gosource/cache.py): the next start
answers without reading any source, and an edited source file is read again."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from harness import FIXTURES

from gocall.binary import GoBinary
from gocall.gosource.source import GoSource


def test_signatures_are_kept_until_the_source_changes(build_fixture, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    built = build_fixture("shipped", ["-trimpath", "-ldflags=-s -w"])  # before the cache moves: builds live there too
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    src = tmp_path / "shipped"
    shutil.copytree(FIXTURES / "shipped", src)
    with GoBinary.open(built) as binary:
        first = GoSource(binary, sources=[str(src)])
        sig = first.signature("main.Scale")
        assert sig is not None and first._read  # parsed: main.go, geo/geo.go
        first.save()
        again = GoSource(binary, sources=[str(src)])
        assert again.signature("main.Scale") == sig and not again._read  # from the cache, nothing read
        geo = src / "geo" / "geo.go"
        geo.write_text(geo.read_text().replace("type Point struct{ X, Y int }", "type Point struct{ X, Y, Z int }"))
        st = os.stat(geo)
        os.utime(geo, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        edited = GoSource(binary, sources=[str(src)])
        changed = edited.signature("main.Scale")
        assert changed is not None and edited._read and changed.params[0].type.size == 24
