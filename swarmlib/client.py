"""Docker SDK clients for a stack's Docker host that can't hang.

For ssh:// the Docker SDK runs `ssh … docker system dial-stdio` and reads it with blocking reads:
its own timeout never applies. So every ssh the SDK runs gets options that make ssh give up (after
the operator's own, since ssh keeps the first value it sees: no prompt, a bounded connect, a dead
server noticed) and is itself cut after a deadline by coreutils' `timeout`, which covers a server
that answers ssh but whose Docker Engine never replies. Nothing waits in a thread: when the
deadline passes the read sees the end of the pipe and the call fails.
"""

from __future__ import annotations

import atexit
import os
import shlex
import shutil
import tempfile
from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from docker import DockerClient

LOCAL_SOCKET = "unix:///var/run/docker.sock"

# No prompts (CI has no terminal), a bounded connect, and a dead server noticed within ~30 s.
SSH_SAFETY_OPTIONS = (
    "-o",
    "BatchMode=yes",
    "-o",
    "ConnectTimeout=10",
    "-o",
    "ServerAliveInterval=10",
    "-o",
    "ServerAliveCountMax=3",
)


class DockerHostError(OSError):
    """The Docker host can't be reached or didn't answer in time."""


def resolve_host(docker_host: str | None) -> str:
    """The Docker host a client for `docker_host` talks to: it, else DOCKER_HOST, else the local socket."""
    return docker_host or os.environ.get("DOCKER_HOST") or LOCAL_SOCKET


def ssh_options(operator_opts: Sequence[str]) -> list[str]:
    """Every ssh to the Docker host, the provider's and ours: the operator's options first (ssh keeps
    the first value it sees), then the safety options."""
    return [*operator_opts, *SSH_SAFETY_OPTIONS]


def docker_client(
    docker_host: str | None = None, ssh_opts: Sequence[str] = (), *, timeout: int = 30, deadline: int = 120
) -> DockerClient:
    """A client for `docker_host` (default DOCKER_HOST, else the local socket). `timeout` bounds each
    API call; an ssh:// connection is also cut after `deadline` seconds, whatever it is doing. ssh://
    shells out to the ssh client, so the operator's ~/.ssh/config (keys, jump hosts, known hosts)
    applies as it does for the provider, with `ssh_opts` first."""
    import docker

    host = resolve_host(docker_host)
    if host.startswith("ssh://"):
        _ssh_wrapper_first_on_path(tuple(ssh_options(ssh_opts)), deadline)
        return docker.DockerClient(base_url=host, use_ssh_client=True, timeout=timeout)
    return docker.DockerClient(base_url=host, timeout=timeout)


def reachable_client(
    docker_host: str | None = None, ssh_opts: Sequence[str] = (), *, timeout: int = 30, deadline: int = 120
) -> DockerClient:
    """docker_client that has answered a ping, or DockerHostError saying why not."""
    from docker.errors import DockerException
    from requests.exceptions import RequestException

    host = resolve_host(docker_host)
    try:
        client = docker_client(host, ssh_opts, timeout=timeout, deadline=deadline)
        client.ping()
    except (DockerException, RequestException, OSError) as error:
        # docker 7.1 imports paramiko for any ssh:// host, even when it shells out to ssh.
        hint = "; pip install paramiko" if "paramiko" in str(error) else ""
        raise DockerHostError(f"cannot reach the Docker host {host}: {error}{hint}") from error
    return client


@cache
def _real_ssh() -> str:
    # Looked up once, before any wrapper of ours is on PATH, so wrappers never call each other.
    found = shutil.which("ssh")
    if found is None:
        raise DockerHostError("an ssh:// Docker host needs the ssh client on PATH")
    if shutil.which("timeout") is None:
        raise DockerHostError("an ssh:// Docker host needs coreutils' `timeout` on PATH (it bounds each connection)")
    return found


@cache
def _ssh_wrapper(ssh_opts: tuple[str, ...], deadline: int) -> str:
    """A directory holding an `ssh` that adds `ssh_opts` and dies after `deadline` seconds."""
    real_ssh = _real_ssh()
    directory = tempfile.mkdtemp(prefix="wordpress-swarm-ssh-")
    atexit.register(shutil.rmtree, directory, True)
    wrapper = os.path.join(directory, "ssh")
    with open(wrapper, "w") as script:
        script.write(
            f'#!/bin/sh\nexec timeout --kill-after=5 {deadline} {shlex.quote(real_ssh)} {shlex.join(ssh_opts)} "$@"\n'
        )
    os.chmod(wrapper, 0o755)
    _WRAPPERS.add(directory)
    return directory


_WRAPPERS: set[str] = set()


def _ssh_wrapper_first_on_path(ssh_opts: tuple[str, ...], deadline: int) -> None:
    # The SDK runs a bare `ssh` from PATH when it connects and has no way to pass options: this
    # client's wrapper goes first, and no other wrapper of ours stays on PATH, so options A, then B,
    # then A again run ssh with A's. One set of options at a time per process: a client connects
    # lazily, so one made for other options must have connected before this call.
    directory = _ssh_wrapper(ssh_opts, deadline)
    others = [entry for entry in os.environ.get("PATH", "").split(os.pathsep) if entry not in _WRAPPERS]
    os.environ["PATH"] = os.pathsep.join([directory, *others])
