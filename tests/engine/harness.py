"""The real-engine tests' common ground: the machine's own engine (a single-node swarm that
scripts/engine-up.sh brings up, see `engine_client`), waiting, locks, free ports and names, and the
labels every test object carries so `cleanup_labelled` removes it again, even after a failure.

Beside it: images.py (images built here, since none can be pulled), tasks.py (services, tasks and
node labels on a swarm), netns.py (a private multi-node swarm in network namespaces).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import docker
from docker.errors import APIError, DockerException, NotFound

DOCKER_SOCKET = "unix:///var/run/docker.sock"
#: Written by scripts/engine-up.sh when no engine could be started; holds the reason.
UNAVAILABLE_FILE = Path(os.environ.get("WPSWARM_ENGINE_UNAVAILABLE_FILE", "/tmp/wpswarm-engine-unavailable"))

TEST_LABEL = "wpswarm.test"
SESSION_LABEL = "wpswarm.test.session"
CASE_LABEL = "wpswarm.test.case"
#: One id per Python process (pytest session); part of every label set and name.
SESSION_ID = uuid.uuid4().hex[:8]

#: Wall-clock timings (seconds) recorded by the harness; conftest prints them.
TIMINGS: dict[str, float] = {}
#: Other measured figures (sizes, counts), as text; conftest prints them too.
FIGURES: dict[str, str] = {}


_T = TypeVar("_T")


class HarnessError(RuntimeError):
    """The harness could not provide what was asked (engine, image, swarm)."""


def log(message: str) -> None:
    print(f"[wpswarm-harness] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- #
# generic helpers
# --------------------------------------------------------------------------- #


def wait_for(
    probe: Callable[[], _T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.25,
) -> _T:
    """Call ``probe`` until it returns something truthy; return that value.

    Exceptions raised by ``probe`` count as "not yet"; the last one is reported
    in the ``TimeoutError`` if the deadline passes.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = probe()
            if value:
                return value
            last = value
        except Exception as exc:
            last = exc
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


@contextlib.contextmanager
def exclusive_lock(path: Path, *, timeout: float | None = None) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` (created, with its folder) for the block; waited for
    without limit, or for up to ``timeout`` seconds (then ``TimeoutError``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        if timeout is None:
            fcntl.flock(fh, fcntl.LOCK_EX)
        else:
            wait_for(lambda: _try_lock(fh.fileno()), timeout=timeout, interval=0.5, what=f"the lock {path}")
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def unique_name(prefix: str) -> str:
    """A docker-object name that is unique per test run and per call."""
    return f"{prefix}-{SESSION_ID}-{uuid.uuid4().hex[:6]}"


def free_tcp_port() -> int:
    """A TCP port that is free on the host right now (for host-mode publishing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("0.0.0.0", 0))
        port: int = sock.getsockname()[1]
        return port


def run(args: Sequence[str], *, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise HarnessError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def tail_of(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:])


# --------------------------------------------------------------------------- #
# host engine
# --------------------------------------------------------------------------- #


def unavailable_marker() -> str | None:
    """The reason scripts/engine-up.sh recorded for having no engine, if any."""
    try:
        text = UNAVAILABLE_FILE.read_text().strip()
    except OSError:
        return None
    return text or "scripts/engine-up.sh reported the engine unavailable"


def engine_client(
    base_url: str | None = None,
    *,
    require_swarm_manager: bool = True,
    timeout: int = 60,
) -> docker.DockerClient | str:
    """A client for the machine's engine, or a human-readable reason why not.

    ``base_url`` defaults to ``$DOCKER_HOST`` or ``unix:///var/run/docker.sock``.
    With ``require_swarm_manager`` the engine must be an active swarm manager
    (``scripts/engine-up.sh`` makes it one).
    """
    url = base_url or os.environ.get("DOCKER_HOST") or DOCKER_SOCKET
    try:
        client = docker.DockerClient(base_url=url, timeout=timeout)
        client.ping()
    except (DockerException, OSError) as exc:
        marker = unavailable_marker()
        if marker:
            return f"Docker engine unavailable (from {UNAVAILABLE_FILE}): {marker}"
        return f"no Docker engine answers on {url} ({exc}); run scripts/engine-up.sh as root"
    if require_swarm_manager:
        swarm: dict[str, Any] = client.info().get("Swarm") or {}
        state = swarm.get("LocalNodeState")
        if state != "active":
            client.close()
            return f"Docker engine on {url} is not in a swarm (LocalNodeState={state!r}); run scripts/engine-up.sh"
        if not swarm.get("ControlAvailable"):
            client.close()
            return f"Docker engine on {url} is a swarm worker, not a manager"
    return client


# --------------------------------------------------------------------------- #
# labels, cleanup, service helpers
# --------------------------------------------------------------------------- #


def _label_filters(labels: Mapping[str, str]) -> list[str]:
    return [f"{k}={v}" for k, v in labels.items()]


@dataclass
class TestResources:
    """Labels and names for one test's docker objects, and their cleanup.

    Put ``labels`` on every service (``labels=`` *and* ``container_labels=``),
    secret, config, network and volume the test creates.
    """

    __test__ = False  # not a pytest test class

    client: docker.DockerClient
    case_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    @property
    def labels(self) -> dict[str, str]:
        return {TEST_LABEL: "1", SESSION_LABEL: SESSION_ID, CASE_LABEL: self.case_id}

    def name(self, prefix: str) -> str:
        return f"{prefix}-{self.case_id}"

    def cleanup(self) -> list[str]:
        return cleanup_labelled(self.client, {CASE_LABEL: self.case_id})


def cleanup_labelled(
    client: docker.DockerClient,
    labels: Mapping[str, str] | None = None,
    *,
    timeout: float = 60,
) -> list[str]:
    """Remove services, containers, secrets, configs, networks and volumes carrying ``labels``.

    Defaults to ``wpswarm.test=1`` -- which also hits concurrent test runs on a
    shared engine; tests should pass their session or case label instead.
    Returns a description of what was removed.
    """
    flt: dict[str, str | list[str] | bool] = {"label": _label_filters(labels or {TEST_LABEL: "1"})}
    removed: list[str] = []
    manager = bool((client.info().get("Swarm") or {}).get("ControlAvailable"))
    service_ids: list[str] = []
    if manager:
        for service in client.services.list(filters=flt):
            with contextlib.suppress(NotFound):
                service.remove()
                service_ids.append(str(service.id))
                removed.append(f"service {service.name}")
    for container in client.containers.list(all=True, filters=flt):
        with contextlib.suppress(NotFound):
            container.remove(force=True)
            removed.append(f"container {container.name}")
    for service_id in service_ids:  # kill task containers now rather than after their grace period
        task_filter: dict[str, str | list[str] | bool] = {"label": f"com.docker.swarm.service.id={service_id}"}
        for container in client.containers.list(all=True, filters=task_filter):
            with contextlib.suppress(NotFound, APIError):
                container.remove(force=True)
    if manager:
        for secret in client.secrets.list(filters=flt):
            with contextlib.suppress(NotFound):
                secret.remove()
                removed.append(f"secret {secret.name}")
        for config in client.configs.list(filters=flt):
            with contextlib.suppress(NotFound):
                config.remove()
                removed.append(f"config {config.name}")

    def remove_rest() -> bool:
        pending = 0
        for network in client.networks.list(filters=flt):
            try:
                network.remove()
                removed.append(f"network {network.name}")
            except NotFound:
                pass
            except APIError:
                pending += 1
        for volume in client.volumes.list(filters=flt):
            try:
                volume.remove(force=True)
                removed.append(f"volume {volume.name}")
            except NotFound:
                pass
            except APIError:
                pending += 1
        return pending == 0

    try:
        wait_for(remove_rest, timeout=timeout, interval=0.5, what=f"removal of networks/volumes labelled {flt}")
    except TimeoutError as exc:
        log(f"cleanup incomplete: {exc}")
    return removed
