"""Signatures and types from Go source, for binaries without DWARF (issue 16).

A binary built with ``-ldflags='-s -w'`` (or the Go distribution's ``-dwarf=false``) still
names every function and records, for each, its source file and its argument frame size.
The declaration is read from source and checked against that size before anything is
injected (expr/eval.py), so source of another version is refused, not trusted:

* the standard library (and the toolchain's vendored packages) from a GOROOT of the
  binary's release (goroot.py);
* the program's packages from the paths the binary records, when they exist here (a
  binary built on this machine), else under ``--source DIR``: a module root whose
  ``go.mod`` module path is the binary's main module (build info) or one of its
  dependencies, which is how a ``-trimpath`` build is served.

Function names are the pclntab's: ``pkgpath.F``, ``pkgpath.(*T).M``, ``pkgpath.T.M``, the
last element of the path with its dots escaped as ``%2e`` (cmd/link). Generic functions
and closures have no declaration of their own and are left to ``--declare``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING

from ..binary.gotypes import GoType, Kind, Param, Signature
from ..errors import SymbolNotFound
from .cache import SourceCache
from .files import GoFile, Package, build_tags, text
from .goroot import Goroot, find_goroot, recorded_goroots
from .types import SourceTypeError, Types, pointer, slice_of

if TYPE_CHECKING:
    from tree_sitter import Node

    from ..binary import GoBinary

__all__ = ["GoSource", "runtime_name", "split_name"]

_METHOD_PTR = re.compile(r"\(\*(\w+)\)\.(\w+)")
_METHOD_VAL = re.compile(r"(\w+)\.(\w+)")
_FUNC = re.compile(r"\w+")
_MODULE = re.compile(rb"^\s*module\s+\"?([^\s\"]+)", re.M)
_PACKAGE = re.compile(r"(?:^|(?<=\0))((?:[^\0/]*/)*[^\0./]*)\.")
_FUNC_FLAG_ASM = 4  # abi.FuncFlagAsm (internal/abi/symtab.go; runtime funcFlag_ASM before 1.21)
_PATH_PREFIX = re.compile(r"(?:[\w.~%-]+/)+(?=[\w%-]+\.)")


def split_name(name: str) -> tuple[str, str | None, str] | None:
    """(package path, receiver type or None, function name) of a pclntab function name; None
    for closures, generic instances and other names without a declaration of their own."""
    slash = name.rfind("/")
    dot = name.find(".", slash + 1)
    if dot < 0:
        return None
    pkg, rest = name[:dot].replace("%2e", "."), name[dot + 1 :]
    if m := _METHOD_PTR.fullmatch(rest):
        return pkg, m[1], m[2]
    if (m := _METHOD_VAL.fullmatch(rest)) and not re.fullmatch(r"func\d+", m[2]):
        return pkg, m[1], m[2]
    if _FUNC.fullmatch(rest):
        return pkg, None, rest
    return None


def runtime_name(name: str) -> str:
    """A DWARF-style type name as the runtime's type descriptors spell it: package paths cut
    to the package name (``*example.com/m/geo.Point`` -> ``*geo.Point``)."""
    return _PATH_PREFIX.sub("", name)


class GoSource:
    """Where a binary's Go source is, and what it declares."""

    def __init__(self, binary: GoBinary, goroot: str | None = None, sources: Sequence[str] = ()) -> None:
        self.binary = binary
        self.named_goroot = goroot
        self.sources = [os.path.abspath(s) for s in sources]
        self.types = Types(self.package)
        self._packages: dict[str, Package | None] = {}
        self._signatures: dict[str, Signature | None] = {}
        self._read: dict[str, None] = {}  # directories listed and files parsed, in order
        self._cache = SourceCache(binary, goroot, self.sources)

    # -- what the binary says ------------------------------------------------------

    @cached_property
    def files(self) -> list[str]:
        """Every source file path in the binary's file table."""
        tab = self.binary.pclntab
        h = tab.header
        blob = bytes(tab.data[h.filetabOffset : h.pctabOffset])
        return [p.decode("utf-8", "replace") for p in blob.split(b"\0") if p]

    @cached_property
    def package_paths(self) -> frozenset[str]:
        """Import paths of every package with a function in the binary (from funcnametab;
        kept in the source cache: 20-40 ms for cmd/go)."""
        known = self._cache.packages()
        if known is not None:
            return frozenset(known)
        tab = self.binary.pclntab
        h = tab.header
        blob = bytes(tab.data[h.funcnameOffset : h.cuOffset]).decode("utf-8", "replace")
        # A package path is what precedes the first dot after the last slash of a name.
        out = {m.replace("%2e", ".") for m in _PACKAGE.findall(blob)}
        out.difference_update(("type:", "go:", "type", "go"))
        self._cache.put_packages(sorted(out))
        return frozenset(out)

    @cached_property
    def by_name(self) -> dict[str, list[str]]:
        """Package name as source spells it -> import paths (``filepath`` -> ``path/filepath``)."""
        out: dict[str, list[str]] = {}
        for path in sorted(self.package_paths):
            last = path.rsplit("/", 1)[-1]
            if re.fullmatch(r"v\d+", last) and "/" in path:
                last = path.rsplit("/", 2)[-2]
            out.setdefault(last, []).append(path)
        return out

    @cached_property
    def _main_module(self) -> str | None:
        info = self.binary.buildinfo
        return info.main.path if info is not None and info.main is not None else None

    @cached_property
    def _main_path(self) -> str | None:
        info = self.binary.buildinfo
        return info.path if info is not None and info.path else None

    @cached_property
    def _tags(self) -> frozenset[str]:
        major, minor, _ = self.binary.go_version_tuple
        info = self.binary.buildinfo
        cgo = info is not None and dict(info.settings).get("CGO_ENABLED") == "1"
        return build_tags((major, minor), cgo)

    # -- where the source is -------------------------------------------------------

    @cached_property
    def _goroot_search(self) -> tuple[Goroot | None, list[Goroot]]:
        return find_goroot(self.binary.go_version, self.named_goroot, recorded_goroots(self.files[:4000]))

    @property
    def goroot(self) -> Goroot | None:
        return self._goroot_search[0]

    @cached_property
    def modules(self) -> list[tuple[str, str]]:
        """(module path, root) of each ``--source`` directory (its go.mod's module line)."""
        out = []
        for root in self.sources:
            try:
                with open(os.path.join(root, "go.mod"), "rb") as f:
                    m = _MODULE.search(f.read())
            except OSError:
                continue
            if m:
                out.append((m[1].decode(), root))
        return out

    def is_std(self, path: str) -> bool:
        """Whether package ``path`` is the standard library's (read from GOROOT)."""
        if path == "main" or self._in_module(path, self._main_module):
            return False
        return "." not in path.split("/", 1)[0]

    @staticmethod
    def _in_module(path: str, module: str | None) -> bool:
        return module is not None and (path == module or path.startswith(module + "/"))

    def _directories(self, path: str) -> list[str]:
        """Where package ``path``'s source may be, best first."""
        if path == "main" and self._main_path is not None and self.is_std(self._main_path):
            path = self._main_path  # a command of the Go distribution (cmd/pprof): its source is in GOROOT
        if self.is_std(path):
            root = self.goroot
            if root is None:
                return []
            src = os.path.join(root.path, "src")
            dirs: list[str] = [os.path.join(src, path), os.path.join(src, "vendor", path)]
            if path.startswith("cmd/"):
                dirs.append(os.path.join(src, "cmd", "vendor", path))
            return dirs
        import_path = self._main_path if path == "main" else path
        dirs = []
        for module, module_root in self.modules:
            if import_path is not None and self._in_module(import_path, module):
                dirs.append(os.path.join(module_root, import_path[len(module) + 1 :]) if import_path != module
                            else module_root)
        dirs += self._recorded_dirs(path)
        return dirs

    @cached_property
    def _main_dir(self) -> str | None:
        f = self.binary.pclntab.func_by_name("main.main")
        return os.path.dirname(f.file_line(f.entry)[0]) if f is not None else None

    def _recorded_dirs(self, path: str) -> list[str]:
        """Directories of the binary's own file paths for package ``path`` that exist here:
        the main package's, its module's packages beside it, any path ending in ``path``."""
        main, module, main_path = self._main_dir, self._main_module, self._main_path
        if path == "main":
            return [main] if main is not None else []
        out = []
        if main is not None and module is not None and main_path is not None and self._in_module(path, module) \
                and self._in_module(main_path, module):
            depth = main_path[len(module):].count("/")
            root = main
            for _ in range(depth):
                root = os.path.dirname(root)
            out.append(os.path.join(root, path[len(module) + 1 :]) if path != module else root)
        for file in self.files:
            d = os.path.dirname(file)
            if re.sub(r"@v[^/]*", "", d).endswith("/" + path) and os.path.isabs(d) and d not in out:
                out.append(d)
        return out

    def package(self, path: str) -> Package | None:
        """The source of package ``path`` as the binary's build saw it, or None."""
        if path not in self._packages:
            found = None
            for d in self._directories(path):
                pkg = Package(path, d, self._tags, self._read.setdefault)
                if pkg.exists:
                    found = pkg
                    break
            self._packages[path] = found
        return self._packages[path]

    # -- signatures ------------------------------------------------------------------

    def signature(self, name: str) -> Signature | None:
        """The signature of function ``name`` read from its declaration, or None when the
        source is not here (:meth:`missing` says why). Types it cannot lay out raise."""
        if name not in self._signatures:
            sig = self._cache.get(name)
            if sig is None:
                sig = self._signature(name)
                if sig is not None:  # read from what was read so far (types are shared between answers)
                    self._cache.put(name, sig, list(self._read))
            self._signatures[name] = sig
        return self._signatures[name]

    def _signature(self, name: str) -> Signature | None:
        parts = split_name(name)
        if parts is None:
            return None
        path, receiver, func = parts
        pkg = self.package(path)
        if pkg is None:
            return None
        f = self.binary.pclntab.func_by_name(name)
        prefer = os.path.basename(f.file_line(f.entry)[0]) if f is not None else None
        found = pkg.func(func, receiver, prefer)
        if found is None:
            return None
        gofile, decl = found
        if f is not None and f.flag & _FUNC_FLAG_ASM:  # its declaration has no body; ABI0, not ABIInternal
            raise SymbolNotFound(f"{name} is implemented in assembly ({gofile.path}:{decl.start_point[0] + 1}): "
                                 "gocall calls Go functions only, through the register ABI")
        params: list[Param] = []
        recv = decl.child_by_field_name("receiver")
        if recv is not None:
            params += self._params(recv, pkg, gofile, False)
            if name.endswith(f"(*{receiver}).{func}") and params and params[0].type.kind != Kind.POINTER:
                # The compiler's wrapper of a value method for the pointer's method set: it takes *T.
                params[0] = params[0]._replace(type=pointer(params[0].type))
        plist = decl.child_by_field_name("parameters")
        if plist is not None:
            params += self._params(plist, pkg, gofile, False)
        results: list[Param] = []
        result = decl.child_by_field_name("result")
        if result is not None and result.type == "parameter_list":
            results = self._params(result, pkg, gofile, True)
        elif result is not None:
            results = [Param("~r0", self.types.resolve(result, pkg, gofile), True)]
        line = decl.start_point[0] + 1
        return Signature(name, tuple(params), tuple(results), origin=f"Go source {gofile.path}:{line}")

    def _params(self, plist: Node, pkg: Package, f: GoFile, is_result: bool) -> list[Param]:
        decls = [d for d in plist.named_children if d.type in ("parameter_declaration", "variadic_parameter_declaration")
                 and d.child_by_field_name("type") is not None]
        named = any(d.child_by_field_name("name") is not None for d in decls)
        out: list[Param] = []
        pending: list[str] = []
        for decl in decls:
            type_node = decl.child_by_field_name("type")
            assert type_node is not None
            names = [text(n) for n in decl.children_by_field_name("name")]
            if named and not names and type_node.type == "type_identifier":
                # tree-sitter-go reads the leading names of "a, b, c int" as unnamed parameters of
                # types a and b; Go has every parameter named or none, so they are names of c's type.
                pending.append(text(type_node))
                continue
            t = self.types.resolve(type_node, pkg, f)
            if decl.type == "variadic_parameter_declaration":
                t = slice_of(t)
            names, pending = pending + names, []
            for n in names or [f"~r{len(out)}" if is_result else ""]:
                out.append(Param(n, t, is_result))
        return out

    def missing(self, name: str) -> str:
        """Why :meth:`signature` found no declaration for ``name``."""
        parts = split_name(name)
        if parts is None:
            return f"{name} has no declaration of its own in Go source (a closure or a generic instance)"
        path, receiver, func = parts
        pkg = self.package(path)
        if pkg is not None:
            what = f"method {func} of {receiver}" if receiver else f"func {func}"
            return f"no {what} in {pkg.directory} (source of another version?)"
        if self.is_std(path):
            seen = self._goroot_search[1]
            found = ", ".join(f"{g.version or '?'} at {g.path}" for g in seen) or "none"
            return (f"no Go source of {path} for {self.binary.go_version}: no GOROOT of that release here "
                    f"(found: {found}); name one with --goroot DIR")
        f = self.binary.pclntab.func_by_name(name)
        recorded = f.file_line(f.entry)[0] if f is not None else "?"
        return (f"no Go source of package {path}: the binary records {recorded}, which is not here; "
                "give the module root with --source DIR")

    def save(self) -> None:
        """Keep the signatures derived so far for the next start (gosource/cache.py)."""
        self._cache.save()

    def variable_type(self, name: str) -> GoType | None:
        """The declared type of package variable ``name`` (``pkgpath.V``); None when no source
        declares it. A variable declared without a type (``var v = f()``) raises: its type is
        the initializer's, which gocall does not infer."""
        slash = name.rfind("/")
        dot = name.find(".", slash + 1)
        if dot < 0 or not _FUNC.fullmatch(name[dot + 1 :]):
            return None
        pkg = self.package(name[:dot])
        found = pkg.var(name[dot + 1 :]) if pkg is not None else None
        if pkg is None or found is None:
            return None
        f, spec, i = found
        type_node = spec.child_by_field_name("type")
        if type_node is not None:
            return self.types.resolve(type_node, pkg, f)
        values = spec.child_by_field_name("value")
        items = values.named_children if values is not None else []
        t = self._initializer_type(items[i], pkg, f) if i < len(items) else None
        if t is None:
            raise SourceTypeError(f"package variable {name} is declared without a type ({f.path}:"
                                  f"{spec.start_point[0] + 1}) and gocall cannot tell its initializer's")
        return t

    # The types of untyped constants (the spec's default types).
    _LITERALS = {"interpreted_string_literal": "string", "raw_string_literal": "string", "int_literal": "int",
                 "float_literal": "float64", "rune_literal": "int32", "imaginary_literal": "complex128",
                 "true": "bool", "false": "bool"}

    def _initializer_type(self, node: Node, pkg: Package, f: GoFile) -> GoType | None:
        """The type of ``var v = EXPR`` for the forms package variables are mostly initialized
        with: literals, composite literals and their address, calls of functions (their first
        result) and conversions. None for anything else (gocall infers no more than that)."""
        k = node.type
        if k in self._LITERALS:
            return self.types.identifier(self._LITERALS[k], pkg)
        if k == "composite_literal":
            type_node = node.child_by_field_name("type")
            return self.types.resolve(type_node, pkg, f) if type_node is not None else None
        if k == "unary_expression" and text(node).startswith("&"):
            operand = node.child_by_field_name("operand")
            inner = self._initializer_type(operand, pkg, f) if operand is not None else None
            return pointer(inner) if inner is not None else None
        if k == "parenthesized_expression" and node.named_children:
            return self._initializer_type(node.named_children[0], pkg, f)
        if k == "call_expression":
            callee = node.child_by_field_name("function")
            if callee is None:
                return None
            if callee.type in ("identifier", "selector_expression"):
                qualified = self._qualify(text(callee), pkg, f)
                if qualified is not None:
                    sig = self.signature(qualified) if self.binary.pclntab.func_by_name(qualified) else None
                    if sig is not None and sig.results:
                        return sig.results[0].type
            try:  # a conversion T(x), or a type spelt as an expression
                return self.types.resolve(callee, pkg, f) if callee.type.endswith("_type") else \
                    self.types.identifier(text(callee), pkg) if callee.type == "identifier" else None
            except SourceTypeError:
                return None
        return None

    @staticmethod
    def _qualify(name: str, pkg: Package, f: GoFile) -> str | None:
        """``F`` -> ``pkgpath.F``, ``strings.F`` -> ``strings.F`` through the file's imports."""
        head, dot, rest = name.partition(".")
        if not dot:
            return f"{pkg.path}.{name}"
        path = f.imports.get(head)
        return f"{path}.{rest}" if path is not None and "." not in rest else None

    # -- types ----------------------------------------------------------------------

    def type_named(self, name: str) -> GoType | None:
        """A named type, spelt ``importpath.T`` (DWARF) or ``pkg.T`` (the runtime's type
        descriptors), possibly behind ``*`` or ``[]``; None when it cannot be found."""
        if name.startswith("*"):
            elem = self.type_named(name[1:])
            return None if elem is None else pointer(elem)
        if name.startswith("[]"):
            elem = self.type_named(name[2:])
            return None if elem is None else slice_of(elem)
        slash = name.rfind("/")
        dot = name.find(".", slash + 1)
        if dot < 0:
            return None
        path, tname = name[:dot], name[dot + 1 :]
        if not _FUNC.fullmatch(tname):
            return None
        paths = [path] if path in self.package_paths or "/" in path else self.by_name.get(path, [path])
        for p in paths:
            pkg = self.package(p)
            if pkg is None:
                continue
            try:
                return self.types.named(pkg, tname)
            except SourceTypeError:
                continue
        return None

    # -- gocall info ------------------------------------------------------------------

    @property
    def complete(self) -> bool:
        """Whether the standard library's source and the main package's were both found."""
        return self.goroot is not None and self.package("main") is not None

    def describe(self) -> str:
        """Where signatures will come from: ``Go source: GOROOT go1.27.3 (/usr/lib/go) + /src/app``."""
        parts = []
        root = self.goroot
        if root is not None:
            parts.append(f"GOROOT {root.version or '?'} ({root.path})")
        main = self.package("main")
        if main is not None:
            parts.append(main.directory)
        if not parts:
            return "declarations only (no Go source found: --goroot DIR, --source DIR)"
        missing = []
        if root is None:
            missing.append(f"no GOROOT of {self.binary.go_version}")
        if main is None:
            missing.append("no source of package main")
        return "Go source: " + " + ".join(parts) + (f" ({'; '.join(missing)})" if missing else "")
