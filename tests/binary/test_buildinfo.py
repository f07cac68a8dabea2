"""Build-info parsing on text recorded from `go version -m` of real binaries."""

from __future__ import annotations

import pytest

from gocall.binary.buildinfo import BUILDINFO_MAGIC, parse_buildinfo, parse_modinfo
from gocall.errors import NotGoBinary, UnsupportedGo

# Module info of a Go 1.27.3 build of a module with one replaced dependency (sentinels removed).
MODINFO = (
    "path\texample.com/app\n"
    "mod\texample.com/app\t(devel)\t\n"
    "dep\tgolang.org/x/text\tv0.14.0\th1:abc=\n"
    "=>\t../text\t(devel)\t\n"
    "build\t-buildmode=exe\n"
    "build\t-ldflags=\"-s -w\"\n"
    "build\tCGO_ENABLED=0\n"
    "build\tGOAMD64=v1\n"
)


def test_parse_modinfo() -> None:
    info = parse_modinfo("go1.27.3", MODINFO)
    assert info.go_version == "go1.27.3"
    assert info.path == "example.com/app"
    assert info.main is not None and (info.main.path, info.main.version) == ("example.com/app", "(devel)")
    (dep,) = info.deps
    assert (dep.path, dep.version, dep.sum) == ("golang.org/x/text", "v0.14.0", "h1:abc=")
    assert dep.replace is not None and dep.replace.path == "../text"
    assert info.settings == {"-buildmode": "exe", "-ldflags": "-s -w", "CGO_ENABLED": "0", "GOAMD64": "v1"}


def _section(version: bytes, modinfo: bytes, flags: int = 2) -> bytes:
    def varstr(b: bytes) -> bytes:
        assert len(b) < 128
        return bytes([len(b)]) + b

    return BUILDINFO_MAGIC + bytes([8, flags]) + bytes(16) + varstr(version) + varstr(modinfo)


def test_parse_section_strips_sentinels() -> None:
    framed = b"0w\xaf\x0c\x92t\x08\x02A\xe1\xc1\x07\xe6\xd6\x18\xe6" + b"path\tcmd/x\n" + b"\xf92C1\x86\x18 r\x00\x82B\x10A\x16\xd8\xf2"
    info = parse_buildinfo(_section(b"go1.19.8", framed))
    assert (info.go_version, info.path) == ("go1.19.8", "cmd/x")


def test_pre_118_format_is_unsupported() -> None:
    with pytest.raises(UnsupportedGo):
        parse_buildinfo(_section(b"go1.17", b"", flags=0))


def test_bad_magic() -> None:
    with pytest.raises(NotGoBinary):
        parse_buildinfo(b"\0" * 64)
