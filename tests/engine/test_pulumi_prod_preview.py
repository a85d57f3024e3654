"""Prod's settings through the real CLI, providers and policy pack: a preview on this machine's swarm.

The mock engine validates nothing, so this is where prod's own values (ingress publishing, the
data-node pin, the log route, its limits and replicas) meet the provider's schema and the policy
pack. Only the Docker host (prod's is reached over ssh) and the node names point at this machine;
the preview changes nothing. What a preview can't show here is how ingress and the encrypted
overlay behave (no IPVS, no IPsec on this machine): those stay in docs/operations.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import docker
import pytest

from tests.support import stack_config

from . import harness
from .pulumi_cli import Project, Stack, disposable_stack, tail

STACK = f"pp{harness.SESSION_ID}"


@pytest.fixture(scope="module")
def prod_on_this_swarm(pulumi_project: Project, engine: docker.DockerClient) -> Iterator[Stack]:
    node = str(engine.info()["Name"])
    config: dict[str, Any] = stack_config("prod")
    config["dockerHost"] = harness.DOCKER_SOCKET
    # The node may carry another test stack's env label: a preview only plans the take-over.
    config["nodes"] = {"names": [node], "takeOver": True}
    config["mysql"] = {**config["mysql"], "dataNode": node}
    config["wordpress"] = {**config["wordpress"], "port": harness.free_tcp_port()}
    with disposable_stack(pulumi_project, STACK, engine) as stack:
        pulumi_project.stack(STACK, config)
        yield stack


def test_prods_values_pass_the_provider_and_the_policy_pack(prod_on_this_swarm: Stack) -> None:
    stack = prod_on_this_swarm
    result = stack.preview("--policy-pack", str(stack.project.policy_pack))
    assert "Loading policy packs...: done" in result.stdout, tail(result)
    planned = stack.preview_json()
    creates = {step["urn"].rsplit("::", 1)[1] for step in planned["steps"] if step["op"] == "create"}
    assert {"logging-logspout", "db-mysql", "site-wordpress", "node-env-label", "db-net"} <= creates
    wordpress = next(s for s in planned["steps"] if s["urn"].endswith("::site-wordpress"))
    (port,) = wordpress["newState"]["inputs"]["endpointSpec"]["ports"]
    assert port["publishMode"] == "ingress"
