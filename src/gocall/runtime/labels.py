"""A goroutine's pprof labels, read from outside: what ``g.labels`` points at.

``runtime/pprof.Do(ctx, pprof.Labels("k", "v"), f)`` stores a ``*labelMap`` in ``g.labels``
(``runtime_setProfLabel``, runtime/proflabel.go) and goroutines created meanwhile inherit the
pointer (``newproc1``). The labelMap's layout changed in Go 1.24 (runtime/pprof/label.go; the
release is tabled in :mod:`gocall.runtime.layouts`):

* Go <= 1.23: ``type labelMap map[string]string``; g.labels is the address of the map
  variable, which holds the ``*hmap``.
* Go >= 1.24: ``type labelMap struct{ LabelSet }`` with ``LabelSet{ list []label }`` and
  ``label{ key, value string }``: g.labels points at the slice header.

Both are read without DWARF (fixed layouts), so stripped binaries show labels too.
"""

from __future__ import annotations

import struct

from ..binary.gotypes import GoType, Kind
from ..errors import ProcessError, TargetExited
from ..process.memory import Memory
from .layouts import HMAP_FIELDS
from .maps import MapReader

# A label set is a handful of short strings; a corrupt pointer must not make gocall read megabytes.
MAX_LABELS = 64
MAX_TEXT = 4096

_STRING = GoType("string", Kind.STRING, 16, 8)
_MAP = GoType("map[string]string", Kind.MAP, 8, 8, elem=_STRING, key=_STRING)


class _BucketMapLayout:
    """The ``runtime.hmap`` layout MapReader asks DWARF for, from the table instead."""

    def struct_die(self, type_name: str) -> object | None:
        return self if type_name == "runtime.hmap" else None

    def struct_layout(self, type_name: str) -> dict[str, int]:
        return HMAP_FIELDS


def read_labels(mem: Memory, labels: int, as_list: bool) -> dict[str, str]:
    """The labels behind a ``g.labels`` pointer (0: none), sorted by key as the runtime keeps
    them; none when the set cannot be read (a racy read of a set being replaced)."""
    if not labels:
        return {}
    try:
        if as_list:
            ptr, n = struct.unpack("<QQ", mem.read(labels, 16))
            n = min(n, MAX_LABELS)
            pairs = list(struct.iter_unpack("<QQQQ", mem.read(ptr, 32 * n))) if ptr and n else []
            return {_text(mem, kp, kn): _text(mem, vp, vn) for kp, kn, vp, vn in pairs}
        hmap = mem.u64(labels)
        if not hmap:
            return {}
        entries, _ = MapReader(mem, _BucketMapLayout()).entries(_MAP, hmap, MAX_LABELS)
        return dict(sorted((_text(mem, *struct.unpack("<QQ", k)), _text(mem, *struct.unpack("<QQ", v)))
                           for k, v in entries))
    except TargetExited:
        raise
    except ProcessError:
        return {}


def _text(mem: Memory, ptr: int, n: int) -> str:
    return mem.read(ptr, min(n, MAX_TEXT)).decode("utf-8", "replace") if ptr and n else ""
