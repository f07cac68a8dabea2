"""Signatures of the runtime functions gocall injects itself, per Go release.

Building an expression's values calls into the runtime: ``mallocgc`` for every object
(call/alloc.py), ``debugPinnerV1`` and the Pinner's ``Pin``/``Unpin`` to keep them
(Go >= 1.23), ``getitab`` for a conversion to a non-empty interface (expr/convert.py),
the map constructor and assignment functions for map literals (runtime/maps.py). A binary
without DWARF (``-ldflags='-s -w'``) does not say what they take, and from Go 1.24 the map
functions are ``internal/runtime/maps`` functions linknamed to these names, so DWARF has no
signature under the name pclntab gives either. Hence this table: one declaration per
function and release range, in Go syntax (``expr/signature.py``), every runtime pointer
spelt ``unsafe.Pointer`` (same size and register class). The source is the ``runtime``
package of each release (``malloc.go``, ``iface.go``, ``pinner.go``, ``map.go`` /
``map_swiss.go``); every row is checked against the DWARF of the same release by
tests/runtime/test_injected.py, and against the binary's argument frame size before any
call (expr/eval.py).

A row applies from its release on, until the next row of the same function.
"""

from __future__ import annotations

__all__ = ["SIGNATURES", "for_go"]

# name -> ((first release, declaration), ...), oldest first.
SIGNATURES: dict[str, tuple[tuple[tuple[int, int], str], ...]] = {
    "runtime.mallocgc": (
        ((1, 19), "func runtime.mallocgc(size uintptr, typ unsafe.Pointer, needzero bool) unsafe.Pointer"),
    ),
    # runtime/pinner.go, exported to debuggers from Go 1.23 (debugPinnerV1 in debugcall.go).
    "runtime.debugPinnerV1": (((1, 23), "func runtime.debugPinnerV1() unsafe.Pointer"),),
    "runtime.(*Pinner).Pin": (((1, 23), "func runtime.(*Pinner).Pin(p unsafe.Pointer, pointer any)"),),
    "runtime.(*Pinner).Unpin": (((1, 23), "func runtime.(*Pinner).Unpin(p unsafe.Pointer)"),),
    "runtime.getitab": (
        ((1, 19), "func runtime.getitab(inter, typ unsafe.Pointer, canfail bool) unsafe.Pointer"),
    ),
    # Bucket maps (<= 1.23) and Swiss tables (>= 1.24) alike: (map type, map, key or hint).
    "runtime.makemap": (((1, 19), "func runtime.makemap(t unsafe.Pointer, hint int, m unsafe.Pointer) unsafe.Pointer"),),
    "runtime.makemap_small": (((1, 19), "func runtime.makemap_small() unsafe.Pointer"),),
    "runtime.mapassign": (((1, 19), "func runtime.mapassign(t, m, key unsafe.Pointer) unsafe.Pointer"),),
    "runtime.mapassign_fast32": (
        ((1, 19), "func runtime.mapassign_fast32(t, m unsafe.Pointer, key uint32) unsafe.Pointer"),
    ),
    "runtime.mapassign_fast64": (
        ((1, 19), "func runtime.mapassign_fast64(t, m unsafe.Pointer, key uint64) unsafe.Pointer"),
    ),
    "runtime.mapassign_fast64ptr": (
        ((1, 19), "func runtime.mapassign_fast64ptr(t, m, key unsafe.Pointer) unsafe.Pointer"),
    ),
    "runtime.mapassign_faststr": (
        ((1, 19), "func runtime.mapassign_faststr(t, m unsafe.Pointer, key string) unsafe.Pointer"),
    ),
}


def for_go(name: str, version: tuple[int, ...]) -> str | None:
    """The declaration of runtime function ``name`` in Go release ``version``; None when the
    function is not one gocall injects, or the release predates every row (then DWARF says)."""
    found = None
    for since, declaration in SIGNATURES.get(name, ()):
        if tuple(version[:2]) >= since:
            found = declaration
    return found
