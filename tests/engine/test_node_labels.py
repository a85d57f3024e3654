"""Node labels as code: the one claim rule, the docker work on real engines, the provider, the wiring.

Every test that touches a node claims it under a label key of its own: the `label_key` fixture sets
swarmlib.claims.LABEL_KEY to `wpswarm.test.env-<case>` (whose marker, owner_key(), is then
`wordpress-swarm.wpswarm.test.env-<case>-owner`), never `env`: other people's stacks and tests read
`env` on the shared node. The provider's methods are called directly (Pulumi's dynamic-provider
process is not available without the CLI), in this process, so they claim under that key too.
"""

from __future__ import annotations

import base64
import os
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

from swarmlib import claims
from swarmlib.claims import (
    Claim,
    LabelledNode,
    NodeLabelError,
    apply_labels,
    find_node_ids,
    owner_key,
    read_labels,
    refusal,
    remove_labels,
)
from swarmlib.label_provider import INPUTS, NodeEnvLabelProvider
from tests.support import ROOT, deploy_stack

from . import harness, netns, swarm_tasks

NODE_ENV_LABEL = "pulumi-python:dynamic/wordpress-swarm:NodeEnvLabel"
HOST_DOCKER_URL = os.environ.get("DOCKER_HOST") or harness.DOCKER_SOCKET
OWNER = "wordpress-swarm/dev"


@pytest.fixture
def label_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """A label key of this test alone, claimed in place of `env` by everything in this process."""
    key = f"wpswarm.test.env-{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr(claims, "LABEL_KEY", key)
    return key


def claim_on(client: docker.DockerClient, node_id: str) -> tuple[str | None, str | None]:
    """The node's label under the claimed key, and its ownership marker."""
    labels: dict[str, str] = client.nodes.get(node_id).attrs["Spec"].get("Labels") or {}
    return labels.get(claims.LABEL_KEY), labels.get(owner_key())


def remove_key_everywhere(client: docker.DockerClient) -> None:
    """The claimed label and its ownership marker off every node."""
    for node in client.nodes.list():
        labels = node.attrs["Spec"].get("Labels") or {}
        if claims.LABEL_KEY in labels or owner_key() in labels:
            swarm_tasks.set_node_labels(client, str(node.id), {claims.LABEL_KEY: None, owner_key(): None})


# These tear down before label_key's monkeypatch is undone, so they clean up the test's own key.
@pytest.fixture
def host_engine(engine: docker.DockerClient, label_key: str) -> Iterator[docker.DockerClient]:
    """The shared engine; the test's label key is gone from its node afterwards."""
    yield engine
    remove_key_everywhere(engine)


@pytest.fixture
def netns_engine(netns_swarm: netns.NetnsSwarm, label_key: str) -> Iterator[docker.DockerClient]:
    """The netns swarm's manager; the test's label key is gone from its nodes afterwards."""
    yield netns_swarm.client
    remove_key_everywhere(netns_swarm.client)


def this_node(client: docker.DockerClient) -> tuple[str, str]:
    """(id, hostname) of the node the client talks to."""
    node_id = str(client.info()["Swarm"]["NodeID"])
    return node_id, str(client.nodes.get(node_id).attrs["Description"]["Hostname"])


# --------------------------------------------------------------------------- #
# without an engine: the claim rule, name resolution, the provider's check and diff, pickling, wiring
# --------------------------------------------------------------------------- #

MARKER_KEY = owner_key()  # of `env`: wordpress-swarm.env-owner


@pytest.mark.parametrize(
    ("labels", "held_by"),
    [
        ({}, None),  # unlabelled
        ({"env": "test"}, None),  # already the value
        ({"env": "test", MARKER_KEY: "wordpress-swarm/prod#1"}, None),  # the value, under another's marker: shared
        ({"env": "blue", MARKER_KEY: f"{OWNER}#old"}, None),  # the stack's previous value, under its marker
        ({"env": "blue"}, "another environment's label"),  # unmarked: labelled by hand
        ({"env": "blue", MARKER_KEY: "wordpress-swarm/prod#1"}, "stack wordpress-swarm/prod's label"),
        ({"env": "blue", MARKER_KEY: "other-project/dev#1"}, "stack other-project/dev's label"),
    ],
)
def test_the_one_claim_rule(labels: dict[str, str], held_by: str | None) -> None:
    expected = held_by and f"has env=blue, {held_by}, and this stack labels env=test"
    assert refusal(labels, "test", {OWNER}) == expected


def test_the_rule_and_its_marker_follow_the_label_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(claims, "LABEL_KEY", "tier")
    assert owner_key() == "wordpress-swarm.tier-owner"
    assert refusal({"env": "blue"}, "test") is None
    assert (
        refusal({"tier": "blue"}, "test")
        == "has tier=blue, another environment's label, and this stack labels tier=test"
    )
    assert refusal({"tier": "blue", "wordpress-swarm.tier-owner": f"{OWNER}#1"}, "test", {OWNER}) is None


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
    """The resource's recorded state: its inputs and what the provider last saw."""
    inputs: dict[str, Any] = {
        "docker_host": "unix:///var/run/docker.sock",
        "ssh_opts": [],
        "node_names": list(names),
        "value": value,
        "take_over": False,
        "owner": OWNER,
    } | overrides
    marker = f"{inputs['owner']}#id"
    nodes = [{"name": n, "id": f"id-{n}", "hostname": n, "value": value, "marker": marker} for n in names]
    return inputs | {"swarm_id": "swarm-1", "nodes": nodes}


def inputs_of(props: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in props.items() if k not in ("nodes", "swarm_id")}


def test_check_accepts_what_the_resource_declares() -> None:
    checked = NodeEnvLabelProvider().check({}, inputs_of(state()))
    assert (checked.inputs, checked.failures) == (inputs_of(state()), [])


@pytest.mark.parametrize(
    ("bad", "prop"),
    [
        ({"node_names": []}, "node_names"),
        ({"node_names": ["vm", ""]}, "node_names"),
        ({"docker_host": ""}, "docker_host"),
        ({"value": None}, "value"),
        ({"owner": 7}, "owner"),
    ],
)
def test_check_names_a_bad_input(bad: dict[str, Any], prop: str) -> None:
    checked = NodeEnvLabelProvider().check({}, inputs_of(state()) | bad)
    assert [failure.property for failure in checked.failures] == [prop]


def test_diff_nothing_changed() -> None:
    olds = state()
    diff = NodeEnvLabelProvider().diff("id", olds, inputs_of(olds))
    assert diff.changes is False
    assert diff.replaces == []


IN_PLACE_CHANGES: list[dict[str, Any]] = [
    {"value": "staging"},  # the stack's envLabel changed: relabel in place
    {"node_names": ["vm", "vm2"]},  # a node added
    {"take_over": True},
    {"ssh_opts": ["-o", "ConnectTimeout=5"]},
    # The same swarm reached another way (a CI override, ssh instead of the local socket):
    # a replacement would remove every label before setting it again, stopping every task.
    {"docker_host": "ssh://deploy@manager"},
    {"docker_host": "unix:///run/docker.sock"},
    {"owner": "wordpress-swarm/renamed"},  # `pulumi stack rename`: the markers follow
]


@pytest.mark.parametrize("change", IN_PLACE_CHANGES)
def test_diff_updates_in_place(change: dict[str, Any]) -> None:
    diff = NodeEnvLabelProvider().diff("id", state(), inputs_of(state()) | change)
    assert diff.changes is True
    assert diff.replaces == []
    assert diff.delete_before_replace is False


def test_every_input_is_one_that_updates_in_place() -> None:
    assert {name for change in IN_PLACE_CHANGES for name in change} == set(INPUTS)


def test_diff_sees_drift_recorded_by_refresh() -> None:
    refreshed = state()
    refreshed["nodes"][0]["value"] = "prod"  # someone relabelled the node by hand
    assert NodeEnvLabelProvider().diff("id", refreshed, inputs_of(state())).changes is True
    unmarked = state()
    unmarked["nodes"][0]["marker"] = None  # someone removed the marker
    assert NodeEnvLabelProvider().diff("id", unmarked, inputs_of(state())).changes is True


def test_the_provider_pickles_by_reference_and_loads_in_a_fresh_process() -> None:
    # Pulumi's dynamic-provider process starts in the project directory and unpickles this.
    blob = serialize_provider(NodeEnvLabelProvider())
    pickled = base64.b64decode(blob)
    assert len(pickled) < 200, "pickled by value: a rename of the module would not break it"
    assert b"swarmlib.label_provider" in pickled  # the path every stack's state records
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
        "owner": "wordpress-swarm/prod",  # the marker's owner: <project>/<stack>
    }
    components = [r for r in deployment.resources if not r.custom]
    assert {r.type.rpartition(":")[2] for r in components} == {
        "LoggingDaemon",
        "MySqlWithSecrets",
        "WordPressSite",
        "SiteBackups",
    }
    assert all(labels.urn in r.dependencies for r in components)


def test_dev_declares_no_label_resource() -> None:
    assert deploy_stack("dev").of_type(NODE_ENV_LABEL) == []


# --------------------------------------------------------------------------- #
# the shared single-node engine
# --------------------------------------------------------------------------- #


def test_labels_are_set_by_hostname_or_id_and_read_back(host_engine: docker.DockerClient) -> None:
    node_id, hostname = this_node(host_engine)
    labelled = apply_labels(host_engine, [hostname], Claim("test"))
    assert labelled == {hostname: LabelledNode(hostname, node_id, hostname, "test")}
    assert claim_on(host_engine, node_id) == ("test", None)  # a claim without a marker writes none
    # Idempotent, and the node ID names the same node.
    assert apply_labels(host_engine, [node_id], Claim("test"))[node_id].value == "test"
    assert read_labels(host_engine, [hostname, "no-such-node"]) == {
        hostname: LabelledNode(hostname, node_id, hostname, "test"),
        "no-such-node": LabelledNode("no-such-node", None, None, None),
    }


def test_a_hand_made_change_shows_as_drift(host_engine: docker.DockerClient, label_key: str) -> None:
    node_id, hostname = this_node(host_engine)
    provider = NodeEnvLabelProvider()
    inputs = inputs_of(state(names=(hostname,), docker_host=HOST_DOCKER_URL))
    created = provider.create(dict(inputs))
    assert created.outs is not None
    marker = f"{OWNER}#{created.id}"
    assert created.outs["nodes"] == [
        {"name": hostname, "id": node_id, "hostname": hostname, "value": "test", "marker": marker}
    ]
    assert created.outs["swarm_id"] == host_engine.info()["Swarm"]["Cluster"]["ID"]
    assert claim_on(host_engine, node_id) == ("test", marker)
    assert provider.diff(created.id, created.outs, inputs).changes is False

    swarm_tasks.set_node_labels(host_engine, node_id, {label_key: "by-hand"})
    assert read_labels(host_engine, [hostname])[hostname].value == "by-hand"
    refreshed = provider.read(created.id, created.outs)
    assert refreshed.outs is not None
    assert refreshed.outs["nodes"][0]["value"] == "by-hand"
    assert provider.diff(created.id, refreshed.outs, inputs).changes is True
    # `pulumi up` after the refresh: the node still carries this stack's marker, so it is put back.
    provider.update(created.id, refreshed.outs, inputs)
    assert claim_on(host_engine, node_id) == ("test", marker)

    # Another stack took the node (its marker replaced ours): refused unless taken back over.
    swarm_tasks.set_node_labels(host_engine, node_id, {label_key: "prod", owner_key(): "wordpress-swarm/prod#x"})
    refreshed = provider.read(created.id, created.outs)
    assert refreshed.outs is not None
    with pytest.raises(NodeLabelError, match="stack wordpress-swarm/prod's label") as refused:
        provider.update(created.id, refreshed.outs, inputs)
    assert "wordpress-swarm:nodes.takeOver" in str(refused.value)
    assert claim_on(host_engine, node_id) == ("prod", "wordpress-swarm/prod#x")
    provider.update(created.id, refreshed.outs, inputs | {"take_over": True})
    assert claim_on(host_engine, node_id) == ("test", marker)


def test_another_environments_node_is_refused_unless_taken_over(
    host_engine: docker.DockerClient, label_key: str
) -> None:
    node_id, hostname = this_node(host_engine)
    swarm_tasks.set_node_labels(host_engine, node_id, {label_key: "prod"})
    provider = NodeEnvLabelProvider()
    prefix = node_id[:12]  # listed by an ID prefix: the refusal says so
    inputs = inputs_of(state(names=(prefix,), docker_host=HOST_DOCKER_URL))
    with pytest.raises(NodeLabelError) as refused:
        provider.create(dict(inputs))
    (problem,) = refused.value.problems
    assert problem.startswith(
        f"node {hostname} ({node_id}, listed as {prefix!r}) has {label_key}=prod, another environment's label, "
        f"and this stack labels {label_key}=test; set wordpress-swarm:nodes.takeOver: true"
    )
    assert claim_on(host_engine, node_id) == ("prod", None)

    created = provider.create(inputs | {"take_over": True})
    assert claim_on(host_engine, node_id) == ("test", f"{OWNER}#{created.id}")


def test_an_unknown_node_is_refused(host_engine: docker.DockerClient) -> None:
    with pytest.raises(NodeLabelError, match="'no-such-node', which is no node of this swarm"):
        apply_labels(host_engine, ["no-such-node"], Claim("test"))


def test_a_marked_node_moves_from_the_stacks_old_value_to_its_new_one(
    host_engine: docker.DockerClient, label_key: str
) -> None:
    node_id, hostname = this_node(host_engine)
    apply_labels(host_engine, [hostname], Claim("blue", marker=f"{OWNER}#one"))
    assert claim_on(host_engine, node_id) == ("blue", f"{OWNER}#one")

    # No state says "blue" was ours: the marker does, even from another instance.
    (moved,) = apply_labels(host_engine, [hostname], Claim("green", marker=f"{OWNER}#two")).values()
    assert (moved.value, moved.marker) == ("green", f"{OWNER}#two")

    # Another stack's marker is no claim of this one's.
    swarm_tasks.set_node_labels(host_engine, node_id, {owner_key(): "wordpress-swarm/staging#s"})
    with pytest.raises(NodeLabelError, match=f"{label_key}=green, stack wordpress-swarm/staging's label"):
        apply_labels(host_engine, [hostname], Claim("blue", marker=f"{OWNER}#two"))
    assert claim_on(host_engine, node_id) == ("green", "wordpress-swarm/staging#s")


def test_without_its_marker_a_node_is_another_environments(host_engine: docker.DockerClient, label_key: str) -> None:
    # Labelled by hand, or its marker removed: no value makes it the stack's, not one it once set.
    node_id, hostname = this_node(host_engine)
    swarm_tasks.set_node_labels(host_engine, node_id, {label_key: "blue"})
    claim = Claim("green", marker=f"{OWNER}#two", previous_markers=[f"{OWNER}#one"])
    with pytest.raises(NodeLabelError, match="another environment's label"):
        apply_labels(host_engine, [hostname], claim)
    assert claim_on(host_engine, node_id) == ("blue", None)


def test_a_node_shared_with_another_stack_keeps_its_marker(host_engine: docker.DockerClient, label_key: str) -> None:
    node_id, hostname = this_node(host_engine)
    theirs = "wordpress-swarm/other#o"
    swarm_tasks.set_node_labels(host_engine, node_id, {label_key: "test", owner_key(): theirs})
    (shared,) = apply_labels(host_engine, [hostname], Claim("test", marker=f"{OWNER}#one")).values()
    assert shared.marker == theirs
    # ... so this stack's delete leaves it to the stack that marked it.
    assert remove_labels(host_engine, [node_id], "test", f"{OWNER}#one") == []
    assert claim_on(host_engine, node_id) == ("test", theirs)
    # Taken over, it is this stack's alone.
    apply_labels(host_engine, [hostname], Claim("test", marker=f"{OWNER}#one", take_over=True))
    assert claim_on(host_engine, node_id) == ("test", f"{OWNER}#one")


def test_removal_takes_the_marker_with_the_label(host_engine: docker.DockerClient, label_key: str) -> None:
    node_id, hostname = this_node(host_engine)
    apply_labels(host_engine, [hostname], Claim("test", marker=f"{OWNER}#one"))
    # Another instance's marker (a replacement created before this one is deleted) stays.
    assert remove_labels(host_engine, [node_id], "test", f"{OWNER}#two") == []
    assert remove_labels(host_engine, [node_id], "test", f"{OWNER}#one") == [node_id]
    assert claim_on(host_engine, node_id) == (None, None)

    # Relabelled by hand under this instance's marker: the value stays, the claim goes.
    apply_labels(host_engine, [hostname], Claim("test", marker=f"{OWNER}#one"))
    swarm_tasks.set_node_labels(host_engine, node_id, {label_key: "by-hand"})
    assert remove_labels(host_engine, [node_id], "test", f"{OWNER}#one") == [node_id]
    assert claim_on(host_engine, node_id) == ("by-hand", None)


def test_removal_leaves_unmarked_nodes_and_skips_gone_ones(host_engine: docker.DockerClient) -> None:
    node_id, hostname = this_node(host_engine)
    # Labelled without a marker (as the lab or an operator does): the value alone is nobody's claim.
    apply_labels(host_engine, [hostname], Claim("test"))
    assert remove_labels(host_engine, [node_id, "gone-node-id"], "test", f"{OWNER}#one") == []
    assert claim_on(host_engine, node_id) == ("test", None)

    apply_labels(host_engine, [hostname], Claim("test", marker=f"{OWNER}#one"))
    assert remove_labels(host_engine, [node_id, "gone-node-id"], "test", f"{OWNER}#one") == [node_id]
    assert claim_on(host_engine, node_id) == (None, None)


@pytest.fixture
def node_updates(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The labels of every node spec update this process sends through the docker SDK, in order."""
    sent: list[dict[str, Any]] = []
    real = Node.update

    def spy(node: Node, node_spec: dict[str, Any]) -> Any:
        sent.append(dict(node_spec.get("Labels") or {}))
        return real(node, node_spec)

    monkeypatch.setattr(Node, "update", spy)
    return sent


def test_another_url_for_the_same_swarm_changes_no_node(
    host_engine: docker.DockerClient, tmp_path: Path, node_updates: list[dict[str, Any]]
) -> None:
    if not HOST_DOCKER_URL.startswith("unix://"):
        pytest.skip(f"needs the engine on a unix socket, not {HOST_DOCKER_URL}")
    node_id, hostname = this_node(host_engine)
    alias = tmp_path / "docker.sock"
    alias.symlink_to(HOST_DOCKER_URL.removeprefix("unix://"))
    provider = NodeEnvLabelProvider()
    inputs = inputs_of(state(names=(hostname,), docker_host=HOST_DOCKER_URL))
    created = provider.create(dict(inputs))
    assert created.outs is not None
    assert len(node_updates) == 1

    elsewhere = inputs | {"docker_host": f"unix://{alias}", "ssh_opts": ["-o", "ConnectTimeout=5"]}
    assert provider.diff(created.id, created.outs, elsewhere).replaces == []
    updated = provider.update(created.id, created.outs, elsewhere)
    assert updated.outs is not None
    assert updated.outs["docker_host"] == f"unix://{alias}"
    assert len(node_updates) == 1  # nothing removed, nothing re-added
    assert claim_on(host_engine, node_id) == ("test", f"{OWNER}#{created.id}")


def test_a_replacement_is_created_before_the_old_labels_go(
    host_engine: docker.DockerClient, label_key: str, node_updates: list[dict[str, Any]]
) -> None:
    # `pulumi up --replace`, or a renamed resource: the new instance is created first, and the old
    # instance's delete leaves the labels its successor claimed.
    node_id, hostname = this_node(host_engine)
    provider = NodeEnvLabelProvider()
    inputs = inputs_of(state(names=(hostname,), docker_host=HOST_DOCKER_URL))
    old = provider.create(dict(inputs))
    new = provider.create(dict(inputs))
    assert old.outs is not None
    assert new.outs is not None
    assert claim_on(host_engine, node_id) == ("test", f"{OWNER}#{new.id}")
    provider.delete(old.id, old.outs)
    assert claim_on(host_engine, node_id) == ("test", f"{OWNER}#{new.id}")
    # The old instance's delete sent nothing, and no update on the way left the node without the label.
    assert len(node_updates) == 2
    assert all(sent.get(label_key) == "test" for sent in node_updates)

    provider.delete(new.id, new.outs)
    assert claim_on(host_engine, node_id) == (None, None)


# --------------------------------------------------------------------------- #
# the 3-node netns swarm
# --------------------------------------------------------------------------- #


def test_a_refusal_changes_no_node(
    netns_swarm: netns.NetnsSwarm, netns_engine: docker.DockerClient, label_key: str
) -> None:
    n1, n2, n3 = netns_swarm.nodes
    swarm_tasks.set_node_labels(netns_engine, n3.node_id, {label_key: "prod"})
    with pytest.raises(NodeLabelError, match=n3.hostname) as refused:
        apply_labels(netns_engine, [n1.hostname, n2.hostname, n3.hostname], Claim("test", marker=f"{OWNER}#one"))
    assert len(refused.value.problems) == 1
    assert [claim_on(netns_engine, n.node_id) for n in (n1, n2, n3)] == [(None, None), (None, None), ("prod", None)]


def test_the_provider_lifecycle_across_nodes(
    netns_swarm: netns.NetnsSwarm, netns_engine: docker.DockerClient, label_key: str
) -> None:
    n1, n2, n3 = netns_swarm.nodes
    provider = NodeEnvLabelProvider()
    inputs = inputs_of(state(names=(n1.hostname, n2.node_id), docker_host=netns_swarm.manager.base_url))

    def labels() -> list[str | None]:
        return [claim_on(netns_engine, n.node_id)[0] for n in (n1, n2, n3)]

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
    swarm_tasks.set_node_labels(netns_engine, n3.node_id, {label_key: "by-hand"})
    provider.delete(created.id, relabelled.outs)
    assert [claim_on(netns_engine, n.node_id) for n in (n1, n2, n3)] == [(None, None), (None, None), ("by-hand", None)]


def test_a_docker_host_on_another_swarm_moves_the_labels_there(
    netns_swarm: netns.NetnsSwarm, netns_engine: docker.DockerClient, host_engine: docker.DockerClient
) -> None:
    n1 = netns_swarm.nodes[0]
    host_id, hostname = this_node(host_engine)
    provider = NodeEnvLabelProvider()
    inputs = inputs_of(state(names=(n1.hostname,), docker_host=netns_swarm.manager.base_url))
    created = provider.create(dict(inputs))
    assert created.outs is not None
    assert claim_on(netns_engine, n1.node_id) == ("test", f"{OWNER}#{created.id}")

    moved = inputs | {"docker_host": HOST_DOCKER_URL, "node_names": [hostname]}
    assert provider.diff(created.id, created.outs, moved).replaces == []
    updated = provider.update(created.id, created.outs, moved)
    assert updated.outs is not None
    assert updated.outs["swarm_id"] != created.outs["swarm_id"]
    assert claim_on(host_engine, host_id) == ("test", f"{OWNER}#{created.id}")
    # The old swarm was still reachable: its labels are gone.
    assert claim_on(netns_engine, n1.node_id) == (None, None)
