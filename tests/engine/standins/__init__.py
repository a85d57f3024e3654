"""Stand-in images for the three roles, for engines that can pull no image.

Each is busybox's root filesystem plus the shell scripts beside this file (shellcheck lints them
in scripts/test), made with `docker import`. They keep the product's health-check commands
working verbatim (`mysqladmin ping --protocol=tcp ...`, `curl --fail ... http://127.0.0.1/`,
`wget -q -O /dev/null http://127.0.0.1:80/health`) and the images' contracts the program relies on:
MySQL's `_FILE` password variables and a first start with no TCP listener, WordPress's database
settings (its page is 200 only with a working login to `mysql`), logspout's routes as arguments.
The product's specs set no `init`, so PID 1 is the entrypoint shell: it exits 0 on SIGTERM, as the
real servers do, and a SIGKILL shows as exit code 137.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import docker
from docker.errors import ImageNotFound

from .. import harness, images

HERE = Path(__file__).resolve().parent

# Script file beside this module -> path in the image, per role; lib.sh is in every image.
_FILES: dict[str, dict[str, str]] = {
    "mysql": {
        "mysql-entrypoint": "/bin/standin-entrypoint",
        "mysql-greeting": "/bin/standin-mysql-greeting",
        "mysqladmin": "/bin/mysqladmin",
    },
    "wordpress": {
        "wordpress-entrypoint": "/bin/standin-entrypoint",
        "wordpress-page": "/bin/standin-wordpress-page",
        "curl": "/bin/curl",
    },
    "logging": {
        "logspout-entrypoint": "/bin/standin-entrypoint",
        "logspout-health": "/bin/standin-logspout-health",
    },
}
ROLES = tuple(_FILES)


@dataclass(frozen=True)
class StandIn:
    role: str  # the service's wordpress-swarm.role label
    files: tuple[tuple[str, str], ...]  # (path in the image, text)
    variant: str = ""  # another build of the same stand-in: a new image with the same behaviour

    @property
    def tag(self) -> str:
        """wpswarm-test/<role>-standin:1-<digest>: a changed script or variant is a new image."""
        digest = hashlib.sha256(repr((self.files, self.variant)).encode()).hexdigest()
        return f"wpswarm-test/{self.role}-standin:1-{digest[:10]}"


def standin(role: str, variant: str = "") -> StandIn:
    files = {"lib.sh": "/bin/standin-lib.sh", **_FILES[role]}
    return StandIn(role, tuple(sorted((path, (HERE / name).read_text()) for name, path in files.items())), variant)


def ensure_image(client: docker.DockerClient, image: StandIn) -> str:
    """The stand-in's image on `client`'s engine, imported once per content; returns its tag."""
    try:
        client.images.get(image.tag)
        return image.tag
    except ImageNotFound:
        pass
    started = time.monotonic()
    buffer = io.BytesIO(images.busybox_rootfs_tar())
    extra = [(path, text) for path, text in image.files]
    if image.variant:
        extra.append(("/etc/standin-variant", image.variant + "\n"))
    with tarfile.open(fileobj=buffer, mode="a") as tar:
        for path, text in extra:
            data = text.encode()
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode, info.mtime = len(data), 0o755, 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    repository, _, version = image.tag.rpartition(":")
    client.api.import_image_from_data(
        buffer.getvalue(),
        repository=repository,
        tag=version,
        changes=[
            "ENV PATH=/bin:/usr/bin:/sbin:/usr/sbin",
            'ENTRYPOINT ["/bin/standin-entrypoint"]',
            "WORKDIR /",
            f"LABEL wpswarm.test.image={image.role}-standin",
        ],
    )
    harness.TIMINGS[f"{image.role} stand-in image import"] = time.monotonic() - started
    return image.tag


def ensure_images(client: docker.DockerClient) -> dict[str, str]:
    """role -> tag of its stand-in on `client`'s engine."""
    return {role: ensure_image(client, standin(role)) for role in ROLES}
