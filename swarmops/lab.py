"""Prepares a single-node lab for the dev stack: a swarm on this Docker Engine and the env label.

Run by scripts/deploy-dev before `pulumi up`; never takes a node another environment holds.
`python -m swarmops.lab --label test` prints what it did.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping

import docker
from docker.errors import DockerException
from docker.models.nodes import Node

from components.names import ENV_LABEL_KEY
from components.node_labels import change_node_labels


class LabError(RuntimeError):
    pass


def prepare_lab(client: docker.DockerClient, label: str, advertise_addr: str = "127.0.0.1") -> list[str]:
    """Makes sure a swarm exists and some node carries env=<label>; returns the actions taken."""
    actions: list[str] = []
    info = client.info()
    state = info["Swarm"]["LocalNodeState"]
    if state == "inactive":
        client.swarm.init(advertise_addr=advertise_addr)
        actions.append(f"initialised a single-node swarm advertising {advertise_addr}")
        info = client.info()
    elif state != "active":
        raise LabError(f"this engine's swarm state is {state!r}; fix it (docker swarm leave --force?) and retry")
    if not info["Swarm"].get("ControlAvailable"):
        raise LabError("this engine is a swarm worker; run against a manager (set wordpress-swarm:dockerHost)")

    labelled = [n for n in client.nodes.list() if _labels(n).get(ENV_LABEL_KEY) == label]
    if labelled:
        actions.append(f"node {labelled[0].attrs['Description']['Hostname']} already carries env={label}")
        return actions
    own_id = str(info["Swarm"]["NodeID"])
    hostname = client.nodes.get(own_id).attrs["Description"]["Hostname"]

    def label_unless_taken(current: Mapping[str, str]) -> dict[str, str | None]:
        # Decided on the labels the update replaces, so a concurrent writer can't be overwritten.
        held = current.get(ENV_LABEL_KEY)
        if held not in (None, label):
            raise LabError(
                f"node {hostname} carries env={held}, not env={label}; label a node for this environment: "
                f"docker node update --label-add {ENV_LABEL_KEY}={label} <node>"
            )
        return {ENV_LABEL_KEY: label}

    change_node_labels(client, own_id, label_unless_taken)
    actions.append(f"labelled node {hostname} env={label}")
    return actions


def _labels(node: Node) -> dict[str, str]:
    return dict(node.attrs["Spec"].get("Labels") or {})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--label", required=True, help="the env label value the stack deploys to, e.g. test")
    parser.add_argument("--advertise-addr", default="127.0.0.1")
    options = parser.parse_args(argv)
    try:
        for action in prepare_lab(docker.from_env(), options.label, options.advertise_addr):
            print(f"lab: {action}")
    except (LabError, DockerException) as error:
        print(f"lab: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
