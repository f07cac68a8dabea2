"""binary/kept.py: the executables a gocall server keeps read for its commands' children, found
again only for a process running that very file (device, inode, size, mtime)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from gocall.binary import GoBinary, kept


@pytest.fixture
def keeping() -> Iterator[None]:
    """This process as a server would be, its kept executables closed and forgotten afterwards."""
    try:
        yield
    finally:
        while kept._kept:
            kept._kept.popitem()[1].close()


def test_found_for_the_same_file_only(keeping, start_target, calls_binary, tmp_path):  # type: ignore[no-untyped-def]
    first, second = start_target(), start_target()
    copy = Path(shutil.copy2(calls_binary, tmp_path / "calls-copy"))  # same bytes, another file
    other = start_target(copy)
    binary = GoBinary.of_process(first.pid)
    binary.pclntab  # read, as the server reads what each command would
    assert kept.keep(binary, first.pid) and not kept.keep(binary, first.pid)  # once
    found = GoBinary.of_process(second.pid)  # another process of the same file: read already
    assert found is not binary and found.path == f"/proc/{second.pid}/exe"
    assert found.pclntab is binary.pclntab
    assert found.pclntab.func_by_name("main.Add") is not None
    assert kept.find(other.pid) is None  # a copy is another file
    assert kept.keep(GoBinary.of_process(other.pid), other.pid) and kept.find(other.pid) is not None
    os.utime(copy, ns=(0, 0))  # changed: no longer the file that was read
    assert kept.find(other.pid) is None and not kept.kept(other.pid) and kept.kept(first.pid)
