"""A MariaDB server image for real-engine tests, built from Debian packages.

The product runs the official ``mysql:8.4`` image, which cannot be pulled here.  MariaDB from
Debian bookworm has the same client tools (``mysqladmin``) and server options
(``--skip-networking``, ``--socket``), so it can stand in for it when testing the product's health
check.  :func:`ensure_mariadb_image` builds the image once per engine:

1. ``debootstrap --variant=minbase --include=mariadb-server,mariadb-client bookworm`` into a
   temporary directory, from the Debian mirror this machine's apt is configured with;
2. trims it (apt caches, docs, the data directory the package's postinst created) and adds
   :data:`ENTRYPOINT_SCRIPT`;
3. ``tar -c`` | ``docker import`` with ENTRYPOINT/CMD/ENV changes; the rootfs is deleted afterwards.

The entrypoint mimics the official image's first start (docker-entrypoint.sh of mysql:8.4):
an empty data directory is initialised, and when ``MYSQL_ROOT_PASSWORD_FILE`` is set a *temporary*
server runs with ``--skip-networking --socket=/run/mysqld/init.sock`` while root's password, the
database and the user are set up from the ``*_FILE`` secrets over that socket (the SQL goes through
a pipe: no password on any command line, none printed).  Then it ``exec``\\ s the real server.  It
logs ``wpswarm-entrypoint: init ...`` lines with UTC timestamps so tests can time the init.
``WPSWARM_INIT_HOLD_SECONDS`` (tests only) keeps the temporary server up that long before the
setup SQL, to widen the init window beyond MariaDB's ~1 s.

The image has no HEALTHCHECK (``docker import`` cannot set one) and no ``~/.my.cnf``: a health
check run in it carries no credentials unless it passes them itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

import docker
from docker.errors import APIError, ImageNotFound
from docker.models.images import Image

from .harness import TIMINGS, HarnessError, exclusive_lock, log

MARIADB_TAG = "wpswarm-test/mariadb:bookworm-1"
SUITE = "bookworm"
PACKAGES = ("mariadb-server", "mariadb-client")
ENTRYPOINT_PATH = "/usr/local/bin/wpswarm-mariadb-entrypoint"
#: The temporary init server's socket (the real server uses Debian's /run/mysqld/mysqld.sock).
INIT_SOCKET = "/run/mysqld/init.sock"
#: Set to use another mirror than the one apt is configured with.
MIRROR_ENV = "WPSWARM_DEBIAN_MIRROR"
_LOCK_FILE = Path("/tmp/wpswarm-mariadb-image.lock")
_SOURCES_LIST = Path("/etc/apt/sources.list")
_SOURCES_DIR = Path("/etc/apt/sources.list.d")

# Server options as in the official image's my.cnf (listen on every interface, no DNS look-ups).
SERVER_CNF = """\
# wpswarm test image: like the official mysql image (listen on all interfaces, no DNS look-ups).
[mysqld]
bind-address = *
skip-name-resolve
"""

ENTRYPOINT_SCRIPT = r"""#!/bin/bash
# wpswarm test image entrypoint: a reduced copy of the official mysql image's first start.
set -eo pipefail
DATADIR=/var/lib/mysql
INIT_SOCKET=__INIT_SOCKET__

log() { printf '%s wpswarm-entrypoint: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)" "$*"; }
die() { log "error: $*"; exit 1; }
as_mysql() { setpriv --reuid=mysql --regid=mysql --init-groups -- "$@"; }
# file_env VAR: VAR=$(cat "$VAR_FILE") when VAR_FILE is set.
file_env() {
  local var=$1 file_var="${1}_FILE"
  if [ -n "${!file_var:-}" ]; then
    [ -r "${!file_var}" ] || die "$file_var: cannot read ${!file_var}"
    printf -v "$var" '%s' "$(< "${!file_var}")"
  fi
}
# sql_string VALUE: VALUE as a single-quoted SQL string literal.
sql_string() { local s=${1//\\/\\\\}; s=${s//\'/\\\'}; printf "'%s'" "$s"; }
sql_ident() { local s=${1//\`/\`\`}; printf '`%s`' "$s"; }

if [ "${1:0:1}" = '-' ]; then set -- mariadbd "$@"; fi
case "$1" in
  mariadbd|mysqld|/usr/sbin/mariadbd|/usr/sbin/mysqld) ;;
  *) exec "$@" ;;
esac

mkdir -p /run/mysqld "$DATADIR"
chown mysql:mysql /run/mysqld "$DATADIR"
chmod 0755 /run/mysqld

if [ ! -d "$DATADIR/mysql" ]; then
  log "init: start"
  mariadb-install-db --user=mysql --datadir="$DATADIR" --skip-test-db \
    --auth-root-authentication-method=normal >/dev/null
  log "init: data directory created"
  file_env MYSQL_ROOT_PASSWORD
  file_env MYSQL_PASSWORD
  if [ -n "${MYSQL_ROOT_PASSWORD:-}" ]; then
    # Like the official image: a temporary server without TCP, reachable only through a socket.
    as_mysql "$@" --skip-networking --socket="$INIT_SOCKET" &
    pid=$!
    for _ in $(seq 600); do
      if mariadb --protocol=socket --socket="$INIT_SOCKET" -uroot -e 'SELECT 1' >/dev/null 2>&1; then break; fi
      kill -0 "$pid" 2>/dev/null || die "temporary server exited"
      sleep 0.1
    done
    log "init: temporary server (--skip-networking, socket $INIT_SOCKET) ready"
    # Tests only: keep the init phase open a while (MySQL 8.4's init is much slower than MariaDB's).
    if [ "${WPSWARM_INIT_HOLD_SECONDS:-0}" != 0 ]; then
      log "init: holding for ${WPSWARM_INIT_HOLD_SECONDS}s (WPSWARM_INIT_HOLD_SECONDS)"
      sleep "$WPSWARM_INIT_HOLD_SECONDS"
      log "init: hold over"
    fi
    {
      echo "SET @@SESSION.SQL_LOG_BIN=0;"
      # root@localhost, and root@MYSQL_ROOT_HOST (default '%') unless that is localhost, both
      # with the password: as the official image does.
      echo "DELETE FROM mysql.global_priv WHERE User IN ('root', '') AND Host <> 'localhost';"
      echo "DELETE FROM mysql.proxies_priv WHERE Host <> 'localhost';"
      echo "FLUSH PRIVILEGES;"
      echo "ALTER USER 'root'@'localhost' IDENTIFIED BY $(sql_string "$MYSQL_ROOT_PASSWORD");"
      root_host=${MYSQL_ROOT_HOST:-%}
      if [ "$root_host" != localhost ]; then
        echo "CREATE USER 'root'@$(sql_string "$root_host") IDENTIFIED BY $(sql_string "$MYSQL_ROOT_PASSWORD");"
        echo "GRANT ALL ON *.* TO 'root'@$(sql_string "$root_host") WITH GRANT OPTION;"
      fi
      if [ -n "${MYSQL_DATABASE:-}" ]; then
        echo "CREATE DATABASE IF NOT EXISTS $(sql_ident "$MYSQL_DATABASE");"
      fi
      if [ -n "${MYSQL_USER:-}" ] && [ -n "${MYSQL_PASSWORD:-}" ]; then
        echo "CREATE USER $(sql_string "$MYSQL_USER")@'%' IDENTIFIED BY $(sql_string "$MYSQL_PASSWORD");"
        if [ -n "${MYSQL_DATABASE:-}" ]; then
          echo "GRANT ALL ON $(sql_ident "$MYSQL_DATABASE").* TO $(sql_string "$MYSQL_USER")@'%';"
        fi
      fi
      echo "SHUTDOWN;"
    } | mariadb --protocol=socket --socket="$INIT_SOCKET" -uroot >/dev/null \
      || die "init SQL failed"
    wait "$pid" || die "temporary server did not stop cleanly"
    log "init: temporary server stopped"
  fi
  unset MYSQL_ROOT_PASSWORD MYSQL_PASSWORD
  log "init: done"
fi

log "starting: $*"
exec setpriv --reuid=mysql --regid=mysql --init-groups -- "$@"
""".replace("__INIT_SOCKET__", INIT_SOCKET)

#: Image label holding a digest of what goes into the image; a cached image with another recipe
#: (e.g. after editing the entrypoint) is rebuilt.
RECIPE_LABEL = "wpswarm.test.mariadb.recipe"
RECIPE = hashlib.sha256("\0".join((SUITE, *PACKAGES, ENTRYPOINT_SCRIPT, SERVER_CNF)).encode()).hexdigest()[:16]

IMAGE_CHANGES: tuple[str, ...] = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    f'ENTRYPOINT ["{ENTRYPOINT_PATH}"]',
    'CMD ["mariadbd"]',
    "EXPOSE 3306",
    "WORKDIR /",
    "LABEL wpswarm.test.image=mariadb",
    f"LABEL {RECIPE_LABEL}={RECIPE}",
)

# Removed from the rootfs before import: caches, docs, and the data directory the package's
# postinst initialised (the entrypoint initialises it on first start, like the official image).
_TRIM = (
    "var/cache/apt",
    "var/lib/apt/lists",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "var/log",
    "var/lib/mysql",
    "dev",
    "run",
    "tmp",
)


def _deb822_stanzas(text: str) -> Iterator[dict[str, str]]:
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = ""
        for line in block.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line[0].isspace() and key:
                fields[key] += " " + line.strip()
                continue
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if fields:
            yield fields


def configured_debian_mirror(
    sources_list: Path = _SOURCES_LIST, sources_dir: Path = _SOURCES_DIR, suite: str = SUITE
) -> str | None:
    """The URI of the first apt source serving ``suite`` ``main`` (not the security archive).

    Reads one-line ``deb URI suite components`` entries and deb822 ``*.sources`` stanzas.
    ``$WPSWARM_DEBIAN_MIRROR`` overrides it.
    """
    override = os.environ.get(MIRROR_ENV)
    if override:
        return override
    files = [sources_list] if sources_list.is_file() else []
    if sources_dir.is_dir():
        files += sorted(p for p in sources_dir.iterdir() if p.suffix in (".list", ".sources"))
    for path in files:
        try:
            text = path.read_text()
        except OSError:
            continue
        if path.suffix == ".sources":
            for stanza in _deb822_stanzas(text):
                if stanza.get("enabled", "yes").lower() == "no":
                    continue
                if "deb" not in stanza.get("types", "").split() or suite not in stanza.get("suites", "").split():
                    continue
                if "main" not in stanza.get("components", "").split():
                    continue
                for uri in stanza.get("uris", "").split():
                    if "security" not in uri:
                        return uri
        else:
            for line in text.splitlines():
                words = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
                is_main = len(words) >= 4 and words[0] == "deb" and words[2] == suite and "main" in words[3:]
                if is_main and "security" not in words[1]:
                    return words[1]
    return None


def mirror_unavailable_reason(mirror: str, suite: str = SUITE, timeout: float = 15) -> str | None:
    """Why ``mirror`` cannot serve ``suite`` (its Release file does not answer), or None."""
    url = f"{mirror.rstrip('/')}/dists/{suite}/Release"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            response.read(64)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return f"Debian mirror {mirror} unavailable ({url}: {exc})"
    return None


def mariadb_image_unavailable_reason() -> str | None:
    """Why :func:`build_mariadb_rootfs` cannot work here (no debootstrap, no mirror), or None."""
    if os.geteuid() != 0:
        return "building the MariaDB test image needs root (debootstrap)"
    missing = [tool for tool in ("debootstrap", "tar") if not shutil.which(tool)]
    if missing:
        return f"building the MariaDB test image needs {', '.join(missing)} (apt-get install debootstrap)"
    mirror = configured_debian_mirror()
    if not mirror:
        return f"no Debian {SUITE} mirror in /etc/apt/sources.list(.d); set ${MIRROR_ENV}"
    return mirror_unavailable_reason(mirror)


def _mountpoints_under(root: Path) -> list[str]:
    prefix = str(root).rstrip("/") + "/"
    points: list[str] = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4].encode().decode("unicode_escape")
            if point.startswith(prefix):
                points.append(point)
    return sorted(set(points), key=len, reverse=True)


def remove_rootfs(root: Path) -> None:
    """Delete a (partial) debootstrap tree: unmount what debootstrap may have left mounted first."""
    for point in _mountpoints_under(root):
        if subprocess.run(["umount", point], capture_output=True, check=False).returncode != 0:
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    if _mountpoints_under(root):
        raise HarnessError(f"cannot delete {root}: still mounted: {_mountpoints_under(root)}")
    shutil.rmtree(root, ignore_errors=True)


def build_mariadb_rootfs(root: Path, mirror: str, *, suite: str = SUITE, timeout: float = 600) -> None:
    """``debootstrap`` MariaDB into ``root``, trim it and add the entrypoint."""
    cmd = [
        "debootstrap",
        "--variant=minbase",
        f"--include={','.join(PACKAGES)}",
        suite,
        str(root),
        mirror,
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise HarnessError(f"{' '.join(cmd)} did not finish within {timeout:.0f}s") from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-15:])
        debootstrap_log = root / "debootstrap" / "debootstrap.log"
        if debootstrap_log.is_file():
            tail += "\n" + "\n".join(debootstrap_log.read_text(errors="replace").splitlines()[-15:])
        raise HarnessError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{tail}")
    for required in ("usr/sbin/mariadbd", "usr/bin/mysqladmin", "usr/bin/mariadb-install-db", "usr/bin/setpriv"):
        if not (root / required).exists():
            raise HarnessError(f"debootstrap finished but /{required} is missing")
    if _mountpoints_under(root):
        raise HarnessError(f"debootstrap left mounts under {root}: {_mountpoints_under(root)}")
    customize_rootfs(root)


def customize_rootfs(root: Path) -> None:
    """Trim a MariaDB rootfs and add the entrypoint and server options."""
    for relative in _TRIM:
        path = root / relative
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        path.mkdir(parents=True, exist_ok=True)
    (root / "tmp").chmod(0o1777)
    (root / "var/cache/apt/archives/partial").mkdir(parents=True, exist_ok=True)
    entrypoint = root / ENTRYPOINT_PATH.lstrip("/")
    entrypoint.parent.mkdir(parents=True, exist_ok=True)
    entrypoint.write_text(ENTRYPOINT_SCRIPT)
    entrypoint.chmod(0o755)
    (root / "etc/mysql/mariadb.conf.d/90-wpswarm.cnf").write_text(SERVER_CNF)


def import_rootfs(client: docker.DockerClient, root: Path, tag: str, changes: Sequence[str] = IMAGE_CHANGES) -> Image:
    """``tar -C root -c . | docker import`` (via a tar file next to ``root``) as ``tag``."""
    tarball = root.parent / "rootfs.tar"
    try:
        subprocess.run(
            ["tar", "-C", str(root), "--numeric-owner", "--xattrs", "-cf", str(tarball), "."],
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
    except subprocess.CalledProcessError as exc:
        raise HarnessError(f"tar of {root} failed: {exc.stderr.strip()}") from exc
    repository, _, version = tag.rpartition(":")
    if not repository or "/" in version:
        repository, version = tag, "latest"
    try:
        client.api.import_image(src=str(tarball), repository=repository, tag=version, changes=list(changes))
    finally:
        tarball.unlink(missing_ok=True)
    return client.images.get(tag)


def _cached(client: docker.DockerClient, tag: str) -> tuple[Image | None, Image | None]:
    """(image ``tag`` if built from :data:`RECIPE`, image ``tag`` if built from another recipe)."""
    try:
        image = client.images.get(tag)
    except ImageNotFound:
        return None, None
    labels: dict[str, str] = (image.attrs.get("Config") or {}).get("Labels") or {}
    return (image, None) if labels.get(RECIPE_LABEL) == RECIPE else (None, image)


def ensure_mariadb_image(client: docker.DockerClient, tag: str = MARIADB_TAG) -> Image:
    """Return image ``tag`` on ``client``'s engine, building it with debootstrap if absent.

    An image of that tag built from another recipe (:data:`RECIPE_LABEL`) is rebuilt and the old
    one removed.  Raises :class:`HarnessError` with the reason when it cannot be built (no
    debootstrap, no mirror, a failed install).  Concurrent callers on this machine wait for one build.
    """
    image, _ = _cached(client, tag)
    if image is not None:
        return image
    with exclusive_lock(_LOCK_FILE):
        image, stale = _cached(client, tag)
        if image is not None:
            return image  # built by a concurrent caller meanwhile
        reason = mariadb_image_unavailable_reason()
        if reason:
            raise HarnessError(reason)
        mirror = configured_debian_mirror()
        assert mirror is not None
        started = time.monotonic()
        workdir = Path(tempfile.mkdtemp(prefix="wpswarm-mariadb-"))
        root = workdir / "rootfs"
        try:
            log(f"building {tag}: debootstrap {SUITE} {'+'.join(PACKAGES)} from {mirror}")
            build_mariadb_rootfs(root, mirror)
            image = import_rootfs(client, root, tag)
        finally:
            remove_rootfs(root)
            shutil.rmtree(workdir, ignore_errors=True)
        if stale is not None and stale.id != image.id:
            with contextlib.suppress(APIError):  # still used by a container: leave it
                client.images.remove(str(stale.id), noprune=False)
        elapsed = time.monotonic() - started
        TIMINGS.setdefault("mariadb image build", elapsed)
        log(f"built {tag} in {elapsed:.1f}s ({(image.attrs.get('Size') or 0) / 1e6:.0f} MB)")
        return image
