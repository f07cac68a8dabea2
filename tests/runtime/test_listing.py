"""``gocall goroutines``: user locations, go statements, pprof labels, filters and grouping
(issue 13.3), cgo goroutines with real locations (issue 16.5).

Fixtures: tests/fixtures/goroutines (a worker asleep in time.Sleep, five goroutines labelled
with runtime/pprof.Do: three k=v and two k=w, each role=db; optionally N goroutines parked in
main.parked and a spinner) and tests/fixtures/cgocalls (a goroutine blocked in C, one blocked in
Go inside a callback from C, a C thread that called Go once). Each runs on every release of the
matrix, except the 10,000-goroutine listing: oldest and newest release only.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

import gocall
from gocall.binary import GoBinary
from gocall.runtime import layouts
from gocall.runtime.gselect import FilterError, parse_filter, parse_group, parse_words
from gocall.runtime.listing import is_user_function, package_of
from gocall.toolchain import known_toolchains


def _gocall(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "gocall.cli.main", *args], capture_output=True, text=True,
                          timeout=120, check=False)
    if ok:
        assert done.returncode == 0, done.stderr
    return done


def _json(*args: str) -> list:  # type: ignore[type-arg]
    return json.loads(_gocall("goroutines", "--json", *args).stdout)  # type: ignore[no-any-return]


def _fn(where: dict | None) -> str | None:  # type: ignore[type-arg]
    return None if where is None else where["function"]


@pytest.fixture(params=[(), ("-ldflags=-s -w",)], ids=["symbols", "stripped"])
def goroutines_target(request: pytest.FixtureRequest, build_fixture, start_target):  # type: ignore[no-untyped-def]
    """The goroutines fixture, as built normally and stripped (labels and locations need neither
    symbols nor DWARF)."""
    return start_target(build_fixture("goroutines", request.param))


def test_sleeping_worker_is_listed_at_main_worker(goroutines_target) -> None:
    """Issue 13.3: the worker asleep in time.Sleep shows main.worker as its location, with its
    go statement in main.main and main.worker as start function; the runtime frame it is
    parked in is its current location."""
    pid = str(goroutines_target.pid)
    listing = _json(pid)
    (worker,) = [g for g in listing if _fn(g["start"]) == "main.worker"]
    assert _fn(worker["user"]) == "main.worker" and worker["user"]["file"].endswith("goroutines/main.go")
    assert worker["state"] == "sleep" and _fn(worker["current"]).startswith("runtime.")  # type: ignore[union-attr]
    assert _fn(worker["go"]) == "main.main" and worker["go"]["line"] > 0
    assert worker["labels"] == {}
    # The table shows the user location by default.
    row = next(line for line in _gocall("goroutines", pid).stdout.splitlines() if line.split()[0] == str(worker["goid"]))
    assert "main.worker main.go:" in row and "time.Sleep" not in row
    # Delve's -t: each goroutine's stack under its row (runtime frames included), and in --json.
    (traced,) = _json(pid, "--with", "startloc", "main.worker", "-t", "3")
    assert [f["function"] for f in traced["stack"]][-1] in ("time.Sleep", "main.worker")
    assert len(traced["stack"]) == 3 and traced["stack"][0]["function"].startswith("runtime.")
    lines = _gocall("goroutines", pid, "--with", "startloc", "main.worker", "--stack").stdout.splitlines()
    assert len(lines) >= 4 and any(" main.worker " in line for line in lines[2:])
    served = [g for g in listing if _fn(g["user"]) == "main.serve"]
    assert len(served) == 5 and {g["labels"]["k"] for g in served} == {"v", "w"}
    # `go labelled(v)` starts a wrapper the compiler writes (main.main.func1, main.main.gowrap1).
    assert all(g["labels"]["role"] == "db" and _fn(g["start"]).startswith("main.main.") for g in served)  # type: ignore[union-attr]
    assert not any(g["system"] for g in listing) and all(g["user"] for g in listing)
    assert [g["goid"] for g in listing] == sorted(g["goid"] for g in listing)  # by id, as Delve lists them


def test_group_and_label_filters(goroutines_target) -> None:
    """Issue 13.3 acceptance: --group userloc counts, --with label k=v, and the same through the API."""
    pid = str(goroutines_target.pid)
    groups = {g["group"].split()[0]: g for g in _json(pid, "--group", "userloc")}
    assert groups["main.serve"]["count"] == 5 and groups["main.worker"]["count"] == 1
    assert groups["main.main"]["count"] == 1 and sum(g["count"] for g in groups.values()) == 7
    assert len(groups["main.serve"]["goids"]) == 5

    kv = _json(pid, "--with", "label", "k=v")
    assert len(kv) == 3 and all(g["labels"] == {"k": "v", "role": "db"} for g in kv)
    kw = _json(pid, "--with", "label", "k", "--without", "label", "k=v", "--with", "userloc", "main.serve")
    assert sorted(g["labels"]["k"] for g in kw) == ["w", "w"]
    text = _gocall("goroutines", pid, "--group", "label", "k").stdout.splitlines()
    assert text[0].split() == ["COUNT", "LABEL", "K", "GOROUTINES"]
    assert _gocall("goroutines", pid, "-group", "label", "k").stdout.splitlines()[0] == text[0]  # as in Delve
    counts = {line.split()[1]: int(line.split()[0]) for line in text[1:]}
    assert counts == {"k=v": 3, "k=w": 2, "no": 2}  # "no label k": main and the worker

    with gocall.attach(goroutines_target.pid) as proc:
        assert {i.goid for i in proc.goroutines(with_=["label k=v"])} == {g["goid"] for g in kv}
        by_go = {g.key.split()[0]: g.count for g in proc.goroutine_groups("goloc", with_=["label role=db"])}
        assert by_go == {"main.main": 5}
        everything = proc.goroutines()
        kinds = {g.key: g.count for g in proc.goroutine_groups("user")}
        assert kinds["user"] == 7 and kinds["runtime"] == sum(i.system for i in everything)
        assert [i.goid for i in proc.goroutines(without=["user"])] == [i.goid for i in everything if i.system]
        assert proc.goroutines(with_=["goloc main.main", "curloc runtime.", "userloc goroutines/main.go"])


def test_running_filter_finds_the_spinner(build_fixture, start_target) -> None:
    """--with running keeps the goroutine on a thread, shown where it runs (its thread's registers).
    A live goroutine may be between two threads for a moment: up to 10 listings, one must show it."""
    target = start_target(build_fixture("goroutines"), ["0", "spin"])
    seen = []
    with gocall.attach(target.pid) as proc:
        for _ in range(10):
            running = proc.goroutines(with_=["running"])
            seen.append([(i.goid, i.user) for i in running])
            spin = [i for i in running if i.user is not None and i.user.function == "main.spin"]
            if spin:
                assert spin[0].goroutine.tid and spin[0].start is not None and spin[0].start.function == "main.spin"
                break
        else:
            pytest.fail(f"main.spin never seen running: {seen}")


def test_ten_thousand_goroutines(go_toolchain, build_fixture, start_target) -> None:
    """10,000 parked goroutines are listed and grouped exactly (oldest and newest release only:
    a heavy target; the speed goal is in bench/goroutines.py, not here)."""
    releases = sorted({t.release for t in known_toolchains()})
    if go_toolchain.release not in (releases[0], releases[-1]):
        pytest.skip("heavy listing: oldest and newest release only")
    target = start_target(build_fixture("goroutines"), ["10000"], ready_timeout=60)
    groups = {g["group"].split()[0]: g["count"] for g in _json(str(target.pid), "--group", "userloc")}
    assert groups == {"main.parked": 10000, "main.serve": 5, "main.worker": 1, "main.main": 1}


@pytest.mark.skipif(shutil.which("gcc") is None, reason="cgo needs a C compiler (gcc)")
def test_cgo_goroutines_have_go_locations(build_fixture, start_target) -> None:
    """Issue 16.5: a goroutine blocked in a C call is listed at its last Go frame (the caller of
    the cgo wrapper), one blocked in Go inside a C callback at the callback, and the goroutines
    kept for C threads (_Gdeadextra, "waiting for cgo callback" from Go 1.26) are the runtime's own,
    at their one frame; nothing is listed at "?"."""
    target = start_target(build_fixture("cgocalls", env={"CGO_ENABLED": "1"}))
    listing = _json(str(target.pid), "--system")
    (in_c,) = [g for g in listing if _fn(g["start"]) == "main.inC"]
    assert in_c["state"] == "syscall" and _fn(in_c["user"]) == "main.inC"
    assert _fn(in_c["current"]) == "runtime.cgocall"
    (callback,) = [g for g in listing if _fn(g["start"]) == "main.inCallback"]
    assert _fn(callback["user"]) == "main.goBlocked" and callback["state"].startswith("chan receive")
    extra = [g for g in listing if g["state"].startswith("waiting for cgo callback")]
    assert all(g["system"] and g["user"] is not None for g in extra)
    assert all(g["user"] is not None and g["current"] is not None for g in listing)
    table = _gocall("goroutines", "--system", str(target.pid)).stdout
    assert " ? " not in table and not any(line.rstrip().endswith("?") for line in table.splitlines())
    assert not [g for g in _json(str(target.pid)) if g["state"].startswith("waiting for cgo callback")]


def test_bucket_map_layout_for_labels_matches_dwarf(go_toolchain, build_fixture) -> None:
    """Labels are read without DWARF: up to Go 1.23 through runtime.hmap's tabled offsets."""
    with GoBinary.open(build_fixture("goroutines")) as binary:
        assert binary.dwarf is not None
        if layouts.labels_are_list(binary.go_version_tuple):
            assert binary.dwarf.struct_die("runtime.hmap") is None
            pytest.skip(f"{go_toolchain.version} keeps labels in a list, not a map")
        hmap = binary.dwarf.struct_layout("runtime.hmap")
    assert {k: hmap[k] for k in layouts.HMAP_FIELDS} == layouts.HMAP_FIELDS


@pytest.mark.parametrize(("function", "user"), [
    ("main.worker", True),
    ("main.worker.func1", True),
    ("main.Map[go.shape.int]", True),
    ("github.com/x/y.(*T).Serve", True),
    ("example.com/m/internal/z.F", True),
    ("time.Sleep", False),
    ("runtime.gopark", False),
    ("net/http.(*conn).serve", False),
    ("vendor/golang.org/x/net/http2.F", False),
    ("internal/poll.runtime_pollWait", False),
    ("main._Cfunc_blockInC", False),
    ("_cgoexp_2f71af2a8971_goBlocked", False),
    ("type:.eq.main.T", False),
])
def test_user_code_is_the_program_not_std_or_cgo(function: str, user: bool) -> None:
    assert is_user_function(function) == user


def test_user_code_includes_the_build_modules() -> None:
    assert package_of("fixture/sub.F") == "fixture/sub"
    assert is_user_function("fixture/sub.F", ("fixture",)) and not is_user_function("fixture/sub.F")
    assert not is_user_function("fixtures.F", ("fixture",))


def test_filter_and_group_syntax() -> None:
    assert parse_filter("userloc main.worker") == ("userloc", "main.worker", False)
    assert parse_filter("label k=v", negate=True) == ("label", "k=v", True)
    assert parse_filter("running").kind == "running"
    assert parse_group("label tenant") == ("label", "tenant") and parse_group("running") == ("running", "")
    for bad in ("bogus x", "userloc", "running now", "label"):
        with pytest.raises(FilterError):
            parse_filter(bad)
    for bad in ("label", "userloc x", "state"):
        with pytest.raises(FilterError):
            parse_group(bad)


def test_delve_command_words() -> None:
    filters, group, rest = parse_words(["-with", "userloc", "main.worker", "--without", "label", "k=v", "-w",
                                        "running", "-wo", "user", "-group", "label", "tenant", "-l"])
    assert filters == [("userloc", "main.worker", False), ("label", "k=v", True), ("running", "", False),
                       ("user", "", True)]
    assert (group, rest) == ("label tenant", ["-l"])
    with pytest.raises(FilterError):
        parse_words(["-with", "userloc"])


def test_bad_filter_is_one_line_before_attaching() -> None:
    done = _gocall("goroutines", "1", "--with", "bogus", ok=False)
    assert done.returncode == 1 and "unknown goroutine filter 'bogus'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
