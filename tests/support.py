"""Runs the real program, or one component, under Pulumi's mock engine and records what it declares.

Config comes from the real project and stack files, applied the way the CLI does: declared
defaults from Pulumi.yaml, then the stack file's values, structured values as JSON text.
"""

from __future__ import annotations

import json
import runpy
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks, rpc
from pulumi.runtime.settings import get_root_resource

from components.settings import PROJECT, StackSettings
from swarmops.preflight import FactSource, NodeFacts, SwarmFacts, facts_from

ROOT = Path(__file__).resolve().parent.parent
STACKS = ("dev", "prod")

# What the mocked RandomPassword returns. Its standard base64 contains '+' and '/', which the
# url-safe alphabet writes as '-' and '_': a wrong encoder shows up in the Secret's data.
FAKE_PASSWORD = "p?>~>?>~x"
SECRET_SIG = rpc._special_sig_key  # pyright: ignore[reportPrivateUsage]


def project_file() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "Pulumi.yaml").read_text())


def stack_config(stack: str) -> dict[str, Any]:
    """Decoded config values of a stack, keys without the project prefix, defaults applied."""
    declared: dict[str, Any] = project_file().get("config") or {}
    values = {key: spec["default"] for key, spec in declared.items() if "default" in spec}
    stack_file = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text()) or {}
    for key, value in (stack_file.get("config") or {}).items():
        namespace, _, name = key.partition(":")
        assert namespace == PROJECT, f"stack file key {key} outside the project namespace"
        values[name] = value
    return values


def as_cli_config(values: Mapping[str, Any]) -> dict[str, str]:
    """The CLI hands the program strings: plain for strings, JSON for everything else."""
    return {f"{PROJECT}:{key}": value if isinstance(value, str) else json.dumps(value) for key, value in values.items()}


@dataclass
class Declared:
    """One resource as the engine received it."""

    type: str
    name: str
    urn: str
    inputs: dict[str, Any]  # secrets unwrapped to plain values
    secret_paths: set[str]  # top-level input names that arrived marked secret
    parent: str
    dependencies: list[str]
    provider: str
    custom: bool
    retain_on_delete: bool = False


@dataclass
class Deployment:
    resources: list[Declared] = field(default_factory=lambda: [])
    outputs: dict[str, Any] = field(default_factory=lambda: {})
    secret_outputs: set[str] = field(default_factory=lambda: set())

    def of_type(self, type_token: str) -> list[Declared]:
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str, name_suffix: str = "") -> Declared:
        found = [r for r in self.of_type(type_token) if r.name.endswith(name_suffix)]
        assert len(found) == 1, f"expected one {type_token} named *{name_suffix}, got {[r.name for r in found]}"
        return found[0]

    def by_urn(self, urn: str) -> Declared:
        return next(r for r in self.resources if r.urn == urn)

    def transitive_dependencies(self, resource: Declared) -> set[str]:
        """URNs this resource waits for: its dependencies, and theirs."""
        seen: set[str] = set()
        todo = list(resource.dependencies)
        while todo:
            urn = todo.pop()
            if urn in seen:
                continue
            seen.add(urn)
            todo.extend(next((r.dependencies for r in self.resources if r.urn == urn), []))
        return seen


class FakeProviders(pulumi.runtime.Mocks):
    """Answers like the providers would: ids, auto-names with a suffix, a known password."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        state = dict(args.inputs)
        if args.typ == "random:index/randomPassword:RandomPassword":
            state["result"] = FAKE_PASSWORD
        if args.typ.startswith("docker:index/") and "name" not in state:
            state["name"] = f"{args.name}-a1b2c3d"
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


class RecordingMonitor(mocks.MockMonitor):
    """The stock mock monitor, plus what it drops: dependencies, parents, providers, secrecy."""

    def __init__(self, deployment: Deployment) -> None:
        super().__init__(FakeProviders())
        self.deployment = deployment

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            raw = rpc.deserialize_properties(request.object, keep_unknowns=True)
            secret_paths = {key for key, value in raw.items() if _is_secret(value)}
            self.deployment.resources.append(
                Declared(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    inputs=_unwrap(raw),
                    secret_paths=secret_paths,
                    parent=request.parent,
                    dependencies=list(request.dependencies),
                    provider=request.provider,
                    custom=request.custom,
                    retain_on_delete=bool(request.retainOnDelete),
                )
            )
        return response


def _is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIG) == rpc._special_secret_sig  # pyright: ignore[reportPrivateUsage]


def _unwrap(value: Any) -> Any:
    if _is_secret(value):
        return _unwrap(value["value"])
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}  # pyright: ignore[reportUnknownVariableType]
    if isinstance(value, list):
        return [_unwrap(v) for v in value]  # pyright: ignore[reportUnknownVariableType]
    return value


def ready_swarm(settings: StackSettings) -> SwarmFacts:
    """A swarm that passes preflight: a manager plus every node the settings name, all labelled for them."""
    names = {"manager-1", *settings.node_labels.nodes, *filter(None, [settings.mysql.data_node])}
    nodes = tuple(NodeFacts(f"id-{n}", n, "ready", "active", {"env": settings.env_label}) for n in sorted(names))
    return SwarmFacts(docker_host=settings.docker_host, swarm_state="active", is_manager=True, nodes=nodes)


def deploy(
    program: Callable[[], object],
    config: Mapping[str, Any],
    stack: str = "dev",
    into: Deployment | None = None,
    swarm: FactSource = ready_swarm,
) -> Deployment:
    """Runs `program` under mocks with `config` (decoded values) and returns what it declared
    (also recorded in `into`, which stays readable when the program raises). Preflight sees
    `swarm` instead of a Docker host."""
    deployment = into if into is not None else Deployment()
    pulumi.runtime.set_all_config(as_cli_config(config))
    pulumi.runtime.set_mocks(
        FakeProviders(), project=PROJECT, stack=stack, preview=False, monitor=RecordingMonitor(deployment)
    )

    @pulumi.runtime.test
    def run() -> pulumi.Output[Any]:
        program()
        root = get_root_resource()
        outputs: dict[str, Any] = dict(getattr(root, "outputs", {}) or {})
        names = list(outputs)

        async def secrecy() -> list[bool]:
            return [await pulumi.Output.from_input(value).is_secret() for value in outputs.values()]

        def collect(results: list[Any]) -> None:
            values, secret_flags = results[:-1], results[-1]
            deployment.outputs.update(zip(names, values, strict=True))
            deployment.secret_outputs.update(n for n, s in zip(names, secret_flags, strict=True) if s)

        return pulumi.Output.all(*outputs.values(), secrecy()).apply(collect)

    with facts_from(swarm):
        run()
    return deployment


def run_main() -> None:
    runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")


def deploy_stack(stack: str) -> Deployment:
    """The real __main__.py on a real stack file."""
    return deploy(run_main, stack_config(stack), stack)


def walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every leaf of nested inputs with its dotted path."""
    if isinstance(value, dict):
        for key, item in value.items():  # pyright: ignore[reportUnknownVariableType]
            yield from walk(item, f"{path}.{key}" if path else str(key))  # pyright: ignore[reportUnknownArgumentType]
    elif isinstance(value, list):
        for index, item in enumerate(value):  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
            yield from walk(item, f"{path}[{index}]")
    else:
        yield path, value
