"""Does a word point into the Go heap? The runtime's ``spanOfHeap``, read from outside.

Mirrors ``runtime/mheap.go`` (``spanOf``, ``spanOfHeap``, ``arenaIndex``) with the
linux/amd64 constants of ``runtime/malloc.go`` (unchanged 1.19-1.27):
``mheap_.arenas[0][arenaIndex(p)]`` is the ``heapArena`` holding ``p`` (arenaL1Bits is 0),
``heapArena.spans[(p/pageSize) % pagesPerArena]`` its ``mspan``, and the word counts as a
heap pointer when that span is in use (``mSpanInUse``) and ``startAddr <= p < limit`` —
the test the GC's conservative scanner applies to every word of an injected frame.
Reading is racy (the program runs); a torn read shows up as "not a heap pointer".
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ProcessError
from ..process.memory import Memory
from .layouts import Layout

__all__ = ["Heap", "HeapObject"]

ARENA_BASE_OFFSET = 0xFFFF800000000000  # arenaBaseOffset on amd64
HEAP_ARENA_BYTES = 64 << 20  # 1 << logHeapArenaBytes (26 on 64-bit Linux)
ARENA_L2_ENTRIES = 1 << 22  # 1 << arenaL2Bits: heapAddrBits (48) - logHeapArenaBytes
PAGE_SIZE = 8192  # _PageSize
PAGES_PER_ARENA = HEAP_ARENA_BYTES // PAGE_SIZE
MSPAN_IN_USE = 1  # mSpanInUse (mSpanDead 0, mSpanManual 2: stacks)
_MASK64 = (1 << 64) - 1


@dataclass(frozen=True)
class HeapObject:
    """The heap object a pointer points into: its span's object base and size."""

    base: int  # start of the object (span start + k * elemsize)
    size: int  # the span's element size
    span: int  # address of the runtime.mspan


class Heap:
    """The heap of one process: ``mheap_`` at ``mheap_addr`` (the ``runtime.mheap_`` symbol)."""

    def __init__(self, mem: Memory, layout: Layout, mheap_addr: int) -> None:
        self.mem = mem
        self.layout = layout
        self.mheap_addr = mheap_addr
        self._l2 = 0  # mheap_.arenas[0], read once it is set (at the first allocation)
        self._spans: dict[int, tuple[int, int, int, int]] = {}  # mspan -> (state, start, limit, elemsize)

    def object_of(self, p: int) -> HeapObject | None:
        """The in-use heap object containing ``p``; None when ``p`` is not a heap pointer."""
        ri = ((p - ARENA_BASE_OFFSET) & _MASK64) // HEAP_ARENA_BYTES
        if ri >= ARENA_L2_ENTRIES:
            return None
        try:
            if not self._l2:
                self._l2 = self.mem.u64(self.mheap_addr + self.layout.mheap_arenas)
                if not self._l2:
                    return None
            arena = self.mem.u64(self._l2 + 8 * ri)
            if not arena:
                return None
            span = self.mem.u64(arena + self.layout.heaparena_spans + 8 * ((p // PAGE_SIZE) % PAGES_PER_ARENA))
            if not span:
                return None
            state, start, limit, elemsize = self._span(span)
        except ProcessError:
            return None  # an arena or span freed under us: not a pointer we can vouch for
        if state != MSPAN_IN_USE or not start <= p < limit or elemsize == 0:
            return None
        return HeapObject(start + (p - start) // elemsize * elemsize, elemsize, span)

    def _span(self, span: int) -> tuple[int, int, int, int]:
        cached = self._spans.get(span)
        if cached is None:
            lay = self.layout
            cached = (
                self.mem.read(span + lay.mspan_state, 1)[0],
                self.mem.u64(span + lay.mspan_startaddr),
                self.mem.u64(span + lay.mspan_limit),
                self.mem.u64(span + lay.mspan_elemsize),
            )
            self._spans[span] = cached
        return cached
