"""Node labels as code: the docker work on real engines, the provider's rules, and the wiring.

On the shared engine every test uses its own label key (`wpswarm.test.env-<case>`, whose marker is
`wordpress-swarm.wpswarm.test.env-<case>-owner`), never `env`: other people's stacks and tests
read `env` on the same node. The provider methods are called directly (Pulumi's dynamic-provider
process is not available without the CLI).
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.models.nodes import Node
from pulumi.dynamic.dynamic import serialize_provider

from components.node_labels import (
    LabelledNode,
    NodeEnvLabelProvider,
    NodeLabelError,
    apply_labels,
    find_node_ids,
    owner_key,
    read_labels,
    remove_labels,
)
from tests.support import deploy_stack

from . import harness

ROOT = Path(__file__).resolve().parents[2]
NODE_ENV_LABEL = "pulumi-python:dynamic/wordpress-swarm:NodeEnvLabel"
HOST_DOCKER_URL = os.environ.get("DOCKER_HOST") or harness.DOCKER_SOCKET
OWNER = "wordpress-swarm/dev"


def node_label(client: docker.DockerClient, node_id: str, key: str) -> str | None:
    labels: dict[str, str] = client.nodes.get(node_id).attrs["Spec"].get("Labels") or {}
    return labels.get(key)


@pytest.fixture
def label_key() -> str:
    """A label key of this test alone."""
    return f"wpswarm.test.env-{uuid.uuid4().hex[:8]}"


def remove_key_everywhere(client: docker.DockerClient, key: str) -> None:
    """The label and its ownership marker off every node."""
    for node in client.nodes.list():
        labels = node.attrs["Spec"].get("Labels") or {}
        if key in labels or owner_key(key) in labels:
            harness.set_node_labels(client, str(node.id), {key: None, owner_key(key): None})


@pytest.fixture
def host_engine(engine: docker.DockerClient, label_key: str) -> Iterator[docker.DockerClient]:
    """The shared engine; the test's label key is gone from its node afterwards."""
    yield engine
    remove_key_everywhere(engine, label_key)


@pytest.fixture
def netns_engine(netns_swarm: harness.NetnsSwarm, label_key: str) -> Iterator[docker.DockerClient]:
    """The netns swarm's manager; the test's label key is gone from its nodes afterwards."""
    yield netns_swarm.client
    remove_key_everywhere(netns_swarm.client, label_key)


def this_node(client: docker.DockerClient) -> tuple[str, str]:
    """(id, hostname) of the node the client talks to."""
    node_id = str(client.info()["Swarm"]["NodeID"])
    return node_id, str(client.nodes.get(node_id).attrs["Description"]["Hostname"])


# --------------------------------------------------------------------------- #
# without an engine: name resolution, the provider's diff, pickling, wiring
# --------------------------------------------------------------------------- #

NODES = [("abc123", "web-1"), ("abd456", "web-2"), ("xyz789", "db-1"), ("xyz000", "db-1")]


@pytest.mark.parametrize(
    ("name", "ids"),
    [
        ("abc123", ["abc123"]),  # an exact ID
        ("web-2", ["abd456"]),  # a hostname
        ("abc", ["abc123"]),  # a unique ID prefix, as the docker CLI accepts
        ("ab", ["abc123", "abd456"]),  # an ambiguous prefix
        ("db-1", ["xyz789", "xyz000"]),  # two nodes with one hostname
        ("nope", []),
    ],
)
def test_names_resolve_like_the_docker_cli(name: str, ids: list[str]) -> None:
    assert find_node_ids(name, NODES) == ids


def state(value: str = "test", names: tuple[str, ...] = ("vm",), **overrides: Any) -> dict[str, Any]:
    inputs: dict[str, Any] = {
        "docker_host": "unix:///var/run/docker.sock",
        "ssh_opts": [],
        "node_names": list(names),
        "value": value,
        "take_over": False,
        "label_key": "env",
        "owner": OWNER,
    } | overrides
    marker = f"{inputs['owner']}#id"
    nodes = [{"name": n, "id": f"id-{n}", "hostname": n, "value": value, "marker": marker} for n in names]
    return inputs | {"swarm_id": "swarm-1", "nodes": nodes}


def inputs_of(props: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in props.items() if k not in ("nodes", "swarm_id")}


def test_diff_nothing_changed() -> None:
    olds = state()
    diff = NodeEnvLabelProvider().diff("id", olds, inputs_of(olds))
    assert diff.changes is False
    assert diff.replaces == []


@pytest.mark.parametrize(
    "news",
    [
        state(value="staging"),  # the stack's envLabel changed: relabel in place
        state(names=("vm", "vm2")),  # a node added
        state(take_over=True),
        state(ssh_opts=["-o", "ConnectTimeout=5"]),
        # The same swarm reached another way (a CI override, ssh instead of the local socket):
        # a replacement would remove every label before setting it again, stopping every task.
        state(docker_host="ssh://deploy@manager"),
        state(docker_host="unix:///run/docker.sock"),
        state(owner="wordpress-swarm/renamed"),  # `pulumi stack rename`: the markers follow
    ],
)
def test_diff_updates_in_place(news: dict[str, Any]) -> None:
    diff = NodeEnvLabelProvider().diff("id", state(), inputs_of(news))
    assert diff.changes is True
    assert diff.replaces == []


def test_diff_replaces_on_another_key_creating_the_replacement_first() -> None:
    diff = NodeEnvLabelProvider().diff("id", state(), inputs_of(state(label_key="tier")))
    assert diff.changes is True
    assert diff.replaces == ["label_key"]
    assert diff.delete_before_replace is False


def test_diff_sees_drift_recorded_by_refresh() -> None:
    refreshed = state()
    refreshed["nodes"][0]["value"] = "prod"  # someone relabelled the node by hand
    assert NodeEnvLabelProvider().diff("id", refreshed, inputs_of(state())).changes is True
    unmarked = state()
    unmarked["nodes"][0]["marker"] = None  # someone removed the marker
    assert NodeEnvLabelProvider().diff("id", unmarked, inputs_of(state())).changes is True


def test_state_from_before_markers_is_updated_in_place_to_mark_the_nodes() -> None:
    legacy = state()
    del legacy["owner"], legacy["swarm_id"]
    for recorded in legacy["nodes"]:
        del recorded["marker"]
    diff = NodeEnvLabelProvider().diff("id", legacy, inputs_of(state()))
    assert (diff.changes, diff.replaces) == (True, [])


def test_the_provider_pickles_by_reference_and_loads_in_a_fresh_process() -> None:
    # Pulumi's dynamic-provider process starts in the project directory and unpickles this.
    blob = serialize_provider(NodeEnvLabelProvider())
    assert len(base64.b64decode(blob)) < 200, "pickled by value: a rename of the module would not break it"
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import base64, sys, dill; p = dill.loads(base64.b64decode(sys.argv[1])); "
            "print(type(p).__qualname__, 'pulumi_docker' in sys.modules)",
            blob,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert loaded.stdout.split() == ["NodeEnvLabelProvider", "False"]


def test_prod_declares_the_label_resource_and_every_component_waits_for_it() -> None:
    deployment = deploy_stack("prod")
    labels = deployment.one(NODE_ENV_LABEL)
    assert {k: v for k, v in labels.inputs.items() if k != "__provider"} == {
        "docker_host": "ssh://deploy@swarm-manager",
        "ssh_opts": [],
        "node_names": ["swarm-web-1", "swarm-web-2", "swarm-db-1"],
        "value": "prod",
        "take_over": False,
        "label_key": "env",
        "owner": "wordpress-swarm/prod",  # the marker's owner: <project>/<stack>
    }
    components = [r for r in deployment.resources if not r.custom]
    assert {r.type.rpartition(":")[2] for r in components} == {"LoggingDaemon", "MySqlWithSecrets", "WordPressSite"}
    assert all(labels.urn in r.dependencies for r in components)


def test_dev_declares_no_label_resource() -> None:
    assert deploy_stack("dev").of_type(NODE_ENV_LABEL) == []


# --------------------------------------------------------------------------- #
# the shared single-node engine
# --------------------------------------------------------------------------- #


def test_labels_are_set_by_hostname_or_id_and_read_back(host_engine: docker.DockerClient, label_key: str) -> None:
    node_id, hostname = this_node(host_engine)
    labelled = apply_labels(host_engine, [hostname], "test", key=label_key)
    assert labelled == {hostname: LabelledNode(hostname, node_id, hostname, "test")}
    assert node_label(host_engine, node_id, label_key) == "test"
    # Idempotent, and the node ID names the same node.
    assert apply_labels(host_engine, [node_id], "test", key=label_key)[node_id].value == "test"
    assert read_labels(host_engine, [hostname, "no-such-node"], key=label_key) == {
        hostname: LabelledNode(hostname, node_id, hostname, "test"),
        "no-such-node": LabelledNode("no-such-node", None, None, None),
    }


def test_a_hand_made_change_shows_as_drift(host_engine: docker.DockerClient, label_key: str) -> None:
    node_id, hostname = this_node(host_engine)
    marker_key = owner_key(label_key)
    provider = NodeEnvLabelProvider()
    inputs = inputs_of(state(names=(hostname,), docker_host=HOST_DOCKER_URL, label_key=label_key))
    created = provider.create(dict(inputs))
    assert created.outs is not None
    marker = f"{OWNER}#{created.id}"
    assert created.outs["nodes"] == [
        {"name": hostname, "id": node_id, "hostname": hostname, "value": "test", "marker": marker}
    ]
    assert created.outs["swarm_id"] == host_engine.info()["Swarm"]["Cluster"]["ID"]
    assert node_label(host_engine, node_id, marker_key) == marker
    assert provider.diff(created.id, created.outs, inputs).changes is False

    harness.set_node_labels(host_engine, node_id, {label_key: "by-hand"})
    assert read_labels(host_engine, [hostname], key=label_key)[hostname].value == "by-hand"
    refreshed = provider.read(created.id, created.outs)
    assert refreshed.outs is not None
    assert refreshed.outs["nodes"][0]["value"] == "by-hand"
    assert provider.diff(created.id, refreshed.outs, inputs).changes is True
    # `pulumi up` after the refresh: the node still carries this stack's marker, so it is put back.
    provider.update(created.id, refreshed.outs, inputs)
    assert node_label(host_engine, node_id, label_key) == "test"

    # Another stack took the node (its marker replaced ours): refused unless taken back over.
    harness.set_node_labels(host_engine, node_id, {label_key: "prod", marker_key: "wordpress-swarm/prod#x"})
    refreshed = provider.read(created.id, created.outs)
    assert refreshed.outs is not None
    with pytest.raises(NodeLabelError, match=re.escape("stack wordpress-swarm/prod's label")) as refused:
        provider.update(created.id, refreshed.outs, inputs)
    assert "wordpress-swarm:nodes.takeOver" in str(refused.value)
    provider.update(created.id, refreshed.outs, inputs | {"take_over": True})
    assert (node_label(host_engine, node_id, label_key), node_label(host_engine, node_id, marker_key)) == (
        "test",
        marker,
    )


def test_another_environments_node_is_refused_unless_taken_over(
    host_engine: docker.DockerClient, label_key: str
) -> None:
    node_id, hostname = this_node(host_engine)
    harness.set_node_labels(host_engine, node_id, {label_key: "prod"})
    with pytest.raises(NodeLabelError) as refused:
        apply_labels(host_engine, [hostname], "test", key=label_key)
    message = str(refused.value)
    assert hostname in message
    assert f"{label_key}=prod" in message
    assert "wordpress-swarm:nodes.takeOver" in message
    assert node_label(host_engine, node_id, label_key) == "prod"

    apply_labels(host_engine, [hostname], "test", take_over=True, key=label_key)
    assert node_label(host_engine, node_id, label_key) == "test"


def test_an_unknown_node_is_refused(host_engine: docker.DockerClient, label_key: str) -> None:
    with pytest.raises(NodeLabelError, match="'no-such-node', which is no node of this swarm"):
        apply_labels(host_engine, ["no-such-node"], "test", key=label_key)


def test_a_marked_node_moves_from_the_stacks_old_value_to_its_new_one(
    host_engine: docker.DockerClient, label_key: str
) -> None:
    node_id, hostname = this_node(host_engine)
    marker_key = owner_key(label_key)
    apply_labels(host_engine, [hostname], "blue", marker=f"{OWNER}#one", key=label_key)
    assert node_label(host_engine, node_id, marker_key) == f"{OWNER}#one"

    # No state says "blue" was ours (no `ours`): the marker does, even from another instance.
    (moved,) = apply_labels(host_engine, [hostname], "green", marker=f"{OWNER}#two", key=label_key).values()
    assert (moved.value, moved.marker) == ("green", f"{OWNER}#two")

    # Another stack's marker is no claim of this one's.
    harness.set_node_labels(host_engine, node_id, {marker_key: "wordpress-swarm/staging#s"})
    with pytest.raises(NodeLabelError, match=re.escape(f"{label_key}=green, stack wordpress-swarm/staging's label")):
        apply_labels(host_engine, [hostname], "blue", marker=f"{OWNER}#two", key=label_key)
    assert node_label(host_engine, node_id, label_key) == "green"


def test_an_unmarked_node_is_ours_only_by_the_value_in_state(host_engine: docker.DockerClient, label_key: str) -> None:
    # A node labelled before markers existed: the old value recorded in state is the only claim.
    node_id, hostname = this_node(host_engine)
    harness.set_node_labels(host_engine, node_id, {label_key: "blue"})
    with pytest.raises(NodeLabelError, match="another environment's label"):
        apply_labels(host_engine, [hostname], "green", marker=f"{OWNER}#one", key=label_key)
    apply_labels(host_engine, [hostname], "green", marker=f"{OWNER}#one", ours=["blue"], key=label_key)
    assert node_label(host_engine, node_id, owner_key(label_key)) == f"{OWNER}#one"


def test_a_node_shared_with_another_stack_keeps_its_marker(host_engine: docker.DockerClient, label_key: str) -> None:
    node_id, hostname = this_node(host_engine)
    theirs = "wordpress-swarm/other#o"
    harness.set_node_labels(host_engine, node_id, {label_key: "test", owner_key(label_key): theirs})
    (shared,) = apply_labels(host_engine, [hostname], "test", marker=f"{OWNER}#one", key=label_key).values()
    assert shared.marker == theirs
    # ... so this stack's delete leaves it to the stack that marked it.
    assert remove_labels(host_engine, [node_id], "test", marker=f"{OWNER}#one", key=label_key) == []
    assert node_label(host_engine, node_id, label_key) == "test"


def test_removal_takes_the_marker_with_the_label(host_engine: docker.DockerClient, label_key: str) -> None:
    node_id, hostname = this_node(host_engine)
    marker_key = owner_key(label_key)
    apply_labels(host_engine, [hostname], "test", marker=f"{OWNER}#one", key=label_key)
    # Another instance's marker (a replacement created before this one is deleted) stays.
    assert remove_labels(host_engine, [node_id], "test", marker=f"{OWNER}#two", key=label_key) == []
    assert remove_labels(host_engine, [node_id], "test", marker=f"{OWNER}#one", key=label_key) == [node_id]
    assert (node_label(host_engine, node_id, label_key), node_label(host_engine, node_id, marker_key)) == (None, None)

    # Relabelled by hand under this instance's marker: the value stays, the claim goes.
    apply_labels(host_engine, [hostname], "test", marker=f"{OWNER}#one", key=label_key)
    harness.set_node_labels(host_engine, node_id, {label_key: "by-hand"})
    assert remove_labels(host_engine, [node_id], "test", marker=f"{OWNER}#one", key=label_key) == [node_id]
    assert (node_label(host_engine, node_id, label_key), node_label(host_engine, node_id, marker_key)) == (
        "by-hand",
        None,
    )


@pytest.fixture
def node_updates(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every node spec update this process sends through the docker SDK, in order."""
    sent: list[dict[str, Any]] = []
    real = Node.update

    def spy(node: Node, node_spec: dict[str, Any]) -> Any:
        sent.append(dict(node_spec.get("Labels") or {}))
        return real(node, node_spec)

    monkeypatch.setattr(Node, "update", spy)
    return sent


def test_another_url_for_the_same_swarm_changes_no_node(
    host_engine: docker.DockerClient, label_key: str, tmp_path: Path, node_updates: list[dict[str, Any]]
) -> None:
    if not HOST_DOCKER_URL.startswith("unix://"):
        pytest.skip(f"needs the engine on a unix socket, not {HOST_DOCKER_URL}")
    node_id, hostname = this_node(host_engine)
    alias = tmp_path / "docker.sock"
    alias.symlink_to(HOST_DOCKER_URL.removeprefix("unix://"))
    provider = NodeEnvLabelProvider()
    inputs = inputs_of(state(names=(hostname,), docker_host=HOST_DOCKER_URL, label_key=label_key))
    created = provider.create(dict(inputs))
    assert created.outs is not None
    assert len(node_updates) == 1

    elsewhere = inputs | {"docker_host": f"unix://{alias}", "ssh_opts": ["-o", "ConnectTimeout=5"]}
    assert provider.diff(created.id, created.outs, elsewhere).replaces == []
    updated = provider.update(created.id, created.outs, elsewhere)
    assert updated.outs is not None
    assert updated.outs["docker_host"] == f"unix://{alias}"
    assert len(node_updates) == 1  # nothing removed, nothing re-added
    assert node_label(host_engine, node_id, label_key) == "test"


def test_replacements_are_created_before_the_old_labels_go(
    host_engine: docker.DockerClient, label_key: str, node_updates: list[dict[str, Any]]
) -> None:
    node_id, hostname = this_node(host_engine)
    other_key = f"{label_key}-b"
    provider = NodeEnvLabelProvider()
    inputs = inputs_of(state(names=(hostname,), docker_host=HOST_DOCKER_URL, label_key=label_key))

    def labels() -> list[str | None]:
        return [node_label(host_engine, node_id, k) for k in (label_key, other_key)]

    try:
        # The label key changed: the new resource labels first, the old one's delete comes after.
        old = provider.create(dict(inputs))
        new = provider.create(inputs | {"label_key": other_key})
        assert old.outs is not None
        assert new.outs is not None
        assert labels() == ["test", "test"]
        provider.delete(old.id, old.outs)
        assert labels() == [None, "test"]
        # No update on the way left the node without one of the labels.
        assert all(label_key in sent or other_key in sent for sent in node_updates)

        # A replacement with the same key (`pulumi up --replace`, a renamed resource): the old
        # instance's delete leaves the labels its successor claimed.
        again = provider.create(inputs | {"label_key": other_key})
        assert again.outs is not None
        provider.delete(new.id, new.outs)
        assert labels() == [None, "test"]
        assert node_label(host_engine, node_id, owner_key(other_key)) == f"{OWNER}#{again.id}"
        provider.delete(again.id, again.outs)
        assert labels() == [None, None]
    finally:
        remove_key_everywhere(host_engine, other_key)


def test_removal_only_takes_a_label_that_still_holds_our_value(
    host_engine: docker.DockerClient, label_key: str
) -> None:
    node_id, hostname = this_node(host_engine)
    apply_labels(host_engine, [hostname], "test", key=label_key)
    harness.set_node_labels(host_engine, node_id, {label_key: "staging"})
    assert remove_labels(host_engine, [node_id], "test", key=label_key) == []
    assert node_label(host_engine, node_id, label_key) == "staging"

    harness.set_node_labels(host_engine, node_id, {label_key: "test"})
    assert remove_labels(host_engine, [node_id, "gone-node-id"], "test", key=label_key) == [node_id]
    assert node_label(host_engine, node_id, label_key) is None


# --------------------------------------------------------------------------- #
# the 3-node netns swarm
# --------------------------------------------------------------------------- #


def test_a_refusal_changes_no_node(
    netns_swarm: harness.NetnsSwarm, netns_engine: docker.DockerClient, label_key: str
) -> None:
    n1, n2, n3 = netns_swarm.nodes
    harness.set_node_labels(netns_engine, n3.node_id, {label_key: "prod"})
    with pytest.raises(NodeLabelError, match=n3.hostname):
        apply_labels(netns_engine, [n1.hostname, n2.hostname, n3.hostname], "test", key=label_key)
    assert [node_label(netns_engine, n.node_id, label_key) for n in (n1, n2, n3)] == [None, None, "prod"]


def test_the_provider_lifecycle_across_nodes(
    netns_swarm: harness.NetnsSwarm, netns_engine: docker.DockerClient, label_key: str
) -> None:
    n1, n2, n3 = netns_swarm.nodes
    provider = NodeEnvLabelProvider()
    inputs = state(names=(n1.hostname, n2.node_id), docker_host=netns_swarm.manager.base_url, label_key=label_key)
    del inputs["nodes"]

    def labels() -> list[str | None]:
        return [node_label(netns_engine, n.node_id, label_key) for n in (n1, n2, n3)]

    created = provider.create(dict(inputs))
    assert created.outs is not None
    assert labels() == ["test", "test", None]

    # A node dropped from the list loses the label, a node added gains it.
    moved = inputs | {"node_names": [n1.hostname, n3.hostname]}
    updated = provider.update(created.id, created.outs, moved)
    assert updated.outs is not None
    assert labels() == ["test", None, "test"]

    # The stack's envLabel changed: its own old value is no other environment's.
    renamed = moved | {"value": "staging"}
    assert provider.diff(created.id, updated.outs, renamed).replaces == []
    relabelled = provider.update(created.id, updated.outs, renamed)
    assert relabelled.outs is not None
    assert labels() == ["staging", None, "staging"]

    # Delete leaves a node someone relabelled since, and takes every marker.
    harness.set_node_labels(netns_engine, n3.node_id, {label_key: "by-hand"})
    provider.delete(created.id, relabelled.outs)
    assert labels() == [None, None, "by-hand"]
    assert [node_label(netns_engine, n.node_id, owner_key(label_key)) for n in (n1, n2, n3)] == [None] * 3


def test_a_docker_host_on_another_swarm_moves_the_labels_there(
    netns_swarm: harness.NetnsSwarm,
    netns_engine: docker.DockerClient,
    host_engine: docker.DockerClient,
    label_key: str,
) -> None:
    n1 = netns_swarm.nodes[0]
    host_id, hostname = this_node(host_engine)
    provider = NodeEnvLabelProvider()
    inputs = inputs_of(state(names=(n1.hostname,), docker_host=netns_swarm.manager.base_url, label_key=label_key))
    created = provider.create(dict(inputs))
    assert created.outs is not None
    assert node_label(netns_engine, n1.node_id, label_key) == "test"

    moved = inputs | {"docker_host": HOST_DOCKER_URL, "node_names": [hostname]}
    assert provider.diff(created.id, created.outs, moved).replaces == []
    updated = provider.update(created.id, created.outs, moved)
    assert updated.outs is not None
    assert updated.outs["swarm_id"] != created.outs["swarm_id"]
    assert node_label(host_engine, host_id, label_key) == "test"
    # The old swarm was still reachable: its labels are gone.
    assert node_label(netns_engine, n1.node_id, label_key) is None
    assert node_label(netns_engine, n1.node_id, owner_key(label_key)) is None
