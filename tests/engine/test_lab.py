"""The main job's lab preparation on the real engine: labels the local node once, never steals it."""

from __future__ import annotations

import re
from collections.abc import Iterator

import docker
import pytest

from swarmlib.claims import owner_key
from swarmops.lab import LabError, prepare_lab

from .swarm_tasks import set_node_labels


@pytest.fixture
def own_node_without_env(engine: docker.DockerClient) -> Iterator[str]:
    """This engine's node with its env label and ownership marker removed for the test, restored afterwards."""
    node_id: str = engine.info()["Swarm"]["NodeID"]
    keys = ("env", owner_key())
    saved = labels_of(engine, node_id)
    set_node_labels(engine, node_id, dict.fromkeys(keys))
    yield node_id
    set_node_labels(engine, node_id, {key: saved.get(key) for key in keys})


def labels_of(engine: docker.DockerClient, node_id: str) -> dict[str, str]:
    return dict(engine.nodes.get(node_id).attrs["Spec"].get("Labels") or {})


def test_labels_the_local_node_once(engine: docker.DockerClient, own_node_without_env: str) -> None:
    first = prepare_lab(engine, "wpswarm-lab")
    labels = labels_of(engine, own_node_without_env)
    assert labels["env"] == "wpswarm-lab"
    # The lab's node is the operator's, as if labelled by hand: no stack's ownership marker.
    assert owner_key() not in labels
    assert first[-1].startswith("labelled node ")
    assert first[-1].endswith(" env=wpswarm-lab")
    second = prepare_lab(engine, "wpswarm-lab")
    assert second[-1].endswith("already carries env=wpswarm-lab")


def test_never_relabels_a_node_of_another_environment(engine: docker.DockerClient, own_node_without_env: str) -> None:
    set_node_labels(engine, own_node_without_env, {"env": "wpswarm-lab-prod"})
    hostname = engine.nodes.get(own_node_without_env).attrs["Description"]["Hostname"]
    # The one rule's words (swarmlib.claims), and what to do instead.
    refusal = (
        f"node {hostname} ({own_node_without_env}) has env=wpswarm-lab-prod, another environment's label, "
        "and this stack labels env=wpswarm-lab-dev; "
        "label a node for this environment: docker node update --label-add env=wpswarm-lab-dev <node>"
    )
    with pytest.raises(LabError, match=f"^{re.escape(refusal)}$"):
        prepare_lab(engine, "wpswarm-lab-dev")
    assert labels_of(engine, own_node_without_env)["env"] == "wpswarm-lab-prod"
