"""The dynamic provider behind components.node_labels.NodeEnvLabel: Pulumi state <-> swarmlib.claims.

It runs in Pulumi's dynamic-provider process, started in the project directory, which unpickles it
by reference: THIS MODULE'S PATH AND THE CLASS NAME ARE RECORDED IN EVERY STACK'S STATE. Keep them
(`swarmlib.label_provider.NodeEnvLabelProvider`), or existing stacks can no longer load it. It holds
no state and imports docker only where it runs.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pulumi.dynamic

from swarmlib.claims import Claim, LabelledNode, apply_labels, marker_value, read_labels, remove_labels
from swarmlib.client import docker_client

if TYPE_CHECKING:
    from docker import DockerClient

# Every input updates the resource in place. The Docker host and ssh options are how the swarm is
# reached, not which labels exist: another URL for the same swarm (a local socket vs ssh://, a CI
# override) changes no node; a new value relabels the nodes it owns in place.
INPUTS = ("docker_host", "ssh_opts", "node_names", "value", "take_over", "owner")


@contextmanager
def _connect(props: Mapping[str, Any]) -> Iterator[DockerClient]:
    client = docker_client(str(props["docker_host"]), [str(o) for o in props.get("ssh_opts") or []])
    try:
        yield client
    finally:
        client.close()


def swarm_id(client: DockerClient) -> str | None:
    """The ID of the swarm the client's engine is a manager of (None outside a swarm)."""
    cluster: Mapping[str, Any] = (client.info().get("Swarm") or {}).get("Cluster") or {}
    return str(cluster["ID"]) if cluster.get("ID") else None


def _outputs(props: Mapping[str, Any], swarm: str | None, labelled: Mapping[str, LabelledNode]) -> dict[str, Any]:
    inputs = {name: props[name] for name in INPUTS if name in props}
    return {**inputs, "swarm_id": swarm, "nodes": [node.as_output() for node in labelled.values()]}


def _recorded(props: Mapping[str, Any]) -> list[LabelledNode]:
    return [LabelledNode.from_output(raw) for raw in props.get("nodes") or []]


def _claim(props: Mapping[str, Any], id_: str, previous_markers: Sequence[str] = ()) -> Claim:
    project = str(props["owner"]).partition("/")[0]
    return Claim(
        value=str(props["value"]),
        marker=marker_value(str(props["owner"]), id_),
        previous_markers=previous_markers,
        take_over=bool(props.get("take_over")),
        names_key=f"{project}:nodes.names",
        fix=f"set {project}:nodes.takeOver: true to move it to this stack (the other environment's services "
        f"leave it), or remove it from {project}:nodes.names",
    )


class NodeEnvLabelProvider(pulumi.dynamic.ResourceProvider):
    """CRUD of one stack's env labels. State `nodes` lists each listed name with the node it
    resolved to and the label's value and marker as last seen, which is how refresh shows drift;
    `swarm_id` is the swarm they are on."""

    # Nothing secret is captured: keep the serialized provider readable in the state.
    serialize_as_secret_always = False

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.CheckResult:
        failures: list[pulumi.dynamic.CheckFailure] = []
        names = news.get("node_names")
        if not (isinstance(names, list) and names and all(isinstance(n, str) and n for n in names)):  # pyright: ignore[reportUnknownVariableType]
            failures.append(pulumi.dynamic.CheckFailure("node_names", "a non-empty list of node hostnames or IDs"))
        for name in ("docker_host", "value", "owner"):
            if not (isinstance(news.get(name), str) and news[name]):
                failures.append(pulumi.dynamic.CheckFailure(name, "a non-empty string"))
        return pulumi.dynamic.CheckResult(news, failures)

    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        id_ = uuid.uuid4().hex
        with _connect(props) as client:
            labelled = apply_labels(client, props["node_names"], _claim(props, id_))
            swarm = swarm_id(client)
        return pulumi.dynamic.CreateResult(id_=id_, outs=_outputs(props, swarm, labelled))

    def read(self, id_: str, props: dict[str, Any]) -> pulumi.dynamic.ReadResult:
        with _connect(props) as client:
            labelled = read_labels(client, props["node_names"])
            swarm = swarm_id(client)
        return pulumi.dynamic.ReadResult(id_=id_, outs=_outputs(props, swarm, labelled))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.DiffResult:
        changed = [name for name in INPUTS if olds.get(name) != news.get(name)]
        # After a refresh the recorded values are the live ones: relabelled or vanished nodes show
        # here, and so do nodes whose marker was removed by hand.
        drifted = any(node.value != news.get("value") or node.marker is None for node in _recorded(olds))
        # A replacement (`pulumi up --replace`, a renamed resource) is created before the old one is
        # deleted; the old instance's delete leaves nodes whose marker is its successor's.
        return pulumi.dynamic.DiffResult(changes=bool(changed or drifted), replaces=[], delete_before_replace=False)

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.UpdateResult:
        old_marker = marker_value(str(olds["owner"]), id_)
        recorded = [node.node_id for node in _recorded(olds) if node.node_id]
        with _connect(news) as client:
            swarm = swarm_id(client)
            # dockerHost now reaches another swarm: what the old state says is about the old one.
            moved = olds.get("swarm_id") is not None and swarm is not None and olds["swarm_id"] != swarm
            claim = _claim(news, id_, previous_markers=[] if moved else [old_marker])
            labelled = apply_labels(client, news["node_names"], claim)
            if not moved:
                kept = {node.node_id for node in labelled.values()}
                dropped = [node_id for node_id in recorded if node_id not in kept]
                remove_labels(client, dropped, olds["value"], old_marker)
        if moved:
            _give_up_old_swarm(olds, recorded, old_marker)
        return pulumi.dynamic.UpdateResult(outs=_outputs(news, swarm, labelled))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        with _connect(props) as client:
            ids = [node.node_id for node in _recorded(props) if node.node_id]
            remove_labels(client, ids, props["value"], marker_value(str(props["owner"]), id_))


def _give_up_old_swarm(olds: Mapping[str, Any], node_ids: Sequence[str], marker: str) -> None:
    """After a move to another swarm, removes this stack's labels from the old one through the old
    dockerHost. Best effort: a swarm that can't be reached from here (decommissioned, or only from
    elsewhere) keeps them, and must not fail the move; remove them there by hand if it lives on."""
    from docker.errors import DockerException
    from requests.exceptions import RequestException

    try:
        with _connect(olds) as old_client:
            remove_labels(old_client, node_ids, olds["value"], marker)
    except (DockerException, RequestException, OSError):
        pass
