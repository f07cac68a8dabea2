"""A lazy index over the DWARF the Go linker writes, and its conversion to :class:`GoType`.

Mirrors what ``cmd/link/internal/ld/dwarf.go`` emits (attribute numbers from
``cmd/internal/dwarf/dwarf.go``):

* one compilation unit per package (sometimes several: the package's Go and assembly
  units), named by the package path (``main``, ``strings``, ``example.com/m/pkg``);
* functions as ``DW_TAG_subprogram`` children of their package's unit, named
  ``pkg.Func`` / ``pkg.(*T).M``, with ``DW_TAG_formal_parameter`` children in declaration
  order; ``DW_AT_variable_parameter`` is 1 on results (Go's own convention);
* **all types in one extra unit** appended to the last ``runtime`` unit, found here by its
  ``<unspecified>`` type (``dwtypes``); every Go type DIE carries ``DW_AT_go_kind`` (an
  ``abi.Kind``) and maps/chans ``DW_AT_go_key``/``DW_AT_go_elem``.

pyelftools costs ~16 µs per DIE (research/perf-floors.md), so nothing here walks
``.debug_info``: units are listed from their headers, functions and package variables
found by searching the bytes for their names (:mod:`gocall.binary.dwarfindex`), type DIEs
reached by their offsets, and sections decompressed when first read
(:mod:`gocall.binary.dwarfsections`).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

from gocall.binary.cache import IndexCache
from gocall.binary.dwarfindex import DebugInfoIndex
from gocall.binary.elf import Section
from gocall.binary.gotypes import Field, GoType, Kind, Param, Signature
from gocall.errors import BinaryError, GocallError, SymbolNotFound

if TYPE_CHECKING:  # pyelftools is imported when DWARF is first parsed (see ``info``)
    from elftools.dwarf.compileunit import CompileUnit
    from elftools.dwarf.die import DIE
    from elftools.dwarf.dwarfinfo import DWARFInfo
    from elftools.elf.elffile import ELFFile

__all__ = ["Dwarf", "StructLayout", "package_of"]

# cmd/internal/dwarf/dwarf.go: Go's own attributes.
DW_AT_go_kind = 0x2900
DW_AT_go_key = 0x2901
DW_AT_go_elem = 0x2902
DW_AT_go_embedded_field = 0x2903
DW_AT_go_runtime_type = 0x2904
DW_AT_go_package_name = 0x2905
DW_AT_go_dict_index = 0x2906  # on a generic function's type parameter (Go 1.18+)

# abi.KindMask: DW_AT_go_kind holds the type's kind byte; mask off any flag bits.
_KIND_MASK = (1 << 5) - 1
_PTR_SIZE = 8
# Name of the first DIE of the linker's type unit (dwarf.go: DW_ABRV_NULLTYPE "<unspecified>").
_UNSPECIFIED = b"<unspecified>\0"
_SUBPROGRAM = frozenset({"DW_TAG_subprogram"})
_VARIABLE = frozenset({"DW_TAG_variable"})
_TYPE_TAGS = frozenset({"DW_TAG_base_type", "DW_TAG_pointer_type", "DW_TAG_structure_type", "DW_TAG_array_type",
                        "DW_TAG_subroutine_type", "DW_TAG_typedef"})


class StructLayout(dict[str, int]):
    """Field name → byte offset of a struct, nested struct fields as dotted paths
    (``"sched.sp"``, ``"stack.hi"``), plus the struct's ``size``."""

    def __init__(self, name: str, size: int) -> None:
        super().__init__()
        self.name = name
        self.size = size


def package_of(qualified_name: str) -> str | None:
    """Package path of a function name as Go writes it: ``example.com/m/p.(*T).M`` → ``example.com/m/p``.

    The package ends at the first dot after the last slash; type arguments (``F[...]``) are
    ignored because they may contain slashes and dots of their own.
    """
    name = qualified_name.split("[", 1)[0]
    dot = name.find(".", name.rfind("/") + 1)
    return name[:dot] if dot > 0 else None


def _name(die: DIE) -> str:
    attr = die.attributes.get("DW_AT_name")
    return attr.value.decode("utf-8", "replace") if attr is not None else ""


def _attr(die: DIE, key: str | int, default: Any = None) -> Any:
    # Go's own attributes (DW_AT_go_*) are unknown to pyelftools and keyed by number.
    attributes: dict[Any, Any] = die.attributes
    attr = attributes.get(key)
    return attr.value if attr is not None else default


def _kind(die: DIE) -> Kind | None:
    """DW_AT_go_kind as a Kind; None when absent or 0 (the linker's internal types)."""
    value = _attr(die, DW_AT_go_kind, 0) & _KIND_MASK
    try:
        return Kind(value) if value else None
    except ValueError:
        return Kind.INVALID


def _save_if_alive(ref: Callable[[], Dwarf | None]) -> None:
    dwarf = ref()
    if dwarf is not None:
        dwarf.save()


def _has_params(die: DIE) -> bool:
    return any(child.tag == "DW_TAG_formal_parameter" for child in die.iter_children())


def _complete(t: GoType, **values: object) -> None:
    """Fill in fields of a GoType the converter created moments ago.

    GoType is frozen for everyone else. Recursive Go types (``type Node struct{ next *Node }``)
    need a node to exist before its fields can point back at it, so the converter caches a
    shell first and completes it here, before handing it out.
    """
    for key, value in values.items():
        object.__setattr__(t, key, value)


class Dwarf:
    """Go-aware, lazy access to a binary's DWARF. Nothing is read until first asked for."""

    def __init__(self, elf: Callable[[], ELFFile], sections: Mapping[str, Section],
                 cache: IndexCache | None = None, bias: int = 0, path: str = "the binary") -> None:
        self._elf = elf
        self.path = path  # named in errors
        self._bias = bias  # added to package variables' addresses (a loaded PIE; binary/pie.py)  # pyelftools' view of the file, made on demand (GNU .zdebug sections only)
        self._sections = sections
        self._types: dict[int, GoType] = {}  # by DIE offset
        self._signatures: dict[tuple[str, int | None], Signature | None] = {}  # asked several times per call
        self._runtime_types: dict[int, int] = {}  # id(GoType) → DW_AT_go_runtime_type
        # Answers to the questions a call asks, remembered on disk (binary/cache.py).
        self._named_types: dict[str, GoType | None] = {}
        self._variables: dict[str, tuple[int, GoType] | None] = {}
        self._package_list: list[str] | None = None
        # Each package's variable names (completion's ``pkg.<Tab>``): kept, the shell's first
        # completion in a later session decompresses no DWARF.
        self._package_variables: dict[str, list[str]] = {}
        # pclntab's name lookups (name -> functab index; Pclntab._find_name), kept here to be
        # saved with the rest: on cmd/go they are ~6 ms of a warm-cache `gocall call`.
        self.pclntab_names: dict[str, int | None] = {}
        self._index_cache = cache
        self._dirty = False
        if cache is not None:
            self._restore(cache.load())

    def _restore(self, state: dict[str, Any] | None) -> None:
        if state is None:
            return
        self._types = state["types"]
        self._signatures = state["signatures"]
        self._named_types = state["named_types"]
        self._variables = state["variables"]
        self._package_list = state["packages"]
        self._package_variables = state["package_variables"]
        self.pclntab_names = state["pclntab_names"]
        for offset, rtype in state["runtime_types"].items():
            self._runtime_types.setdefault(id(self._types[offset]), rtype)

    def learned(self) -> None:
        """A new answer: save them all when this object goes or the process exits (once per
        run, usually). Only a weak reference waits for the exit: many binaries opened in
        one process must not stay in memory for it."""
        if self._index_cache is not None and not self._dirty:
            import atexit
            import weakref

            atexit.register(_save_if_alive, weakref.ref(self))
        self._dirty = True

    def __del__(self) -> None:
        try:
            self.save()
        except Exception:  # noqa: BLE001 (a finalizer must not raise; the cache is only an optimisation)
            pass

    def save(self) -> None:
        """Write what was learned to the on-disk cache now (also done when this object is
        collected, or at exit)."""
        if getattr(self, "_index_cache", None) is None or not self._dirty:
            return
        assert self._index_cache is not None
        by_id = {id(t): offset for offset, t in self._types.items()}
        runtime_types = {by_id[key]: rtype for key, rtype in self._runtime_types.items() if key in by_id}
        self._index_cache.save({"types": self._types, "signatures": self._signatures, "named_types": self._named_types,
                          "variables": self._variables, "packages": self._package_list,
                          "package_variables": self._package_variables,
                          "runtime_types": runtime_types, "pclntab_names": self.pclntab_names})
        self._dirty = False

    @contextlib.contextmanager
    def _reading(self, what: str) -> Iterator[None]:
        """Whatever pyelftools or the conversion raises while reading ``what``, as one
        BinaryError naming it and the binary (no input may end in a traceback). Types
        converted halfway are forgotten, not left in the cache incomplete."""
        before = len(self._types)
        try:
            yield
        except GocallError:
            raise
        except Exception as e:  # noqa: BLE001 (DWARFError, KeyError, struct.error...: DWARF gocall misread)
            for offset in list(self._types)[before:]:
                del self._types[offset]
            raise BinaryError(f"cannot read the DWARF of {what} in {self.path}: {type(e).__name__}: {e}",
                              hint="its debug information has a form gocall does not read; please report this") from e

    @cached_property
    def info(self) -> DWARFInfo:
        """pyelftools' DWARFInfo; each section is decompressed when first read."""
        if any(name.startswith(".zdebug") for name in self._sections):
            return self._elf().get_dwarf_info()  # GNU-style .zdebug_* (Go < 1.11 wrote those)
        from gocall.binary.dwarfsections import lazy_dwarf_info

        return lazy_dwarf_info(self._sections)

    @cached_property
    def _index(self) -> DebugInfoIndex:
        return DebugInfoIndex(self._debug_info, self.info.get_abbrev_table)

    @cached_property
    def _units(self) -> dict[str, list[int]]:
        """Package path → offsets of its compilation units, from the unit headers."""
        units: dict[str, list[int]] = {}
        index = self._index
        for unit in index.units:
            name = index.unit_name(unit)
            if name is None:
                name = _name(self._unit(unit.offset).get_top_DIE())
            units.setdefault(name, []).append(unit.offset)
        return units

    def _die(self, offset: int) -> DIE:
        """The DIE at ``offset`` of ``.debug_info``, parsing only its unit's header.

        (pyelftools' own ``get_DIE_from_refaddr`` parses every unit header before the
        offset the first time.)
        """
        unit = self._index.unit_at(offset)
        if unit is None:
            raise SymbolNotFound(f"no DWARF unit holds offset {offset:#x}")
        return self._unit(unit.offset).get_DIE_from_refaddr(offset)

    @property
    def packages(self) -> list[str]:
        """Paths of the packages that have a compilation unit, in link order."""
        if self._package_list is None:
            self._package_list = list(self._units)
            self.learned()
        return list(self._package_list)

    def _unit(self, offset: int) -> CompileUnit:
        return self.info.get_CU_at(offset)

    def package_units(self, package: str) -> list[CompileUnit]:
        """The compilation units of ``package`` (frames and locals walk their subprograms)."""
        return [self._unit(offset) for offset in self._units.get(package, ())]

    def package_variables(self, package: str) -> list[str]:
        """Names of ``package``'s variables (``main.Label`` -> ``Label``), from the bytes of its
        units (dwarfindex.py), no DIE parsed."""
        found = self._package_variables.get(package)
        if found is None:
            index = self._index
            found = self._package_variables[package] = [
                name for offset in self._units.get(package, ()) if (unit := index.unit_at(offset)) is not None
                for name in index.variable_names(unit, package)]  # fmt: skip
            self.learned()
        return list(found)

    def function_die(self, qualified_name: str, entry: int | None = None) -> DIE | None:
        """The ``DW_TAG_subprogram`` of function ``qualified_name`` whose code starts at
        ``entry`` (as linked, like every address in DWARF), wherever its unit is; None if DWARF has none.

        The out-of-line DIE is preferred: a function also inlined somewhere has an abstract
        DIE without its unnamed results (``~r0``), which its concrete instance lists. When
        the name is not found (DWARF and pclntab spell some generic instantiations
        differently) the DIE is found by its entry.
        """
        named = [die for die in map(self._die, self._index.named(qualified_name, _SUBPROGRAM))
                 if _name(die) == qualified_name]
        # An assembly function has a DIE without parameters besides its Go declaration's
        # (the ABIInternal wrapper's, at another entry): prefer DIEs listing parameters,
        # then the one at ``entry``.
        named.sort(key=lambda die: (not _has_params(die), entry not in (None, _attr(die, "DW_AT_low_pc"))))
        for die in named:
            if "DW_AT_low_pc" in die.attributes:
                return die
        for die in named:
            for offset in self._index.concrete(die.offset, entry):
                concrete = self._die(offset)
                if _attr(concrete, "DW_AT_abstract_origin") == die.offset and \
                        entry in (None, _attr(concrete, "DW_AT_low_pc")):
                    return concrete
        if named:
            return named[0]
        if entry is not None:
            for offset in self._index.by_entry(entry):
                die = self._die(offset)
                if die.tag == "DW_TAG_subprogram" and _attr(die, "DW_AT_low_pc") == entry:
                    return die
        return None

    def function_signature(self, qualified_name: str, entry: int | None = None) -> Signature | None:
        """Parameters and results of ``main.Add``, ``main.(*T).M``, ``strings.ToUpper``…

        In declaration order, receiver first; None if DWARF has no such function (not
        linked in, or the binary was built with ``-w``). ``entry`` (the function's entry
        PC as linked) picks the right DIE when several have the name, and finds it when
        DWARF spells the name differently.
        """
        key = (qualified_name, entry)  # Go 1.19/1.20 name every instantiation of F ``F[...]``
        if key not in self._signatures:
            with self._reading(f"function {qualified_name}"):
                self._signatures[key] = self._read_signature(qualified_name, entry)
            self.learned()
        return self._signatures[key]

    def _read_signature(self, qualified_name: str, entry: int | None) -> Signature | None:
        die = self.function_die(qualified_name, entry)
        if die is None:
            return None
        params: list[Param] = []
        results: list[Param] = []
        for child in die.iter_children():
            if child.tag != "DW_TAG_formal_parameter":
                continue
            if "DW_AT_abstract_origin" in child.attributes:
                child = child.get_DIE_from_attribute("DW_AT_abstract_origin")
            is_result = bool(_attr(child, "DW_AT_variable_parameter", False))
            param = Param(_name(child), self._type_of(_attr(child, "DW_AT_type")), is_result)
            if is_result and param.name.startswith("~r") and any(r.name == param.name for r in results):
                continue  # go1.19 out-of-line instances list ~rN both directly and through the abstract DIE
            (results if is_result else params).append(param)
        return Signature(qualified_name, tuple(params), tuple(results))

    def type_of(self, die: DIE | int) -> GoType:
        """The GoType described by a type DIE (or its ``.debug_info`` offset); cached per DIE."""
        cached = self._types.get(die if isinstance(die, int) else die.offset)
        if cached is not None:
            return cached
        with self._reading(f"the type at {die if isinstance(die, int) else die.offset:#x}"):
            return self._type_of(die)

    def _type_of(self, die: DIE | int) -> GoType:
        offset = die if isinstance(die, int) else die.offset
        cached = self._types.get(offset)
        if cached is not None:
            return cached
        if isinstance(die, int):
            die = self._die(die)
        return self._convert(die)

    def _convert(self, die: DIE) -> GoType:
        name = _name(die)
        kind = _kind(die)
        tag = die.tag
        if tag == "DW_TAG_typedef":
            return self._typedef(die, name, kind)
        if tag == "DW_TAG_base_type":
            size = _attr(die, "DW_AT_byte_size", 0)
            align = size // 2 if kind in (Kind.COMPLEX64, Kind.COMPLEX128) else min(size, _PTR_SIZE)
            return self._cache(die, GoType(name, kind or Kind.INVALID, size, align))
        if tag == "DW_TAG_pointer_type":
            if "DW_AT_type" not in die.attributes:  # only unsafe.Pointer has no pointee
                return self._cache(die, GoType(name, Kind.UNSAFE_POINTER, _PTR_SIZE, _PTR_SIZE))
            t = self._cache(die, GoType(name, Kind.POINTER, _PTR_SIZE, _PTR_SIZE))
            _complete(t, elem=self._type_of(_attr(die, "DW_AT_type")))
            return t
        if tag == "DW_TAG_structure_type":
            return self._struct(die, name, kind or Kind.STRUCT)
        if tag == "DW_TAG_array_type":
            length = next((_attr(c, "DW_AT_count", 0) for c in die.iter_children()
                           if c.tag == "DW_TAG_subrange_type"), 0)
            t = self._cache(die, GoType(name, Kind.ARRAY, _attr(die, "DW_AT_byte_size", 0), length=length))
            elem = self._type_of(_attr(die, "DW_AT_type"))
            _complete(t, elem=elem, align=elem.align or 1)
            return t
        if tag == "DW_TAG_subroutine_type":
            # A func value is one pointer to a closure object; its signature is not needed to pass it.
            return self._cache(die, GoType(name, Kind.FUNC, _PTR_SIZE, _PTR_SIZE))
        return self._cache(die, GoType(name, kind or Kind.INVALID, _attr(die, "DW_AT_byte_size", 0)))

    def _cache(self, die: DIE, t: GoType) -> GoType:
        self._types[die.offset] = t
        rtype = _attr(die, DW_AT_go_runtime_type)
        if rtype is not None:
            self._runtime_types.setdefault(id(t), rtype)
        return t

    def runtime_type(self, t: GoType) -> int | None:
        """DW_AT_go_runtime_type of a type read here: its ``abi.Type`` descriptor, as an
        offset from ``moduledata.types`` (what the linker writes), or None."""
        return self._runtime_types.get(id(t))

    def variable(self, qualified_name: str) -> tuple[int, GoType] | None:
        """Runtime address and type of the package-level variable ``main.VInt`` (DW_OP_addr
        location; kept as linked, the bias added on the way out)."""
        if qualified_name not in self._variables:
            with self._reading(f"variable {qualified_name}"):
                self._variables[qualified_name] = self._read_variable(qualified_name)
            self.learned()
        found = self._variables[qualified_name]
        return None if found is None else (found[0] + self._bias, found[1])

    def _read_variable(self, qualified_name: str) -> tuple[int, GoType] | None:
        die = next((die for die in map(self._die, self._index.named(qualified_name, _VARIABLE))
                    if _name(die) == qualified_name and "DW_AT_location" in die.attributes), None)
        if die is None:
            return None
        loc = _attr(die, "DW_AT_location")
        if not isinstance(loc, list) or len(loc) != 9 or loc[0] != 0x03:  # DW_OP_addr <8 bytes>
            return None
        return int.from_bytes(bytes(loc[1:]), "little"), self._type_of(_attr(die, "DW_AT_type"))

    def type_named(self, type_name: str) -> GoType | None:
        """The GoType Go names ``type_name`` (``main.Point``, ``[]int``, ``map[string]int``), or None."""
        if type_name not in self._named_types:
            with self._reading(f"type {type_name}"):
                die = self._named_die(type_name, None)
                self._named_types[type_name] = None if die is None else self._type_of(die)
            self.learned()
        return self._named_types[type_name]

    def _typedef(self, die: DIE, name: str, kind: Kind | None) -> GoType:
        """Typedefs name a type (``main.Point``) or stand for a map/chan/interface header.

        The linker writes maps and chans as typedefs of a pointer to their runtime header
        (``*hchan<int>``) and interfaces as typedefs of ``runtime.eface``/``runtime.iface``;
        DW_AT_go_kind on the typedef says which Go type it really is.
        """
        if kind in (Kind.MAP, Kind.CHAN):
            t = self._cache(die, GoType(name, kind, _PTR_SIZE, _PTR_SIZE))
            key = _attr(die, DW_AT_go_key)
            _complete(t, key=self._type_of(key) if key is not None else None,
                      elem=self._type_of(_attr(die, DW_AT_go_elem)))
            return t
        if kind == Kind.INTERFACE:
            return self._cache(die, self._interface(die, name))
        target = self._type_of(_attr(die, "DW_AT_type"))
        if target.name == name and (kind is None or kind == target.kind):
            return self._cache(die, target)
        # A renamed type whose DWARF is a typedef (rare: Go emits most named types directly).
        return self._cache(die, dataclasses.replace(target, name=name, kind=kind or target.kind))

    def _interface(self, die: DIE, name: str) -> GoType:
        """An interface: two words, named as in runtime.eface (``_type``, ``data``) or
        runtime.iface (``tab``, ``data``), which tells empty from non-empty interfaces.

        The words are typed as opaque pointers: converting ``*runtime.itab`` would pull in
        the whole runtime type-descriptor graph.
        """
        header = self._die(_attr(die, "DW_AT_type"))
        while header.tag == "DW_TAG_typedef":
            header = self._die(_attr(header, "DW_AT_type"))
        fields = tuple(
            Field(_name(m), GoType(self._member_type_name(m), Kind.UNSAFE_POINTER, _PTR_SIZE, _PTR_SIZE),
                  _attr(m, "DW_AT_data_member_location", 0))
            for m in header.iter_children() if m.tag == "DW_TAG_member"
        )
        return GoType(name, Kind.INTERFACE, _attr(header, "DW_AT_byte_size", 2 * _PTR_SIZE), _PTR_SIZE,
                      fields=fields)

    def _member_type_name(self, member: DIE) -> str:
        return _name(self._die(_attr(member, "DW_AT_type")))

    def _struct(self, die: DIE, name: str, kind: Kind) -> GoType:
        """Structs, and the string/slice headers the linker also writes as structs."""
        t = self._cache(die, GoType(name, kind, _attr(die, "DW_AT_byte_size", 0)))
        fields = tuple(
            Field(_name(m), self._type_of(_attr(m, "DW_AT_type")), _attr(m, "DW_AT_data_member_location", 0),
                  bool(_attr(m, DW_AT_go_embedded_field, False)))
            for m in die.iter_children() if m.tag == "DW_TAG_member"
        )
        elem = None
        if kind == Kind.SLICE:
            elem_offset = _attr(die, DW_AT_go_elem)
            elem = self._type_of(elem_offset) if elem_offset is not None else fields[0].type.elem
        align = max((f.type.align for f in fields), default=1) or 1
        _complete(t, fields=fields, elem=elem, align=align)
        return t

    # --- types by name (runtime structs) ---

    @cached_property
    def _debug_info(self) -> bytes:
        section = self.info.debug_info_sec
        assert section is not None  # Dwarf is only made for binaries with .debug_info
        # A BytesIO of the decompressed section (pyelftools' or dwarfsections' lazy one).
        stream: Any = section.stream
        return bytes(stream.getvalue())

    @cached_property
    def _type_unit(self) -> CompileUnit | None:
        """The unit the linker put every type DIE in (it begins with ``<unspecified>``)."""
        pos = self._debug_info.find(_UNSPECIFIED)
        unit = None if pos < 0 else self._index.unit_at(pos)
        return None if unit is None else self._unit(unit.offset)

    def struct_die(self, type_name: str) -> DIE | None:
        """The ``DW_TAG_structure_type`` DIE named ``type_name`` (``runtime.g``), or None."""
        return self._named_die(type_name, "DW_TAG_structure_type")

    def _named_die(self, type_name: str, tag: str | None) -> DIE | None:
        """The type DIE with tag ``tag`` (any type tag when None) named ``type_name``, or None.

        Instead of walking the type unit (60,000 DIEs, ~1 s in ``cmd/go``) this searches its
        bytes for the NUL-terminated name: Go writes ``DW_AT_name`` as the first attribute,
        inline (DW_FORM_string), right after a one-byte abbreviation code. A hit counts only
        if that code is a structure-type abbreviation, and the parsed DIE must carry the name.
        Structure abbreviation codes are not characters that occur in Go type names, so a
        longer name ending in ``type_name`` cannot be mistaken for it.
        """
        unit = self._type_unit
        if unit is None:
            return None
        data, needle = self._debug_info, type_name.encode() + b"\0"
        abbrevs = unit.get_abbrev_table()
        start, end = unit.cu_offset, unit.cu_offset + unit.size
        pos = data.find(needle, start + 1, end)
        while pos > 0:
            code = data[pos - 1]
            if code == 0x20 and data[pos - 2] in b")n-":
                code = 0  # " main.T" ending "func() main.T" or "chan main.T": part of a longer name
            try:
                decl = abbrevs.get_abbrev(code) if code < 0x80 else None
            except KeyError:
                decl = None
            if decl is not None and (decl["tag"] == tag or (tag is None and decl["tag"] in _TYPE_TAGS)):
                spec = decl["attr_spec"][0]
                if (spec.name, spec.form) == ("DW_AT_name", "DW_FORM_string"):
                    die = unit.get_DIE_from_refaddr(pos - 1)
                    # Any type: not one of the DIEs named like locals ("a", "x", "k"...) that are
                    # no Go type, and some of which point at no type at all: the linker's own
                    # (DW_AT_go_kind 0) and generic functions' type parameters (a dictionary index).
                    if _name(die) == type_name and (tag is not None or (
                            _attr(die, DW_AT_go_kind) != 0 and _attr(die, DW_AT_go_dict_index) is None)):
                        return die
            pos = data.find(needle, pos + 1, end)
        return None

    def struct_type(self, type_name: str) -> GoType | None:
        """The GoType of the struct named ``type_name``, or None."""
        die = self.struct_die(type_name)
        return None if die is None else self._type_of(die)

    def struct_layout(self, type_name: str) -> StructLayout:
        """Offsets of the fields of struct ``type_name`` (``runtime.g``, ``runtime.m``…).

        Fields of nested (not pointed-to) structs appear as dotted paths too, as in
        ``g.sched.sp`` → ``"sched.sp"``. Reads only the DIEs of those structs. Raises
        :class:`SymbolNotFound` if DWARF has no struct of that name.
        """
        die = self.struct_die(type_name)
        if die is None:
            raise SymbolNotFound(f"DWARF has no struct type {type_name!r}",
                                 hint="struct names are package-qualified, as in runtime.g")
        layout = StructLayout(type_name, _attr(die, "DW_AT_byte_size", 0))
        self._add_members(layout, die, "", 0)
        return layout

    def _add_members(self, layout: StructLayout, die: DIE, prefix: str, base: int) -> None:
        for member in die.iter_children():
            if member.tag != "DW_TAG_member":
                continue
            name = prefix + _name(member)
            offset = base + _attr(member, "DW_AT_data_member_location", 0)
            layout.setdefault(name, offset)
            target = self._die(_attr(member, "DW_AT_type"))
            while target.tag == "DW_TAG_typedef" and _attr(target, DW_AT_go_kind) is None:
                target = self._die(_attr(target, "DW_AT_type"))
            if target.tag == "DW_TAG_structure_type" and _attr(target, DW_AT_go_kind) in (None, 0, Kind.STRUCT):
                self._add_members(layout, target, name + ".", offset)
