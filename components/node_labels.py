"""NodeEnvLabel: the `env=<label>` node labels a stack deploys to, declared as code.

A Pulumi dynamic resource; its provider (swarmlib.label_provider) talks to the swarm through the
Docker SDK, on the same Docker host as the pulumi-docker provider, when Pulumi runs it, never while
the program is evaluated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi.dynamic

from components import PACKAGE
from swarmlib.claims import stack_owner
from swarmlib.label_provider import NodeEnvLabelProvider


@dataclass(frozen=True)
class NodeEnvLabelArgs:
    docker_host: str
    nodes: Sequence[str]  # hostnames or node IDs
    value: str  # the env label's value: the stack's envLabel
    take_over: bool = False
    ssh_opts: Sequence[str] = ()


class NodeEnvLabel(pulumi.dynamic.Resource, module=PACKAGE, name="NodeEnvLabel"):
    """`env=<value>` and the stack's ownership marker on the listed swarm nodes; `nodes` reports
    each one as last seen."""

    nodes: pulumi.Output[list[dict[str, str | None]]]
    swarm_id: pulumi.Output[str | None]

    def __init__(self, name: str, args: NodeEnvLabelArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        props: dict[str, Any] = {
            "docker_host": args.docker_host,
            "ssh_opts": list(args.ssh_opts),
            "node_names": list(args.nodes),
            "value": args.value,
            "take_over": args.take_over,
            # The provider runs in another process: the stack's identity travels in the inputs.
            "owner": stack_owner(pulumi.get_project(), pulumi.get_stack()),
            "swarm_id": None,  # outputs: declared so the attributes exist
            "nodes": None,
        }
        super().__init__(NodeEnvLabelProvider(), name, props, opts)
