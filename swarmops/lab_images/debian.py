"""Root filesystems from Debian's packages: `debootstrap` into a folder, from the mirror this
machine's apt uses, and the clean-up after it."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

SUITE = "bookworm"
#: Set to use another mirror than the one apt is configured with.
MIRROR_ENV = "WPSWARM_DEBIAN_MIRROR"
_SOURCES_LIST = Path("/etc/apt/sources.list")
_SOURCES_DIR = Path("/etc/apt/sources.list.d")

# Removed after the install: caches, documentation and logs no container needs.
TRIM = (
    "var/cache/apt",
    "var/lib/apt/lists",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "var/log",
)


class LabImageError(RuntimeError):
    """A lab image can't be built here; the message says why and what would fix it."""


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


def configured_mirror(
    sources_list: Path = _SOURCES_LIST, sources_dir: Path = _SOURCES_DIR, suite: str = SUITE
) -> str | None:
    """The URI of the first apt source serving `suite` `main` (not the security archive), from
    one-line `deb URI suite components` entries and deb822 `*.sources` stanzas;
    $WPSWARM_DEBIAN_MIRROR overrides it."""
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


def unavailable_reason(suite: str = SUITE, timeout: float = 15) -> str | None:
    """Why a root filesystem can't be debootstrapped here (not root, no debootstrap, no mirror)."""
    if os.geteuid() != 0:
        return "building the lab images needs root (debootstrap, chroot)"
    missing = [tool for tool in ("debootstrap", "tar", "chroot") if not shutil.which(tool)]
    if missing:
        return f"building the lab images needs {', '.join(missing)} (apt-get install debootstrap)"
    mirror = configured_mirror(suite=suite)
    if not mirror:
        return f"no Debian {suite} mirror in /etc/apt/sources.list(.d); set ${MIRROR_ENV}"
    url = f"{mirror.rstrip('/')}/dists/{suite}/Release"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            response.read(64)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return f"Debian mirror {mirror} unavailable ({url}: {exc})"
    return None


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
    """Deletes a (partial) debootstrap tree, unmounting first what debootstrap may have left mounted."""
    for point in _mountpoints_under(root):
        if subprocess.run(["umount", point], capture_output=True, check=False).returncode != 0:
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    if _mountpoints_under(root):
        raise LabImageError(f"cannot delete {root}: still mounted: {_mountpoints_under(root)}")
    shutil.rmtree(root, ignore_errors=True)


def debootstrap(root: Path, packages: Sequence[str], *, suite: str = SUITE, timeout: float = 900) -> None:
    """A minimal Debian `suite` with `packages` (no recommends) in `root`, trimmed."""
    reason = unavailable_reason(suite)
    if reason:
        raise LabImageError(reason)
    mirror = configured_mirror(suite=suite)
    assert mirror is not None
    command = ["debootstrap", "--variant=minbase", f"--include={','.join(packages)}", suite, str(root), mirror]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise LabImageError(f"{' '.join(command)} did not finish within {timeout:.0f}s") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
        log = root / "debootstrap" / "debootstrap.log"
        if log.is_file():
            tail += "\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise LabImageError(f"{' '.join(command)} failed ({done.returncode}):\n{tail}")
    if _mountpoints_under(root):
        raise LabImageError(f"debootstrap left mounts under {root}: {_mountpoints_under(root)}")
    for relative in (*TRIM, "dev", "run", "tmp"):
        path = root / relative
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        path.mkdir(parents=True, exist_ok=True)
    (root / "tmp").chmod(0o1777)
    (root / "run/lock").mkdir()  # /var/lock points here
    (root / "run/lock").chmod(0o1777)
    (root / "var/cache/apt/archives/partial").mkdir(parents=True, exist_ok=True)


def chroot(root: Path, *command: str) -> None:
    """Runs a command of the root filesystem inside it (a2enmod and the like)."""
    done = subprocess.run(["chroot", str(root), *command], capture_output=True, text=True, check=False, timeout=120)
    if done.returncode != 0:
        raise LabImageError(f"chroot {root} {' '.join(command)} failed: {(done.stdout + done.stderr).strip()}")


def package_version(root: Path, package: str) -> str:
    """The version dpkg installed of `package` in the root filesystem (epoch and Debian revision dropped)."""
    status = (root / "var/lib/dpkg/status").read_text(errors="replace")
    for stanza in status.split("\n\n"):
        if re.search(rf"^Package: {re.escape(package)}$", stanza, re.MULTILINE):
            found = re.search(r"^Version: (?:\d+:)?([^-+~\s]+)", stanza, re.MULTILINE)
            if found:
                return found.group(1)
    raise LabImageError(f"{package} is not installed in {root}")
