"""Go source files of one package directory: which ones the build used, and where a
function, method, type or constant is declared in them, read with tree-sitter-go.

Parsing a whole package is slow (the runtime's 3 MB take 1.4 s), so declarations are
found by a byte search first and only the files that may hold them are parsed; a file
is parsed once. Which files belong to a linux/amd64 build follows ``go/build``: no
``_test.go``, ``_GOOS``/``_GOARCH`` file name suffixes, and ``//go:build`` lines
(``go help buildconstraint``) evaluated over the tags such a build has.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tree_sitter import Node, Parser, Tree

__all__ = ["GoFile", "Package"]

_KNOWN_OS = frozenset("aix android darwin dragonfly freebsd hurd illumos ios js linux nacl netbsd openbsd plan9 "
                      "solaris wasip1 windows zos".split())
_KNOWN_ARCH = frozenset("386 amd64 amd64p32 arm armbe arm64 arm64be loong64 mips mipsle mips64 mips64le mips64p32 "
                        "mips64p32le ppc ppc64 ppc64le riscv riscv64 s390 s390x sparc sparc64 wasm".split())
_BUILD_LINE = re.compile(rb"^//go:build (.+)$", re.M)
_TOKENS = re.compile(r"\s*(\(|\)|!|&&|\|\||[\w.]+)")


@functools.cache
def parser() -> Parser:
    import tree_sitter_go
    from tree_sitter import Language, Parser

    return Parser(Language(tree_sitter_go.language()))


def _satisfied(expr: str, tags: frozenset[str]) -> bool:
    """A ``//go:build`` expression over ``tags`` (``!``, ``&&``, ``||``, parentheses)."""
    tokens: list[str] = _TOKENS.findall(expr)
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def orexpr() -> bool:
        v = andexpr()
        while peek() == "||":
            take()
            v = andexpr() or v
        return v

    def andexpr() -> bool:
        v = unary()
        while peek() == "&&":
            take()
            v = unary() and v
        return v

    def unary() -> bool:
        t = take()
        if t == "!":
            return not unary()
        if t == "(":
            v = orexpr()
            take()
            return v
        return t in tags

    try:
        return orexpr()
    except IndexError:
        return True  # a line we cannot read: keep the file, as a superset is harmless here


def build_tags(release: tuple[int, int], cgo: bool) -> frozenset[str]:
    tags = {"linux", "amd64", "unix", "gc", *(f"go1.{n}" for n in range(1, release[1] + 1))}
    if cgo:
        tags.add("cgo")
    return frozenset(tags)


def _in_build(name: str, head: bytes, tags: frozenset[str]) -> bool:
    stem = name[:-3]
    if stem.startswith(("_", ".")) or name.endswith("_test.go"):
        return False
    parts = stem.split("_")[1:]
    if parts and parts[-1] in _KNOWN_ARCH:
        if parts[-1] not in tags:
            return False
        parts = parts[:-1]
    if parts and parts[-1] in _KNOWN_OS and parts[-1] not in tags:
        return False
    m = _BUILD_LINE.search(head.split(b"\npackage ", 1)[0])
    return m is None or _satisfied(m[1].decode(errors="replace"), tags)


class GoFile:
    """One parsed file: its tree and what its imports name."""

    def __init__(self, path: str, src: bytes) -> None:
        self.path = path
        self.src = src

    @functools.cached_property
    def tree(self) -> Tree:
        return parser().parse(self.src)

    @functools.cached_property
    def imports(self) -> dict[str, str]:
        """Name in this file -> import path (the name is the path's last element unless
        renamed, a major-version suffix skipped: ``math/rand/v2`` is ``rand``)."""
        out: dict[str, str] = {}
        for decl in self.tree.root_node.named_children:
            if decl.type != "import_declaration":
                continue
            for spec in _descendants(decl, "import_spec"):
                path_node = spec.child_by_field_name("path")
                if path_node is None:
                    continue
                path = text(path_node).strip('"`')
                name_node = spec.child_by_field_name("name")
                if name_node is not None:
                    out[text(name_node)] = path
                    continue
                parts = path.split("/")
                last = parts[-1] if not (re.fullmatch(r"v\d+", parts[-1]) and len(parts) > 1) else parts[-2]
                out[last.removeprefix("go-").replace("-", "_").split(".")[0]] = path
        return out

    def top(self, kinds: tuple[str, ...]) -> list[Node]:
        return [n for n in self.tree.root_node.named_children if n.type in kinds]


def text(node: Node) -> str:
    return (node.text or b"").decode("utf-8", "replace")


def _descendants(node: Node, kind: str) -> list[Node]:
    out = []
    for c in node.named_children:
        if c.type == kind:
            out.append(c)
        else:
            out += _descendants(c, kind)
    return out


class Package:
    """The files of one package directory that a linux/amd64 build of the binary compiled."""

    def __init__(self, path: str, directory: str, tags: frozenset[str],
                 on_read: Callable[[str], None] | None = None) -> None:
        self.path = path  # import path ("strings", "example.com/m/geo", "main")
        self.directory = directory
        self._tags = tags
        self._parsed: dict[str, GoFile] = {}
        self._on_read = on_read  # told each directory listed and file parsed (what an answer depends on)

    @functools.cached_property
    def _sources(self) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        try:
            names = sorted(os.listdir(self.directory))
        except OSError:
            return out
        if self._on_read is not None:
            self._on_read(self.directory)
        for name in names:
            if not name.endswith(".go"):
                continue
            try:
                with open(os.path.join(self.directory, name), "rb") as f:
                    src = f.read()
            except OSError:
                continue
            if _in_build(name, src[:4096], self._tags):
                out[name] = src
        return out

    @property
    def exists(self) -> bool:
        return bool(self._sources)

    def file(self, name: str) -> GoFile:
        f = self._parsed.get(name)
        if f is None:
            f = self._parsed[name] = GoFile(os.path.join(self.directory, name), self._sources[name])
            if self._on_read is not None:
                self._on_read(f.path)
        return f

    def _candidates(self, pattern: bytes, prefer: str | None = None) -> list[GoFile]:
        rx = re.compile(pattern, re.M)
        names = [n for n, src in self._sources.items() if rx.search(src)]
        if prefer in names:
            names.remove(prefer)
            names.insert(0, prefer)
        return [self.file(n) for n in names]

    def func(self, name: str, receiver: str | None, prefer: str | None = None) -> tuple[GoFile, Node] | None:
        """The declaration of function ``name`` (method of type ``receiver`` when given);
        ``prefer``: the file name the binary records for it, searched first."""
        n = re.escape(name.encode())
        if receiver is None:
            pattern = rb"^func\s+" + n + rb"\s*[\[(]"
        else:
            pattern = rb"^func\s*\([^)]*\b" + re.escape(receiver.encode()) + rb"\b[^)]*\)\s*" + n + rb"\s*\("
        for f in self._candidates(pattern, prefer):
            for decl in f.top(("function_declaration", "method_declaration")):
                name_node = decl.child_by_field_name("name")
                if name_node is None or text(name_node) != name:
                    continue
                if (decl.type == "method_declaration") != (receiver is not None):
                    continue
                if receiver is not None and receiver_type(decl) != receiver:
                    continue
                return f, decl
        return None

    def type_spec(self, name: str) -> tuple[GoFile, Node] | None:
        """The ``type_spec`` or ``type_alias`` declaring ``name``."""
        pattern = rb"^(?:type\s+|\s+)" + re.escape(name.encode()) + rb"\b"
        for f in self._candidates(pattern):
            for decl in f.top(("type_declaration",)):
                for spec in decl.named_children:
                    name_node = spec.child_by_field_name("name")
                    if spec.type in ("type_spec", "type_alias") and name_node is not None and text(name_node) == name:
                        return f, spec
        return None

    def const(self, name: str) -> tuple[GoFile, Node, int] | None:
        """The ``const_spec`` declaring ``name``, and its index in the spec's name list."""
        return self._spec("const", name)

    def var(self, name: str) -> tuple[GoFile, Node, int] | None:
        """The ``var_spec`` declaring package variable ``name``, and its index in the name list."""
        return self._spec("var", name)

    def _spec(self, keyword: str, name: str) -> tuple[GoFile, Node, int] | None:
        pattern = rb"^(?:" + keyword.encode() + rb"\s+|\s+)(?:\w+\s*,\s*)*" + re.escape(name.encode()) + rb"\b"
        for f in self._candidates(pattern):
            for decl in f.top((f"{keyword}_declaration",)):
                specs = [c for c in decl.named_children if c.type == f"{keyword}_spec"]
                for group in decl.named_children:  # var ( ... ) puts its specs in a var_spec_list
                    specs += [c for c in group.named_children if c.type == f"{keyword}_spec"]
                for spec in specs:
                    names = [text(c) for c in spec.children_by_field_name("name")]
                    if name in names:
                        return f, spec, names.index(name)
        return None


def receiver_type(decl: Node) -> str | None:
    """``T`` of a method declared on ``T`` or ``*T`` (None for generic receivers ``T[P]``)."""
    recv = decl.child_by_field_name("receiver")
    if recv is None:
        return None
    params = [c for c in recv.named_children if c.type == "parameter_declaration"]
    if not params:
        return None
    t = params[0].child_by_field_name("type")
    while t is not None and t.type in ("pointer_type", "parenthesized_type"):
        t = t.named_children[0] if t.named_children else None
    return text(t) if t is not None and t.type == "type_identifier" else None
