"""The on-disk index cache (binary/cache.py): a second opening of a binary answers from it
without parsing DWARF, with the same answers; damaged or foreign entries are ignored."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from gocall.binary import GoBinary
from gocall.binary.cache import IndexCache, cache_dir

_FUNCS = ("main.Add", "main.Walk", "main.Everything", "strings.ToUpper")


@pytest.fixture()
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path / "gocall" / "index"


def _ask(binary: GoBinary) -> dict[str, object]:
    """The questions a call asks, answered by ``binary``."""
    dwarf = binary.dwarf
    assert dwarf is not None
    sigs = {name: binary.function_signature(name) for name in _FUNCS}
    point = dwarf.type_named("main.Point")
    assert point is not None
    return {"packages": dwarf.packages, "sigs": sigs, "point": point, "point_rtype": dwarf.runtime_type(point),
            "missing": (binary.function_signature("main.NoSuch"), dwarf.type_named("main.NoSuch")),
            # the shell's `os.<Tab>` (expr/members.py): a later session's first completion reads no DWARF
            "os_variables": dwarf.package_variables("os")}


def test_second_open_answers_from_the_cache(gobin: Path, cache_home: Path) -> None:
    assert Path(cache_dir()) == cache_home
    with GoBinary.open(gobin) as first:
        expected = _ask(first)
        assert first.dwarf is not None
        first.dwarf.save()
    assert len(list(cache_home.glob("*.pickle"))) == 1
    with GoBinary.open(gobin) as second:
        got = _ask(second)
        assert second.dwarf is not None and "info" not in second.dwarf.__dict__  # no DWARF parsed
    assert got == expected
    assert got["point_rtype"] is not None and "Args" in got["os_variables"]
    walk = got["sigs"]["main.Walk"]  # type: ignore[index]
    node = walk.params[0].type.elem
    assert node.fields[1].type is walk.params[0].type  # cycles and identity survive


def test_a_miss_after_a_hit_shares_the_cached_types(gobin: Path, cache_home: Path) -> None:
    with GoBinary.open(gobin) as first:
        assert first.function_signature("main.Everything") is not None
        assert first.dwarf is not None
        first.dwarf.save()
    with GoBinary.open(gobin) as second:
        big = second.function_signature("main.Everything").params[0].type  # type: ignore[union-attr]
        assert second.dwarf is not None and "info" not in second.dwarf.__dict__
        assert second.dwarf.type_named("main.Big") is big  # parsed now, from the same type table


def test_pclntab_name_lookups_are_kept(gobin: Path, cache_home: Path) -> None:
    """Names searched for in pclntab (found or not) are answered next time without a search."""
    names = ("main.Add", "runtime.debugCallV2", "main.NoSuch")
    with GoBinary.open(gobin) as first:
        expected = {name: first.pclntab.func_by_name(name) for name in names}
    # closing saved them: a lookup alone is something learned
    with GoBinary.open(gobin) as second:
        assert second.dwarf is not None and set(names) <= set(second.dwarf.pclntab_names)
        got = {name: second.pclntab.func_by_name(name) for name in names}
        assert "_name_offsets" not in second.pclntab.__dict__  # no search ran
    assert got == expected and got["main.NoSuch"] is None and got["main.Add"] is not None


@pytest.mark.parametrize("content", [b"", b"garbage", pickle.dumps({"stamp": "old", "state": {}}),
                                     pickle.dumps(os.getcwd)])  # fmt: skip
def test_damaged_or_foreign_entries_are_ignored(gobin: Path, cache_home: Path, content: bytes) -> None:
    with GoBinary.open(gobin) as first:
        expected = _ask(first)
        assert first.dwarf is not None
        first.dwarf.save()
    (entry,) = cache_home.glob("*.pickle")
    entry.write_bytes(content)
    with GoBinary.open(gobin) as second:
        assert _ask(second) == expected
        assert second.dwarf is not None
        second.dwarf.save()
    assert entry.read_bytes() != content  # replaced by a whole entry


def test_unwritable_cache_directory_costs_nothing_else(gobin: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    IndexCache("go:test", str(blocker)).save({"packages": []})  # logged, not raised
    assert IndexCache("go:test", str(blocker)).load() is None
