"""Preflight against real engines: facts gathered through the docker SDK, judged by `evaluate`.

Preflight only reads. On the shared engine the tests never label its node: they use an env value
no one else has (so no node matches), or list the node in nodes.names with takeOver, which counts
it as matching without touching it. Only the private netns swarm gets `env` labels, put back after.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import docker
import pytest
from docker.types import EndpointSpec

from components.names import ENV_LABEL_KEY
from components.node_labels import OWNER_LABEL_KEY, NodeEnvLabelProvider
from components.settings import StackSettings, parse_settings
from components.swarm import STACK_LABEL
from swarmops import preflight as preflight_module
from swarmops.preflight import Finding, PreflightError, evaluate, facts_from_docker_host, nodes_for_stack, preflight
from tests.support import stack_config

from . import harness

HOST_DOCKER_URL = os.environ.get("DOCKER_HOST") or harness.DOCKER_SOCKET
# Keeps the test's services pending: their spec publishes the port, no task ever binds it.
NOWHERE = "node.labels.wpswarm.test.nowhere==1"


def settings_for(docker_host: str, env_label: str, **groups: dict[str, Any]) -> StackSettings:
    """The dev stack's settings on another Docker host and env label."""
    config: dict[str, Any] = stack_config("dev") | {"dockerHost": docker_host, "envLabel": env_label}
    for group, members in groups.items():
        config[group] = {**(config.get(group) or {}), **members}
    return parse_settings(config)


def unique_env() -> str:
    return f"pf-{uuid.uuid4().hex[:8]}"


def checks(findings: list[Finding]) -> list[str]:
    return [f.check for f in findings]


def this_hostname(client: docker.DockerClient) -> str:
    node_id = str(client.info()["Swarm"]["NodeID"])
    return str(client.nodes.get(node_id).attrs["Description"]["Hostname"])


def publish(client: docker.DockerClient, image: str, res: harness.TestResources, port: int, stack: str | None) -> str:
    """A busybox service whose spec publishes `port` in host mode, labelled as `stack`'s if given."""
    name = res.name(f"pf-port-{port}")
    # {published: (target, protocol, mode)}; typeshed's stub types the values as strings, the API wants ints.
    ports: Any = {port: (80, "tcp", "host")}
    client.services.create(
        image,
        command=["sleep", "3600"],
        name=name,
        labels=res.labels | ({STACK_LABEL: stack} if stack else {}),
        container_labels=res.labels,
        endpoint_spec=EndpointSpec(ports=ports),
        constraints=[NOWHERE],
    )
    return name


# --------------------------------------------------------------------------- #
# the shared single-node engine
# --------------------------------------------------------------------------- #


def test_an_unlabelled_swarm_is_caught(engine: docker.DockerClient) -> None:
    env = unique_env()
    settings = settings_for(HOST_DOCKER_URL, env)
    facts = facts_from_docker_host(settings)
    assert (facts.unreachable, facts.swarm_state, facts.is_manager) == (None, "active", True)
    hostname = this_hostname(engine)
    assert hostname in {n.hostname for n in facts.nodes}

    (finding,) = evaluate(facts, settings, "dev")
    assert finding.check == "placement"
    assert hostname in finding.problem  # offered as a node to label
    with pytest.raises(PreflightError, match=re.escape(f"docker node update --label-add env={env} <node>")):
        preflight(settings, stack="dev", dry_run=False)


def test_a_port_published_by_another_service_is_caught(
    engine: docker.DockerClient, busybox_image: str, engine_resources: harness.TestResources
) -> None:
    theirs, ours = harness.free_tcp_port(), harness.free_tcp_port()
    intruder = publish(engine, busybox_image, engine_resources, theirs, stack=None)
    publish(engine, busybox_image, engine_resources, ours, stack="dev")
    # The node counts as this stack's through nodes.names + takeOver, without being labelled.
    nodes = {"names": [this_hostname(engine)], "takeOver": True}

    taken = settings_for(HOST_DOCKER_URL, unique_env(), wordpress={"port": theirs}, nodes=nodes)
    (finding,) = evaluate(facts_from_docker_host(taken), taken, "dev")
    assert finding.check == "port"
    assert intruder in finding.problem
    assert "host mode" in finding.problem
    assert "choose another wordpress-swarm:wordpress.port" in finding.fix

    # The stack's own service on its port is no conflict (a re-run of `pulumi up`).
    own = settings_for(HOST_DOCKER_URL, unique_env(), wordpress={"port": ours}, nodes=nodes)
    assert evaluate(facts_from_docker_host(own), own, "dev") == []
    # ... but it is someone else's for another stack.
    assert checks(evaluate(facts_from_docker_host(own), own, "prod")) == ["port"]


def test_an_unreachable_host_warns_in_a_preview_and_fails_an_update(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_for(f"unix:///run/wpswarm-no-such-{uuid.uuid4().hex[:6]}.sock", "test")
    facts = facts_from_docker_host(settings)
    assert facts.unreachable
    warnings: list[str] = []
    monkeypatch.setattr(preflight_module.pulumi.log, "warn", lambda message, *_a, **_k: warnings.append(message))
    preflight(settings, stack="dev", dry_run=True)
    assert len(warnings) == 1
    assert "cannot reach the Docker host" in warnings[0]
    with pytest.raises(PreflightError, match="wordpress-swarm:dockerHost"):
        preflight(settings, stack="dev", dry_run=False)


# --------------------------------------------------------------------------- #
# engines of the netns harness
# --------------------------------------------------------------------------- #


def test_a_host_not_in_swarm_mode_is_caught() -> None:
    reason = harness.netns_swarm_unavailable_reason()
    if reason:
        pytest.skip(reason)
    # The harness's engines always form a swarm: one that has left it is a plain dockerd.
    with harness.NetnsSwarm(nodes=1) as lone:
        lone.client.swarm.leave(force=True)
        settings = settings_for(lone.manager.base_url, "test")
        facts = facts_from_docker_host(settings)
        assert (facts.unreachable, facts.swarm_state) == (None, "inactive")
        with pytest.raises(PreflightError, match="docker swarm init") as raised:
            preflight(settings, stack="dev", dry_run=True)
        assert checks(raised.value.findings) == ["swarm-mode"]


@contextlib.contextmanager
def env_labels(client: docker.DockerClient, node_ids: Sequence[str], value: str) -> Iterator[None]:
    """env=<value> on the nodes for the test, each node's previous env label put back after."""
    before = {i: (client.nodes.get(i).attrs["Spec"].get("Labels") or {}).get("env") for i in node_ids}
    try:
        for node_id in node_ids:
            harness.set_node_labels(client, node_id, {"env": value})
        yield
    finally:
        for node_id, previous in before.items():
            harness.set_node_labels(client, node_id, {"env": previous})


@contextlib.contextmanager
def labels_put_back(client: docker.DockerClient, node_ids: Sequence[str], keys: Sequence[str]) -> Iterator[None]:
    """Whatever the test does to these labels of these nodes, they are as before afterwards."""
    before = {i: {k: (client.nodes.get(i).attrs["Spec"].get("Labels") or {}).get(k) for k in keys} for i in node_ids}
    try:
        yield
    finally:
        for node_id, labels in before.items():
            harness.set_node_labels(client, node_id, labels)


@contextlib.contextmanager
def availability(client: docker.DockerClient, node_id: str, value: str) -> Iterator[None]:
    node = client.nodes.get(node_id)
    previous = str(node.attrs["Spec"]["Availability"])
    node.update({**node.attrs["Spec"], "Availability": value})
    try:
        yield
    finally:
        node = client.nodes.get(node_id)
        node.update({**node.attrs["Spec"], "Availability": previous})


def test_preflight_sees_which_nodes_of_a_multi_node_swarm_match(netns_swarm: harness.NetnsSwarm) -> None:
    client = netns_swarm.client
    n1, n2, n3 = netns_swarm.nodes
    env = unique_env()
    # n2 is labelled by hand, n3 is listed for the stack to label (and holds MySQL's data), n1 is neither.
    settings = settings_for(
        netns_swarm.manager.base_url, env, nodes={"names": [n3.hostname]}, mysql={"dataNode": n3.hostname}
    )
    with env_labels(client, [n2.node_id], env):
        facts = facts_from_docker_host(settings)
        assert {n.hostname for n in facts.nodes} == {n1.hostname, n2.hostname, n3.hostname}
        assert {n.hostname for n in nodes_for_stack(facts, settings)} == {n2.hostname, n3.hostname}
        assert evaluate(facts, settings, "dev") == []

        with availability(client, n2.node_id, "pause"):
            paused = facts_from_docker_host(settings)
            assert {n.hostname for n in nodes_for_stack(paused, settings)} == {n3.hostname}

        # The data node must be one the constraint lets MySQL onto.
        on_n1 = settings_for(netns_swarm.manager.base_url, env, mysql={"dataNode": n1.hostname})
        (finding,) = evaluate(facts_from_docker_host(on_n1), on_n1, "dev")
        assert finding.check == "data-node"
        assert f"docker node update --label-add env={env} {n1.hostname}" in finding.fix

    # A worker cannot manage services: pointed at one, preflight says so.
    worker = settings_for(n2.base_url, env)
    assert checks(evaluate(facts_from_docker_host(worker), worker, "dev")) == ["swarm-manager"]


def test_a_changed_env_label_passes_preflight_on_the_nodes_the_stack_labelled(netns_swarm: harness.NetnsSwarm) -> None:
    # prod's case: the stack labels its nodes (nodes.names), then only envLabel changes.
    client = netns_swarm.client
    _n1, n2, n3 = netns_swarm.nodes
    url, old_env, new_env = netns_swarm.manager.base_url, unique_env(), unique_env()
    names = [n2.hostname, n3.hostname]
    provider = NodeEnvLabelProvider()
    inputs: dict[str, Any] = {
        "docker_host": url,
        "ssh_opts": [],
        "node_names": names,
        "value": old_env,
        "take_over": False,
        "label_key": ENV_LABEL_KEY,
        "owner": "wordpress-swarm/dev",
    }

    def labels() -> list[tuple[str | None, str | None]]:
        found = [client.nodes.get(n.node_id).attrs["Spec"].get("Labels") or {} for n in (n2, n3)]
        return [(f.get(ENV_LABEL_KEY), f.get(OWNER_LABEL_KEY)) for f in found]

    with labels_put_back(client, [n2.node_id, n3.node_id], [ENV_LABEL_KEY, OWNER_LABEL_KEY]):
        created = provider.create(dict(inputs))
        assert created.outs is not None
        marker = f"wordpress-swarm/dev#{created.id}"
        assert labels() == [(old_env, marker)] * 2

        # `pulumi up` with the new envLabel: preflight first, with the nodes still on the old value ...
        moved = settings_for(url, new_env, nodes={"names": names}, mysql={"dataNode": n3.hostname})
        facts = facts_from_docker_host(moved)
        assert evaluate(facts, moved, "dev") == []
        assert {n.hostname for n in nodes_for_stack(facts, moved, "wordpress-swarm/dev")} == set(names)
        preflight(moved, stack="dev", dry_run=False)
        # (for another stack of the project they are still another environment's)
        assert checks(evaluate(facts, moved, "staging")) == ["node-names", "node-names", "placement", "data-node"]

        # ... then the label resource's in-place update.
        updated = provider.update(created.id, created.outs, inputs | {"value": new_env})
        assert updated.outs is not None
        assert labels() == [(new_env, marker)] * 2

        provider.delete(created.id, updated.outs)
        assert labels() == [(None, None)] * 2
