"""Real-Docker-Engine test harness.

Two kinds of engine are offered to tests:

* the machine's own engine on ``/var/run/docker.sock`` (a single-node swarm that
  ``scripts/engine-up.sh`` brings up) -- see :func:`engine_client`;
* :class:`NetnsSwarm`, a private multi-node swarm: one ``dockerd`` per Linux
  network namespace, wired together by a bridge that lives in its own "switch"
  namespace.  It never touches the host engine, the host's iptables or its swarm.

Images cannot be pulled here, so :func:`ensure_busybox_image` builds a tiny image
from Debian's static busybox with ``docker import``.

Everything a test creates should carry :func:`TestResources.labels` so that
:func:`cleanup_labelled` can remove it again, even after a failure.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import docker
import pytest
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.models.containers import Container
from docker.models.images import Image
from docker.types import EndpointSpec

from swarmlib.claims import change_node_labels

DOCKER_SOCKET = "unix:///var/run/docker.sock"
#: Written by scripts/engine-up.sh when no engine could be started; holds the reason.
UNAVAILABLE_FILE = Path(os.environ.get("WPSWARM_ENGINE_UNAVAILABLE_FILE", "/tmp/wpswarm-engine-unavailable"))
BUSYBOX_TAG = "wpswarm-test/busybox:1"
BUSYBOX_BINARY = Path("/bin/busybox")

TEST_LABEL = "wpswarm.test"
SESSION_LABEL = "wpswarm.test.session"
CASE_LABEL = "wpswarm.test.case"
#: One id per Python process (pytest session); part of every label set and name.
SESSION_ID = uuid.uuid4().hex[:8]

#: Wall-clock timings (seconds) recorded by the harness; conftest prints them.
TIMINGS: dict[str, float] = {}

NETNS_STATE_ROOT = Path(os.environ.get("WPSWARM_NETNS_RUN_DIR", "/run/wpswarm-netns"))
NETNS_DATA_ROOT = Path(os.environ.get("WPSWARM_NETNS_DATA_DIR", "/var/lib/wpswarm-netns"))
_NETNS_LOCK = Path("/run/wpswarm-netns.lock")

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


def _run(args: Sequence[str], *, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise HarnessError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def _tail(path: Path, lines: int = 15) -> str:
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
# busybox image
# --------------------------------------------------------------------------- #


def _is_static_elf(path: Path) -> bool:
    """True for an ELF executable without a PT_INTERP header (statically linked)."""
    with path.open("rb") as fh:
        header = fh.read(64)
        if len(header) < 64 or header[:4] != b"\x7fELF" or header[4] != 2:  # ELFCLASS64
            return False
        order = "little" if header[5] == 1 else "big"
        phoff = int.from_bytes(header[0x20:0x28], order)
        phentsize = int.from_bytes(header[0x36:0x38], order)
        phnum = int.from_bytes(header[0x38:0x3A], order)
        fh.seek(phoff)
        table = fh.read(phentsize * phnum)
    pt_interp = 3
    return all(int.from_bytes(table[i * phentsize : i * phentsize + 4], order) != pt_interp for i in range(phnum))


def busybox_rootfs_tar(busybox: Path = BUSYBOX_BINARY) -> bytes:
    """A root filesystem tarball: static busybox, one symlink per applet, a few /etc files.

    ``/www/index.html`` holds ``ok`` so ``httpd -f -p 8080 -h /www`` serves something.
    """
    if not busybox.is_file():
        raise HarnessError(f"{busybox} not found: apt-get install busybox-static")
    if not _is_static_elf(busybox):
        raise HarnessError(f"{busybox} is not statically linked: apt-get install busybox-static")
    listing = _run([str(busybox), "--list"]).stdout.split()
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


def service_tasks(
    client: docker.DockerClient,
    service: str,
    *,
    desired_state: str | None = "running",
) -> list[dict[str, Any]]:
    """Tasks of ``service`` (name or id), by default only those meant to be running."""
    filters: dict[str, Any] = {"service": service}
    if desired_state:
        filters["desired-state"] = desired_state
    tasks: list[dict[str, Any]] = client.api.tasks(filters=filters)
    return tasks


def running_tasks(client: docker.DockerClient, service: str) -> list[dict[str, Any]]:
    """Tasks of ``service`` that are desired *and* actually running."""
    return [t for t in service_tasks(client, service) if t["Status"]["State"] == "running"]


def wait_running(
    client: docker.DockerClient,
    service: str,
    count: int,
    *,
    timeout: float = 60,
) -> list[dict[str, Any]]:
    """Wait until exactly ``count`` tasks of ``service`` run; return them.

    With a health check, swarm only reports a task "running" once it is healthy.
    """

    def probe() -> list[dict[str, Any]] | None:
        tasks = running_tasks(client, service)
        return tasks if len(tasks) == count and len(service_tasks(client, service)) == count else None

    try:
        return wait_for(probe, timeout=timeout, what=f"{count} running task(s) of {service}")
    except TimeoutError as exc:
        states = [
            (t["Status"]["State"], t["Status"].get("Err") or t["Status"].get("Message"))
            for t in service_tasks(client, service, desired_state=None)
        ]
        raise TimeoutError(f"{exc}; task states: {states}") from None


def service_filter(service_id: str) -> dict[str, str | list[str] | bool]:
    """``containers.list(filters=...)`` for the task containers of one service."""
    return {"label": f"com.docker.swarm.service.id={service_id}"}


def host_port_endpoint(published: int, target: int, protocol: str = "tcp") -> EndpointSpec:
    """Host-mode port publishing (the ingress routing mesh needs IPVS, absent here)."""
    spec = EndpointSpec()
    spec["Ports"] = [{"Protocol": protocol, "PublishedPort": published, "TargetPort": target, "PublishMode": "host"}]
    return spec


def exec_output(container: Container, cmd: Sequence[str]) -> tuple[int, str]:
    """``docker exec`` ``cmd`` in ``container``; return (exit code, decoded stdout+stderr)."""
    result = container.exec_run(list(cmd))
    output = result.output
    text = output.decode(errors="replace") if isinstance(output, bytes) else b"".join(output).decode(errors="replace")
    return int(result.exit_code or 0), text


def task_container_id(task: Mapping[str, Any]) -> str:
    return str(task["Status"]["ContainerStatus"]["ContainerID"])


def container_health(client: docker.DockerClient, container_id: str) -> str | None:
    """``healthy`` / ``unhealthy`` / ``starting``, or None without a health check."""
    health = (client.api.inspect_container(container_id).get("State") or {}).get("Health")
    return str(health["Status"]) if health else None


def set_node_labels(client: docker.DockerClient, node_id: str, labels: Mapping[str, str | None]) -> None:
    """Add/replace node labels; a value of None removes the label."""
    change_node_labels(client, node_id, lambda _current: labels)


def local_node_id(client: docker.DockerClient) -> str:
    return str(client.info()["Swarm"]["NodeID"])


def _env_label(client: docker.DockerClient, node_id: str) -> str | None:
    return (client.nodes.get(node_id).attrs["Spec"].get("Labels") or {}).get("env")


@contextlib.contextmanager
def env_label_on(client: docker.DockerClient, node_ids: Sequence[str], value: str) -> Iterator[None]:
    """Labels nodes env=<value> for the test; removes the label afterwards if it is still ours.
    A node labelled env by someone else is left alone: wait a while for it to be freed, then skip."""
    try:
        wait_for(
            lambda: all(_env_label(client, n) is None for n in node_ids), timeout=60, interval=1, what="free env label"
        )
    except TimeoutError:
        taken = {n[:12]: _env_label(client, n) for n in node_ids}
        pytest.skip(f"node(s) already labelled env by someone else {taken}; not overwriting")
    try:
        for node_id in node_ids:
            set_node_labels(client, node_id, {"env": value})
        yield
    finally:
        for node_id in node_ids:
            with contextlib.suppress(DockerException):
                if _env_label(client, node_id) == value:
                    set_node_labels(client, node_id, {"env": None})


#: Serialises the tests that label the machine's (shared) node across concurrent pytest runs.
ENV_LABEL_LOCK = Path(tempfile.gettempdir()) / "wpswarm-verify-env-label.lock"


def shared_node_lock(timeout: float = 180) -> contextlib.AbstractContextManager[None]:
    return exclusive_lock(ENV_LABEL_LOCK, timeout=timeout)


@contextlib.contextmanager
def local_node_labelled(client: docker.DockerClient, value: str) -> Iterator[str]:
    """env=<value> on the engine's own node for the block, under :func:`shared_node_lock`."""
    with shared_node_lock(), env_label_on(client, [local_node_id(client)], value):
        yield value


def scale(client: docker.DockerClient, service: str, replicas: int) -> None:
    """`docker service scale`: the current spec with only the replica count changed. (The SDK's
    Service.scale sends the spec with the daemon's defaults filled in, which differs from the
    stored one and rolls every task.)"""
    api = client.api
    raw = api.inspect_service(service)
    spec = raw["Spec"]
    spec["Mode"]["Replicated"]["Replicas"] = replicas
    url = f"{api.base_url}/v{api.api_version}/services/{raw['ID']}/update"
    api.post(url, json=spec, params={"version": raw["Version"]["Index"]}).raise_for_status()


# --------------------------------------------------------------------------- #
# multi-node swarm in network namespaces
# --------------------------------------------------------------------------- #


def netns_swarm_unavailable_reason() -> str | None:
    """Why a :class:`NetnsSwarm` cannot be built here, or None if it probably can."""
    if os.geteuid() != 0:
        return "the netns swarm needs root (ip netns, dockerd)"
    missing = [
        tool
        for tool in ("ip", "unshare", "nsenter", "hostname", "dockerd", "containerd", "runc")
        if not shutil.which(tool)
    ]
    if missing:
        return f"the netns swarm needs {', '.join(missing)} on PATH (scripts/engine-up.sh installs them)"
    if not Path("/sys/fs/cgroup").is_dir():
        return "no /sys/fs/cgroup: dockerd cannot run containers here"
    return None


@dataclass
class SwarmNode:
    """One dockerd of a :class:`NetnsSwarm`."""

    index: int
    hostname: str
    netns: str
    ip: str
    socket: Path
    data_dir: Path
    exec_dir: Path
    cgroup_parent: str
    pid: int = 0
    node_id: str = ""
    _client: docker.DockerClient | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            raise HarnessError(f"{self.hostname}: engine not started")
        return self._client

    @property
    def log_path(self) -> Path:
        return self.data_dir / "dockerd.log"

    def run_in_netns(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run a host command inside this node's network namespace (e.g. ``wget`` a published port)."""
        return _run(["nsenter", f"--net=/run/netns/{self.netns}", "--", *args], check=False, timeout=timeout)


class NetnsSwarm:
    """A private N-node swarm: one dockerd per network namespace, bridged together.

    Topology (``tag`` is random per instance, so parallel runs do not clash)::

        host netns: veth wpsw<tag>h (<subnet>.1) --+
        netns wpsw-<tag>-sw: bridge br0 -----------+-- veth eth0 in netns wpsw-<tag>-n1 (<subnet>.11)
                                                   +-- ...                          -nN (<subnet>.1N)

    The bridge sits in its own namespace so the host's iptables (FORWARD DROP,
    br_netfilter) never sees node-to-node traffic.  Each node gets its own UTS
    namespace (hostname ``<hostname_prefix><i>``), data-root, exec-root (hence
    its own containerd), socket, pidfile, trust key and cgroup parent.  docker0,
    docker_gwbridge and iptables rules live inside the node's namespace, so they
    clash with nothing; host-mode published ports answer on ``node.ip`` from the
    host and from other nodes.  Nodes have no default route (registry look-ups
    fail at once) and run with ``DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1``.
    Node 1 is the leader; ``managers`` nodes are managers, the rest workers.
    The busybox image is loaded into every node; :meth:`distribute_image`
    copies more.

    Use as a context manager, or call :meth:`start` / :meth:`close`.  Teardown
    is best-effort and also runs for leftovers of dead processes (see
    :func:`reap_stale_netns_swarms`).
    """

    def __init__(
        self,
        nodes: int = 3,
        *,
        managers: int = 1,
        subnet: str | None = None,
        hostname_prefix: str = "wpsw-node",
        image_tag: str = BUSYBOX_TAG,
        default_addr_pool: str = "10.214.0.0/16",
        startup_timeout: float = 60,
    ) -> None:
        if not 1 <= managers <= nodes <= 9:
            raise ValueError("need 1 <= managers <= nodes <= 9")
        self.size = nodes
        self.managers = managers
        self.requested_subnet = subnet
        self.hostname_prefix = hostname_prefix
        self.image_tag = image_tag
        self.default_addr_pool = default_addr_pool
        self.startup_timeout = startup_timeout
        self.tag = uuid.uuid4().hex[:6]
        self.nodes: list[SwarmNode] = []
        self.subnet: ipaddress.IPv4Network | None = None
        self.timings: dict[str, float] = {}
        self.run_dir = NETNS_STATE_ROOT / self.tag
        self.data_root = NETNS_DATA_ROOT / self.tag
        self.switch_netns = f"wpsw-{self.tag}-sw"
        self.host_veth = f"wpsw{self.tag}h"
        self._procs: list[subprocess.Popen[bytes]] = []
        self._closed = False

    # -- public API -----------------------------------------------------------

    @property
    def manager(self) -> SwarmNode:
        return self.nodes[0]

    @property
    def client(self) -> docker.DockerClient:
        """Client of the leader (a manager): create services, secrets, networks here."""
        return self.manager.client

    @property
    def host_ip(self) -> str:
        """The host's address on the swarm subnet (reachable from the nodes)."""
        assert self.subnet is not None
        return str(self.subnet.network_address + 1)

    def node(self, key: str | int) -> SwarmNode:
        """A node by 1-based index, hostname or swarm node id."""
        for node in self.nodes:
            if key in (node.index, node.hostname, node.node_id):
                return node
        raise KeyError(key)

    def __enter__(self) -> NetnsSwarm:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> NetnsSwarm:
        reason = netns_swarm_unavailable_reason()
        if reason:
            raise HarnessError(reason)
        reap_stale_netns_swarms()
        t0 = time.monotonic()
        try:
            self._setup_network()
            t1 = time.monotonic()
            self._start_engines()
            t2 = time.monotonic()
            self._form_swarm()
            t3 = time.monotonic()
            self._load_images()
            t4 = time.monotonic()
        except BaseException:
            log(f"netns swarm {self.tag}: start failed, tearing down")
            self.close()
            raise
        self.timings = {
            "network": t1 - t0,
            "dockerds": t2 - t1,
            "swarm init/join": t3 - t2,
            "image load": t4 - t3,
            "total": t4 - t0,
        }
        TIMINGS[f"netns swarm start ({self.size} nodes)"] = t4 - t0
        log(
            f"netns swarm {self.tag} up in {t4 - t0:.1f}s "
            + ", ".join(f"{k} {v:.1f}s" for k, v in self.timings.items() if k != "total")
            + f"; nodes {[(n.hostname, n.ip, n.node_id) for n in self.nodes]}"
        )
        return self

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        started = time.monotonic()
        # Graceful part first, while the engines still answer.
        for node in self.nodes:
            if node._client is None:
                continue
            with contextlib.suppress(Exception):
                if node.index == 1:
                    for service in node.client.services.list():
                        service.remove()
        for node in self.nodes:
            if node._client is None:
                continue
            with contextlib.suppress(Exception):
                for container in node.client.containers.list(all=True):
                    container.remove(force=True)

        def leave(node: SwarmNode) -> None:
            with contextlib.suppress(Exception):
                node.client.swarm.leave(force=True)

        live = [n for n in self.nodes if n._client is not None]
        threads = [threading.Thread(target=leave, args=(n,)) for n in live if n.index != 1]  # in parallel
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        for node in live:
            if node.index == 1:  # the leader last
                leave(node)
        for node in live:
            with contextlib.suppress(Exception):
                node.client.close()
            node._client = None
        problems = _teardown_state(self._state())
        for proc in self._procs:
            with contextlib.suppress(Exception):
                proc.wait(timeout=1)
        elapsed = time.monotonic() - started
        TIMINGS[f"netns swarm teardown ({self.size} nodes)"] = elapsed
        log(f"netns swarm {self.tag} torn down in {elapsed:.1f}s" + (f"; problems: {problems}" if problems else ""))

    def distribute_image(self, tag: str, source: docker.DockerClient | None = None) -> None:
        """Copy image ``tag`` into every node (from ``source``, or from node 1 to the others)."""
        if source is None:
            copy_image(self.nodes[0].client, [n.client for n in self.nodes[1:]], tag)
        else:
            copy_image(source, [n.client for n in self.nodes], tag)

    # -- internals ------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        return {
            "tag": self.tag,
            "owner_pid": os.getpid(),
            "host_veth": self.host_veth,
            "switch_netns": self.switch_netns,
            "run_dir": str(self.run_dir),
            "data_root": str(self.data_root),
            "nodes": [
                {
                    "netns": n.netns,
                    "socket": str(n.socket),
                    "pid": n.pid,
                    "exec_dir": str(n.exec_dir),
                    "data_dir": str(n.data_dir),
                    "cgroup_parent": n.cgroup_parent,
                }
                for n in self.nodes
            ],
        }

    def _save_state(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.run_dir / "state.json.tmp"
        tmp.write_text(json.dumps(self._state(), indent=1))
        tmp.replace(self.run_dir / "state.json")

    def _setup_network(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for i in range(1, self.size + 1):
            self.nodes.append(
                SwarmNode(
                    index=i,
                    hostname=f"{self.hostname_prefix}{i}",
                    netns=f"wpsw-{self.tag}-n{i}",
                    ip="",
                    socket=self.run_dir / f"n{i}.sock",
                    data_dir=self.data_root / f"n{i}",
                    exec_dir=self.run_dir / f"n{i}",
                    cgroup_parent=f"/wpsw-{self.tag}-n{i}",
                )
            )
        self._save_state()  # from here on, teardown knows every name
        with exclusive_lock(_NETNS_LOCK):
            subnet = _pick_subnet(self.requested_subnet)
            self.subnet = subnet
            prefix = subnet.prefixlen
            base = subnet.network_address
            sw = self.switch_netns
            _run(["ip", "netns", "add", sw])
            _run(["ip", "-n", sw, "link", "set", "lo", "up"])
            _run(["ip", "-n", sw, "link", "add", "br0", "type", "bridge"])
            _run(["ip", "-n", sw, "link", "set", "br0", "up"])
            _run(["ip", "link", "add", self.host_veth, "type", "veth", "peer", "name", "host0", "netns", sw])
            _run(["ip", "-n", sw, "link", "set", "host0", "master", "br0", "up"])
            _run(["ip", "addr", "add", f"{base + 1}/{prefix}", "dev", self.host_veth])
            _run(["ip", "link", "set", self.host_veth, "up"])
        for node in self.nodes:
            node.ip = str(base + 10 + node.index)
            ns = node.netns
            _run(["ip", "netns", "add", ns])
            _run(
                [
                    "ip",
                    "link",
                    "add",
                    "eth0",
                    "netns",
                    ns,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    f"n{node.index}",
                    "netns",
                    sw,
                ]
            )
            _run(["ip", "-n", sw, "link", "set", f"n{node.index}", "master", "br0", "up"])
            _run(["ip", "-n", ns, "link", "set", "lo", "up"])
            _run(["ip", "-n", ns, "addr", "add", f"{node.ip}/{prefix}", "dev", "eth0"])
            _run(["ip", "-n", ns, "link", "set", "eth0", "up"])
            # No default route on purpose: registry look-ups then fail at once
            # ("network unreachable") instead of timing out.

    def _start_engines(self) -> None:
        script = 'h="$1"; ns="$2"; shift 2; hostname "$h" && exec nsenter --net="$ns" -- "$@"'
        for node in self.nodes:
            node.data_dir.mkdir(parents=True, exist_ok=True)
            node.exec_dir.mkdir(parents=True, exist_ok=True)
            config = node.data_dir / "daemon.json"
            # Own trust key: otherwise every node reports the host's /etc/docker/key.json engine ID.
            config.write_text(json.dumps({"deprecated-key-path": str(node.data_dir / "key.json")}))
            cmd = [
                "unshare", "--uts", "--", "sh", "-c", script, "wpswarm-node", node.hostname, f"/run/netns/{node.netns}",
                "dockerd",
                "--config-file", str(config),
                "--data-root", str(node.data_dir / "docker"),
                "--exec-root", str(node.exec_dir),
                "--pidfile", str(node.exec_dir / "dockerd.pid"),
                "-H", node.base_url,
                "--cgroup-parent", node.cgroup_parent,
                "--exec-opt", "native.cgroupdriver=cgroupfs",
            ]  # fmt: skip
            with node.log_path.open("ab") as logfile:
                proc = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=logfile,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    # Swarm tasks use the local image instead of trying a registry first.
                    env={**os.environ, "DOCKER_SERVICE_PREFER_OFFLINE_IMAGE": "1"},
                )
            self._procs.append(proc)
            node.pid = proc.pid  # unshare, sh and nsenter all exec: this is dockerd's pid
        self._save_state()
        deadline = time.monotonic() + self.startup_timeout
        for node, proc in zip(self.nodes, self._procs, strict=True):
            while True:
                if proc.poll() is not None:
                    raise HarnessError(
                        f"dockerd for {node.hostname} exited with {proc.returncode}; log {node.log_path}:\n"
                        + _tail(node.log_path)
                    )
                if node.socket.exists():
                    try:
                        client = docker.DockerClient(base_url=node.base_url, timeout=60)
                        client.ping()
                        node._client = client
                        break
                    except (DockerException, OSError):
                        pass
                if time.monotonic() > deadline:
                    raise HarnessError(
                        f"dockerd for {node.hostname} did not answer within {self.startup_timeout:.0f}s; "
                        f"log {node.log_path}:\n" + _tail(node.log_path)
                    )
                time.sleep(0.1)

    def _form_swarm(self) -> None:
        leader = self.nodes[0]
        leader.client.swarm.init(
            advertise_addr=leader.ip,
            listen_addr=f"{leader.ip}:2377",
            default_addr_pool=[self.default_addr_pool],
            subnet_size=24,
        )
        leader.client.swarm.reload()
        tokens: dict[str, str] = leader.client.swarm.attrs["JoinTokens"]
        for node in self.nodes[1:]:
            role = "Manager" if node.index <= self.managers else "Worker"
            node.client.swarm.join(
                remote_addrs=[f"{leader.ip}:2377"],
                join_token=tokens[role],
                advertise_addr=node.ip,
                listen_addr=f"{node.ip}:2377",
            )
        for node in self.nodes:
            node.node_id = str(node.client.info()["Swarm"]["NodeID"])

        def all_ready() -> bool:
            listed = leader.client.api.nodes()
            ready = {n["ID"] for n in listed if n["Status"]["State"] == "ready"}
            return ready >= {n.node_id for n in self.nodes}

        wait_for(all_ready, timeout=self.startup_timeout, what=f"{self.size} swarm nodes ready")

    def _load_images(self) -> None:
        ensure_busybox_image(self.nodes[0].client, self.image_tag)
        if self.size > 1:
            self.distribute_image(self.image_tag)


def _pick_subnet(requested: str | None) -> ipaddress.IPv4Network:
    """``requested`` if set and free on the host, else the first free 10.213.N.0/24 (N >= 77)."""
    out = _run(["ip", "-4", "-o", "addr", "show"]).stdout + _run(["ip", "-4", "route", "show"]).stdout
    used: list[ipaddress.IPv4Network] = []
    for word in out.split():
        with contextlib.suppress(ValueError):
            if word[0].isdigit() and ("/" in word or word.count(".") == 3):
                used.append(ipaddress.IPv4Network(word, strict=False))
    candidates = (
        [ipaddress.IPv4Network(requested)]
        if requested
        else [ipaddress.IPv4Network(f"10.213.{n}.0/24") for n in range(77, 255)]
    )
    for candidate in candidates:
        if not any(candidate.overlaps(u) for u in used if u.prefixlen > 0):
            return candidate
    raise HarnessError(f"no free subnet among {candidates[0]}... (host uses {sorted(set(map(str, used)))})")


def _pid_alive(pid: int) -> bool:
    """True while ``pid`` runs; zombies count as dead (and our own children get reaped)."""
    if pid <= 0:
        return False
    with contextlib.suppress(ChildProcessError, OSError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _pids_mentioning(needles: Sequence[str]) -> list[int]:
    """Live processes whose command line contains one of ``needles`` (our unique paths)."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            cmd = _cmdline(int(entry.name))
            if any(n in cmd for n in needles):
                found.append(int(entry.name))
    return found


def _mountpoints_under(roots: Sequence[str]) -> list[str]:
    points: list[str] = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4].encode().decode("unicode_escape")
            if any(point == r or point.startswith(r.rstrip("/") + "/") for r in roots):
                points.append(point)
    return sorted(set(points), key=len, reverse=True)


def _cgroup_mounts() -> list[str]:
    mounts: list[str] = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            left, _, right = line.partition(" - ")
            if right.split()[0] in ("cgroup", "cgroup2"):
                mounts.append(left.split()[4])
    return mounts


def _teardown_state(state: Mapping[str, Any]) -> list[str]:
    """Remove everything a NetnsSwarm recorded: processes, mounts, netns, veth, dirs, cgroups."""
    problems: list[str] = []
    nodes: list[dict[str, Any]] = list(state.get("nodes") or [])
    # 1. stop dockerd (it stops its containerd); SIGKILL after a grace period.
    pids = [int(n["pid"]) for n in nodes if n.get("pid") and n["socket"] in _cmdline(int(n["pid"]))]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    while any(_pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    # 2. anything still running from our directories (dockerd, containerd, shims): kill by pid.
    needles = [str(state["run_dir"]), str(state["data_root"])]
    for _ in range(3):
        leftovers = _pids_mentioning(needles)
        if not leftovers:
            break
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.3)
    # 3. mounts under our directories (overlay2 layers, netns bind mounts).
    for point in _mountpoints_under(needles):
        proc = _run(["umount", "-l", point], check=False)
        if proc.returncode != 0:
            problems.append(f"umount {point}: {proc.stderr.strip()}")
    # 4. network namespaces and the host veth.
    for ns in [n["netns"] for n in nodes] + [str(state["switch_netns"])]:
        if Path(f"/run/netns/{ns}").exists():
            proc = _run(["ip", "netns", "del", ns], check=False)
            if proc.returncode != 0:
                problems.append(f"ip netns del {ns}: {proc.stderr.strip()}")
    if Path(f"/sys/class/net/{state['host_veth']}").exists():
        _run(["ip", "link", "del", str(state["host_veth"])], check=False)
    # 5. cgroups created for --cgroup-parent.
    for mount in _cgroup_mounts():
        for node in nodes:
            top = Path(mount + node["cgroup_parent"])
            if not top.is_dir():
                continue
            for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda w: len(w[0]), reverse=True):
                try:
                    os.rmdir(dirpath)
                except OSError as exc:
                    problems.append(f"rmdir {dirpath}: {exc}")
    # 6. directories (data last: it held the logs).
    for directory in (str(state["run_dir"]), str(state["data_root"])):
        if Path(directory).exists():
            shutil.rmtree(directory, ignore_errors=True)
            if Path(directory).exists():
                problems.append(f"could not remove {directory}")
    return problems


def reap_stale_netns_swarms() -> list[str]:
    """Tear down NetnsSwarms whose owning process is gone (e.g. a killed pytest)."""
    reaped: list[str] = []
    if not NETNS_STATE_ROOT.is_dir():
        return reaped
    for state_file in NETNS_STATE_ROOT.glob("*/state.json"):
        try:
            state: dict[str, Any] = json.loads(state_file.read_text())
        except (OSError, ValueError):
            continue
        if _pid_alive(int(state.get("owner_pid") or 0)):
            continue
        problems = _teardown_state(state)
        reaped.append(str(state.get("tag")))
        log(f"reaped stale netns swarm {state.get('tag')}" + (f"; problems: {problems}" if problems else ""))
    return reaped


if __name__ == "__main__":
    # python tests/engine/harness.py reap  -- remove leftovers of killed test runs
    if sys.argv[1:] == ["reap"]:
        print(reap_stale_netns_swarms())
    else:
        print("usage: harness.py reap", file=sys.stderr)
        sys.exit(2)
