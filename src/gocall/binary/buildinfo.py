"""Build information the Go linker stores in ``.go.buildinfo``.

Mirrors ``debug/buildinfo/buildinfo.go`` (reader) and ``runtime/debug/mod.go``
(``ParseBuildInfo``, the text format of the module information). The section starts with a
32-byte header::

    "\\xff Go buildinf:" (14 bytes) | ptrSize (1) | flags (1) | 16 bytes of zeros

followed, when ``flags & flagsVersionInl`` (every toolchain since Go 1.18), by two
uvarint-length-prefixed strings: the Go version and the module information. The module
information is framed by two 16-byte sentinels that readers strip.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from gocall.binary.varint import uvarint
from gocall.errors import NotGoBinary, UnsupportedGo

__all__ = ["BuildInfo", "Module", "parse_buildinfo"]

BUILDINFO_MAGIC = b"\xff Go buildinf:"
_HEADER_SIZE = 32
_FLAGS_ENDIAN_BIG = 0x1
_FLAGS_VERSION_INL = 0x2  # strings inline after the header (Go 1.18+), not pointers


# A NamedTuple: a frozen dataclass compiles its methods from source at import (~0.45 ms of a
# cold `gocall call`). BuildInfo stays one (its settings dict is made per instance).
class Module(NamedTuple):
    """A ``mod`` or ``dep`` line (runtime/debug.Module); ``replace`` from a following ``=>``."""

    path: str
    version: str = ""
    sum: str = ""
    replace: Module | None = None


@dataclass(frozen=True)
class BuildInfo:
    """What ``go version -m`` prints (runtime/debug.BuildInfo)."""

    go_version: str  # "go1.27.3"
    path: str = ""  # package path of the main package
    main: Module | None = None
    deps: tuple[Module, ...] = ()
    settings: dict[str, str] = field(default_factory=dict)  # "build" lines: -buildmode, GOAMD64, ...


def _read_bytes(data: bytes, pos: int) -> tuple[bytes, int]:
    try:
        n, pos = uvarint(data, pos)
    except IndexError:
        raise NotGoBinary("truncated .go.buildinfo string length") from None
    return data[pos : pos + n], pos + n


def _unquote(s: str) -> str:
    """Undo strconv.Quote, which ParseBuildInfo applies to keys/values with odd characters."""
    if s.startswith('"'):
        import json  # only for quoted settings: the library's call path loads no json (~1 ms)

        try:
            return str(json.loads(s))
        except ValueError:
            return s
    return s


def _module(fields: list[str]) -> Module:
    path, version, sum_ = (fields + ["", "", ""])[:3]
    return Module(path, version, sum_)


def parse_modinfo(go_version: str, text: str) -> BuildInfo:
    """Parse the module information text (runtime/debug.ParseBuildInfo), sentinels removed."""
    path, main, deps, settings = "", None, [], {}
    for line in text.splitlines():
        kind, _, rest = line.partition("\t")
        parts = rest.split("\t")
        if kind == "path":
            path = rest
        elif kind == "mod":
            main = _module(parts)
        elif kind == "dep":
            deps.append(_module(parts))
        elif kind == "=>":
            # Replaces the module on the line before it.
            replacement = _module(parts)
            if deps:
                deps[-1] = Module(deps[-1].path, deps[-1].version, deps[-1].sum, replacement)
            elif main is not None:
                main = Module(main.path, main.version, main.sum, replacement)
        elif kind == "build":
            key, sep, value = rest.partition("=")
            if key.startswith('"'):
                # A quoted key may contain '='; split after its closing quote.
                end = rest.index('"', 1)
                while rest[end - 1] == "\\":
                    end = rest.index('"', end + 1)
                key, value = rest[: end + 1], rest[end + 2 :]
            settings[_unquote(key)] = _unquote(value)
    return BuildInfo(go_version, path, main, tuple(deps), settings)


def parse_buildinfo(data: bytes) -> BuildInfo:
    """Parse the contents of a ``.go.buildinfo`` section."""
    if not data.startswith(BUILDINFO_MAGIC) or len(data) < _HEADER_SIZE:
        raise NotGoBinary(".go.buildinfo does not start with the Go build-info magic")
    flags = data[15]
    if not flags & _FLAGS_VERSION_INL:
        raise UnsupportedGo("build info uses the pre-Go 1.18 pointer format",
                            hint="gocall supports binaries built by Go 1.18 or later")
    if flags & _FLAGS_ENDIAN_BIG:
        raise UnsupportedGo("big-endian Go binary", hint="gocall supports linux/amd64 only")
    version, pos = _read_bytes(data, _HEADER_SIZE)
    modinfo, _ = _read_bytes(data, pos)
    if len(modinfo) >= 33 and modinfo[-17] == ord("\n"):
        # debug/buildinfo strips the 16-byte sentinels only when the text is framed by them.
        modinfo = modinfo[16:-16]
    return parse_modinfo(version.decode("utf-8", "replace"), modinfo.decode("utf-8", "replace"))
