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

from stackconfig.names import ENV_LABEL_KEY, STACK_LABEL
from stackconfig.settings import StackSettings
from swarmlib.claims import owner_key
from swarmlib.client import DockerHostError
from swarmlib.label_provider import NodeEnvLabelProvider
from swarmlib.preflight import PreflightError, evaluate, nodes_for_stack, preflight, read_swarm
from tests.support import checks, of_stack, run_as, settings_of

from . import harness, netns, swarm_tasks

HOST_DOCKER_URL = os.environ.get("DOCKER_HOST") or harness.DOCKER_SOCKET
# Keeps the test's services pending: their spec publishes the port, no task ever binds it.
NOWHERE = "node.labels.wpswarm.test.nowhere==1"


def settings_for(docker_host: str, env_label: str, **groups: dict[str, Any]) -> StackSettings:
    """The dev stack's settings on another Docker host and env label."""
    return settings_of("dev", {"dockerHost": docker_host, "envLabel": env_label}, **groups)


def unique_env() -> str:
    return f"pf-{uuid.uuid4().hex[:8]}"


DEV, PROD, STAGING = of_stack("dev"), of_stack("prod"), of_stack("staging")


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


def test_an_unlabelled_swarm_is_caught(engine: docker.DockerClient, monkeypatch: pytest.MonkeyPatch) -> None:
    env = unique_env()
    settings = settings_for(HOST_DOCKER_URL, env)
    facts = read_swarm(settings)
    assert (facts.docker_host, facts.swarm_state, facts.is_manager) == (HOST_DOCKER_URL, "active", True)
    hostname = this_hostname(engine)
    assert hostname in {n.hostname for n in facts.nodes}

    (finding,) = evaluate(facts, settings, DEV)
    assert finding.check == "placement"
    assert hostname in finding.problem  # offered as a node to label
    run_as(monkeypatch, "dev", preview=False)
    with pytest.raises(PreflightError, match=re.escape(f"docker node update --label-add env={env} <node>")):
        preflight(settings)


def test_a_port_published_by_another_service_is_caught(
    engine: docker.DockerClient, busybox_image: str, engine_resources: harness.TestResources
) -> None:
    theirs, ours = harness.free_tcp_port(), harness.free_tcp_port()
    intruder = publish(engine, busybox_image, engine_resources, theirs, stack=None)
    publish(engine, busybox_image, engine_resources, ours, stack="dev")
    # The node counts as this stack's through nodes.names + takeOver, without being labelled.
    nodes = {"names": [this_hostname(engine)], "takeOver": True}

    taken = settings_for(HOST_DOCKER_URL, unique_env(), wordpress={"port": theirs}, nodes=nodes)
    (finding,) = evaluate(read_swarm(taken), taken, DEV)
    assert finding.check == "port"
    assert finding.problem == (
        f"port {theirs} is already published (host mode) by service {intruder}, which no stack of this project owns"
    )
    assert "choose another wordpress-swarm:wordpress.port" in finding.fix

    # The stack's own service on its port is no conflict (a re-run of `pulumi up`) ...
    own = settings_for(HOST_DOCKER_URL, unique_env(), wordpress={"port": ours}, nodes=nodes)
    facts = read_swarm(own)
    assert evaluate(facts, own, DEV) == []
    # ... but it is someone else's for another stack.
    (finding,) = evaluate(facts, own, PROD)
    assert finding.check == "port"
    assert "of stack 'dev'" in finding.problem


def test_an_unreachable_host_warns_in_a_preview_and_fails_an_update(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_for(f"unix:///run/wpswarm-no-such-{uuid.uuid4().hex[:6]}.sock", "test")
    with pytest.raises(DockerHostError):
        read_swarm(settings)
    logged = run_as(monkeypatch, "dev", preview=True)
    preflight(settings)
    (warning,) = logged.warnings
    assert f"cannot reach the Docker host {settings.docker_host}" in warning
    run_as(monkeypatch, "dev", preview=False)
    with pytest.raises(PreflightError, match="wordpress-swarm:dockerHost") as raised:
        preflight(settings)
    assert checks(raised.value.findings) == ["docker-host"]


# --------------------------------------------------------------------------- #
# engines of the netns harness
# --------------------------------------------------------------------------- #


def test_a_host_not_in_swarm_mode_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    reason = netns.netns_swarm_unavailable_reason()
    if reason:
        pytest.skip(reason)
    # The harness's engines always form a swarm: one that has left it is a plain dockerd.
    with netns.NetnsSwarm(nodes=1) as lone:
        lone.client.swarm.leave(force=True)
        settings = settings_for(lone.manager.base_url, "test")
        facts = read_swarm(settings)
        assert (facts.swarm_state, facts.nodes) == ("inactive", ())
        run_as(monkeypatch, "dev", preview=True)
        with pytest.raises(PreflightError, match="docker swarm init") as raised:
            preflight(settings)
        assert checks(raised.value.findings) == ["swarm-mode"]


@contextlib.contextmanager
def env_labels(client: docker.DockerClient, node_ids: Sequence[str], value: str) -> Iterator[None]:
    """env=<value> on the nodes for the test, each node's previous env label put back after."""
    before = {i: (client.nodes.get(i).attrs["Spec"].get("Labels") or {}).get("env") for i in node_ids}
    try:
        for node_id in node_ids:
            swarm_tasks.set_node_labels(client, node_id, {"env": value})
        yield
    finally:
        for node_id, previous in before.items():
            swarm_tasks.set_node_labels(client, node_id, {"env": previous})


@contextlib.contextmanager
def labels_put_back(client: docker.DockerClient, node_ids: Sequence[str], keys: Sequence[str]) -> Iterator[None]:
    """Whatever the test does to these labels of these nodes, they are as before afterwards."""
    before = {i: {k: (client.nodes.get(i).attrs["Spec"].get("Labels") or {}).get(k) for k in keys} for i in node_ids}
    try:
        yield
    finally:
        for node_id, labels in before.items():
            swarm_tasks.set_node_labels(client, node_id, labels)


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


def test_preflight_sees_which_nodes_of_a_multi_node_swarm_match(netns_swarm: netns.NetnsSwarm) -> None:
    client = netns_swarm.client
    n1, n2, n3 = netns_swarm.nodes
    env = unique_env()
    # n2 is labelled by hand, n3 is listed for the stack to label (and holds MySQL's data), n1 is neither.
    settings = settings_for(
        netns_swarm.manager.base_url, env, nodes={"names": [n3.hostname]}, mysql={"dataNode": n3.hostname}
    )
    with env_labels(client, [n2.node_id], env):
        facts = read_swarm(settings)
        assert {n.hostname for n in facts.nodes} == {n1.hostname, n2.hostname, n3.hostname}
        assert {n.hostname for n in nodes_for_stack(facts, settings, DEV)} == {n2.hostname, n3.hostname}
        assert evaluate(facts, settings, DEV) == []

        with availability(client, n2.node_id, "pause"):
            paused = read_swarm(settings)
            (n2_paused,) = (n for n in paused.nodes if n.id == n2.node_id)
            assert (n2_paused.accepts_new_tasks, n2_paused.keeps_tasks) == (False, True)
            assert {n.hostname for n in nodes_for_stack(paused, settings, DEV)} == {n3.hostname}

        # The data node must be one the constraint lets MySQL onto.
        on_n1 = settings_for(netns_swarm.manager.base_url, env, mysql={"dataNode": n1.hostname})
        (finding,) = evaluate(read_swarm(on_n1), on_n1, DEV)
        assert finding.check == "data-node"
        assert f"docker node update --label-add env={env} {n1.hostname}" in finding.fix

    # A worker cannot manage services: pointed at one, preflight says so.
    worker = settings_for(n2.base_url, env)
    assert checks(evaluate(read_swarm(worker), worker, DEV)) == ["swarm-manager"]


def test_a_changed_env_label_passes_preflight_on_the_nodes_the_stack_labelled(
    netns_swarm: netns.NetnsSwarm, monkeypatch: pytest.MonkeyPatch
) -> None:
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
        "owner": "wordpress-swarm/dev",
    }

    def labels() -> list[tuple[str | None, str | None]]:
        found = [client.nodes.get(n.node_id).attrs["Spec"].get("Labels") or {} for n in (n2, n3)]
        return [(f.get(ENV_LABEL_KEY), f.get(owner_key())) for f in found]

    with labels_put_back(client, [n2.node_id, n3.node_id], [ENV_LABEL_KEY, owner_key()]):
        created = provider.create(dict(inputs))
        assert created.outs is not None
        marker = f"wordpress-swarm/dev#{created.id}"
        assert labels() == [(old_env, marker)] * 2

        # `pulumi up` with the new envLabel: preflight first, with the nodes still on the old value ...
        moved = settings_for(url, new_env, nodes={"names": names}, mysql={"dataNode": n3.hostname})
        facts = read_swarm(moved)
        assert evaluate(facts, moved, DEV) == []
        assert {n.hostname for n in nodes_for_stack(facts, moved, DEV)} == set(names)
        logged = run_as(monkeypatch, "dev", preview=False)
        preflight(moved)
        assert logged.infos == [
            f"preflight passed on {url}: node.labels.env=={new_env} matches "
            + ", ".join(n.hostname for n in facts.nodes if n.id in (n2.node_id, n3.node_id))
        ]
        # (for another stack of the project they are still another environment's)
        assert checks(evaluate(facts, moved, STAGING)) == ["node-names", "node-names", "placement", "data-node"]

        # ... then the label resource's in-place update.
        updated = provider.update(created.id, created.outs, inputs | {"value": new_env})
        assert updated.outs is not None
        assert labels() == [(new_env, marker)] * 2

        provider.delete(created.id, updated.outs)
        assert labels() == [(None, None)] * 2
