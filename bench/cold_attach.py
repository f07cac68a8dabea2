#!/usr/bin/env python3
"""Benchmark 2 (and 4 for it): cold attach -> first result -> detach, gocall vs Delve.

Usage: python bench/cold_attach.py [RUNS] [TARGETS]    (defaults 5, "small,cmdgo")

For each target (targets.py: ``small``, 1.8 MB, and ``cmdgo``, the real 16 MB
cmd/go with the call targets overlaid), on one running process:

- gocall CLI: RUNS runs of ``gocall call PID 'main.Add(1, 2)'``, spawn to exit
  (interpreter, imports, reading the binary, attach, call, detach), twice:
  ``empty`` with a new, empty index cache each run (``XDG_CACHE_HOME`` of its own:
  a first-ever start, DWARF parsed) and ``warm`` with the cache one earlier run
  filled (binary/cache.py: no DWARF read); and RUNS of the same interpreter only
  importing the CLI as the ``gocall`` command does (collector off, no teardown at exit:
  gocall/cli/__init__.py, cli/main.py) and RUNS of it doing nothing (``-c pass``), to
  split the time;
- gocall API: ``python -c 'import gocall; gocall.attach(PID).eval(EXPR)'`` (warm
  cache), the same work without the CLI;
- the CLI's two paths: the ``gocall`` command hands ``gocall call`` to its per-user server
  (cli/handoff.py, cli/server.py) once one runs: the first run (the warm-up) starts it, in a
  runtime directory of this benchmark's (``XDG_RUNTIME_DIR``), and the runs wait for it to
  listen; its CPU per command (its child's, in its log: from wait4, or a child serving its next
  command reports its own getrusage since the last command's end, cli/server.py _Worker) is added to the
  client's; ``one-shot`` is the same command with ``GOCALL_SERVER=0`` (everything in one
  process, as before the server). The server is stopped at the end;
- Delve: RUNS times ``dlv attach PID --headless``, connect, break on main.tick,
  continue, ``call main.Add(1, 2)`` (first result), then detach and reap dlv.

gocall's bytecode is compiled first (``compileall``), as ``pip install`` leaves it,
and the children run without ``PYTHONDONTWRITEBYTECODE``: recompiling ~60 modules
from source each start would add ~110 ms that no installed gocall pays.

Prints a table, then one JSON line with the ratios (Delve first result / gocall
whole run) and each tool's peak RSS. No timing is asserted anywhere.
"""

from __future__ import annotations

import compileall
import contextlib
import dataclasses
import json
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import delve  # noqa: E402
from targets import (  # noqa: E402
    Run, Stats, cli_peak_rss_mb, cmdgo_binary, load, peak_rss_mb, run_measured, running, small_binary,
)

import gocall  # noqa: E402
from gocall.cli import handoff  # noqa: E402

EXPR = "main.Add(1, 2)"
BINARIES = {"small": small_binary, "cmdgo": cmdgo_binary}


def gocall_command() -> list[str]:
    exe = shutil.which("gocall", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "gocall.cli.main"]


# What the `gocall` command loads before parsing its arguments, loaded the way it does.
_IMPORTS = "import gc, os\ngc.disable()\nimport gocall.cli.main\nos._exit(0)"
_API = "import sys, gocall\nwith gocall.attach(int(sys.argv[1])) as p: print(p.eval(sys.argv[2]))"


def run_with_cache(cmd: list[str], cache_home: str, *env: str) -> Run:
    """``cmd`` with the index cache under ``cache_home``, bytecode read from __pycache__. The
    environment is given to the process itself, not through ``env(1)``: an exec of ``env`` before
    gocall's was measured as gocall's (~1-2 ms of CPU, session 7), which Delve's side does not pay."""
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    environ.update(XDG_CACHE_HOME=cache_home, **dict(e.split("=", 1) for e in env))
    return run_measured(cmd, environ)


class Server:
    """The gocall server the CLI runs start, in a runtime directory of this benchmark's."""

    def __init__(self, runtime: str) -> None:
        os.environ["XDG_RUNTIME_DIR"] = runtime  # every gocall started from here on
        os.environ.pop("GOCALL_SERVER", None)
        self.socket = handoff.socket_path(handoff.runtime_dir())
        self.log = self.socket.removesuffix(".sock") + ".log"

    def wait_listening(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
                if s.connect_ex(self.socket) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"no gocall server on {self.socket} after {timeout} s")

    def cpu_seconds(self, client: int) -> float | None:
        """The CPU time of the child that ran ``client``'s command (None: not handed over)."""
        with open(self.log) as f:
            for line in f:
                if m := re.search(rf"PID {client}: .* CPU ([\d.]+) ms", line):
                    return float(m.group(1)) / 1e3
        return None

    def pid(self) -> int | None:
        with open(self.log) as f:
            m = re.search(r"\[(\d+)\] listening", f.read())
        return int(m.group(1)) if m else None

    def stop(self) -> None:
        if (pid := self.pid()) is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)


def with_server_cpu(server: Server, runs: list[Run]) -> list[Run]:
    """Each run's CPU time with its server child's added; runs the server did not take fail."""
    out = []
    for r in runs:
        child = server.cpu_seconds(r.pid)
        out.append(dataclasses.replace(r, cpu_seconds=r.cpu_seconds + child) if child is not None
                   else dataclasses.replace(r, returncode=-1, stdout=f"not handed to the server: {r.stdout}"))
    return out


def record(out: dict[str, object], key: str, runs: list[Run]) -> None:
    if bad := [r for r in runs if r.returncode != 0 or r.stdout.strip() != "3"]:
        out[f"{key}_note"] = f"failed: {bad[0].stdout.strip()[-300:]}"
        return
    out[key] = Stats.of([r.seconds for r in runs])
    out[f"{key}_cpu"] = Stats.of([r.cpu_seconds for r in runs])


def measure(name: str, runs: int) -> dict[str, object]:
    binary = BINARIES[name]()
    out: dict[str, object] = {"binary_mb": round(binary.stat().st_size / 2**20, 1)}
    imports = [run_measured([sys.executable, "-c", _IMPORTS]) for _ in range(runs)]
    out["gocall_imports"] = Stats.of([r.seconds for r in imports])
    out["gocall_imports_cpu"] = Stats.of([r.cpu_seconds for r in imports])
    bare = [run_measured([sys.executable, "-c", "pass"]) for _ in range(runs)]
    out["python_start"] = Stats.of([r.seconds for r in bare])
    out["python_start_cpu"] = Stats.of([r.cpu_seconds for r in bare])
    with running(binary) as target, tempfile.TemporaryDirectory() as tmp:
        call = [*gocall_command(), "call", str(target.pid), EXPR]
        warm = os.path.join(tmp, "warm")
        os.mkdir(runtime := os.path.join(tmp, "run"), 0o700)
        server = Server(runtime)
        try:
            run_with_cache(call, warm)  # fills the warm cache, starts the server
            server.wait_listening()
            empty, cli, api, one_shot = [], [], [], []
            for i in range(runs):  # interleaved, so that load changes hit every variant alike
                empty.append(run_with_cache(call, os.path.join(tmp, f"empty{i}")))
                cli.append(run_with_cache(call, warm))
                api.append(run_with_cache([sys.executable, "-c", _API, str(target.pid), EXPR], warm))
                one_shot.append(run_with_cache(call, warm, "GOCALL_SERVER=0"))
            record(out, "gocall_empty", with_server_cpu(server, empty))
            record(out, "gocall", with_server_cpu(server, cli))
            record(out, "gocall_api", api)
            record(out, "gocall_one_shot", one_shot)
            out["gocall_client_cpu"] = Stats.of([r.cpu_seconds for r in cli])
            if (pid := server.pid()) is not None:
                out["server_rss_mb"] = peak_rss_mb(pid)
        finally:
            server.stop()
        if "gocall" in out:
            out["gocall_rss_mb"] = cli_peak_rss_mb(["call", str(target.pid), EXPR])
        if (why := delve.unavailable()) is not None:
            out["delve_note"] = f"skipped: {why}"
            return out
        first, whole, rss, cpu = [], [], [], []
        for _ in range(runs):
            t0 = time.perf_counter()
            dlv = delve.Delve(target.pid)
            try:
                dlv.park()
                got = dlv.call(EXPR)
                first.append(time.perf_counter() - t0)
            finally:
                dlv.detach()
            whole.append(time.perf_counter() - t0)
            assert got == ["3"], got
            assert dlv.peak_rss_mb is not None
            rss.append(dlv.peak_rss_mb)
            cpu.append(dlv.cpu_seconds or 0.0)
        out["delve_first"], out["delve_whole"], out["delve_rss_mb"] = Stats.of(first), Stats.of(whole), max(rss)
        out["delve_cpu"] = Stats.of(cpu)
        out["target_alive"] = target.alive
    return out


def main(runs: int = 5, names: str = "small,cmdgo") -> dict[str, object]:
    compileall.compile_dir(os.path.dirname(gocall.__file__), quiet=1)  # as pip install leaves it
    load_before = load()
    results = {name: measure(name, runs) for name in names.split(",")}
    load_after = load()

    def cell(s: object) -> str:
        return f"{s.median:8.1f} {s.p90:8.1f}" if isinstance(s, Stats) else f"{'-':>8} {'-':>8}"

    def ratio(a: object, b: object) -> float | None:
        return round(a.median / b.median, 3) if isinstance(a, Stats) and isinstance(b, Stats) else None

    def med(s: object) -> str:
        return f"{s.median:.0f}" if isinstance(s, Stats) else "-"

    print(f"cold attach -> {EXPR} -> detach, ms (median p90), {runs} runs; load {load_before} -> {load_after}")
    print(f"{'':<14} {'gocall CLI warm':>17} {'CLI empty cache':>17} {'one-shot warm':>17} {'API warm':>17} "
          f"{'(CLI imports)':>17} {'Delve 1st result':>17} {'Delve +detach':>17} {'Delve/gocall':>12} "
          f"{'Delve/empty':>11} {'Delve/1-shot':>12}")  # fmt: skip
    for name, r in results.items():
        print(f"{name + ' ' + str(r['binary_mb']) + 'MB':<14} {cell(r.get('gocall'))} {cell(r.get('gocall_empty'))} "
              f"{cell(r.get('gocall_one_shot'))} {cell(r.get('gocall_api'))} {cell(r['gocall_imports'])} "
              f"{cell(r.get('delve_first'))} {cell(r.get('delve_whole'))} "
              f"{ratio(r.get('delve_first'), r.get('gocall')) or '-':>12} "
              f"{ratio(r.get('delve_first'), r.get('gocall_empty')) or '-':>11} "
              f"{ratio(r.get('delve_first'), r.get('gocall_one_shot')) or '-':>12}")  # fmt: skip
        print(f"{'':<14} CPU ms: gocall CLI warm {med(r.get('gocall_cpu'))} (client {med(r.get('gocall_client_cpu'))} "
              f"+ server's child), empty {med(r.get('gocall_empty_cpu'))}, one-shot {med(r.get('gocall_one_shot_cpu'))}, "
              f"API warm {med(r.get('gocall_api_cpu'))}, imports {med(r.get('gocall_imports_cpu'))}, "
              f"python -c pass {med(r.get('python_start_cpu'))}, "
              f"Delve {med(r.get('delve_cpu'))}; peak RSS MB gocall one-shot {r.get('gocall_rss_mb', 0):.0f}, "
              f"server {r.get('server_rss_mb', 0):.0f}, Delve {r.get('delve_rss_mb', 0):.0f}")  # fmt: skip
        for key in [k for k in r if k.endswith("_note")]:
            print(f"  {name}, {key}: {r[key]}")
    result = {
        "bench": "cold_attach",
        "load": [load_before, load_after],
        "ratios": {
            **{f"delve_first_over_gocall[{n}]": ratio(r.get("delve_first"), r.get("gocall")) for n, r in results.items()},
            **{f"delve_first_over_gocall_empty_cache[{n}]": ratio(r.get("delve_first"), r.get("gocall_empty"))
               for n, r in results.items()},
            **{f"delve_first_over_gocall_api[{n}]": ratio(r.get("delve_first"), r.get("gocall_api"))
               for n, r in results.items()},
            **{f"delve_first_over_gocall_one_shot[{n}]": ratio(r.get("delve_first"), r.get("gocall_one_shot"))
               for n, r in results.items()},
            **{f"delve_cpu_over_gocall_cpu[{n}]": ratio(r.get("delve_cpu"), r.get("gocall_cpu")) for n, r in results.items()},
            **{f"delve_cpu_over_gocall_one_shot_cpu[{n}]": ratio(r.get("delve_cpu"), r.get("gocall_one_shot_cpu"))
               for n, r in results.items()},
            **{f"delve_cpu_over_gocall_empty_cache_cpu[{n}]": ratio(r.get("delve_cpu"), r.get("gocall_empty_cpu"))
               for n, r in results.items()},
        },
        "targets": {
            n: {k: (v.to_json() if isinstance(v, Stats) else v) for k, v in r.items()} for n, r in results.items()
        },
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(*([int(sys.argv[1])] if len(sys.argv) > 1 else []), *sys.argv[2:3])
