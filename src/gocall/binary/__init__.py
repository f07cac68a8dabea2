"""The binary layer: what a Go executable says about itself, read from the file alone.

``GoBinary`` opens the ELF file; from it come the build info (Go version), the runtime's
function table (``pclntab``: names, entries, pc-value tables such as PCDATA_UnsafePoint)
and a lazy DWARF index (function signatures, types, runtime struct layouts).
"""

from gocall.binary.buildinfo import BuildInfo, Module
from gocall.binary.dwarf import Dwarf, StructLayout
from gocall.binary.elffile import GoBinary
from gocall.binary.gotypes import Field, GoType, Kind, Param, Signature
from gocall.binary.pclntab import (
    PCDATA_InlTreeIndex,
    PCDATA_StackMapIndex,
    PCDATA_UnsafePoint,
    Func,
    FuncFlag_ASM,
    FuncFlag_SPWRITE,
    FuncFlag_TOPFRAME,
    Pclntab,
    UnsafePointSafe,
    pcvalue,
)

__all__ = [
    "BuildInfo",
    "Dwarf",
    "Field",
    "Func",
    "FuncFlag_ASM",
    "FuncFlag_SPWRITE",
    "FuncFlag_TOPFRAME",
    "GoBinary",
    "GoType",
    "Kind",
    "Module",
    "PCDATA_InlTreeIndex",
    "PCDATA_StackMapIndex",
    "PCDATA_UnsafePoint",
    "Param",
    "Pclntab",
    "Signature",
    "StructLayout",
    "UnsafePointSafe",
    "pcvalue",
]
