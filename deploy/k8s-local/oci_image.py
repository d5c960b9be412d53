"""Pack a root filesystem folder as a one-layer image archive that ``ctr images import`` loads (Docker save format).

No registry can be reached here, so the local cluster's own images (the pause image compiled from the Kubernetes
tarball's ``pause.c``, the smoke-test web server) are made from files on this machine.

Usage: python3 oci_image.py ROOTFS OUT.tar --ref NAME:TAG [--entrypoint /bin/x] [--cmd ARG ...] [--user UID:GID]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import tarfile
from pathlib import Path


def _layer(rootfs: Path) -> bytes:
    """The layer tar of ``rootfs`` (every file owned by root, modes kept, stable order and times)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(rootfs.rglob("*")):
            info = tar.gettarinfo(str(path), arcname=str(path.relative_to(rootfs)))
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mtime = 0
            if info.isreg():
                with path.open("rb") as fh:
                    tar.addfile(info, fh)
            else:
                tar.addfile(info)
    return buf.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def pack(rootfs: Path, out: Path, ref: str, entrypoint: list[str], cmd: list[str], user: str) -> None:
    """Write ``out``: manifest.json, the image config and one layer, tagged ``ref``."""
    layer = _layer(rootfs)
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": entrypoint or None, "Cmd": cmd or None, "User": user, "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "deploy/k8s-local/oci_image.py"}],
    }
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    layer_name = diff_id.removeprefix("sha256:") + "/layer.tar"
    manifest = [{"Config": config_name, "RepoTags": [ref], "Layers": [layer_name]}]
    with tarfile.open(out, "w") as tar:
        _add(tar, config_name, config_bytes)
        _add(tar, layer_name, layer)
        _add(tar, "manifest.json", json.dumps(manifest).encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("rootfs", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--ref", required=True, help="image name and tag, e.g. k8s.local/pause:3.4.1")
    parser.add_argument("--entrypoint", action="append", default=[], help="entrypoint word (repeat for several)")
    parser.add_argument("--cmd", action="append", default=[], help="command word (repeat for several)")
    parser.add_argument("--user", default="65534:65534", help="UID:GID the image runs as (default nobody)")
    args = parser.parse_args()
    pack(args.rootfs, args.out, args.ref, args.entrypoint, args.cmd, args.user)


if __name__ == "__main__":
    main()
