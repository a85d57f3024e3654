"""The main job's lab preparation on the real engine: labels the local node once, never steals it."""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest

from swarmops.lab import LabError, prepare_lab

from .harness import set_node_labels


@pytest.fixture
def own_node_without_env(engine: docker.DockerClient) -> Iterator[str]:
    """This engine's node with its env label removed for the test, restored afterwards."""
    node_id: str = engine.info()["Swarm"]["NodeID"]
    saved = dict(engine.nodes.get(node_id).attrs["Spec"].get("Labels") or {})
    set_node_labels(engine, node_id, {"env": None})
    yield node_id
    set_node_labels(engine, node_id, {"env": saved.get("env")})


def env_of(engine: docker.DockerClient, node_id: str) -> str | None:
    return (engine.nodes.get(node_id).attrs["Spec"].get("Labels") or {}).get("env")


def test_labels_the_local_node_once(engine: docker.DockerClient, own_node_without_env: str) -> None:
    first = prepare_lab(engine, "wpswarm-lab")
    assert env_of(engine, own_node_without_env) == "wpswarm-lab"
    assert first[-1].startswith("labelled node ")
    assert first[-1].endswith(" env=wpswarm-lab")
    second = prepare_lab(engine, "wpswarm-lab")
    assert second[-1].endswith("already carries env=wpswarm-lab")


def test_never_relabels_a_node_of_another_environment(engine: docker.DockerClient, own_node_without_env: str) -> None:
    set_node_labels(engine, own_node_without_env, {"env": "wpswarm-lab-prod"})
    with pytest.raises(LabError, match="carries env=wpswarm-lab-prod, not env=wpswarm-lab-dev"):
        prepare_lab(engine, "wpswarm-lab-dev")
    assert env_of(engine, own_node_without_env) == "wpswarm-lab-prod"
