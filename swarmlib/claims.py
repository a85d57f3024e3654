"""Which swarm nodes a stack may claim, and claiming them: the `env=<label>` node labels.

Next to `env` every node a stack labels carries an ownership marker, `wordpress-swarm.env-owner=
<project>/<stack>#<resource id>`: the stack it belongs to, so that preflight (which has no Pulumi
state) and the label resource both know a node holding the stack's previous envLabel is the
stack's own, and the resource instance that set it, so that the old instance's delete after a
create-before-delete replacement leaves the labels its successor has just claimed.

One rule decides whether a node may be labelled (`refusal`); the label resource's provider,
preflight and the lab tool all ask it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stackconfig.names import ENV_LABEL_KEY, LABEL_PREFIX

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.nodes import Node

# The node label every service is constrained on. Read when called, so a test on a shared engine
# can claim nodes under a key of its own (monkeypatch) without touching anyone's `env`.
LABEL_KEY = ENV_LABEL_KEY

# How often a label change is retried when another writer bumped the node's version in between.
_UPDATE_ATTEMPTS = 5


def owner_key() -> str:
    """The marker label that goes with LABEL_KEY: wordpress-swarm.env-owner for `env`."""
    return f"{LABEL_PREFIX}{LABEL_KEY}-owner"


def stack_owner(project: str, stack: str) -> str:
    """Whose labels these are: `<project>/<stack>` (neither name may contain '/' or '#')."""
    return f"{project}/{stack}"


def marker_value(owner: str, resource_id: str) -> str:
    """The marker one resource instance writes: its owner, and its own id."""
    return f"{owner}#{resource_id}"


def owner_of(marker: str) -> str:
    """The `<project>/<stack>` a marker names."""
    return marker.partition("#")[0]


def refusal(labels: Mapping[str, str], value: str, owners: Collection[str] = ()) -> str | None:
    """Why a stack going by `owners` may not label a node carrying `labels` with `value` without
    taking it over, or None when it may: the label is unset or already `value`, or the node's
    marker names one of `owners` (whatever the value: the stack's previous envLabel)."""
    current, marker = labels.get(LABEL_KEY), labels.get(owner_key())
    if current is None or current == value:
        return None
    if marker is not None and owner_of(marker) in owners:
        return None
    held = f"stack {owner_of(marker)}'s label" if marker else "another environment's label"
    return f"has {LABEL_KEY}={current}, {held}, and this stack labels {LABEL_KEY}={value}"


class NodeLabelError(Exception):
    """Listed nodes can't be labelled: unknown, ambiguous, or held by another environment.
    Raised before any node is changed; one line per problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("cannot label swarm nodes:\n  " + "\n  ".join(self.problems))


@dataclass(frozen=True)
class LabelledNode:
    """What one listed name stands for on the swarm, its label's value and its marker right now."""

    name: str  # as listed in <project>:nodes.names
    node_id: str | None  # None: no node of that name (any more)
    hostname: str | None
    value: str | None  # None: the node has no such label
    marker: str | None = None  # None: unmarked

    def as_output(self) -> dict[str, str | None]:
        return {"name": self.name, "id": self.node_id, "hostname": self.hostname, "value": self.value,
                "marker": self.marker}  # fmt: skip

    @classmethod
    def from_output(cls, raw: Mapping[str, Any]) -> LabelledNode:
        return cls(raw["name"], raw["id"], raw["hostname"], raw["value"], raw["marker"])


def find_node_ids(name: str, nodes: Iterable[tuple[str, str]]) -> list[str]:
    """IDs of the nodes `name` means among (id, hostname) pairs: an exact node ID, else every node
    with that hostname, else the nodes whose ID starts with it (as `docker node` accepts)."""
    pairs = list(nodes)
    exact = [node_id for node_id, _ in pairs if node_id == name]
    if exact:
        return exact
    by_hostname = [node_id for node_id, hostname in pairs if hostname == name]
    if by_hostname:
        return by_hostname
    return [node_id for node_id, _ in pairs if node_id.startswith(name)]


def unresolved(name: str, ids: Sequence[str], names_key: str) -> str | None:
    """Why a listed name can't be labelled: it matches no node, or several."""
    if not ids:
        return f"{names_key} lists {name!r}, which is no node of this swarm (see `docker node ls`)"
    if len(ids) > 1:
        return f"{names_key} lists {name!r}, which matches nodes {', '.join(ids)}: list node IDs instead"
    return None


def _hostname(node: Node) -> str:
    return str(node.attrs["Description"]["Hostname"])


def _labels(node: Node) -> dict[str, str]:
    return dict(node.attrs["Spec"].get("Labels") or {})


def _resolve(client: DockerClient, names: Sequence[str], names_key: str) -> tuple[dict[str, Node | None], list[str]]:
    """Each name's node (None when it names none or several), and a problem for each such name."""
    by_id = {str(node.id): node for node in client.nodes.list()}
    pairs = [(node_id, _hostname(node)) for node_id, node in by_id.items()]
    found: dict[str, Node | None] = {}
    problems: list[str] = []
    for name in names:
        ids = find_node_ids(name, pairs)
        found[name] = by_id[ids[0]] if len(ids) == 1 else None
        problem = unresolved(name, ids, names_key)
        if problem:
            problems.append(problem)
    return found, problems


def _describe(name: str, node: Node | None) -> LabelledNode:
    if node is None:
        return LabelledNode(name=name, node_id=None, hostname=None, value=None)
    labels = _labels(node)
    return LabelledNode(name, str(node.id), _hostname(node), labels.get(LABEL_KEY), labels.get(owner_key()))


LabelChange = Callable[[Mapping[str, str]], Mapping[str, str | None]]


def change_node_labels(client: DockerClient, node_id: str, change: LabelChange) -> bool:
    """Applies change(current labels) to the node (a None value removes that label) in one node
    update, retrying when another writer got in first, so `change` always decides on the labels it
    replaces. True when the node changed."""
    from docker.errors import APIError

    for attempt in range(_UPDATE_ATTEMPTS):
        node = client.nodes.get(node_id)
        spec: dict[str, Any] = dict(node.attrs["Spec"])
        labels: dict[str, str] = dict(spec.get("Labels") or {})
        wanted = dict(labels)
        for label, new in change(labels).items():
            if new is None:
                wanted.pop(label, None)
            else:
                wanted[label] = new
        if wanted == labels:
            return False
        spec["Labels"] = wanted
        try:
            node.update(spec)
            return True
        except APIError as error:
            if "out of sequence" not in str(error) or attempt == _UPDATE_ATTEMPTS - 1:
                raise
    return False


@dataclass(frozen=True)
class Claim:
    """What a stack asks of the nodes it lists."""

    value: str  # LABEL_KEY's value: the stack's envLabel
    marker: str | None = None  # the ownership marker to write; None writes none (a lab's own node)
    previous_markers: Collection[str] = ()  # the stack's markers before a rename: still its own
    take_over: bool = False
    names_key: str = "nodes.names"  # how the refusals name the list (the config key)
    fix: str = ""  # what a refusal tells the operator to do

    @property
    def owners(self) -> set[str]:
        return {owner_of(m) for m in (self.marker, *self.previous_markers) if m}

    def refusal(self, name: str, node: Node, labels: Mapping[str, str]) -> str | None:
        if self.take_over:
            return None
        problem = refusal(labels, self.value, self.owners)
        if problem is None:
            return None
        listed = f", listed as {name!r}" if name not in (node.id, _hostname(node)) else ""
        return f"node {_hostname(node)} ({node.id}{listed}) {problem}" + (f"; {self.fix}" if self.fix else "")


def apply_labels(client: DockerClient, names: Sequence[str], claim: Claim) -> dict[str, LabelledNode]:
    """Puts LABEL_KEY=claim.value, and the claim's marker if any, on every listed node (hostname
    or node ID) and returns them as labelled. A node already labelled with the value under another
    stack's marker is shared: it keeps that marker unless taken over. Every node is checked before
    any is changed, so a refusal leaves the swarm as it was."""
    found, problems = _resolve(client, names, claim.names_key)
    for name, node in found.items():
        if node is not None and (problem := claim.refusal(name, node, _labels(node))):
            problems.append(problem)
    if problems:
        raise NodeLabelError(problems)

    def claim_node(name: str, node: Node) -> LabelChange:
        def decide(labels: Mapping[str, str]) -> Mapping[str, str | None]:
            # Re-checked on the labels actually replaced: someone may have labelled it since.
            if problem := claim.refusal(name, node, labels):
                raise NodeLabelError([problem])
            current_marker = labels.get(owner_key())
            shared = current_marker is not None and owner_of(current_marker) not in claim.owners
            if claim.marker is None or (shared and not claim.take_over):
                return {LABEL_KEY: claim.value}
            return {LABEL_KEY: claim.value, owner_key(): claim.marker}

        return decide

    for name, node in found.items():
        assert node is not None  # unknown names raised above
        change_node_labels(client, str(node.id), claim_node(name, node))
    return read_labels(client, names, claim.names_key)


def read_labels(client: DockerClient, names: Sequence[str], names_key: str = "nodes.names") -> dict[str, LabelledNode]:
    """The listed nodes with their label's current value and marker; a name that matches no node
    (or several) is reported with node_id None rather than failing, so a refresh can show it."""
    found, _problems = _resolve(client, names, names_key)
    return {name: _describe(name, node) for name, node in found.items()}


def remove_labels(client: DockerClient, node_ids: Iterable[str], value: str, marker: str) -> list[str]:
    """Gives the given nodes up: removes the label where it still holds `value` and the node
    carries `marker`, and removes `marker` itself. A node relabelled since, or claimed by another
    stack or by another instance of this one (a replacement created before this one is deleted),
    keeps its labels; a node gone from the swarm is skipped. Returns the IDs changed."""
    from docker.errors import NotFound

    def give_up(labels: Mapping[str, str]) -> Mapping[str, str | None]:
        if labels.get(owner_key()) != marker:
            return {}
        changes: dict[str, str | None] = {owner_key(): None}
        if labels.get(LABEL_KEY) == value:
            changes[LABEL_KEY] = None
        return changes

    removed: list[str] = []
    for node_id in dict.fromkeys(node_ids):
        try:
            if change_node_labels(client, node_id, give_up):
                removed.append(node_id)
        except NotFound:
            continue
    return removed
