"""amd64 register images as the kernel hands them to ptrace.

``user_regs_struct`` mirrors ``arch/x86/include/asm/user_64.h``. The XMM
registers are read from the FXSAVE image (``struct user_i387_struct``):
XMM0 starts at byte 160, 16 bytes each.
"""

from __future__ import annotations

import ctypes
import struct

_FIELDS = (
    "r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rax rcx rdx rsi rdi orig_rax "
    "rip cs eflags rsp ss fs_base gs_base ds es fs gs"
).split()


FIELD_INDEX = {name: i for i, name in enumerate(_FIELDS)}  # position in :meth:`user_regs_struct.values`
_ALL = struct.Struct(f"<{len(_FIELDS)}Q")


class user_regs_struct(ctypes.Structure):
    _fields_ = [(name, ctypes.c_ulonglong) for name in _FIELDS]

    def copy(self) -> user_regs_struct:
        return user_regs_struct.from_buffer_copy(self)

    def values(self) -> tuple[int, ...]:
        """Every register in one go, in field order (one unpack instead of one getattr each)."""
        return _ALL.unpack(bytes(self))

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in _FIELDS}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, user_regs_struct) and bytes(self) == bytes(other)

    def __repr__(self) -> str:
        return "user_regs_struct(" + ", ".join(f"{n}={getattr(self, n):#x}" for n in _FIELDS) + ")"


# ABIInternal integer argument/result registers, in order (cmd/compile/abi-internal.md, amd64).
INT_ARG_REGS = ("rax", "rbx", "rcx", "rdi", "rsi", "r8", "r9", "r10", "r11")
# Float argument/result registers are X0..X14; X15 must be zero at calls.
FLOAT_ARG_REGS = 15
XMM_OFFSET = 160  # offsetof(struct user_i387_struct, xmm_space)


def xmm_get(fxsave: bytes | bytearray, i: int) -> bytes:
    off = XMM_OFFSET + 16 * i
    return bytes(fxsave[off : off + 16])


def xmm_set(fxsave: bytearray, i: int, value: bytes) -> None:
    off = XMM_OFFSET + 16 * i
    fxsave[off : off + 16] = value.ljust(16, b"\0")


def xmm_u64(fxsave: bytes | bytearray, i: int) -> int:
    return int(struct.unpack_from("<Q", fxsave, XMM_OFFSET + 16 * i)[0])
