"""LoggingDaemon: logspout on every node of the environment (`docker service create --mode global`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components import PACKAGE
from components.specs import (
    HealthCheck,
    Limits,
    placement,
    restart_policy,
    service_labels,
    service_options,
    stop_grace_period,
    task_resources,
)

DOCKER_SOCKET = "/var/run/docker.sock"

# logspout serves /health on its HTTP port (80) from its healthcheck module; the image is
# Alpine, so busybox wget is there to probe it. Docker runs the first probe one interval after
# the start: 10 s, not 30 s, so the daemon is healthy about when `up` returns (it can't wait for a
# global service), and a probe on the loopback every 10 s costs nothing.
LOGSPOUT_HEALTH = HealthCheck(
    test=("CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:80/health"),
    interval="10s",
    timeout="5s",
    retries=3,
    start_period="20s",
)


@dataclass(frozen=True)
class LoggingDaemonArgs:
    image: pulumi.Input[str]
    placement_constraints: Sequence[str]  # the nodes it runs on: one task on each
    route: str | None  # logspout route URI; None: it only serves its HTTP stream
    limits: Limits


def logging_service_args(args: LoggingDaemonArgs) -> docker.ServiceArgs:
    """One task on each node matching the constraint, none elsewhere; the socket bound read-only."""
    return docker.ServiceArgs(
        mode=docker.ServiceModeArgs(global_=True),
        labels=service_labels("logging"),
        task_spec=docker.ServiceTaskSpecArgs(
            container_spec=docker.ServiceTaskSpecContainerSpecArgs(
                image=args.image,
                # logspout takes its routes as arguments; with none it only serves its HTTP stream.
                args=[args.route] if args.route else None,
                # Its HTTP API (/logs streams every container's logs, POST /routes ships them
                # anywhere) has no authentication: only the loopback, where the health check probes.
                env={"HTTP_BIND_ADDRESS": "127.0.0.1"},
                mounts=[
                    docker.ServiceTaskSpecContainerSpecMountArgs(
                        type="bind", source=DOCKER_SOCKET, target=DOCKER_SOCKET, read_only=True
                    ),
                    # The syslog adapter's host name: the node's, not the container id.
                    docker.ServiceTaskSpecContainerSpecMountArgs(
                        type="bind", source="/etc/hostname", target="/etc/host_hostname", read_only=True
                    ),
                ],
                healthcheck=LOGSPOUT_HEALTH.args(),
                # Time to ship the lines it has read before it stops.
                stop_grace_period=stop_grace_period(10),
            ),
            placement=placement(args.placement_constraints),
            resources=task_resources(args.limits),
            restart_policy=restart_policy(),
        ),
        update_config=docker.ServiceUpdateConfigArgs(
            parallelism=1, delay="5s", order="stop-first", failure_action="rollback", monitor="30s"
        ),
    )


class LoggingDaemon(pulumi.ComponentResource):
    """logspout as a global service: one task on each node the constraints select."""

    service_name: pulumi.Output[str]

    def __init__(self, name: str, args: LoggingDaemonArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{PACKAGE}:logging:LoggingDaemon", name, None, opts)
        # Not exclusive: a second daemon beside the old one for a moment loses no lines.
        service = docker.Service(
            f"{name}-logspout", args=logging_service_args(args), opts=service_options(self, exclusive=False)
        )
        self.service_name = service.name
        self.register_outputs({"service_name": self.service_name})
