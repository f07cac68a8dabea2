"""The cluster pieces, as far as they can run here (no cluster, no registry, no Docker daemon):
deploy/kubectl-gocall against a stub ``kubectl`` on PATH that records its arguments, found as
a plugin by the real kubectl when one is installed; deploy/Dockerfile read, not built."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
PLUGIN = ROOT / "deploy" / "kubectl-gocall"
STUB = '#!/bin/sh\nprintf "%s\\0" "$@" > "$KUBECTL_ARGS"\necho "stub kubectl ran"\n'


def plugin(tmp_path: Path, *args: str, kubectl: list[str] | None = None,
           env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    stub_dir = tmp_path / "stub"
    stub_dir.mkdir(exist_ok=True)
    (stub_dir / "kubectl").write_text(STUB)
    (stub_dir / "kubectl").chmod(0o755)
    log = tmp_path / "args"
    path = f"{stub_dir}:{PLUGIN.parent}:{os.environ['PATH']}"
    r = subprocess.run([*(kubectl or [str(PLUGIN)]), *args], capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL, env={**os.environ, "PATH": path, "KUBECTL_ARGS": str(log), **(env or {})})
    return r, log.read_text().split("\0")[:-1] if log.exists() else []


def test_plugin_runs_kubectl_debug(tmp_path: Path) -> None:
    r, args = plugin(tmp_path, "shop-7d9f", "-c", "server", "-n", "prod", "--", "call", "1", "main.Stats()")
    assert (r.returncode, r.stdout) == (0, "stub kubectl ran\n"), r.stderr
    assert args == ["debug", "shop-7d9f", "--image=gocall:latest", "--target=server", "--profile=general",
                    "--attach=true", "--quiet", "--namespace=prod", "--", "gocall", "call", "1", "main.Stats()"]
    _, args = plugin(tmp_path, "--image", "registry.local/gocall:1", "p", "-c", "app", "--", "ps", "--json")
    assert args == ["debug", "p", "--image=registry.local/gocall:1", "--target=app", "--profile=general",
                    "--attach=true", "--quiet", "--", "gocall", "ps", "--json"]
    _, args = plugin(tmp_path, "p", "-c", "app", "--", "doctor", "1", env={"KUBECTL_GOCALL_IMAGE": "mine:2"})
    assert args[2] == "--image=mine:2"


@pytest.mark.parametrize("args", [[], ["p"], ["p", "--", "ps"], ["p", "-c"], ["-x", "p", "-c", "a", "--", "ps"]])
def test_plugin_usage_errors(tmp_path: Path, args: list[str]) -> None:
    r, recorded = plugin(tmp_path, *args)
    assert r.returncode == 2 and r.stderr.startswith(("usage: kubectl gocall", "kubectl gocall:")) and not recorded


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed: plugin discovery not checked")
def test_real_kubectl_finds_the_plugin(tmp_path: Path) -> None:
    """`kubectl gocall ...` through the real kubectl's plugin mechanism, which runs the stub in turn."""
    real = shutil.which("kubectl")
    assert real is not None
    r, args = plugin(tmp_path, "gocall", "pod", "-c", "app", "--", "call", "1", "main.Add(1, 2)", kubectl=[real])
    assert r.returncode == 0 and args[:2] == ["debug", "pod"] and args[-3:] == ["call", "1", "main.Add(1, 2)"], r.stderr


def test_dockerfile_installs_this_repository() -> None:
    """What can be checked without a builder: every instruction is one Docker knows, every file
    copied exists in the repository and is not excluded by .dockerignore, and gocall is the entry point."""
    lines = [line for line in (ROOT / "deploy" / "Dockerfile").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    known = {"FROM", "WORKDIR", "COPY", "RUN", "ENTRYPOINT", "CMD", "ENV", "ARG", "LABEL", "USER"}
    assert all(line.split()[0] in known for line in lines), lines
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if not line.startswith("#")}
    for line in lines:
        words = line.split()
        if words[0] == "COPY" and not words[1].startswith("--from"):
            for src in words[1:-1]:
                assert (ROOT / src).exists() and src not in ignored, src
    assert 'ENTRYPOINT ["gocall"]' in lines
