"""The container named from a cgroup path (gocall ps's CONTAINER column), on paths as Docker,
containerd, CRI-O, Podman and the kubelet write them (cgroup v1 and v2)."""

from __future__ import annotations

import pytest

from gocall.process.namespaces import container_of

ID = "3f2a9c1d0b7e" + "a" * 52


@pytest.mark.parametrize("cgroup, expected", [
    (f"0::/system.slice/docker-{ID}.scope\n", "docker:3f2a9c1d0b7e"),
    (f"12:pids:/docker/{ID}\n11:cpu:/docker/{ID}\n", "docker:3f2a9c1d0b7e"),
    (f"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0b1e2c3d_4f5a_6b7c_8d9e_0f1a2b3c4d5e.slice/"
     f"cri-containerd-{ID}.scope\n", "k8s:pod/0b1e2c3d-4f5a-6b7c-8d9e-0f1a2b3c4d5e:3f2a9c1d0b7e"),
    (f"0::/kubepods/besteffort/pod0b1e2c3d-4f5a-6b7c-8d9e-0f1a2b3c4d5e/{ID}\n",
     "k8s:pod/0b1e2c3d-4f5a-6b7c-8d9e-0f1a2b3c4d5e:3f2a9c1d0b7e"),
    (f"0::/machine.slice/libpod-{ID}.scope/container\n", "libpod:3f2a9c1d0b7e"),
    (f"0::/system.slice/crio-{ID}.scope\n", "crio:3f2a9c1d0b7e"),
    ("0::/user.slice/user-1000.slice/session-3.scope\n", "/user.slice/user-1000.slice/session-3.scope"),
    ("0::/\n", ""),
])  # fmt: skip
def test_container_from_cgroup(cgroup: str, expected: str) -> None:
    assert container_of(cgroup) == expected
