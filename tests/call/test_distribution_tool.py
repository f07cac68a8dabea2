"""Issue 16 on a real program as the Go distribution ships it: the ``pprof`` tool of each
release that still ships it prebuilt (1.19-1.24; later ones build it on demand), linked
without DWARF, serving its web UI. A standard-library function linked into it is called
with no --declare (its signature from the release's own GOROOT) while requests wake the
idle server; the server answers as before afterwards."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

import gocall

# A legacy text heap profile: pprof serves any profile, and this one needs no Go program to make.
_PROFILE = "heap profile: 1: 2048 [1: 2048] @ heap/1048576\n1: 2048 [1: 2048] @ 0x401000 0x402000\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:  # pprof answers 501 for graphs without Graphviz: still an answer
        return int(e.code)


def test_pprof_web_ui_called_without_declarations(go_toolchain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tool = go_toolchain.goroot / "pkg" / "tool" / "linux_amd64" / "pprof"
    if not tool.exists():
        pytest.skip(f"{go_toolchain.version} does not ship pprof prebuilt (go tool builds it on demand)")
    profile = tmp_path / "heap.prof"
    profile.write_text(_PROFILE)
    port = _free_port()
    url = f"http://127.0.0.1:{port}/ui/"
    proc = subprocess.Popen([str(tool), f"-http=127.0.0.1:{port}", "-no_browser", str(profile)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    stop = threading.Event()
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                _get(url)
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "pprof did not serve its web UI"
                time.sleep(0.1)

        def wake() -> None:  # an idle server runs no Go code to inject into: requests wake it
            while not stop.is_set():
                try:
                    _get(url)
                except OSError:
                    pass
                time.sleep(0.02)

        threading.Thread(target=wake, daemon=True).start()
        with gocall.attach(proc.pid, timeout=30) as p:
            assert p.binary.dwarf is None
            fn = p.evaluator.names.function("strings.ToUpper")
            assert fn is not None and fn.sig.origin.startswith(f"Go source {go_toolchain.goroot}")
            assert p.eval('strings.ToUpper("pprof")') == "PPROF"
        stop.set()
        assert proc.poll() is None and _get(url) in (200, 501)
    finally:
        stop.set()
        proc.kill()
        proc.wait()
