"""Go types from source: type expressions resolved to GoTypes laid out as the gc compiler
lays them out on amd64 (``cmd/compile/internal/types/size.go``).

Sizes and alignments: predeclared types as Go's spec and gc say (int, uint, uintptr 8;
complex64 aligned to 4; string 16; slices 24; interfaces 16; pointers, maps, channels
and funcs 8). A struct places each field at the next multiple of its alignment, is
aligned to its largest field, and its size is rounded up to that alignment, after one
byte of padding when it ends in a zero-size field (so a pointer to that field cannot
point past the object). Arrays are ``n * elem`` with the element's alignment.

Named types are ``importpath.Name`` as DWARF names them; a named struct's fields are
computed from its declaration, following imports into the packages they name, and a
recursive type (``type Node struct{ next *Node }``) is a cyclic GoType graph, as DWARF's.
Empty interfaces have the runtime's ``eface`` fields (``_type``, ``data``), others
``iface``'s (``tab``, ``data``): the decoder tells them apart by those (values/decode.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..binary.gotypes import Field, GoType, Kind
from ..errors import SymbolNotFound
from .files import GoFile, Package, text

if TYPE_CHECKING:
    from tree_sitter import Node

__all__ = ["SourceTypeError", "Types", "eface", "iface"]

_PTR = 8
_PREDECLARED: dict[str, tuple[Kind, int, int]] = {
    "bool": (Kind.BOOL, 1, 1), "int": (Kind.INT, 8, 8), "int8": (Kind.INT8, 1, 1), "int16": (Kind.INT16, 2, 2),
    "int32": (Kind.INT32, 4, 4), "int64": (Kind.INT64, 8, 8), "uint": (Kind.UINT, 8, 8),
    "uint8": (Kind.UINT8, 1, 1), "uint16": (Kind.UINT16, 2, 2), "uint32": (Kind.UINT32, 4, 4),
    "uint64": (Kind.UINT64, 8, 8), "uintptr": (Kind.UINTPTR, 8, 8), "float32": (Kind.FLOAT32, 4, 4),
    "float64": (Kind.FLOAT64, 8, 8), "complex64": (Kind.COMPLEX64, 8, 4), "complex128": (Kind.COMPLEX128, 16, 8),
    "string": (Kind.STRING, 16, 8),
}  # fmt: skip
_ALIASES = {"byte": "uint8", "rune": "int32"}
_UNSAFE_POINTER = GoType("unsafe.Pointer", Kind.UNSAFE_POINTER, 8, 8)


class SourceTypeError(SymbolNotFound):
    """A type in a declaration gocall cannot lay out from source (generic, or not found)."""


def basic(name: str) -> GoType:
    kind, size, align = _PREDECLARED[name]
    return GoType(name, kind, size, align)


def eface(name: str = "interface {}") -> GoType:
    return GoType(name, Kind.INTERFACE, 16, 8, fields=(Field("_type", _UNSAFE_POINTER, 0), Field("data", _UNSAFE_POINTER, 8)))


def iface(name: str) -> GoType:
    return GoType(name, Kind.INTERFACE, 16, 8, fields=(Field("tab", _UNSAFE_POINTER, 0), Field("data", _UNSAFE_POINTER, 8)))


def pointer(elem: GoType) -> GoType:
    return GoType("*" + elem.name, Kind.POINTER, _PTR, _PTR, elem=elem)


def slice_of(elem: GoType) -> GoType:
    int_t = basic("int")
    return GoType("[]" + elem.name, Kind.SLICE, 24, _PTR, elem=elem,
                  fields=(Field("array", pointer(elem), 0), Field("len", int_t, 8), Field("cap", int_t, 16)))


def _align(n: int, a: int) -> int:
    return (n + a - 1) // a * a if a > 1 else n


def struct_layout(fields: list[tuple[str, GoType, bool]]) -> tuple[tuple[Field, ...], int, int]:
    """(fields with offsets, size, align) of a struct, by gc's amd64 rules."""
    out: list[Field] = []
    off, align = 0, 1
    for name, t, embedded in fields:
        a = max(t.align, 1)
        off = _align(off, a)
        out.append(Field(name, t, off, embedded))
        off += t.size
        align = max(align, a)
    if out and off > 0 and out[-1].type.size == 0:
        off += 1  # types.CalcStructSize: no pointer to a final zero-size field may point past the object
    return tuple(out), _align(off, align), align


_INT = re.compile(r"0[xX][0-9a-fA-F_]+|0[oO]?[0-7_]+|0[bB][01_]+|[0-9_]+")


class Types:
    """Resolves type expressions of the packages ``packages`` finds (import path -> Package)."""

    def __init__(self, packages: Callable[[str], Package | None]) -> None:
        self._packages = packages
        self._named: dict[tuple[str, str], GoType] = {}

    def package(self, path: str) -> Package:
        pkg = self._packages(path)
        if pkg is None:
            raise SourceTypeError(f"no Go source for package {path}",
                                  hint="give the program's module root with --source DIR, the standard library's "
                                       "with --goroot DIR")
        return pkg

    def resolve(self, node: Node, pkg: Package, f: GoFile, env: dict[str, GoType] | None = None) -> GoType:
        """The GoType of type expression ``node`` of file ``f`` of ``pkg``; ``env`` binds the
        type parameters of the generic declaration being instantiated."""
        k = node.type
        if k == "parenthesized_type":
            return self.resolve(node.named_children[0], pkg, f, env)
        if k == "type_identifier":
            if env and text(node) in env:
                return env[text(node)]
            return self.identifier(text(node), pkg)
        if k == "qualified_type":
            qualifier, name = text(node).split(".", 1)
            if qualifier == "unsafe" and name == "Pointer":
                return _UNSAFE_POINTER
            path = f.imports.get(qualifier)
            if path is None:
                raise SourceTypeError(f"{text(node)} in {f.path}: no import names {qualifier}")
            return self.named(self.package(path), name)
        if k == "pointer_type":
            try:
                return pointer(self.resolve(node.named_children[0], pkg, f, env))
            except SourceTypeError:  # what it points to need not be laid out to pass the pointer
                return pointer(GoType(" ".join(text(node.named_children[0]).split()), Kind.STRUCT, 0, 1))
        if k == "slice_type":
            return slice_of(self.resolve(node.child_by_field_name("element") or node.named_children[-1], pkg, f, env))
        if k == "array_type":
            elem = self.resolve(node.child_by_field_name("element") or node.named_children[-1], pkg, f, env)
            length_node = node.child_by_field_name("length") or node.named_children[0]
            n = self.constant(length_node, pkg, f)
            return GoType(f"[{n}]{elem.name}", Kind.ARRAY, n * elem.size, max(elem.align, 1), elem=elem, length=n)
        if k == "map_type":
            key = self.resolve(node.child_by_field_name("key") or node.named_children[0], pkg, f, env)
            value = self.resolve(node.child_by_field_name("value") or node.named_children[-1], pkg, f, env)
            return GoType(f"map[{key.name}]{value.name}", Kind.MAP, _PTR, _PTR, elem=value, key=key)
        if k == "channel_type":
            elem = self.resolve(node.child_by_field_name("value") or node.named_children[-1], pkg, f, env)
            return GoType(f"{_chan_prefix(text(node))}{elem.name}", Kind.CHAN, _PTR, _PTR, elem=elem)
        if k == "function_type":
            return GoType(" ".join(text(node).split()), Kind.FUNC, _PTR, _PTR)
        if k == "interface_type":
            empty = not any(c.type != "comment" for c in node.named_children)
            return eface() if empty else iface(" ".join(text(node).split()))
        if k == "struct_type":
            fields, size, align = self._fields(node, pkg, f, env)
            name = "struct { " + "; ".join(f"{x.name} {x.type.name}" for x in fields) + " }" if fields else "struct {}"
            return GoType(name, Kind.STRUCT, size, align, fields=fields)
        if k == "generic_type":
            return self._instance(node, pkg, f, env)
        raise SourceTypeError(f"cannot lay out the type {text(node)!r} (in {f.path}) from source")

    def identifier(self, name: str, pkg: Package) -> GoType:
        name = _ALIASES.get(name, name)
        if name in _PREDECLARED:
            return basic(name)
        if name == "error":
            return iface("error")
        if name == "any":
            return eface()
        return self.named(pkg, name)

    def named(self, pkg: Package, name: str) -> GoType:
        """The type ``name`` declared in ``pkg``, laid out (cached; recursive types are cycles)."""
        key = (pkg.path, name)
        t = self._named.get(key)
        if t is not None:
            return t
        found = pkg.type_spec(name)
        if found is None:
            raise SourceTypeError(f"type {pkg.path}.{name} is not declared in {pkg.directory}")
        f, spec = found
        type_node = spec.child_by_field_name("type")
        if type_node is None:
            raise SourceTypeError(f"cannot read the declaration of {pkg.path}.{name} in {f.path}")
        if spec.child_by_field_name("type_parameters") is not None:
            raise SourceTypeError(f"{pkg.path}.{name} is generic: gocall lays out generic types only with DWARF")
        if spec.type == "type_alias":
            t = self._named[key] = self.resolve(type_node, pkg, f)
            return t
        full = f"{pkg.path}.{name}"
        if type_node.type == "struct_type":
            # Registered before its fields are resolved, so a field pointing back at it finds it.
            t = self._named[key] = GoType(full, Kind.STRUCT, 0, 1)
            fields, size, align = self._fields(type_node, pkg, f)
            object.__setattr__(t, "fields", fields)
            object.__setattr__(t, "size", size)
            object.__setattr__(t, "align", align)
            return t
        if type_node.type == "interface_type":
            t = self._named[key] = iface(full) if any(c.type != "comment" for c in type_node.named_children) \
                else eface(full)
            return t
        u = self.resolve(type_node, pkg, f)
        t = self._named[key] = GoType(full, u.kind, u.size, u.align, elem=u.elem, key=u.key, length=u.length,
                                      fields=u.fields)
        return t

    def _instance(self, node: Node, pkg: Package, f: GoFile, env: dict[str, GoType] | None) -> GoType:
        """``G[A, B]``: the generic declaration's type laid out with its parameters bound."""
        base = node.child_by_field_name("type") or node.named_children[0]
        args_node = node.child_by_field_name("type_arguments") or node.named_children[-1]
        args = [self.resolve(a.named_children[0] if a.type == "type_elem" else a, pkg, f, env)
                for a in args_node.named_children]
        if base.type == "qualified_type":
            qualifier, name = text(base).split(".", 1)
            if qualifier not in f.imports:
                raise SourceTypeError(f"{text(base)} in {f.path}: no import names {qualifier}")
            decl_pkg = self.package(f.imports[qualifier])
        else:
            decl_pkg, name = pkg, text(base)
        full = f"{decl_pkg.path}.{name}[{','.join(a.name for a in args)}]"
        key = (decl_pkg.path, full)
        if key in self._named:
            return self._named[key]
        found = decl_pkg.type_spec(name)
        params = found[1].child_by_field_name("type_parameters") if found is not None else None
        type_node = found[1].child_by_field_name("type") if found is not None else None
        if found is None or params is None or type_node is None:
            raise SourceTypeError(f"generic type {full} is not declared in {decl_pkg.directory}")
        names = [text(n) for d in params.named_children for n in d.children_by_field_name("name")]
        if len(names) != len(args):
            raise SourceTypeError(f"{full}: {len(args)} type arguments for {len(names)} parameters")
        bound = dict(zip(names, args, strict=True))
        if type_node.type == "struct_type":
            t = self._named[key] = GoType(full, Kind.STRUCT, 0, 1)
            fields, size, align = self._fields(type_node, decl_pkg, found[0], bound)
            object.__setattr__(t, "fields", fields)
            object.__setattr__(t, "size", size)
            object.__setattr__(t, "align", align)
            return t
        u = self.resolve(type_node, decl_pkg, found[0], bound)
        t = self._named[key] = GoType(full, u.kind, u.size, u.align, elem=u.elem, key=u.key, length=u.length,
                                      fields=u.fields)
        return t

    def _fields(self, node: Node, pkg: Package, f: GoFile,
                env: dict[str, GoType] | None = None) -> tuple[tuple[Field, ...], int, int]:
        fields: list[tuple[str, GoType, bool]] = []
        body = next((c for c in node.named_children if c.type == "field_declaration_list"), None)
        for decl in body.named_children if body is not None else ():
            if decl.type != "field_declaration":
                continue
            names = [text(n) for n in decl.children_by_field_name("name")]
            type_node = decl.child_by_field_name("type")
            if type_node is None:
                continue
            t = self.resolve(type_node, pkg, f, env)
            if not names and text(decl).startswith("*"):  # an embedded *T: the star is a token of its own
                t = pointer(t)
            if names:
                fields += [(n, t, False) for n in names]
            else:  # embedded: named after its type, without package, star or type arguments
                fields.append((text(type_node).lstrip("*").split("[", 1)[0].rsplit(".", 1)[-1], t, True))
        return struct_layout(fields)

    def constant(self, node: Node, pkg: Package, f: GoFile) -> int:
        """The value of an integer constant expression (an array length)."""
        k = node.type
        s = text(node)
        if k == "int_literal" and _INT.fullmatch(s):
            s = s.replace("_", "")
            return int(s, 8) if len(s) > 1 and s[0] == "0" and s[1].isdigit() else int(s, 0)
        if k == "parenthesized_expression":
            return self.constant(node.named_children[0], pkg, f)
        if k == "binary_expression":
            left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
            op = node.child_by_field_name("operator")
            if left is not None and right is not None and op is not None:
                a, b = self.constant(left, pkg, f), self.constant(right, pkg, f)
                ops: dict[str, Callable[[int, int], int]] = {
                    "+": lambda x, y: x + y, "-": lambda x, y: x - y, "*": lambda x, y: x * y,
                    "/": lambda x, y: x // y, "<<": lambda x, y: x << y, ">>": lambda x, y: x >> y,
                    "&": lambda x, y: x & y, "|": lambda x, y: x | y, "%": lambda x, y: x % y}
                if text(op) in ops:
                    return ops[text(op)](a, b)
        if k == "identifier":
            return self._named_constant(pkg, s)
        if k == "selector_expression":
            operand, field = node.child_by_field_name("operand"), node.child_by_field_name("field")
            if operand is not None and field is not None and text(operand) in f.imports:
                return self._named_constant(self.package(f.imports[text(operand)]), text(field))
        raise SourceTypeError(f"cannot evaluate the constant {s!r} (in {f.path})")

    def _named_constant(self, pkg: Package, name: str) -> int:
        found = pkg.const(name)
        if found is None:
            raise SourceTypeError(f"constant {pkg.path}.{name} is not declared in {pkg.directory}")
        f, spec, i = found
        values = spec.child_by_field_name("value")
        items = [c for c in values.named_children] if values is not None else []
        if i >= len(items):
            raise SourceTypeError(f"cannot evaluate {pkg.path}.{name} (an iota sequence) in {f.path}")
        return self.constant(items[i], pkg, f)


def _chan_prefix(source: str) -> str:
    s = " ".join(source.split())
    if s.startswith("<-"):
        return "<-chan "
    if s.startswith("chan<-") or s.startswith("chan <-"):
        return "chan<- "
    return "chan "
