"""Images for the real-engine tests, built here since none can be pulled: a tiny busybox image
from Debian's static busybox (`docker import`), and copies of an image onto other engines."""

from __future__ import annotations

import io
import tarfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import docker
from docker.errors import ImageNotFound
from docker.models.images import Image

from swarmops.lab_images.build import is_static_elf

from .harness import TIMINGS, HarnessError, run

BUSYBOX_TAG = "wpswarm-test/busybox:1"
BUSYBOX_BINARY = Path("/bin/busybox")

# --------------------------------------------------------------------------- #
# busybox image
# --------------------------------------------------------------------------- #


def busybox_rootfs_tar(busybox: Path = BUSYBOX_BINARY) -> bytes:
    """A root filesystem tarball: static busybox, one symlink per applet, a few /etc files.

    ``/www/index.html`` holds ``ok`` so ``httpd -f -p 8080 -h /www`` serves something.
    """
    if not busybox.is_file():
        raise HarnessError(f"{busybox} not found: apt-get install busybox-static")
    if not is_static_elf(busybox):
        raise HarnessError(f"{busybox} is not statically linked: apt-get install busybox-static")
    listing = run([str(busybox), "--list"]).stdout.split()
    applets = sorted({a for a in listing if a and "/" not in a and a != "busybox"})
    mtime = 1_700_000_000
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:

        def add_dir(name: str, mode: int = 0o755) -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, mode, mtime
            tar.addfile(info)

        def add_file(name: str, data: bytes, mode: int = 0o644) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, mtime
            tar.addfile(info, io.BytesIO(data))

        def add_link(name: str, target: str) -> None:
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.mode, info.mtime = tarfile.SYMTYPE, target, 0o777, mtime
            tar.addfile(info)

        for d in ("bin", "etc", "root", "run", "usr", "var", "www"):
            add_dir(d, 0o700 if d == "root" else 0o755)
        add_dir("tmp", 0o1777)
        add_dir("var/tmp", 0o1777)
        add_file("bin/busybox", busybox.read_bytes(), 0o755)
        for applet in applets:
            add_link(f"bin/{applet}", "busybox")
        add_link("sbin", "bin")
        add_link("usr/bin", "../bin")
        add_link("usr/sbin", "../bin")
        add_file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
        add_file("etc/group", b"root:x:0:\nnogroup:x:65534:\n")
        add_file("etc/nsswitch.conf", b"hosts: files dns\n")
        add_file("www/index.html", b"ok\n")
    return buf.getvalue()


def ensure_busybox_image(
    client: docker.DockerClient,
    tag: str = BUSYBOX_TAG,
    *,
    busybox: Path = BUSYBOX_BINARY,
) -> Image:
    """Return image ``tag`` on ``client``'s engine, importing it from busybox if absent.

    The image has ``CMD ["sh"]``, ``PATH=/bin``-style env and *no* HEALTHCHECK
    (``docker import`` cannot add one); services set their own health checks.
    """
    try:
        return client.images.get(tag)
    except ImageNotFound:
        pass
    started = time.monotonic()
    repository, _, version = tag.rpartition(":")
    if not repository or "/" in version:
        repository, version = tag, "latest"
    client.api.import_image_from_data(
        busybox_rootfs_tar(busybox),
        repository=repository,
        tag=version,
        changes=[
            "ENV PATH=/bin:/usr/bin:/sbin:/usr/sbin",
            'CMD ["sh"]',
            "WORKDIR /",
            "LABEL wpswarm.test.image=busybox",
        ],
    )
    TIMINGS.setdefault("busybox image import", time.monotonic() - started)
    return client.images.get(tag)


def copy_image(source: docker.DockerClient, targets: Sequence[docker.DockerClient], tag: str) -> None:
    """``docker save`` ``tag`` from ``source`` and ``docker load`` it into every target."""
    data = b"".join(source.images.get(tag).save(named=True))
    errors: list[BaseException] = []

    def load(target: docker.DockerClient) -> None:
        try:
            target.images.load(data)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=load, args=(t,)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise HarnessError(f"loading {tag} failed: {errors[0]}") from errors[0]
