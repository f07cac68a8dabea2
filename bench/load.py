#!/usr/bin/env python3
"""Benchmark: loading a big Go binary, cold — gocall vs ``go tool nm`` vs Delve.

Usage: python bench/load.py [RUNS]    (default 3)

Target: ``cmd/go`` built from Go 1.19's own source (optimized, as shipped; ~15 MB,
10,800 functions), so that Delve 1.20 (Debian's ``delve``) can load it too; and
``cmd/go`` of the newest toolchain for gocall and ``go tool nm`` only. Each run is a
fresh process (nothing warm but the OS page cache):

- ``gocall info BINARY``: the whole command (interpreter, imports, every ``_func`` read
  for the size breakdown), and ``call-load``: what ``gocall call`` reads before it can
  inject — ELF, build info, pclntab, one function's entry and DWARF signature, the
  runtime layout, the support check, ``runtime.allgs`` — timed inside the process,
  twice: with an empty index cache (a first-ever start: DWARF parsed) and with the
  cache that start left (binary/cache.py: DWARF not read);
- ``go tool nm BINARY``: the toolchain reading every symbol;
- Delve: ``dlv exec BINARY --headless`` until its first JSON-RPC reply, i.e. until it has
  loaded the binary's DWARF and pclntab (killed right after).

Prints a table and one JSON line with the ratios (Delve / gocall call-load, nm / gocall
info) and peak RSS against the binary's size. No timing is asserted anywhere.
"""

from __future__ import annotations

import compileall
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from targets import Stats, go119, load, run_measured  # noqa: E402

import gocall  # noqa: E402
from gocall.toolchain import GoToolchain, find_go  # noqa: E402

# What `gocall call` reads before injecting, in a fresh interpreter; prints seconds and VmHWM.
_CALL_LOAD = """
import sys, time
t0 = time.perf_counter()
from gocall.binary import GoBinary
from gocall.binary.support import check_callable
from gocall.runtime import layouts
t1 = time.perf_counter()
base = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0].split()[1]
b = GoBinary.open(sys.argv[1])
check_callable(b)
layout = layouts.for_go(b.go_version_tuple, b.dwarf)
f = b.pclntab.func_by_name(sys.argv[2])
sig = b.function_signature(sys.argv[2])
assert f is not None and sig is not None, sys.argv[2]
assert b.symbol("runtime.allgs") is not None
t2 = time.perf_counter()
b.close()  # writes the index cache when it was empty (not timed: a call's exit does it)
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0].split()[1]
print(t1 - t0, t2 - t1, int(hwm) / 1024, int(base) / 1024)
"""
FUNCTION = "cmd/go/internal/work.(*Builder).Do"  # a method deep in cmd/go's biggest package


def cmd_go(go: GoToolchain) -> Path:
    return go.build_cached(go.goroot / "src" / "cmd" / "go")


def gocall_info(binary: Path, runs: int) -> tuple[Stats, Stats]:
    walls, cpus = [], []
    for _ in range(runs):
        r = run_measured([sys.executable, "-m", "gocall.cli.main", "info", "--json", str(binary)])
        assert r.returncode == 0, r.stdout
        walls.append(r.seconds)
        cpus.append(r.cpu_seconds)
    return Stats.of(walls), Stats.of(cpus)


def call_load(binary: Path, runs: int, warm: bool) -> tuple[Stats, Stats, float, float]:
    """(import seconds, load seconds, peak RSS MB, RSS MB after the imports) of the call
    path's binary loading, with a warm index cache or a new empty one each run."""
    imports, loads, rss, base = [], [], 0.0, 0.0
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-c", _CALL_LOAD, str(binary), FUNCTION]
        if warm:
            run_measured(["env", f"XDG_CACHE_HOME={tmp}/warm", *cmd])
        for i in range(runs):
            r = run_measured(["env", f"XDG_CACHE_HOME={tmp}/{'warm' if warm else f'empty{i}'}", *cmd])
            assert r.returncode == 0, r.stdout
            t_import, t_load, mb, after_imports = (float(x) for x in r.stdout.split()[-4:])
            imports.append(t_import)
            loads.append(t_load)
            rss, base = max(rss, mb), max(base, after_imports)
    return Stats.of(imports), Stats.of(loads), rss, base


def go_nm(go: GoToolchain, binary: Path, runs: int) -> Stats:
    walls = []
    for _ in range(runs):
        r = run_measured([str(go.go), "tool", "nm", str(binary)])
        assert r.returncode == 0
        walls.append(r.seconds)
    return Stats.of(walls)


def delve_load(binary: Path, runs: int) -> Stats | None:
    """Seconds from ``dlv exec --headless`` to its first JSON-RPC reply.

    Delve prints 'API server listening' before it loads anything; its server then
    creates the debugger (launching the target and loading DWARF, pclntab and symbols)
    before it accepts a connection, so the first reply marks the binary as loaded.
    """
    if shutil.which("dlv") is None:
        return None
    walls = []
    for _ in range(runs):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        t0 = time.perf_counter()
        proc = subprocess.Popen(["dlv", "exec", str(binary), "--headless", "--api-version=2",
                                 f"--listen=127.0.0.1:{port}"], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            assert proc.stdout is not None
            if "listening" not in proc.stdout.readline():
                return None
            with socket.create_connection(("127.0.0.1", port), timeout=120) as conn:
                conn.sendall(json.dumps({"method": "RPCServer.GetVersion", "params": [{}], "id": 1}).encode())
                reply = conn.makefile("rb").readline()
            walls.append(time.perf_counter() - t0)
            assert b'"result"' in reply, reply
        finally:
            os.killpg(proc.pid, signal.SIGKILL)  # dlv and the traced cmd/go it started
            proc.wait()
    return Stats.of(walls)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    compileall.compile_dir(os.path.dirname(gocall.__file__), quiet=1)  # as pip install leaves it
    results: dict[str, object] = {"load_avg": load()}
    for label, go in (("go1.19", go119()), ("newest", find_go())):
        binary = cmd_go(go)
        size_mb = binary.stat().st_size / 2**20
        info_wall, info_cpu = gocall_info(binary, runs)
        imports, loaded, rss, base = call_load(binary, runs, warm=False)
        _, warm, warm_rss, warm_base = call_load(binary, runs, warm=True)
        nm = go_nm(go, binary, runs)
        dlv = delve_load(binary, runs) if label == "go1.19" else None
        row = {
            "binary": f"cmd/go {go.version}", "size_mb": round(size_mb, 1),
            "gocall_info": info_wall.to_json(), "gocall_info_cpu": info_cpu.to_json(),
            "call_load": loaded.to_json(), "call_imports": imports.to_json(), "call_load_peak_rss_mb": rss,
            "call_load_warm_cache": warm.to_json(), "call_load_warm_cache_peak_rss_mb": warm_rss,
            "go_tool_nm": nm.to_json(), "dlv_exec_first_reply": dlv.to_json() if dlv else None,
            "ratio_nm_over_gocall_info": round(nm.median / info_wall.median, 2),
            "ratio_dlv_over_call_load": round(dlv.median / loaded.median, 1) if dlv else None,
            "ratio_dlv_over_call_load_with_imports": round(dlv.median / (loaded.median + imports.median), 1)
            if dlv else None,
            "ratio_dlv_over_call_load_warm_cache": round(dlv.median / warm.median, 1) if dlv else None,
            "ratio_dlv_over_call_load_warm_cache_with_imports": round(dlv.median / (warm.median + imports.median), 1)
            if dlv else None,
            "peak_rss_over_binary_size": round(rss / size_mb, 2),
            "loading_rss_over_binary_size": round((rss - base) / size_mb, 2),  # minus the interpreter + imports
            "warm_peak_rss_over_binary_size": round(warm_rss / size_mb, 2),
            "warm_loading_rss_over_binary_size": round((warm_rss - warm_base) / size_mb, 2),
        }
        results[label] = row
        print(f"{row['binary']} ({size_mb:.1f} MB):")
        print(f"  gocall info (whole CLI run)     median {info_wall.median:.0f} ms (cpu {info_cpu.median:.0f} ms)")
        print(f"  call-load, empty cache          median {loaded.median:.0f} ms (+ imports {imports.median:.0f} ms),"
              f" peak RSS {rss:.0f} MB = {rss / size_mb:.2f}x the binary, {(rss - base) / size_mb:.2f}x"
              f" without the interpreter's {base:.0f} MB")
        print(f"  call-load, warm cache           median {warm.median:.0f} ms,"
              f" peak RSS {warm_rss:.0f} MB = {warm_rss / size_mb:.2f}x the binary, {(warm_rss - warm_base) / size_mb:.2f}x"
              f" without the interpreter's {warm_base:.0f} MB")
        print(f"  go tool nm                      median {nm.median:.0f} ms")
        if dlv:
            print(f"  dlv exec to first RPC reply     median {dlv.median:.0f} ms")
            print(f"  ratio Delve / gocall call-load: empty cache {row['ratio_dlv_over_call_load']}x "
                  f"({row['ratio_dlv_over_call_load_with_imports']}x counting Python imports), warm cache "
                  f"{row['ratio_dlv_over_call_load_warm_cache']}x "
                  f"({row['ratio_dlv_over_call_load_warm_cache_with_imports']}x)")
        print(f"  ratio go tool nm / gocall info: {row['ratio_nm_over_gocall_info']}x")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
