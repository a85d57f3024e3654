"""Runs the real program, or one component, under Pulumi's mock engine and records what it declares.

Config comes from the real project and stack files, applied the way the CLI does: declared
defaults from Pulumi.yaml, then the stack file's values, structured values as JSON text.
"""

from __future__ import annotations

import json
import runpy
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest import mock

import pulumi
import yaml
from pulumi.runtime.settings import get_root_resource

from stackconfig.settings import NAMESPACE, StackSettings, parse_settings
from swarmlib import preflight
from swarmlib.facts import NodeFacts, SwarmFacts
from swarmlib.preflight import Context, Finding
from tests.sdk_mocks import RecordingMonitor, is_secret, unwrap

if TYPE_CHECKING:  # a type only: the evaluation-cost benchmark imports this module, not pytest
    import pytest

ROOT = Path(__file__).resolve().parent.parent
STACKS = ("dev", "prod")

# What the mocked RandomPassword returns. Its standard base64 contains '+' and '/', which the
# url-safe alphabet writes as '-' and '_': a wrong encoder shows up in the Secret's data.
FAKE_PASSWORD = "p?>~>?>~x"


def project_file() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "Pulumi.yaml").read_text())


def stack_config(stack: str) -> dict[str, Any]:
    """Decoded config values of a stack file, keys without the namespace (the program applies the
    defaults: Pulumi.yaml declares none)."""
    stack_file = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text()) or {}
    values: dict[str, Any] = {}
    for key, value in (stack_file.get("config") or {}).items():
        namespace, _, name = key.partition(":")
        assert namespace == NAMESPACE, f"stack file key {key} outside the project namespace"
        values[name] = value
    return values


def settings_of(stack: str, top: Mapping[str, Any] | None = None, **groups: dict[str, Any]) -> StackSettings:
    """A real stack file's settings with some top-level keys replaced and some structured groups'
    members overridden."""
    config = stack_config(stack) | dict(top or {})
    for group, members in groups.items():
        config[group] = {**(config.get(group) or {}), **members}
    return parse_settings(config)


def of_stack(stack: str) -> Context:
    """Preflight asked by `stack` of this project."""
    return Context(NAMESPACE, stack)


def as_cli_config(values: Mapping[str, Any]) -> dict[str, str]:
    """The CLI hands the program strings: plain for strings, JSON for everything else."""
    return {
        f"{NAMESPACE}:{key}": value if isinstance(value, str) else json.dumps(value) for key, value in values.items()
    }


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
    # urn -> what a component (or the stack) registered as its outputs, secrets unwrapped
    registered_outputs: dict[str, dict[str, Any]] = field(default_factory=lambda: {})

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


def recorder(deployment: Deployment) -> Callable[[Any, str, dict[str, Any]], None]:
    def record(request: Any, urn: str, raw: dict[str, Any]) -> None:
        deployment.resources.append(
            Declared(
                type=request.type,
                name=request.name,
                urn=urn,
                inputs=unwrap(raw),
                secret_paths={key for key, value in raw.items() if is_secret(value)},
                parent=request.parent,
                dependencies=list(request.dependencies),
                provider=request.provider,
                custom=request.custom,
                retain_on_delete=bool(request.retainOnDelete),
            )
        )

    return record


def ready_swarm(settings: StackSettings) -> SwarmFacts:
    """A swarm that passes preflight: a manager plus every node the settings name, all labelled for them."""
    names = {"manager-1", *settings.node_labels.nodes, *filter(None, [settings.mysql.data_node])}
    nodes = tuple(NodeFacts(f"id-{n}", n, labels={"env": settings.env_label}) for n in sorted(names))
    return SwarmFacts(docker_host=settings.docker_host, nodes=nodes)


def swarm_reads(source: Callable[[StackSettings], SwarmFacts]) -> AbstractContextManager[Any]:
    """Preflight reads its facts from `source` instead of a Docker host."""
    return mock.patch.object(preflight, "read_swarm", lambda settings, *_args: source(settings))  # pyright: ignore[reportUnknownLambdaType]


def deploy(
    program: Callable[[], object],
    config: Mapping[str, Any],
    stack: str = "dev",
    into: Deployment | None = None,
    swarm: Callable[[StackSettings], SwarmFacts] | None = ready_swarm,
) -> Deployment:
    """Runs `program` under mocks with `config` (decoded values) and returns what it declared
    (also recorded in `into`, which stays readable when the program raises). Preflight sees
    `swarm` instead of a Docker host (None: the real read_swarm)."""
    deployment = into if into is not None else Deployment()
    pulumi.runtime.set_all_config(as_cli_config(config))
    pulumi.runtime.set_mocks(
        FakeProviders(),
        project=NAMESPACE,
        stack=stack,
        preview=False,
        monitor=RecordingMonitor(
            FakeProviders(),
            recorder(deployment),
            lambda urn, outputs: deployment.registered_outputs.__setitem__(urn, unwrap(outputs)),
        ),
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

    with swarm_reads(swarm) if swarm else nullcontext():
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


# --------------------------------------------------------------------------- preflight as the program runs it


def checks(findings: list[Finding]) -> list[str]:
    return [f.check for f in findings]


@dataclass
class ProgramLog:
    warnings: list[str] = field(default_factory=lambda: [])
    infos: list[str] = field(default_factory=lambda: [])


def run_as(monkeypatch: pytest.MonkeyPatch, stack: str, *, preview: bool) -> ProgramLog:
    """Makes preflight() run as `stack`'s program of this project in a preview or an update, as the
    Pulumi runtime would tell it, and returns what it logs."""
    logged = ProgramLog()
    monkeypatch.setattr(pulumi, "get_project", lambda: NAMESPACE)
    monkeypatch.setattr(pulumi, "get_stack", lambda: stack)
    monkeypatch.setattr(pulumi.runtime, "is_dry_run", lambda: preview)
    monkeypatch.setattr(pulumi.log, "warn", lambda message, *_a, **_k: logged.warnings.append(message))
    monkeypatch.setattr(pulumi.log, "info", lambda message, *_a, **_k: logged.infos.append(message))
    return logged
