"""``proc.goroutines()`` / ``proc.stack()`` against the runtime's own view of the same process.

Oracles: ``runtime.Stack(buf, true)`` written by the fixture at a known moment (ids, states,
the frames it shows, creators), and a GOTRACEBACK=system SIGQUIT dump taken right after
gocall read the stacks (every frame, runtime ones included, with fp/sp/pc).
"""

from __future__ import annotations

import pytest

import gocall
from gocall.errors import SymbolNotFound
from gotraceback import GoFrame, parse

_MOVING = ("running", "runnable")  # the dumping goroutine and the spinner


def _mine(frames: list, shown_only: bool = False) -> list[tuple]:
    return [(sf.function, sf.file, sf.line, None if sf.inlined else fr.offset) for fr, sf in frames]


def _theirs(frames: list[GoFrame]) -> list[tuple]:
    return [(f.function, f.file, f.line, None if f.inlined else (f.offset or 0)) for f in frames]


def test_goroutines_match_runtime_stack(runtime_target_any) -> None:
    """Every goroutine that stays put between the two reads matches runtime.Stack's dump; on a
    loaded machine more of them are caught moving, so up to 5 snapshots are taken until 7 were
    compared (each comparison is exact)."""
    for _ in range(5):
        checked, states = _compare_with_runtime_stack(runtime_target_any)
        if checked >= 7:
            break
    assert {"chan receive", "select", "sleep", "syscall"} <= states
    assert states & {"semacquire", "sync.Mutex.Lock"}  # the mutex wait's wording changed in 1.24
    assert checked >= 7


def _compare_with_runtime_stack(runtime_target) -> tuple[int, set[str]]:  # type: ignore[no-untyped-def]
    """(goroutines compared, wait states seen) in one snapshot of each side."""
    dump = parse(runtime_target.runtime_stack())
    with gocall.attach(runtime_target.pid) as proc:
        infos = {i.goroutine.goid: i for i in proc.goroutines()}
        from gocall.runtime.unwind import shown_frames

        shown = {goid: shown_frames(proc.runtime.frames(i.goroutine), proc.runtime.unwinder.ids)
                 for goid, i in infos.items()}
    # runtime.Stack hides the runtime's own goroutines; gocall flags them as system.
    assert set(dump) == {goid for goid, i in infos.items() if not i.system}
    checked = 0
    for goid, theirs in dump.items():
        info = infos[goid]
        if theirs.state in _MOVING or info.goroutine.state in _MOVING:
            continue
        assert info.goroutine.header == theirs.state, goid
        assert _mine(shown[goid]) == _theirs(theirs.frames), goid
        assert info.location is not None and info.location.function == theirs.frames[0].function
        if theirs.created_by is not None:
            assert info.created_by is not None
            created = (info.created_by.function, info.created_by.file, info.created_by.line, info.created_by_offset)
            assert created == (theirs.created_by.function, theirs.created_by.file, theirs.created_by.line,
                               theirs.created_by.offset)
        checked += 1
    return checked, {i.goroutine.header for i in infos.values()}


def test_running_goroutine_has_thread_and_location(runtime_target) -> None:
    """The spinning goroutine is found with its location (and thread while running). A live
    process moves between reading allgs and stopping the thread (the goroutine may be between
    two Ms for a moment), so up to 10 snapshots are taken and one must show it all."""
    seen = []
    with gocall.attach(runtime_target.pid) as proc:
        for _ in range(10):
            spinners = [i for i in proc.goroutines() if i.goroutine.startpc
                        and proc.binary.pclntab.func_for_pc(i.goroutine.startpc).name == "main.spin"]
            assert len(spinners) == 1
            spin = spinners[0]
            assert spin.goroutine.state in ("running", "runnable")
            seen.append((spin.goroutine.state, spin.location, spin.goroutine.tid))
            if spin.location is not None and (spin.goroutine.state != "running" or spin.goroutine.tid):
                break
    state, location, tid = seen[-1]
    assert location is not None and location.function in ("main.spin", "main.work"), seen
    if state == "running":
        assert tid is not None and tid > 0, seen


def test_stacks_match_sigquit_traceback_frame_for_frame(runtime_target_any) -> None:
    runtime_target = runtime_target_any
    with gocall.attach(runtime_target.pid) as proc:
        mine = {g.goid: (g, proc.runtime.frames(g, stop_running=False)) for g in proc.runtime.goroutines()}
    theirs = parse(runtime_target.sigquit_traceback())
    compared = 0
    for goid, (g, frames) in mine.items():
        other = theirs.get(goid)
        if other is None or g.state in _MOVING or other.state != g.header:
            continue
        ours = [(sf.function, sf.file, sf.line) + (() if sf.inlined else (fr.fp, fr.sp, fr.pc))
                for fr in frames for sf in fr.calls]
        go = [(f.function, f.file, f.line) + (() if f.inlined else (f.fp, f.sp, f.pc)) for f in other.frames]
        assert ours == go, f"goroutine {goid}"
        compared += 1
    assert compared >= 10  # the fixture's six parked goroutines, main, and the runtime's own


@pytest.mark.parametrize("runtime_target_any", [("-ldflags=-s -w",)], indirect=True, ids=["stripped"])
def test_stripped_binary_refuses_roots_saying_what_works(runtime_target_any) -> None:
    """Without symbols, allgs, firstmoduledata and waitReasonStrings are found in the binary's
    code and data, runtime.mheap_ is not: roots is refused, naming what does work."""
    with gocall.attach(runtime_target_any.pid) as proc:
        assert proc.binary.symbols == {}
        rooted = next(i.goroutine for i in proc.goroutines() if i.location and i.location.function == "main.rooted")
        assert rooted.header == "chan receive"
        with pytest.raises(SymbolNotFound, match="runtime.mheap_") as refused:
            proc.roots(rooted.goid)
    assert "goroutines and stack work on stripped ones" in str(refused.value)
