"""A private multi-node swarm for the engine tests: one `dockerd` per Linux network namespace,
wired together by a bridge that lives in its own "switch" namespace. It never touches the host
engine, the host's iptables or its swarm; `reap_stale_netns_swarms` clears what a killed run left."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
from docker.errors import DockerException

from .harness import TIMINGS, HarnessError, exclusive_lock, log, run, tail_of, wait_for
from .images import BUSYBOX_TAG, copy_image, ensure_busybox_image

NETNS_STATE_ROOT = Path(os.environ.get("WPSWARM_NETNS_RUN_DIR", "/run/wpswarm-netns"))
NETNS_DATA_ROOT = Path(os.environ.get("WPSWARM_NETNS_DATA_DIR", "/var/lib/wpswarm-netns"))
_NETNS_LOCK = Path("/run/wpswarm-netns.lock")


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
        return run(["nsenter", f"--net=/run/netns/{self.netns}", "--", *args], check=False, timeout=timeout)


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
            run(["ip", "netns", "add", sw])
            run(["ip", "-n", sw, "link", "set", "lo", "up"])
            run(["ip", "-n", sw, "link", "add", "br0", "type", "bridge"])
            run(["ip", "-n", sw, "link", "set", "br0", "up"])
            run(["ip", "link", "add", self.host_veth, "type", "veth", "peer", "name", "host0", "netns", sw])
            run(["ip", "-n", sw, "link", "set", "host0", "master", "br0", "up"])
            run(["ip", "addr", "add", f"{base + 1}/{prefix}", "dev", self.host_veth])
            run(["ip", "link", "set", self.host_veth, "up"])
        for node in self.nodes:
            node.ip = str(base + 10 + node.index)
            ns = node.netns
            run(["ip", "netns", "add", ns])
            run(
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
            run(["ip", "-n", sw, "link", "set", f"n{node.index}", "master", "br0", "up"])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
            run(["ip", "-n", ns, "addr", "add", f"{node.ip}/{prefix}", "dev", "eth0"])
            run(["ip", "-n", ns, "link", "set", "eth0", "up"])
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
                        + tail_of(node.log_path)
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
                        f"log {node.log_path}:\n" + tail_of(node.log_path)
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
    out = run(["ip", "-4", "-o", "addr", "show"]).stdout + run(["ip", "-4", "route", "show"]).stdout
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
        proc = run(["umount", "-l", point], check=False)
        if proc.returncode != 0:
            problems.append(f"umount {point}: {proc.stderr.strip()}")
    # 4. network namespaces and the host veth.
    for ns in [n["netns"] for n in nodes] + [str(state["switch_netns"])]:
        if Path(f"/run/netns/{ns}").exists():
            proc = run(["ip", "netns", "del", ns], check=False)
            if proc.returncode != 0:
                problems.append(f"ip netns del {ns}: {proc.stderr.strip()}")
    if Path(f"/sys/class/net/{state['host_veth']}").exists():
        run(["ip", "link", "del", str(state["host_veth"])], check=False)
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
    # python -m tests.engine.netns reap  -- remove leftovers of killed test runs
    if sys.argv[1:] == ["reap"]:
        print(reap_stale_netns_swarms())
    else:
        print("usage: python -m tests.engine.netns reap", file=sys.stderr)
        sys.exit(2)
