"""Memory in the target for values an expression builds: strings, ``&T{...}``,
slice backing arrays, boxed interface values.

Every object is allocated by the target's own allocator, with its real size
and type, by an injected ``runtime.mallocgc(size, typ, needzero)`` (typ nil
for pointer-free bytes), so the GC knows its size and where its pointers are
(Delve allocates ``&T{}`` with size 1; research/delve-call-anchor.md). Never
is a debugger-side address passed into the target.

The string literals of one call's arguments (``f("a", "b")``) are allocated together: the
first one needed is allocated with the others that follow it, in one ``mallocgc`` of their
bytes end to end (:meth:`TargetHeap.expect`): ``f("a", "b")`` is two injected calls, not three.
The block is one object to keep alive (below): each string points into it, and an interior
pointer keeps a whole Go object alive as a pointer to its start does. Its first literal is the
first of the call's arguments to need memory, so that call's arguments point at its start and
it is handed over to that call like a single string (no pin unless another call runs first).

String bytes the executable's ``.rodata`` already holds (a literal the program uses too,
or any run of bytes there) are not allocated at all: the string points into ``.rodata``, as a
compiled Go string literal does. What keeps them alive and unchanged is the executable's
read-only mapping, there for the process's whole life and never written; the GC ignores
pointers outside its heap. (``main.Greet("world")``: one injected call instead of two.)

Keeping objects alive until the expression is done:

* Go >= 1.23: the runtime exports ``debugPinnerV1`` for exactly this. An
  object is pinned (a self-pinned ``runtime.Pinner`` obtained on first need,
  then ``Pin`` with the receiver in RAX, the ``any`` argument's type word in RBX
  and data word in RCX; one ``Unpin`` at the end releases all) only when
  another call runs before its use: an object that goes straight into the
  arguments of the expression's next function call (``f("lit")``, ``g(&T{})``)
  in the same debugCallV2 run (call/protocol.py, chaining) needs no pin. Until
  that callee starts, the run's goroutine sits in a ptrace stop as _Grunning, so
  no GC cycle can finish (it must scan that stack, and stop the world); then the
  callee's arguments reference it, as in any Go call. That saves the
  debugPinnerV1, Pin and Unpin calls of the common case. Across two runs (a
  frame too large to chain, or a thread held without chaining) the window
  between them is runtime code, so the object is pinned as before.
* Go < 1.23 has no such hook, and nothing else can hold a reference for a
  debugger. gocall relies on the held thread instead: between injected calls
  its goroutine never runs, and an object allocated during a GC cycle is
  allocated black (survives it). An object can still be lost if a whole new
  cycle starts *and* finishes during a later injected call of the same
  expression before the object is used (e.g. a callee that runs
  ``runtime.GC()`` twice); such expressions are rare, and the risk is the
  runtime's, documented here rather than hidden.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import CallError, SymbolNotFound

log = logging.getLogger("gocall.call")

# Calls one runtime function: (name, arguments as words or memory images) -> its first result word.
RuntimeCall = Callable[[str, tuple[int | bytes, ...]], int]


class AllocationFailed(CallError):
    """The target's allocator did not return memory (it panicked, or the call was refused)."""


@dataclass(frozen=True)
class PinSupport:
    """What pinning needs from the binary (None when it has no runtime.debugPinnerV1)."""

    pointer_rtype: int  # a pointer-kind *_type (unsafe.Pointer's) for Pin's ``any`` argument


class ReadOnlyData:
    """The executable's ``.rodata`` where the process maps it: bytes that never change and
    live as long as the process (see the module docstring)."""

    _MAX_REMEMBERED = 1024

    def __init__(self, data: bytes, address: int) -> None:
        self._data = data
        self._address = address
        self._found: dict[bytes, int | None] = {}

    def find(self, data: bytes) -> int | None:
        """The address of a copy of ``data`` in ``.rodata``, or None."""
        if data in self._found:
            return self._found[data]
        if len(self._found) >= self._MAX_REMEMBERED:
            self._found.clear()
        at = self._data.find(data)
        addr = self._found[data] = None if at < 0 else self._address + at
        return addr


class TargetHeap:
    """Objects one expression allocates in the target, pinned until :meth:`release`.
    ``static``: where the executable's read-only data holds given bytes (strings need no
    allocation then), or None."""

    def __init__(self, call: RuntimeCall, write: Callable[[int, bytes], None], pin: PinSupport | None,
                 static: Callable[[bytes], int | None] | None = None) -> None:  # fmt: skip
        self._call = call
        self._write = write
        self._pin = pin
        self._static = static
        self._pinner = 0
        self._pending: list[int] = []  # to keep alive, not pinned yet (see before_call)
        self._expected: list[bytes] = []  # string literals of the call being built (expect)
        self._block: dict[bytes, int] = {}  # their addresses, once allocated together
        self.objects: list[int] = []  # every address allocated, in order
        self.pinned = 0

    def alloc(self, size: int, rtype: int, data: bytes = b"") -> int:
        """A new object of ``size`` bytes and runtime type ``rtype`` (0: no pointers),
        zeroed, then ``data`` written at its start. Size 0 gives runtime.zerobase."""
        addr = self._call("runtime.mallocgc", (size, rtype, 1))
        if addr == 0:
            raise AllocationFailed(f"runtime.mallocgc({size}) returned nil in the target")
        self.objects.append(addr)
        if data:
            self._write(addr, data)
        if size:
            self.keep(addr)
        return addr

    def string(self, data: bytes) -> bytes:
        """The image of a Go string with these bytes: in the executable's read-only data when
        they are there already, else allocated in the target."""
        if not data:
            return struct.pack("<QQ", 0, 0)
        addr = self._static(data) if self._static is not None else None
        if addr is None:
            addr = self._block.get(data) or self._allocate_expected(data)
        if addr is None:
            addr = self.alloc(len(data), 0, data)
        return struct.pack("<QQ", addr, len(data))

    def expect(self, literals: list[bytes]) -> None:
        """The string literals a call's arguments are about to need (``[]``: the arguments are
        built). The first of them asked for is allocated together with the others still
        expected; those ``.rodata`` holds need no memory."""
        self._block = {}
        wanted = [d for d in literals if d and (self._static is None or self._static(d) is None)]
        self._expected = list(dict.fromkeys(wanted)) if len(wanted) > 1 else []  # a literal twice: one copy

    def _allocate_expected(self, data: bytes) -> int | None:
        """One object for ``data`` and every literal still expected, bytes end to end; None if
        ``data`` is not expected."""
        if data not in self._expected:
            return None
        literals, self._expected = self._expected, []
        blob = b"".join(literals)
        at = self.alloc(len(blob), 0, blob)
        for d in literals:
            self._block[d] = at
            at += len(d)
        return self._block[data]

    def keep(self, addr: int) -> None:
        """Keep the object at ``addr`` alive and in place until :meth:`release` (Go >= 1.23):
        pinned before the next call unless that call consumes it (:meth:`before_call`)."""
        if self._pin is not None and addr != 0:
            self._pending.append(addr)

    def before_call(self, consumed: Callable[[], set[int]] | None) -> None:
        """Called before every injected call: objects still to keep are pinned now, except those
        whose address is in ``consumed()`` (the pointer words of a function call's arguments:
        the expression hands them over; None for runtime helpers, which consume nothing)."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        passed = consumed() if consumed is not None else set()
        for addr in pending:
            if addr not in passed:
                self._pin_now(addr)

    def _pin_now(self, addr: int) -> None:
        assert self._pin is not None
        if self._pinner == 0:
            self._pinner = self._call("runtime.debugPinnerV1", ())
            if self._pinner == 0:
                raise AllocationFailed("runtime.debugPinnerV1 returned nil")
        pointer = struct.pack("<QQ", self._pin.pointer_rtype, addr)  # Pin(pointer any): an unsafe.Pointer
        self._call("runtime.(*Pinner).Pin", (self._pinner, pointer))
        self.pinned += 1

    def release(self) -> None:
        """Unpin everything (the Pinner too: it was its own first pin)."""
        if self._pinner:
            pinner, self._pinner = self._pinner, 0
            self._call("runtime.(*Pinner).Unpin", (pinner,))


def pin_support(symbols: Callable[[str], object | None], pointer_rtype: int | None) -> PinSupport | None:
    """Pinning is available when the binary has runtime.debugPinnerV1 (Go >= 1.23)."""
    if symbols("runtime.debugPinnerV1") is None:
        return None
    if pointer_rtype is None:
        raise SymbolNotFound("no runtime type for unsafe.Pointer in DWARF; cannot pin objects",
                             hint="build the target with DWARF (without -ldflags=-w)")
    return PinSupport(pointer_rtype)
