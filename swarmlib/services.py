"""Services the operations tools act on: `scale` one, wait for its replicas, and one-shot tasks
(`run_like`): run a command once in the image, secrets, mounts, networks and placement of an
existing service, and collect how it ended. The operations tools use them to act where a stack's
data lives (on another node, over ssh) without a shell on that node: the swarm places the task.
"""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stackconfig.names import LABEL_PREFIX

if TYPE_CHECKING:
    from docker import DockerClient

ONESHOT_LABEL = f"{LABEL_PREFIX}oneshot"  # marks them, so a crashed tool's leftovers can be found
ENDED = ("complete", "failed", "rejected", "shutdown", "orphaned")


class OneShotError(RuntimeError):
    """The task could not be run or did not end in time."""


@dataclass(frozen=True)
class Ended:
    exit_code: int | None  # None: it never ran (rejected, no node)
    state: str
    error: str
    output: str  # stdout and stderr, in order
    seconds: float


def run_like(
    client: DockerClient,
    service: str,
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    writable: Sequence[str] = (),
    timeout: float = 1800,
) -> Ended:
    """Runs `args` once as a task shaped like `service` (its ContainerSpec's Args replaced, `env`
    added, the mounts at the `writable` targets made writable, no health check, no restart), waits
    for it to end and removes it."""
    spec = client.api.inspect_service(service)["Spec"]
    template: dict[str, Any] = copy.deepcopy(spec["TaskTemplate"])
    container: dict[str, Any] = template["ContainerSpec"]
    container["Args"] = list(args)
    container["Env"] = [*container.get("Env", []), *(f"{k}={v}" for k, v in (env or {}).items())]
    for mount in container.get("Mounts", []):
        if mount.get("Target") in writable:
            mount["ReadOnly"] = False
    container["Healthcheck"] = {"Test": ["NONE"]}
    container.pop("StopGracePeriod", None)
    template["RestartPolicy"] = {"Condition": "none", "MaxAttempts": 0}
    template.pop("ForceUpdate", None)
    name = f"{spec['Name'][:40]}-once-{uuid.uuid4().hex[:8]}"
    labels = {**spec.get("Labels", {}), ONESHOT_LABEL: service}
    created = client.api.create_service(template, name=name, labels=labels, mode={"Replicated": {"Replicas": 1}})
    started = time.monotonic()
    try:
        task = _wait_ended(client, str(created["ID"]), started + timeout)
        output = b"".join(client.api.service_logs(created["ID"], stdout=True, stderr=True, timestamps=False)).decode(
            errors="replace"
        )
        status = task["Status"]
        code = (status.get("ContainerStatus") or {}).get("ExitCode")
        return Ended(
            exit_code=code if isinstance(code, int) and status["State"] in ("complete", "failed") else None,
            state=str(status["State"]),
            error=str(status.get("Err", "")),
            output=output,
            seconds=time.monotonic() - started,
        )
    finally:
        client.api.remove_service(created["ID"])


def _wait_ended(client: DockerClient, service_id: str, deadline: float) -> dict[str, Any]:
    while True:
        tasks: list[dict[str, Any]] = client.api.tasks(filters={"service": service_id})
        ended = [t for t in tasks if t["Status"]["State"] in ENDED]
        if ended:
            return ended[0]
        if time.monotonic() > deadline:
            where = ", ".join(
                f"{t['Status']['State']} ({t['Status'].get('Err') or t['Status'].get('Message')})" for t in tasks
            )
            raise OneShotError(f"the one-shot task did not end in time: {where or 'no task yet'}")
        time.sleep(1)


def scale(client: DockerClient, service: str, replicas: int) -> int:
    """`docker service scale`: sets the replica count, changing nothing else (the SDK's
    Service.scale sends the spec with the engine's defaults filled in, which rolls every task).
    Returns the count it had."""
    raw = client.api.inspect_service(service)
    spec = raw["Spec"]
    before = int(spec["Mode"]["Replicated"]["Replicas"])
    spec["Mode"]["Replicated"]["Replicas"] = replicas
    api = client.api
    url = f"{api.base_url}/v{api.api_version}/services/{raw['ID']}/update"
    api.post(url, json=spec, params={"version": raw["Version"]["Index"]}).raise_for_status()
    return before


def wait_for_replicas(client: DockerClient, service: str, running: int, timeout: float = 600) -> None:
    """Until exactly `running` tasks of the service run (0: every container of it is gone)."""
    deadline = time.monotonic() + timeout
    while True:
        tasks: list[dict[str, Any]] = client.api.tasks(filters={"service": service, "desired-state": "running"})
        up = [t for t in tasks if t["Status"]["State"] == "running"]
        stopping = [
            t for t in client.api.tasks(filters={"service": service}) if t["Status"]["State"] in ("running", "starting")
        ]
        if len(up) == running and (running or not stopping):
            return
        if time.monotonic() > deadline:
            raise OneShotError(f"{service} did not reach {running} running task(s) in time")
        time.sleep(1)
