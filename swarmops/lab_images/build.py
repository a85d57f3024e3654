"""Building the lab images, cached by what goes into them.

Each role's recipe (packages, files, image settings, and this package's own code) hashes to a key.
An image labelled with that key is used as it is; otherwise its root filesystem is made (Debian's
packages through debootstrap, or, for logspout, busybox and a binary built from its Go module),
kept as a tar file in the cache folder, and turned into an image by `docker build` (FROM scratch;
ADD the tar; the image's entrypoint, command and stop signal). The tar stays in the cache, so an
engine whose images were removed gets them back in seconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from swarmops.lab_images import debian
from swarmops.lab_images.debian import LabImageError

if TYPE_CHECKING:
    from docker import DockerClient

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
LOGSPOUT_MODULE = ROOT / "tools" / "logspout"
LOGSPOUT_VERSION = "3.2.6"  # what tools/logspout/go.mod requires
BUSYBOX = Path("/bin/busybox")
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
REPOSITORY = "wpswarm-lab"
ROLE_LABEL = "wpswarm.lab.role"
RECIPE_LABEL = "wpswarm.lab.recipe"
VERSION_LABEL = "org.opencontainers.image.version"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def cache_dir() -> Path:
    """Where root filesystems and binaries are kept between builds (ignored by git, per machine)."""
    base = os.environ.get("WPSWARM_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "wordpress-swarm"
    )
    return Path(base) / "lab-images"


@dataclass(frozen=True)
class Recipe:
    role: str
    # Debian packages to debootstrap (no recommends); empty: the root filesystem is made by `make_root`.
    packages: tuple[str, ...]
    # Files beside this module -> their path in the image and mode.
    files: tuple[tuple[str, str, int], ...]
    # Image settings after FROM/ADD (ENTRYPOINT, CMD, STOPSIGNAL, ...).
    settings: tuple[str, ...]
    # The package whose version names the image ("logspout" for the Go-built one).
    versioned: str
    # Role-specific work on the root filesystem once the packages and files are in.
    finish: Callable[[Path], None] = field(compare=False)
    # What else goes into the image, for the cache key (e.g. the Go module's files).
    inputs: tuple[Path, ...] = ()

    def base_key(self) -> str:
        """What the Debian packages' root filesystem depends on."""
        digest = hashlib.sha256(repr((self.packages, debian.SUITE)).encode())
        digest.update((HERE / "debian.py").read_bytes())
        return digest.hexdigest()[:12]

    def key(self) -> str:
        """What the image depends on: the base, the files, the settings and this module."""
        digest = hashlib.sha256(repr((self.role, self.base_key(), self.files, self.settings)).encode())
        sources = [HERE / name for name, _, _ in self.files]
        for path in [*sources, HERE / "build.py", *self.inputs]:
            if path.is_file():  # a missing input fails the build with its reason, not here
                digest.update(path.read_bytes())
        return digest.hexdigest()[:12]


def _install_files(recipe: Recipe, root: Path) -> None:
    for name, target, mode in recipe.files:
        destination = root / target.lstrip("/")
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(HERE / name, destination)
        destination.chmod(mode)


def _finish_mysql(root: Path) -> None:
    # The package's postinst made a data directory; the entrypoint initialises one on first start.
    shutil.rmtree(root / "var/lib/mysql", ignore_errors=True)
    (root / "var/lib/mysql").mkdir()
    # mysql as 999:999, like the official image: secrets the server reads are mounted for that uid.
    uid, gid = next(
        line.split(":")[2:4] for line in (root / "etc/passwd").read_text().splitlines() if line.startswith("mysql:")
    )
    debian.chroot(root, "groupmod", "-g", "999", "mysql")
    debian.chroot(root, "usermod", "-u", "999", "-g", "999", "mysql")
    owned = ["(", "-uid", uid, "-o", "-gid", gid, ")"]
    debian.chroot(root, "find", "/", "-xdev", *owned, "-exec", "chown", "-h", "mysql:mysql", "{}", "+")
    (root / "docker-entrypoint-initdb.d").mkdir(exist_ok=True)
    for required in ("usr/sbin/mariadbd", "usr/bin/mysqladmin", "usr/bin/mariadb-install-db", "usr/bin/setpriv"):
        if not (root / required).exists():
            raise LabImageError(f"the mysql role's root filesystem has no /{required}")


def _finish_wordpress(root: Path) -> None:
    # Core in /var/www/html, from Debian's package (its own wp-config.php reads /etc/wordpress);
    # the themes and plugins also in /usr/src for the entrypoint to fill an empty volume.
    core, docroot, defaults = root / "usr/share/wordpress", root / "var/www/html", root / "usr/src/wordpress"
    (docroot / "index.html").unlink(missing_ok=True)  # Apache's placeholder page
    shutil.copytree(core, docroot, symlinks=True, ignore=shutil.ignore_patterns("wp-config.php"), dirs_exist_ok=True)
    (docroot / "wp-content/index.php").write_text("<?php\n// Silence is golden.\n")
    defaults.mkdir(parents=True)
    shutil.copytree(docroot / "wp-content", defaults / "wp-content", symlinks=True)
    debian.chroot(root, "chown", "-R", "www-data:www-data", "/var/www/html/wp-content")
    debian.chroot(root, "a2enmod", "-q", "rewrite")
    debian.chroot(root, "a2enconf", "-q", "servername")
    # Apache's own logs on the container's output, as the official image links them.
    logs = root / "var/log/apache2"
    logs.mkdir(parents=True, exist_ok=True)
    streams = {"error.log": "/dev/stderr", "access.log": "/dev/stdout", "other_vhosts_access.log": "/dev/stdout"}
    for name, stream in streams.items():
        (logs / name).symlink_to(stream)
    for required in ("var/www/html/wp-config.php", "var/www/html/wp-content/themes/twentytwentythree", "usr/bin/curl"):
        if not (root / required).exists():
            raise LabImageError(f"the wordpress role's root filesystem has no /{required}")


def _make_logging_root(root: Path) -> None:
    """busybox (for the health check's wget), logspout built from its Go module, the CA bundle."""
    if not is_static_elf(BUSYBOX):
        raise LabImageError(f"the logging role needs a static {BUSYBOX} (apt-get install busybox-static)")
    for directory in ("bin", "etc/ssl/certs", "tmp", "var/run"):
        (root / directory).mkdir(parents=True, exist_ok=True)
    (root / "tmp").chmod(0o1777)
    shutil.copy2(BUSYBOX, root / "bin/busybox")
    for applet in ("sh", "wget", "cat", "ls"):
        (root / "bin" / applet).symlink_to("busybox")
    shutil.copy2(logspout_binary(), root / "bin/logspout")
    if CA_BUNDLE.is_file():  # for syslog+tls routes
        shutil.copy2(CA_BUNDLE, root / "etc/ssl/certs/ca-certificates.crt")


def is_static_elf(path: Path) -> bool:
    """An ELF executable without a program interpreter (PT_INTERP): it runs in an empty image."""
    try:
        with path.open("rb") as handle:
            header = handle.read(64)
            if len(header) < 64 or header[:4] != b"\x7fELF" or header[4] != 2:  # 64-bit ELF only
                return False
            order = "little" if header[5] == 1 else "big"
            offset = int.from_bytes(header[0x20:0x28], order)
            entry_size = int.from_bytes(header[0x36:0x38], order)
            count = int.from_bytes(header[0x38:0x3A], order)
            handle.seek(offset)
            table = handle.read(entry_size * count)
    except OSError:
        return False
    pt_interp = 3
    return all(int.from_bytes(table[i * entry_size : i * entry_size + 4], order) != pt_interp for i in range(count))


def logspout_binary() -> Path:
    """logspout built from tools/logspout's module (static), kept in the cache per go.sum."""
    key = hashlib.sha256((LOGSPOUT_MODULE / "go.mod").read_bytes() + (LOGSPOUT_MODULE / "go.sum").read_bytes())
    binary = cache_dir() / f"logspout-{LOGSPOUT_VERSION}-{key.hexdigest()[:12]}"
    if binary.is_file():
        return binary
    if not shutil.which("go"):
        raise LabImageError("the logging role builds logspout from its Go module: install Go")
    binary.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0"}
    flags = f"-s -w -X main.Version=v{LOGSPOUT_VERSION}"
    command = [
        "go",
        "build",
        "-trimpath",
        "-ldflags",
        flags,
        "-o",
        f"{binary}.partial",
        "github.com/gliderlabs/logspout",
    ]
    done = subprocess.run(command, cwd=LOGSPOUT_MODULE, env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise LabImageError(f"building logspout failed: {done.stderr.strip()[-2000:]}")
    os.replace(f"{binary}.partial", binary)
    return binary


RECIPES: dict[str, Recipe] = {
    "mysql": Recipe(
        role="mysql",
        packages=("mariadb-server", "mariadb-client"),
        files=(
            ("mysql/entrypoint.sh", "/usr/local/bin/docker-entrypoint.sh", 0o755),
            ("mysql/server.cnf", "/etc/mysql/mariadb.conf.d/90-lab.cnf", 0o644),
        ),
        settings=(
            f"ENV PATH={PATH} LANG=C.UTF-8",
            'ENTRYPOINT ["docker-entrypoint.sh"]',
            'CMD ["mariadbd"]',
            "EXPOSE 3306",
        ),
        versioned="mariadb-server",
        finish=_finish_mysql,
    ),
    "wordpress": Recipe(
        role="wordpress",
        packages=(
            "apache2",
            "libapache2-mod-php",
            "php-mysql",
            # What the official image builds in too: XML-RPC and feeds parse XML, the editor and
            # the site health page want the others.
            "php-xml",
            "php-mbstring",
            "php-curl",
            "php-zip",
            "php-intl",
            "wordpress",
            "wordpress-theme-twentytwentythree",
            "curl",
            "ca-certificates",
        ),
        files=(
            ("wordpress/entrypoint.sh", "/usr/local/bin/docker-entrypoint.sh", 0o755),
            ("wordpress/wp-config.php", "/var/www/html/wp-config.php", 0o644),
            ("wordpress/site.conf", "/etc/apache2/sites-available/000-default.conf", 0o644),
            ("wordpress/servername.conf", "/etc/apache2/conf-available/servername.conf", 0o644),
        ),
        settings=(
            f"ENV PATH={PATH} LANG=C.UTF-8",
            'ENTRYPOINT ["docker-entrypoint.sh"]',
            'CMD ["apache2-foreground"]',
            # Apache's graceful stop: requests in flight finish (the official php:apache images' signal).
            "STOPSIGNAL SIGWINCH",
            "WORKDIR /var/www/html",
            "EXPOSE 80",
        ),
        versioned="wordpress",
        finish=_finish_wordpress,
    ),
    "logging": Recipe(
        role="logging",
        packages=(),
        files=(),
        settings=("ENV PATH=/bin", 'ENTRYPOINT ["/bin/logspout"]', "EXPOSE 80"),
        versioned="logspout",
        finish=_make_logging_root,
        inputs=(LOGSPOUT_MODULE / "go.mod", LOGSPOUT_MODULE / "go.sum", BUSYBOX),
    ),
}
ROLES: tuple[str, ...] = tuple(RECIPES)


@dataclass(frozen=True)
class Built:
    role: str
    tag: str
    version: str
    seconds: float  # 0 when the engine had it
    how: str  # "cached image", "cached root filesystem", "built"


def _image_with(client: DockerClient, key: str) -> tuple[str, str] | None:
    """(tag, version) of the engine's image built from this recipe key, if it has one."""
    for image in client.images.list(filters={"label": f"{RECIPE_LABEL}={key}"}):
        labels = (image.attrs.get("Config") or {}).get("Labels") or {}
        if image.tags:
            return str(image.tags[0]), str(labels.get(VERSION_LABEL, ""))
    return None


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _tar(root: Path, tar: Path) -> None:
    subprocess.run(
        ["tar", "-C", str(root), "--numeric-owner", "--xattrs", "-cf", f"{tar}.partial", "."],
        check=True,
        capture_output=True,
        timeout=600,
    )
    os.replace(f"{tar}.partial", tar)


def _base_tar(recipe: Recipe) -> Path:
    """The role's Debian packages, debootstrapped once per package list into a tar in the cache."""
    tar = cache_dir() / f"{recipe.role}-base-{recipe.base_key()}.tar"
    if tar.is_file():
        return tar
    root = Path(tempfile.mkdtemp(prefix=f"wpswarm-lab-{recipe.role}-base-", dir=cache_dir())) / "rootfs"
    try:
        debian.debootstrap(root, recipe.packages)
        _tar(root, tar)
        return tar
    finally:
        debian.remove_rootfs(root)
        shutil.rmtree(root.parent, ignore_errors=True)


def _root_tar(recipe: Recipe, key: str) -> tuple[Path, str]:
    """The role's root filesystem as a tar in the cache (made if missing), and its version."""
    tar = cache_dir() / f"{recipe.role}-{key}.tar"
    version_file = tar.with_suffix(".version")
    if tar.is_file() and version_file.is_file():
        return tar, version_file.read_text().strip()
    root = Path(tempfile.mkdtemp(prefix=f"wpswarm-lab-{recipe.role}-", dir=cache_dir())) / "rootfs"
    root.mkdir()
    try:
        if recipe.packages:
            subprocess.run(
                ["tar", "-C", str(root), "--numeric-owner", "--xattrs", "-xf", str(_base_tar(recipe))],
                check=True,
                capture_output=True,
                timeout=600,
            )
        _install_files(recipe, root)
        recipe.finish(root)
        version = LOGSPOUT_VERSION if recipe.versioned == "logspout" else debian.package_version(root, recipe.versioned)
        _tar(root, tar)
        version_file.write_text(version + "\n")
        return tar, version
    finally:
        debian.remove_rootfs(root)
        shutil.rmtree(root.parent, ignore_errors=True)


def ensure_image(client: DockerClient, role: str) -> Built:
    """The role's lab image on `client`'s engine, built if it has none of this recipe."""
    recipe = RECIPES[role]
    key = recipe.key()
    found = _image_with(client, key)
    if found:
        return Built(role, found[0], found[1], 0.0, "cached image")
    started = time.monotonic()
    cache_dir().mkdir(parents=True, exist_ok=True)
    with _lock(cache_dir() / f"{role}.lock"):
        found = _image_with(client, key)
        if found:  # built meanwhile by another process
            return Built(role, found[0], found[1], time.monotonic() - started, "cached image")
        had_tar = (cache_dir() / f"{role}-{key}.tar").is_file()
        tar, version = _root_tar(recipe, key)
        tag = f"{REPOSITORY}/{role}:{version}-{key[:8]}"
        _docker_build(client, recipe, tar, tag, key, version)
        _forget_older(client, recipe, key)
    return Built(role, tag, version, time.monotonic() - started, "cached root filesystem" if had_tar else "built")


def _docker_build(client: DockerClient, recipe: Recipe, tar: Path, tag: str, key: str, version: str) -> None:
    from docker.errors import BuildError

    context = Path(tempfile.mkdtemp(prefix="build-", dir=cache_dir()))
    try:
        os.link(tar, context / "rootfs.tar")  # the cache and the context share a filesystem
        lines = [
            "FROM scratch",
            "ADD rootfs.tar /",
            *recipe.settings,
            f'LABEL {ROLE_LABEL}="{recipe.role}" {RECIPE_LABEL}="{key}" {VERSION_LABEL}="{version}"',
        ]
        (context / "Dockerfile").write_text("\n".join(lines) + "\n")
        try:
            client.images.build(path=str(context), tag=tag, rm=True, forcerm=True, pull=False)
        except BuildError as error:
            raise LabImageError(f"docker build of {tag} failed: {error}") from error
    finally:
        shutil.rmtree(context, ignore_errors=True)


def _forget_older(client: DockerClient, recipe: Recipe, key: str) -> None:
    """Removes the role's images and cached files of other recipes: the disk holds one of each.
    An image a container still uses stays."""
    from docker.errors import APIError

    for image in client.images.list(filters={"label": f"{ROLE_LABEL}={recipe.role}"}):
        labels = (image.attrs.get("Config") or {}).get("Labels") or {}
        if labels.get(RECIPE_LABEL) != key:
            with contextlib.suppress(APIError):
                client.images.remove(str(image.id), force=False, noprune=False)
    keep = {f"{recipe.role}-{key}.tar", f"{recipe.role}-{key}.version"}
    if recipe.packages:
        keep.add(f"{recipe.role}-base-{recipe.base_key()}.tar")
    for path in cache_dir().glob(f"{recipe.role}-*"):
        if path.name not in keep and path.suffix in (".tar", ".version"):
            path.unlink(missing_ok=True)


def ensure_images(client: DockerClient, roles: Sequence[str] = ROLES) -> dict[str, Built]:
    return {role: ensure_image(client, role) for role in roles}
