"""Connecting to a stack's Docker host the way the pulumi-docker provider does, without hanging.

For ssh:// the Docker SDK runs `ssh … docker system dial-stdio` and reads it with blocking reads:
its own timeout never applies, so an ssh that waits at a prompt or on a silent server would hang
`pulumi preview` for ever. Every ssh:// connection therefore gets options that make ssh give up
(after the operator's own, since ssh keeps the first value it sees), and callers that must finish
put a deadline around the whole exchange.
"""

from __future__ import annotations

import atexit
import os
import shlex
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from functools import cache
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from docker import DockerClient

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

T = TypeVar("T")


def ssh_options(operator_opts: Sequence[str]) -> list[str]:
    """Every ssh to the Docker host, the provider's and ours: the operator's options first (ssh keeps
    the first value it sees), then the safety options."""
    return [*operator_opts, *SSH_SAFETY_OPTIONS]


def docker_client(docker_host: str, ssh_opts: Sequence[str] = (), timeout: int = 30) -> DockerClient:
    """A client for `docker_host`. ssh:// shells out to the ssh client, so the operator's ~/.ssh/config
    (keys, jump hosts, known hosts) applies as it does for the provider, with `ssh_opts` first."""
    import docker

    if docker_host.startswith("ssh://"):
        _ssh_wrapper_first_on_path(tuple(ssh_options(ssh_opts)))
        return docker.DockerClient(base_url=docker_host, use_ssh_client=True, timeout=timeout)
    return docker.DockerClient(base_url=docker_host, timeout=timeout)


@cache
def _real_ssh() -> str:
    # Looked up once, before any wrapper of ours is on PATH, so wrappers never call each other.
    found = shutil.which("ssh")
    if found is None:
        raise OSError("an ssh:// Docker host needs the ssh client on PATH")
    return found


@cache
def _ssh_wrapper(ssh_opts: tuple[str, ...]) -> str:
    """A directory holding an `ssh` that adds `ssh_opts`; one per set of options."""
    real_ssh = _real_ssh()
    directory = tempfile.mkdtemp(prefix="wordpress-swarm-ssh-")
    atexit.register(shutil.rmtree, directory, True)
    wrapper = os.path.join(directory, "ssh")
    with open(wrapper, "w") as script:
        script.write(f'#!/bin/sh\nexec {shlex.quote(real_ssh)} {shlex.join(ssh_opts)} "$@"\n')
    os.chmod(wrapper, 0o755)
    _WRAPPERS.add(directory)
    return directory


_WRAPPERS: set[str] = set()


def _ssh_wrapper_first_on_path(ssh_opts: tuple[str, ...]) -> None:
    # The SDK runs a bare `ssh` from PATH when it connects and has no way to pass options: this
    # client's wrapper goes first, and no other wrapper of ours stays on PATH, so options A, then B,
    # then A again run ssh with A's. One set of options at a time per process: a client connects
    # lazily, so one made for other options must have connected before this call.
    directory = _ssh_wrapper(ssh_opts)
    others = [entry for entry in os.environ.get("PATH", "").split(os.pathsep) if entry not in _WRAPPERS]
    os.environ["PATH"] = os.pathsep.join([directory, *others])


def within(seconds: float, work: Callable[[], T], what: str) -> T:
    """Runs `work` and returns its result, or raises TimeoutError after `seconds`. The work goes on
    in a daemon thread that cannot be stopped; it must not hold anything the caller needs."""
    outcome: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            outcome.append(work())
        except BaseException as error:  # handed to the caller's thread as is
            failure.append(error)

    worker = threading.Thread(target=run, name=f"deadline: {what}", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise TimeoutError(f"{what} did not answer within {seconds:g} s")
    if failure:
        raise failure[0]
    return outcome[0]
