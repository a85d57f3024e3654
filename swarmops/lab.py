"""Prepares a single-node lab for the dev stack: a swarm on this Docker Engine and the env label.

Run by scripts/deploy-dev before `pulumi up`; never takes a node another environment holds.
`python -m swarmops.lab --label test` prints what it did.
"""

from __future__ import annotations

import argparse
import sys

import docker
from docker.errors import DockerException

from stackconfig.names import ENV_LABEL_KEY
from swarmlib.claims import Claim, NodeLabelError, apply_labels


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

    labelled = [n for n in client.nodes.list() if (n.attrs["Spec"].get("Labels") or {}).get(ENV_LABEL_KEY) == label]
    if labelled:
        actions.append(f"node {labelled[0].attrs['Description']['Hostname']} already carries env={label}")
        return actions
    own_id = str(info["Swarm"]["NodeID"])
    # The lab writes no ownership marker: the node is the operator's, labelled as by hand.
    claim = Claim(
        value=label,
        fix=f"label a node for this environment: docker node update --label-add {ENV_LABEL_KEY}={label} <node>",
    )
    try:
        (node,) = apply_labels(client, [own_id], claim).values()
    except NodeLabelError as error:
        raise LabError("; ".join(error.problems)) from error
    actions.append(f"labelled node {node.hostname} env={label}")
    return actions


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
